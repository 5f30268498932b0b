//! Stage 2: background suppression and multi-scale Hessian vessel enhancement.
//!
//! Vessels filled with contrast are dark in an XA frame (MONOCHROME2). The pipeline works on
//! the *attenuation-like* image `a = 1 - sample / max`, where they are bright ridges, so the
//! sign conventions below are those of bright vessels (Frangi eq. 15; Jerman 2016 with the
//! eigenvalue sign flipped so that a vessel has a positive cross-section eigenvalue).
//!
//! Scales are spread geometrically over the vessel radii of interest (1-12 px at a 512
//! matrix); the Gaussian of scale `sigma = radius / sqrt(3)` gives the strongest
//! sigma^2-normalised response for a cylinder of that radius. Large scales are computed on a
//! Gaussian pyramid (OpenCV `pyrDown`) so every level filters with a sigma of 1-2 of its own
//! pixels: the cost of a 12 px scale on a 1024 frame is that of a 1.5 px scale on a 128
//! frame, which is what makes a 1024 frame affordable at cine rate.

use opencv::core::{BORDER_REFLECT, Mat, Size};
use opencv::imgproc;
use rayon::prelude::*;

use super::SegmentError;
use super::image::{ImageF32, cv};
use super::simd;

/// The vesselness measure computed from the Hessian eigenvalues at each scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VesselnessMeasure {
    /// Frangi et al. 1998 (2D, eq. 15) with `c` half the largest Hessian norm over all scales.
    Frangi {
        /// Blobness sensitivity (0.5 in the paper).
        beta: f32,
    },
    /// Jerman et al. 2016: a ratio of eigenvalues with a more uniform response across
    /// calibres and at bifurcations.
    Jerman {
        /// Regularisation of the cross-section eigenvalue, 0.5-1 (0.75 in common use).
        tau: f32,
    },
}

impl Default for VesselnessMeasure {
    fn default() -> Self {
        Self::Jerman { tau: 0.75 }
    }
}

/// The scales of the enhancement, as the vessel radii (pixels) each is tuned to.
#[derive(Debug, Clone, PartialEq)]
pub struct Scales {
    /// Vessel radii, pixels, ascending.
    pub radii_px: Vec<f32>,
}

impl Scales {
    /// `count` radii spread geometrically from `min_px` to `max_px`.
    #[must_use]
    pub fn geometric(min_px: f32, max_px: f32, count: usize) -> Self {
        let count = count.max(1);
        let (lo, hi) = (min_px.max(0.5), max_px.max(min_px.max(0.5)));
        let radii_px = (0..count)
            .map(|i| if count == 1 { lo } else { lo * (hi / lo).powf(i as f32 / (count - 1) as f32) })
            .collect();
        Self { radii_px }
    }

    /// The default scales for a frame of `columns` pixels: radii 1-12 px at a 512 matrix,
    /// scaled with the matrix (2-24 px at 1024), six scales.
    #[must_use]
    pub fn for_matrix(columns: usize) -> Self {
        let k = columns as f32 / 512.0;
        Self::geometric(1.0 * k, 12.0 * k, 6)
    }
}

/// Output of the enhancement stage.
#[derive(Debug, Clone)]
pub struct Enhanced {
    /// Background-suppressed attenuation (white top-hat), >= 0.
    pub tophat: ImageF32,
    /// Vesselness, 0..1 (maximum over scales).
    pub vesselness: ImageF32,
    /// Vessel radius, pixels: that of the scale with the strongest normalised curvature.
    pub radius_px: ImageF32,
}

