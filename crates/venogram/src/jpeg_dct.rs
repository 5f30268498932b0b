//! Decoder for sequential DCT, Huffman coded JPEG (ITU-T T.81 processes 1, 2
//! and 4: SOF0 baseline and SOF1 extended sequential) with 8 or 12 bit sample
//! precision and a single (grayscale) component.
//!
//! This covers the DICOM transfer syntaxes "JPEG Baseline (Process 1)" and
//! "JPEG Extended (Process 2 & 4)" for monochrome images, including 12-bit
//! X-ray data. The inverse DCT is a port of the IJG `jidctint.c` "islow"
//! integer transform (libjpeg 6b, as used by dcmtk), so results match
//! libjpeg/dcmtk.
//!
//! Supported: SOI, APPn/COM/JPGn (skipped), DQT (8 and 16 bit tables), DHT,
//! SOF0/SOF1, DRI with `RSTn` restart markers, SOS, EOI, DNL (height given after
//! the scan), byte stuffing and fill bytes. Not supported (reported as
//! errors): progressive, lossless, hierarchical and arithmetic coded
//! processes, frames with more than one component, precisions other than 8
//! and 12 bits.
//!
//! The decoder never panics on malformed input; it returns a [`JpegError`].
//!
//! Use: `decode(frame_bitstream)` with one frame's encapsulated JPEG bitstream (`FFD8` ... `FFD9`)
//! gives its width, height, precision and row-major samples.

use std::fmt;

use crate::jpeg_markers::{self, MarkerError, Next, be16};

impl From<MarkerError> for JpegError {
    fn from(e: MarkerError) -> Self {
        match e {
            MarkerError::Truncated => Self::Truncated,
            MarkerError::BadMarker { marker, offset } => Self::BadMarker { marker, offset },
            MarkerError::BadSegment { marker, offset } => Self::BadSegment { marker, offset },
        }
    }
}

/// A decoded single-component image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedJpeg {
    /// Number of samples per line.
    pub width: u16,
    /// Number of lines.
    pub height: u16,
    /// Sample precision in bits (8 or 12).
    pub precision: u8,
    /// Samples in row-major order, `width * height` values in
    /// `0..2^precision`.
    pub samples: Vec<u16>,
}

/// Kind of table a frame or scan refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Quantization table (DQT).
    Quantization,
    /// DC Huffman table (DHT class 0).
    DcHuffman,
    /// AC Huffman table (DHT class 1).
    AcHuffman,
}

