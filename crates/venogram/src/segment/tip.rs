//! Stage 4e: each vein followed on from where the mask lets go of it.
//!
//! A vein fades towards its end: it narrows, and the contrast in it thins as the injection
//! washes out distally. The mask ends where the vesselness or the line response falls under
//! its threshold, or where a rib's edge or the heart's shadow joined the vein in one blob
//! that the mask's gates then refused; the image often shows the vein some way past that.
//!
//! From each free end of the tree this stage walks on along the vein's course a pixel at a
//! time, starting a little before the end (thinning bends a skeleton's last pixels into the
//! blob its end lies in). At each step it fits the image across the course (the top-hat
//! attenuation, which is logarithmic, so a filled vein adds a cylinder's projected path to
//! what lies behind it), seven profiles a pixel apart along it together, with one iodine
//! cylinder on a planar background (a rib's edge crosses the course as a slope along it), its
//! centre within [`STEP_WINDOW_PX`] of the course and its radius the vein's or a little under
//! (veins taper). The step shows the vein when the cylinder explains the image better than
//! the plane alone by more than the noise does ([`MIN_EVIDENCE`]) and its iodine per pixel
//! of path is like the vein's own before the end ([`DENSITY_RATIO`]: a lead or wire is far
//! denser). The walk ends after a few steps without it, at [`MAX_RUN_PX`], or where it comes
//! within reach of another vein of the tree (a fading end lying over another vein in
//! projection would close a loop); it is dropped where it runs into a device or the balloon.
//! The vein is drawn on to the last step that showed it, when enough of the steps did. A
//! branch leaving the balloon, and a wide end far fainter than the tree's others (the guide
//! catheter), are not followed.
//!
//! Written by hand: OpenCV has no model fit along a curve.

use rayon::prelude::*;

use super::calibre::bilinear;
use super::image::ImageF32;
use super::junction::arc_range;
use super::label::{OrientedEdge, direction, dist, median};
use super::profile::{chord, solve};

/// Least improvement of the cylinder fit over the background alone, in units of the
/// profile's residual variance (an F statistic with one degree of freedom in the numerator).
/// The samples across are half a pixel apart, so neighbours share their noise through the
/// interpolation and the statistic reads about twice what independent samples would give:
/// 18 is a cylinder three standard errors deep.
const MIN_EVIDENCE: f64 = 18.0;

/// Range of a step's iodine per pixel of path against the vein's own before its end: the
/// contrast thins distally, and a lead or wire is far denser.
const DENSITY_RATIO: (f64, f64) = (0.3, 2.5);

/// Steps in a row without evidence after which the walk stops.
const MAX_MISSES: usize = 3;

/// Shortest extension kept, px at a 512 matrix.
const MIN_RUN_PX: f64 = 4.0;

/// Least fraction of the steps up to the last one with evidence that had it.
const MIN_SUPPORT: f64 = 0.7;

/// How far the vein's axis may move across its course from one step to the next, px at a
/// 512 matrix (steps are a pixel apart there).
const STEP_WINDOW_PX: f64 = 0.75;

/// Arc length over which the vein's direction at its end is measured, px at a 512 matrix.
const DIRECTION_REACH_PX: f64 = 6.0;

/// How far before the end the walk starts, px at a 512 matrix beyond two of the vein's
/// radii.
const BACKTRACK_PX: f64 = 3.0;

/// Widest end (px at a 512 matrix) followed on whatever its density: the guide catheter,
/// which the tree keeps a piece of at times, is as wide as a tributary but far fainter for
/// its width (its lumen holds little contrast), and its end would be followed along it.
const MAX_RADIUS_PX: f64 = 3.0;

/// Least density of contrast of a wider end, against the median over the tree's ends.
const CATHETER_DENSITY_RATIO: f64 = 0.6;

/// Thinnest radius fitted, px at a 512 matrix.
const MIN_RADIUS_PX: f64 = 0.6;

/// Profiles fitted together either side of each step (a pixel apart along the course).
const ALONG: i32 = 3;

/// Arc length before the end over which the vein's own density and calibre are read, px at
/// a 512 matrix.
const REFERENCE_REACH_PX: f64 = 30.0;