/// White top-hat of the attenuation image: what remains after an opening with a disc wider
/// than the widest vessel, i.e. the narrow bright structures (vessels, devices) without the
/// slowly varying anatomy behind them (heart shadow, spine, diaphragm dome).
///
/// The opening is computed on a copy reduced so that the disc is at most 15 px across and
/// then enlarged back: a morphological opening with a large disc costs O(k^2) per pixel, and
/// the background it estimates is smooth, so nothing is lost by estimating it coarsely.
pub fn suppress_background(attenuation: &ImageF32, max_radius_px: f32) -> Result<ImageF32, SegmentError> {
    let src = attenuation.as_mat()?;
    let diameter_px = 2.0 * (1.4 * max_radius_px) + 1.0;
    let factor = (diameter_px / 15.0).max(1.0);
    let small_size = Size::new(
        ((attenuation.width as f32 / factor).round() as i32).max(1),
        ((attenuation.height as f32 / factor).round() as i32).max(1),
    );
    let mut small = Mat::default();
    imgproc::resize(&src, &mut small, small_size, 0.0, 0.0, imgproc::INTER_AREA).map_err(cv("reduce for top-hat"))?;
    let k = ((diameter_px / factor).round() as i32) | 1;
    let disc =
        imgproc::get_structuring_element(imgproc::MORPH_ELLIPSE, Size::new(k, k), opencv::core::Point::new(-1, -1))
            .map_err(cv("top-hat disc"))?;
    let mut opened = Mat::default();
    imgproc::morphology_ex(
        &small,
        &mut opened,
        imgproc::MORPH_OPEN,
        &disc,
        opencv::core::Point::new(-1, -1),
        1,
        BORDER_REFLECT,
        imgproc::morphology_default_border_value().map_err(cv("top-hat border"))?,
    )
    .map_err(cv("top-hat opening"))?;
    let mut background = Mat::default();
    imgproc::resize(
        &opened,
        &mut background,
        Size::new(attenuation.width as i32, attenuation.height as i32),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )
    .map_err(cv("enlarge background"))?;
    let background = ImageF32::from_mat(&background)?;
    let data = attenuation.data.iter().zip(&background.data).map(|(a, b)| (a - b).max(0.0)).collect();
    Ok(ImageF32 { width: attenuation.width, height: attenuation.height, data })
}

/// The smallest sigma, in a pyramid level's own pixels, a scale is computed with: below it the
/// three-point second differences no longer approximate the Gaussian derivatives.
const MIN_LEVEL_SIGMA_PX: f32 = 0.9;

/// Eigenvalues of the sigma^2-normalised Hessian at one scale, on the pyramid level the scale
/// was computed on: `cross` is the eigenvalue of largest magnitude with its sign flipped (a
/// bright ridge has `cross > 0`), `along` the other one (sign flipped the same way; only
/// Frangi's measure reads it, so it is left empty for Jerman's).
struct ScaleEigen {
    cross: Vec<f32>,
    along: Vec<f32>,
}

/// Pre-smoothing (sigma, in the level's own pixels) that `pyrDown` leaves at level `level`:
/// each `pyrDown` applies the 5-tap binomial kernel (sigma 1 pixel of the finer level).
pub(super) fn pyramid_sigma(level: u32) -> f32 {
    if level == 0 {
        return 0.0;
    }
    let variance_fine: f32 = (0..level).map(|k| 4f32.powi(k as i32)).sum();
    variance_fine.sqrt() / 2f32.powi(level as i32)
}

/// The two eigenvalues (sign flipped, largest magnitude first) of the symmetric 2x2 matrix
/// `[[dxx, dxy], [dxy, dyy]]`, branch-free so the row loops vectorise.
#[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
#[inline(always)]
fn eigen_pair(dxx: f32, dyy: f32, dxy: f32) -> (f32, f32) {
    let half_trace = 0.5 * (dxx + dyy);
    let root = (0.25 * (dxx - dyy) * (dxx - dyy) + dxy * dxy).sqrt();
    // The eigenvalue of larger magnitude has the sign of the trace.
    let big = half_trace + root.copysign(half_trace);
    let small = half_trace - root.copysign(half_trace);
    (-big, -small)
}

/// The smoothed image of one scale, walked a row at a time for the Hessian's eigenvalues.
#[derive(Clone, Copy)]
struct EigenRows<'a> {
    /// The image smoothed to the scale, `w` x `h`.
    g: &'a [f32],
    w: usize,
    h: usize,
    /// The scale normalisation, sigma squared.
    norm: f32,
}

