//! The shift of the moving structures between the run's baseline frame and a frame.
//!
//! Breathing moves the heart, and the leads, catheter and balloon with it, by several
//! millimetres between the frame before the contrast and the best-opacified one (5-11 px at
//! a 512 matrix in the simulator's runs), while the sternal wires, spine and ribs stay. A
//! point-by-point "was it there before" test with a few pixels of allowance then sees a lead
//! as new where it moved, and a vein as old where it now runs over the lead's earlier course
//! (a middle cardiac vein beside an RV lead is taken out whole). Digital subtraction
//! angiography meets the same problem with a pixel shift of the mask; here the shift is
//! estimated from the baseline's dense thin structures (leads, wires, catheter): the
//! translation that explains most of their ridge in the frame beyond what is explained where
//! they were. The static structures explain themselves at no shift and add nothing to a
//! shift's score, so the two layers do not compete.
//!
//! Written by hand: OpenCV's registration (`findTransformECC`, phase correlation) fits one
//! motion to the whole image, and the static layer and the new contrast pull it towards no
//! shift or onto the veins.

use rayon::prelude::*;

use super::image::{ImageF32, LevelImage};
use super::line::robust_spread;

/// A baseline pixel on a dense thin structure: its position on the 512 level and its ridge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Feature {
    x: i32,
    y: i32,
    ridge: f32,
}

/// How far above the baseline ridge's noise a pixel must stand to be a feature (leads and
/// catheters stand tens of sigma above it; noise almost never reaches this).
const FEATURE_SIGMAS: f32 = 8.0;

/// Most features kept (the strongest): enough to cover two leads and a catheter at a 2 px
/// lattice.
const MAX_FEATURES: usize = 4000;

/// Features the coarse search scores, at most (an even share of every strength).
const COARSE_FEATURES: usize = 800;

/// Largest shift searched, px at a 512 matrix (a deep breath moves the heart about 15 mm,
/// about 40 px; a venogram is taken in a held or shallow breath).
pub(crate) const MAX_SHIFT_PX: i32 = 24;

/// Fraction of the features' ridge a shift must explain beyond what no shift explains to be
/// taken: below it the moving structures did not move (or there are none). The leads and
/// catheter are a fifth to a half of the features; the rest (wires, spine and rib edges)
/// stay.
const MIN_EXPLAINED: f32 = 0.08;

/// How many times the median shift's score the best must reach: new contrast and noise
/// give every shift something, a true shift stands out (3-6 times in the simulator's runs).
const MIN_PEAK_TO_MEDIAN: f32 = 2.5;

/// The ridge a baseline pixel needs to lie on a dense thin structure: [`FEATURE_SIGMAS`]
/// above the ridge map's noise.
fn feature_floor(ridge: &ImageF32) -> f32 {
    let (median, sigma) = robust_spread(&ridge.data);
    median + FEATURE_SIGMAS * sigma
}

/// The baseline's dense thin structures (leads, wires, catheter, balloon).
#[derive(Debug, Clone)]
pub(crate) struct DenseStructures {
    /// The ridge map where it stands above [`feature_floor`], 0 elsewhere.
    pub ridge: LevelImage,
    /// The features the shift is estimated from: pixels of `ridge` on every other pixel and
    /// row, the strongest [`MAX_FEATURES`], strongest first.
    pub features: Vec<Feature>,
}

/// The dense thin structures of a baseline's ridge map (on the 512 level).
pub(crate) fn dense_structures(ridge: &LevelImage) -> DenseStructures {
    let floor = feature_floor(&ridge.image);
    let dense = ImageF32 {
        data: ridge.image.data.iter().map(|v| if *v > floor { *v } else { 0.0 }).collect(),
        ..ridge.image.clone()
    };
    let features = features(&dense);
    DenseStructures { ridge: LevelImage { image: dense, levels: ridge.levels }, features }
}

