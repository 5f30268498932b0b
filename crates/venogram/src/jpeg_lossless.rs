//! Decoder for lossless JPEG (ITU-T T.81 process 14: SOF3, Huffman coded,
//! non-hierarchical) with a single (grayscale) component and a sample
//! precision of 2 to 16 bits.
//!
//! This covers the DICOM transfer syntaxes "JPEG Lossless, Non-Hierarchical,
//! First-Order Prediction (Process 14, Selection Value 1)"
//! (1.2.840.10008.1.2.4.70) and "JPEG Lossless, Non-Hierarchical (Process
//! 14)" (1.2.840.10008.1.2.4.57) with any predictor (selection value 1 to 7)
//! for monochrome images.
//!
//! Supported: SOI, APPn/COM/DQT/JPGn (skipped), DHT, SOF3, DRI with `RSTn`
//! restart markers (the restart interval must be a whole number of lines, as
//! T.81 requires for the lossless processes), SOS with predictors 1 to 7 and
//! point transform, DNL (height given after the scan), byte stuffing and fill
//! bytes. Reconstruction follows T.81 H.2: predictions and differences are
//! computed modulo 2^16, difference category 16 means +32768 with no extra
//! bits, and each output sample is the reconstructed value shifted left by
//! the point transform, masked to the sample precision.
//!
//! Predictor 6 is decoded as the standard defines it; images written by old
//! encoders whose predictor 6 overflowed (see dcmtk's `+w6` workaround) are
//! not corrected.
//!
//! Not supported (reported as errors): DCT, hierarchical and arithmetic
//! coded processes, frames or scans with more than one component, and
//! restart intervals that are not a multiple of the line width.
//!
//! The decoder never panics on malformed input; it returns a
//! [`LosslessError`].
//!
//! Speed: the entropy decoder keeps a 64-bit bit buffer in registers,
//! refilled 8 bytes at a time when they hold no 0xFF (stuffing and markers
//! take a byte-wise slow path). One 12-bit table lookup decodes a Huffman
//! code together with its extra bits, and, when the table's code lengths
//! predict few bits per sample (typically 8-bit and smooth images), two
//! whole samples at once; longer codes take a slow path. The reconstruction
//! loops are specialised per predictor and write into the output slice, with
//! the first line and column handled outside the inner loops.
//!
//! Use: `decode_into(frame_bitstream, &mut out)` decodes one frame's encapsulated JPEG
//! bitstream (`FFD8` ... `FFD9`) into a buffer of `width * height` samples.

use std::fmt;

use crate::jpeg_markers::{self, MarkerError, Next, be16};

impl From<MarkerError> for LosslessError {
    fn from(e: MarkerError) -> Self {
        match e {
            MarkerError::Truncated => Self::Truncated,
            MarkerError::BadMarker { marker, offset } => Self::BadMarker { marker, offset },
            MarkerError::BadSegment { marker, offset } => Self::BadSegment { marker, offset },
        }
    }
}

/// A decoded single-component lossless JPEG image (tests decode into new buffers).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedLossless {
    /// Number of samples per line.
    pub width: u16,
    /// Number of lines.
    pub height: u16,
    /// Sample precision in bits (2 to 16).
    pub precision: u8,
    /// Samples in row-major order, `width * height` values in
    /// `0..2^precision`.
    pub samples: Vec<u16>,
}

/// Reasons why a lossless JPEG stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LosslessError {
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
    /// The sample precision is outside 2..=16 bits.
    UnsupportedPrecision(u8),
    /// The frame (or scan) has this many components; only 1 is supported.
    UnsupportedComponents(u8),
    /// The frame has zero width, or zero height and no DNL marker.
    BadDimensions,
    /// The scan's predictor (selection value) is not in 1..=7.
    BadPredictor(u8),
    /// The scan's point transform is not smaller than the precision.
    BadPointTransform(u8),
    /// The restart interval (in samples) is not a multiple of the width.
    UnsupportedRestartInterval(u16),
    /// The Huffman table referenced by the scan was never defined.
    MissingHuffmanTable(u8),
    /// A Huffman table definition is invalid (too many codes).
    BadHuffmanTable,
    /// The entropy-coded data contains a code not in the Huffman table.
    BadHuffmanCode,
    /// A decoded difference magnitude category is above 16.
    BadDifference(u8),
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
    /// The output buffer given to [`decode_into`] has the wrong length.
    OutputSize {
        /// Samples in the image (`width * height`).
        expected: usize,
        /// Length of the buffer given.
        actual: usize,
    },
}

