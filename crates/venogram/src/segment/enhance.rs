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

/// Eigenvalues of the sigma^2-normalised Hessian at one scale, on the pyramid level the scale
/// was computed on: `cross` is the eigenvalue of largest magnitude with its sign flipped (a
/// bright ridge has `cross > 0`), `along` the other one (sign flipped the same way).
struct ScaleEigen {
    width: usize,
    height: usize,
    cross: Vec<f32>,
    along: Vec<f32>,
}

/// Pre-smoothing (sigma, in the level's own pixels) that `pyrDown` leaves at level `level`:
/// each `pyrDown` applies the 5-tap binomial kernel (sigma 1 pixel of the finer level).
fn pyramid_sigma(level: u32) -> f32 {
    if level == 0 {
        return 0.0;
    }
    let variance_fine: f32 = (0..level).map(|k| 4f32.powi(k as i32)).sum();
    variance_fine.sqrt() / 2f32.powi(level as i32)
}

/// The Hessian eigenvalues of `level_image` at scale `sigma_level` (in the level's pixels).
///
/// Gaussian smoothing is OpenCV's (separable, vectorised); the second differences, the 2x2
/// eigen-decomposition and the normalisation are fused into one parallel pass by hand, which
/// saves three full-image derivative passes and their buffers.
fn hessian_eigen(level_image: &ImageF32, sigma_level: f32, pre_sigma: f32) -> Result<ScaleEigen, SegmentError> {
    let (w, h) = (level_image.width, level_image.height);
    let extra = (sigma_level * sigma_level - pre_sigma * pre_sigma).max(0.0).sqrt();
    let smoothed = if extra > 0.05 {
        let src = level_image.as_mat()?;
        let mut dst = Mat::default();
        imgproc::gaussian_blur(&src, &mut dst, Size::new(0, 0), f64::from(extra), f64::from(extra), BORDER_REFLECT)
            .map_err(cv("Gaussian smoothing"))?;
        ImageF32::from_mat(&dst)?
    } else {
        level_image.clone()
    };
    let norm = sigma_level * sigma_level;
    let g = &smoothed.data;
    let mut cross = vec![0.0f32; w * h];
    let mut along = vec![0.0f32; w * h];
    if w < 3 || h < 3 {
        return Ok(ScaleEigen { width: w, height: h, cross, along });
    }
    cross.par_chunks_mut(w).zip(along.par_chunks_mut(w)).enumerate().for_each(|(y, (cross_row, along_row))| {
        let ym = y.saturating_sub(1);
        let yp = (y + 1).min(h - 1);
        for x in 0..w {
            let xm = x.saturating_sub(1);
            let xp = (x + 1).min(w - 1);
            let c = g[y * w + x];
            let dxx = g[y * w + xp] - 2.0 * c + g[y * w + xm];
            let dyy = g[yp * w + x] - 2.0 * c + g[ym * w + x];
            let dxy = 0.25 * (g[yp * w + xp] - g[yp * w + xm] - g[ym * w + xp] + g[ym * w + xm]);
            let (dxx, dyy, dxy) = (dxx * norm, dyy * norm, dxy * norm);
            let half_trace = 0.5 * (dxx + dyy);
            let root = (0.25 * (dxx - dyy) * (dxx - dyy) + dxy * dxy).sqrt();
            let (l1, l2) = (half_trace + root, half_trace - root);
            let (big, small) = if l1.abs() >= l2.abs() { (l1, l2) } else { (l2, l1) };
            cross_row[x] = -big;
            along_row[x] = -small;
        }
    });
    Ok(ScaleEigen { width: w, height: h, cross, along })
}

/// Applies the vesselness measure to one scale's eigenvalues (`frangi_c`: Frangi's `c`).
fn measure(eigen: &ScaleEigen, measure: VesselnessMeasure, frangi_c: f32) -> Vec<f32> {
    match measure {
        VesselnessMeasure::Frangi { beta } => {
            let c = frangi_c;
            if c <= 0.0 {
                return vec![0.0; eigen.cross.len()];
            }
            eigen
                .cross
                .par_iter()
                .zip(eigen.along.par_iter())
                .map(|(&l2, &l1)| {
                    if l2 <= 0.0 {
                        return 0.0;
                    }
                    let rb2 = (l1 / l2) * (l1 / l2);
                    let s2 = l1 * l1 + l2 * l2;
                    (-rb2 / (2.0 * beta * beta)).exp() * (1.0 - (-s2 / (2.0 * c * c)).exp())
                })
                .collect()
        }
        VesselnessMeasure::Jerman { tau } => {
            // In 2D the regularised eigenvalue is built from the cross-section eigenvalue
            // itself (vesselness2D.m: Lambda3 = Lambda2).
            let max = eigen.cross.iter().copied().fold(0.0f32, f32::max);
            let floor = tau * max;
            if floor <= 0.0 {
                return vec![0.0; eigen.cross.len()];
            }
            eigen
                .cross
                .par_iter()
                .map(|&l2| {
                    if l2 <= 1e-6 {
                        return 0.0;
                    }
                    let rho = l2.max(floor);
                    if l2 >= 0.5 * rho {
                        1.0
                    } else {
                        27.0 * l2 * l2 * (rho - l2) / ((l2 + rho) * (l2 + rho) * (l2 + rho))
                    }
                })
                .collect()
        }
    }
}

