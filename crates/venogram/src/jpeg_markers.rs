//! The marker-segment structure of a JPEG-family codestream (ITU-T T.81 annex B.1, and
//! JPEG-LS which shares it): finding the next marker past fill bytes, skipping standalone
//! markers, and handing out each segment's body. Shared by csnav's DCT and lossless JPEG
//! decoders and by the frame-size check done before a registered codec runs.

/// Why the marker structure is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerError {
    /// The data ends inside a marker or segment.
    Truncated,
    /// A byte that should start a marker does not, or a marker is not allowed here.
    BadMarker { marker: u8, offset: usize },
    /// A segment's length field is impossible.
    BadSegment { marker: u8, offset: usize },
}

/// What follows at the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A marker segment: its marker code, the offset of its `FF`, and its body (after the length).
    Segment { marker: u8, offset: usize, body: &'a [u8] },
    /// EOI: the end of the image.
    EndOfImage,
    /// The data ended where a marker was expected.
    EndOfData,
}

/// Big-endian `u16` at `pos`, `None` past the end.
pub(crate) fn be16(data: &[u8], pos: usize) -> Option<u16> {
    let b = data.get(pos..pos + 2)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Reads the next marker segment at `*pos` (after SOI), skipping fill bytes and standalone
/// markers (TEM, `RSTn`), and advances `*pos` past it.
pub(crate) fn next<'a>(data: &'a [u8], pos: &mut usize) -> Result<Next<'a>, MarkerError> {
    loop {
        let offset = *pos;
        match data.get(*pos) {
            None => return Ok(Next::EndOfData),
            Some(&0xFF) => {}
            Some(&b) => return Err(MarkerError::BadMarker { marker: b, offset }),
        }
        while data.get(*pos) == Some(&0xFF) {
            *pos += 1;
        }
        let marker = *data.get(*pos).ok_or(MarkerError::Truncated)?;
        *pos += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Ok(Next::EndOfImage),
            0x00 | 0xD8 => return Err(MarkerError::BadMarker { marker, offset }),
            _ => {}
        }
        let len = usize::from(be16(data, *pos).ok_or(MarkerError::Truncated)?);
        if len < 2 {
            return Err(MarkerError::BadSegment { marker, offset });
        }
        let body = data.get(*pos + 2..*pos + len).ok_or(MarkerError::Truncated)?;
        *pos += len;
        return Ok(Next::Segment { marker, offset, body });
    }
}

/// Finds the next marker inside entropy-coded data from `pos`, passing over data bytes,
/// stuffed `FF 00` pairs and fill bytes; returns the marker code and the offset of its `FF`.
pub(crate) fn next_marker_in_scan(data: &[u8], mut pos: usize) -> Result<(u8, usize), MarkerError> {
    loop {
        match data.get(pos) {
            None => return Err(MarkerError::Truncated),
            Some(&0xFF) => match data.get(pos + 1) {
                None => return Err(MarkerError::Truncated),
                Some(&0xFF) => pos += 1,
                Some(&0) => pos += 2,
                Some(&marker) => return Ok((marker, pos)),
            },
            Some(_) => pos += 1,
        }
    }
}

/// Width and height from the frame header (SOF0..SOF15, or JPEG-LS SOF55) of a codestream;
/// `None` when it has no readable frame header.
pub(crate) fn frame_size(data: &[u8]) -> Option<(u16, u16)> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2;
    loop {
        match next(data, &mut pos).ok()? {
            Next::Segment { marker, body, .. }
                if matches!(marker, 0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC)) || marker == 0xF7 =>
            {
                return Some((be16(body, 3)?, be16(body, 1)?));
            }
            Next::Segment { .. } => {}
            Next::EndOfImage | Next::EndOfData => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_segments_past_fill_bytes_and_standalone_markers() {
        // SOI, fill + COM "hi", RST0, SOF3 (P=8, 16 lines, 32 samples, 1 component), EOI.
        let data = [
            0xFF, 0xD8, 0xFF, 0xFF, 0xFE, 0x00, 0x04, b'h', b'i', 0xFF, 0xD0, 0xFF, 0xC3, 0x00, 0x0B, 8, 0, 16, 0, 32,
            1, 1, 0x11, 0, 0xFF, 0xD9,
        ];
        let mut pos = 2;
        assert_eq!(next(&data, &mut pos), Ok(Next::Segment { marker: 0xFE, offset: 2, body: b"hi" }));
        assert!(matches!(next(&data, &mut pos), Ok(Next::Segment { marker: 0xC3, .. })));
        assert_eq!(next(&data, &mut pos), Ok(Next::EndOfImage));
        assert_eq!(next(&data, &mut pos), Ok(Next::EndOfData));
        assert_eq!(frame_size(&data), Some((32, 16)));
    }

    #[test]
    fn markers_in_entropy_coded_data_skip_stuffing() {
        assert_eq!(next_marker_in_scan(&[0x12, 0xFF, 0x00, 0xFF, 0xFF, 0xD3], 0), Ok((0xD3, 4)));
        assert_eq!(next_marker_in_scan(&[0x12, 0xFF, 0x00], 0), Err(MarkerError::Truncated));
    }

    #[test]
    fn broken_structure_is_named() {
        let mut pos = 0;
        assert_eq!(next(&[0x12], &mut pos), Err(MarkerError::BadMarker { marker: 0x12, offset: 0 }));
        let mut pos = 0;
        assert_eq!(next(&[0xFF, 0xC4, 0x00, 0x01], &mut pos), Err(MarkerError::BadSegment { marker: 0xC4, offset: 0 }));
        let mut pos = 0;
        assert_eq!(next(&[0xFF, 0xC4, 0x00, 0x09, 1], &mut pos), Err(MarkerError::Truncated));
        assert_eq!(frame_size(&[0xFF, 0xD8, 0xFF]), None);
    }
}
