//! Reading an XA run: a DICOM Part 10 file (PS3.10) into a [`Cine`] plus its acquisition
//! facts. Every failure is an [`IngestError`] that names what was wrong (the attribute, the
//! transfer syntax, the frame); nothing here panics on bad input, and a panic inside the
//! third-party parser or codecs is caught and reported as malformed input.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use dicom_core::dictionary::UidDictionary;
use dicom_core::value::Value;
use dicom_dictionary_std::StandardSopClassDictionary;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTable;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use serde::Serialize;

use crate::acquisition::XaAcquisition;
use crate::attributes::{self as attr, AttributeProblem, Attributes};
use crate::cine::{Cine, LossyCompression, PhotometricInterpretation, PixelFormat, Rescale, VoiWindow};
use crate::frames::FrameHeader;
use crate::pixels::{self, PixelError};
use crate::structure::{self, Encoding};
use crate::transfer_syntax::{self, TransferSyntaxInfo};

/// The most samples (all frames together) csnav will allocate for one run: 2^31, i.e. 4 GiB
/// of `u16`, far above any real cine (a 1024x1024 run of 300 frames is 315 M samples).
pub const MAX_SAMPLES_PER_RUN: u64 = 1 << 31;

/// Why a file could not be read as an XA run.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The path given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A directory was given where a file was expected.
    #[error("{path} is a directory, not a DICOM file")]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file has no bytes.
    #[error("{path} is empty (0 bytes)")]
    EmptyFile {
        /// The path given.
        path: PathBuf,
    },
    /// No `DICM` prefix: not a DICOM Part 10 file.
    #[error("not a DICOM Part 10 file: no 'DICM' prefix after a 128-byte preamble (or at the start) in {len} bytes")]
    NotDicom {
        /// Size of the input.
        len: usize,
    },
    /// The file meta information (group 0002) could not be read.
    #[error("malformed file meta information (group 0002): {reason}")]
    FileMeta {
        /// The parser's reason.
        reason: String,
    },
    /// An element, item or fragment declares more bytes than the file holds.
    #[error("malformed file at byte {offset}: {reason}")]
    Structure {
        /// Byte offset in the file.
        offset: usize,
        /// The element at fault and what it declares.
        reason: String,
    },
    /// A deflated data set could not be inflated.
    #[error("the deflated data set cannot be inflated: {reason}")]
    Inflate {
        /// The decompressor's reason.
        reason: String,
    },
    /// The data set could not be parsed (truncation, odd lengths, bad values...).
    #[error("malformed data set in {transfer_syntax}: {reason}")]
    DataSet {
        /// The transfer syntax the data set is encoded in.
        transfer_syntax: TransferSyntaxInfo,
        /// The parser's reason.
        reason: String,
    },
    /// The transfer syntax is unknown or its pixel data cannot be decoded.
    #[error("unsupported transfer syntax {transfer_syntax}: csnav cannot decode pixel data encoded with it")]
    UnsupportedTransferSyntax {
        /// The syntax, with its UID and name.
        transfer_syntax: TransferSyntaxInfo,
    },
    /// The object carries no Pixel Data: not an image (a report, a waveform...).
    #[error("not an image: this {sop_class} object has no Pixel Data (7FE0,0010)")]
    NotAnImage {
        /// SOP class name and UID.
        sop_class: String,
    },
    /// A required attribute is missing or malformed.
    #[error("attribute {attribute} {reason}")]
    Attribute {
        /// Keyword and tag.
        attribute: String,
        /// What was wrong.
        reason: String,
    },
    /// The image pixel description is valid DICOM but not an XA-style monochrome image.
    #[error("unsupported pixel format: {reason}")]
    UnsupportedPixelFormat {
        /// What is unsupported.
        reason: String,
    },
    /// The declared size is beyond [`MAX_SAMPLES_PER_RUN`].
    #[error("{frames} frames of {columns}x{rows} exceed the limit of {MAX_SAMPLES_PER_RUN} samples per run")]
    TooLarge {
        /// Number of Frames.
        frames: u32,
        /// Rows.
        rows: u32,
        /// Columns.
        columns: u32,
    },
    /// Number of Frames promises more frames than native pixel data holds.
    #[error(
        "Number of Frames (0028,0008) is {declared} but the pixel data ({bytes} bytes) holds only {available} complete frames"
    )]
    TooFewFrames {
        /// Number of Frames.
        declared: u32,
        /// Complete frames present.
        available: u32,
        /// Size of the pixel data.
        bytes: usize,
    },
    /// Number of Frames promises more frames than there are encapsulated fragments.
    #[error(
        "Number of Frames (0028,0008) is {declared} but the encapsulated pixel data has only {fragments} fragments"
    )]
    TooFewFragments {
        /// Number of Frames.
        declared: u32,
        /// Fragments present.
        fragments: usize,
    },
    /// A frame failed to decode.
    #[error("decoding frame {frame_number} of {frames} ({transfer_syntax}) failed: {reason}")]
    Decode {
        /// 1-based frame number, as DICOM counts frames.
        frame_number: u32,
        /// Number of frames.
        frames: u32,
        /// The transfer syntax.
        transfer_syntax: TransferSyntaxInfo,
        /// The codec's reason.
        reason: String,
    },
    /// The pixel data element has an unexpected structure.
    #[error("malformed Pixel Data (7FE0,0010): {reason}")]
    PixelLayout {
        /// What was wrong.
        reason: String,
    },
    /// The third-party parser or a codec panicked: the input is malformed in a way it did
    /// not anticipate.
    #[error("the DICOM reader failed unexpectedly while {step}; the input is malformed")]
    ReaderPanicked {
        /// What was being done.
        step: &'static str,
    },
}

