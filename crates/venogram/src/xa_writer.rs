//! Writing XA runs as DICOM Part 10 files (Explicit VR Little Endian, uncompressed): the
//! simulator's venograms, the bundled sample and the conformance tests' source objects.
//! Writes the XA Image IOD's mandatory modules (PS3.3 A.14) with pseudonymous, empty patient
//! attributes; transcoding to compressed syntaxes is left to dcmtk/pydicom or a PACS.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

use crate::acquisition::PositionerGeometry;
use crate::cine::{Cine, PhotometricInterpretation, VoiWindow};
use crate::transfer_syntax::EXPLICIT_VR_LITTLE_ENDIAN;

/// SOP Class UID of X-Ray Angiographic Image Storage.
pub const XA_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.12.1";
/// csnav's implementation class UID (a UUID-derived `2.25` UID, PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.207341815338458238012870123462781962021";
/// csnav's implementation version name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = "CSNAV_0_1";

/// What to write besides the pixels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XaWriteSpec {
    /// Positioner attributes; each `Some` is written.
    pub positioner: PositionerGeometry,
    /// Frame Time (0018,1063), ms; written with the Frame Increment Pointer for multi-frame runs.
    pub frame_time_ms: Option<f64>,
    /// Cine Rate (0018,0040), frames per second.
    pub cine_rate_hz: Option<u32>,
    /// Zero-based frames at R waves, written as R Wave Pointer (1-based frame numbers).
    pub r_wave_frame_indices: Vec<u32>,
    /// A VOI window to suggest.
    pub window: Option<VoiWindow>,
    /// Seed for the generated series and instance UIDs, so a spec writes the same UIDs every time.
    pub uid_seed: u64,
    /// Seed for the Study Instance UID when runs share a study (e.g. two views of one
    /// patient); `None` derives it from `uid_seed`.
    pub study_uid_seed: Option<u64>,

    /// Write the samples as MONOCHROME1 (inverted) instead of MONOCHROME2.
    pub monochrome1: bool,
}