/// Every other pixel and row of a dense ridge map where it is set, the strongest
/// [`MAX_FEATURES`], strongest first.
fn features(dense: &ImageF32) -> Vec<Feature> {
    let mut out: Vec<Feature> = (0..dense.height)
        .step_by(2)
        .flat_map(|y| (0..dense.width).step_by(2).map(move |x| (x, y)))
        .filter_map(|(x, y)| {
            let v = dense.at(x, y);
            (v > 0.0).then_some(Feature { x: x as i32, y: y as i32, ridge: v })
        })
        .collect();
    // Strongest first, so the cap keeps the densest.
    out.sort_unstable_by(|a, b| b.ridge.total_cmp(&a.ridge));
    out.truncate(MAX_FEATURES);
    out
}

/// The translation, in frame pixels, that carries the baseline's moving structures onto
/// `now` (the frame's ridge map on the same level as the features), or `None` when no shift
/// explains [`MIN_EXPLAINED`] of their ridge beyond what no shift does, or none stands out
/// ([`MIN_PEAK_TO_MEDIAN`]). Searched on a level
/// halved again (max-pooled, so a one-pixel line stays), then refined on the features' level.
pub(crate) fn estimate(features: &[Feature], now: &LevelImage) -> Option<[f64; 2]> {
    let total: f32 = features.iter().map(|f| f.ridge).sum();
    if features.is_empty() || total <= 0.0 {
        return None;
    }
    let level = &now.image;
    let scale = 1i32 << now.levels;
    // The search range on the features' level (a 512 matrix: `scale` frame px per px).
    let reach = MAX_SHIFT_PX;
    let coarse = max_pool(level);
    // An even share of every strength: the strongest alone can be one structure (the
    // balloon, a wire) and miss the leads.
    let step = features.len().div_ceil(COARSE_FEATURES).max(1);
    let coarse_features: Vec<Feature> =
        features.iter().step_by(step).map(|f| Feature { x: f.x / 2, y: f.y / 2, ridge: f.ridge }).collect();
    let coarse_here = explained_in_place(&coarse_features, &coarse);
    let here = explained_in_place(features, level);
    let r = (reach + 1) / 2;
    let shifts: Vec<[i32; 2]> = (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| [dx, dy])).collect();
    let mut scores: Vec<f32> = shifts.par_iter().map(|s| score(&coarse_features, &coarse_here, &coarse, *s)).collect();
    // The first best in scan order, so the result does not depend on the threads.
    let mut best = ([0, 0], 0.0f32);
    for (s, v) in shifts.iter().zip(&scores) {
        if *v > best.1 {
            best = (*s, *v);
        }
    }
    let mid = scores.len() / 2;
    let median_coarse = *scores.select_nth_unstable_by(mid, f32::total_cmp).1;
    if best.1 < MIN_PEAK_TO_MEDIAN * median_coarse {
        return None;
    }
    let centre = [2 * best.0[0], 2 * best.0[1]];
    let mut best = ([0, 0], 0.0f32);
    for dy in centre[1] - 2..=centre[1] + 2 {
        for dx in centre[0] - 2..=centre[0] + 2 {
            if dx.abs() > reach || dy.abs() > reach {
                continue;
            }
            let s = score(features, &here, level, [dx, dy]);
            if s > best.1 {
                best = ([dx, dy], s);
            }
        }
    }
    (best.1 >= MIN_EXPLAINED * total && best.0 != [0, 0])
        .then(|| [f64::from(best.0[0] * scale), f64::from(best.0[1] * scale)])
}

/// `now` at (`x`, `y`), 0 outside.
fn sample(now: &ImageF32, x: i32, y: i32) -> f32 {
    if x < 0 || y < 0 || x >= now.width as i32 || y >= now.height as i32 {
        0.0
    } else {
        now.data[y as usize * now.width + x as usize]
    }
}

/// Each feature's ridge explained where it was (up to its own ridge).
fn explained_in_place(features: &[Feature], now: &ImageF32) -> Vec<f32> {
    features.iter().map(|f| sample(now, f.x, f.y).min(f.ridge)).collect()
}

