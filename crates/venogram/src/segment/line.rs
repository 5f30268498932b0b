//! Stage 2b: an oriented line detector for the thinnest veins (radius about 1 px at a 512
//! matrix), the twigs a lead is sometimes wedged in.
//!
//! The Hessian at its smallest scale averages over about one pixel, so a twig a few noise
//! sigma deep is lost in quantum noise; a mean along a line of `L` pixels averages `L` times
//! more. The response of a pixel at orientation theta is how far the line mean through it
//! exceeds the line means a couple of pixels to either side, the smaller of the two, so a
//! step edge (brighter on one side only) and a wide band (as bright beside as on it) give
//! nothing; the response is the largest over orientations (the "two-sided" form of the line
//! detector of Ricci & Perfetti 2007).
//!
//! Written by hand: OpenCV has no oriented line-mean filter, and `filter2D` with rotated
//! kernels costs a full `L x L` multiply-add per pixel and orientation where integer shifts
//! cost `L` additions.

use rayon::prelude::*;

use super::SegmentError;
use super::image::{ImageF32, LevelImage, levels_to_512};

/// Orientations, spread over 180 degrees.
const ORIENTATIONS: usize = 12;
/// Half the length of the line mean, pixels of the working level (the line is `2h + 1` long).
const HALF_LENGTH_PX: i32 = 5;
/// Distance from the line to its side lines, pixels of the working level.
const SIDE_OFFSET_PX: f64 = 2.3;

/// The line response of a frame, computed on the pyramid level nearest a 512 matrix.
#[derive(Debug, Clone)]
pub struct LineResponse {
    /// Response per pixel of the level: the line mean's excess over both side means
    /// (top-hat units).
    pub response: LevelImage,
    /// The response's noise level, from the robust spread of the whole image (most pixels are
    /// background): 1.4826 x the median absolute deviation.
    pub noise: f32,
    /// Median response (the noise floor of a maximum over orientations is above zero).
    pub median: f32,
}

impl LineResponse {
    /// The response at frame pixel (`x`, `y`).
    #[must_use]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.response.at_pixel(x, y)
    }

    /// The response `sigmas` noise levels above the floor: a pixel above it lies on a line.
    #[must_use]
    pub fn threshold(&self, sigmas: f32) -> f32 {
        self.median + sigmas * self.noise
    }

    /// Whether frame pixel (`x`, `y`) lies on a thin line `sigmas` noise levels above the
    /// floor.
    #[must_use]
    pub fn is_line(&self, x: usize, y: usize, sigmas: f32) -> bool {
        self.at(x, y) > self.threshold(sigmas)
    }
}

/// The line response of a top-hat image whose matrix factor is `k` (1 at 512): computed on
/// the pyramid level nearest a 512 matrix, where a twig is about one pixel in radius.
pub fn line_response(tophat: &ImageF32, k: f64) -> Result<LineResponse, SegmentError> {
    let levels = levels_to_512(k);
    Ok(line_response_of_level(tophat.pyramid_level(levels)?.as_ref(), levels))
}

/// [`line_response`] of a top-hat already reduced `levels` times (the pipeline shares that
/// level with the present-before test).
pub(crate) fn line_response_of_level(level: &ImageF32, levels: u32) -> LineResponse {
    let image = oriented_response(level);
    let (median, noise) = robust_spread(&image.data);
    LineResponse { response: LevelImage { image, levels }, noise, median }
}

/// The two-sided oriented line response at the image's own resolution.
fn oriented_response(img: &ImageF32) -> ImageF32 {
    let (w, h) = (img.width, img.height);
    let mut best = vec![f32::NEG_INFINITY; w * h];
    let mut mean = vec![0.0f32; w * h];
    for o in 0..ORIENTATIONS {
        let theta = std::f64::consts::PI * o as f64 / ORIENTATIONS as f64;
        let (c, s) = (theta.cos(), theta.sin());
        let taps: Vec<(isize, isize)> = (-HALF_LENGTH_PX..=HALF_LENGTH_PX)
            .map(|t| ((f64::from(t) * c).round() as isize, (f64::from(t) * s).round() as isize))
            .collect();
        let side = ((-s * SIDE_OFFSET_PX).round() as isize, (c * SIDE_OFFSET_PX).round() as isize);
        line_mean(img, &taps, &mut mean);
        let mean = &mean;
        best.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            let row_at = |dy: isize| {
                let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                &mean[yy * w..(yy + 1) * w]
            };
            let (centre, plus, minus) = (row_at(0), row_at(side.1), row_at(-side.1));
            let at = |r: &[f32], x: isize| r[x.clamp(0, w as isize - 1) as usize];
            let mut update = |x: usize, m: f32, p: f32, q: f32| {
                let r = (m - p).min(m - q);
                if r > row[x] {
                    row[x] = r;
                }
            };
            // Interior columns as shifted slices (vectorises); the clamped ends apart.
            let reach = side.0.unsigned_abs().min(w);
            let (lo, hi) = (reach, w - reach);
            for x in (0..lo).chain(hi.max(lo)..w) {
                let xi = x as isize;
                update(x, centre[x], at(plus, xi + side.0), at(minus, xi - side.0));
            }
            if hi > lo {
                let plus = &plus[(lo as isize + side.0) as usize..(hi as isize + side.0) as usize];
                let minus = &minus[(lo as isize - side.0) as usize..(hi as isize - side.0) as usize];
                for (((b, &m), &p), &q) in row[lo..hi].iter_mut().zip(&centre[lo..hi]).zip(plus).zip(minus) {
                    let r = (m - p).min(m - q);
                    *b = if r > *b { r } else { *b };
                }
            }
        });
    }
    ImageF32 { width: w, height: h, data: best }
}