impl From<AttributeProblem> for IngestError {
    fn from(p: AttributeProblem) -> Self {
        Self::Attribute { attribute: p.attribute.to_string(), reason: p.reason }
    }
}

/// One decoded XA run: pixels, acquisition facts, and what was noticed on the way.
#[derive(Debug, Clone, Serialize)]
pub struct XaRun {
    /// Transfer syntax of the file.
    pub transfer_syntax: TransferSyntaxInfo,
    /// The frames, MONOCHROME2 convention.
    #[serde(skip)]
    pub cine: Cine,
    /// Positioner, timing and identity.
    pub acquisition: XaAcquisition,
    /// Non-fatal problems (ignored malformed optional attributes...), for the user to see.
    pub warnings: Vec<String>,
    /// Size of the encoded input, bytes.
    pub encoded_size_bytes: usize,
}

impl XaRun {
    /// SOP class as `name (uid)`, or `unknown SOP class`.
    #[must_use]
    pub fn sop_class_description(&self) -> String {
        sop_class_description(self.acquisition.identity.sop_class_uid.as_deref())
    }
}

fn sop_class_description(uid: Option<&str>) -> String {
    match uid {
        Some(uid) => match StandardSopClassDictionary.by_uid(uid) {
            Some(entry) => format!("{} ({uid})", entry.name),
            None => format!("unregistered SOP class ({uid})"),
        },
        None => "unknown SOP class".to_owned(),
    }
}

/// Reads and decodes an XA run from a file.
pub fn read_xa_file(path: &Path) -> Result<XaRun, IngestError> {
    let metadata = std::fs::metadata(path).map_err(|source| IngestError::ReadFile { path: path.to_owned(), source })?;
    if metadata.is_dir() {
        return Err(IngestError::IsDirectory { path: path.to_owned() });
    }
    let bytes = std::fs::read(path).map_err(|source| IngestError::ReadFile { path: path.to_owned(), source })?;
    if bytes.is_empty() {
        return Err(IngestError::EmptyFile { path: path.to_owned() });
    }
    read_xa_bytes(&bytes)
}

