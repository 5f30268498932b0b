//! DICOM networking for csnav: a storage SCP that receives venogram runs from the angiography
//! system (C-ECHO, C-STORE of XA and secondary capture), with a calling-AE allow-list, atomic
//! storage and byte-exact data sets. Built on dicom-rs' upper layer (`dicom-ul`).
//!
//! Research software, not a medical device.

pub mod dimse;
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
