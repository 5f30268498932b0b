//! Bad input never panics and always names what was wrong: empty files, directories,
//! non-DICOM bytes, truncation, missing pixel data, frame counts beyond the data, odd
//! lengths, unsupported syntaxes, non-image objects. A bounded property-based mutation test
//! (random flips, truncations, splices of valid files in every committed syntax) runs in the
//! normal suite.

#![allow(
    clippy::unwrap_used,
    clippy::float_cmp,
    reason = "a test: a failed unwrap is a failed test; compared values are parsed, not computed"
)]

mod common;

use std::path::PathBuf;

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use proptest::prelude::*;
use venogram::{IngestError, read_xa_bytes, read_xa_file};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)).unwrap()
}

const FIXTURES: [&str; 7] = [
    "explicit_le_12bit.dcm",
    "deflated_8bit.dcm",
    "rle_12bit.dcm",
    "jpeg_lossless_sv1_12bit.dcm",
    "jpeg_baseline_8bit.dcm",
    "jpeg_extended_12bit.dcm",
    "jpeg_ls_12bit.dcm",
];

/// A valid native XA file written by csnav (5 frames of 12x10, 12-bit).
fn valid_file() -> Vec<u8> {
    let cine = venogram::test_pattern::angiography_pattern(10, 12, 5, 12, 3).unwrap();
    venogram::xa_writer::encode_xa(&cine, &common::source_spec(3)).unwrap()
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap_or_else(|| panic!("{needle:02X?} not found"))
}

fn message(result: Result<venogram::XaRun, IngestError>) -> String {
    result.map(|_| ()).unwrap_err().to_string()
}

#[test]
fn committed_fixtures_are_valid() {
    for name in FIXTURES {
        let run = read_xa_bytes(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((run.cine.columns(), run.cine.rows(), run.cine.frame_count()), (24, 20, 3), "{name}");
    }
}

#[test]
fn empty_file_directory_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.dcm");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(read_xa_file(&empty), Err(IngestError::EmptyFile { .. })));
    assert!(message(read_xa_file(&empty)).contains("empty"));
    assert!(matches!(read_xa_file(dir.path()), Err(IngestError::IsDirectory { .. })));
    let missing = message(read_xa_file(&dir.path().join("nope.dcm")));
    assert!(missing.contains("nope.dcm"), "{missing}");
}

#[test]
fn not_dicom_without_dicm_prefix() {
    let text = b"This is a text file, not an X-ray angiography run.\n".repeat(10);
    let e = read_xa_bytes(&text).unwrap_err();
    assert!(matches!(e, IngestError::NotDicom { len: 510 }), "{e}");
    assert!(e.to_string().contains("DICM"));
    // Preamble present but the magic is wrong.
    let mut bytes = valid_file();
    bytes[128..132].copy_from_slice(b"DICN");
    assert!(matches!(read_xa_bytes(&bytes), Err(IngestError::NotDicom { .. })));
}

#[test]
fn missing_preamble_with_magic_is_accepted() {
    let bytes = valid_file();
    let run = read_xa_bytes(&bytes[128..]).unwrap();
    assert_eq!(run.cine.frame_count(), 5);
}

#[test]
fn truncation_anywhere_is_a_clear_error() {
    let bytes = valid_file();
    let pixel_data = find(&bytes, &[0xE0, 0x7F, 0x10, 0x00]);
    for cut in [130, 140, 200, 400, pixel_data + 4, pixel_data + 40, bytes.len() - 1] {
        let e = read_xa_bytes(&bytes[..cut]).map(|_| ()).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                IngestError::NotDicom { .. }
                    | IngestError::FileMeta { .. }
                    | IngestError::Structure { .. }
                    | IngestError::DataSet { .. }
            ),
            "cut at {cut}: {text}"
        );
        assert!(text.len() > 20, "cut at {cut}: vague message {text:?}");
    }
}

#[test]
fn number_of_frames_larger_than_the_data() {
    let mut bytes = valid_file();
    // NumberOfFrames is IS "5 " (even length); make it "9 ".
    let at = find(&bytes, &[0x28, 0x00, 0x08, 0x00, b'I', b'S', 0x02, 0x00]);
    bytes[at + 8] = b'9';
    let e = read_xa_bytes(&bytes).map(|_| ()).unwrap_err();
    assert!(matches!(e, IngestError::TooFewFrames { declared: 9, available: 5, .. }), "{e}");
    assert!(e.to_string().contains("Number of Frames (0028,0008) is 9"), "{e}");
}

#[test]
fn odd_value_length_is_rejected_by_name() {
    let mut bytes = valid_file();
    // Modality CS "XA" (length 2) becomes length 3.
    let at = find(&bytes, &[0x08, 0x00, 0x60, 0x00, b'C', b'S', 0x02, 0x00]);
    bytes[at + 6] = 3;
    let e = read_xa_bytes(&bytes).map(|_| ()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, IngestError::DataSet { .. } | IngestError::Structure { .. }), "{text}");
    assert!(text.contains("(0008,0060) has odd value length 3"), "{text}");
}