/// The mean of `img` over `taps` (offsets, borders clamped) around every pixel, into `out`.
fn line_mean(img: &ImageF32, taps: &[(isize, isize)], out: &mut [f32]) {
    let (w, h) = (img.width, img.height);
    let scale = 1.0 / taps.len() as f32;
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        row.fill(0.0);
        for &(dx, dy) in taps {
            let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
            let src = &img.data[yy * w..(yy + 1) * w];
            // Interior columns as one shifted slice (vectorises); the clamped ends apart.
            let lo = ((-dx).max(0) as usize).min(w);
            let hi = ((w as isize - dx.max(0)).max(0) as usize).clamp(lo, w);
            let (left, rest) = row.split_at_mut(lo);
            let (middle, right) = rest.split_at_mut(hi - lo);
            for o in left {
                *o += src[0];
            }
            for (o, s) in middle.iter_mut().zip(&src[(lo as isize + dx) as usize..]) {
                *o += *s;
            }
            for o in right {
                *o += src[w - 1];
            }
        }
        for v in row.iter_mut() {
            *v *= scale;
        }
    });
}

/// Median and 1.4826 x median absolute deviation of `values`, from a sample of at most about
/// 65 536 of them (a strided subsample: the spread of the background is all that is asked).
pub(crate) fn robust_spread(values: &[f32]) -> (f32, f32) {
    let stride = (values.len() / 65_536).max(1);
    let mut sample: Vec<f32> = values.iter().step_by(stride).copied().filter(|v| v.is_finite()).collect();
    if sample.is_empty() {
        return (0.0, 0.0);
    }
    let mid = sample.len() / 2;
    let median = *sample.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut dev: Vec<f32> = sample.iter().map(|v| (v - median).abs()).collect();
    let mad = *dev.select_nth_unstable_by(mid, f32::total_cmp).1;
    (median, 1.4826 * mad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A faint line (radius 1 px, depth 3 noise sigma) at 20 degrees in Gaussian-like noise,
    /// with a step edge and a wide band elsewhere.
    fn scene() -> (ImageF32, Vec<(usize, usize)>) {
        let (w, h) = (128usize, 128usize);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            // Sum of four uniforms: near-Gaussian, sigma 0.01.
            let mut s = 0.0;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s += (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            (s * 0.01 / (4.0f64 / 12.0).sqrt()) as f32
        };
        let mut data = vec![0.0f32; w * h];
        let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let mut on_line = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f64 - 20.0, y as f64 - 30.0);
                let across = -s * fx + c * fy;
                let along = c * fx + s * fy;
                let mut v = noise();
                if (0.0..80.0).contains(&along) {
                    v += (0.03 * (1.0 - (across / 1.2).powi(2)).max(0.0)) as f32;
                    if across.abs() < 0.5 && (10.0..70.0).contains(&along) {
                        on_line.push((x, y));
                    }
                }
                if y > 100 && x > 60 {
                    v += 0.1; // a step edge
                }
                if (20..40).contains(&x) && y > 90 {
                    v += 0.05; // a wide band
                }
                data[y * w + x] = v;
            }
        }
        (ImageF32 { width: w, height: h, data }, on_line)
    }

    #[test]
    fn a_faint_thin_line_stands_out_and_edges_and_bands_do_not() {
        let (img, on_line) = scene();
        let r = line_response(&img, 1.0).expect("response");
        let found = on_line.iter().filter(|(x, y)| r.is_line(*x, *y, 5.0)).count();
        assert!(found * 10 >= on_line.len() * 9, "{found} of {} line pixels found", on_line.len());
        // Away from the line (more than 4 px), almost nothing is a line: noise, the step edge
        // and the wide band included.
        let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let mut false_hits = 0;
        let mut total = 0;
        for y in 6..img.height - 6 {
            for x in 6..img.width - 6 {
                let (fx, fy) = (x as f64 - 20.0, y as f64 - 30.0);
                if (-s * fx + c * fy).abs() < 4.0 && (-6.0..86.0).contains(&(c * fx + s * fy)) {
                    continue;
                }
                total += 1;
                false_hits += usize::from(r.is_line(x, y, 5.0));
            }
        }
        assert!(false_hits * 1000 < total, "{false_hits} false line pixels of {total}");
    }

    #[test]
    fn a_larger_matrix_is_filtered_at_the_512_level_and_keeps_its_size() {
        let (img, _) = scene();
        let r = line_response(&img, 2.0).expect("response");
        assert_eq!((r.response.image.width, r.response.image.height, r.response.levels), (64, 64, 1));
        assert!(r.noise > 0.0);
        assert!((r.at(127, 127) - r.response.image.data[64 * 64 - 1]).abs() < 1e-12);
    }
}