/// Reasons why a JPEG stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// The data ended before the image was complete.
    Truncated,
    /// The data does not start with an SOI marker.
    NotJpeg,
    /// An invalid or unexpected marker (second byte) at the given offset.
    BadMarker {
        /// The marker code (the byte following 0xFF), or the byte found
        /// where a marker was expected.
        marker: u8,
        /// Byte offset of the marker in the input.
        offset: usize,
    },
    /// A marker segment with an invalid length or content.
    BadSegment {
        /// The marker code of the segment.
        marker: u8,
        /// Byte offset of the marker in the input.
        offset: usize,
    },
    /// The frame uses a coding process this decoder does not implement
    /// (the SOF, DHP or EXP marker code is given).
    UnsupportedProcess(u8),
    /// The sample precision is not 8 or 12 bits.
    UnsupportedPrecision(u8),
    /// The frame (or scan) has this many components; only 1 is supported.
    UnsupportedComponents(u8),
    /// The frame has zero width, or zero height and no DNL marker.
    BadDimensions,
    /// A table referenced by the frame or scan was never defined.
    MissingTable(TableKind, u8),
    /// A Huffman table definition is invalid (too many codes).
    BadHuffmanTable,
    /// The entropy-coded data contains a code not in the Huffman table.
    BadHuffmanCode,
    /// A decoded coefficient magnitude category is out of range.
    BadCoefficient,
    /// A restart marker is missing or out of sequence.
    BadRestartMarker {
        /// The expected `RSTn` marker code (0xD0..=0xD7).
        expected: u8,
        /// The marker code found instead.
        found: u8,
    },
    /// A scan (SOS) appeared before any frame header (SOF).
    MissingFrame,
    /// The image ended (EOI) without any scan.
    MissingScan,
    /// The scan refers to a component not defined in the frame.
    UnknownComponent(u8),
}

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegError::Truncated => write!(f, "JPEG data is truncated"),
            JpegError::NotJpeg => write!(f, "not a JPEG stream (missing SOI marker)"),
            JpegError::BadMarker { marker, offset } => {
                write!(f, "invalid or unexpected JPEG marker 0x{marker:02X} at offset {offset}")
            }
            JpegError::BadSegment { marker, offset } => {
                write!(f, "malformed JPEG marker segment 0x{marker:02X} at offset {offset}")
            }
            JpegError::UnsupportedProcess(m) => {
                let what = match m {
                    0xC2 | 0xC6 => "progressive DCT",
                    0xC3 | 0xC7 => "lossless",
                    0xC5 | 0xDE | 0xDF => "hierarchical",
                    0xC9..=0xCF => "arithmetic coded",
                    _ => "unknown",
                };
                write!(
                    f,
                    "unsupported JPEG process (marker 0x{m:02X}, {what}); only baseline and extended sequential Huffman DCT are supported"
                )
            }
            JpegError::UnsupportedPrecision(p) => {
                write!(f, "unsupported JPEG sample precision {p} (only 8 and 12 bits)")
            }
            JpegError::UnsupportedComponents(n) => {
                write!(f, "unsupported number of JPEG components {n} (only 1)")
            }
            JpegError::BadDimensions => write!(f, "invalid JPEG image dimensions"),
            JpegError::MissingTable(kind, id) => {
                let k = match kind {
                    TableKind::Quantization => "quantization",
                    TableKind::DcHuffman => "DC Huffman",
                    TableKind::AcHuffman => "AC Huffman",
                };
                write!(f, "JPEG {k} table {id} is not defined")
            }
            JpegError::BadHuffmanTable => write!(f, "invalid JPEG Huffman table"),
            JpegError::BadHuffmanCode => write!(f, "invalid Huffman code in JPEG data"),
            JpegError::BadCoefficient => write!(f, "invalid coefficient in JPEG data"),
            JpegError::BadRestartMarker { expected, found } => {
                write!(f, "expected JPEG restart marker 0x{expected:02X}, found 0x{found:02X}")
            }
            JpegError::MissingFrame => write!(f, "JPEG scan before frame header"),
            JpegError::MissingScan => write!(f, "JPEG image contains no scan"),
            JpegError::UnknownComponent(c) => {
                write!(f, "JPEG scan refers to unknown component {c}")
            }
        }
    }
}

impl std::error::Error for JpegError {}

/// Zig-zag index to natural (row-major) index.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

/// Number of bits resolved by one Huffman fast-table lookup.
const FAST_BITS: u32 = 11;

/// A Huffman decoding table.
#[derive(Clone)]
struct HuffTable {
    /// `(length << 8) | symbol` for codes of up to `FAST_BITS` bits, 0 if none.
    fast: [u16; 1 << FAST_BITS],
    /// Largest code of each length (index 1..=16), -1 if none.
    maxcode: [i32; 17],
    /// Index into `values` minus the first code, for each length.
    valoffset: [i32; 17],
    /// Symbols in code order.
    values: [u8; 256],
}

impl HuffTable {
    /// Builds a table from the 16 code counts and the symbol list.
    fn new(counts: &[u8], symbols: &[u8]) -> Result<HuffTable, JpegError> {
        let mut t = HuffTable { fast: [0; 1 << FAST_BITS], maxcode: [-1; 17], valoffset: [0; 17], values: [0; 256] };
        if symbols.len() > 256 {
            return Err(JpegError::BadHuffmanTable);
        }
        for (d, s) in t.values.iter_mut().zip(symbols) {
            *d = *s;
        }
        let mut code: u32 = 0;
        let mut p: usize = 0;
        for (len, &n) in (1u32..=16).zip(counts) {
            let first = code;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err(JpegError::BadHuffmanTable);
                }
                if len <= FAST_BITS {
                    let sym = *symbols.get(p).ok_or(JpegError::BadHuffmanTable)?;
                    let shift = FAST_BITS - len;
                    let base = (code << shift) as usize;
                    let entry = ((len as u16) << 8) | u16::from(sym);
                    if let Some(slots) = t.fast.get_mut(base..base + (1usize << shift)) {
                        slots.fill(entry);
                    }
                }
                code += 1;
                p += 1;
            }
            if n > 0
                && let (Some(mc), Some(vo)) = (t.maxcode.get_mut(len as usize), t.valoffset.get_mut(len as usize))
            {
                *mc = code as i32 - 1;
                *vo = (p - usize::from(n)) as i32 - first as i32;
            }
            code <<= 1;
        }
        if p != symbols.len() {
            return Err(JpegError::BadHuffmanTable);
        }
        Ok(t)
    }
}

