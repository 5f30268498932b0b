//! Results sent back to the PACS: the labelled overlay as a Secondary Capture image (PS3.3
//! A.8.1) and the branch measurements as a Comprehensive SR document (PS3.3 A.35.3), both in
//! the source run's study, with the source run's patient and study attributes, and both
//! referencing the segmented frame of the source run (the SR also the overlay).
//!
//! The SR is a plain Comprehensive SR tree, not a claimed template: a title (LOINC 18748-4),
//! the source frame (DCM 121112 "Source of Measurement"), the overlay (DCM 121200 "Illustration
//! of ROI"), and one measurement group (DCM 125007) per branch with its name (a `99CSNAV`
//! code: csnav's private scheme, declared in the Coding Scheme Identification Sequence), its
//! length (SCT 410668003) and mean and minimum diameter (SCT 81827009 with the derivation
//! SCT 373098007 "Mean" / 255605001 "Minimum"), in mm at the isocentre when the pixel spacing
//! is known, in pixels otherwise; tortuosity and takeoff angle with private codes.

use std::path::Path;

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject, OpenFileOptions};

use crate::attributes::{self, Attribute, Attributes};
use crate::labels::VeinLabel;
use crate::segment::overlay::RgbImage;
use crate::segment::tree::TreeBranch;
use crate::transfer_syntax::EXPLICIT_VR_LITTLE_ENDIAN;
use crate::xa_writer::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, derived_uid, ds_text};

/// SOP Class UID of Secondary Capture Image Storage.
pub const SECONDARY_CAPTURE_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7";
/// SOP Class UID of Comprehensive SR Storage.
pub const COMPREHENSIVE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.33";
/// csnav's private coding scheme designator (PS3.3 8.1: private schemes start with "99").
pub const CODING_SCHEME: &str = "99CSNAV";
/// Series Number of the overlay series.
const OVERLAY_SERIES_NUMBER: &str = "9901";
/// Series Number of the report series.
const REPORT_SERIES_NUMBER: &str = "9902";
/// Said in every exported object.
const RESEARCH_NOTICE: &str = "csnav research software: not a medical device, not for clinical use";

/// Patient and study attributes copied from the source run into every result (Patient,
/// General Study and Patient Study modules).
const COPIED: &[(Tag, VR)] = &[
    (tags::SPECIFIC_CHARACTER_SET, VR::CS),
    (tags::PATIENT_NAME, VR::PN),
    (tags::PATIENT_ID, VR::LO),
    (tags::ISSUER_OF_PATIENT_ID, VR::LO),
    (tags::PATIENT_BIRTH_DATE, VR::DA),
    (tags::PATIENT_SEX, VR::CS),
    (tags::PATIENT_AGE, VR::AS),
    (tags::PATIENT_SIZE, VR::DS),
    (tags::PATIENT_WEIGHT, VR::DS),
    (tags::STUDY_INSTANCE_UID, VR::UI),
    (tags::STUDY_DATE, VR::DA),
    (tags::STUDY_TIME, VR::TM),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
    (tags::STUDY_ID, VR::SH),
    (tags::ACCESSION_NUMBER, VR::SH),
    (tags::STUDY_DESCRIPTION, VR::LO),
];

/// Attributes of type 2 in the copied modules: written empty when the source lacks them.
const TYPE_2: &[Tag] = &[
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
];