impl EigenRows<'_> {
    /// Row `y` (at least 3 x 3 pixels): the normalised eigenvalues of larger and smaller
    /// magnitude, signs flipped, into `cross_row` and (when given) `along_row`.
    #[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
    #[inline(always)]
    fn row(&self, y: usize, cross_row: &mut [f32], mut along_row: Option<&mut [f32]>) {
        let Self { g, w, h, norm } = *self;
        let row = |y: usize| &g[y * w..(y + 1) * w];
        let (up, mid, down) = (row(y.saturating_sub(1)), row(y), row((y + 1).min(h - 1)));
        let mut put = |x: usize, dxx: f32, dyy: f32, dxy: f32| {
            let (c, a) = eigen_pair(dxx * norm, dyy * norm, dxy * norm);
            cross_row[x] = c;
            if let Some(r) = along_row.as_deref_mut() {
                r[x] = a;
            }
        };
        // Interior columns.
        for x in 1..w - 1 {
            let c = mid[x];
            let dxx = mid[x + 1] - 2.0 * c + mid[x - 1];
            let dyy = down[x] - 2.0 * c + up[x];
            let dxy = 0.25 * (down[x + 1] - down[x - 1] - up[x + 1] + up[x - 1]);
            put(x, dxx, dyy, dxy);
        }
        // Border columns, replicated.
        for (x, xm, xp) in [(0, 0, 1), (w - 1, w - 2, w - 1)] {
            let c = mid[x];
            let dxx = mid[xp] - 2.0 * c + mid[xm];
            let dyy = down[x] - 2.0 * c + up[x];
            let dxy = 0.25 * (down[xp] - down[xm] - up[xp] + up[xm]);
            put(x, dxx, dyy, dxy);
        }
    }

    /// [`EigenRows::row`] compiled for AVX2 (see [`simd`]): the same result to the bit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn row_avx2(&self, y: usize, cross_row: &mut [f32], along_row: Option<&mut [f32]>) {
        self.row(y, cross_row, along_row);
    }
}

/// The Hessian eigenvalues of `level_image` at scale `sigma_level` (in the level's pixels).
///
/// Gaussian smoothing is OpenCV's (separable, vectorised); the second differences, the 2x2
/// eigen-decomposition and the normalisation are fused into one parallel pass by hand, which
/// saves three full-image derivative passes and their buffers. Rows are walked as slices
/// (borders replicated) so the inner loop has no bounds checks and vectorises.
fn hessian_eigen(
    level_image: &ImageF32,
    sigma_level: f32,
    pre_sigma: f32,
    want_along: bool,
) -> Result<ScaleEigen, SegmentError> {
    let (w, h) = (level_image.width, level_image.height);
    let extra = (sigma_level * sigma_level - pre_sigma * pre_sigma).max(0.0).sqrt();
    let blurred;
    let g: &[f32] = if extra > 0.05 {
        blurred = level_image.gaussian(f64::from(extra), "Gaussian smoothing")?;
        &blurred.data
    } else {
        &level_image.data
    };
    let norm = sigma_level * sigma_level;
    let mut cross = vec![0.0f32; w * h];
    let mut along = if want_along { vec![0.0f32; w * h] } else { Vec::new() };
    if w < 3 || h < 3 {
        return Ok(ScaleEigen { cross, along });
    }
    let rows = EigenRows { g, w, h, norm };
    let eigen_row = |y: usize, cross_row: &mut [f32], along_row: Option<&mut [f32]>| {
        simd::avx2_or!(rows.row_avx2(y, cross_row, along_row), rows.row(y, cross_row, along_row));
    };
    if want_along {
        cross
            .par_chunks_mut(w)
            .zip(along.par_chunks_mut(w))
            .enumerate()
            .for_each(|(y, (c, a))| eigen_row(y, c, Some(a)));
    } else {
        cross.par_chunks_mut(w).enumerate().for_each(|(y, c)| eigen_row(y, c, None));
    }
    Ok(ScaleEigen { cross, along })
}