/// Reads and decodes an XA run from the bytes of a DICOM Part 10 file (preamble optional).
pub fn read_xa_bytes(bytes: &[u8]) -> Result<XaRun, IngestError> {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        128
    } else if bytes.get(..4) == Some(b"DICM") {
        0
    } else {
        return Err(IngestError::NotDicom { len: bytes.len() });
    };
    let part10 = &bytes[start..];

    let structure_error =
        |p: structure::StructureProblem| IngestError::Structure { offset: p.offset, reason: p.reason };
    let data_start = structure::data_set_offset(part10, start).map_err(structure_error)?;
    let meta = guarded("reading the file meta information", || FileMetaTable::from_reader(part10))?
        .map_err(|e| IngestError::FileMeta { reason: pixels::error_chain(&e) })?;
    let transfer_syntax = TransferSyntaxInfo::from_uid(meta.transfer_syntax());
    if !transfer_syntax.decodable {
        return Err(IngestError::UnsupportedTransferSyntax { transfer_syntax });
    }

    let encoded = &part10[data_start..];
    let deflated = transfer_syntax.uid == transfer_syntax::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN;
    let (data_set, parse_uid, encoding) = match transfer_syntax.uid.as_str() {
        transfer_syntax::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => (
            Cow::Owned(inflate(encoded)?),
            transfer_syntax::EXPLICIT_VR_LITTLE_ENDIAN,
            Encoding { explicit_vr: true, big_endian: false },
        ),
        transfer_syntax::IMPLICIT_VR_LITTLE_ENDIAN => {
            (Cow::Borrowed(encoded), transfer_syntax.uid.as_str(), Encoding { explicit_vr: false, big_endian: false })
        }
        transfer_syntax::EXPLICIT_VR_BIG_ENDIAN => {
            (Cow::Borrowed(encoded), transfer_syntax.uid.as_str(), Encoding { explicit_vr: true, big_endian: true })
        }
        _ => (Cow::Borrowed(encoded), transfer_syntax.uid.as_str(), Encoding { explicit_vr: true, big_endian: false }),
    };
    structure::check_data_set(&data_set, if deflated { 0 } else { start + data_start }, encoding).map_err(|p| {
        if deflated {
            IngestError::Structure {
                offset: p.offset,
                reason: format!("{} (offset within the inflated data set)", p.reason),
            }
        } else {
            structure_error(p)
        }
    })?;
    let parse_ts = TransferSyntaxRegistry
        .get(parse_uid)
        .ok_or_else(|| IngestError::UnsupportedTransferSyntax { transfer_syntax: transfer_syntax.clone() })?;
    let obj =
        guarded("parsing the data set", || InMemDicomObject::read_dataset_with_ts(&data_set[..], parse_ts))?.map_err(
            |e| IngestError::DataSet { transfer_syntax: transfer_syntax.clone(), reason: pixels::error_chain(&e) },
        )?;
    drop(data_set);

    let meta_sop_class =
        Some(meta.media_storage_sop_class_uid().trim_end_matches(['\0', ' ']).to_owned()).filter(|s| !s.is_empty());
    let attrs = Attributes::new(&obj);
    if !attrs.has(attr::PIXEL_DATA) {
        let uid = attrs.string(attr::SOP_CLASS_UID).or(meta_sop_class);
        return Err(IngestError::NotAnImage { sop_class: sop_class_description(uid.as_deref()) });
    }

    let layout = ImageLayout::read(&attrs)?;
    let mut cine = decode_cine(&obj, &layout, &transfer_syntax)?;
    let mut warnings = Vec::new();
    cine.rescale = read_rescale(&attrs, &mut warnings);
    cine.windows = read_windows(&attrs, &mut warnings);
    cine.lossy_compression = read_lossy_compression(&attrs, &transfer_syntax, &mut warnings);
    cine.pixel_intensity_relationship = attrs.string(attr::PIXEL_INTENSITY_RELATIONSHIP);
    if cine.pixel_intensity_relationship.as_deref() == Some("DISP") {
        warnings.push(
            "Pixel Intensity Relationship (0028,1040) is DISP: sample values were mapped for display \
             (e.g. rescaled by a compressor) and are not proportional to X-ray intensity"
                .to_owned(),
        );
    }
    if layout.format.photometric_in_file == PhotometricInterpretation::Monochrome1 {
        invert_monochrome1(&mut cine);
    }
    let acquisition = XaAcquisition::read(Attributes::new(&obj), meta_sop_class, layout.frames, &mut warnings);
    for w in &warnings {
        tracing::debug!(warning = %w, "XA attribute problem");
    }
    tracing::debug!(
        transfer_syntax = %transfer_syntax,
        frames = cine.frame_count(),
        rows = cine.rows(),
        columns = cine.columns(),
        bits_stored = cine.format.bits_stored,
        "decoded XA run"
    );
    Ok(XaRun { transfer_syntax, cine, acquisition, warnings, encoded_size_bytes: bytes.len() })
}