/// Why the results could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The source run could not be read.
    #[error("cannot read the source run {path}: {reason}")]
    Source {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The source lacks an attribute the references need (its keyword).
    #[error("the source run has no {0}: results could not reference it")]
    MissingInSource(&'static str),
    /// The overlay does not match the frame.
    #[error("the overlay is {got_w}x{got_h} with {bytes} bytes; an RGB image of {got_w}x{got_h} needs {needed}")]
    BadOverlay {
        /// Its width.
        got_w: usize,
        /// Its height.
        got_h: usize,
        /// Its byte count.
        bytes: usize,
        /// The byte count it should have.
        needed: usize,
    },
    /// dicom-rs refused to build the object.
    #[error("building the {what} failed: {reason}")]
    Build {
        /// Which object.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// The source run as the results reference it: its patient and study attributes and the
/// frame segmented.
#[derive(Debug, Clone)]
pub struct ExportSource {
    copied: Vec<DataElement<InMemDicomObject>>,
    /// SOP Class UID of the source run.
    pub sop_class_uid: String,
    /// SOP Instance UID of the source run.
    pub sop_instance_uid: String,
    /// Study Instance UID (the results go into this study).
    pub study_instance_uid: String,
    /// Series Instance UID of the source run.
    pub series_instance_uid: String,
    /// The segmented frame, 1-based (Referenced Frame Number).
    pub frame_number: u32,
}

impl ExportSource {
    /// Reads the source run's header (not its pixels); `frame_index` is the zero-based frame
    /// the results were made from.
    pub fn read(path: &Path, frame_index: u32) -> Result<Self, ExportError> {
        let file = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| ExportError::Source { path: path.to_owned(), reason: e.to_string() })?;
        let obj: &InMemDicomObject = &file;
        let copied = COPIED
            .iter()
            .filter_map(|(tag, _)| obj.element(*tag).ok().cloned())
            .filter(|e| e.header().vr != VR::SQ)
            .collect();
        let read = Attributes::new(obj);
        let need = |attribute: Attribute| read.string(attribute).ok_or(ExportError::MissingInSource(attribute.keyword));
        Ok(Self {
            copied,
            sop_class_uid: need(attributes::SOP_CLASS_UID)?,
            sop_instance_uid: need(attributes::SOP_INSTANCE_UID)?,
            study_instance_uid: need(attributes::STUDY_INSTANCE_UID)?,
            series_instance_uid: need(attributes::SERIES_INSTANCE_UID)?,
            frame_number: frame_index + 1,
        })
    }

    /// Patient and study attributes, the type-2 ones empty when the source lacks them.
    fn put_patient_and_study(&self, obj: &mut InMemDicomObject) {
        for (tag, vr) in COPIED {
            if TYPE_2.contains(tag) {
                obj.put(DataElement::new(*tag, *vr, PrimitiveValue::Empty));
            }
        }
        for e in &self.copied {
            obj.put(e.clone());
        }
    }

    /// A Referenced SOP item naming the segmented frame of the source run.
    fn frame_reference(&self) -> InMemDicomObject {
        let mut item = sop_reference(&self.sop_class_uid, &self.sop_instance_uid);
        item.put(str_element(tags::REFERENCED_FRAME_NUMBER, VR::IS, &self.frame_number.to_string()));
        item
    }
}

/// When the results were made and how their UIDs are derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportStamp {
    /// Content Date, `YYYYMMDD`.
    pub date: String,
    /// Content Time, `HHMMSS`.
    pub time: String,
    /// Seed of the new series and instance UIDs (a different seed for every export).
    pub uid_seed: u64,
}

/// The UIDs an export creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportUids {
    /// The overlay's series.
    pub overlay_series: String,
    /// The overlay's SOP instance.
    pub overlay_instance: String,
    /// The report's series.
    pub report_series: String,
    /// The report's SOP instance.
    pub report_instance: String,
}

impl ExportStamp {
    /// The four new UIDs, derived from the seed.
    #[must_use]
    pub fn uids(&self) -> ExportUids {
        ExportUids {
            overlay_series: derived_uid(self.uid_seed, 0x5C01),
            overlay_instance: derived_uid(self.uid_seed, 0x5C02),
            report_series: derived_uid(self.uid_seed, 0x5201),
            report_instance: derived_uid(self.uid_seed, 0x5202),
        }
    }
}

/// A string element, padded by dicom-rs on writing.
fn str_element(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn sop_reference(class: &str, instance: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        str_element(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class),
        str_element(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance),
    ])
}