impl fmt::Display for LosslessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LosslessError::Truncated => write!(f, "lossless JPEG data is truncated"),
            LosslessError::NotJpeg => write!(f, "not a JPEG stream (missing SOI marker)"),
            LosslessError::BadMarker { marker, offset } => {
                write!(f, "invalid or unexpected JPEG marker 0x{marker:02X} at offset {offset}")
            }
            LosslessError::BadSegment { marker, offset } => {
                write!(f, "malformed JPEG marker segment 0x{marker:02X} at offset {offset}")
            }
            LosslessError::UnsupportedProcess(m) => {
                let what = match m {
                    0xC0..=0xC2 => "DCT",
                    0xC5..=0xC7 | 0xDE | 0xDF => "hierarchical",
                    0xC9..=0xCF => "arithmetic coded",
                    _ => "unknown",
                };
                write!(
                    f,
                    "unsupported JPEG process (marker 0x{m:02X}, {what}); only non-hierarchical Huffman coded lossless (SOF3) is supported"
                )
            }
            LosslessError::UnsupportedPrecision(p) => {
                write!(f, "unsupported lossless JPEG sample precision {p} (only 2 to 16 bits)")
            }
            LosslessError::UnsupportedComponents(n) => {
                write!(f, "unsupported number of JPEG components {n} (only 1)")
            }
            LosslessError::BadDimensions => write!(f, "invalid JPEG image dimensions"),
            LosslessError::BadPredictor(p) => {
                write!(f, "invalid lossless JPEG predictor {p} (must be 1 to 7)")
            }
            LosslessError::BadPointTransform(pt) => {
                write!(f, "invalid lossless JPEG point transform {pt} (must be below the precision)")
            }
            LosslessError::UnsupportedRestartInterval(ri) => {
                write!(f, "unsupported lossless JPEG restart interval {ri} (not a multiple of the width)")
            }
            LosslessError::MissingHuffmanTable(id) => {
                write!(f, "JPEG Huffman table {id} is not defined")
            }
            LosslessError::BadHuffmanTable => write!(f, "invalid JPEG Huffman table"),
            LosslessError::BadHuffmanCode => write!(f, "invalid Huffman code in JPEG data"),
            LosslessError::BadDifference(s) => {
                write!(f, "invalid difference category {s} in lossless JPEG data")
            }
            LosslessError::BadRestartMarker { expected, found } => {
                write!(f, "expected JPEG restart marker 0x{expected:02X}, found 0x{found:02X}")
            }
            LosslessError::MissingFrame => write!(f, "JPEG scan before frame header"),
            LosslessError::MissingScan => write!(f, "JPEG image contains no scan"),
            LosslessError::UnknownComponent(c) => {
                write!(f, "JPEG scan refers to unknown component {c}")
            }
            LosslessError::OutputSize { expected, actual } => {
                write!(f, "output buffer holds {actual} samples, the image has {expected}")
            }
        }
    }
}

impl std::error::Error for LosslessError {}

/// Number of bits resolved by one lookup in [`HuffTable::lut`].
const LUT_BITS: u32 = 12;

/// Flag in a lookup entry: the sample cannot be decoded from the entry
/// alone (long code, extra bits beyond the lookup window, or invalid code).
const SLOW: u64 = 1 << 63;

/// Flag in a lookup entry: the entry holds two samples.
const PAIR: u64 = 1 << 15;

/// A Huffman table for lossless difference categories, with a combined
/// lookup that decodes codes and their extra bits at once, up to two samples
/// per lookup.
struct HuffTable {
    /// Indexed by the next `LUT_BITS` bits. Entries without [`SLOW`] hold
    /// one or two complete samples:
    ///
    /// - bits 0..=7: bits used by all samples of the entry (at least 1),
    ///   kept in the low bits so that they can serve as a shift count
    ///   directly;
    /// - bits 8..=13: bits used by the first sample;
    /// - bit 15: [`PAIR`], set when the entry holds two samples;
    /// - bits 16..=31: difference of the first sample;
    /// - bits 32..=47: difference of the second sample (0 if none).
    ///
    /// With [`SLOW`]: `(symbol << 16) | code length` when the code fits the
    /// window but its extra bits do not, or just [`SLOW`] when the code is
    /// longer than `LUT_BITS` bits or invalid.
    lut: Box<[u64; 1 << LUT_BITS]>,
    /// Largest code of each length (index 1..=16), -1 if none.
    maxcode: [i32; 17],
    /// Index into `values` minus the first code, for each length.
    valoffset: [i32; 17],
    /// Symbols in code order.
    values: [u8; 256],
    /// Whether `lut` holds two-sample entries (see [`use_pairs`]).
    pairs: bool,
}

/// The difference encoded by the `s` (1..=15) extra bits `v` (T.81 F.2.2.1).
#[inline]
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "differences are taken modulo 2^16 (T.81 H.2.1)"
)]
fn extend(v: u32, s: u32) -> u16 {
    let v = v.cast_signed();
    let d = if v < 1 << (s - 1) { v - (1 << s) + 1 } else { v };
    d as u16
}

/// Number of extra bits following the code of difference category `s`.
fn extra_bits(s: u8) -> u32 {
    if s == 16 { 0 } else { u32::from(s) }
}

/// The difference of category `s` (0..=16) with extra bits `v`.
fn difference(s: u8, v: u32) -> u16 {
    match s {
        0 => 0,
        16 => 0x8000,
        _ => extend(v, u32::from(s)),
    }
}

/// A Huffman code: (code, length in bits, symbol).
type Code = (u32, u32, u8);

/// Largest expected number of bits per sample, in 1/256 bits, for which
/// two-sample lookup entries are used (6.5 bits).
const PAIR_MAX_MEAN_BITS: u64 = 6 * 256 + 128;

/// Decides whether to build two-sample lookup entries for a table.
///
/// Decoding two samples per lookup nearly halves the time for low-entropy
/// data, but the two-sample loop is slower when pairs rarely fit the lookup
/// window. As encoders build Huffman tables from the statistics of the image
/// (a code of `len` bits standing for a probability of about 2^-len), the
/// expected number of bits per sample (code plus extra bits) follows from
/// the table itself.
fn use_pairs(codes: &[(u32, u8)]) -> bool {
    let mean: u64 = codes
        .iter()
        .map(|&(len, sym)| {
            let bits = u64::from(len + extra_bits(sym.min(16)));
            (bits << 24) >> len
        })
        .sum();
    mean <= PAIR_MAX_MEAN_BITS << 16
}