/// Largest value of a slice (0 when empty or all negative), in chunks the compiler vectorises.
fn max_of(values: &[f32]) -> f32 {
    values
        .par_chunks(16_384)
        .map(|chunk| chunk.iter().fold(0.0f32, |m, v| if *v > m { *v } else { m }))
        .reduce(|| 0.0, f32::max)
}

/// Frangi's 2D vesselness of a row (bright ridge: `cross > 0`).
fn frangi_row(cross: &[f32], along: &[f32], beta: f32, c: f32, out: &mut [f32]) {
    for ((o, &l2), &l1) in out.iter_mut().zip(cross).zip(along) {
        let rb2 = (l1 / l2) * (l1 / l2);
        let s2 = l1 * l1 + l2 * l2;
        let v = (-rb2 / (2.0 * beta * beta)).exp() * (1.0 - (-s2 / (2.0 * c * c)).exp());
        *o = if l2 > 0.0 { v } else { 0.0 };
    }
}

/// Jerman's 2D vesselness of a row, `floor` being tau times the scale's largest `cross`
/// (> 0). In 2D the regularised eigenvalue is built from the cross-section eigenvalue itself
/// (vesselness2D.m: Lambda3 = Lambda2). Branch-free: every lane computes the ratio and
/// selects.
#[allow(clippy::inline_always, reason = "inlined into the AVX2 build of the scale competition")]
#[inline(always)]
fn jerman_row(cross: &[f32], floor: f32, out: &mut [f32]) {
    for (o, &c) in out.iter_mut().zip(cross) {
        let rho = c.max(floor);
        let sum = c + rho;
        let ratio = 27.0 * c * c * (rho - c) / (sum * sum * sum);
        let v = if c >= 0.5 * rho { 1.0 } else { ratio };
        *o = if c > 1e-6 { v } else { 0.0 };
    }
}

/// The running result of the scale competition on one pyramid level: the best measure, the
/// strongest normalised cross-section curvature and the radius of the scale that gave it.
struct Best {
    width: usize,
    height: usize,
    vesselness: Vec<f32>,
    cross: Vec<f32>,
    radius_px: Vec<f32>,
}

impl Best {
    fn zeros(width: usize, height: usize) -> Self {
        let n = width * height;
        Self { width, height, vesselness: vec![0.0; n], cross: vec![0.0; n], radius_px: vec![0.0; n] }
    }

    /// Enlarged (bilinear; the radius nearest) to a finer level of `width` x `height`.
    fn enlarged(self, width: usize, height: usize) -> Result<Self, SegmentError> {
        let grow = |data: Vec<f32>, interpolation: i32| -> Result<Vec<f32>, SegmentError> {
            let small = ImageF32 { width: self.width, height: self.height, data };
            let mut dst = Mat::default();
            let size = Size::new(width as i32, height as i32);
            imgproc::resize(&small.as_mat()?, &mut dst, size, 0.0, 0.0, interpolation)
                .map_err(cv("enlarge response"))?;
            Ok(ImageF32::from_mat(&dst)?.data)
        };
        // The radius is one of the scales' radii, not a blend of two.
        Ok(Self {
            width,
            height,
            vesselness: grow(self.vesselness, imgproc::INTER_LINEAR)?,
            cross: grow(self.cross, imgproc::INTER_LINEAR)?,
            radius_px: grow(self.radius_px, imgproc::INTER_NEAREST)?,
        })
    }

    /// Lets one scale compete: per pixel, the larger measure wins the vesselness, the larger
    /// normalised curvature wins the radius (Lindeberg's scale selection: the measures
    /// saturate and cannot tell calibres apart). `response` maps a slice of the scale's
    /// `cross` (and `along`, empty for Jerman) to the measure, in place of a per-pixel call,
    /// so the loops stay branch-free and vectorise.
    fn compete(&mut self, eigen: &ScaleEigen, radius_px: f32, response: impl Fn(&[f32], &[f32], &mut [f32]) + Sync) {
        let w = self.width;
        let along_rows: Vec<&[f32]> =
            if eigen.along.is_empty() { vec![&[][..]; self.height] } else { eigen.along.chunks(w).collect() };
        self.vesselness
            .par_chunks_mut(w)
            .zip(self.cross.par_chunks_mut(w))
            .zip(self.radius_px.par_chunks_mut(w))
            .zip(eigen.cross.par_chunks(w))
            .zip(along_rows.par_iter())
            .for_each_init(
                || vec![0.0f32; w],
                |scratch, ((((best, best_cross), radius), cross), along)| {
                    let row = CompeteRow { best, best_cross, radius, cross, along, scratch, radius_px };
                    simd::avx2_or!(row.run_avx2(&response), row.run(&response));
                },
            );
    }
}

