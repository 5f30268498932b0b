//! Stage 5b: a vein's calibre along its centerline, from the contrast density across it.
//!
//! The mask's distance transform gives the radius of the thresholded mask, and that depends on
//! the threshold: a blurred vessel's edge fades over a pixel or two, and the hysteresis keeps
//! only its core (on the simulator's venograms the distance-transform radius was 0.81 of the
//! true lumen radius, median over the suite's centerlines; on the truth's own mask, 0.90).
//! The diameters an implanter weighs against a lead's size need the lumen itself.
//!
//! A contrast-filled vein is a cylinder of iodine: across its axis the projected thickness
//! is `2 sqrt(r^2 - x^2)`, which the top-hat attenuation follows (the samples are
//! logarithmic in the transmitted intensity, so the attenuation is linear in the path
//! through contrast). That profile's full width at half its maximum is `sqrt(3) r`
//! whatever the contrast's density, so `r = FWHM / sqrt(3)`: the half-maximum criterion of
//! densitometric and edge-based quantitative angiography, with the cylinder's shape factor.
//! The imaging chain's blur (a Gaussian of 0.8 px at a 512 matrix) changes the estimate by
//! under 5% from a 2 px radius up; thinner veins read wider (1 px reads 1.3), the floor every
//! projection method has at the system's resolution.
//!
//! Each profile is the mean of three parallel ones a pixel apart along the vein (noise down
//! by `sqrt(3)` without widening it), sampled every half pixel with bilinear interpolation,
//! and read only as far as it needs; its maximum is the mean over the central quarter of the
//! lumen about the highest sample, and each half width runs from there to where the profile
//! falls to half of it. A side that never falls to half within reach (or leaves the image),
//! or that reads over half again as wide as the other (a neighbouring or joining vessel), is
//! replaced by the other side. Every other point is measured, the radii taken as a running
//! median of three such measures (five points) and interpolated between them. A point whose
//! profile shows no vessel keeps the mask's radius.
//!
//! Written by hand: OpenCV has no profile measurement along a curve (`remap` would sample
//! the same points, at the cost of building coordinate maps per point).

use rayon::prelude::*;

use super::image::ImageF32;

/// Sampling step along a profile, px.
const STEP_PX: f64 = 0.5;
/// Profiles averaged per point, a pixel apart along the vein.
const PARALLEL: [f64; 3] = [-1.0, 0.0, 1.0];
/// A profile reaches this many mask radii, plus [`REACH_MARGIN_PX`], either side.
const REACH_RADII: f64 = 2.5;
/// See [`REACH_RADII`], px.
const REACH_MARGIN_PX: f64 = 4.0;
/// A half width more than this times the other side's is taken to run into another vessel.
const MAX_SIDE_RATIO: f64 = 1.5;
/// Every this many points along a centerline is measured.
const STRIDE: usize = 2;
/// Measured points in the running median along the vein (spanning five points).
const MEDIAN_MEASURES: usize = 3;