impl HuffTable {
    /// Builds a table from the 16 code counts and the symbol list, with
    /// two-sample entries if `pairs` says so (by default if [`use_pairs`]
    /// recommends them).
    fn new(counts: &[u8], symbols: &[u8], pairs: Option<bool>) -> Result<HuffTable, LosslessError> {
        let lut = vec![SLOW; 1 << LUT_BITS].into_boxed_slice();
        let mut t = HuffTable {
            lut: lut.try_into().map_err(|_| LosslessError::BadHuffmanTable)?,
            maxcode: [-1; 17],
            valoffset: [0; 17],
            values: [0; 256],
            pairs: false,
        };
        if symbols.len() > 256 {
            return Err(LosslessError::BadHuffmanTable);
        }
        for (d, s) in t.values.iter_mut().zip(symbols) {
            *d = *s;
        }
        let mut short: Vec<Code> = Vec::new();
        let mut all: Vec<(u32, u8)> = Vec::new();
        let mut code: u32 = 0;
        let mut p: usize = 0;
        for (len, &n) in (1u32..=16).zip(counts) {
            let first = code;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err(LosslessError::BadHuffmanTable);
                }
                let sym = *symbols.get(p).ok_or(LosslessError::BadHuffmanTable)?;
                if len <= LUT_BITS {
                    short.push((code, len, sym));
                }
                all.push((len, sym));
                code += 1;
                p += 1;
            }
            if n > 0
                && let (Some(mc), Some(vo)) = (t.maxcode.get_mut(len as usize), t.valoffset.get_mut(len as usize))
            {
                // code < 2^16 and p <= 256, so these fit an i32.
                *mc = code.cast_signed() - 1;
                *vo = i32::from(u16::try_from(p).unwrap_or(u16::MAX)) - i32::from(n) - first.cast_signed();
            }
            code <<= 1;
        }
        if p != symbols.len() {
            return Err(LosslessError::BadHuffmanTable);
        }
        t.pairs = pairs.unwrap_or_else(|| use_pairs(&all));
        t.fill_lut(&short);
        Ok(t)
    }

    /// Sets the entries for the bit prefix `prefix` of `bits` (at most
    /// `LUT_BITS`) bits to `entry`.
    fn fill(&mut self, prefix: u32, bits: u32, entry: u64) {
        let shift = LUT_BITS - bits;
        let base = (prefix << shift) as usize;
        if let Some(slots) = self.lut.get_mut(base..base + (1usize << shift)) {
            slots.fill(entry);
        }
    }

    /// Fills the lookup from the codes of at most `LUT_BITS` bits.
    fn fill_lut(&mut self, codes: &[Code]) {
        // Whether a whole sample (code and extra bits) of `bits` code bits
        // and category `s` fits the window.
        let fits = |bits: u32, s: u8| s <= 16 && bits + extra_bits(s) <= LUT_BITS;
        for &(code, len, sym) in codes {
            if !fits(len, sym) {
                self.fill(code, len, SLOW | (u64::from(sym) << 16) | u64::from(len));
            }
        }
        for &(c1, l1, s1) in codes.iter().filter(|c| fits(c.1, c.2)) {
            let x1 = extra_bits(s1);
            let t1 = l1 + x1;
            for v1 in 0..1u32 << x1 {
                let p1 = (c1 << x1) | v1;
                let d1 = u64::from(difference(s1, v1));
                let one = (d1 << 16) | u64::from(t1 << 8 | t1);
                self.fill(p1, t1, one);
                if !self.pairs {
                    continue;
                }
                // Second samples that fit the rest of the window.
                for &(c2, l2, s2) in codes.iter().filter(|c| fits(t1 + c.1, c.2)) {
                    let x2 = extra_bits(s2);
                    let t = t1 + l2 + x2;
                    for v2 in 0..1u32 << x2 {
                        let p = (((p1 << l2) | c2) << x2) | v2;
                        let d2 = u64::from(difference(s2, v2));
                        let two = (d2 << 32) | (d1 << 16) | u64::from(t1 << 8 | t) | PAIR;
                        self.fill(p, t, two);
                    }
                }
            }
        }
    }

    /// Decodes a sample whose lookup entry `e` has [`SLOW`] set, from the
    /// bit buffer `acc` holding `n >= 32` bits. Returns the difference and
    /// the bit buffer and count after the sample (the shift is done here so
    /// that the callers' fast paths do not share it).
    #[cold]
    #[inline(never)]
    #[expect(clippy::cast_possible_truncation, reason = "fields of the entry and of the bit buffer")]
    fn decode_slow(&self, acc: u64, n: u32, e: u64) -> Result<(u16, u64, u32), LosslessError> {
        let mut len = (e & 0xFF) as u32;
        let mut sym = ((e >> 16) & 0xFF) as u32;
        if len == 0 {
            let bits16 = i32::from((acc >> 48) as u16);
            let found = (LUT_BITS + 1..=16).find_map(|l| {
                let code = bits16 >> (16 - l);
                let maxcode = *self.maxcode.get(l as usize)?;
                let off = *self.valoffset.get(l as usize)?;
                if code > maxcode {
                    return None;
                }
                let idx = usize::try_from(code + off).ok()?;
                Some((l, *self.values.get(idx)?))
            });
            let (l, s) = found.ok_or(LosslessError::BadHuffmanCode)?;
            len = l;
            sym = u32::from(s);
        }
        let (d, used) = match sym {
            0 => (0, len),
            16 => (0x8000, len),
            1..=15 => {
                let v = ((acc << len) >> (64 - sym)) as u32;
                (extend(v, sym), len + sym)
            }
            _ => {
                return Err(LosslessError::BadDifference(u8::try_from(sym).unwrap_or(u8::MAX)));
            }
        };
        // A sample uses at most 31 bits.
        let used = used.min(n);
        Ok((d, acc << used, n - used))
    }
}

/// Source of entropy-coded bytes: removes byte stuffing and stops at
/// markers, after which it supplies zero bits (counted as padding).
///
/// The bit buffer itself (`acc`, `n`) is kept by the callers in local
/// variables so that it stays in registers in the decoding loops. `acc` holds
/// the next `n` bits in its most significant positions; the bits below them
/// are either zero or the (correct) bits that follow in the stream.
struct Source<'a> {
    data: &'a [u8],
    pos: usize,
    /// Number of zero bits appended after a marker or the end of the data.
    pad_bits: u64,
    /// Set once a marker or the end of the data has been reached.
    stopped: bool,
}