/// The most bytes a deflated data set may inflate to: the largest run csnav accepts plus
/// room for its attributes. Beyond it the file is a decompression bomb or corrupt.
const MAX_INFLATED_BYTES: u64 = 2 * MAX_SAMPLES_PER_RUN + (64 << 20);

/// Inflates a Deflated Explicit VR Little Endian data set (PS3.5 A.5: raw RFC 1951 deflate).
fn inflate(deflated: &[u8]) -> Result<Vec<u8>, IngestError> {
    use std::io::Read as _;
    let mut inflated = Vec::with_capacity(deflated.len().saturating_mul(4));
    flate2::read::DeflateDecoder::new(deflated)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| IngestError::Inflate { reason: e.to_string() })?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(IngestError::Inflate { reason: format!("inflates to more than {MAX_INFLATED_BYTES} bytes") });
    }
    Ok(inflated)
}

/// Runs third-party parsing/decoding, turning a panic into [`IngestError::ReaderPanicked`].
fn guarded<T>(step: &'static str, f: impl FnOnce() -> T) -> Result<T, IngestError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| IngestError::ReaderPanicked { step })
}

/// The Image Pixel module (PS3.3 C.7.6.3) as csnav accepts it.
struct ImageLayout {
    rows: u32,
    columns: u32,
    frames: u32,
    format: PixelFormat,
}