/// Multi-scale vesselness of a background-suppressed image (bright vessels): the maximum over
/// scales of `measure`, with the radius of the winning scale.
pub fn vesselness(
    tophat: &ImageF32,
    scales: &Scales,
    measure_kind: VesselnessMeasure,
) -> Result<Enhanced, SegmentError> {
    let (w, h) = (tophat.width, tophat.height);
    let mut best = ImageF32::zeros(w, h);
    let mut radius = ImageF32::zeros(w, h);
    // Pyramid levels, built on demand.
    let mut levels: Vec<ImageF32> = vec![tophat.clone()];
    let mut per_scale: Vec<(f32, u32, ScaleEigen)> = Vec::with_capacity(scales.radii_px.len());
    for &radius_px in &scales.radii_px {
        let sigma = (radius_px / 3f32.sqrt()).max(0.7);
        // The coarsest level on which this sigma is still at least one of its pixels.
        let mut level = 0u32;
        while sigma / 2f32.powi(level as i32 + 1) >= 1.0
            && levels[level as usize].width >= 32
            && levels[level as usize].height >= 32
        {
            level += 1;
        }
        while levels.len() <= level as usize {
            let Some(finer) = levels.last() else { break };
            let src = finer.as_mat()?;
            let mut dst = Mat::default();
            imgproc::pyr_down(
                &src,
                &mut dst,
                Size::new(finer.width.div_ceil(2) as i32, finer.height.div_ceil(2) as i32),
                opencv::core::BORDER_DEFAULT,
            )
            .map_err(cv("pyramid"))?;
            levels.push(ImageF32::from_mat(&dst)?);
        }
        let sigma_level = sigma / 2f32.powi(level as i32);
        per_scale.push((radius_px, level, hessian_eigen(&levels[level as usize], sigma_level, pyramid_sigma(level))?));
    }
    // Frangi's c is one constant for all scales (half the largest Hessian norm), so that the
    // scales compete on equal terms; Jerman regularises each scale by its own maximum.
    let frangi_c = 0.5
        * per_scale
            .iter()
            .flat_map(|(_, _, e)| e.cross.iter().zip(&e.along).filter(|(c, _)| **c > 0.0).map(|(c, a)| c.hypot(*a)))
            .fold(0.0f32, f32::max);
    // The radius is that of the scale with the strongest sigma^2-normalised cross-section
    // curvature (Lindeberg's scale selection); the measures saturate and cannot tell.
    let mut best_cross = ImageF32::zeros(w, h);
    let enlarge = |data: Vec<f32>, ew: usize, eh: usize| -> Result<Vec<f32>, SegmentError> {
        if ew == w && eh == h {
            return Ok(data);
        }
        let small = ImageF32 { width: ew, height: eh, data };
        let src = small.as_mat()?;
        let mut dst = Mat::default();
        imgproc::resize(&src, &mut dst, Size::new(w as i32, h as i32), 0.0, 0.0, imgproc::INTER_LINEAR)
            .map_err(cv("enlarge response"))?;
        Ok(ImageF32::from_mat(&dst)?.data)
    };
    for (radius_px, _, eigen) in &per_scale {
        let response = enlarge(measure(eigen, measure_kind, frangi_c), eigen.width, eigen.height)?;
        let cross = enlarge(eigen.cross.clone(), eigen.width, eigen.height)?;
        best.data.par_iter_mut().zip(response.par_iter()).for_each(|(b, v)| *b = b.max(*v));
        best_cross.data.par_iter_mut().zip(radius.data.par_iter_mut()).zip(cross.par_iter()).for_each(|((b, r), c)| {
            if *c > *b {
                *b = *c;
                *r = *radius_px;
            }
        });
    }
    Ok(Enhanced { tophat: tophat.clone(), vesselness: best, radius_px: radius })
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
                let e = vesselness(&img, &Scales::geometric(1.0, 12.0, 8), m).unwrap();
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
            let e = vesselness(&img, &Scales::for_matrix(96), m).unwrap();
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
