//! Stage 3 helpers: thresholds chosen from the image (Otsu) and hysteresis.

use opencv::core::{CV_32S, Mat};
use opencv::imgproc;
use opencv::prelude::*;
use rayon::prelude::*;

use super::SegmentError;
use super::image::{ImageF32, Mask, cv};

/// Otsu's threshold of the values in `values` that lie in `lo..=hi` (256 bins), or `None`
/// when fewer than two distinct bins are populated.
#[must_use]
pub fn otsu(values: impl Iterator<Item = f32>, lo: f32, hi: f32) -> Option<f32> {
    if hi <= lo {
        return None;
    }
    let mut hist = [0u64; 256];
    let scale = 255.0 / (hi - lo);
    for v in values {
        if (lo..=hi).contains(&v) {
            hist[((v - lo) * scale) as usize] += 1;
        }
    }
    otsu_of_histogram(&hist, lo, hi)
}

/// [`otsu`] of an image's samples, the histogram built in parallel chunks.
#[must_use]
pub fn otsu_par(values: &[f32], lo: f32, hi: f32) -> Option<f32> {
    if hi <= lo {
        return None;
    }
    let scale = 255.0 / (hi - lo);
    let counts = histogram_par(values.len(), 256, |i| {
        (lo..=hi).contains(&values[i]).then(|| ((values[i] - lo) * scale) as usize)
    });
    let mut hist = [0u64; 256];
    hist.copy_from_slice(&counts);
    otsu_of_histogram(&hist, lo, hi)
}

/// A histogram of `bins` bins over the indices `0..len`, `bin_of` giving each index's bin
/// (or `None` to leave it out), counted in parallel chunks and summed.
pub(crate) fn histogram_par(len: usize, bins: usize, bin_of: impl Fn(usize) -> Option<usize> + Sync) -> Vec<u64> {
    const CHUNK: usize = 65_536;
    (0..len.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut h = vec![0u64; bins];
            for i in c * CHUNK..((c + 1) * CHUNK).min(len) {
                if let Some(b) = bin_of(i) {
                    h[b] += 1;
                }
            }
            h
        })
        .reduce(
            || vec![0u64; bins],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Otsu's threshold of a 256-bin histogram spanning `lo..=hi`.
fn otsu_of_histogram(hist: &[u64; 256], lo: f32, hi: f32) -> Option<f32> {
    let scale = 255.0 / (hi - lo);
    let total: u64 = hist.iter().sum();
    if hist.iter().filter(|c| **c > 0).count() < 2 {
        return None;
    }
    let sum_all: f64 = hist.iter().enumerate().map(|(i, c)| i as f64 * *c as f64).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0u64, 0.0f64, -1.0f64, 0usize);
    for (t, c) in hist.iter().enumerate() {
        w0 += c;
        if w0 == 0 || w0 == total {
            continue;
        }
        sum0 += t as f64 * *c as f64;
        let w1 = total - w0;
        let (m0, m1) = (sum0 / w0 as f64, (sum_all - sum0) / w1 as f64);
        let between = w0 as f64 * w1 as f64 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    Some(lo + (best_t as f32 + 1.0) / scale)
}

/// Class of a pixel for [`hysteresis_classes`]: below the low threshold.
pub const BELOW: u8 = 0;
/// Class of a pixel for [`hysteresis_classes`]: at or above the low threshold only.
pub const WEAK: u8 = 1;
/// Class of a pixel for [`hysteresis_classes`]: at or above the high threshold.
pub const STRONG: u8 = 2;

/// Hysteresis: the 8-connected regions of `image >= low` that contain at least one pixel
/// `>= high` and at least `min_pixels` pixels (one labelling serves both tests).
pub fn hysteresis(image: &ImageF32, low: f32, high: f32, min_pixels: usize) -> Result<Mask, SegmentError> {
    let classes: Vec<u8> = image
        .data
        .par_iter()
        .map(|v| {
            if *v >= high {
                STRONG
            } else if *v >= low {
                WEAK
            } else {
                BELOW
            }
        })
        .collect();
    hysteresis_classes(&classes, image.width, image.height, min_pixels)
}

/// [`hysteresis`] of pixels already classed ([`BELOW`], [`WEAK`], [`STRONG`]), so a caller
/// can fold its own gates into the one pass that classes them.
pub fn hysteresis_classes(
    classes: &[u8],
    width: usize,
    height: usize,
    min_pixels: usize,
) -> Result<Mask, SegmentError> {
    let weak = Mask { width, height, data: classes.par_iter().map(|c| if *c == BELOW { 0 } else { 255 }).collect() };
    let labels = components(&weak)?;
    let mut strong = vec![false; labels.count + 1];
    let mut size = vec![0usize; labels.count + 1];
    for (l, c) in labels.labels.iter().zip(classes) {
        size[*l as usize] += 1;
        if *c == STRONG {
            strong[*l as usize] = true;
        }
    }
    let keep: Vec<bool> =
        strong.iter().zip(&size).enumerate().map(|(l, (s, n))| l > 0 && *s && *n >= min_pixels).collect();
    let mut out = weak;
    out.data
        .par_iter_mut()
        .zip(labels.labels.par_iter())
        .for_each(|(o, l)| *o = if keep[*l as usize] { 255 } else { 0 });
    Ok(out)
}

/// 8-connected component labels of a mask (0 = background, 1..=count).
pub struct Components {
    /// Label per pixel, row-major.
    pub labels: Vec<i32>,
    /// Number of components.
    pub count: usize,
}

/// Labels the 8-connected components of `mask` (OpenCV's block-based labelling).
pub fn components(mask: &Mask) -> Result<Components, SegmentError> {
    let src = mask.as_mat()?;
    let mut labels = Mat::default();
    let n = imgproc::connected_components(&src, &mut labels, 8, CV_32S).map_err(cv("connected components"))?;
    let labels = labels.data_typed::<i32>().map_err(cv("connected components"))?.to_vec();
    Ok(Components { labels, count: (n.max(1) - 1) as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_populations() {
        let values =
            (0..1000).map(|i| if i < 700 { 0.1 + (i % 7) as f32 * 0.001 } else { 0.8 + (i % 5) as f32 * 0.001 });
        let t = otsu(values, 0.0, 1.0).unwrap();
        assert!(t > 0.1 && t < 0.8, "{t}");
        assert!(otsu([0.5f32; 10].into_iter(), 0.0, 1.0).is_none());
        let samples: Vec<f32> = (0..200_000)
            .map(|i| if i % 10 < 7 { 0.1 + (i % 7) as f32 * 0.001 } else { 0.8 + (i % 5) as f32 * 0.001 })
            .collect();
        assert_eq!(otsu_par(&samples, 0.0, 1.0), otsu(samples.iter().copied(), 0.0, 1.0));
    }

    #[test]
    fn hysteresis_keeps_only_regions_with_a_strong_pixel() {
        let mut img = ImageF32::zeros(10, 4);
        for x in 0..4 {
            img.data[x] = 0.4;
        }
        img.data[2] = 0.9;
        for x in 6..10 {
            img.data[20 + x] = 0.4;
        }
        let m = hysteresis(&img, 0.3, 0.8, 1).unwrap();
        assert_eq!(m.count(), 4);
        assert!(m.get(0, 0) && !m.get(7, 2));
        // Too small to keep, strong pixel or not.
        assert_eq!(hysteresis(&img, 0.3, 0.8, 5).unwrap().count(), 0);
    }
}
