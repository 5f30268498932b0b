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
use super::image::{ImageF32, LevelImage, Mask, levels_to_512};
use super::simd;
use super::threshold::components;

/// Orientations, spread over 180 degrees.
pub(crate) const ORIENTATIONS: usize = 12;
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
    /// Per pixel of the level, the orientation (0..[`ORIENTATIONS`], steps of 180 /
    /// `ORIENTATIONS` degrees from the x axis) of the line mean that gave the response.
    pub orientation: Vec<u8>,
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
    let (image, orientation) = oriented_response(level);
    let (median, noise) = robust_spread(&image.data);
    LineResponse { response: LevelImage { image, levels }, noise, median, orientation }
}

/// Rows of the response computed together, so that a band's line means, response and
/// orientation stay in cache over all orientations (about a tenth faster than a pass over
/// the whole image per orientation).
const BAND_ROWS: usize = 16;

/// One orientation of the line detector: the line's taps and the offset to its side lines.
struct OrientedLine {
    /// Pixel offsets along the line, `2 * HALF_LENGTH_PX + 1` of them.
    taps: Vec<(isize, isize)>,
    /// Offset from the line to one side line (the other is its opposite).
    side: (isize, isize),
}

impl OrientedLine {
    /// Orientation `o` of [`ORIENTATIONS`], in steps of 180 / `ORIENTATIONS` degrees.
    fn new(o: usize) -> Self {
        let theta = std::f64::consts::PI * o as f64 / ORIENTATIONS as f64;
        let (c, s) = (theta.cos(), theta.sin());
        let taps = (-HALF_LENGTH_PX..=HALF_LENGTH_PX)
            .map(|t| ((f64::from(t) * c).round() as isize, (f64::from(t) * s).round() as isize))
            .collect();
        Self { taps, side: ((-s * SIDE_OFFSET_PX).round() as isize, (c * SIDE_OFFSET_PX).round() as isize) }
    }
}

/// The two-sided oriented line response at the image's own resolution, and the orientation
/// that gave it per pixel.
fn oriented_response(img: &ImageF32) -> (ImageF32, Vec<u8>) {
    let (w, h) = (img.width, img.height);
    let (lines, margin) = oriented_lines();
    let mut best = vec![f32::NEG_INFINITY; w * h];
    let mut best_orientation = vec![0u8; w * h];
    best.par_chunks_mut(BAND_ROWS * w).zip(best_orientation.par_chunks_mut(BAND_ROWS * w)).enumerate().for_each(
        |(band_index, (best, best_orientation))| {
            let band = Band { img, lines: &lines, margin, y0: band_index * BAND_ROWS };
            simd::avx2_or!(band.respond_avx2(best, best_orientation), band.respond(best, best_orientation));
        },
    );
    (ImageF32 { width: w, height: h, data: best }, best_orientation)
}

/// The detector's oriented lines, and the rows above and below a band that their side lines
/// reach.
fn oriented_lines() -> (Vec<OrientedLine>, usize) {
    let lines: Vec<OrientedLine> = (0..ORIENTATIONS).map(OrientedLine::new).collect();
    let margin = lines.iter().map(|l| l.side.1.unsigned_abs()).max().unwrap_or(0);
    (lines, margin)
}

/// One band of [`BAND_ROWS`] rows of the line detector.
struct Band<'a> {
    img: &'a ImageF32,
    lines: &'a [OrientedLine],
    /// Rows above and below the band whose line means the side lines reach.
    margin: usize,
    /// The band's first row.
    y0: usize,
}

impl Band<'_> {
    /// The band's best response and orientation over all orientations (`best` and
    /// `best_orientation` start at minus infinity and 0).
    #[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
    #[inline(always)]
    fn respond(&self, best: &mut [f32], best_orientation: &mut [u8]) {
        let Self { img, lines, margin, y0 } = *self;
        let (w, h) = (img.width, img.height);
        let rows = best.len() / w;
        // The line means of rows y0 - margin .. y0 + rows + margin (each row clamped into
        // the image, as the side lines' rows are).
        let first = y0 as isize - margin as isize;
        let mut mean = vec![0.0f32; (rows + 2 * margin) * w];
        for (o, OrientedLine { taps, side }) in lines.iter().enumerate() {
            for (r, out) in mean.chunks_mut(w).enumerate() {
                line_mean_row(img, taps, (first + r as isize).clamp(0, h as isize - 1) as usize, out);
            }
            let o = o as u8;
            for (r, (row, orow)) in best.chunks_mut(w).zip(best_orientation.chunks_mut(w)).enumerate() {
                let row_at = |dy: isize| {
                    let k = (r + margin) as isize + dy;
                    &mean[k as usize * w..(k as usize + 1) * w]
                };
                compare_row(row, orow, row_at(0), row_at(side.1), row_at(-side.1), side.0, o);
            }
        }
    }

    /// [`Band::respond`] compiled for AVX2 (eight lanes where the baseline has four); the
    /// same additions in the same order, so the same response to the bit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn respond_avx2(&self, best: &mut [f32], best_orientation: &mut [u8]) {
        self.respond(best, best_orientation);
    }
}