/// The sample of `image` at a sub-pixel position by bilinear interpolation, or `None`
/// outside the image.
pub(crate) fn bilinear(image: &ImageF32, x: f64, y: f64) -> Option<f64> {
    if !(x >= 0.0 && y >= 0.0 && x <= (image.width - 1) as f64 && y <= (image.height - 1) as f64) {
        return None;
    }
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(image.width - 1), (y0 + 1).min(image.height - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at = |x: usize, y: usize| f64::from(image.at(x, y));
    let top = at(x0, y0) + fx * (at(x1, y0) - at(x0, y0));
    let bottom = at(x0, y1) + fx * (at(x1, y1) - at(x0, y1));
    Some(top + fy * (bottom - top))
}

/// Unit direction of a polyline at point `i`, over two points either side.
fn tangent(points: &[[f64; 2]], i: usize) -> Option<[f64; 2]> {
    let (a, b) = (points[i.saturating_sub(2)], points[(i + 2).min(points.len() - 1)]);
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let n = dx.hypot(dy);
    (n > 1e-9).then(|| [dx / n, dy / n])
}

/// The radius (px) of the vein whose profile across `centre` (unit `normal`) is read from
/// `depth`, with the mask's radius `mask_radius_px` setting the reach; `None` where the
/// profile shows no vessel.
fn profile_radius(
    depth: &ImageF32,
    centre: [f64; 2],
    along: [f64; 2],
    normal: [f64; 2],
    mask_radius_px: f64,
) -> Option<f64> {
    let reach = ((REACH_RADII * mask_radius_px.max(0.5) + REACH_MARGIN_PX) / STEP_PX).ceil() as i64;
    // The mean of the parallel profiles at `s` steps across, sampled on demand: a profile is
    // read out only as far as its half maximum.
    let sample = |s: i64| -> Option<f64> {
        let s = s as f64 * STEP_PX;
        let mut sum = 0.0;
        for u in PARALLEL {
            sum += bilinear(depth, centre[0] + u * along[0] + s * normal[0], centre[1] + u * along[1] + s * normal[1])?;
        }
        Some(sum / PARALLEL.len() as f64)
    };
    // The highest sample near the centerline, then the mean over the lumen's central quarter.
    let near = ((0.5 * mask_radius_px).max(1.5) / STEP_PX).round() as i64;
    let core = ((0.25 * mask_radius_px) / STEP_PX).floor() as i64;
    let centre_profile: Vec<f64> = (-near - core..=near + core).map(sample).collect::<Option<_>>()?;
    let at = |s: i64| centre_profile[(s + near + core) as usize];
    let peak_at = (-near..=near).max_by(|a, b| at(*a).total_cmp(&at(*b)))?;
    let peak = (peak_at - core..=peak_at + core).map(at).sum::<f64>() / (2 * core + 1) as f64;
    if peak <= 0.0 {
        return None;
    }
    let level = 0.5 * peak;
    // Distance from the peak to where the profile falls to `level`, one way (`None` past the
    // reach or the image).
    let half_width = |step: i64| {
        let (mut i, mut a) = (peak_at, at(peak_at));
        loop {
            let next = i + step;
            if next.abs() > reach {
                return None;
            }
            let b = sample(next)?;
            if b < level {
                let t = if a > b { (a - level) / (a - b) } else { 0.0 };
                return Some(((i - peak_at).abs() as f64 + t) * STEP_PX);
            }
            (i, a) = (next, b);
        }
    };
    let width = match (half_width(-1), half_width(1)) {
        (Some(l), Some(r)) if l.max(r) <= MAX_SIDE_RATIO * l.min(r) => l + r,
        (Some(l), Some(r)) => 2.0 * l.min(r),
        (Some(w), None) | (None, Some(w)) => 2.0 * w,
        (None, None) => return None,
    };
    Some(width / 3f64.sqrt())
}

/// Radii (px) along a centerline measured across the vein in `depth` (the top-hat
/// attenuation), the mask's radii `mask_radius_px` setting each profile's reach and standing
/// in where a profile shows no vessel; smoothed by a running median (see the module doc).
pub(crate) fn lumen_radii(points: &[[f64; 2]], mask_radius_px: &[f64], depth: &ImageF32) -> Vec<f64> {
    let n = points.len();
    if n == 0 {
        return Vec::new();
    }
    // Every other point (and the last) is measured; the calibre changes slowly along a vein.
    let measured: Vec<usize> =
        (0..n).step_by(STRIDE).chain((n > 1 && !(n - 1).is_multiple_of(STRIDE)).then_some(n - 1)).collect();
    let raw: Vec<f64> = measured
        .iter()
        .map(|&i| {
            tangent(points, i)
                .and_then(|t| profile_radius(depth, points[i], t, [-t[1], t[0]], mask_radius_px[i]))
                .unwrap_or(mask_radius_px[i])
        })
        .collect();
    let h = MEDIAN_MEASURES / 2;
    let smoothed: Vec<f64> = (0..raw.len())
        .map(|j| {
            let mut w: Vec<f64> = raw[j.saturating_sub(h)..(j + h + 1).min(raw.len())].to_vec();
            w.sort_by(f64::total_cmp);
            w[w.len() / 2]
        })
        .collect();
    // Between two measured points, linearly.
    let mut out = Vec::with_capacity(n);
    for (j, &i) in measured.iter().enumerate() {
        let Some(&next) = measured.get(j + 1) else {
            out.push(smoothed[j]);
            break;
        };
        for k in i..next {
            let t = (k - i) as f64 / (next - i) as f64;
            out.push(smoothed[j] + t * (smoothed[j + 1] - smoothed[j]));
        }
    }
    out
}

/// [`lumen_radii`] for each of several centerlines, in parallel.
pub(crate) fn lumen_radii_of_all(lines: &[(&[[f64; 2]], &[f64])], depth: &ImageF32) -> Vec<Vec<f64>> {
    lines.par_iter().map(|(points, radii)| lumen_radii(points, radii, depth)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight horizontal vein of radius `r` (px) along row `y0`: its projected thickness,
    /// blurred by a Gaussian of `sigma` px, on a `w x h` image.
    fn vein(w: usize, h: usize, y0: f64, r: f64, sigma: f64) -> ImageF32 {
        let mut img = ImageF32::zeros(w, h);
        for y in 0..h {
            // The blurred profile by numerical convolution across the vein.
            let mut v = 0.0;
            let mut norm = 0.0;
            for k in -400..=400 {
                let s = f64::from(k) * 0.01;
                let g = (-s * s / (2.0 * sigma * sigma)).exp();
                let x = y as f64 + s - y0;
                v += g * 2.0 * (r * r - x * x).max(0.0).sqrt();
                norm += g;
            }
            for x in 0..w {
                img.data[y * w + x] = (v / norm) as f32;
            }
        }
        img
    }

    #[test]
    fn a_blurred_cylinders_radius_is_read_within_five_percent_from_two_pixels_up() {
        for r in [2.0, 3.0, 5.0, 8.0, 12.0] {
            let img = vein(64, 80, 40.3, r, 0.8);
            let points: Vec<[f64; 2]> = (10..50).map(|x| [f64::from(x), 40.0]).collect();
            // The mask's radius is a poor guess on purpose: the profile decides.
            let radii = lumen_radii(&points, &vec![0.7 * r; points.len()], &img);
            for got in &radii {
                assert!((got / r - 1.0).abs() < 0.05, "r {r}: read {got:.2}");
            }
        }
    }

    #[test]
    fn every_point_gets_a_radius_whatever_the_centerlines_length() {
        let img = vein(64, 80, 40.0, 3.0, 0.8);
        for n in [0usize, 1, 2, 3, 4, 7] {
            let points: Vec<[f64; 2]> = (0..n).map(|x| [20.0 + x as f64, 40.0]).collect();
            let radii = lumen_radii(&points, &vec![3.0; n], &img);
            assert_eq!(radii.len(), n);
            // A single point has no direction: it keeps the mask's radius.
            assert!(radii.iter().all(|r| (r / 3.0 - 1.0).abs() < 0.05), "{n}: {radii:?}");
        }
    }

    #[test]
    fn a_thin_vein_reads_wider_by_the_blur_and_no_vessel_keeps_the_mask_radius() {
        let img = vein(64, 80, 40.0, 1.0, 0.8);
        let points: Vec<[f64; 2]> = (10..50).map(|x| [f64::from(x), 40.0]).collect();
        let radii = lumen_radii(&points, &vec![1.0; points.len()], &img);
        assert!(radii.iter().all(|r| (1.1..1.5).contains(r)), "{radii:?}");
        let flat = ImageF32::zeros(64, 80);
        assert_eq!(lumen_radii(&points, &vec![2.0; points.len()], &flat), vec![2.0; points.len()]);
    }

    #[test]
    fn a_neighbouring_vessel_on_one_side_does_not_widen_the_reading() {
        let (w, h) = (64, 100);
        let a = vein(w, h, 40.0, 4.0, 0.8);
        let b = vein(w, h, 46.5, 3.0, 0.8);
        let both = ImageF32 { data: a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect(), ..a };
        let points: Vec<[f64; 2]> = (10..50).map(|x| [f64::from(x), 40.0]).collect();
        let radii = lumen_radii(&points, &vec![3.0; points.len()], &both);
        assert!(radii.iter().all(|r| (r / 4.0 - 1.0).abs() < 0.1), "{radii:?}");
    }

    #[test]
    fn a_vein_cut_by_the_image_edge_is_read_from_its_inner_side_and_one_on_it_keeps_the_mask_radius() {
        let img = vein(64, 80, 2.0, 4.0, 0.8);
        let points: Vec<[f64; 2]> = (10..50).map(|x| [f64::from(x), 2.0]).collect();
        let radii = lumen_radii(&points, &vec![3.0; points.len()], &img);
        assert!(radii.iter().all(|r| (r / 4.0 - 1.0).abs() < 0.05), "{radii:?}");
        let on_edge: Vec<[f64; 2]> = (10..50).map(|x| [f64::from(x), 0.0]).collect();
        assert_eq!(lumen_radii(&on_edge, &vec![3.0; points.len()], &img), vec![3.0; points.len()]);
    }
}
