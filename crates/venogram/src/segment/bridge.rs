//! Stage 3b: a twig found by the line detector but cut off from its parent is joined to it
//! along the cheapest path through the line response.
//!
//! The line response at a pixel is the smaller of the line mean's excesses over the two side
//! means ([`line`](mod@super::line)). Within a few pixels of the parent's wall one side mean
//! lies on the parent, which is darker than the twig, so the response of a twig falls to
//! nothing just before it joins; and a twig only a few noise levels deep stands above the
//! seed level in pieces. Such a piece forms a component of its own, with no strong pixel to
//! hold it through hysteresis, and the twig is lost however clearly the line detector shows
//! it. Here a piece that is a line and not noise (long and straight enough) is followed from
//! each end by a minimal path (Dijkstra over the frame's pixels, each costing less the
//! higher the line response stands above its noise; Cohen & Kimmel 1997 for the method,
//! Deschamps & Cohen 2001 for vessels) to the nearest pixel of the mask. The path joins the
//! piece to the mask when it is short, leaves the piece's end the way the piece runs, holds
//! the line response a few noise levels up where the response can see it, and the image
//! contrast-filled where it cannot (next to the parent).
//!
//! Written by hand: OpenCV labels components but has no minimal-path search
//! ([`geodesic`](mod@super::geodesic)).

use rayon::prelude::*;

use super::SegmentError;
use super::geodesic::{Window, cheapest_path};
use super::graph::polyline_length;
use super::image::{ImageF32, Mask};
use super::label::median;
use super::line::LineResponse;
use super::threshold::components;

/// Longest path (px at a 512 matrix) by which an orphaned line may be joined.
const BRIDGE_MAX_PATH_PX: f64 = 24.0;

/// Shortest orphaned line that may be joined (its extent along its axis), px at a 512
/// matrix: longer than the chains noise forms at the line seed level.
const BRIDGE_MIN_LENGTH_PX: f64 = 6.0;

/// Smallest ratio of the orphan's spread along its axis to its spread across it (the
/// square root of the ratio of the principal second moments): a line, not a blob.
const BRIDGE_MIN_ELONGATION: f64 = 4.0;

/// Length of an orphan's end over which its local direction is measured, px at a 512
/// matrix.
const END_DIRECTION_PX: f64 = 6.0;

/// Length of the path next to the mask where the line response cannot see a twig (one side
/// line lies on the parent), px at a 512 matrix: there the top-hat is asked instead.
const BLIND_NEAR_MASK_PX: f64 = 5.0;

/// Smallest mean line response (noise levels above its floor) along the rest of the path.
const PATH_MIN_SIGMAS: f64 = 2.5;

/// Fraction of the orphan's median top-hat depth the blind part of the path must hold on
/// average: the twig goes on there, only the line detector loses it.
const GAP_MIN_DEPTH_FRACTION: f64 = 0.5;

/// Median line response before the contrast (its largest within the motion allowance, in
/// noise levels above its floor) at which an orphan counts as there before: a lead or
/// catheter the heart moved. On noise that largest value stands about 2; measured on the
/// held-out set B, orphans on twigs gave 1.5-2.4 and those on leads and catheters mostly 4-12
/// (at 3.0 a faint lead in seed 83 LAO, at 2.8, came in; set A has twigs at 2.6-3.0).
const BEFORE_MAX_SIGMAS: f64 = 2.6;

/// Smallest cosine between the orphan's outward direction at its end and the path's first
/// [`END_DIRECTION_PX`]: the path goes on the way the twig runs.
const MIN_LEAVING_COS: f64 = 0.5;

/// The line response of the frame before the contrast, and where the heart moved since.
#[derive(Clone, Copy)]
pub(crate) struct LineBefore<'a> {
    /// Line response of the baseline frame.
    pub lines: &'a LineResponse,
    /// Frame position minus baseline position of the moving structures, frame px, when
    /// found.
    pub shift_px: Option<[f64; 2]>,
    /// The allowance for all the motion, frame px.
    pub reach_px: f64,
    /// The allowance for what the shift leaves, frame px.
    pub aligned_reach_px: f64,
}

