//! Pixel data to samples: native (uncompressed) frames unpacked with their high bit and
//! byte order, encapsulated frames decoded one by one through dicom-rs's codec registry
//! (PS3.5 section 8 and Annex A.4), all checked against the size the header promises.

use dicom_core::value::DicomValueType;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_object::FileDicomObject;
use dicom_object::InMemDicomObject;
use dicom_pixeldata::PixelDecoder;

use crate::cine::PixelFormat;

/// What went wrong turning pixel data into samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PixelError {
    /// Native pixel data shorter than `frames x rows x columns` samples.
    TooFewFrames { declared: u32, available: u32, bytes: usize },
    /// Fewer encapsulated fragments than frames.
    TooFewFragments { declared: u32, fragments: usize },
    /// A codec failed on a frame.
    Decode { frame: u32, reason: String },
    /// A codec returned the wrong amount of data for a frame.
    DecodedSize { frame: u32, expected: usize, actual: usize },
    /// The Pixel Data element is neither bytes nor a fragment sequence.
    Layout(String),
}

/// Masks and shifts raw container values down to their stored bits.
fn stored_value(raw: u16, format: &PixelFormat) -> u16 {
    let shift = format.high_bit + 1 - format.bits_stored;
    (raw >> shift) & format.max_stored_value()
}

/// Unpacks native pixel data of `frames` frames of `pixels_per_frame` samples each.
pub(crate) fn unpack_native(
    value: &Value<InMemDicomObject, Vec<u8>>,
    format: &PixelFormat,
    big_endian: bool,
    pixels_per_frame: usize,
    frames: u32,
) -> Result<Vec<u16>, PixelError> {
    let needed = pixels_per_frame * frames as usize;
    let too_few = |available_samples: usize, bytes: usize| PixelError::TooFewFrames {
        declared: frames,
        available: (available_samples / pixels_per_frame.max(1)) as u32,
        bytes,
    };
    let Value::Primitive(primitive) = value else {
        return Err(PixelError::Layout("native pixel data expected, found a fragment sequence or items".into()));
    };
    let samples: Vec<u16> = match (primitive, format.bits_allocated) {
        (PrimitiveValue::U16(words), 16) => {
            if words.len() < needed {
                return Err(too_few(words.len(), words.len() * 2));
            }
            words.iter().take(needed).map(|&w| stored_value(w, format)).collect()
        }
        (PrimitiveValue::U16(words), 8) => {
            // 8-bit samples carried in OW: each word holds two samples in file byte order.
            if words.len() * 2 < needed {
                return Err(too_few(words.len() * 2, words.len() * 2));
            }
            words
                .iter()
                .flat_map(|&w| if big_endian { w.to_be_bytes() } else { w.to_le_bytes() })
                .take(needed)
                .map(|b| stored_value(u16::from(b), format))
                .collect()
        }
        (PrimitiveValue::U8(bytes), 8) => {
            if bytes.len() < needed {
                return Err(too_few(bytes.len(), bytes.len()));
            }
            bytes.iter().take(needed).map(|&b| stored_value(u16::from(b), format)).collect()
        }
        (PrimitiveValue::U8(bytes), 16) => {
            if bytes.len() / 2 < needed {
                return Err(too_few(bytes.len() / 2, bytes.len()));
            }
            bytes
                .chunks_exact(2)
                .take(needed)
                .map(|c| {
                    let raw =
                        if big_endian { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) };
                    stored_value(raw, format)
                })
                .collect()
        }
        (other, bits) => {
            return Err(PixelError::Layout(format!(
                "native pixel data of value type {:?} with Bits Allocated {bits} is not supported",
                other.value_type()
            )));
        }
    };
    Ok(samples)
}

/// Decodes every encapsulated frame with the registered codec, in parallel.
pub(crate) fn decode_encapsulated(
    obj: &FileDicomObject<InMemDicomObject>,
    fragments: usize,
    format: &PixelFormat,
    pixels_per_frame: usize,
    frames: u32,
) -> Result<Vec<u16>, PixelError> {
    use rayon::prelude::*;
    if fragments < frames as usize {
        return Err(PixelError::TooFewFragments { declared: frames, fragments });
    }
    let decoded: Vec<Vec<u16>> = (0..frames)
        .into_par_iter()
        .map(|frame| decode_one(obj, frame, format, pixels_per_frame))
        .collect::<Result<_, _>>()?;
    let mut samples = Vec::with_capacity(pixels_per_frame * frames as usize);
    for frame in decoded {
        samples.extend_from_slice(&frame);
    }
    Ok(samples)
}

fn decode_one(
    obj: &FileDicomObject<InMemDicomObject>,
    frame: u32,
    format: &PixelFormat,
    pixels_per_frame: usize,
) -> Result<Vec<u16>, PixelError> {
    let decoded =
        obj.decode_pixel_data_frame(frame).map_err(|e| PixelError::Decode { frame, reason: error_chain(&e) })?;
    let data = decoded.data();
    let bytes_per_sample = if decoded.bits_allocated() > 8 { 2 } else { 1 };
    let expected = pixels_per_frame * bytes_per_sample;
    if data.len() != expected {
        return Err(PixelError::DecodedSize { frame, expected, actual: data.len() });
    }
    let mask = format.max_stored_value();
    Ok(if bytes_per_sample == 2 {
        data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) & mask).collect()
    } else {
        data.iter().map(|&b| u16::from(b) & mask).collect()
    })
}

/// An error and its sources on one line, so a codec's real reason is not lost.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
