//! The occlusion balloon, which marks the CS ostium (research-imaging 4.5: "the root is the
//! node nearest the balloon/catheter tip").
//!
//! In an occlusive venogram the balloon sits inflated in the proximal CS for the whole run,
//! before the contrast arrives and after. It is the one compact dense blob several mm across
//! in the frame, so the scale-normalised determinant of the Hessian (Lindeberg, IJCV 30(2),
//! 1998) at the balloon's scale finds it: ribs, the spine border and the heart-shadow edge
//! curve in one direction only (a determinant near zero), catheters, leads and wires are too
//! thin for the scale, and a filled vein, a tube, has no curvature along its axis.
//!
//! Each scale is computed on the pyramid level where its sigma is about two pixels, so the
//! search costs a few hundred microseconds even on a 1024 frame.

use super::SegmentError;
use super::enhance::pyramid_sigma;
use super::image::ImageF32;
use crate::atlas::OCCLUSION_BALLOON_RADIUS_MM;

/// A balloon found in a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balloon {
    /// Centre, pixels `(x, y)`.
    pub center_xy: [f64; 2],
    /// Radius of the scale that found it, pixels.
    pub radius_px: f64,
    /// Scale-normalised determinant of the Hessian there (attenuation units squared).
    pub strength: f32,
}

/// Radii searched, pixels: 0.6-1.6 times the textbook balloon at `mm_per_px`, or a wider
/// range when the pixel spacing is only a default.
#[must_use]
pub fn radius_range_px(mm_per_px: f64, spacing_known: bool) -> (f64, f64) {
    let r = OCCLUSION_BALLOON_RADIUS_MM / mm_per_px;
    if spacing_known { (0.6 * r, 1.6 * r) } else { (0.35 * r, 2.0 * r) }
}

/// Weakest blob taken for a balloon (scale-normalised determinant, attenuation units
/// squared): half of the weakest balloon in the simulator's views before the contrast
/// (8e-4, seen nearly end-on in RAO 30; 1.6e-3 to 2e-3 side-on in LAO 30).
const MIN_STRENGTH: f32 = 4.0e-4;

/// The strongest bright blob of `attenuation` (vessels and devices bright) with a radius in
/// `radius_px` (min, max), or `None` when nothing is blob-like enough. With `near`
/// (`(centre, reach)`, pixels) only blobs within `reach` of `centre` count: a balloon found
/// in the baseline frame is followed into a contrast frame that way.
pub fn find_balloon(
    attenuation: &ImageF32,
    radius_px: (f64, f64),
    near: Option<([f64; 2], f64)>,
) -> Result<Option<Balloon>, SegmentError> {
    let r_hi = radius_px.1.max(radius_px.0.max(2.0));
    // A search near a point needs only the window the filters reach from there.
    if let Some((c, reach)) = near {
        let margin = reach + 4.0 * r_hi;
        let clip = |v: f64, n: usize| (v.max(0.0) as usize).min(n);
        let (x0, x1) = (clip(c[0] - margin, attenuation.width), clip(c[0] + margin + 1.0, attenuation.width));
        let (y0, y1) = (clip(c[1] - margin, attenuation.height), clip(c[1] + margin + 1.0, attenuation.height));
        if x1 <= x0 || y1 <= y0 {
            return Ok(None);
        }
        if x1 - x0 < attenuation.width || y1 - y0 < attenuation.height {
            let (cw, ch) = (x1 - x0, y1 - y0);
            let mut data = Vec::with_capacity(cw * ch);
            for y in y0..y1 {
                data.extend_from_slice(&attenuation.data[y * attenuation.width + x0..y * attenuation.width + x1]);
            }
            let crop = ImageF32 { width: cw, height: ch, data };
            let local = [c[0] - x0 as f64, c[1] - y0 as f64];
            let found = search(&crop, radius_px, Some((local, reach)))?;
            return Ok(
                found.map(|b| Balloon { center_xy: [b.center_xy[0] + x0 as f64, b.center_xy[1] + y0 as f64], ..b })
            );
        }
    }
    search(attenuation, radius_px, near)
}