/// Bit reader over entropy-coded data: removes byte stuffing and stops at
/// markers, after which it supplies zero bits (counted as padding).
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bit buffer, next bit in the most significant position.
    acc: u64,
    nbits: u32,
    /// Number of zero bits appended after a marker or the end of the data.
    pad_bits: u64,
    /// Set once a marker or the end of the data has been reached.
    stopped: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos, acc: 0, nbits: 0, pad_bits: 0, stopped: false }
    }

    /// Fills the bit buffer to at least 57 bits.
    fn fill(&mut self) {
        // Fast path: the next 8 bytes contain no 0xFF, so no stuffing or
        // marker can occur among the bytes taken.
        if !self.stopped
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
            && let Ok(bytes) = <[u8; 8]>::try_from(chunk)
        {
            let w = u64::from_be_bytes(bytes);
            let has_ff = (!w).wrapping_sub(0x0101_0101_0101_0101) & w & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let n = (64 - self.nbits) / 8;
                let bits = n * 8;
                self.acc |= (w >> (64 - bits)) << (64 - self.nbits - bits);
                self.nbits += bits;
                self.pos += n as usize;
                return;
            }
        }
        while self.nbits <= 56 {
            let mut byte = 0u8;
            if !self.stopped {
                match self.data.get(self.pos) {
                    Some(&0xFF) => {
                        if self.data.get(self.pos + 1) == Some(&0) {
                            byte = 0xFF;
                            self.pos += 2;
                        } else {
                            self.stopped = true;
                        }
                    }
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => self.stopped = true,
                }
            }
            if self.stopped {
                self.pad_bits += 8;
            }
            self.acc |= u64::from(byte) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    /// Decodes one Huffman symbol.
    #[inline]
    fn decode(&mut self, t: &HuffTable) -> Result<u8, JpegError> {
        if self.nbits < 32 {
            self.fill();
        }
        let look = (self.acc >> (64 - FAST_BITS)) as usize;
        let e = t.fast.get(look).copied().unwrap_or(0);
        if e != 0 {
            let len = u32::from(e >> 8);
            self.acc <<= len;
            self.nbits -= len;
            return Ok(e as u8);
        }
        let bits16 = (self.acc >> 48) as i32;
        for len in FAST_BITS + 1..=16 {
            let code = bits16 >> (16 - len);
            let (Some(&maxcode), Some(&off)) = (t.maxcode.get(len as usize), t.valoffset.get(len as usize)) else {
                break;
            };
            if code <= maxcode {
                let idx = usize::try_from(code + off).map_err(|_| JpegError::BadHuffmanCode)?;
                let sym = *t.values.get(idx).ok_or(JpegError::BadHuffmanCode)?;
                self.acc <<= len;
                self.nbits -= len;
                return Ok(sym);
            }
        }
        Err(JpegError::BadHuffmanCode)
    }

    /// Reads `s` (1..=16) bits and sign-extends them per T.81 F.2.2.1.
    #[inline]
    fn receive_extend(&mut self, s: u32) -> i32 {
        if self.nbits < s {
            self.fill();
        }
        let v = (self.acc >> (64 - s)) as i32;
        self.acc <<= s;
        self.nbits -= s;
        if v < 1 << (s - 1) { v - (1 << s) + 1 } else { v }
    }

    /// Fails if any padding bits (beyond the real data) were consumed.
    fn check(&self) -> Result<(), JpegError> {
        if u64::from(self.nbits) >= self.pad_bits {
            return Ok(());
        }
        match self.data.get(self.pos + 1) {
            Some(&marker) => Err(JpegError::BadMarker { marker, offset: self.pos }),
            _ => Err(JpegError::Truncated),
        }
    }

    /// Discards buffered bits and consumes the next marker, which must be
    /// the restart marker `RSTn` with n = `expected`.
    fn restart(&mut self, expected: u8) -> Result<(), JpegError> {
        let (marker, p) = jpeg_markers::next_marker_in_scan(self.data, self.pos)?;
        let want = 0xD0 | (expected & 7);
        if marker != want {
            return Err(JpegError::BadRestartMarker { expected: want, found: marker });
        }
        self.pos = p + 2;
        self.acc = 0;
        self.nbits = 0;
        self.pad_bits = 0;
        self.stopped = false;
        Ok(())
    }
}