/// A coded concept (Code Value, Coding Scheme Designator, Code Meaning).
fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        str_element(tags::CODE_VALUE, VR::SH, value),
        str_element(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        str_element(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// SOP Common, General Equipment and the series attributes every result shares.
fn common(
    source: &ExportSource,
    stamp: &ExportStamp,
    sop_class: &str,
    instance: &str,
    series: &str,
    modality: &str,
) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    source.put_patient_and_study(&mut obj);
    for e in [
        str_element(tags::SOP_CLASS_UID, VR::UI, sop_class),
        str_element(tags::SOP_INSTANCE_UID, VR::UI, instance),
        str_element(tags::INSTANCE_CREATION_DATE, VR::DA, &stamp.date),
        str_element(tags::INSTANCE_CREATION_TIME, VR::TM, &stamp.time),
        str_element(tags::CONTENT_DATE, VR::DA, &stamp.date),
        str_element(tags::CONTENT_TIME, VR::TM, &stamp.time),
        str_element(tags::MODALITY, VR::CS, modality),
        str_element(tags::SERIES_INSTANCE_UID, VR::UI, series),
        str_element(tags::INSTANCE_NUMBER, VR::IS, "1"),
        str_element(tags::MANUFACTURER, VR::LO, "csnav (research software)"),
        str_element(tags::SOFTWARE_VERSIONS, VR::LO, env!("CARGO_PKG_VERSION")),
    ] {
        obj.put(e);
    }
    obj
}

fn to_file(obj: InMemDicomObject, what: &'static str) -> Result<FileDicomObject<InMemDicomObject>, ExportError> {
    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN)
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
    )
    .map_err(|e| ExportError::Build { what, reason: e.to_string() })
}

/// The labelled overlay as a Secondary Capture image (RGB, burned-in annotation) in the
/// source's study, derived from the segmented frame (Source Image Sequence).
pub fn secondary_capture(
    source: &ExportSource,
    overlay: &RgbImage,
    stamp: &ExportStamp,
) -> Result<FileDicomObject<InMemDicomObject>, ExportError> {
    let needed = overlay.width * overlay.height * 3;
    let (Ok(rows), Ok(columns)) = (u16::try_from(overlay.height), u16::try_from(overlay.width)) else {
        return Err(ExportError::BadOverlay {
            got_w: overlay.width,
            got_h: overlay.height,
            bytes: overlay.data.len(),
            needed,
        });
    };
    if overlay.data.len() != needed || needed == 0 {
        return Err(ExportError::BadOverlay {
            got_w: overlay.width,
            got_h: overlay.height,
            bytes: overlay.data.len(),
            needed,
        });
    }
    let uids = stamp.uids();
    let mut obj =
        common(source, stamp, SECONDARY_CAPTURE_IMAGE_STORAGE, &uids.overlay_instance, &uids.overlay_series, "OT");
    let mut pixels = overlay.data.clone();
    if pixels.len() % 2 == 1 {
        pixels.push(0);
    }
    for e in [
        str_element(tags::SERIES_NUMBER, VR::IS, OVERLAY_SERIES_NUMBER),
        str_element(tags::SERIES_DESCRIPTION, VR::LO, "csnav CS branch tree overlay"),
        str_element(tags::CONVERSION_TYPE, VR::CS, "WSD"),
        str_element(tags::PATIENT_ORIENTATION, VR::CS, ""),
        str_element(tags::BODY_PART_EXAMINED, VR::CS, "HEART"),
        str_element(tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY"),
        str_element(
            tags::DERIVATION_DESCRIPTION,
            VR::ST,
            "Coronary sinus branch tree segmented by csnav, drawn over the source frame",
        ),
        str_element(tags::BURNED_IN_ANNOTATION, VR::CS, "YES"),
        str_element(tags::IMAGE_COMMENTS, VR::LT, RESEARCH_NOTICE),
        str_element(tags::DATE_OF_SECONDARY_CAPTURE, VR::DA, &stamp.date),
        str_element(tags::TIME_OF_SECONDARY_CAPTURE, VR::TM, &stamp.time),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(3u16)),
        str_element(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB"),
        DataElement::new(tags::PLANAR_CONFIGURATION, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(rows)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(columns)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7u16)),
        DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(pixels.into())),
    ] {
        obj.put(e);
    }
    let mut derived_from = source.frame_reference();
    derived_from.put(sequence(
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![code("121322", "DCM", "Source image for image processing operation")],
    ));
    obj.put(sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![derived_from]));
    to_file(obj, "overlay Secondary Capture")
}

/// One SR content item: relationship, value type and concept name.
fn content_item(relationship: &str, value_type: &str, concept: InMemDicomObject) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        str_element(tags::RELATIONSHIP_TYPE, VR::CS, relationship),
        str_element(tags::VALUE_TYPE, VR::CS, value_type),
        sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![concept]),
    ])
}