impl ImageLayout {
    fn read(attrs: &Attributes<'_>) -> Result<Self, IngestError> {
        let unsupported = |reason: String| IngestError::UnsupportedPixelFormat { reason };
        let samples_per_pixel: u16 = attrs.integer(attr::SAMPLES_PER_PIXEL)?.unwrap_or(1);
        if samples_per_pixel != 1 {
            return Err(unsupported(format!(
                "Samples per Pixel (0028,0002) is {samples_per_pixel}; X-ray angiography images are monochrome (1)"
            )));
        }
        let photometric = match attrs.string(attr::PHOTOMETRIC_INTERPRETATION).as_deref() {
            Some("MONOCHROME2") => PhotometricInterpretation::Monochrome2,
            Some("MONOCHROME1") => PhotometricInterpretation::Monochrome1,
            Some(other) => {
                return Err(unsupported(format!(
                    "Photometric Interpretation (0028,0004) {other}; only MONOCHROME1 and MONOCHROME2 are supported"
                )));
            }
            None => {
                return Err(IngestError::Attribute {
                    attribute: attr::PHOTOMETRIC_INTERPRETATION.to_string(),
                    reason: "is missing or empty".into(),
                });
            }
        };
        let rows: u16 = attrs.required_integer(attr::ROWS)?;
        let columns: u16 = attrs.required_integer(attr::COLUMNS)?;
        let bits_allocated: u16 = attrs.required_integer(attr::BITS_ALLOCATED)?;
        let bits_stored: u16 = attrs.required_integer(attr::BITS_STORED)?;
        let high_bit: u16 = attrs.integer(attr::HIGH_BIT)?.unwrap_or(bits_stored.saturating_sub(1));
        let pixel_representation: u16 = attrs.integer(attr::PIXEL_REPRESENTATION)?.unwrap_or(0);
        let frames: i64 = attrs.integer(attr::NUMBER_OF_FRAMES)?.unwrap_or(1);

        if rows == 0 || columns == 0 {
            return Err(unsupported(format!("image size {columns}x{rows} has no pixels")));
        }
        if bits_allocated != 8 && bits_allocated != 16 {
            return Err(unsupported(format!("Bits Allocated (0028,0100) {bits_allocated}; 8 or 16 expected")));
        }
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(unsupported(format!(
                "Bits Stored (0028,0101) {bits_stored} must be 1..={bits_allocated} (Bits Allocated)"
            )));
        }
        if high_bit + 1 < bits_stored || high_bit >= bits_allocated {
            return Err(unsupported(format!(
                "High Bit (0028,0102) {high_bit} inconsistent with Bits Stored {bits_stored} / Bits Allocated {bits_allocated}"
            )));
        }
        if pixel_representation != 0 {
            return Err(unsupported(
                "Pixel Representation (0028,0103) is 1 (signed); X-ray angiography samples are unsigned".into(),
            ));
        }
        let frames = u32::try_from(frames).ok().filter(|f| *f >= 1).ok_or_else(|| IngestError::Attribute {
            attribute: attr::NUMBER_OF_FRAMES.to_string(),
            reason: format!("is {frames}; at least 1 frame expected"),
        })?;
        let (rows, columns) = (u32::from(rows), u32::from(columns));
        if u64::from(rows) * u64::from(columns) * u64::from(frames) > MAX_SAMPLES_PER_RUN {
            return Err(IngestError::TooLarge { frames, rows, columns });
        }
        Ok(Self {
            rows,
            columns,
            frames,
            format: PixelFormat { bits_allocated, bits_stored, high_bit, photometric_in_file: photometric },
        })
    }
}

fn decode_cine(
    obj: &InMemDicomObject,
    layout: &ImageLayout,
    transfer_syntax: &TransferSyntaxInfo,
) -> Result<Cine, IngestError> {
    let pixel_data = obj
        .element_opt(attr::PIXEL_DATA.tag)
        .ok()
        .flatten()
        .ok_or_else(|| IngestError::PixelLayout { reason: "element vanished".into() })?;
    let pixels_per_frame = layout.rows as usize * layout.columns as usize;
    let big_endian = transfer_syntax.uid == transfer_syntax::EXPLICIT_VR_BIG_ENDIAN;
    let result = match pixel_data.value() {
        Value::PixelSequence(sequence) => {
            let header = FrameHeader {
                transfer_syntax_uid: transfer_syntax.uid.clone(),
                rows: layout.rows as u16,
                columns: layout.columns as u16,
                bits_allocated: layout.format.bits_allocated,
                bits_stored: layout.format.bits_stored,
                photometric: layout.format.photometric_in_file.as_dicom(),
            };
            guarded("decoding compressed frames", || {
                pixels::decode_encapsulated(
                    sequence.fragments(),
                    sequence.offset_table(),
                    &header,
                    layout.format,
                    layout.frames,
                )
            })?
        }
        value => pixels::unpack_native(value, layout.format, big_endian, pixels_per_frame, layout.frames),
    };
    let samples = result.map_err(|e| match e {
        PixelError::TooFewFrames { declared, available, bytes } => {
            IngestError::TooFewFrames { declared, available, bytes }
        }
        PixelError::TooFewFragments { declared, fragments } => IngestError::TooFewFragments { declared, fragments },
        PixelError::Decode { frame, reason } => IngestError::Decode {
            frame_number: frame + 1,
            frames: layout.frames,
            transfer_syntax: transfer_syntax.clone(),
            reason,
        },
        PixelError::DecodedSize { frame, expected, actual } => IngestError::Decode {
            frame_number: frame + 1,
            frames: layout.frames,
            transfer_syntax: transfer_syntax.clone(),
            reason: format!("the codec returned {actual} bytes, {expected} expected"),
        },
        PixelError::Layout(reason) => IngestError::PixelLayout { reason },
    })?;
    Cine::new(layout.rows, layout.columns, layout.frames, samples, layout.format)
        .map_err(|e| IngestError::PixelLayout { reason: e.to_string() })
}