/// One row of [`Best::compete`]: the running best measure, curvature and radius, the scale's
/// `cross` and `along` (empty for Jerman), and a scratch row for the scale's measure.
struct CompeteRow<'a> {
    best: &'a mut [f32],
    best_cross: &'a mut [f32],
    radius: &'a mut [f32],
    cross: &'a [f32],
    along: &'a [f32],
    scratch: &'a mut [f32],
    radius_px: f32,
}

impl CompeteRow<'_> {
    /// Lets the scale compete on this row (see [`Best::compete`]).
    #[allow(clippy::inline_always, reason = "inlined into its AVX2 build, which only then runs it eight lanes wide")]
    #[inline(always)]
    fn run(self, response: &impl Fn(&[f32], &[f32], &mut [f32])) {
        let out = &mut self.scratch[..self.cross.len()];
        response(self.cross, self.along, out);
        for (b, v) in self.best.iter_mut().zip(out.iter()) {
            *b = b.max(*v);
        }
        for ((bc, r), c) in self.best_cross.iter_mut().zip(self.radius.iter_mut()).zip(self.cross) {
            let wins = *c > *bc;
            *bc = if wins { *c } else { *bc };
            *r = if wins { self.radius_px } else { *r };
        }
    }

    /// [`CompeteRow::run`] compiled for AVX2 (see [`simd`]): the same result to the bit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(self, response: &impl Fn(&[f32], &[f32], &mut [f32])) {
        self.run(response);
    }
}