impl Source<'_> {
    /// Fills the bit buffer `acc` holding `n` bits to at least 56 bits and
    /// returns it with its new bit count; requires `n < 32`. The buffer is
    /// passed by value so that it can live in registers.
    #[inline(always)]
    #[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
    fn refill(&mut self, acc: u64, n: u32) -> (u64, u32) {
        // Fast path: the next 8 bytes contain no 0xFF, so no stuffing or
        // marker can occur among the bytes taken.
        if let Some(chunk) = self.data.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
            let w = u64::from_be_bytes(*chunk);
            if (!w).wrapping_sub(0x0101_0101_0101_0101) & w & 0x8080_8080_8080_8080 == 0 {
                let take = (63 - n) >> 3;
                self.pos += take as usize;
                return (acc | (w >> n), n + (take << 3));
            }
        }
        self.refill_slow(acc, n)
    }

    /// Byte-wise refill handling stuffing, markers and the end of the data.
    #[cold]
    #[inline(never)]
    fn refill_slow(&mut self, mut acc: u64, mut n: u32) -> (u64, u32) {
        while n <= 56 {
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
            acc |= u64::from(byte) << (56 - n);
            n += 8;
        }
        (acc, n)
    }

    /// Fails if any padding bits (beyond the real data) were consumed, given
    /// `n` bits left in the buffer.
    fn check(&self, n: u32) -> Result<(), LosslessError> {
        if u64::from(n) >= self.pad_bits {
            return Ok(());
        }
        match self.data.get(self.pos + 1) {
            Some(&marker) => Err(LosslessError::BadMarker { marker, offset: self.pos }),
            _ => Err(LosslessError::Truncated),
        }
    }

    /// Consumes the next marker, which must be the restart marker `RSTn` with
    /// n = `expected`, and resets the source to the data following it (the
    /// caller empties its bit buffer).
    fn restart(&mut self, expected: u8) -> Result<(), LosslessError> {
        let (marker, p) = jpeg_markers::next_marker_in_scan(self.data, self.pos)?;
        let want = 0xD0 | (expected & 7);
        if marker != want {
            return Err(LosslessError::BadRestartMarker { expected: want, found: marker });
        }
        self.pos = p + 2;
        self.pad_bits = 0;
        self.stopped = false;
        Ok(())
    }
}

/// Returns the lookup entry for the next bits, refilling the bit buffer
/// first if it holds fewer than 32 bits.
#[inline(always)]
#[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
fn lookup(src: &mut Source, acc: &mut u64, n: &mut u32, t: &HuffTable) -> u64 {
    if *n < 32 {
        (*acc, *n) = src.refill(*acc, *n);
    }
    t.lut[(*acc >> (64 - LUT_BITS)) as usize]
}

/// Decodes the difference of one sample. `PAIRS` tells whether the table
/// has two-sample entries.
#[inline(always)]
#[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
#[expect(clippy::cast_possible_truncation, reason = "fields of the lookup entry")]
fn diff1<const PAIRS: bool>(src: &mut Source, acc: &mut u64, n: &mut u32, t: &HuffTable) -> Result<u16, LosslessError> {
    let e = lookup(src, acc, n, t);
    if !PAIRS && e & SLOW == 0 {
        // All entries hold one sample, whose length sits in the low 6 bits:
        // the wrapping shift (which masks its count to 6 bits) can use the
        // entry directly.
        *acc = acc.wrapping_shl(e as u32);
        *n -= u32::from(e as u8);
        return Ok((e >> 16) as u16);
    }
    if e & SLOW == 0 {
        // The first sample of the entry.
        let len = (e >> 8) & 63;
        *acc <<= len;
        *n -= len as u32;
        Ok((e >> 16) as u16)
    } else {
        let d;
        (d, *acc, *n) = t.decode_slow(*acc, *n, e)?;
        Ok(d)
    }
}

/// Decodes the differences of one or two samples: `(d1, d2, count)`, with
/// `d2 = 0` when `count` is 1.
#[inline(always)]
#[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
#[expect(clippy::cast_possible_truncation, reason = "fields of the lookup entry")]
fn diff2(src: &mut Source, acc: &mut u64, n: &mut u32, t: &HuffTable) -> Result<(u16, u16, usize), LosslessError> {
    let e = lookup(src, acc, n, t);
    if e & SLOW == 0 {
        // The length sits in the low 6 bits: the wrapping shift (which
        // masks its count to 6 bits) can use the entry directly.
        *acc = acc.wrapping_shl(e as u32);
        *n -= u32::from(e as u8);
        Ok(((e >> 16) as u16, (e >> 32) as u16, 1 + ((e & PAIR) >> 15) as usize))
    } else {
        let d;
        (d, *acc, *n) = t.decode_slow(*acc, *n, e)?;
        Ok((d, 0, 1))
    }
}

/// The prediction of selection value `PSV` (T.81 Table H.1) from the
/// reconstructed neighbours left (`ra`), above (`rb`) and above left (`rc`),
/// modulo 2^16.
#[inline(always)]
#[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "predictions are taken modulo 2^16 (T.81 H.2.1)"
)]
fn predict<const PSV: u8>(ra: u16, rb: u16, rc: u16) -> u16 {
    let (a, b, c) = (i32::from(ra), i32::from(rb), i32::from(rc));
    match PSV {
        1 => ra,
        2 => rb,
        3 => rc,
        4 => ra.wrapping_add(rb).wrapping_sub(rc),
        5 => (a + ((b - c) >> 1)) as u16,
        6 => (b + ((a - c) >> 1)) as u16,
        _ => ((a + b) >> 1) as u16,
    }
}

