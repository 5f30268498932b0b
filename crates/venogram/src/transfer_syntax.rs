//! Transfer syntaxes (PS3.5 section 10, PS3.6 Annex A): naming them and telling which ones
//! csnav decodes, so every error and every summary says the UID *and* the name.

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use serde::Serialize;

/// Implicit VR Little Endian, the DICOM default.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR Big Endian (retired, still found in archives).
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
/// JPEG Baseline (Process 1), lossy 8-bit.
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// JPEG Extended (Process 2 & 4), lossy 8/12-bit.
pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
/// JPEG Lossless, Non-Hierarchical (Process 14), any predictor.
pub const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
/// JPEG Lossless, Process 14, Selection Value 1: mandatory in cardiac media profiles.
pub const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
/// JPEG-LS Lossless.
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
/// JPEG-LS Lossy (Near-Lossless).
pub const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
/// JPEG 2000 Image Compression (Lossless Only).
pub const JPEG_2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
/// JPEG 2000 Image Compression (lossy allowed).
pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";
/// RLE Lossless.
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// The transfer syntaxes csnav reads XA runs in, with whether each is lossless.
pub const SUPPORTED: [(&str, bool); 13] = [
    (IMPLICIT_VR_LITTLE_ENDIAN, true),
    (EXPLICIT_VR_LITTLE_ENDIAN, true),
    (DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, true),
    (EXPLICIT_VR_BIG_ENDIAN, true),
    (JPEG_BASELINE, false),
    (JPEG_EXTENDED, false),
    (JPEG_LOSSLESS, true),
    (JPEG_LOSSLESS_SV1, true),
    (JPEG_LS_LOSSLESS, true),
    (JPEG_LS_NEAR_LOSSLESS, false),
    (JPEG_2000_LOSSLESS, true),
    (JPEG_2000, false),
    (RLE_LOSSLESS, true),
];

/// Retired JPEG processes (PS3.5 Annex A, retired in 2006) that dicom-rs does not register
/// but old cath-lab archives may still hold: named so an error can say what the file is.
const RETIRED_JPEG: [(&str, &str); 13] = [
    ("1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5), retired"),
    ("1.2.840.10008.1.2.4.53", "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8), retired"),
    ("1.2.840.10008.1.2.4.54", "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9), retired"),
    ("1.2.840.10008.1.2.4.55", "JPEG Full Progression, Non-Hierarchical (Process 10 & 12), retired"),
    ("1.2.840.10008.1.2.4.56", "JPEG Full Progression, Non-Hierarchical (Process 11 & 13), retired"),
    ("1.2.840.10008.1.2.4.58", "JPEG Lossless, Non-Hierarchical (Process 15), retired"),
    ("1.2.840.10008.1.2.4.59", "JPEG Extended, Hierarchical (Process 16 & 18), retired"),
    ("1.2.840.10008.1.2.4.60", "JPEG Extended, Hierarchical (Process 17 & 19), retired"),
    ("1.2.840.10008.1.2.4.61", "JPEG Spectral Selection, Hierarchical (Process 20 & 22), retired"),
    ("1.2.840.10008.1.2.4.62", "JPEG Spectral Selection, Hierarchical (Process 21 & 23), retired"),
    ("1.2.840.10008.1.2.4.63", "JPEG Full Progression, Hierarchical (Process 24 & 26), retired"),
    ("1.2.840.10008.1.2.4.64", "JPEG Full Progression, Hierarchical (Process 25 & 27), retired"),
    ("1.2.840.10008.1.2.4.65", "JPEG Lossless, Hierarchical (Process 28), retired"),
];

/// A transfer syntax as csnav reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferSyntaxInfo {
    /// The UID, without padding.
    pub uid: String,
    /// The registered name, or `unknown transfer syntax` when the UID is not registered.
    pub name: String,
    /// Whether csnav can decode pixel data in it.
    pub decodable: bool,
}

impl TransferSyntaxInfo {
    /// Looks a UID up in dicom-rs's registry (trailing NUL/space padding is ignored).
    #[must_use]
    pub fn from_uid(uid: &str) -> Self {
        let uid = uid.trim_end_matches(['\0', ' ']).to_owned();
        if let Some(ts) = TransferSyntaxRegistry.get(&uid) {
            return Self {
                name: ts.name().to_owned(),
                decodable: ts.can_decode_all() && SUPPORTED.iter().any(|(u, _)| *u == uid),
                uid,
            };
        }
        let name =
            RETIRED_JPEG.iter().find(|(u, _)| *u == uid).map_or("unknown transfer syntax", |(_, name)| name).to_owned();
        Self { uid, name, decodable: false }
    }

    /// Whether decoding is exact (no lossy compression in the syntax itself).
    #[must_use]
    pub fn is_lossless(&self) -> bool {
        SUPPORTED.iter().any(|(u, lossless)| *u == self.uid && *lossless)
    }
}

impl std::fmt::Display for TransferSyntaxInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_syntax_is_decodable_in_this_build() {
        for (uid, _) in SUPPORTED {
            let info = TransferSyntaxInfo::from_uid(uid);
            assert!(info.decodable, "{info} should be decodable");
            assert_ne!(info.name, "unknown transfer syntax");
        }
    }

    #[test]
    fn padding_is_ignored_and_unknown_is_named() {
        assert_eq!(TransferSyntaxInfo::from_uid("1.2.840.10008.1.2.1\0").uid, EXPLICIT_VR_LITTLE_ENDIAN);
        let odd = TransferSyntaxInfo::from_uid("1.2.3.4");
        assert!(!odd.decodable);
        assert_eq!(odd.to_string(), "unknown transfer syntax (1.2.3.4)");
        let retired = TransferSyntaxInfo::from_uid("1.2.840.10008.1.2.4.53");
        assert!(!retired.decodable);
        assert!(retired.name.starts_with("JPEG Spectral Selection"));
    }
}
