//! DICOM networking for csnav: a storage SCP that receives venogram runs from the angiography
//! system (C-ECHO, C-STORE of XA and secondary capture), with a calling-AE allow-list, atomic
//! storage and byte-exact data sets. Built on dicom-rs' upper layer (`dicom-ul`).
//!
//! Research software, not a medical device.

pub mod dimse;
pub mod storage;
pub mod store_scp;

pub use store_scp::{ScpEvent, StoreScp, StoreScpConfig, StoredInstance};

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

/// Transfer syntaxes csnav's SCP accepts: those venogram can decode (dicom-rs' registry with
/// csnav's codecs), so every stored run can be segmented.
pub mod transfer_syntax {
    /// Implicit VR Little Endian (the default every peer supports).
    pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
    /// Explicit VR Little Endian.
    pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
    /// Deflated Explicit VR Little Endian.
    pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
    /// Explicit VR Big Endian (retired, still sent by old systems).
    pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
    /// JPEG Baseline (process 1).
    pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
    /// JPEG Extended (processes 2 and 4: 12-bit DCT).
    pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
    /// JPEG Lossless, non-hierarchical (process 14).
    pub const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
    /// JPEG Lossless, first-order prediction (process 14, selection value 1).
    pub const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
    /// JPEG-LS Lossless.
    pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
    /// JPEG-LS Near-Lossless.
    pub const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
    /// JPEG 2000 (lossless only).
    pub const JPEG_2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
    /// JPEG 2000.
    pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";
    /// RLE Lossless.
    pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
    /// Every transfer syntax the SCP accepts, in its order of preference when a peer offers
    /// several (the peer's own order decides in dicom-ul: the first of the peer's it accepts).
    pub const ACCEPTED: &[&str] = &[
        EXPLICIT_VR_LE,
        IMPLICIT_VR_LE,
        DEFLATED_EXPLICIT_VR_LE,
        EXPLICIT_VR_BE,
        JPEG_BASELINE,
        JPEG_EXTENDED,
        JPEG_LOSSLESS,
        JPEG_LOSSLESS_SV1,
        JPEG_LS_LOSSLESS,
        JPEG_LS_NEAR_LOSSLESS,
        JPEG_2000_LOSSLESS,
        JPEG_2000,
        RLE_LOSSLESS,
    ];
}

/// An error and its causes, in one line ("a: b: c"): dicom-ul's errors say little at the top.
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
