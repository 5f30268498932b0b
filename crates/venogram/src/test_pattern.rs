//! A deterministic angiography-like test pattern: soft background gradients, dark curved
//! vessels that fill with contrast over the run, and noise. It exercises codecs the way a
//! venogram does (smooth regions, sharp edges, grain) and is used by the conformance tests,
//! the decode benchmark and the bundled sample. It is *not* the synthetic patient, which
//! lives in the simulator crate.

use crate::cine::{Cine, CineShapeError, PhotometricInterpretation, PixelFormat};

/// A xorshift64* generator: tiny, deterministic, good enough for image grain.
#[derive(Debug, Clone)]
struct Grain(u64);

impl Grain {
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Generates `frames` frames of `columns x rows` samples with `bits_stored` significant bits
/// (8 bits stored uses 8-bit containers, more uses 16-bit); zero sizes are an error.
pub fn angiography_pattern(
    rows: u32,
    columns: u32,
    frames: u32,
    bits_stored: u16,
    seed: u64,
) -> Result<Cine, CineShapeError> {
    let bits_stored = bits_stored.clamp(1, 16);
    let max = if bits_stored >= 16 { f64::from(u16::MAX) } else { f64::from((1u32 << bits_stored) - 1) };
    let mut grain = Grain(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (w, h) = (f64::from(columns.max(1)), f64::from(rows.max(1)));
    let phase = (seed % 628) as f64 / 100.0;
    let mut samples = Vec::with_capacity(rows as usize * columns as usize * frames as usize);
    for f in 0..frames {
        // Contrast fills over the first half of the run, then washes out a little.
        let t = f64::from(f) / f64::from(frames.max(2) - 1);
        let fill = (t * 2.0).min(1.0) * (1.0 - 0.3 * (t - 0.5).max(0.0));
        let beat = (t * 6.0 * std::f64::consts::PI).sin() * 0.01 * h;
        for r in 0..rows {
            let y = f64::from(r) / h;
            for c in 0..columns {
                let x = f64::from(c) / w;
                let background = 0.55 + 0.2 * (x * 2.1 + phase).sin() * (y * 1.7).cos() - 0.15 * y;
                let mut vessel = 0.0;
                for k in 0..4 {
                    let kf = f64::from(k);
                    let centre = h * (0.2 + 0.2 * kf) + 0.08 * h * (x * (4.0 + kf) + phase).sin() + beat;
                    let radius = h * (0.012 + 0.006 * (3.0 - kf));
                    let d = (f64::from(r) - centre) / radius;
                    vessel += (-(d * d)).exp() * (0.35 - 0.05 * kf);
                }
                let noise = (grain.next_unit() - 0.5) * 0.03;
                let v = (background - fill * vessel + noise).clamp(0.0, 1.0) * max;
                samples.push(v.round() as u16);
            }
        }
    }
    let format = PixelFormat {
        bits_allocated: if bits_stored > 8 { 16 } else { 8 },
        bits_stored,
        high_bit: bits_stored - 1,
        photometric_in_file: PhotometricInterpretation::Monochrome2,
    };
    Cine::new(rows, columns, frames, samples, format)
}