fn text_item(concept: InMemDicomObject, text: &str) -> InMemDicomObject {
    let mut item = content_item("CONTAINS", "TEXT", concept);
    item.put(str_element(tags::TEXT_VALUE, VR::UT, text));
    item
}

fn code_item(relationship: &str, concept: InMemDicomObject, value: InMemDicomObject) -> InMemDicomObject {
    let mut item = content_item(relationship, "CODE", concept);
    item.put(sequence(tags::CONCEPT_CODE_SEQUENCE, vec![value]));
    item
}

fn image_item(concept: InMemDicomObject, reference: InMemDicomObject) -> InMemDicomObject {
    let mut item = content_item("CONTAINS", "IMAGE", concept);
    item.put(sequence(tags::REFERENCED_SOP_SEQUENCE, vec![reference]));
    item
}

/// A measurement's unit (UCUM).
#[derive(Debug, Clone, Copy)]
enum Unit {
    Millimetre,
    Pixel,
    Degree,
    Ratio,
}

impl Unit {
    fn code(self) -> InMemDicomObject {
        match self {
            Self::Millimetre => code("mm", "UCUM", "millimeter"),
            Self::Pixel => code("{pixels}", "UCUM", "pixels"),
            Self::Degree => code("deg", "UCUM", "degree"),
            Self::Ratio => code("1", "UCUM", "no units"),
        }
    }
}

/// A NUM item with the measured value and unit, and an optional derivation modifier.
fn num_item(
    concept: InMemDicomObject,
    value: f64,
    unit: Unit,
    derivation: Option<InMemDicomObject>,
) -> InMemDicomObject {
    let mut item = content_item("CONTAINS", "NUM", concept);
    let measured = InMemDicomObject::from_element_iter([
        sequence(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![unit.code()]),
        str_element(tags::NUMERIC_VALUE, VR::DS, &ds_text(value)),
    ]);
    item.put(sequence(tags::MEASURED_VALUE_SEQUENCE, vec![measured]));
    if let Some(d) = derivation {
        item.put(sequence(
            tags::CONTENT_SEQUENCE,
            vec![code_item("HAS CONCEPT MOD", code("121401", "DCM", "Derivation"), d)],
        ));
    }
    item
}

/// The label's code in csnav's scheme.
fn label_code(label: VeinLabel) -> InMemDicomObject {
    code(label.abbreviation(), CODING_SCHEME, label.name())
}