/// Longest extension, px at a 512 matrix.
const MAX_RUN_PX: f64 = 40.0;

/// How near another vein's wall (px at a 512 matrix, beyond both radii) the walk may come.
const CLEARANCE_PX: f64 = 1.0;

/// Draws every free end of the tree on along its vein as far as the image shows it (see the
/// module doc). `depth` is the top-hat attenuation at the working matrix, `k` the matrix
/// factor (1 at 512); `keep_out(p, r)` is true where a walk of radius `r` px reaching `p`
/// lies on a device or the balloon, `at_balloon(p)` where `p` lies at the balloon. Returns
/// how many ends moved.
pub(crate) fn follow_tips(
    edges: &mut [OrientedEdge],
    depth: &ImageF32,
    k: f64,
    keep_out: &impl Fn([f64; 2], f64) -> bool,
    at_balloon: &impl Fn([f64; 2]) -> bool,
) -> usize {
    // The free ends, each with its vein's own density and calibre; and the tree's typical
    // density of contrast, against which a wide faint end is the catheter's.
    let free: Vec<usize> = (0..edges.len())
        .filter(|i| {
            let e = &edges[*i];
            // A branch leaving the balloon is more likely the guide catheter or a lead than a
            // vein (the tree keeps such a piece at times): it is not drawn on.
            e.children.is_empty() && e.length_px() >= MIN_RUN_PX * k && !at_balloon(e.points[0])
        })
        .collect();
    let shared: &[OrientedEdge] = edges;
    let ends: Vec<(usize, (f64, f64))> =
        free.into_par_iter().filter_map(|i| reference(&shared[i], depth, k).map(|r| (i, r))).collect();
    let Some(typical) = median(ends.iter().map(|(_, (d, _))| *d).collect()) else {
        return 0;
    };
    let mut moved = 0;
    for (i, (density, radius)) in ends {
        if radius > MAX_RADIUS_PX * k && density < CATHETER_DENSITY_RATIO * typical {
            continue;
        }
        let Some((from, run)) = walk(edges, i, (density, radius), depth, k, keep_out) else { continue };
        let e = &mut edges[i];
        e.points.truncate(from + 1);
        e.radius_px.truncate(from + 1);
        for (p, r) in run {
            e.points.push(p);
            e.radius_px.push(r);
        }
        moved += 1;
    }
    moved
}

/// A walk's result: the index of the edge point it starts from, and the points (with their
/// radii, px) that replace the edge's after it.
type Extension = (usize, Vec<([f64; 2], f64)>);

/// The best fit of one step: the cylinder's centre across the course (px from the point
/// fitted), its radius and iodine per pixel of path, and its evidence over the background.
#[derive(Debug, Clone, Copy)]
struct StepFit {
    offset_px: f64,
    radius_px: f64,
    density: f64,
    evidence: f64,
}