/// Updates one row's best response and orientation with orientation `o`: the response at a
/// pixel is the line mean `centre` less the larger of the side means `plus` (`dx` columns on)
/// and `minus` (`dx` columns back), borders clamped.
#[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
#[inline(always)]
fn compare_row(row: &mut [f32], orow: &mut [u8], centre: &[f32], plus: &[f32], minus: &[f32], dx: isize, o: u8) {
    let w = row.len();
    let at = |r: &[f32], x: isize| r[x.clamp(0, w as isize - 1) as usize];
    // Interior columns as shifted slices (vectorises); the clamped ends apart.
    let reach = dx.unsigned_abs().min(w);
    let (lo, hi) = (reach, w - reach);
    for x in (0..lo).chain(hi.max(lo)..w) {
        let xi = x as isize;
        let r = (centre[x] - at(plus, xi + dx)).min(centre[x] - at(minus, xi - dx));
        keep_best(&mut row[x], &mut orow[x], r, o);
    }
    if hi > lo {
        let plus = &plus[(lo as isize + dx) as usize..(hi as isize + dx) as usize];
        let minus = &minus[(lo as isize - dx) as usize..(hi as isize - dx) as usize];
        for ((((b, bo), &m), &p), &q) in
            row[lo..hi].iter_mut().zip(&mut orow[lo..hi]).zip(&centre[lo..hi]).zip(plus).zip(minus)
        {
            keep_best(b, bo, (m - p).min(m - q), o);
        }
    }
}

/// Keeps response `r` and its orientation `o` where `r` beats the best so far (`best`,
/// `best_o`). Branch-free: on noise the comparison goes either way at random, and a branch
/// mispredicted half the time took more than half the detector's time (8.5 ms against
/// 3.5 ms at 512, test profile).
#[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
#[inline(always)]
fn keep_best(best: &mut f32, best_o: &mut u8, r: f32, o: u8) {
    let better = r > *best;
    *best_o = if better { o } else { *best_o };
    *best = best.max(r);
}

/// Pixels of the response's level on a thin line reached from the pixels `seed_sigmas` above
/// the floor by following the line: a step goes from a pixel to one of the three neighbours
/// nearest its orientation, either way, that stands `low_sigmas` above the floor and runs
/// within one orientation step of it (hysteresis along the line, not across it). A twig
/// fades distally below the seed threshold while the line mean still holds it a few sigma
/// above the noise; noise pixels at that level seldom line up in a chain.
///
/// Written by hand: OpenCV has no directional hysteresis.
pub(crate) fn tracked_lines(
    resp: &LineResponse,
    seed_sigmas: f32,
    low_sigmas: f32,
    min_piece_px: usize,
) -> Result<Vec<bool>, SegmentError> {
    let img = &resp.response.image;
    let (w, h) = (img.width, img.height);
    let (seed, low) = (resp.threshold(seed_sigmas), resp.threshold(low_sigmas));
    let mut on = vec![false; w * h];
    let mut queue: Vec<usize> = Vec::new();
    for (i, v) in img.data.iter().enumerate() {
        if *v > seed {
            on[i] = true;
            queue.push(i);
        }
    }
    let n = ORIENTATIONS as u8;
    let close = |a: u8, b: u8| {
        let d = a.abs_diff(b);
        d.min(n - d) <= 1
    };
    // Per orientation, the neighbour steps along it (and 45 degrees either side), both ways.
    let steps: Vec<Vec<(isize, isize)>> = (0..ORIENTATIONS)
        .map(|o| {
            let theta = std::f64::consts::PI * o as f64 / ORIENTATIONS as f64;
            let mut out: Vec<(isize, isize)> = Vec::new();
            for sign in [1.0, -1.0] {
                for turn in [-std::f64::consts::FRAC_PI_4, 0.0, std::f64::consts::FRAC_PI_4] {
                    let a = theta + turn;
                    let step = ((sign * a.cos()).round() as isize, (sign * a.sin()).round() as isize);
                    if step != (0, 0) && !out.contains(&step) {
                        out.push(step);
                    }
                }
            }
            out
        })
        .collect();
    while let Some(i) = queue.pop() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        let o = resp.orientation[i];
        for &(dx, dy) in &steps[usize::from(o)] {
            let (qx, qy) = (x + dx, y + dy);
            if qx < 0 || qy < 0 || qx >= w as isize || qy >= h as isize {
                continue;
            }
            let q = qy as usize * w + qx as usize;
            if !on[q] && img.data[q] > low && close(resp.orientation[q], o) {
                on[q] = true;
                queue.push(q);
            }
        }
    }
    // What was followed, apart from the seeds, in pieces (8-connected). A piece that bridges
    // two runs of seeds (a twig dipping under the seed level and back) stays, and so does a
    // piece of a few pixels or more (a twig fading distally); a short piece off one run is a
    // hair of noise on a vessel's edge.
    let mask = |keep: &dyn Fn(usize) -> bool| Mask {
        width: w,
        height: h,
        data: (0..w * h).map(|i| if keep(i) { 255 } else { 0 }).collect(),
    };
    let is_seed = |i: usize| img.data[i] > seed;
    let seeds = components(&mask(&is_seed))?;
    let grown = components(&mask(&|i| on[i] && !is_seed(i)))?;
    let mut size = vec![0usize; grown.count + 1];
    let mut touches: Vec<Vec<i32>> = vec![Vec::new(); grown.count + 1];
    for (i, &g) in grown.labels.iter().enumerate() {
        if g == 0 {
            continue;
        }
        size[g as usize] += 1;
        let (x, y) = (i % w, i / w);
        for qy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for qx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let s = seeds.labels[qy * w + qx];
                if s != 0 && !touches[g as usize].contains(&s) {
                    touches[g as usize].push(s);
                }
            }
        }
    }
    let keep: Vec<bool> = size.iter().zip(&touches).map(|(n, t)| *n >= min_piece_px || t.len() >= 2).collect();
    for (o, &g) in on.iter_mut().zip(&grown.labels) {
        if g != 0 && !keep[g as usize] {
            *o = false;
        }
    }
    Ok(on)
}