/// Decodes `row` with predictor 1 (the left neighbour), the first sample
/// predicted from `ra`. `PAIRS` tells whether the table has two-sample
/// entries.
#[inline(always)]
#[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
fn run_left<const PAIRS: bool>(
    src: &mut Source,
    acc: &mut u64,
    n: &mut u32,
    t: &HuffTable,
    row: &mut [u16],
    mut ra: u16,
) -> Result<(), LosslessError> {
    if !PAIRS {
        for o in row.iter_mut() {
            ra = ra.wrapping_add(diff1::<false>(src, acc, n, t)?);
            *o = ra;
        }
        return Ok(());
    }
    let mut x = 0;
    while let Some([o1, o2]) = row.get_mut(x..x + 2) {
        // Both slots are written; when only one sample was decoded, the
        // second is overwritten by the next step (d2 is 0, so `ra` is right
        // either way).
        let (d1, d2, count) = diff2(src, acc, n, t)?;
        let r1 = ra.wrapping_add(d1);
        ra = r1.wrapping_add(d2);
        *o1 = r1;
        *o2 = ra;
        x += count;
    }
    if let Some(o) = row.get_mut(x) {
        *o = ra.wrapping_add(diff1::<true>(src, acc, n, t)?);
    }
    Ok(())
}

/// Decodes `row` (not the first of a restart interval) with predictor
/// `PSV` (2..=7), given the previous row `prev` of the same length.
/// `PAIRS` tells whether the table has two-sample entries.
#[inline(always)]
#[expect(clippy::inline_always, reason = "hot decoding loop, measured")]
fn run_above<const PSV: u8, const PAIRS: bool>(
    src: &mut Source,
    acc: &mut u64,
    n: &mut u32,
    t: &HuffTable,
    row: &mut [u16],
    prev: &[u16],
) -> Result<(), LosslessError> {
    let w = row.len();
    let (Some(prev), Some((c0, rest)), Some((&p0, prev_rest))) =
        (prev.get(..w), row.split_first_mut(), prev.split_first())
    else {
        return Ok(());
    };
    // The first column is predicted from the sample above.
    let mut ra = p0.wrapping_add(diff1::<PAIRS>(src, acc, n, t)?);
    *c0 = ra;
    if !PAIRS {
        let mut rc = p0;
        for (o, &rb) in rest.iter_mut().zip(prev_rest) {
            ra = predict::<PSV>(ra, rb, rc).wrapping_add(diff1::<false>(src, acc, n, t)?);
            *o = ra;
            rc = rb;
        }
        return Ok(());
    }
    let mut x = 1;
    while x + 1 < w {
        let (d1, d2, count) = diff2(src, acc, n, t)?;
        let Some(&[rc, rb1, rb2]) = prev.get(x - 1..x + 2) else {
            break;
        };
        let r1 = predict::<PSV>(ra, rb1, rc).wrapping_add(d1);
        let r2 = predict::<PSV>(r1, rb2, rb1).wrapping_add(d2);
        if let Some([o1, o2]) = row.get_mut(x..x + 2) {
            *o1 = r1;
            *o2 = r2;
        }
        ra = if count == 2 { r2 } else { r1 };
        x += count;
    }
    if let (Some(o), Some(&[rc, rb])) = (row.get_mut(x), prev.get(x.wrapping_sub(1)..=x)) {
        *o = predict::<PSV>(ra, rb, rc).wrapping_add(diff1::<true>(src, acc, n, t)?);
    }
    Ok(())
}

/// Bit buffer state carried between restart intervals.
#[derive(Clone, Copy)]
struct Bits {
    acc: u64,
    n: u32,
}

/// Decodes one restart interval (or the whole image): `rows` holds whole
/// lines of `width` samples. The first line uses predictor 1 and starts from
/// `init`; later lines start from the sample above and use predictor `PSV`.
/// `PAIRS` tells whether the table has two-sample entries.
fn decode_lines<const PSV: u8, const PAIRS: bool>(
    src: &mut Source,
    bits: &mut Bits,
    t: &HuffTable,
    rows: &mut [u16],
    width: usize,
    init: u16,
) -> Result<(), LosslessError> {
    let (mut acc, mut n) = (bits.acc, bits.n);
    let mut lines = rows.chunks_exact_mut(width);
    let Some(first) = lines.next() else {
        return Ok(());
    };
    run_left::<PAIRS>(src, &mut acc, &mut n, t, first, init)?;
    let mut prev: &[u16] = first;
    for cur in lines {
        if PSV == 1 {
            let (Some((c0, rest)), Some(&p0)) = (cur.split_first_mut(), prev.first()) else {
                break;
            };
            *c0 = p0.wrapping_add(diff1::<PAIRS>(src, &mut acc, &mut n, t)?);
            run_left::<PAIRS>(src, &mut acc, &mut n, t, rest, *c0)?;
        } else {
            run_above::<PSV, PAIRS>(src, &mut acc, &mut n, t, cur, prev)?;
        }
        prev = cur;
    }
    *bits = Bits { acc, n };
    Ok(())
}

/// Frame header information for the single component.
struct Frame {
    precision: u8,
    width: u16,
    height: u16,
    component_id: u8,
}

/// Scan header information.
struct Scan {
    table: u8,
    predictor: u8,
    point_transform: u8,
}

/// Decodes a lossless (SOF3), Huffman coded, single component JPEG stream.
///
/// # Errors
///
/// Returns a [`LosslessError`] if the stream is malformed or uses features
/// this decoder does not support.
#[cfg(test)]
pub fn decode(data: &[u8]) -> Result<DecodedLossless, LosslessError> {
    let mut samples = Vec::new();
    let (width, height, precision) = decode_impl(data, Output::Alloc(&mut samples), None)?;
    Ok(DecodedLossless { width, height, precision, samples })
}

