//! Stage 1b: the chosen frame averaged with its registered neighbours at the same filling.
//!
//! A venogram's best-opacified frame sits on a plateau of the contrast curve a few frames
//! long: the balloon holds the contrast in the veins, and in diastasis the heart is still but
//! for the breath, which carries it a few pixels from frame to frame. The quantum noise is new
//! in every frame. Averaging the plateau's frames, each moved onto the chosen one, lowers the
//! noise by up to the square root of their number, and the faintest veins (a 1 px twig holds
//! two or three noise sigma in one frame) are what that brings out: the eye does the same when
//! a physician reads the cine rather than a still frame.
//!
//! The average is motion-adaptive, as a fluoroscope's recursive filter is: where a
//! neighbour, once moved, differs from the chosen frame by more than the noise explains (the
//! sternal wires and the spine, which do not move with the breath; a vein the heart's motion
//! moved), that neighbour's pixel is left out, so nothing is blurred or doubled. A neighbour
//! whose veins do not line up at any shift (the heart contracting) is left out whole.
//!
//! The shift is found on the background-suppressed image's strong pixels (the veins the
//! contrast filled): the translation that explains most of their depth, as in
//! [`shift`](super::shift). Whole working pixels only, so the averaged noise stays white and
//! the noise estimates downstream stay true. Written by hand for that reason: OpenCV's
//! `phaseCorrelate` gives sub-pixel shifts of the whole image, the static bones included.

use rayon::prelude::*;

use super::SegmentError;
use super::enhance::suppress_background;
use super::image::ImageF32;
use super::pipeline::{box_sum, noise_sigma};

/// Farthest neighbour averaged, frames on either side of the chosen one.
pub(crate) const MAX_REACH_FRAMES: u32 = 2;

/// A neighbour's vessel energy, as a fraction of the chosen frame's, to be on its plateau (and
/// at most the inverse margin above it).
pub(crate) const PLATEAU_ENERGY_FRACTION: f64 = 0.95;

/// Largest shift searched between neighbouring frames, working px (a 512 matrix): breathing
/// moves the heart under 1 mm per frame at 15 frames/s, about 5 px.
const MAX_SHIFT_PX: i32 = 8;

/// How far above the background-suppressed image's noise a pixel must stand to guide the
/// registration (the contrast-filled veins, leads and wires).
const SUPPORT_SIGMAS: f32 = 5.0;

/// Difference between a moved neighbour and the chosen frame, in sigmas of the difference's
/// noise (3 x 3 mean), beyond which the neighbour's pixel is left out.
const REJECT_SIGMAS: f32 = 3.0;

/// Fraction of the support's depth a shift must explain beyond what is explained in place to
/// be taken (less is noise: the heart did not move).
const MIN_EXPLAINED: f32 = 0.03;

/// How many times the median shift's score the best must reach: the noise gives every shift
/// a little, a true shift stands out.
const MIN_PEAK_TO_MEDIAN: f32 = 2.0;

/// Fraction of the support a neighbour must agree on, moved by its shift or (what does not
/// move with the heart) in place, to be averaged at all.
const MIN_AGREEMENT: f32 = 0.7;

/// A neighbouring frame averaged into the chosen one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlateauFrame {
    /// The neighbour's index in the run (0-based).
    pub frame: u32,
    /// Its shift, pixels `(dx, dy)`: the neighbour's pixel `p + shift_px` was averaged into
    /// the chosen frame's pixel `p` (working pixels inside the pipeline, the frame's own pixels
    /// in a [`Segmentation`](super::Segmentation)).
    pub shift_px: [i32; 2],
}