/// What the bridging reads: the frame's top-hat, its line response and the matrix factor.
#[derive(Clone, Copy)]
pub(crate) struct BridgeInput<'a> {
    /// Top-hat (contrast depth) of the frame.
    pub tophat: &'a ImageF32,
    /// Line response of the frame.
    pub lines: &'a LineResponse,
    /// The frame before the contrast, when there is one.
    pub before: Option<LineBefore<'a>>,
    /// Matrix factor, 1 at 512.
    pub k: f64,
}

/// What [`bridge_orphan_lines`] joined.
#[derive(Debug, Clone)]
pub(crate) struct Bridged {
    /// How many orphaned lines were joined.
    pub joined: usize,
    /// The pixels the joining paths filled (not the orphans' own): judged by the line they
    /// joined, not on their own, in the present-before test (next to the parent they carry
    /// the parent's new contrast).
    pub gaps: Mask,
}

/// Joins to `mask` each component of `orphans` (line pixels left out of the mask) that is a
/// line at least [`BRIDGE_MIN_LENGTH_PX`] long and that a minimal path from one of its ends
/// joins to the mask (see the module doc). An end for which `blocked` holds is not followed.
/// Orphans joined in one pass can carry others in the next.
pub(crate) fn bridge_orphan_lines(
    mask: &mut Mask,
    orphans: &Mask,
    input: &BridgeInput<'_>,
    blocked: &(dyn Fn([f64; 2]) -> bool + Sync),
) -> Result<Bridged, SegmentError> {
    let w = mask.width;
    let mut gaps = Mask::empty(mask.width, mask.height);
    let labels = components(orphans)?;
    if labels.count == 0 {
        return Ok(Bridged { joined: 0, gaps });
    }
    let mut pixels: Vec<Vec<[f64; 2]>> = vec![Vec::new(); labels.count + 1];
    for (i, l) in labels.labels.iter().enumerate() {
        if *l > 0 {
            pixels[*l as usize].push([(i % w) as f64, (i / w) as f64]);
        }
    }
    let k = input.k;
    // What does not change from pass to pass is measured once per orphan: its axis, its
    // depth, and whether its line was there before the contrast (a lead or catheter, never
    // joined).
    let mut pending: Vec<Orphan<'_>> = (1..=labels.count)
        .into_par_iter()
        .filter_map(|l| {
            let points = &pixels[l];
            let axis = principal_axis(points)?;
            let line_like = axis.extent_px >= BRIDGE_MIN_LENGTH_PX * k && axis.elongation >= BRIDGE_MIN_ELONGATION;
            if !line_like || line_before_sigmas(points, input) >= BEFORE_MAX_SIGMAS {
                return None;
            }
            let mut depths: Vec<f32> = points.iter().map(|p| input.tophat.at_clamped(p[0], p[1])).collect();
            depths.sort_by(f32::total_cmp);
            Some(Orphan { label: l as i32, points, axis, depth: f64::from(depths[depths.len() / 2]) })
        })
        .collect();
    let mut joined = 0;
    loop {
        // Each orphan's search reads the mask as the pass found it (in parallel); the joins
        // are drawn after, and carry other orphans in the next pass.
        let paths: Vec<Option<Vec<[f64; 2]>>> =
            pending.par_iter().map(|o| best_bridge(mask, o, &labels.labels, input, blocked)).collect();
        let before = pending.len();
        let mut still = Vec::with_capacity(before);
        for (orphan, path) in pending.into_iter().zip(paths) {
            let Some(path) = path else {
                still.push(orphan);
                continue;
            };
            paint(mask, orphan.points.iter().chain(&path));
            paint(&mut gaps, path[..path.len() - 1].iter().filter(|p| !orphans.get(p[0] as usize, p[1] as usize)));
            joined += 1;
        }
        pending = still;
        if pending.len() == before {
            return Ok(Bridged { joined, gaps });
        }
    }
}

