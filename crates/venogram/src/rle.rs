//! RLE Lossless decoding of one frame (PS3.5 Annex G): a 64-byte header of segment offsets,
//! then one `PackBits`-coded segment per byte plane, most significant byte first. csnav's own,
//! because a damaged stream must give an error, never an out-of-bounds panic.

/// Decodes one monochrome frame of `pixels` samples in `bytes_per_sample` (1 or 2) byte
/// planes into `out`, which must hold `pixels` samples.
pub(crate) fn decode_frame(data: &[u8], bytes_per_sample: usize, out: &mut [u16]) -> Result<(), String> {
    let pixels = out.len();
    let header = data
        .get(..64)
        .ok_or_else(|| format!("RLE frame of {} bytes is shorter than its 64-byte header", data.len()))?;
    let word = |i: usize| u32::from_le_bytes([header[4 * i], header[4 * i + 1], header[4 * i + 2], header[4 * i + 3]]);
    let segments = word(0) as usize;
    if segments != bytes_per_sample {
        return Err(format!("RLE header declares {segments} segments; {bytes_per_sample} expected for this image"));
    }
    let offsets: Vec<usize> = (1..=segments).map(|i| word(i) as usize).collect();
    if offsets[0] != 64 {
        return Err(format!("first RLE segment starts at byte {}, not after the 64-byte header", offsets[0]));
    }
    let mut planes = Vec::with_capacity(segments);
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(data.len());
        let segment = data.get(start..end).filter(|_| start < end).ok_or_else(|| {
            format!("RLE segment {} spans bytes {start}..{end} of a {}-byte frame", i + 1, data.len())
        })?;
        planes.push(unpack_bits(segment, pixels).map_err(|e| format!("RLE segment {}: {e}", i + 1))?);
    }
    match planes.as_slice() {
        [low] => {
            for (o, &b) in out.iter_mut().zip(low) {
                *o = u16::from(b);
            }
        }
        [high, low] => {
            for ((o, &h), &l) in out.iter_mut().zip(high).zip(low) {
                *o = u16::from_be_bytes([h, l]);
            }
        }
        _ => return Err(format!("{segments} byte planes per sample are not supported")),
    }
    Ok(())
}

/// `PackBits`: a header byte `n` then `n + 1` literal bytes (0..=127), or one byte repeated
/// `1 - n` times (-127..=-1); -128 is a no-op. Output beyond `length` (encoder padding) is
/// dropped; less than `length` is an error.
fn unpack_bits(segment: &[u8], length: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(length);
    let mut at = 0;
    while out.len() < length && at < segment.len() {
        let n = segment[at] as i8;
        at += 1;
        match n {
            0..=127 => {
                let count = n as usize + 1;
                let literal = segment
                    .get(at..at + count)
                    .ok_or_else(|| format!("literal run of {count} bytes at byte {} overruns the segment", at - 1))?;
                out.extend_from_slice(literal);
                at += count;
            }
            -127..=-1 => {
                let value = *segment.get(at).ok_or_else(|| format!("repeat run at byte {} has no value", at - 1))?;
                out.resize(out.len() + (1 - isize::from(n)) as usize, value);
                at += 1;
            }
            -128 => {}
        }
    }
    if out.len() < length {
        return Err(format!("decodes to {} bytes, {length} expected", out.len()));
    }
    out.truncate(length);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(segments: &[&[u8]]) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut offset = 64u32;
        let mut body = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            header[4 + 4 * i..8 + 4 * i].copy_from_slice(&offset.to_le_bytes());
            offset += s.len() as u32;
            body.extend_from_slice(s);
        }
        header.extend(body);
        header
    }

    #[test]
    fn packbits_literals_repeats_and_noops() {
        // literal [1,2,3], repeat 7 four times, no-op, literal [9]
        let seg = [2, 1, 2, 3, 0xFD, 7, 0x80, 0, 9];
        assert_eq!(unpack_bits(&seg, 8).unwrap(), vec![1, 2, 3, 7, 7, 7, 7, 9]);
        assert!(unpack_bits(&seg, 9).unwrap_err().contains("8 bytes, 9 expected"));
        assert!(unpack_bits(&[5, 1, 2], 6).unwrap_err().contains("overruns"));
    }

    #[test]
    fn sixteen_bit_samples_combine_high_then_low_plane() {
        let data = frame(&[&[1, 0x0A, 0x0B], &[1, 0x01, 0x02]]);
        let mut out = [0u16; 2];
        decode_frame(&data, 2, &mut out).unwrap();
        assert_eq!(out, [0x0A01, 0x0B02]);
    }

    #[test]
    fn bad_headers_are_named() {
        let mut out = [0u16; 2];
        assert!(decode_frame(&[0; 10], 1, &mut out).unwrap_err().contains("shorter than its 64-byte header"));
        let data = frame(&[&[1, 5, 6]]);
        assert!(decode_frame(&data, 2, &mut out).unwrap_err().contains("declares 1 segments; 2 expected"));
        let mut bad = data.clone();
        bad[4] = 200;
        assert!(decode_frame(&bad, 1, &mut out).unwrap_err().contains("first RLE segment starts at byte 200"));
    }
}