/// The extension of edge `i` past its end, given its vein's own density and radius there
/// ([`reference`]): the index of the point it starts from and its points and radii; `None`
/// when the image shows none (see [`follow_tips`]).
///
/// The walk starts a little before the end, on the vein's own course: thinning bends a
/// skeleton's last pixels into whatever blob its end lies in, and the end's direction with
/// them.
fn walk(
    edges: &[OrientedEdge],
    i: usize,
    (density_ref, radius_ref): (f64, f64),
    depth: &ImageF32,
    k: f64,
    keep_out: &impl Fn([f64; 2], f64) -> bool,
) -> Option<Extension> {
    let e = &edges[i];
    let n = e.points.len();
    let back = arc_range(e.points.iter().rev().copied(), 0.0, 2.0 * radius_ref + BACKTRACK_PX * k).end.max(1);
    let from = n - back;
    let course = arc_range(e.points[..=from].iter().rev().copied(), 0.0, DIRECTION_REACH_PX * k).end.max(2);
    let d0 = direction(&e.points[from + 1 - course.min(from + 1)..=from], false, f64::INFINITY)?;
    let mut d = d0;
    let old_end = *e.points.last()?;
    let density_range = (DENSITY_RATIO.0 * density_ref, DENSITY_RATIO.1 * density_ref);
    let start = e.points[from];
    let beyond_old_end = (old_end[0] - start[0]) * d0[0] + (old_end[1] - start[1]) * d0[1];
    let mut p = start;
    let mut r = radius_ref;
    let mut path: Vec<([f64; 2], f64, bool)> = Vec::new();
    let mut misses = 0;
    let step = k;
    for _ in 0..MAX_RUN_PX as usize {
        let q = [p[0] + step * d[0], p[1] + step * d[1]];
        if keep_out(q, r) {
            // Run into a device: more likely along it than a vein's end beside it.
            return None;
        }
        if near_another(edges, i, q, r + CLEARANCE_PX * k) {
            break;
        }
        // At the image's edge the walk ends with what it has.
        let Some(fit) = fit_step(depth, q, d, &[r, 0.8 * r, 0.6 * r], STEP_WINDOW_PX * k, k) else { break };
        let shows = fit.evidence >= MIN_EVIDENCE && (density_range.0..=density_range.1).contains(&fit.density);
        if shows {
            let n = [-d[1], d[0]];
            let next = [q[0] + fit.offset_px * n[0], q[1] + fit.offset_px * n[1]];
            let moved = dist(p, next);
            if moved > 1e-9 {
                let along = [(next[0] - p[0]) / moved, (next[1] - p[1]) / moved];
                let (x, y) = (d[0] + along[0], d[1] + along[1]);
                let norm = x.hypot(y);
                if norm > 1e-9 {
                    d = [x / norm, y / norm];
                }
            }
            r = fit.radius_px.max(MIN_RADIUS_PX * k);
            path.push((next, r, true));
            p = next;
            misses = 0;
        } else {
            misses += 1;
            if misses > MAX_MISSES {
                break;
            }
            path.push((q, r, false));
            p = q;
        }
    }
    let last = path.iter().rposition(|s| s.2)?;
    path.truncate(last + 1);
    let hits = path.iter().filter(|s| s.2).count();
    let reached = (path[last].0[0] - start[0]) * d0[0] + (path[last].0[1] - start[1]) * d0[1];
    let long_enough = reached >= beyond_old_end + MIN_RUN_PX * k;
    (long_enough && hits as f64 >= MIN_SUPPORT * path.len() as f64)
        .then(|| (from, path.into_iter().map(|(p, r, _)| (p, r)).collect()))
}

/// The vein's own iodine per pixel of path and radius over its last stretch
/// ([`REFERENCE_REACH_PX`]), px: the medians of the fits that show it, every other point;
/// `None` when under half of them do (the mask's end is no clear vein). The stretch, not
/// the end alone: where a rib's edge or the heart's shadow joined the vein's end in one blob,
/// the mask's last radii and the fits there are the blob's.
fn reference(e: &OrientedEdge, depth: &ImageF32, k: f64) -> Option<(f64, f64)> {
    let stretch = arc_range(e.points.iter().rev().copied(), 0.0, REFERENCE_REACH_PX * k);
    let n = e.points.len();
    let r = median(e.radius_px.iter().rev().take(stretch.end).copied().collect())?.max(MIN_RADIUS_PX * k);
    let (mut densities, mut radii, mut fitted) = (Vec::new(), Vec::new(), 0);
    for back in (0..stretch.end).step_by(2) {
        let j = n - 1 - back;
        let (lo, hi) = (j.saturating_sub(3), (j + 3).min(n - 1));
        let Some(d) = direction(&e.points[lo..=hi], false, f64::INFINITY) else { continue };
        fitted += 1;
        let Some(fit) = fit_step(depth, e.points[j], d, &[0.7 * r, r, 1.4 * r], STEP_WINDOW_PX * k, k) else {
            continue;
        };
        if fit.evidence >= MIN_EVIDENCE && fit.density > 0.0 {
            densities.push(fit.density);
            radii.push(fit.radius_px);
        }
    }
    if densities.is_empty() || 2 * densities.len() < fitted {
        return None;
    }
    Some((median(densities)?, median(radii)?))
}