/// One branch's measurement group: name, tracking identifier, parent, length, diameters,
/// tortuosity, takeoff angle.
fn branch_group(b: &TreeBranch) -> InMemDicomObject {
    let mut children = vec![
        code_item("HAS OBS CONTEXT", code("363698007", "SCT", "Finding Site"), label_code(b.label)),
        text_item(code("112039", "DCM", "Tracking Identifier"), &format!("branch {}", b.id)),
    ];
    if let Some(parent) = b.parent {
        children.push(text_item(code("PARENT", CODING_SCHEME, "Parent branch"), &format!("branch {parent}")));
    }
    let diameter = code("81827009", "SCT", "Diameter");
    let (mean, minimum) = (code("373098007", "SCT", "Mean"), code("255605001", "SCT", "Minimum"));
    if let (Some(length), Some(mean_d), Some(min_d)) = (b.length_mm, b.mean_diameter_mm, b.min_diameter_mm) {
        children.push(num_item(code("410668003", "SCT", "Length"), length, Unit::Millimetre, None));
        children.push(num_item(diameter.clone(), mean_d, Unit::Millimetre, Some(mean)));
        children.push(num_item(diameter, min_d, Unit::Millimetre, Some(minimum)));
    } else {
        // Without a pixel spacing: pixels, the diameters from the radii.
        children.push(num_item(code("410668003", "SCT", "Length"), b.length_px, Unit::Pixel, None));
        let mean_d = 2.0 * b.radius_px.iter().sum::<f64>() / b.radius_px.len().max(1) as f64;
        let min_d = 2.0 * b.radius_px.iter().copied().fold(f64::INFINITY, f64::min);
        if min_d.is_finite() {
            children.push(num_item(diameter.clone(), mean_d, Unit::Pixel, Some(mean)));
            children.push(num_item(diameter, min_d, Unit::Pixel, Some(minimum)));
        }
    }
    children.push(num_item(
        code("TORTUOSITY", CODING_SCHEME, "Tortuosity (centerline length over end-to-end distance)"),
        b.tortuosity,
        Unit::Ratio,
        None,
    ));
    if let Some(angle) = b.takeoff_angle_deg {
        children.push(num_item(
            code("TAKEOFF", CODING_SCHEME, "Takeoff angle from the parent branch"),
            angle,
            Unit::Degree,
            None,
        ));
    }
    let mut group = content_item("CONTAINS", "CONTAINER", code("125007", "DCM", "Measurement Group"));
    group.put(str_element(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"));
    group.put(sequence(tags::CONTENT_SEQUENCE, children));
    group
}

/// The branch measurements as a Comprehensive SR document in the source's study, referencing
/// the segmented frame and the overlay (in the evidence sequence and in the content tree).
/// Lengths and diameters are in mm when the branches carry them (pixel spacing known), in
/// pixels otherwise.
pub fn measurement_report(
    source: &ExportSource,
    branches: &[TreeBranch],
    stamp: &ExportStamp,
) -> Result<FileDicomObject<InMemDicomObject>, ExportError> {
    let uids = stamp.uids();
    let mut obj = common(source, stamp, COMPREHENSIVE_SR_STORAGE, &uids.report_instance, &uids.report_series, "SR");
    for e in [
        str_element(tags::SERIES_NUMBER, VR::IS, REPORT_SERIES_NUMBER),
        str_element(tags::SERIES_DESCRIPTION, VR::LO, "csnav CS branch measurements"),
        sequence(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]),
        str_element(tags::COMPLETION_FLAG, VR::CS, "COMPLETE"),
        str_element(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED"),
        sequence(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]),
    ] {
        obj.put(e);
    }
    obj.put(sequence(
        tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            str_element(tags::CODING_SCHEME_DESIGNATOR, VR::SH, CODING_SCHEME),
            str_element(
                tags::CODING_SCHEME_NAME,
                VR::ST,
                "csnav private codes (coronary veins and branch measurements)",
            ),
            str_element(tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION, VR::ST, "csnav developers"),
        ])],
    ));
    // The evidence: the source run and the overlay, both in this study.
    let series = |uid: &str, instance: InMemDicomObject| {
        InMemDicomObject::from_element_iter([
            str_element(tags::SERIES_INSTANCE_UID, VR::UI, uid),
            sequence(tags::REFERENCED_SOP_SEQUENCE, vec![instance]),
        ])
    };
    obj.put(sequence(
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            str_element(tags::STUDY_INSTANCE_UID, VR::UI, &source.study_instance_uid),
            sequence(
                tags::REFERENCED_SERIES_SEQUENCE,
                vec![
                    series(&source.series_instance_uid, sop_reference(&source.sop_class_uid, &source.sop_instance_uid)),
                    series(
                        &uids.overlay_series,
                        sop_reference(SECONDARY_CAPTURE_IMAGE_STORAGE, &uids.overlay_instance),
                    ),
                ],
            ),
        ])],
    ));
    // The content tree.
    let mut content = vec![
        text_item(code("121106", "DCM", "Comment"), RESEARCH_NOTICE),
        image_item(code("121112", "DCM", "Source of Measurement"), source.frame_reference()),
        image_item(
            code("121200", "DCM", "Illustration of ROI"),
            sop_reference(SECONDARY_CAPTURE_IMAGE_STORAGE, &uids.overlay_instance),
        ),
    ];
    content.extend(branches.iter().map(branch_group));
    for e in [
        str_element(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
        sequence(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code("18748-4", "LN", "Diagnostic Imaging Report")]),
        str_element(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"),
        sequence(tags::CONTENT_SEQUENCE, content),
    ] {
        obj.put(e);
    }
    to_file(obj, "measurement SR")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// A string element's value without padding.
    fn trimmed(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
        obj.element(tag).ok().and_then(|e| e.to_str().ok()).map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
    }

    fn source() -> ExportSource {
        ExportSource {
            copied: vec![
                str_element(tags::PATIENT_ID, VR::LO, "SIM-7"),
                str_element(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            ],
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.12.1".into(),
            sop_instance_uid: "1.2.3.4.5".into(),
            study_instance_uid: "1.2.3".into(),
            series_instance_uid: "1.2.3.4".into(),
            frame_number: 12,
        }
    }

    fn stamp() -> ExportStamp {
        ExportStamp { date: "20261124".into(), time: "101500".into(), uid_seed: 9 }
    }

    #[test]
    fn the_overlay_is_in_the_source_study_and_references_the_segmented_frame() {
        let overlay = RgbImage { width: 4, height: 3, data: vec![7; 36] };
        let sc = secondary_capture(&source(), &overlay, &stamp()).unwrap();
        let s = |tag| trimmed(&sc, tag).unwrap();
        assert_eq!(s(tags::STUDY_INSTANCE_UID), "1.2.3");
        assert_eq!(s(tags::PATIENT_ID), "SIM-7");
        assert_eq!(s(tags::SOP_CLASS_UID), SECONDARY_CAPTURE_IMAGE_STORAGE);
        assert_ne!(s(tags::SERIES_INSTANCE_UID), "1.2.3.4", "a new series");
        let item = &sc.element(tags::SOURCE_IMAGE_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(trimmed(item, tags::REFERENCED_SOP_INSTANCE_UID).unwrap(), "1.2.3.4.5");
        assert_eq!(trimmed(item, tags::REFERENCED_FRAME_NUMBER).unwrap(), "12");
        assert!(sc.element(tags::PATIENT_NAME).is_ok(), "type 2: present even when the source has none");
    }

    #[test]
    fn an_overlay_of_the_wrong_size_is_refused() {
        let overlay = RgbImage { width: 4, height: 3, data: vec![7; 35] };
        assert!(matches!(secondary_capture(&source(), &overlay, &stamp()), Err(ExportError::BadOverlay { .. })));
    }

    #[test]
    fn every_export_has_four_distinct_uids_and_another_seed_gives_others() {
        let a = stamp().uids();
        let all = [&a.overlay_series, &a.overlay_instance, &a.report_series, &a.report_instance];
        for (i, x) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|y| x != y));
        }
        let b = ExportStamp { uid_seed: 10, ..stamp() }.uids();
        assert_ne!(a.report_instance, b.report_instance);
    }

    #[test]
    fn branch_groups_carry_the_label_and_measurements_in_mm_or_pixels() {
        let branch = TreeBranch::measured(
            3,
            Some(1),
            VeinLabel::PosterolateralVein,
            0,
            1,
            &[[0.0, 0.0], [30.0, 40.0]],
            &[2.0, 1.5],
            Some(0.2),
        );
        let group = branch_group(&branch);
        let items = group.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap().to_vec();
        let concept = |item: &InMemDicomObject| {
            let c = &item.element(tags::CONCEPT_NAME_CODE_SEQUENCE).unwrap().items().unwrap()[0];
            trimmed(c, tags::CODE_MEANING).unwrap()
        };
        let meanings: Vec<String> = items.iter().map(concept).collect();
        assert_eq!(meanings[..2], ["Finding Site".to_owned(), "Tracking Identifier".to_owned()]);
        let site = &items[0].element(tags::CONCEPT_CODE_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(trimmed(site, tags::CODE_VALUE).unwrap(), "PLV");
        let length = items.iter().find(|i| concept(i) == "Length").unwrap();
        let measured = &length.element(tags::MEASURED_VALUE_SEQUENCE).unwrap().items().unwrap()[0];
        let value: f64 = trimmed(measured, tags::NUMERIC_VALUE).unwrap().parse().unwrap();
        assert!((value - 10.0).abs() < 1e-9, "50 px at 0.2 mm/px: {value}");
        let unit = &measured.element(tags::MEASUREMENT_UNITS_CODE_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(trimmed(unit, tags::CODE_VALUE).unwrap(), "mm");
        assert_eq!(meanings.iter().filter(|m| *m == "Diameter").count(), 2, "mean and minimum");
    }
}