/// The mean of `img` over `taps` (offsets, borders clamped) around every pixel of row `y`,
/// into `row`.
#[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
#[inline(always)]
fn line_mean_row(img: &ImageF32, taps: &[(isize, isize)], y: usize, row: &mut [f32]) {
    let (w, h) = (img.width, img.height);
    let scale = 1.0 / taps.len() as f32;
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

    /// Near-Gaussian noise of sigma 0.01 (a sum of four xorshift uniforms) from `seed`.
    fn noise_source(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed;
        move || {
            let mut s = 0.0;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s += (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            (s * 0.01 / (4.0f64 / 12.0).sqrt()) as f32
        }
    }

    /// A faint line (radius 1 px, depth 3 noise sigma) at 20 degrees in Gaussian-like noise,
    /// with a step edge and a wide band elsewhere.
    fn scene() -> (ImageF32, Vec<(usize, usize)>) {
        let (w, h) = (128usize, 128usize);
        let mut noise = noise_source(0x2545_f491_4f6c_dd1d);
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

    /// A twig fading along its length: depth 0.03 at its start to 0.016 at its end (noise
    /// sigma 0.01: its line response falls from about 6 to 3 noise levels), at 20 degrees,
    /// in the same noise; the pixels on its distal half.
    fn fading_scene() -> (ImageF32, Vec<(usize, usize)>) {
        let (w, h) = (160usize, 128usize);
        let mut noise = noise_source(0x9e37_79b9_7f4a_7c15);
        let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let mut data = vec![0.0f32; w * h];
        let mut distal = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f64 - 15.0, y as f64 - 20.0);
                let (across, along) = (-s * fx + c * fy, c * fx + s * fy);
                let mut v = noise();
                if (0.0..130.0).contains(&along) {
                    let depth = 0.03 - 0.014 * along / 130.0;
                    v += (depth * (1.0 - (across / 1.2).powi(2)).max(0.0)) as f32;
                    if across.abs() < 0.5 && (65.0..120.0).contains(&along) {
                        distal.push((x, y));
                    }
                }
                data[y * w + x] = v;
            }
        }
        (ImageF32 { width: w, height: h, data }, distal)
    }

    #[test]
    fn following_the_line_finds_more_of_a_fading_twig_and_little_noise() {
        let (img, distal) = fading_scene();
        let r = line_response(&img, 1.0).expect("response");
        let tracked = tracked_lines(&r, 5.0, 3.0, 6).expect("tracked");
        let w = img.width;
        let seeded = distal.iter().filter(|(x, y)| r.is_line(*x, *y, 5.0)).count();
        // Within a pixel of the twig's axis (the response peaks on the nearer pixel row).
        let near =
            |x: usize, y: usize| (y.saturating_sub(1)..=(y + 1).min(img.height - 1)).any(|yy| tracked[yy * w + x]);
        let followed = distal.iter().filter(|(x, y)| near(*x, *y)).count();
        assert!(followed * 5 >= distal.len() * 3, "{followed} of {} distal pixels followed", distal.len());
        assert!(followed >= seeded + distal.len() / 5, "followed {followed}, above the seed level {seeded}");
        assert!(seeded * 2 < distal.len(), "{seeded} seeds: the scene is not faint enough to test following");
        // Away from the twig, what is followed is not much more than the seeds' own noise.
        let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let (mut stray, mut total) = (0, 0);
        for y in 0..img.height {
            for x in 0..w {
                let (fx, fy) = (x as f64 - 15.0, y as f64 - 20.0);
                if (-s * fx + c * fy).abs() < 5.0 && (-8.0..140.0).contains(&(c * fx + s * fy)) {
                    continue;
                }
                total += 1;
                stray += usize::from(tracked[y * w + x]);
            }
        }
        assert!(stray * 500 < total, "{stray} stray followed pixels of {total}");
    }

    /// The banded, branch-free detector gives exactly what the definition gives, pixel by
    /// pixel (line means with clamped borders, the smaller excess over the two side means, the
    /// first orientation reaching the largest), on noise and on an image whose height is no
    /// multiple of the band.
    #[test]
    fn the_response_is_the_definition_computed_pixel_by_pixel() {
        let mut noise = noise_source(7);
        let (w, h) = (41usize, 2 * BAND_ROWS + 5);
        let img = ImageF32 { width: w, height: h, data: (0..w * h).map(|_| noise()).collect() };
        let (response, orientation) = oriented_response(&img);
        let at = |x: isize, y: isize| {
            img.data[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize]
        };
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut best = (f32::NEG_INFINITY, 0u8);
                for o in 0..ORIENTATIONS {
                    let theta = std::f64::consts::PI * o as f64 / ORIENTATIONS as f64;
                    let (c, s) = (theta.cos(), theta.sin());
                    let taps: Vec<(isize, isize)> = (-HALF_LENGTH_PX..=HALF_LENGTH_PX)
                        .map(|t| ((f64::from(t) * c).round() as isize, (f64::from(t) * s).round() as isize))
                        .collect();
                    let (sx, sy) = ((-s * SIDE_OFFSET_PX).round() as isize, (c * SIDE_OFFSET_PX).round() as isize);
                    let mean = |x: isize, y: isize| {
                        let yc = y.clamp(0, h as isize - 1);
                        let xc = x.clamp(0, w as isize - 1);
                        let mut sum = 0.0f32;
                        for (dx, dy) in &taps {
                            sum += at(xc + dx, yc + dy);
                        }
                        sum * (1.0 / taps.len() as f32)
                    };
                    let m = mean(x, y);
                    let r = (m - mean(x + sx, y + sy)).min(m - mean(x - sx, y - sy));
                    if r > best.0 {
                        best = (r, o as u8);
                    }
                }
                let i = y as usize * w + x as usize;
                assert_eq!((response.data[i], orientation[i]), best, "pixel ({x}, {y})");
            }
        }
    }

    /// The AVX2 build of a band gives the baseline build's response and orientation to the
    /// bit (the same additions in the same order), on a width that leaves a remainder after
    /// every vector width.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_gives_the_baseline_response_to_the_bit() {
        if !simd::avx2_to_compare() {
            return;
        }
        let mut noise = noise_source(11);
        let (w, h) = (203usize, 2 * BAND_ROWS + 3);
        let img = ImageF32 { width: w, height: h, data: (0..w * h).map(|_| noise()).collect() };
        let (lines, margin) = oriented_lines();
        for y0 in (0..h).step_by(BAND_ROWS) {
            let n = BAND_ROWS.min(h - y0) * w;
            let band = Band { img: &img, lines: &lines, margin, y0 };
            let (mut base, mut base_o) = (vec![f32::NEG_INFINITY; n], vec![0u8; n]);
            let (mut wide, mut wide_o) = (base.clone(), base_o.clone());
            band.respond(&mut base, &mut base_o);
            #[allow(unsafe_code, reason = "the AVX2 build, on a CPU checked for AVX2 above")]
            // SAFETY: this CPU has AVX2 (checked above).
            unsafe {
                band.respond_avx2(&mut wide, &mut wide_o);
            }
            assert!(base.iter().zip(&wide).all(|(a, b)| a.to_bits() == b.to_bits()), "band at row {y0}");
            assert_eq!(base_o, wide_o, "band at row {y0}");
        }
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
