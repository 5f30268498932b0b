//! DICOM networking for csnav: a storage SCP that receives venogram runs from the angiography
//! system (C-ECHO, C-STORE of XA and secondary capture), with a calling-AE allow-list, atomic
//! storage and byte-exact data sets; and the SCU side that queries and retrieves from a PACS
//! (C-FIND, C-MOVE) and sends results back (C-STORE). Built on dicom-rs' upper layer
//! (`dicom-ul`).
//!
//! Research software, not a medical device.

pub mod dimse;
pub mod scu;
pub mod storage;
pub mod store_scp;

pub use store_scp::{ScpEvent, StoreScp, StoreScpConfig, StoredInstance};
pub use venogram::error_chain;

/// SOP classes (abstract syntaxes) csnav's SCP serves.
pub mod sop_class {
    /// Verification (C-ECHO).
    pub const VERIFICATION: &str = "1.2.840.10008.1.1";
    /// X-Ray Angiographic Image Storage.
    pub const XA: &str = "1.2.840.10008.5.1.4.1.1.12.1";
    /// Enhanced XA Image Storage.
    pub const ENHANCED_XA: &str = "1.2.840.10008.5.1.4.1.1.12.1.1";
    /// X-Ray Radiofluoroscopic Image Storage.
    pub const XRF: &str = "1.2.840.10008.5.1.4.1.1.12.2";
    /// Secondary Capture Image Storage.
    pub const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
    /// Multi-frame Grayscale Byte Secondary Capture Image Storage.
    pub const MF_GRAYSCALE_BYTE_SC: &str = "1.2.840.10008.5.1.4.1.1.7.2";
    /// Multi-frame Grayscale Word Secondary Capture Image Storage.
    pub const MF_GRAYSCALE_WORD_SC: &str = "1.2.840.10008.5.1.4.1.1.7.3";
    /// Multi-frame True Color Secondary Capture Image Storage.
    pub const MF_TRUE_COLOR_SC: &str = "1.2.840.10008.5.1.4.1.1.7.4";
    /// Comprehensive SR Storage.
    pub const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";
    /// Patient Root Query/Retrieve Information Model - FIND.
    pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
    /// Patient Root Query/Retrieve Information Model - MOVE.
    pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
    /// Study Root Query/Retrieve Information Model - FIND.
    pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
    /// Study Root Query/Retrieve Information Model - MOVE.
    pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";

    /// A SOP class's name with its UID, for messages ("X-Ray Angiographic Image Storage
    /// (1.2.840.10008.5.1.4.1.1.12.1)"); the bare UID when it is not one csnav uses.
    #[must_use]
    pub fn name(uid: &str) -> String {
        let known = match uid {
            VERIFICATION => "Verification",
            XA => "X-Ray Angiographic Image Storage",
            ENHANCED_XA => "Enhanced XA Image Storage",
            XRF => "X-Ray Radiofluoroscopic Image Storage",
            SECONDARY_CAPTURE => "Secondary Capture Image Storage",
            MF_GRAYSCALE_BYTE_SC => "Multi-frame Grayscale Byte SC Image Storage",
            MF_GRAYSCALE_WORD_SC => "Multi-frame Grayscale Word SC Image Storage",
            MF_TRUE_COLOR_SC => "Multi-frame True Color SC Image Storage",
            COMPREHENSIVE_SR => "Comprehensive SR Storage",
            PATIENT_ROOT_FIND => "Patient Root Query/Retrieve - FIND",
            PATIENT_ROOT_MOVE => "Patient Root Query/Retrieve - MOVE",
            STUDY_ROOT_FIND => "Study Root Query/Retrieve - FIND",
            STUDY_ROOT_MOVE => "Study Root Query/Retrieve - MOVE",
            _ => return uid.to_owned(),
        };
        format!("{known} ({uid})")
    }

    /// Every abstract syntax the SCP accepts.
    pub const ACCEPTED: &[&str] = &[
        VERIFICATION,
        XA,
        ENHANCED_XA,
        XRF,
        SECONDARY_CAPTURE,
        MF_GRAYSCALE_BYTE_SC,
        MF_GRAYSCALE_WORD_SC,
        MF_TRUE_COLOR_SC,
    ];
}