/// The chosen frame's attenuation `chosen` averaged with `neighbours` (frame index and
/// attenuation at the same working resolution), each moved onto it, and the neighbours that
/// were averaged in; `r_max` is the widest vessel radius (px), which sizes the background
/// suppression.
pub(crate) fn average(
    chosen: &ImageF32,
    neighbours: &[(u32, ImageF32)],
    r_max: f32,
) -> Result<(ImageF32, Vec<PlateauFrame>), SegmentError> {
    if neighbours.is_empty() {
        return Ok((chosen.clone(), Vec::new()));
    }
    let sigma = noise_sigma(chosen);
    let t_chosen = suppress_background(chosen, r_max)?;
    let t_sigma = noise_sigma(&t_chosen).max(1e-9);
    let support = support(&t_chosen, SUPPORT_SIGMAS * t_sigma);
    if support.is_empty() || sigma <= 0.0 {
        return Ok((chosen.clone(), Vec::new()));
    }
    let (w, h) = (chosen.width, chosen.height);
    let mut sum: Vec<f32> = chosen.data.clone();
    let mut weight = vec![1.0f32; w * h];
    let mut used = Vec::new();
    for (index, a) in neighbours {
        if a.width != w || a.height != h {
            continue;
        }
        let t = suppress_background(a, r_max)?;
        let shift = best_shift(&support, &t_chosen, &t);
        let moved = translated(a, shift);
        let keep = agreement(chosen, &moved, sigma)?;
        // What did not move with the heart (wires, spine) agrees where it was.
        let in_place = if shift == [0, 0] { None } else { Some(agreement(chosen, a, sigma)?) };
        let agreeing = support
            .iter()
            .filter(|&&(x, y)| keep[y * w + x] || in_place.as_ref().is_some_and(|k| k[y * w + x]))
            .count();
        tracing::debug!(index, ?shift, agreement = agreeing as f32 / support.len() as f32, "temporal neighbour");
        if (agreeing as f32) < MIN_AGREEMENT * support.len() as f32 {
            continue;
        }
        sum.par_iter_mut().zip(weight.par_iter_mut()).zip(moved.data.par_iter().zip(keep.par_iter())).for_each(
            |((s, wt), (v, k))| {
                if *k {
                    *s += *v;
                    *wt += 1.0;
                }
            },
        );
        used.push(PlateauFrame { frame: *index, shift_px: shift });
    }
    let data = sum.iter().zip(&weight).map(|(s, wt)| s / wt).collect();
    Ok((ImageF32 { width: w, height: h, data }, used))
}

/// Every other pixel and row where the background-suppressed image stands above `floor`.
fn support(t: &ImageF32, floor: f32) -> Vec<(usize, usize)> {
    (0..t.height)
        .step_by(2)
        .flat_map(|y| (0..t.width).step_by(2).map(move |x| (x, y)))
        .filter(|&(x, y)| t.at(x, y) > floor)
        .collect()
}

/// The shift `s` (neighbour pixel = chosen pixel + `s`) that explains most of the chosen
/// frame's support depth in the neighbour's background-suppressed image `t` beyond what is
/// explained in place (so the wires and the spine, which do not move with the heart, add
/// nothing to any shift); no shift when none explains [`MIN_EXPLAINED`] of the depth beyond
/// that or stands out of the rest ([`MIN_PEAK_TO_MEDIAN`]). The first best in scan order, so
/// the result does not depend on the threads.
fn best_shift(support: &[(usize, usize)], chosen: &ImageF32, t: &ImageF32) -> [i32; 2] {
    let depth: Vec<f32> = support.iter().map(|&(x, y)| chosen.at(x, y)).collect();
    let here: Vec<f32> = support.iter().zip(&depth).map(|(&(x, y), d)| d.min(t.at(x, y))).collect();
    let total: f32 = depth.iter().sum();
    // The gain of shift `s` over every `step`-th support pixel.
    let score = |s: [i32; 2], step: usize| -> f32 {
        support
            .iter()
            .zip(depth.iter().zip(&here))
            .step_by(step)
            .map(|(&(x, y), (d, h))| {
                let (nx, ny) = (x as i32 + s[0], y as i32 + s[1]);
                if nx < 0 || ny < 0 || nx >= t.width as i32 || ny >= t.height as i32 {
                    0.0
                } else {
                    (d.min(t.at(nx as usize, ny as usize)) - h).max(0.0)
                }
            })
            .sum()
    };
    let first_best = |shifts: &[[i32; 2]], scores: &[f32]| {
        let mut best = ([0, 0], 0.0f32);
        for (s, v) in shifts.iter().zip(scores) {
            if *v > best.1 {
                best = (*s, *v);
            }
        }
        best
    };
    // Coarse: every other shift over every other support pixel (a vein two or more pixels
    // wide still scores one pixel off its shift), then every shift around the best.
    let r = MAX_SHIFT_PX;
    let coarse: Vec<[i32; 2]> =
        (-r..=r).step_by(2).flat_map(|dy| (-r..=r).step_by(2).map(move |dx| [dx, dy])).collect();
    let mut coarse_scores: Vec<f32> = coarse.par_iter().map(|s| score(*s, 2)).collect();
    let (centre, coarse_best) = first_best(&coarse, &coarse_scores);
    let mid = coarse_scores.len() / 2;
    let median = *coarse_scores.select_nth_unstable_by(mid, f32::total_cmp).1;
    if coarse_best < MIN_PEAK_TO_MEDIAN * median {
        return [0, 0];
    }
    let fine: Vec<[i32; 2]> = (-1..=1)
        .flat_map(|dy| (-1..=1).map(move |dx| [centre[0] + dx, centre[1] + dy]))
        .filter(|s| s[0].abs() <= r && s[1].abs() <= r)
        .collect();
    let fine_scores: Vec<f32> = fine.par_iter().map(|s| score(*s, 1)).collect();
    let (best, explained) = first_best(&fine, &fine_scores);
    if explained >= MIN_EXPLAINED * total { best } else { [0, 0] }
}