fn read_rescale(attrs: &Attributes<'_>, warnings: &mut Vec<String>) -> Option<Rescale> {
    let mut get = |a| match attrs.float(a) {
        Ok(v) => v,
        Err(p) => {
            warnings.push(format!("{} ignored: {}", p.attribute, p.reason));
            None
        }
    };
    match (get(attr::RESCALE_SLOPE), get(attr::RESCALE_INTERCEPT)) {
        (Some(slope), Some(intercept)) if slope != 0.0 => Some(Rescale { slope, intercept }),
        (None, None) => None,
        (slope, intercept) => {
            warnings.push(format!(
                "modality rescale ignored: Rescale Slope {slope:?} / Rescale Intercept {intercept:?} incomplete or zero slope"
            ));
            None
        }
    }
}

/// Lossy Image Compression (0028,2110) "01", or a lossy transfer syntax, means the pixels
/// carry compression error.
fn read_lossy_compression(
    attrs: &Attributes<'_>,
    transfer_syntax: &TransferSyntaxInfo,
    warnings: &mut Vec<String>,
) -> Option<LossyCompression> {
    let flagged = attrs.string(attr::LOSSY_IMAGE_COMPRESSION).as_deref() == Some("01");
    if !flagged && transfer_syntax.is_lossless() {
        return None;
    }
    let ratios = match attrs.floats(attr::LOSSY_IMAGE_COMPRESSION_RATIO) {
        Ok(r) => r.unwrap_or_default(),
        Err(p) => {
            warnings.push(format!("{} ignored: {}", p.attribute, p.reason));
            Vec::new()
        }
    };
    let methods = attrs
        .string(attr::LOSSY_IMAGE_COMPRESSION_METHOD)
        .map(|m| m.split('\\').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    Some(LossyCompression { ratios, methods })
}

fn read_windows(attrs: &Attributes<'_>, warnings: &mut Vec<String>) -> Vec<VoiWindow> {
    let (centers, widths) = match (attrs.floats(attr::WINDOW_CENTER), attrs.floats(attr::WINDOW_WIDTH)) {
        (Ok(Some(c)), Ok(Some(w))) => (c, w),
        (Ok(None), Ok(None)) => return Vec::new(),
        (c, w) => {
            warnings.push(format!(
                "VOI window ignored: Window Center {:?} / Window Width {:?} incomplete or malformed",
                c.ok().flatten(),
                w.ok().flatten()
            ));
            return Vec::new();
        }
    };
    let explanations: Vec<String> = attrs
        .string(attr::WINDOW_CENTER_WIDTH_EXPLANATION)
        .map(|s| s.split('\\').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    centers
        .iter()
        .zip(&widths)
        .enumerate()
        .filter_map(|(i, (&center, &width))| {
            if width >= 1.0 {
                Some(VoiWindow { center, width, explanation: explanations.get(i).cloned().filter(|e| !e.is_empty()) })
            } else {
                warnings.push(format!("VOI window {} ignored: Window Width {width} below 1", i + 1));
                None
            }
        })
        .collect()
}

/// Turns MONOCHROME1 samples into the MONOCHROME2 convention (`max - v`) and mirrors the
/// VOI windows so the picture is unchanged: with rescale `r = s v + b`, a window centre `c`
/// moves to `s max + 2 b - c`.
fn invert_monochrome1(cine: &mut Cine) {
    let max = cine.format.max_stored_value();
    for s in cine.samples_mut() {
        *s = max - (*s).min(max);
    }
    let Rescale { slope, intercept } = cine.rescale.unwrap_or(Rescale { slope: 1.0, intercept: 0.0 });
    for w in &mut cine.windows {
        w.center = slope * f64::from(max) + 2.0 * intercept - w.center;
    }
}