/// An orphaned line that may be joined: its pixels, its component label, its principal axis
/// and its median top-hat depth.
struct Orphan<'a> {
    label: i32,
    points: &'a [[f64; 2]],
    axis: Axis,
    depth: f64,
}

/// The shortest acceptable path joining `orphan` to the mask from either end, or `None`.
fn best_bridge(
    mask: &Mask,
    orphan: &Orphan<'_>,
    labels: &[i32],
    input: &BridgeInput<'_>,
    blocked: &(dyn Fn([f64; 2]) -> bool + Sync),
) -> Option<Vec<[f64; 2]>> {
    let mut best: Option<Vec<[f64; 2]>> = None;
    for sign in [-1.0, 1.0] {
        let (end, outward) = end_and_direction(orphan.points, &orphan.axis, sign, END_DIRECTION_PX * input.k);
        if blocked(end) {
            continue;
        }
        let Some(path) = minimal_path(mask, end, orphan.label, labels, input) else {
            continue;
        };
        if accept(&path, outward, orphan.depth, input)
            && best.as_ref().is_none_or(|b| polyline_length(&path) < polyline_length(b))
        {
            best = Some(path);
        }
    }
    best
}

/// The median over `points` of the largest line response before the contrast within the
/// motion allowance, in noise levels above its floor (0 when there is no baseline). With the
/// heart's shift known, the larger of what lies within the smaller allowance of where the
/// shift moved the point from and within the whole allowance of the point itself.
fn line_before_sigmas(points: &[[f64; 2]], input: &BridgeInput<'_>) -> f64 {
    let Some(before) = input.before else { return 0.0 };
    let lines = before.lines;
    let (w, h) = (input.tophat.width as i64, input.tophat.height as i64);
    let largest_within = |p: [f64; 2], reach_px: f64| {
        let (x, y, r) = (p[0].round() as i64, p[1].round() as i64, reach_px.round() as i64);
        let mut best = f64::NEG_INFINITY;
        for v in (y - r).max(0)..=(y + r).min(h - 1) {
            for u in (x - r).max(0)..=(x + r).min(w - 1) {
                best = best.max(f64::from((lines.at(u as usize, v as usize) - lines.median) / lines.noise));
            }
        }
        best
    };
    let then: Vec<f64> = points
        .iter()
        .map(|p| {
            let here = largest_within(*p, before.reach_px);
            match before.shift_px {
                Some(s) => here.max(largest_within([p[0] - s[0], p[1] - s[1]], before.aligned_reach_px)),
                None => here,
            }
        })
        .collect();
    median(then).unwrap_or(0.0)
}

/// Whether a path from an orphan's end (outward direction `outward`, median depth `depth`)
/// to the mask is a twig's course: it leaves the way the orphan runs, the line response holds
/// where it can see, and the image is contrast-filled next to the mask.
fn accept(path: &[[f64; 2]], outward: [f64; 2], depth: f64, input: &BridgeInput<'_>) -> bool {
    let k = input.k;
    let (start, hit) = (path[0], path[path.len() - 1]);
    let lead = path.iter().find(|p| (p[0] - start[0]).hypot(p[1] - start[1]) >= END_DIRECTION_PX * k).unwrap_or(&hit);
    let (dx, dy) = (lead[0] - start[0], lead[1] - start[1]);
    let norm = dx.hypot(dy);
    let near_mask = |p: &[f64; 2]| (p[0] - hit[0]).hypot(p[1] - hit[1]) <= BLIND_NEAR_MASK_PX * k;
    if norm > 0.0 && (dx * outward[0] + dy * outward[1]) / norm < MIN_LEAVING_COS {
        return false;
    }
    // The last point is the mask's own.
    let (blind, seen): (Vec<&[f64; 2]>, Vec<&[f64; 2]>) = path[..path.len() - 1].iter().partition(|p| near_mask(p));
    let sigmas = |p: &[f64; 2]| {
        f64::from((input.lines.at(p[0] as usize, p[1] as usize) - input.lines.median) / input.lines.noise)
    };
    if !seen.is_empty() && seen.iter().map(|p| sigmas(p)).sum::<f64>() / (seen.len() as f64) < PATH_MIN_SIGMAS {
        return false;
    }
    let blind_depth =
        blind.iter().map(|p| f64::from(input.tophat.at_clamped(p[0], p[1]))).sum::<f64>() / blind.len().max(1) as f64;
    blind_depth >= GAP_MIN_DEPTH_FRACTION * depth
}