/// The features' ridge explained at `shift` (up to each feature's own ridge) beyond what is
/// explained where they were (`here`, from [`explained_in_place`]).
fn score(features: &[Feature], here: &[f32], now: &ImageF32, shift: [i32; 2]) -> f32 {
    features
        .iter()
        .zip(here)
        .map(|(f, h)| (sample(now, f.x + shift[0], f.y + shift[1]).min(f.ridge) - h).max(0.0))
        .sum()
}

/// Halves an image's sides, each pixel the largest of its 2 x 2 block.
fn max_pool(img: &ImageF32) -> ImageF32 {
    let (w, h) = (img.width.div_ceil(2), img.height.div_ceil(2));
    let mut out = ImageF32::zeros(w, h);
    out.data.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for sy in 2 * y..(2 * y + 2).min(img.height) {
            let src = &img.data[sy * img.width..(sy + 1) * img.width];
            for (x, v) in src.iter().enumerate() {
                let o = &mut row[x / 2];
                *o = o.max(*v);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 128 x 128 ridge map with unit-deep lines: `lines` as `(x0, y0, x1, y1)`.
    fn ridge_with(lines: &[(f64, f64, f64, f64)]) -> ImageF32 {
        let mut img = ImageF32::zeros(128, 128);
        // A little texture, so the noise estimate is not zero.
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = 0.01 * ((i * 7919 % 13) as f32 / 13.0);
        }
        for &(x0, y0, x1, y1) in lines {
            let n = ((x1 - x0).hypot(y1 - y0).ceil() as usize).max(1);
            for i in 0..=n {
                let t = i as f64 / n as f64;
                let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (px, py) = ((x.round() as i64 + dx) as usize, (y.round() as i64 + dy) as usize);
                        if px < 128 && py < 128 {
                            img.data[py * 128 + px] = 1.0;
                        }
                    }
                }
            }
        }
        img
    }

    fn level(image: ImageF32) -> LevelImage {
        LevelImage { image, levels: 0 }
    }

    #[test]
    fn a_lead_moved_by_breathing_is_followed_and_the_static_wire_does_not_hold_it_back() {
        // Baseline: a lead (diagonal) and a sternal wire (vertical); now the lead is 7 px
        // lower, the wire where it was, and a vein runs where the lead was.
        let before = ridge_with(&[(10.0, 20.0, 110.0, 80.0), (64.0, 0.0, 64.0, 127.0)]);
        let now = ridge_with(&[(10.0, 27.0, 110.0, 87.0), (64.0, 0.0, 64.0, 127.0), (40.0, 38.0, 110.0, 80.0)]);
        let f = dense_structures(&level(before)).features;
        assert!(f.len() > 50, "{}", f.len());
        let shift = estimate(&f, &level(now)).expect("a shift");
        assert!((shift[0] - 0.0).abs() <= 1.0 && (shift[1] - 7.0).abs() <= 1.0, "{shift:?}");
    }

    #[test]
    fn nothing_moved_gives_no_shift() {
        let before = ridge_with(&[(10.0, 20.0, 110.0, 80.0), (64.0, 0.0, 64.0, 127.0)]);
        // The same structures and a new vein.
        let now = ridge_with(&[(10.0, 20.0, 110.0, 80.0), (64.0, 0.0, 64.0, 127.0), (20.0, 100.0, 120.0, 110.0)]);
        assert_eq!(estimate(&dense_structures(&level(before)).features, &level(now)), None);
    }

    #[test]
    fn a_shift_is_given_in_frame_pixels() {
        let before = ridge_with(&[(10.0, 20.0, 110.0, 80.0)]);
        let now = ridge_with(&[(15.0, 20.0, 115.0, 80.0)]);
        let before = LevelImage { image: before, levels: 1 };
        let shift =
            estimate(&dense_structures(&before).features, &LevelImage { image: now, levels: 1 }).expect("a shift");
        assert!((shift[0] - 10.0).abs() <= 2.0 && shift[1].abs() <= 2.0, "{shift:?}");
    }

    #[test]
    fn no_features_gives_no_shift() {
        let flat = ImageF32::zeros(64, 64);
        assert!(dense_structures(&level(flat.clone())).features.is_empty());
        assert_eq!(estimate(&[], &level(flat)), None);
    }
}