/// The neighbour `a` moved so that its pixel `p + shift` lands on `p`; pixels brought in
/// from outside repeat the nearest edge.
fn translated(a: &ImageF32, shift: [i32; 2]) -> ImageF32 {
    let (w, h) = (a.width as i32, a.height as i32);
    let mut out = ImageF32::zeros(a.width, a.height);
    out.data.par_chunks_mut(a.width).enumerate().for_each(|(y, row)| {
        let sy = (y as i32 + shift[1]).clamp(0, h - 1) as usize;
        for (x, o) in row.iter_mut().enumerate() {
            let sx = (x as i32 + shift[0]).clamp(0, w - 1) as usize;
            *o = a.at(sx, sy);
        }
    });
    out
}

/// Where the moved neighbour agrees with the chosen frame: their difference, averaged over
/// 3 x 3 (OpenCV's box filter), within [`REJECT_SIGMAS`] of its noise (`sigma` is one frame's
/// noise).
fn agreement(chosen: &ImageF32, moved: &ImageF32, sigma: f32) -> Result<Vec<bool>, SegmentError> {
    let diff = ImageF32 {
        width: chosen.width,
        height: chosen.height,
        data: chosen.data.iter().zip(&moved.data).map(|(a, b)| a - b).collect(),
    };
    // The difference of two frames has sqrt(2) sigma; its 3 x 3 mean a third of that.
    let limit = 9.0 * REJECT_SIGMAS * sigma * std::f32::consts::SQRT_2 / 3.0;
    Ok(box_sum(&diff, 1)?.data.iter().map(|s| s.abs() <= limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic standard-normal noise (Box-Muller on a 64-bit LCG).
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f32 {
            let (u, v) = (self.uniform(), self.uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        }
    }

    const SIZE: usize = 128;
    const SIGMA: f32 = 0.01;
    const RING_CENTRE: [f32; 2] = [50.0, 60.0];
    const RING_RADIUS: f32 = 30.0;

    /// A frame: a vein 10 noise sigma deep and about 2 px wide, bent into a ring (so a shift
    /// lines it up in one place only) and moved by `heart`; a static wire 30 sigma deep at
    /// column 100; white noise from `seed`.
    fn frame(heart: [f32; 2], seed: u64) -> ImageF32 {
        let mut noise = Noise(seed);
        let mut img = ImageF32::zeros(SIZE, SIZE);
        for y in 0..SIZE {
            for x in 0..SIZE {
                let (fx, fy) = (x as f32 - heart[0] - RING_CENTRE[0], y as f32 - heart[1] - RING_CENTRE[1]);
                let d_vein = fx.hypot(fy) - RING_RADIUS;
                let d_wire = x as f32 - 100.0;
                let vein = 10.0 * SIGMA * (-d_vein * d_vein / 2.0).exp();
                let wire = 30.0 * SIGMA * (-d_wire * d_wire).exp();
                img.data[y * SIZE + x] = 0.3 + vein + wire + SIGMA * noise.normal();
            }
        }
        img
    }

    /// The noise of a flat strip right of the wire.
    fn flat_noise(img: &ImageF32) -> f32 {
        let patch = ImageF32 {
            width: 20,
            height: 80,
            data: (20..100).flat_map(|y| (106..126).map(move |x| (x, y))).map(|(x, y)| img.at(x, y)).collect(),
        };
        noise_sigma(&patch)
    }

    /// The ring's mean depth in the chosen frame: on it less 8 px outside it.
    fn ring_depth(img: &ImageF32) -> f32 {
        let at = |r: f32, t: f32| {
            let (x, y) = (RING_CENTRE[0] + r * t.cos(), RING_CENTRE[1] + r * t.sin());
            img.at(x.round() as usize, y.round() as usize)
        };
        let n = 64;
        (0..n)
            .map(|i| i as f32 * std::f32::consts::TAU / n as f32)
            .map(|t| at(RING_RADIUS, t) - at(RING_RADIUS + 8.0, t))
            .sum::<f32>()
            / n as f32
    }

    #[test]
    fn neighbours_moved_by_the_breath_are_found_and_the_noise_falls() {
        let chosen = frame([0.0, 0.0], 1);
        let neighbours = vec![(4, frame([0.0, 3.0], 2)), (6, frame([2.0, -2.0], 3))];
        let (avg, used) = average(&chosen, &neighbours, 6.0).expect("average");
        assert_eq!(
            used,
            vec![PlateauFrame { frame: 4, shift_px: [0, 3] }, PlateauFrame { frame: 6, shift_px: [2, -2] }]
        );
        // Three frames: the noise falls by about sqrt(3).
        let (before, after) = (flat_noise(&chosen), flat_noise(&avg));
        assert!(after < 0.7 * before, "noise {before} -> {after}");
        // The vein keeps its depth (averaged where it lies, not blurred away).
        assert!(ring_depth(&avg) > 0.9 * ring_depth(&chosen), "{} vs {}", ring_depth(&avg), ring_depth(&chosen));
    }

    #[test]
    fn the_static_wire_is_not_doubled() {
        // The heart moved 3 px sideways: the neighbours' wire lands 3 px off the chosen
        // frame's, and those pixels must be left out.
        let chosen = frame([0.0, 0.0], 1);
        let neighbours = vec![(4, frame([3.0, 0.0], 2)), (6, frame([3.0, 0.0], 3))];
        let (avg, used) = average(&chosen, &neighbours, 6.0).expect("average");
        assert_eq!(used.len(), 2, "{used:?}");
        let column = |img: &ImageF32, x: usize| (10..120).map(|y| img.at(x, y)).sum::<f32>() / 110.0;
        let background = column(&avg, 90);
        let ghost = column(&avg, 97) - background;
        assert!(ghost.abs() < 0.5 * SIGMA, "ghost {ghost}");
        assert!(column(&avg, 100) - background > 25.0 * SIGMA, "the wire itself");
    }

    #[test]
    fn a_neighbour_whose_veins_do_not_line_up_is_left_out() {
        let chosen = frame([0.0, 0.0], 1);
        // Contracting: the ring is smaller, and no shift lines it up.
        let mut other = frame([0.0, 0.0], 2);
        for y in 0..SIZE {
            for x in 0..SIZE {
                let (fx, fy) = (x as f32 - RING_CENTRE[0], y as f32 - RING_CENTRE[1]);
                let (now, then) = (fx.hypot(fy) - RING_RADIUS, fx.hypot(fy) - 0.8 * RING_RADIUS);
                let i = y * SIZE + x;
                other.data[i] += 10.0 * SIGMA * ((-then * then / 2.0).exp() - (-now * now / 2.0).exp());
            }
        }
        let (avg, used) = average(&chosen, &[(5, other)], 6.0).expect("average");
        assert!(used.is_empty(), "{used:?}");
        assert_eq!(avg, chosen);
    }

    #[test]
    fn a_heart_that_did_not_move_gets_no_shift_from_the_noise() {
        let chosen = frame([0.0, 0.0], 1);
        let (_, used) =
            average(&chosen, &[(4, frame([0.0, 0.0], 2)), (6, frame([0.0, 0.0], 3))], 6.0).expect("average");
        assert_eq!(
            used,
            vec![PlateauFrame { frame: 4, shift_px: [0, 0] }, PlateauFrame { frame: 6, shift_px: [0, 0] }]
        );
    }

    #[test]
    fn no_neighbours_or_no_structure_leave_the_frame_as_it_is() {
        let chosen = frame([0.0, 0.0], 1);
        assert_eq!(average(&chosen, &[], 6.0).expect("average"), (chosen.clone(), Vec::new()));
        let flat = ImageF32 { width: 64, height: 64, data: vec![0.5; 64 * 64] };
        let (avg, used) = average(&flat, &[(1, flat.clone())], 6.0).expect("average");
        assert!(used.is_empty());
        assert_eq!(avg, flat);
        // A neighbour of another size is skipped.
        let small = ImageF32::zeros(64, 64);
        assert!(average(&chosen, &[(1, small)], 6.0).expect("average").1.is_empty());
    }
}