/// [`find_balloon`] over the whole of `attenuation`.
fn search(
    attenuation: &ImageF32,
    radius_px: (f64, f64),
    near: Option<([f64; 2], f64)>,
) -> Result<Option<Balloon>, SegmentError> {
    let (r_lo, r_hi) = (radius_px.0.max(2.0), radius_px.1.max(radius_px.0.max(2.0)));
    let count = 4;
    let mut best: Option<Balloon> = None;
    let mut level_image: Option<(u32, ImageF32)> = None;
    for i in 0..count {
        let r = r_lo * (r_hi / r_lo).powf(f64::from(i) / f64::from(count - 1));
        // A disc of radius r peaks in the normalised determinant at sigma = r / sqrt(2).
        let sigma = r / std::f64::consts::SQRT_2;
        let level = (sigma / 2.0).log2().floor().max(0.0) as u32;
        let image = match level_image.take() {
            Some((l, img)) if l == level => img,
            Some((l, img)) if l < level => reduce(img, level - l)?,
            _ => reduce(attenuation.clone(), level)?,
        };
        let scale = f64::from(1u32 << level);
        if image.width < 8 || image.height < 8 {
            level_image = Some((level, image));
            continue;
        }
        // pyrDown has already smoothed the level; the rest is added here.
        let pre = f64::from(pyramid_sigma(level));
        let sigma_level = sigma / scale;
        let extra = (sigma_level * sigma_level - pre * pre).max(0.0).sqrt();
        let g = image.gaussian(extra, "balloon smoothing")?;
        let norm = (sigma_level * sigma_level) as f32;
        let (w, h) = (g.width, g.height);
        // Stay a radius away from the border, where reflection makes blobs of edges.
        let margin = ((r / scale).ceil() as usize).max(1);
        for y in margin..h.saturating_sub(margin) {
            for x in margin..w.saturating_sub(margin) {
                let full = [x as f64 * scale, y as f64 * scale];
                if let Some((c, reach)) = near
                    && (full[0] - c[0]).hypot(full[1] - c[1]) > reach
                {
                    continue;
                }
                let c0 = g.at(x, y);
                let dxx = (g.at(x + 1, y) - 2.0 * c0 + g.at(x - 1, y)) * norm;
                let dyy = (g.at(x, y + 1) - 2.0 * c0 + g.at(x, y - 1)) * norm;
                let dxy =
                    0.25 * (g.at(x + 1, y + 1) - g.at(x - 1, y + 1) - g.at(x + 1, y - 1) + g.at(x - 1, y - 1)) * norm;
                // A bright blob curves down both ways: negative trace, positive determinant.
                if dxx + dyy >= 0.0 {
                    continue;
                }
                let det = dxx * dyy - dxy * dxy;
                if det > best.map_or(MIN_STRENGTH, |b| b.strength) {
                    best = Some(Balloon { center_xy: full, radius_px: r, strength: det });
                }
            }
        }
        level_image = Some((level, image));
    }
    Ok(best)
}

/// `image` reduced `steps` times by `pyrDown` (not below 16 px a side).
fn reduce(mut image: ImageF32, steps: u32) -> Result<ImageF32, SegmentError> {
    for _ in 0..steps {
        if image.width < 16 || image.height < 16 {
            break;
        }
        image = image.pyr_down()?;
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat image with a bright disc and a bright band (a rib) elsewhere.
    fn scene(w: usize, h: usize, disc: [f64; 2], radius: f64) -> ImageF32 {
        let mut img = ImageF32::zeros(w, h);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f64, y as f64);
                let d = (fx - disc[0]).hypot(fy - disc[1]);
                let mut v = if d < radius { 0.4 * (1.0 - (d / radius).powi(2)).sqrt() } else { 0.0 };
                // A band 30 px wide, as dense as the disc, across the image.
                let band = (fy - 0.3 * fx - 20.0).abs();
                if band < 15.0 {
                    v += 0.4 * (1.0 - (band / 15.0).powi(2)).sqrt();
                }
                img.data[y * w + x] = v as f32;
            }
        }
        img
    }

    #[test]
    fn finds_a_disc_and_not_a_band() {
        let img = scene(256, 256, [170.0, 180.0], 13.0);
        let b = find_balloon(&img, (8.0, 21.0), None).unwrap().unwrap();
        let err = (b.center_xy[0] - 170.0).hypot(b.center_xy[1] - 180.0);
        assert!(err <= 4.0, "centre {:?}, {err:.1} px off", b.center_xy);
        assert!(b.radius_px > 8.0 && b.radius_px < 21.0);
    }

    #[test]
    fn a_search_near_a_point_ignores_blobs_elsewhere() {
        let img = scene(256, 256, [170.0, 180.0], 13.0);
        let far = find_balloon(&img, (8.0, 21.0), Some(([40.0, 200.0], 20.0))).unwrap();
        assert!(far.is_none_or(|b| (b.center_xy[0] - 40.0).hypot(b.center_xy[1] - 200.0) <= 20.0));
    }

    #[test]
    fn a_search_near_the_balloon_finds_it_where_the_whole_frame_does() {
        let img = scene(256, 256, [170.0, 180.0], 13.0);
        let whole = find_balloon(&img, (8.0, 21.0), None).unwrap().unwrap();
        let near = find_balloon(&img, (8.0, 21.0), Some(([165.0, 176.0], 13.0))).unwrap().unwrap();
        let d = (whole.center_xy[0] - near.center_xy[0]).hypot(whole.center_xy[1] - near.center_xy[1]);
        assert!(d <= 2.0, "whole {:?}, near {:?}", whole.center_xy, near.center_xy);
    }

    #[test]
    fn a_flat_frame_has_no_balloon() {
        let img = ImageF32::zeros(128, 128);
        assert!(find_balloon(&img, (6.0, 20.0), None).unwrap().is_none());
    }
}