/// Multi-scale vesselness of a background-suppressed image (bright vessels): the maximum over
/// scales of `measure`, with the radius of the winning scale.
///
/// Each scale is computed on the coarsest pyramid level where its sigma is still about a
/// pixel; the scales of a level compete there, and the level's result is enlarged once to the
/// next finer level and competes with its scales, so the full-resolution passes are those of
/// the finest scales plus one enlargement.
pub fn vesselness(
    tophat: ImageF32,
    scales: &Scales,
    measure_kind: VesselnessMeasure,
) -> Result<Enhanced, SegmentError> {
    // Pyramid level of each scale: the coarsest on which its sigma is at least
    // MIN_LEVEL_SIGMA_PX of that level's pixels (and the level is at least 32 px across).
    let sigmas: Vec<(f32, f32)> = scales.radii_px.iter().map(|&r| (r, (r / 3f32.sqrt()).max(0.7))).collect();
    let mut levels: Vec<ImageF32> = vec![tophat];
    let mut level_of = Vec::with_capacity(sigmas.len());
    for &(_, sigma) in &sigmas {
        let mut level = 0usize;
        loop {
            let (lw, lh) = (levels[level].width, levels[level].height);
            if sigma / 2f32.powi(level as i32 + 1) < MIN_LEVEL_SIGMA_PX || lw < 32 || lh < 32 {
                break;
            }
            if levels.len() == level + 1 {
                let coarser = levels[level].pyr_down()?;
                levels.push(coarser);
            }
            level += 1;
        }
        level_of.push(level);
    }
    let want_along = matches!(measure_kind, VesselnessMeasure::Frangi { .. });
    let per_scale: Vec<ScaleEigen> = sigmas
        .iter()
        .zip(&level_of)
        .map(|(&(_, sigma), &level)| {
            let sigma_level = sigma / 2f32.powi(level as i32);
            hessian_eigen(&levels[level], sigma_level, pyramid_sigma(level as u32), want_along)
        })
        .collect::<Result<_, _>>()?;
    // Frangi's c is one constant for all scales (half the largest Hessian norm), so that the
    // scales compete on equal terms; Jerman regularises each scale by its own maximum.
    let frangi_c = if want_along {
        0.5 * per_scale
            .iter()
            .flat_map(|e| e.cross.iter().zip(&e.along).filter(|(c, _)| **c > 0.0).map(|(c, a)| c.hypot(*a)))
            .fold(0.0f32, f32::max)
    } else {
        0.0
    };
    let coarsest = level_of.iter().copied().max().unwrap_or(0);
    let mut best: Option<Best> = None;
    for level in (0..=coarsest).rev() {
        let (lw, lh) = (levels[level].width, levels[level].height);
        let mut here = match best.take() {
            Some(b) => b.enlarged(lw, lh)?,
            None => Best::zeros(lw, lh),
        };
        for ((&(radius_px, _), eigen), _) in sigmas.iter().zip(&per_scale).zip(&level_of).filter(|(_, l)| **l == level)
        {
            match measure_kind {
                VesselnessMeasure::Frangi { beta } if frangi_c > 0.0 => {
                    here.compete(eigen, radius_px, |c, a, out| frangi_row(c, a, beta, frangi_c, out));
                }
                VesselnessMeasure::Jerman { tau } => {
                    let floor = tau * max_of(&eigen.cross);
                    if floor > 0.0 {
                        here.compete(eigen, radius_px, |c, _, out| jerman_row(c, floor, out));
                    } else {
                        here.compete(eigen, radius_px, |_, _, out| out.fill(0.0));
                    }
                }
                VesselnessMeasure::Frangi { .. } => here.compete(eigen, radius_px, |_, _, out| out.fill(0.0)),
            }
        }
        best = Some(here);
    }
    let mut levels = levels.into_iter();
    let tophat = levels.next().ok_or(SegmentError::OpenCv { step: "pyramid", message: "no base level".into() })?;
    let (w, h) = (tophat.width, tophat.height);
    let best = best.unwrap_or_else(|| Best::zeros(w, h));
    Ok(Enhanced {
        vesselness: ImageF32 { width: w, height: h, data: best.vesselness },
        radius_px: ImageF32 { width: w, height: h, data: best.radius_px },
        tophat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bright line of the given radius (a projected cylinder) across a flat image.
    fn cylinder(w: usize, h: usize, radius: f32) -> ImageF32 {
        let mut img = ImageF32::zeros(w, h);
        let cx = w as f32 / 2.0;
        for y in 0..h {
            for x in 0..w {
                let d = x as f32 - cx;
                if d.abs() < radius {
                    img.data[y * w + x] = 0.05 * (radius * radius - d * d).sqrt() / radius;
                }
            }
        }
        img
    }

    /// Uniform values in [0, 1) from an xorshift generator seeded with `seed`.
    fn uniform(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 10_007) as f32 / 10_007.0
        }
    }

    /// The AVX2 build of the eigenvalue rows gives the baseline build's values to the bit
    /// (the same operations in the same order; the square root is exact in both).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_gives_the_baseline_eigenvalues_to_the_bit() {
        if !simd::avx2_to_compare() {
            return;
        }
        let (w, h) = (77usize, 9usize);
        let mut next = uniform(5);
        let g: Vec<f32> = (0..w * h).map(|_| next()).collect();
        let rows = EigenRows { g: &g, w, h, norm: 1.7 };
        for y in 0..h {
            let (mut c0, mut a0, mut c1, mut a1) = (vec![0.0; w], vec![0.0; w], vec![0.0; w], vec![0.0; w]);
            rows.row(y, &mut c0, Some(&mut a0));
            #[allow(unsafe_code, reason = "the AVX2 build, on a CPU checked for AVX2 above")]
            // SAFETY: this CPU has AVX2 (checked above).
            unsafe {
                rows.row_avx2(y, &mut c1, Some(&mut a1));
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&c0), bits(&c1), "row {y}, cross-section");
            assert_eq!(bits(&a0), bits(&a1), "row {y}, along");
        }
    }

    /// The AVX2 build of the scale competition gives the baseline build's best measure,
    /// curvature and radius to the bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_lets_the_scales_compete_to_the_same_bit() {
        if !simd::avx2_to_compare() {
            return;
        }
        let w = 83usize;
        let mut next = uniform(9);
        let cross: Vec<f32> = (0..w).map(|_| next() - 0.3).collect();
        let start: Vec<f32> = (0..3 * w).map(|_| next().abs()).collect();
        let compete = |wide: bool| {
            let (mut best, mut best_cross, mut radius) =
                (start[..w].to_vec(), start[w..2 * w].to_vec(), start[2 * w..].to_vec());
            let mut scratch = vec![0.0f32; w];
            let row = CompeteRow {
                best: &mut best,
                best_cross: &mut best_cross,
                radius: &mut radius,
                cross: &cross,
                along: &[],
                scratch: &mut scratch,
                radius_px: 2.5,
            };
            let response = |c: &[f32], _: &[f32], out: &mut [f32]| jerman_row(c, 0.4, out);
            if wide {
                #[allow(unsafe_code, reason = "the AVX2 build, on a CPU checked for AVX2 above")]
                // SAFETY: this CPU has AVX2 (checked above).
                unsafe {
                    row.run_avx2(&response);
                }
            } else {
                row.run(&response);
            }
            [best, best_cross, radius].map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        assert_eq!(compete(false), compete(true));
    }

    #[test]
    fn scales_span_the_requested_radii() {
        let s = Scales::for_matrix(512);
        assert_eq!(s.radii_px.len(), 6);
        assert!((s.radii_px[0] - 1.0).abs() < 1e-6 && (s.radii_px[5] - 12.0).abs() < 1e-4);
        let s = Scales::for_matrix(1024);
        assert!((s.radii_px[5] - 24.0).abs() < 1e-4);
    }

    #[test]
    fn a_bright_line_peaks_on_its_axis_at_its_own_scale() {
        for radius in [2.0f32, 4.0, 8.0] {
            let img = cylinder(128, 96, radius);
            for m in [VesselnessMeasure::Frangi { beta: 0.5 }, VesselnessMeasure::Jerman { tau: 0.75 }] {
                let e = vesselness(img.clone(), &Scales::geometric(1.0, 12.0, 8), m).unwrap();
                let row = 48;
                let axis = e.vesselness.at(64, row);
                assert!(axis > 0.5, "{m:?} r={radius}: axis response {axis}");
                // Far from the line there is nothing.
                assert!(e.vesselness.at(10, row) < 0.01);
                let r = e.radius_px.at(64, row);
                assert!(r > 0.5 * radius && r < 2.0 * radius, "{m:?}: radius {r} for a {radius} px line");
            }
        }
    }

    #[test]
    fn dark_lines_give_no_response() {
        let mut img = cylinder(96, 96, 3.0);
        for v in &mut img.data {
            *v = -*v;
        }
        for m in [VesselnessMeasure::Frangi { beta: 0.5 }, VesselnessMeasure::Jerman { tau: 0.75 }] {
            let e = vesselness(img.clone(), &Scales::for_matrix(96), m).unwrap();
            // Nothing inside the dark line (Jerman, normalised by its own maximum, may still
            // find the faint bright shoulders beside it).
            for x in 46..=50 {
                assert!(e.vesselness.at(x, 48) < 1e-6, "{m:?} at x={x}: {}", e.vesselness.at(x, 48));
            }
        }
    }

    #[test]
    fn top_hat_removes_a_ramp_and_keeps_a_line() {
        let mut img = cylinder(128, 128, 2.0);
        for y in 0..128 {
            for x in 0..128 {
                img.data[y * 128 + x] += 0.3 * x as f32 / 128.0;
            }
        }
        let t = suppress_background(&img, 12.0).unwrap();
        assert!(t.at(64, 64) > 0.03, "line kept: {}", t.at(64, 64));
        assert!(t.at(20, 64) < 0.01 && t.at(110, 64) < 0.01, "ramp removed");
    }
}
