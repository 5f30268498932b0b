//! Encapsulated pixel data (PS3.5 A.4): which fragments make up which frame, and a one-frame
//! view of the object for dicom-rs's codecs. Handing a codec only its frame's fragments keeps
//! decoding linear in the size of the run (dicom-rs's own per-frame path copies every
//! fragment of the run for each frame).

use std::borrow::Cow;

use dicom_encoding::adapters::{PixelDataObject, RawPixelData};

/// Groups fragments into frames: one fragment per frame; else by the Basic Offset Table; else
/// (one frame) all fragments; else by where a codestream starts (JPEG `FFD8`, JPEG 2000
/// `FF4F` or a JP2 signature box).
pub(crate) fn frame_fragments<'a>(
    fragments: &'a [Vec<u8>],
    offset_table: &[u32],
    frames: u32,
) -> Result<Vec<Vec<&'a [u8]>>, String> {
    let frames = frames as usize;
    if fragments.len() == frames {
        return Ok(fragments.iter().map(|f| vec![f.as_slice()]).collect());
    }
    if frames == 1 {
        return Ok(vec![fragments.iter().map(Vec::as_slice).collect()]);
    }
    if offset_table.len() == frames {
        // Offsets count from the first byte of the first fragment's item tag (8-byte headers).
        let mut grouped: Vec<Vec<&[u8]>> = vec![Vec::new(); frames];
        let mut position = 0u64;
        let mut frame = 0usize;
        for fragment in fragments {
            while frame + 1 < frames && position >= u64::from(offset_table[frame + 1]) {
                frame += 1;
                if position != u64::from(offset_table[frame]) {
                    return Err(format!("Basic Offset Table entry {} points inside a fragment", frame + 1));
                }
            }
            grouped[frame].push(fragment.as_slice());
            position += fragment.len() as u64 + 8;
        }
        if let Some(empty) = grouped.iter().position(Vec::is_empty) {
            return Err(format!("Basic Offset Table gives frame {} no fragment", empty + 1));
        }
        return Ok(grouped);
    }
    let starts_codestream =
        |f: &[u8]| f.starts_with(&[0xFF, 0xD8]) || f.starts_with(&[0xFF, 0x4F]) || f.get(4..8) == Some(b"jP  ");
    let mut grouped: Vec<Vec<&[u8]>> = Vec::new();
    for fragment in fragments {
        match grouped.last_mut() {
            Some(current) if !starts_codestream(fragment) => current.push(fragment.as_slice()),
            _ => grouped.push(vec![fragment.as_slice()]),
        }
    }
    if grouped.len() == frames {
        Ok(grouped)
    } else {
        Err(format!(
            "{} fragments without a usable Basic Offset Table form {} codestreams, not the {frames} frames declared",
            fragments.len(),
            grouped.len()
        ))
    }
}

/// The image description a codec needs, shared by every frame of a run.
#[derive(Debug, Clone)]
pub(crate) struct FrameHeader {
    pub transfer_syntax_uid: String,
    pub rows: u16,
    pub columns: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub photometric: &'static str,
}

/// One frame of an encapsulated run, as a one-frame object for a codec.
pub(crate) struct FrameObject<'a> {
    pub header: &'a FrameHeader,
    pub fragments: Vec<&'a [u8]>,
}

impl FrameObject<'_> {
    /// The frame's bytes as one contiguous codestream (borrowed when it is one fragment).
    pub(crate) fn codestream(&self) -> Cow<'_, [u8]> {
        match self.fragments.as_slice() {
            [single] => Cow::Borrowed(single),
            many => Cow::Owned(many.concat()),
        }
    }
}

impl PixelDataObject for FrameObject<'_> {
    fn transfer_syntax_uid(&self) -> &str {
        &self.header.transfer_syntax_uid
    }

    fn rows(&self) -> Option<u16> {
        Some(self.header.rows)
    }

    fn cols(&self) -> Option<u16> {
        Some(self.header.columns)
    }

    fn samples_per_pixel(&self) -> Option<u16> {
        Some(1)
    }

    fn bits_allocated(&self) -> Option<u16> {
        Some(self.header.bits_allocated)
    }

    fn bits_stored(&self) -> Option<u16> {
        Some(self.header.bits_stored)
    }

    fn photometric_interpretation(&self) -> Option<&str> {
        Some(self.header.photometric)
    }

    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }

    fn number_of_fragments(&self) -> Option<u32> {
        u32::try_from(self.fragments.len()).ok()
    }

    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        self.fragments.get(fragment).map(|f| Cow::Borrowed(*f))
    }

    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        Some(Cow::Borrowed(&[]))
    }

    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        Some(RawPixelData {
            fragments: self.fragments.iter().map(|f| f.to_vec()).collect(),
            offset_table: std::iter::empty().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fragment_per_frame() {
        let f = vec![vec![1, 2], vec![3, 4]];
        let g = frame_fragments(&f, &[], 2).unwrap();
        assert_eq!(g, vec![vec![&[1u8, 2][..]], vec![&[3u8, 4][..]]]);
    }

    #[test]
    fn offset_table_groups_fragments() {
        // Frame 1: fragments of 4 and 2 bytes (12 + 10 = 22 bytes with item headers); frame 2 after.
        let f = vec![vec![0xFF, 0xD8, 0, 0], vec![9, 9], vec![0xFF, 0xD8]];
        let g = frame_fragments(&f, &[0, 22], 2).unwrap();
        assert_eq!(g[0].len(), 2);
        assert_eq!(g[1], vec![&[0xFFu8, 0xD8][..]]);
        assert!(frame_fragments(&f, &[0, 20], 2).is_err(), "offset inside a fragment");
    }

    #[test]
    fn codestream_starts_group_fragments_without_offsets() {
        let f = vec![vec![0xFF, 0xD8, 1, 2], vec![3, 4], vec![0xFF, 0xD8, 5, 6]];
        let g = frame_fragments(&f, &[], 2).unwrap();
        assert_eq!(g[0].len(), 2);
        assert!(frame_fragments(&f, &[], 4).unwrap_err().contains("not the 4 frames"));
    }
}