/// Sets the pixels within one pixel (4-neighbours) of `points` in `mask`: a joined path about
/// a twig's width, which stays 8-connected and thins to one line.
fn paint<'a>(mask: &mut Mask, points: impl Iterator<Item = &'a [f64; 2]>) {
    let (w, h) = (mask.width, mask.height);
    for p in points {
        for (dx, dy) in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)] {
            let (x, y) = (p[0].round() as i64 + dx, p[1].round() as i64 + dy);
            if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                mask.data[y as usize * w + x as usize] = 255;
            }
        }
    }
}

/// The minimal path ([`cheapest_path`], each step costing its length over (1 + s)^2 where s
/// is the line response in noise levels above its floor, at least 0) from `start` to the
/// nearest-in-cost pixel of `mask`, not through the orphan `label` itself, within
/// [`BRIDGE_MAX_PATH_PX`] of `start`; from `start` to that pixel, both included.
fn minimal_path(
    mask: &Mask,
    start: [f64; 2],
    label: i32,
    labels: &[i32],
    input: &BridgeInput<'_>,
) -> Option<Vec<[f64; 2]>> {
    let (w, h) = (mask.width, mask.height);
    let reach = BRIDGE_MAX_PATH_PX * input.k;
    let (sx, sy) = (start[0].round(), start[1].round());
    if sx < 0.0 || sy < 0.0 || sx >= w as f64 || sy >= h as f64 {
        return None;
    }
    let (sx, sy) = (sx as usize, sy as usize);
    let window = Window::around((sx, sy), (sx, sy), reach.ceil() as usize, w, h);
    let cost = |x: usize, y: usize| {
        let beyond = (x as f64 - sx as f64).hypot(y as f64 - sy as f64) > reach;
        if beyond || labels[y * w + x] == label {
            return None;
        }
        let s = (input.lines.at(x, y) - input.lines.median) / input.lines.noise;
        Some(1.0 / f64::from(1.0 + s.max(0.0)).powi(2))
    };
    let path = cheapest_path(&window, (sx, sy), cost, |x, y| mask.get(x, y))?;
    Some(path.into_iter().map(|(x, y)| [x as f64, y as f64]).collect())
}

/// A point set's centroid, unit principal axis, extent along it and elongation.
#[derive(Debug, Clone, Copy)]
struct Axis {
    centroid: [f64; 2],
    direction: [f64; 2],
    extent_px: f64,
    elongation: f64,
}

/// The principal axis of `points` (at least three), or `None` for fewer.
fn principal_axis(points: &[[f64; 2]]) -> Option<Axis> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let c = points.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for p in points {
        let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
        sxx += dx * dx / n;
        sxy += dx * dy / n;
        syy += dy * dy / n;
    }
    let mean = 0.5 * (sxx + syy);
    let root = (0.25 * (sxx - syy).powi(2) + sxy * sxy).sqrt();
    let (major, minor) = (mean + root, (mean - root).max(1e-6));
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let direction = [angle.cos(), angle.sin()];
    let along = |p: &[f64; 2]| (p[0] - c[0]) * direction[0] + (p[1] - c[1]) * direction[1];
    let (lo, hi) =
        points.iter().map(along).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| (lo.min(t), hi.max(t)));
    Some(Axis { centroid: c, direction, extent_px: hi - lo, elongation: (major / minor).sqrt() })
}