/// Decodes a lossless (SOF3), Huffman coded, single component JPEG stream
/// into `out`, which must hold exactly `width * height` samples (row-major).
/// Returns the width, height and sample precision.
///
/// # Errors
///
/// Returns [`LosslessError::OutputSize`] if `out` has the wrong length, or
/// another [`LosslessError`] if the stream is malformed or uses features this
/// decoder does not support. On error, `out` holds unspecified values.
pub fn decode_into(data: &[u8], out: &mut [u16]) -> Result<(u16, u16, u8), LosslessError> {
    decode_impl(data, Output::Given(out), None)
}

/// Where the decoded samples go.
enum Output<'a> {
    /// A vector to be resized to the image size.
    #[cfg(test)]
    Alloc(&'a mut Vec<u16>),
    /// A caller's buffer that must have the image size.
    Given(&'a mut [u16]),
}

/// Parses the markers up to the first scan and decodes it. `pairs`
/// overrides the choice of two-sample lookup entries (for tests).
fn decode_impl(data: &[u8], out: Output, pairs: Option<bool>) -> Result<(u16, u16, u8), LosslessError> {
    if data.get(0..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(LosslessError::NotJpeg);
    }
    let mut pos = 2usize;
    // Huffman table definitions (code counts and symbols); only the table
    // the scan uses is built, so that streams with many tables stay cheap.
    let mut tables: [Option<TableSpec>; 4] = [None; 4];
    let mut frame: Option<Frame> = None;
    let mut restart_interval: u16 = 0;

    loop {
        let (marker, offset, seg) = match jpeg_markers::next(data, &mut pos)? {
            Next::Segment { marker, offset, body } => (marker, offset, body),
            Next::EndOfImage => {
                return Err(if frame.is_some() { LosslessError::MissingScan } else { LosslessError::MissingFrame });
            }
            Next::EndOfData => {
                return Err(if frame.is_some() { LosslessError::Truncated } else { LosslessError::MissingFrame });
            }
        };
        let bad = LosslessError::BadSegment { marker, offset };
        match marker {
            0xC3 => {
                if frame.is_some() {
                    return Err(LosslessError::BadMarker { marker, offset });
                }
                frame = Some(parse_frame(seg, bad)?);
            }
            0xC0..=0xC2 | 0xC5..=0xCB | 0xCD..=0xCF | 0xDE | 0xDF => {
                return Err(LosslessError::UnsupportedProcess(marker));
            }
            0xC4 => parse_dht(seg, &mut tables, bad)?,
            0xDD => restart_interval = be16(seg, 0).ok_or(bad)?,
            0xDA => {
                let f = frame.as_ref().ok_or(LosslessError::MissingFrame)?;
                let scan = parse_sos(seg, f, bad)?;
                let (counts, symbols) = tables
                    .get(usize::from(scan.table))
                    .copied()
                    .flatten()
                    .ok_or(LosslessError::MissingHuffmanTable(scan.table))?;
                let height = if f.height == 0 { find_dnl(data, pos)? } else { f.height };
                let total = usize::from(f.width) * usize::from(height);
                // Every sample takes at least one bit, so a frame claiming
                // more samples than the data has bits is truncated; checking
                // this first avoids huge allocations for corrupt headers.
                if total > data.len().saturating_sub(pos).saturating_mul(8) {
                    return Err(LosslessError::Truncated);
                }
                let buf: &mut [u16] = match out {
                    #[cfg(test)]
                    Output::Alloc(v) => {
                        v.clear();
                        v.resize(total, 0);
                        v.as_mut_slice()
                    }
                    Output::Given(b) => {
                        if b.len() != total {
                            return Err(LosslessError::OutputSize { expected: total, actual: b.len() });
                        }
                        b
                    }
                };
                let table = HuffTable::new(counts, symbols, pairs)?;
                decode_scan(data, pos, f, &scan, &table, restart_interval, buf)?;
                return Ok((f.width, height, f.precision));
            }
            // APPn, COM, DQT, JPGn, DAC, DNL outside a scan, reserved: skip.
            _ => {}
        }
    }
}

/// Parses an SOF3 segment body.
fn parse_frame(seg: &[u8], bad: LosslessError) -> Result<Frame, LosslessError> {
    let precision = *seg.first().ok_or(bad.clone())?;
    let height = be16(seg, 1).ok_or(bad.clone())?;
    let width = be16(seg, 3).ok_or(bad.clone())?;
    let ncomp = *seg.get(5).ok_or(bad.clone())?;
    if !(2..=16).contains(&precision) {
        return Err(LosslessError::UnsupportedPrecision(precision));
    }
    if ncomp != 1 {
        return Err(LosslessError::UnsupportedComponents(ncomp));
    }
    if seg.len() != 9 {
        return Err(bad);
    }
    let component_id = *seg.get(6).ok_or(bad.clone())?;
    let hv = *seg.get(7).ok_or(bad.clone())?;
    // The quantization table selector (byte 8) is unused in lossless mode.
    if !(1..=4).contains(&(hv >> 4)) || !(1..=4).contains(&(hv & 15)) {
        return Err(bad);
    }
    if width == 0 {
        return Err(LosslessError::BadDimensions);
    }
    Ok(Frame { precision, width, height, component_id })
}

/// A Huffman table definition: the 16 code counts and the symbols.
type TableSpec<'a> = (&'a [u8], &'a [u8]);

/// Parses a DHT segment body (one or more tables). Class 1 (AC) tables are
/// skipped: lossless scans use class 0 only.
fn parse_dht<'a>(
    seg: &'a [u8],
    tables: &mut [Option<TableSpec<'a>>; 4],
    bad: LosslessError,
) -> Result<(), LosslessError> {
    let mut p = 0usize;
    while p < seg.len() {
        let tc_th = *seg.get(p).ok_or(bad.clone())?;
        let counts = seg.get(p + 1..p + 17).ok_or(bad.clone())?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = seg.get(p + 17..p + 17 + total).ok_or(bad.clone())?;
        if tc_th >> 4 > 1 || tc_th & 15 > 3 {
            return Err(bad);
        }
        if tc_th >> 4 == 0
            && let Some(slot) = tables.get_mut(usize::from(tc_th & 15))
        {
            *slot = Some((counts, symbols));
        }
        p += 17 + total;
    }
    Ok(())
}

/// Parses an SOS segment body.
fn parse_sos(seg: &[u8], frame: &Frame, bad: LosslessError) -> Result<Scan, LosslessError> {
    let ns = *seg.first().ok_or(bad.clone())?;
    if ns != 1 {
        return Err(LosslessError::UnsupportedComponents(ns));
    }
    if seg.len() != 6 {
        return Err(bad);
    }
    let cs = *seg.get(1).ok_or(bad.clone())?;
    let tdta = *seg.get(2).ok_or(bad.clone())?;
    let ss = *seg.get(3).ok_or(bad.clone())?;
    let ahal = *seg.get(5).ok_or(bad.clone())?;
    if cs != frame.component_id {
        return Err(LosslessError::UnknownComponent(cs));
    }
    let table = tdta >> 4;
    if table > 3 {
        return Err(bad);
    }
    if !(1..=7).contains(&ss) {
        return Err(LosslessError::BadPredictor(ss));
    }
    // Se (byte 4) and Ah are unused in lossless mode; like libjpeg, other
    // values than 0 are tolerated.
    let point_transform = ahal & 15;
    if point_transform >= frame.precision {
        return Err(LosslessError::BadPointTransform(point_transform));
    }
    Ok(Scan { table, predictor: ss, point_transform })
}

/// Finds the DNL marker following the scan starting at `pos` and returns
/// the number of lines it defines.
fn find_dnl(data: &[u8], mut pos: usize) -> Result<u16, LosslessError> {
    loop {
        match data.get(pos) {
            None => return Err(LosslessError::BadDimensions),
            Some(&0xFF) => match data.get(pos + 1) {
                Some(&0xFF) => pos += 1,
                Some(&(0x00 | 0xD0..=0xD7)) => pos += 2,
                Some(&0xDC) => {
                    let lines = be16(data, pos + 4).ok_or(LosslessError::Truncated)?;
                    if be16(data, pos + 2) != Some(4) || lines == 0 {
                        return Err(LosslessError::BadDimensions);
                    }
                    return Ok(lines);
                }
                _ => return Err(LosslessError::BadDimensions),
            },
            Some(_) => pos += 1,
        }
    }
}

/// Decodes the entropy-coded data of the scan starting at `pos` into `out`
/// (`width * height` samples).
fn decode_scan(
    data: &[u8],
    pos: usize,
    frame: &Frame,
    scan: &Scan,
    table: &HuffTable,
    restart_interval: u16,
    out: &mut [u16],
) -> Result<(), LosslessError> {
    let width = usize::from(frame.width);
    let ri = usize::from(restart_interval);
    if ri % width != 0 {
        return Err(LosslessError::UnsupportedRestartInterval(restart_interval));
    }
    // Samples per restart interval; the whole image when there is none.
    let chunk = if ri == 0 { out.len().max(1) } else { ri };
    let pt = scan.point_transform;
    let init = 1u16 << (frame.precision - pt - 1);
    let decode_lines = match (scan.predictor, table.pairs) {
        (1, false) => decode_lines::<1, false>,
        (2, false) => decode_lines::<2, false>,
        (3, false) => decode_lines::<3, false>,
        (4, false) => decode_lines::<4, false>,
        (5, false) => decode_lines::<5, false>,
        (6, false) => decode_lines::<6, false>,
        (_, false) => decode_lines::<7, false>,
        (1, true) => decode_lines::<1, true>,
        (2, true) => decode_lines::<2, true>,
        (3, true) => decode_lines::<3, true>,
        (4, true) => decode_lines::<4, true>,
        (5, true) => decode_lines::<5, true>,
        (6, true) => decode_lines::<6, true>,
        (_, true) => decode_lines::<7, true>,
    };
    let mut src = Source { data, pos, pad_bits: 0, stopped: false };
    let mut bits = Bits { acc: 0, n: 0 };
    for (i, rows) in out.chunks_mut(chunk).enumerate() {
        if i > 0 {
            src.check(bits.n)?;
            // The restart marker number is taken modulo 8.
            #[expect(clippy::cast_possible_truncation, reason = "modulo 8")]
            src.restart(((i - 1) & 7) as u8)?;
            bits = Bits { acc: 0, n: 0 };
        }
        decode_lines(&mut src, &mut bits, table, rows, width, init)?;
    }
    src.check(bits.n)?;
    // Undo the point transform and drop bits above the precision (which
    // only corrupt data can set).
    if pt > 0 || frame.precision < 16 {
        let mask = u16::MAX >> (16 - frame.precision);
        for v in out.iter_mut() {
            *v = (*v << pt) & mask;
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(
    clippy::many_single_char_names,
    clippy::cast_possible_truncation,
    reason = "the test encoder follows the T.81 notation and works on small values"
)]
mod tests {
    use super::{LosslessError, Output, decode, decode_impl};

    /// Deterministic xorshift64 generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Code length of each difference category: short codes (pairs fit the
    /// lookup window) up to 16-bit codes (slow path).
    const LENS: [u8; 17] = [2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

    /// Appends bits MSB first with byte stuffing.
    struct Writer {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }

    impl Writer {
        fn put(&mut self, v: u32, len: u32) {
            for i in (0..len).rev() {
                self.acc = (self.acc << 1) | ((v >> i) & 1);
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    if self.acc == 0xFF {
                        self.out.push(0);
                    }
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }

        fn flush(&mut self) {
            if self.n > 0 {
                self.put((1 << (8 - self.n)) - 1, 8 - self.n);
            }
        }
    }

    /// A minimal lossless JPEG encoder (T.81 H.1), independent of the
    /// decoder, for round-trip tests. `ri_lines` is the restart interval in
    /// lines (0: none).
    fn encode(img: &[u16], w: usize, h: usize, p: u8, pt: u8, psv: u8, ri_lines: usize) -> Vec<u8> {
        // Canonical codes from LENS.
        let mut order: Vec<u8> = (0..17).collect();
        order.sort_by_key(|&s| LENS[usize::from(s)]);
        let mut codes = [(0u32, 0u32); 17];
        let mut code = 0u32;
        let mut len = 1u32;
        for &s in &order {
            let l = u32::from(LENS[usize::from(s)]);
            code <<= l - len;
            len = l;
            codes[usize::from(s)] = (code, l);
            code += 1;
        }
        let x: Vec<i32> = img.iter().map(|&v| i32::from(v >> pt)).collect();
        let at = |r: usize, c: usize| x[r * w + c];
        let mut bw = Writer { out: Vec::new(), acc: 0, n: 0 };
        let mut rst = 0u8;
        for r in 0..h {
            let first = if ri_lines == 0 { r == 0 } else { r % ri_lines == 0 };
            if first && r > 0 {
                bw.flush();
                bw.out.extend([0xFF, 0xD0 + rst]);
                rst = (rst + 1) & 7;
            }
            for c in 0..w {
                let pred = if first {
                    if c == 0 { 1 << (p - pt - 1) } else { at(r, c - 1) }
                } else if c == 0 {
                    at(r - 1, 0)
                } else {
                    let (a, b, cc) = (at(r, c - 1), at(r - 1, c), at(r - 1, c - 1));
                    match psv {
                        1 => a,
                        2 => b,
                        3 => cc,
                        4 => a + b - cc,
                        5 => a + ((b - cc) >> 1),
                        6 => b + ((a - cc) >> 1),
                        _ => (a + b) >> 1,
                    }
                };
                let mut d = (at(r, c) - pred).rem_euclid(65536);
                if d > 32768 {
                    d -= 65536;
                }
                let s = if d == 32768 { 16 } else { 32 - d.unsigned_abs().leading_zeros() };
                let (code, l) = codes[s as usize];
                bw.put(code, l);
                if (1..16).contains(&s) {
                    let v = if d < 0 { d + (1 << s) - 1 } else { d };
                    bw.put(v.cast_unsigned(), s);
                }
            }
        }
        bw.flush();
        let mut o = vec![0xFF, 0xD8, 0xFF, 0xC4, 0, 2 + 17 + 17, 0x00];
        let mut counts = [0u8; 16];
        for &l in &LENS {
            counts[usize::from(l) - 1] += 1;
        }
        o.extend(counts);
        o.extend(&order);
        if ri_lines > 0 {
            let ri = (ri_lines * w) as u16;
            o.extend([0xFF, 0xDD, 0, 4]);
            o.extend(ri.to_be_bytes());
        }
        o.extend([0xFF, 0xC3, 0, 11, p]);
        o.extend((h as u16).to_be_bytes());
        o.extend((w as u16).to_be_bytes());
        o.extend([1, 1, 0x11, 0]);
        o.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, psv, 0, pt]);
        o.extend(&bw.out);
        o.extend([0xFF, 0xD9]);
        o
    }

    /// A smooth random image with occasional jumps (long codes, and
    /// category 16 at 16 bits).
    fn image(rng: &mut Rng, w: usize, h: usize, p: u8) -> Vec<u16> {
        let max = (1u32 << p) - 1;
        let mut v = max / 2;
        (0..w * h)
            .map(|i| {
                let r = rng.next();
                if r.is_multiple_of(23) {
                    v = (r >> 8) as u32 & max;
                } else if i % 97 == 5 && p == 16 {
                    v ^= 0x8000;
                } else {
                    v = (v + (r >> 40) as u32 % 5).saturating_sub(2).min(max);
                }
                v as u16
            })
            .collect()
    }

    #[test]
    fn round_trip_both_lookup_modes() {
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        for &(w, h) in &[(1, 5), (2, 3), (3, 4), (17, 9), (64, 6)] {
            for p in [2u8, 5, 8, 12, 16] {
                for psv in 1..=7 {
                    for (pt, ri) in [(0u8, 0usize), (1, 2), (0, 1)] {
                        let img = image(&mut rng, w, h, p);
                        let jpeg = encode(&img, w, h, p, pt, psv, ri);
                        let want: Vec<u16> = img.iter().map(|&v| v >> pt << pt).collect();
                        for pairs in [false, true] {
                            let mut got = Vec::new();
                            let r = decode_impl(&jpeg, Output::Alloc(&mut got), Some(pairs));
                            let what = format!("{w}x{h} P={p} psv={psv} pt={pt} ri={ri}");
                            assert_eq!(r, Ok((w as u16, h as u16, p)), "{what} {pairs}");
                            assert_eq!(got, want, "{what} pairs={pairs}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode(&[]), Err(LosslessError::NotJpeg));
        assert_eq!(decode(&[0xFF, 0xD8, 0xFF]), Err(LosslessError::Truncated));
    }
}