#[test]
fn colour_and_signed_pixels_are_named() {
    let mut bytes = valid_file();
    let at = find(&bytes, &[0x28, 0x00, 0x02, 0x00, b'U', b'S', 0x02, 0x00]);
    bytes[at + 8] = 3;
    let text = message(read_xa_bytes(&bytes));
    assert!(text.contains("Samples per Pixel (0028,0002) is 3"), "{text}");
    let mut bytes = valid_file();
    let at = find(&bytes, &[0x28, 0x00, 0x03, 0x01, b'U', b'S', 0x02, 0x00]);
    bytes[at + 8] = 1;
    let text = message(read_xa_bytes(&bytes));
    assert!(text.contains("Pixel Representation"), "{text}");
}

fn object_with(sop_class: &str, pixel_data: Option<DataElement<InMemDicomObject>>, transfer_syntax: &str) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(Tag(0x0008, 0x0016), VR::UI, PrimitiveValue::from(sop_class)));
    obj.put(DataElement::new(Tag(0x0008, 0x0018), VR::UI, PrimitiveValue::from("2.25.1234")));
    obj.put(DataElement::new(Tag(0x0008, 0x0060), VR::CS, PrimitiveValue::from("XA")));
    for (element, value) in
        [(0x0002u16, 1u16), (0x0010, 8), (0x0011, 8), (0x0100, 8), (0x0101, 8), (0x0102, 7), (0x0103, 0)]
    {
        obj.put(DataElement::new(Tag(0x0028, element), VR::US, PrimitiveValue::from(value)));
    }
    obj.put(DataElement::new(Tag(0x0028, 0x0004), VR::CS, PrimitiveValue::from("MONOCHROME2")));
    if let Some(p) = pixel_data {
        obj.put(p);
    }
    let file = obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(transfer_syntax)).unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

#[test]
fn missing_pixel_data_and_non_image_objects() {
    let xa = object_with("1.2.840.10008.5.1.4.1.1.12.1", None, "1.2.840.10008.1.2.1");
    let text = message(read_xa_bytes(&xa));
    assert!(text.contains("X-Ray Angiographic Image Storage") && text.contains("no Pixel Data"), "{text}");
    let sr = object_with("1.2.840.10008.5.1.4.1.1.88.11", None, "1.2.840.10008.1.2.1");
    let text = message(read_xa_bytes(&sr));
    assert!(text.contains("Basic Text SR Storage") && text.contains("not an image"), "{text}");
}

#[test]
fn unsupported_transfer_syntax_names_uid_and_name() {
    // MPEG2 Main Profile / Main Level: a registered syntax with no pixel decoder in csnav.
    let fragments = PixelFragmentSequence::new(vec![], vec![vec![0u8; 64]]);
    let pixel = DataElement::new(Tag(0x7FE0, 0x0010), VR::OB, fragments);
    let bytes = object_with("1.2.840.10008.5.1.4.1.1.12.1", Some(pixel), "1.2.840.10008.1.2.4.100");
    let e = read_xa_bytes(&bytes).map(|_| ()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, IngestError::UnsupportedTransferSyntax { .. }), "{text}");
    assert!(text.contains("1.2.840.10008.1.2.4.100") && text.contains("MPEG2"), "{text}");
}

#[test]
fn monochrome1_is_inverted_to_monochrome2_with_its_window() {
    let cine = venogram::test_pattern::angiography_pattern(10, 12, 2, 12, 5).unwrap();
    let mut spec = common::source_spec(5);
    spec.monochrome1 = true;
    spec.window = Some(venogram::VoiWindow { center: 1000.0, width: 400.0, explanation: None });
    let run = read_xa_bytes(&venogram::xa_writer::encode_xa(&cine, &spec).unwrap()).unwrap();
    assert_eq!(run.cine.format.photometric_in_file, venogram::PhotometricInterpretation::Monochrome1);
    assert_eq!(run.cine.samples(), cine.samples(), "inversion must restore the MONOCHROME2 samples");
    assert_eq!(run.cine.windows[0].center, 4095.0 - 1000.0);
    assert_eq!(run.cine.windows[0].width, 400.0);
}

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Vec<(prop::sample::Index, u8)>),
    Truncate(prop::sample::Index),
    Splice(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8).prop_map(Mutation::Flip),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Splice(i, b)),
        (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Flip(flips) => {
            for (i, b) in flips {
                let at = i.index(bytes.len());
                bytes[at] ^= b | 1;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Splice(i, extra) => {
            let at = i.index(bytes.len());
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i.index(bytes.len());
            bytes.drain(at..(at + n).min(bytes.len()));
        }
    }
    bytes
}

proptest! {
    // 4000 cases in the normal suite; set CSNAV_MUTATION_CASES for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("CSNAV_MUTATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any damage to a valid file in any committed syntax gives `Ok` or a described `Err`:
    /// never a panic, an abort or a vague message.
    #[test]
    fn damaged_files_never_panic(which in 0..FIXTURES.len(), m in mutation()) {
        let bytes = apply(fixture(FIXTURES[which]), &m);
        match read_xa_bytes(&bytes) {
            Ok(run) => prop_assert!(run.cine.frame_count() >= 1),
            Err(e) => {
                prop_assert!(!matches!(e, IngestError::ReaderPanicked { .. }), "a codec panicked: {e}");
                prop_assert!(e.to_string().len() > 15, "vague error {e}");
            }
        }
    }
}
