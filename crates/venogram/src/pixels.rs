//! Pixel data to samples: native (uncompressed) frames unpacked with their high bit and
//! byte order, encapsulated frames decoded one by one through dicom-rs's codec registry
//! (PS3.5 section 8 and Annex A.4), all checked against the size the header promises.

use dicom_core::value::DicomValueType;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntax, TransferSyntaxIndex};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::cine::PixelFormat;
use crate::frames::{FrameHeader, FrameObject, frame_fragments};
use crate::{jpeg_dct, jpeg_lossless, jpeg_markers, rle, transfer_syntax};

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
fn stored_value(raw: u16, format: PixelFormat) -> u16 {
    let shift = format.high_bit + 1 - format.bits_stored;
    (raw >> shift) & format.max_stored_value()
}

/// Unpacks native pixel data of `frames` frames of `pixels_per_frame` samples each.
pub(crate) fn unpack_native(
    value: &Value<InMemDicomObject, Vec<u8>>,
    format: PixelFormat,
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

/// Decodes every encapsulated frame, in parallel: JPEG (DCT 8/12-bit and lossless) and RLE
/// with csnav's own decoders, JPEG-LS and JPEG 2000 with the codecs dicom-rs registers.
pub(crate) fn decode_encapsulated(
    fragments: &[Vec<u8>],
    offset_table: &[u32],
    header: &FrameHeader,
    format: PixelFormat,
    frames: u32,
) -> Result<Vec<u16>, PixelError> {
    use rayon::prelude::*;
    if fragments.len() < frames as usize {
        return Err(PixelError::TooFewFragments { declared: frames, fragments: fragments.len() });
    }
    let grouped = frame_fragments(fragments, offset_table, frames).map_err(PixelError::Layout)?;
    let pixels_per_frame = usize::from(header.rows) * usize::from(header.columns);
    let decoder = match header.transfer_syntax_uid.as_str() {
        transfer_syntax::JPEG_BASELINE | transfer_syntax::JPEG_EXTENDED => decode_dct,
        transfer_syntax::RLE_LOSSLESS => decode_rle,
        transfer_syntax::JPEG_LOSSLESS | transfer_syntax::JPEG_LOSSLESS_SV1 => decode_lossless,
        _ => decode_registered,
    };
    let mask = format.max_stored_value();
    // Each frame decodes straight into its slice of the run's buffer.
    let mut samples = vec![0u16; pixels_per_frame * frames as usize];
    samples.par_chunks_mut(pixels_per_frame.max(1)).zip(grouped).enumerate().try_for_each(
        |(frame, (out, fragments))| {
            let frame = frame as u32;
            let object = FrameObject { header, fragments };
            decoder(&object, frame, out, mask)
        },
    )?;
    Ok(samples)
}

/// Copies decoded samples into `out`, masked to the stored bits, checking the count.
fn fill<I: ExactSizeIterator<Item = u16>>(
    out: &mut [u16],
    decoded: I,
    frame: u32,
    mask: u16,
) -> Result<(), PixelError> {
    if decoded.len() != out.len() {
        return Err(PixelError::DecodedSize { frame, expected: out.len(), actual: decoded.len() });
    }
    for (o, s) in out.iter_mut().zip(decoded) {
        *o = s & mask;
    }
    Ok(())
}

fn decode_dct(object: &FrameObject<'_>, frame: u32, out: &mut [u16], mask: u16) -> Result<(), PixelError> {
    let stream = object.codestream();
    let image = jpeg_dct::decode(&stream).map_err(|e| PixelError::Decode { frame, reason: e.to_string() })?;
    if (image.width, image.height) != (object.header.columns, object.header.rows) {
        return Err(PixelError::Decode {
            frame,
            reason: format!(
                "the JPEG frame is {}x{} but the image is {}x{}",
                image.width, image.height, object.header.columns, object.header.rows
            ),
        });
    }
    fill(out, image.samples.into_iter(), frame, mask)
}

fn decode_lossless(object: &FrameObject<'_>, frame: u32, out: &mut [u16], mask: u16) -> Result<(), PixelError> {
    let stream = object.codestream();
    match jpeg_lossless::decode_into(&stream, out) {
        Ok((width, height, _)) if (width, height) != (object.header.columns, object.header.rows) => {
            Err(PixelError::Decode {
                frame,
                reason: format!(
                    "the JPEG frame is {width}x{height} but the image is {}x{}",
                    object.header.columns, object.header.rows
                ),
            })
        }
        Ok(_) => {
            for s in out.iter_mut() {
                *s &= mask;
            }
            Ok(())
        }
        Err(e) => Err(PixelError::Decode { frame, reason: e.to_string() }),
    }
}

fn decode_rle(object: &FrameObject<'_>, frame: u32, out: &mut [u16], mask: u16) -> Result<(), PixelError> {
    let stream = object.codestream();
    let bytes_per_sample = usize::from(object.header.bits_allocated.div_ceil(8));
    rle::decode_frame(&stream, bytes_per_sample, out).map_err(|reason| PixelError::Decode { frame, reason })?;
    for s in out.iter_mut() {
        *s &= mask;
    }
    Ok(())
}

fn decode_registered(object: &FrameObject<'_>, frame: u32, out: &mut [u16], mask: u16) -> Result<(), PixelError> {
    let uid = object.header.transfer_syntax_uid.as_str();
    // A codec handed a frame larger than the image header says may write out of bounds
    // (dicom-rs's JPEG adapter panics): check the codestream's own size first.
    if let Some((width, height)) = object.fragments.first().and_then(|f| jpeg_markers::frame_size(f))
        && (width, height) != (object.header.columns, object.header.rows)
        && height != 0
    {
        return Err(PixelError::Decode {
            frame,
            reason: format!(
                "the codestream is {width}x{height} but the image is {}x{}",
                object.header.columns, object.header.rows
            ),
        });
    }
    let Some(Codec::EncapsulatedPixelData(Some(reader), _)) =
        TransferSyntaxRegistry.get(uid).map(TransferSyntax::codec)
    else {
        return Err(PixelError::Decode { frame, reason: format!("no pixel data decoder registered for {uid}") });
    };
    let mut bytes = Vec::new();
    reader.decode_frame(object, 0, &mut bytes).map_err(|e| PixelError::Decode { frame, reason: error_chain(&e) })?;
    if object.header.bits_allocated > 8 {
        fill(out, bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])), frame, mask)
    } else {
        fill(out, bytes.iter().map(|&b| u16::from(b)), frame, mask)
    }
}

/// An error and its sources on one line ("a: b: c"), so a codec's (or the network's) real reason is not lost.
pub fn error_chain(error: &dyn std::error::Error) -> String {
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