/// Frame header information for the single component.
struct Frame {
    precision: u8,
    width: u16,
    height: u16,
    component_id: u8,
    quant_id: u8,
}

/// Decodes a sequential DCT (SOF0/SOF1), Huffman coded, single component
/// JPEG stream with 8 or 12 bit precision.
#[expect(
    clippy::large_stack_arrays,
    reason = "the eight Huffman tables with their fast lookups live on the stack for the frame's decode; \
              a few tens of KiB, far inside a thread's stack"
)]
pub fn decode(data: &[u8]) -> Result<DecodedJpeg, JpegError> {
    if data.get(0..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(JpegError::NotJpeg);
    }
    let mut pos = 2usize;
    let mut qtables: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc_tables: [Option<HuffTable>; 4] = [None, None, None, None];
    let mut ac_tables: [Option<HuffTable>; 4] = [None, None, None, None];
    let mut frame: Option<Frame> = None;
    let mut restart_interval: u16 = 0;

    loop {
        let (marker, offset, seg) = match jpeg_markers::next(data, &mut pos)? {
            Next::Segment { marker, offset, body } => (marker, offset, body),
            Next::EndOfImage => {
                return Err(if frame.is_some() { JpegError::MissingScan } else { JpegError::MissingFrame });
            }
            Next::EndOfData => {
                return Err(if frame.is_some() { JpegError::Truncated } else { JpegError::MissingFrame });
            }
        };
        let bad = JpegError::BadSegment { marker, offset };
        match marker {
            0xC0 | 0xC1 => {
                if frame.is_some() {
                    return Err(JpegError::BadMarker { marker, offset });
                }
                frame = Some(parse_frame(seg, bad)?);
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC8..=0xCB | 0xCD..=0xCF | 0xDE | 0xDF => {
                return Err(JpegError::UnsupportedProcess(marker));
            }
            0xC4 => parse_dht(seg, &mut dc_tables, &mut ac_tables, &bad)?,
            0xDB => parse_dqt(seg, &mut qtables, bad)?,
            0xDD => {
                restart_interval = be16(seg, 0).ok_or(bad)?;
            }
            0xDA => {
                let f = frame.as_ref().ok_or(JpegError::MissingFrame)?;
                let (td, ta) = parse_sos(seg, f, bad)?;
                let q = qtables
                    .get(usize::from(f.quant_id))
                    .and_then(|q| q.as_ref())
                    .ok_or(JpegError::MissingTable(TableKind::Quantization, f.quant_id))?;
                let dc = dc_tables
                    .get(usize::from(td))
                    .and_then(|t| t.as_ref())
                    .ok_or(JpegError::MissingTable(TableKind::DcHuffman, td))?;
                let ac = ac_tables
                    .get(usize::from(ta))
                    .and_then(|t| t.as_ref())
                    .ok_or(JpegError::MissingTable(TableKind::AcHuffman, ta))?;
                let height = if f.height == 0 { find_dnl(data, pos)? } else { f.height };
                let samples = decode_scan(data, pos, f, height, q, dc, ac, restart_interval)?;
                return Ok(DecodedJpeg { width: f.width, height, precision: f.precision, samples });
            }
            // APPn, COM, JPGn, DAC, DNL outside a scan, reserved: skip.
            _ => {}
        }
    }
}

/// Parses an SOF0/SOF1 segment body.
fn parse_frame(seg: &[u8], bad: JpegError) -> Result<Frame, JpegError> {
    let precision = *seg.first().ok_or(bad.clone())?;
    let height = be16(seg, 1).ok_or(bad.clone())?;
    let width = be16(seg, 3).ok_or(bad.clone())?;
    let ncomp = *seg.get(5).ok_or(bad.clone())?;
    if precision != 8 && precision != 12 {
        return Err(JpegError::UnsupportedPrecision(precision));
    }
    if ncomp != 1 {
        return Err(JpegError::UnsupportedComponents(ncomp));
    }
    if seg.len() != 9 {
        return Err(bad);
    }
    let component_id = *seg.get(6).ok_or(bad.clone())?;
    let hv = *seg.get(7).ok_or(bad.clone())?;
    let quant_id = *seg.get(8).ok_or(bad.clone())?;
    if !(1..=4).contains(&(hv >> 4)) || !(1..=4).contains(&(hv & 15)) || quant_id > 3 {
        return Err(bad);
    }
    if width == 0 {
        return Err(JpegError::BadDimensions);
    }
    Ok(Frame { precision, width, height, component_id, quant_id })
}

/// Parses a DHT segment body (one or more tables).
fn parse_dht(
    seg: &[u8],
    dc: &mut [Option<HuffTable>; 4],
    ac: &mut [Option<HuffTable>; 4],
    bad: &JpegError,
) -> Result<(), JpegError> {
    let mut p = 0usize;
    while p < seg.len() {
        let tc_th = *seg.get(p).ok_or(bad.clone())?;
        let counts = seg.get(p + 1..p + 17).ok_or(bad.clone())?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = seg.get(p + 17..p + 17 + total).ok_or(bad.clone())?;
        let table = HuffTable::new(counts, symbols)?;
        let slot = match tc_th >> 4 {
            0 => dc.get_mut(usize::from(tc_th & 15)),
            1 => ac.get_mut(usize::from(tc_th & 15)),
            _ => None,
        };
        *slot.ok_or(bad.clone())? = Some(table);
        p += 17 + total;
    }
    Ok(())
}

/// Parses a DQT segment body (one or more tables), storing natural order.
fn parse_dqt(seg: &[u8], tables: &mut [Option<[u16; 64]>; 4], bad: JpegError) -> Result<(), JpegError> {
    let mut p = 0usize;
    while p < seg.len() {
        let pq_tq = *seg.get(p).ok_or(bad.clone())?;
        let wide = match pq_tq >> 4 {
            0 => false,
            1 => true,
            _ => return Err(bad),
        };
        let size = if wide { 128 } else { 64 };
        let body = seg.get(p + 1..p + 1 + size).ok_or(bad.clone())?;
        let mut table = [0u16; 64];
        for (k, &z) in ZIGZAG.iter().enumerate() {
            let v = if wide { be16(body, 2 * k) } else { body.get(k).map(|&b| u16::from(b)) };
            if let Some(slot) = table.get_mut(usize::from(z)) {
                *slot = v.ok_or(bad.clone())?;
            }
        }
        *tables.get_mut(usize::from(pq_tq & 15)).ok_or(bad.clone())? = Some(table);
        p += 1 + size;
    }
    Ok(())
}

/// Parses an SOS segment body; returns the DC and AC table ids.
fn parse_sos(seg: &[u8], frame: &Frame, bad: JpegError) -> Result<(u8, u8), JpegError> {
    let ns = *seg.first().ok_or(bad.clone())?;
    if ns != 1 {
        return Err(JpegError::UnsupportedComponents(ns));
    }
    if seg.len() != 6 {
        return Err(bad);
    }
    let cs = *seg.get(1).ok_or(bad.clone())?;
    let tdta = *seg.get(2).ok_or(bad.clone())?;
    if cs != frame.component_id {
        return Err(JpegError::UnknownComponent(cs));
    }
    let (td, ta) = (tdta >> 4, tdta & 15);
    if td > 3 || ta > 3 {
        return Err(bad);
    }
    // Ss, Se, Ah/Al are fixed (0, 63, 0) for sequential DCT; like libjpeg,
    // other values are tolerated and ignored.
    Ok((td, ta))
}

/// Finds the DNL marker following the scan starting at `pos` and returns
/// the number of lines it defines.
fn find_dnl(data: &[u8], mut pos: usize) -> Result<u16, JpegError> {
    loop {
        match data.get(pos) {
            None => return Err(JpegError::BadDimensions),
            Some(&0xFF) => match data.get(pos + 1) {
                Some(&0xFF) => pos += 1,
                Some(&(0x00 | 0xD0..=0xD7)) => pos += 2,
                Some(&0xDC) => {
                    let lines = be16(data, pos + 4).ok_or(JpegError::Truncated)?;
                    if be16(data, pos + 2) != Some(4) || lines == 0 {
                        return Err(JpegError::BadDimensions);
                    }
                    return Ok(lines);
                }
                None | Some(_) => return Err(JpegError::BadDimensions),
            },
            Some(_) => pos += 1,
        }
    }
}

/// Decodes the entropy-coded data of the single-component scan starting at
/// `pos` and returns the reconstructed samples.
#[allow(clippy::too_many_arguments)]
fn decode_scan(
    data: &[u8],
    pos: usize,
    frame: &Frame,
    height: u16,
    qtable: &[u16; 64],
    dc: &HuffTable,
    ac: &HuffTable,
    restart_interval: u16,
) -> Result<Vec<u16>, JpegError> {
    let width = usize::from(frame.width);
    let height = usize::from(height);
    let bw = width.div_ceil(8);
    let bh = height.div_ceil(8);
    let total = bw * bh;
    // Every block needs at least 2 bits (DC and EOB codes), so a frame
    // claiming far more blocks than the data can hold is truncated; checking
    // this first avoids huge allocations for corrupt headers.
    if total > data.len().saturating_sub(pos).saturating_mul(4) + 64 {
        return Err(JpegError::Truncated);
    }
    // Grown one block row at a time, so corrupt data claiming a huge image
    // fails before much memory is allocated.
    let mut samples: Vec<u16> = Vec::new();
    let mut q = [0i32; 64];
    for (d, &s) in q.iter_mut().zip(qtable) {
        *d = i32::from(s);
    }
    let pass1_bits = if frame.precision == 8 { 2 } else { 1 };
    let center = 1i64 << (frame.precision - 1);
    let maxval = (1i64 << frame.precision) - 1;

    let mut br = BitReader::new(data, pos);
    let mut pred = 0i32;
    let mut coefs = [0i32; 64];
    let mut out = [0u16; 64];
    let interval = usize::from(restart_interval);
    let mut next_rst = 0u8;
    for (mcu, (by, bx)) in (0..bh).flat_map(|by| (0..bw).map(move |bx| (by, bx))).enumerate() {
        if bx == 0 {
            samples.resize(height.min(by * 8 + 8) * width, 0);
        }
        if interval != 0 && mcu != 0 && mcu % interval == 0 {
            br.check()?;
            br.restart(next_rst)?;
            next_rst = (next_rst + 1) & 7;
            pred = 0;
        }
        coefs.fill(0);
        let ac_present = decode_block(&mut br, dc, ac, &mut pred, &mut coefs)?;
        br.check()?;
        if ac_present {
            idct_islow(&coefs, &q, pass1_bits, center, maxval, &mut out);
        } else {
            let dcq = i64::from(coefs[0]) * i64::from(q[0]);
            let v = ((dcq + 4) >> 3) + center;
            out.fill(v.clamp(0, maxval) as u16);
        }
        let x0 = bx * 8;
        let y0 = by * 8;
        let w = (width - x0).min(8);
        let h = (height - y0).min(8);
        for r in 0..h {
            let d = (y0 + r) * width + x0;
            if let (Some(dst), Some(src)) = (samples.get_mut(d..d + w), out.get(r * 8..r * 8 + w)) {
                dst.copy_from_slice(src);
            }
        }
    }
    Ok(samples)
}

/// Decodes one 8x8 block into `coefs` (natural order, not dequantized,
/// which must be zeroed). Returns whether any AC coefficient was coded.
#[inline]
fn decode_block(
    br: &mut BitReader,
    dc: &HuffTable,
    ac: &HuffTable,
    pred: &mut i32,
    coefs: &mut [i32; 64],
) -> Result<bool, JpegError> {
    let s = u32::from(br.decode(dc)?);
    if s > 16 {
        return Err(JpegError::BadCoefficient);
    }
    let diff = if s == 0 { 0 } else { br.receive_extend(s) };
    *pred = pred.wrapping_add(diff);
    // libjpeg stores coefficients as 16-bit JCOEF.
    coefs[0] = i32::from(*pred as i16);
    let mut any = false;
    let mut k = 1usize;
    while k < 64 {
        let rs = br.decode(ac)?;
        let r = usize::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s == 0 {
            if r != 15 {
                break;
            }
            k += 16;
            continue;
        }
        k += r;
        let v = br.receive_extend(s);
        // Like libjpeg, a run past the end of the block lands on the last
        // coefficient.
        let z = ZIGZAG.get(k).copied().unwrap_or(63);
        if let Some(c) = coefs.get_mut(usize::from(z)) {
            *c = i32::from(v as i16);
        }
        any = true;
        k += 1;
    }
    Ok(any)
}

const CONST_BITS: u32 = 13;
const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// Right shift with rounding (IJG `DESCALE`).
#[inline]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// One 1-D 8-point IDCT (IJG islow) on inputs `c[0..8]`, returning the
/// outputs scaled up by 2^`CONST_BITS` (before descaling).
#[inline]
fn idct_1d(c: [i64; 8]) -> [i64; 8] {
    // Even part.
    let z2 = c[2];
    let z3 = c[6];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 - z3 * FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;
    let tmp0 = (c[0] + c[4]) << CONST_BITS;
    let tmp1 = (c[0] - c[4]) << CONST_BITS;
    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;
    // Odd part.
    let (t0, t1, t2, t3) = (c[7], c[5], c[3], c[1]);
    let z1 = t0 + t3;
    let z2 = t1 + t2;
    let z3 = t0 + t2;
    let z4 = t1 + t3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let t0 = t0 * FIX_0_298631336;
    let t1 = t1 * FIX_2_053119869;
    let t2 = t2 * FIX_3_072711026;
    let t3 = t3 * FIX_1_501321110;
    let z1 = -z1 * FIX_0_899976223;
    let z2 = -z2 * FIX_2_562915447;
    let z3 = -z3 * FIX_1_961570560 + z5;
    let z4 = -z4 * FIX_0_390180644 + z5;
    let t0 = t0 + z1 + z3;
    let t1 = t1 + z2 + z4;
    let t2 = t2 + z2 + z3;
    let t3 = t3 + z1 + z4;
    [tmp10 + t3, tmp11 + t2, tmp12 + t1, tmp13 + t0, tmp13 - t0, tmp12 - t1, tmp11 - t2, tmp10 - t3]
}

/// Dequantizes and inverse transforms one block (IJG `jpeg_idct_islow`),
/// level shifts by `center` and clamps to `0..=maxval`. Uses 64-bit
/// intermediates, so arbitrary (corrupt) inputs cannot overflow.
fn idct_islow(coefs: &[i32; 64], q: &[i32; 64], pass1_bits: u32, center: i64, maxval: i64, out: &mut [u16; 64]) {
    let mut ws = [0i64; 64];
    // Pass 1: columns.
    for col in 0..8 {
        let mut c = [0i64; 8];
        let mut ac_zero = true;
        for (row, v) in c.iter_mut().enumerate() {
            let i = row * 8 + col;
            *v = i64::from(coefs[i]) * i64::from(q[i]);
            if row > 0 && coefs[i] != 0 {
                ac_zero = false;
            }
        }
        if ac_zero {
            let dc = c[0] << pass1_bits;
            for row in 0..8 {
                ws[row * 8 + col] = dc;
            }
            continue;
        }
        let o = idct_1d(c);
        for row in 0..8 {
            ws[row * 8 + col] = descale(o[row], CONST_BITS - pass1_bits);
        }
    }
    // Pass 2: rows.
    let shift = CONST_BITS + pass1_bits + 3;
    for (w, dst) in ws.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        let mut c = [0i64; 8];
        c.copy_from_slice(w);
        if c[1..].iter().all(|&v| v == 0) {
            let v = (descale(c[0], pass1_bits + 3) + center).clamp(0, maxval) as u16;
            dst.fill(v);
            continue;
        }
        let o = idct_1d(c);
        for (d, v) in dst.iter_mut().zip(o) {
            *d = (descale(v, shift) + center).clamp(0, maxval) as u16;
        }
    }
}