/// Why an XA object could not be written.
#[derive(Debug, thiserror::Error)]
pub enum XaWriteError {
    /// dicom-rs refused to build the file meta group.
    #[error("building the file meta information failed: {0}")]
    Meta(String),
    /// Serialising the data set failed.
    #[error("writing the data set failed: {0}")]
    Encode(String),
    /// Writing the file failed.
    #[error("writing {path} failed: {source}")]
    Io {
        /// Destination.
        path: std::path::PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// A UID under the `2.25` root from a seed and a role, deterministic (`SplitMix64` mixing).
#[must_use]
pub fn derived_uid(seed: u64, role: u64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let hi = mix(seed ^ role.rotate_left(32));
    let lo = mix(hi ^ role);
    // Top bit cleared so the decimal form of the 128-bit value stays within 39 digits.
    let value = (u128::from(hi & (u64::MAX >> 1)) << 64) | u128::from(lo);
    format!("2.25.{value}")
}

/// One DS value: the shortest decimal of at most 16 characters (PS3.5 6.2) that keeps as
/// many significant digits as fit.
pub(crate) fn ds_text(v: f64) -> String {
    let plain = format!("{v}");
    if plain.len() <= 16 {
        return plain;
    }
    (0..=15usize)
        .rev()
        .map(|precision| {
            let text = format!("{v:.precision$}");
            if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
        })
        .find(|text| text.len() <= 16)
        .unwrap_or_else(|| format!("{v:.6e}"))
}

fn ds(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::from(values.iter().map(|&v| ds_text(v)).collect::<Vec<_>>().join("\\"))
}

/// X-Ray Acquisition, XA Positioner and Cine attributes.
fn put_acquisition(put: &mut impl FnMut(u16, u16, VR, PrimitiveValue), spec: &XaWriteSpec) {
    if let Some(rate) = spec.cine_rate_hz {
        put(0x0018, 0x0040, VR::IS, PrimitiveValue::from(rate.to_string()));
    }
    // X-Ray Acquisition exposure attributes, type 2C for XA: present, empty when unknown.
    put(0x0018, 0x1150, VR::IS, PrimitiveValue::Empty); // Exposure Time
    put(0x0018, 0x1151, VR::IS, PrimitiveValue::Empty); // X-Ray Tube Current
    put(0x0018, 0x1152, VR::IS, PrimitiveValue::Empty); // Exposure
    let p = &spec.positioner;
    if let Some(v) = p.distance_source_to_detector_mm {
        put(0x0018, 0x1110, VR::DS, ds(&[v]));
    }
    if let Some(v) = p.distance_source_to_patient_mm {
        put(0x0018, 0x1111, VR::DS, ds(&[v]));
    }
    if let Some(v) = p.estimated_radiographic_magnification_factor {
        put(0x0018, 0x1114, VR::DS, ds(&[v]));
    }
    if let Some(ft) = spec.frame_time_ms {
        put(0x0018, 0x1063, VR::DS, ds(&[ft]));
    }
    if let Some(v) = p.imager_pixel_spacing_mm {
        put(0x0018, 0x1164, VR::DS, ds(&v));
    }
    put(0x0018, 0x1155, VR::CS, PrimitiveValue::from("GR")); // Radiation Setting, type 1
    put(0x0018, 0x1500, VR::CS, PrimitiveValue::from(p.positioner_motion.clone().unwrap_or_else(|| "STATIC".into())));
    if let Some(v) = p.positioner_primary_angle_deg {
        put(0x0018, 0x1510, VR::DS, ds(&[v]));
    }
    if let Some(v) = p.positioner_secondary_angle_deg {
        put(0x0018, 0x1511, VR::DS, ds(&[v]));
    }
}

/// Encodes a cine as the bytes of an XA DICOM Part 10 file.
pub fn encode_xa(cine: &Cine, spec: &XaWriteSpec) -> Result<Vec<u8>, XaWriteError> {
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |group: u16, element: u16, vr: VR, value: PrimitiveValue| {
        obj.put(DataElement::new(Tag(group, element), vr, value));
    };
    let sop_instance_uid = derived_uid(spec.uid_seed, 3);
    put(0x0008, 0x0008, VR::CS, PrimitiveValue::from("ORIGINAL\\PRIMARY\\SINGLE PLANE"));
    put(0x0008, 0x0016, VR::UI, PrimitiveValue::from(XA_IMAGE_STORAGE));
    put(0x0008, 0x0018, VR::UI, PrimitiveValue::from(sop_instance_uid.as_str()));
    put(0x0008, 0x0020, VR::DA, PrimitiveValue::Empty);
    put(0x0008, 0x0030, VR::TM, PrimitiveValue::Empty);
    put(0x0008, 0x0050, VR::SH, PrimitiveValue::Empty);
    put(0x0008, 0x0060, VR::CS, PrimitiveValue::from("XA"));
    put(0x0008, 0x0070, VR::LO, PrimitiveValue::from("csnav"));
    put(0x0008, 0x0090, VR::PN, PrimitiveValue::Empty);
    // Patient module, type 2: present and empty; synthetic runs carry no identity.
    put(0x0010, 0x0010, VR::PN, PrimitiveValue::Empty);
    put(0x0010, 0x0020, VR::LO, PrimitiveValue::Empty);
    put(0x0010, 0x0030, VR::DA, PrimitiveValue::Empty);
    put(0x0010, 0x0040, VR::CS, PrimitiveValue::Empty);
    put(0x0018, 0x0060, VR::DS, PrimitiveValue::Empty); // KVP, type 2
    put_acquisition(&mut put, spec);
    put(0x0020, 0x000D, VR::UI, PrimitiveValue::from(derived_uid(spec.study_uid_seed.unwrap_or(spec.uid_seed), 1)));
    put(0x0020, 0x000E, VR::UI, PrimitiveValue::from(derived_uid(spec.uid_seed, 2)));
    put(0x0020, 0x0010, VR::SH, PrimitiveValue::Empty);
    put(0x0020, 0x0011, VR::IS, PrimitiveValue::from("1"));
    put(0x0020, 0x0013, VR::IS, PrimitiveValue::from("1"));
    put(0x0020, 0x0020, VR::CS, PrimitiveValue::Empty); // Patient Orientation, type 2C
    put(0x0020, 0x0060, VR::CS, PrimitiveValue::Empty); // Laterality, type 2C (unpaired body part)
    put(0x0028, 0x0002, VR::US, PrimitiveValue::from(1_u16));
    let photometric =
        if spec.monochrome1 { PhotometricInterpretation::Monochrome1 } else { PhotometricInterpretation::Monochrome2 };
    put(0x0028, 0x0004, VR::CS, PrimitiveValue::from(photometric.as_dicom()));
    if cine.frame_count() > 1 {
        put(0x0028, 0x0008, VR::IS, PrimitiveValue::from(cine.frame_count().to_string()));
        put(0x0028, 0x0009, VR::AT, PrimitiveValue::Tags([Tag(0x0018, 0x1063)].into_iter().collect()));
    }
    put(0x0028, 0x0010, VR::US, PrimitiveValue::from(cine.rows() as u16));
    put(0x0028, 0x0011, VR::US, PrimitiveValue::from(cine.columns() as u16));
    if let Some(v) = spec.positioner.pixel_spacing_mm {
        put(0x0028, 0x0030, VR::DS, ds(&v));
    }
    let format = cine.format;
    put(0x0028, 0x0100, VR::US, PrimitiveValue::from(format.bits_allocated));
    put(0x0028, 0x0101, VR::US, PrimitiveValue::from(format.bits_stored));
    put(0x0028, 0x0102, VR::US, PrimitiveValue::from(format.bits_stored - 1));
    put(0x0028, 0x0103, VR::US, PrimitiveValue::from(0_u16));
    put(0x0028, 0x1040, VR::CS, PrimitiveValue::from("LIN"));
    if let Some(w) = &spec.window {
        put(0x0028, 0x1050, VR::DS, ds(&[w.center]));
        put(0x0028, 0x1051, VR::DS, ds(&[w.width]));
    }
    if !spec.r_wave_frame_indices.is_empty() {
        let numbers: Vec<u16> = spec.r_wave_frame_indices.iter().map(|&i| (i + 1) as u16).collect();
        put(0x0028, 0x6040, VR::US, PrimitiveValue::U16(numbers.into_iter().collect()));
    }
    let max = format.max_stored_value();
    let stored = |s: u16| if spec.monochrome1 { max - s.min(max) } else { s };
    if format.bits_allocated == 8 {
        let mut bytes: Vec<u8> = cine.samples().iter().map(|&s| stored(s) as u8).collect();
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        put(0x7FE0, 0x0010, VR::OB, PrimitiveValue::U8(bytes.into_iter().collect()));
    } else {
        let words: Vec<u16> = cine.samples().iter().map(|&s| stored(s)).collect();
        put(0x7FE0, 0x0010, VR::OW, PrimitiveValue::U16(words.into_iter().collect()));
    }

    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| XaWriteError::Meta(e.to_string()))?;
    let mut out = Vec::new();
    file.write_all(&mut out).map_err(|e| XaWriteError::Encode(e.to_string()))?;
    Ok(out)
}

/// Writes a cine as an XA DICOM file, atomically (a temporary file renamed into place).
pub fn write_xa_file(path: &std::path::Path, cine: &Cine, spec: &XaWriteSpec) -> Result<(), XaWriteError> {
    write_file_atomically(path, &encode_xa(cine, spec)?)
}

/// Writes a file's bytes atomically: into a sibling `.partial` file, renamed into place.
pub fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), XaWriteError> {
    let io = |source| XaWriteError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("dcm.partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_values_fit_sixteen_characters() {
        assert_eq!(ds_text(1100.0), "1100");
        assert_eq!(ds_text(0.154), "0.154");
        assert_eq!(ds_text(1100.0 / 780.0), "1.41025641025641");
        assert_eq!(ds_text(-12.25), "-12.25");
        assert!(ds_text(1.0e300).len() <= 16);
    }

    #[test]
    fn derived_uids_are_valid_and_stable() {
        let uid = derived_uid(7, 3);
        assert_eq!(uid, derived_uid(7, 3));
        assert_ne!(uid, derived_uid(7, 2));
        assert!(uid.len() <= 64 && uid.starts_with("2.25.") && !uid[5..].starts_with('0'));
        assert!(uid[5..].bytes().all(|b| b.is_ascii_digit()));
    }
}