/// The end of `points` at the `sign` side of `axis` and the outward direction there: from the
/// mean of the points within `length_px` of that end (along the axis) to the end itself.
fn end_and_direction(points: &[[f64; 2]], axis: &Axis, sign: f64, length_px: f64) -> ([f64; 2], [f64; 2]) {
    let along = |p: &[f64; 2]| {
        sign * ((p[0] - axis.centroid[0]) * axis.direction[0] + (p[1] - axis.centroid[1]) * axis.direction[1])
    };
    let far = points.iter().map(along).fold(f64::NEG_INFINITY, f64::max);
    let end_pts: Vec<&[f64; 2]> = points.iter().filter(|p| along(p) >= far - 1.0).collect();
    let tail: Vec<&[f64; 2]> = points.iter().filter(|p| along(p) >= far - length_px).collect();
    let mean = |s: &[&[f64; 2]]| {
        let n = s.len() as f64;
        s.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n])
    };
    let (end, base) = (mean(&end_pts), mean(&tail));
    let (dx, dy) = (end[0] - base[0], end[1] - base[1]);
    let norm = dx.hypot(dy);
    // A tail too short to give a direction: use the axis.
    let outward =
        if norm < 1.0 { [sign * axis.direction[0], sign * axis.direction[1]] } else { [dx / norm, dy / norm] };
    (end, outward)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::image::LevelImage;

    const W: usize = 100;
    const H: usize = 60;

    fn blank() -> Mask {
        Mask { width: W, height: H, data: vec![0; W * H] }
    }

    /// The twig's row at column `x`: it leaves the parent's wall (x 28) at row 30, heading
    /// right and a little down.
    fn twig_y(x: f64) -> f64 {
        30.0 + (x - 28.0) * 12.0 / 52.0
    }

    fn set_twig(m: &mut Mask, from_x: f64, to_x: f64) {
        let mut x = from_x;
        while x <= to_x {
            m.data[twig_y(x).round() as usize * W + x.round() as usize] = 255;
            x += 0.25;
        }
    }

    /// A vertical parent vein (x 20-27) in the mask and a twig leaving it to the right. The
    /// line detector holds the twig from `orphan_from_x` on (the orphan), `seen_sigmas` deep
    /// from x 33 to there and blind next to the parent (x 28-32), where the top-hat is
    /// `blind_depth` (1 on the rest of the twig).
    struct Scene {
        mask: Mask,
        orphans: Mask,
        tophat: ImageF32,
        lines: LineResponse,
    }

    fn scene(orphan_from_x: f64, seen_sigmas: f32, blind_depth: f32) -> Scene {
        let mut mask = blank();
        for y in 0..H {
            for x in 20..28 {
                mask.data[y * W + x] = 255;
            }
        }
        let mut orphans = blank();
        set_twig(&mut orphans, orphan_from_x, 80.0);
        let mut tophat = ImageF32::zeros(W, H);
        let mut response = ImageF32::zeros(W, H);
        for y in 0..H {
            for x in 0..W {
                // The twig's contrast spreads over about 5 px; the line response is sharper.
                let off = (y as f64 - twig_y(x as f64)).abs();
                let on_twig = (28..=80).contains(&x) && off <= 2.5;
                let i = y * W + x;
                if (20..28).contains(&x) {
                    tophat.data[i] = 3.0;
                } else if on_twig {
                    let blind = x < 33;
                    tophat.data[i] = if blind { blind_depth } else { 1.0 };
                    response.data[i] = if blind || off > 1.0 {
                        0.0
                    } else if (x as f64) < orphan_from_x {
                        seen_sigmas
                    } else {
                        6.0
                    };
                }
            }
        }
        let lines = LineResponse {
            response: LevelImage { image: response, levels: 0 },
            noise: 1.0,
            median: 0.0,
            orientation: vec![0; W * H],
        };
        Scene { mask, orphans, tophat, lines }
    }

    fn run(s: &mut Scene, blocked: &(dyn Fn([f64; 2]) -> bool + Sync)) -> usize {
        let input = BridgeInput { tophat: &s.tophat, lines: &s.lines, before: None, k: 1.0 };
        bridge_orphan_lines(&mut s.mask, &s.orphans, &input, blocked).unwrap().joined
    }

    #[test]
    fn a_twig_seen_in_pieces_is_joined_along_its_course_to_the_parent() {
        let mut s = scene(45.0, 3.5, 1.0);
        assert_eq!(run(&mut s, &|_| false), 1);

        // The course from the parent's wall to the orphan is filled (within the twig's
        // contrast, 2 px of its axis), and so is the orphan.
        for x in 28..45 {
            let y = twig_y(f64::from(x)).round() as usize;
            assert!((y - 2..=y + 2).any(|y| s.mask.data[y * W + x as usize] == 255), "gap at x {x}");
        }
        assert_eq!(s.mask.data[42 * W + 80], 255);
        // Nothing off the twig's course: the row above the parent's wall stays empty.
        assert_eq!(s.mask.data[20 * W + 35], 0);
    }

    #[test]
    fn a_path_through_noise_a_gap_too_long_or_a_blocked_end_is_not_joined() {
        assert_eq!(run(&mut scene(45.0, 1.0, 1.0), &|_| false), 0, "path at noise level");
        assert_eq!(run(&mut scene(58.0, 3.5, 1.0), &|_| false), 0, "30 px: too long");
        assert_eq!(run(&mut scene(45.0, 3.5, 1.0), &|_| true), 0, "blocked");
    }

    #[test]
    fn an_empty_gap_next_to_the_parent_is_not_joined() {
        let mut s = scene(45.0, 3.5, 0.0);
        assert_eq!(run(&mut s, &|_| false), 0);
        assert_eq!(s.mask.data[30 * W + 30], 0, "nothing drawn");
    }

    #[test]
    fn a_path_that_turns_away_from_the_orphans_course_is_not_joined() {
        // An orphan running parallel to the parent, 8 px from it, over a bright response.
        let mut s = scene(45.0, 3.5, 1.0);
        s.orphans = blank();
        for y in 10..50 {
            s.orphans.data[y * W + 36] = 255;
        }
        s.lines.response.image.data.iter_mut().for_each(|v| *v = 4.0);
        s.tophat.data.iter_mut().for_each(|v| *v = 1.0);
        assert_eq!(run(&mut s, &|_| false), 0);
    }

    #[test]
    fn a_line_that_was_there_before_the_contrast_is_not_joined_even_moved_by_the_heart() {
        // The baseline shows the orphan's line 10 px higher: the heart moved it down since.
        let s = scene(45.0, 3.5, 1.0);
        let mut before = s.lines.clone();
        before.response.image.data.iter_mut().for_each(|v| *v = 0.0);
        for y in 0..H {
            for x in 0..W {
                if s.lines.response.image.data[y * W + x] > 5.0 && y >= 10 {
                    before.response.image.data[(y - 10) * W + x] = 6.0;
                }
            }
        }
        let joined = |shift_px: Option<[f64; 2]>| {
            let mut s = scene(45.0, 3.5, 1.0);
            let line_before = LineBefore { lines: &before, shift_px, reach_px: 4.0, aligned_reach_px: 2.0 };
            let input = BridgeInput { tophat: &s.tophat, lines: &s.lines, before: Some(line_before), k: 1.0 };
            bridge_orphan_lines(&mut s.mask, &s.orphans, &input, &|_| false).unwrap().joined
        };
        assert_eq!(joined(Some([0.0, 10.0])), 0, "the shift carries the old line onto the orphan");
        assert_eq!(joined(None), 1, "beyond the allowance without the shift: new");
    }

    #[test]
    fn a_short_or_blob_shaped_orphan_is_left_out() {
        let mut s = scene(45.0, 3.5, 1.0);
        s.orphans = blank();
        set_twig(&mut s.orphans, 40.0, 44.0);
        assert_eq!(run(&mut s, &|_| false), 0, "short");
        s.orphans = blank();
        for y in 30..40 {
            for x in 40..52 {
                s.orphans.data[y * W + x] = 255;
            }
        }
        assert_eq!(run(&mut s, &|_| false), 0, "blob");
    }
}