fn dot<const M: usize>(a: &[f64; M], b: &[f64; M]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Whether `q` lies within `reach` px of the wall of a tree vein other than edge `i`.
fn near_another(edges: &[OrientedEdge], i: usize, q: [f64; 2], reach: f64) -> bool {
    edges.iter().enumerate().filter(|(j, _)| *j != i).any(|(_, o)| {
        o.points.iter().zip(&o.radius_px).any(|(p, r)| {
            let limit = r + reach;
            (p[0] - q[0]).abs() <= limit && (p[1] - q[1]).abs() <= limit && dist(*p, q) <= limit
        })
    })
}

/// Fits the profile of `depth` across direction `d` at `at` with one cylinder of each radius
/// in `radii` (px), its centre within `window` px of `at`, on a planar background; the best
/// fit, or `None` where the profile leaves the image. Samples are half a pixel apart across
/// (a twig is two or three pixels wide) and a pixel apart along, over two and a half radii
/// and `3k` px either side.
fn fit_step(depth: &ImageF32, at: [f64; 2], d: [f64; 2], radii: &[f64], window: f64, k: f64) -> Option<StepFit> {
    let n = [-d[1], d[0]];
    let widest = radii.iter().copied().fold(0.0, f64::max);
    let du = 0.5 * k;
    let half = ((2.5 * widest + 3.0 * k) / du).ceil() as i32;
    let profile: Vec<([f64; 2], f64)> = (-ALONG..=ALONG)
        .flat_map(|t| {
            let t = f64::from(t) * k;
            (-half..=half).map(move |j| {
                let u = f64::from(j) * du;
                bilinear(depth, at[0] + t * d[0] + u * n[0], at[1] + t * d[1] + u * n[1]).map(|y| ([u, t], y))
            })
        })
        .collect::<Option<_>>()?;
    // The background is a plane: a rib's edge or the heart's shadow across the course. Its
    // columns (u, t, 1) are the same in every fit below, so their sums are taken once; each
    // fit adds the cylinder's column, which is nonzero only across its lumen.
    let mut plane = [[0.0; 3]; 3];
    let mut plane_y = [0.0; 3];
    let mut yy = 0.0;
    for &([u, t], y) in &profile {
        let row = [u, t, 1.0];
        for (a, ra) in plane.iter_mut().zip(row) {
            for (cell, rb) in a.iter_mut().zip(row) {
                *cell += ra * rb;
            }
        }
        for (b, ra) in plane_y.iter_mut().zip(row) {
            *b += ra * y;
        }
        yy += y * y;
    }
    let background = yy - dot(&solve(plane, plane_y)?, &plane_y);
    let dof = profile.len() as f64 - 5.0;
    let width = (2 * half + 1) as usize;
    let offsets = (window / (0.25 * k)).round() as i32;
    let mut best: Option<(StepFit, f64)> = None;
    // Nearest the course first, and a fit must beat the best so far by more than rounding:
    // a thin cylinder covers one sample per profile at some offsets, and fits that are the
    // same up to a scale of its column tie.
    for &r in radii {
        for j in (0..=2 * offsets).map(|m| if m % 2 == 0 { m / 2 } else { -(m + 1) / 2 }) {
            let c = f64::from(j) * 0.25 * k;
            // Sums of the cylinder's column against itself, the plane's columns and the data.
            let (mut gg, mut g_row, mut gy) = (0.0, [0.0; 3], 0.0);
            // The samples within the lumen: the profiles are rows of `width` samples, `k`
            // apart across from `-half k`.
            let first = (((c - r) / du).floor() as i32 + 1).max(-half);
            let last = (((c + r) / du).ceil() as i32 - 1).min(half);
            for row in profile.chunks_exact(width) {
                for &([u, t], y) in &row[(first + half) as usize..=(last + half) as usize] {
                    let g = chord(u, c, r);
                    gg += g * g;
                    for (s, v) in g_row.iter_mut().zip([u, t, 1.0]) {
                        *s += g * v;
                    }
                    gy += g * y;
                }
            }
            let mut normal = [[0.0; 4]; 4];
            normal[0][0] = gg;
            for m in 0..3 {
                normal[0][m + 1] = g_row[m];
                normal[m + 1][0] = g_row[m];
                normal[m + 1][1..].copy_from_slice(&plane[m]);
            }
            let rhs = [gy, plane_y[0], plane_y[1], plane_y[2]];
            let Some(x) = solve(normal, rhs) else { continue };
            let sse = (yy - dot(&x, &rhs)).max(0.0);
            if best.is_some_and(|(_, s)| sse >= s * (1.0 - 1e-9)) {
                continue;
            }
            let evidence = (background - sse) / (sse / dof).max(f64::MIN_POSITIVE);
            best = Some((StepFit { offset_px: c, radius_px: r, density: x[0], evidence }, sse));
        }
    }
    best.map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::super::junction::nearest_on_segment;
    use super::super::profile::synthetic::{edge, line, render};
    use super::*;

    fn distance_to(p: [f64; 2], line: &[[f64; 2]]) -> f64 {
        line.windows(2).map(|s| dist(p, nearest_on_segment(p, s[0], s[1]))).fold(f64::INFINITY, f64::min)
    }

    /// A vein of radius 2 px running from (20, 100) to (180, 140) along a gentle bend.
    fn bent_vein() -> Vec<[f64; 2]> {
        vec![[20.0, 100.0], [80.0, 104.0], [130.0, 118.0], [180.0, 140.0]]
    }

    #[test]
    fn a_vein_is_followed_past_where_the_tree_let_go_of_it() {
        let vein = bent_vein();
        let depth = render(200, 200, &[(vein.clone(), 2.0)], |a| a, 0.004);
        // The tree has the vein up to x = 150 (a parent edge and this leaf).
        let mut edges = vec![
            edge(None, vec![1], line([20.0, 100.0], [80.0, 104.0]), 2.0),
            edge(
                Some(0),
                vec![],
                [line([80.0, 104.0], [130.0, 118.0]), line([130.0, 118.0], [150.0, 126.8])].concat(),
                2.0,
            ),
        ];
        assert_eq!(follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false), 1);
        let tip = *edges[1].points.last().expect("points");
        assert!((175.0..=184.0).contains(&tip[0]), "the walk stopped at {tip:?}");
        // On the vein's axis (its rounded end shows a little past its last point).
        for p in edges[1].points.iter().filter(|p| p[0] <= 178.0) {
            assert!(distance_to(*p, &vein) < 1.0, "{p:?} is off the vein");
        }
    }

    #[test]
    fn a_vein_is_followed_across_a_ribs_edge() {
        // A rib's shadow (a band 60 px wide, fainter for its width than the vein) over the
        // vein's end: its edge crosses the course where the tree let go.
        let vein = vec![[20.0, 100.0], [170.0, 100.0]];
        let rib = (vec![[130.0, -50.0], [130.0, 250.0]], 30.0);
        let depth = render(200, 200, &[(vein.clone(), 1.5)], |a| a, 0.004);
        let band = render(200, 200, &[rib], |a| 0.15 * a, 0.0);
        let depth = ImageF32 {
            width: depth.width,
            height: depth.height,
            data: depth.data.iter().zip(&band.data).map(|(a, b)| a + b).collect(),
        };
        let mut edges = vec![edge(None, vec![], line([20.0, 100.0], [100.0, 100.0]), 1.5)];
        assert_eq!(follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false), 1);
        let tip = *edges[0].points.last().expect("points");
        // Across the edge at x = 100, as far as a walk goes.
        assert!((125.0..=172.0).contains(&tip[0]) && (tip[1] - 100.0).abs() < 1.0, "tip {tip:?}");
    }

    #[test]
    fn a_wide_faint_end_and_a_branch_leaving_the_balloon_are_not_followed() {
        // A vein ending where it ends, and a tube as wide as a tributary but with a third of
        // its contrast per pixel of path (the guide catheter) running on past the tree's end.
        let vein = (vec![[20.0, 60.0], [120.0, 60.0]], 2.0);
        let tube = (vec![[20.0, 140.0], [190.0, 140.0]], 4.0);
        let depth = render(200, 200, &[vein], |a| a, 0.004);
        let faint = render(200, 200, &[tube], |a| 0.3 * a, 0.0);
        let depth = ImageF32 {
            width: depth.width,
            height: depth.height,
            data: depth.data.iter().zip(&faint.data).map(|(a, b)| a + b).collect(),
        };
        let tree = || {
            vec![
                edge(None, vec![], line([20.0, 60.0], [110.0, 60.0]), 2.0),
                edge(None, vec![], line([20.0, 140.0], [100.0, 140.0]), 4.0),
            ]
        };
        let mut edges = tree();
        follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false);
        assert!(edges[1].points.last().expect("points")[0] <= 100.0, "the tube was followed");
        assert!(edges[0].points.last().expect("points")[0] > 115.0, "the vein was not");
        // The vein again, now leaving the balloon.
        let mut edges = tree();
        follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|p| p[1] < 100.0 && p[0] < 30.0);
        assert_eq!(edges[0].points, tree()[0].points);
    }

    #[test]
    fn a_vein_that_ends_is_not_drawn_on_into_the_noise() {
        let vein = vec![[20.0, 100.0], [100.0, 100.0]];
        let depth = render(200, 200, &[(vein, 2.0)], |a| a, 0.004);
        let mut edges = vec![edge(None, vec![], line([20.0, 100.0], [90.0, 100.0]), 2.0)];
        follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false);
        let tip = *edges[0].points.last().expect("points");
        assert!((95.0..=103.0).contains(&tip[0]) && (tip[1] - 100.0).abs() < 1.0, "tip {tip:?}");
    }

    #[test]
    fn a_denser_line_on_the_course_is_not_taken_for_the_vein() {
        // The vein ends at x = 100, where a lead (eight times the iodine per pixel) carries on.
        let depth = render(200, 200, &[(vec![[20.0, 100.0], [100.0, 100.0]], 2.0)], |a| a, 0.004);
        let lead = render(200, 200, &[(vec![[100.0, 100.0], [200.0, 100.0]], 1.5)], |a| 8.0 * a, 0.0);
        let depth = ImageF32 {
            width: depth.width,
            height: depth.height,
            data: depth.data.iter().zip(&lead.data).map(|(a, b)| a + b).collect(),
        };
        let mut edges = vec![edge(None, vec![], line([20.0, 100.0], [90.0, 100.0]), 2.0)];
        follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false);
        let tip = *edges[0].points.last().expect("points");
        assert!(tip[0] <= 103.0, "the walk took the lead to {tip:?}");
    }

    #[test]
    fn the_walk_stops_short_of_another_vein_and_is_dropped_where_it_runs_into_a_device() {
        let vein = vec![[20.0, 100.0], [180.0, 100.0]];
        let across = vec![[140.0, 20.0], [140.0, 180.0]];
        let depth = render(200, 200, &[(vein, 2.0), (across.clone(), 3.0)], |a| a, 0.004);
        let leaf = || edge(None, vec![], line([20.0, 100.0], [105.0, 100.0]), 2.0);
        let mut edges = vec![leaf(), edge(None, vec![], line(across[0], across[1]), 3.0)];
        follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false);
        let tip = *edges[0].points.last().expect("points");
        assert!((125.0..=136.0).contains(&tip[0]), "tip {tip:?}");

        let mut edges = vec![leaf()];
        assert_eq!(follow_tips(&mut edges, &depth, 1.0, &|p, _| p[0] > 120.0, &|_| false), 0);
        assert_eq!(edges[0].points, leaf().points);
    }

    #[test]
    fn a_vein_running_out_of_the_image_is_followed_to_its_edge() {
        let depth = render(200, 200, &[(vec![[20.0, 100.0], [260.0, 100.0]], 2.0)], |a| a, 0.004);
        let mut edges = vec![edge(None, vec![], line([20.0, 100.0], [170.0, 100.0]), 2.0)];
        assert_eq!(follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false), 1);
        let tip = *edges[0].points.last().expect("points");
        assert!(tip[0] >= 185.0 && tip[0] <= 199.0, "tip {tip:?}");
    }

    #[test]
    fn an_end_on_no_clear_vein_is_left_alone() {
        let depth = render(200, 200, &[], |a| a, 0.004);
        let mut edges = vec![edge(None, vec![], line([20.0, 100.0], [80.0, 100.0]), 2.0)];
        assert_eq!(follow_tips(&mut edges, &depth, 1.0, &|_, _| false, &|_| false), 0);
        assert_eq!(edges[0].points.len(), 61);
    }
}
