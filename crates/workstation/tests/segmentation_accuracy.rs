//! Accuracy of venogram segmentation against the simulator's ground truth: several synthetic
//! patients, LAO and RAO views, 8 and 12 bits, 512 and 1024 matrices. Prints every figure
//! per case and the means, and fails under the bars of the segmentation issue:
//! mask Dice >= 0.80; centerline precision and recall >= 0.90 within 2 px at 512 (4 px at
//! 1024); bifurcation F1 >= 0.85 within 5 px; label accuracy >= 0.85 on the named veins; no
//! catheter or pacing lead in the tree. Recall is also printed over the visible centerline
//! only (not where a vein runs inside a wider one's projected lumen), as a diagnostic of what
//! no single view can show; the bar is on all of it. Recall and bifurcation F1 are printed
//! again split by what the vessel is: the named veins (the trunk and the tributaries a lead
//! goes into, with their takeoffs) and the unnamed twigs (0.7-1.2 mm across at takeoff,
//! tapering to 0.5 mm), as a diagnostic; the bars are on all veins.
//! `CSNAV_SEGMENT_DEBUG=1` explains the losses (bifurcations, label confusion, missed
//! centerline by vein, vein taken by the removal stages, where each twig is lost);
//! `CSNAV_SEGMENT_DUMP=1` writes images (the frame, its baseline, the overlay, the masks,
//! the truth); `CSNAV_SEGMENT_SEEDS=23,29` runs other patients (both views, 12 bit, 512, or
//! the matrix `CSNAV_SEGMENT_SIZE` gives);
//! `CSNAV_SEGMENT_ONLY=3-RAO30-12-1024` runs only the named cases of the suite;
//! `CSNAV_SEGMENT_FULL_RESOLUTION=1` segments 1024 frames at their own matrix, not binned;
//! `CSNAV_SEGMENT_AVERAGE=1` averages each frame with its contrast plateau for the twig
//! detector (`SegmentParams::average_plateau`).
//!
//! The same cases are also run from the truth's own vessel mask (`SegmentParams::vessel_mask`):
//! the centerline, graph and label stages alone, with a perfect segmentation. Their figures
//! say how much of each loss is the tree stages' and how much the detection's.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use simulator::SyntheticPatient;
use simulator::render::{FrameTruth, RenderSettings, render};
use simulator::view::ViewAngles;
use venogram::VeinLabel;
use venogram::segment::{BranchTree, FrameChoice, Mask, NodeKind, SegmentParams, segment_run};

/// Points of a polyline resampled every `step` pixels.
fn densify(points: &[[f64; 2]], step: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let n = ((b[0] - a[0]).hypot(b[1] - a[1]) / step).ceil().max(1.0) as usize;
        for i in 0..n {
            let t = i as f64 / n as f64;
            out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
        }
    }
    out.extend(points.last());
    out
}

/// Points in one grid cell.
type Cell<T> = Vec<([f64; 2], T)>;

/// Nearest-neighbour lookup on a uniform grid.
struct Grid<T: Copy> {
    cell: f64,
    cells: std::collections::HashMap<(i64, i64), Cell<T>>,
}

impl<T: Copy> Grid<T> {
    fn new(cell: f64, items: impl IntoIterator<Item = ([f64; 2], T)>) -> Self {
        let mut cells: std::collections::HashMap<(i64, i64), Cell<T>> = std::collections::HashMap::new();
        for (p, t) in items {
            cells.entry(((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64)).or_default().push((p, t));
        }
        Self { cell, cells }
    }

    /// The nearest item within `radius` (radius <= cell).
    fn nearest(&self, p: [f64; 2], radius: f64) -> Option<([f64; 2], T, f64)> {
        let (cx, cy) = ((p[0] / self.cell).floor() as i64, (p[1] / self.cell).floor() as i64);
        let mut best: Option<([f64; 2], T, f64)> = None;
        for dx in -1..=1 {
            for dy in -1..=1 {
                for (q, t) in self.cells.get(&(cx + dx, cy + dy)).into_iter().flatten() {
                    let d = (q[0] - p[0]).hypot(q[1] - p[1]);
                    if d <= radius && best.is_none_or(|b| d < b.2) {
                        best = Some((*q, *t, d));
                    }
                }
            }
        }
        best
    }
}

/// Figures of one case.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    dice: f64,
    precision: f64,
    recall: f64,
    visible_recall: f64,
    bifurcation_f1: f64,
    label_accuracy: f64,
    device_px: f64,
    /// Centerline recall on the named veins (the trunk and its tributaries, the lead targets).
    named_recall: f64,
    /// Centerline recall on the unnamed twigs (0.35-0.6 mm radius at takeoff in the simulator),
    /// `NaN` when the frame shows none (left out of the mean).
    twig_recall: f64,
    /// Bifurcation F1 on the named veins' takeoffs; a found junction at a twig's takeoff is
    /// neither right nor wrong there.
    named_bifurcation_f1: f64,
    /// Median over the tree's centerline points of the radius the tree reports over the truth
    /// radius of the vein there (veins of radius 1.5 px or more, where the two agree in
    /// place).
    radius_ratio: f64,
    /// The tree's per-vein measurements against the truth's (see [`measurements`]).
    measured: Measured,
}

/// How the numbers the tree reports per named vein compare with the truth's: medians over
/// the case's named veins.
#[derive(Debug, Default, Clone, Copy)]
struct Measured {
    /// Length of the branches bearing the vein's name over the vein's filled length: the
    /// absolute difference from 1.
    length_error: f64,
    /// Their length-weighted mean diameter over the vein's.
    diameter_ratio: f64,
    /// Mean absolute difference of a tributary's takeoff angle from the truth's in the image,
    /// each axis measured outside the bifurcation's core, degrees (MCV, PLV, LMV, ALV found
    /// with their name leaving within 12 px of the truth's takeoff at 512).
    angle_error_deg: f64,
    /// How many takeoff angles were compared.
    angles: usize,
}

/// Unit direction of a polyline at its start (pointing along it) or at its end (pointing out
/// of its last point) over `reach` px of arc length: the tree's own measure
/// (`takeoff_angle_deg`).
fn direction(points: &[[f64; 2]], at_start: bool, reach: f64) -> Option<[f64; 2]> {
    let seq: Vec<[f64; 2]> = if at_start { points.to_vec() } else { points.iter().rev().copied().collect() };
    let (origin, mut end, mut s) = (*seq.first()?, *seq.get(1)?, 0.0);
    for w in seq.windows(2) {
        s += (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
        end = w[1];
        if s >= reach {
            break;
        }
    }
    let (dx, dy) = (end[0] - origin[0], end[1] - origin[1]);
    let n = dx.hypot(dy);
    (n > 1e-9).then(|| if at_start { [dx / n, dy / n] } else { [-dx / n, -dy / n] })
}

/// The median of `v` (the upper one of an even count), NaN when empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The truth's takeoff angle of `child` off `parent` at its centerline point `index` in the
/// image, degrees, each axis measured outside the bifurcation's core as the tree measures it:
/// from where the vessel is 2 px past the parent's radius from the takeoff; the parent's axis
/// the mean of its course arriving and leaving (arriving alone past 45 degrees between them).
fn truth_takeoff_angle_deg(
    child: &simulator::render::BranchTruth,
    parent: &simulator::render::BranchTruth,
    index: usize,
) -> Option<f64> {
    let mean_r = child.radius_px.iter().sum::<f64>() / child.radius_px.len() as f64;
    let reach = (3.0 * mean_r).max(10.0);
    let at = child.centerline_px[0];
    let clear = parent.radius_px[index] + 2.0;
    let out = |p: &[f64; 2]| (p[0] - at[0]).hypot(p[1] - at[1]) > clear;
    let (upstream, downstream) = (&parent.centerline_px[..=index], &parent.centerline_px[index..]);
    let arriving = upstream.iter().rposition(out).and_then(|i| direction(&upstream[..=i], false, reach));
    let leaving = downstream.iter().position(out).and_then(|i| direction(&downstream[i..], true, reach));
    let axis = match (arriving, leaving) {
        (Some(a), Some(c)) if a[0] * c[0] + a[1] * c[1] >= 0.7 => {
            let n = (a[0] + c[0]).hypot(a[1] + c[1]);
            [(a[0] + c[0]) / n, (a[1] + c[1]) / n]
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    let first = child.centerline_px.iter().position(out).unwrap_or(0).min(child.centerline_px.len().saturating_sub(2));
    direction(&child.centerline_px[first..], true, reach)
        .map(|c| (axis[0] * c[0] + axis[1] * c[1]).clamp(-1.0, 1.0).acos().to_degrees())
}

/// [`Measured`] of a tree against the truth (`k` the matrix factor, 1 at 512).
fn measurements(tree: &BranchTree, truth: &FrameTruth, k: f64) -> Measured {
    let (mut lengths, mut diameters, mut angles) = (Vec::new(), Vec::new(), Vec::new());
    for b in truth.branches.iter().filter(|b| b.label != VeinLabel::Branch) {
        // The filled stretch: length and length-weighted mean diameter, px.
        let (mut len, mut diameter_len) = (0.0, 0.0);
        for i in 0..b.centerline_px.len().saturating_sub(1) {
            if b.opacity[i].min(b.opacity[i + 1]) > 0.5 {
                let (p, q) = (b.centerline_px[i], b.centerline_px[i + 1]);
                let d = (q[0] - p[0]).hypot(q[1] - p[1]);
                len += d;
                diameter_len += d * (b.radius_px[i] + b.radius_px[i + 1]);
            }
        }
        let found: Vec<_> = tree.branches.iter().filter(|f| f.label == b.label).collect();
        let found_len: f64 = found.iter().map(|f| f.length_px).sum();
        if len < 10.0 * k || found_len <= 0.0 {
            continue;
        }
        let found_diameter = found
            .iter()
            .map(|f| f.length_px * 2.0 * f.radius_px.iter().sum::<f64>() / f.radius_px.len().max(1) as f64)
            .sum::<f64>()
            / found_len;
        lengths.push((found_len / len - 1.0).abs());
        diameters.push(found_diameter / (diameter_len / len));
        // The tributaries' takeoff angles, as the tree measures them.
        let tributary = matches!(
            b.label,
            VeinLabel::MiddleCardiacVein
                | VeinLabel::PosterolateralVein
                | VeinLabel::LateralMarginalVein
                | VeinLabel::AnterolateralVein
        );
        let Some(takeoff) = b.takeoff.filter(|_| tributary && b.opacity.iter().take(6).all(|o| *o > 0.5)) else {
            continue;
        };
        let Some(parent) = truth.branches.iter().find(|p| p.id == takeoff.parent.0) else { continue };
        let at = b.centerline_px[0];
        let truth_angle = truth_takeoff_angle_deg(b, parent, takeoff.index);
        let found_angle = found
            .iter()
            .filter(|f| f.parent.is_some())
            .map(|f| ((f.points[0][0] - at[0]).hypot(f.points[0][1] - at[1]), f.takeoff_angle_deg))
            .filter(|(d, _)| *d <= 12.0 * k)
            .min_by(|a, c| a.0.total_cmp(&c.0))
            .and_then(|(_, angle)| angle);
        if let (Some(t), Some(f)) = (truth_angle, found_angle) {
            if std::env::var_os("CSNAV_SEGMENT_DEBUG").is_some() {
                println!(
                    "  takeoff angle {:?} at ({:.0},{:.0}): truth {t:.0}, tree {f:.0} deg (parent r {:.1})",
                    b.label, at[0], at[1], parent.radius_px[takeoff.index]
                );
            }
            angles.push((f - t).abs());
        }
    }
    Measured {
        length_error: median(lengths),
        diameter_ratio: median(diameters),
        angles: angles.len(),
        angle_error_deg: angles.iter().sum::<f64>() / angles.len().max(1) as f64,
    }
}

/// [`Figures::radius_ratio`] of a tree against the truth within `tol` px.
fn radius_ratio(tree: &BranchTree, truth: &FrameTruth, w: f64, h: f64, tol: f64) -> f64 {
    let filled = filled_points(truth, w, h);
    let grid = Grid::new(tol.max(6.0), filled.iter().map(|(p, _, r)| (*p, *r)));
    median(
        tree.branches
            .iter()
            .flat_map(|b| b.points.iter().zip(&b.radius_px))
            .filter_map(|(p, r)| grid.nearest(*p, tol).filter(|(_, truth_r, _)| *truth_r >= 1.5).map(|(_, t, _)| r / t))
            .collect(),
    )
}

/// Truth centerline points where the vessel holds contrast, inside the image, with labels.
fn truth_points(truth: &FrameTruth, w: f64, h: f64) -> Vec<([f64; 2], VeinLabel)> {
    filled_points(truth, w, h).into_iter().map(|(p, b, _)| (p, b.label)).collect()
}

/// Points every half pixel along each filled segment of the truth centerlines, inside the
/// image, with their branch and the segment's mean radius (pixels).
fn filled_points(truth: &FrameTruth, w: f64, h: f64) -> Vec<([f64; 2], &simulator::render::BranchTruth, f64)> {
    let mut out = Vec::new();
    for b in &truth.branches {
        for i in 0..b.centerline_px.len().saturating_sub(1) {
            if b.opacity[i].min(b.opacity[i + 1]) <= 0.5 {
                continue;
            }
            let r = 0.5 * (b.radius_px[i] + b.radius_px[i + 1]);
            for p in densify(&b.centerline_px[i..=i + 1], 0.5) {
                if p[0] >= 0.0 && p[1] >= 0.0 && p[0] <= w - 1.0 && p[1] <= h - 1.0 {
                    out.push((p, b, r));
                }
            }
        }
    }
    out
}

/// Truth centerline points (as [`truth_points`]) that the image shows: not those inside the
/// projected lumen of a wider filled vein, where a vein runs in another's shadow (RAO: the
/// AIV back over the GCV; LAO: a lateral vein along the GCV) and no single-view centerline
/// can be told from the wider vein's.
fn visible_truth_points(truth: &FrameTruth, w: f64, h: f64) -> Vec<[f64; 2]> {
    filled_points(truth, w, h)
        .into_iter()
        .filter(|(p, b, r)| {
            !truth.branches.iter().filter(|o| o.id != b.id).any(|o| {
                let (d, seg, _) = nearest_on_polyline(*p, &o.centerline_px);
                let r_other = o.radius_px[seg];
                r_other > *r && d < r_other && o.opacity[seg] > 0.5
            })
        })
        .map(|(p, _, _)| p)
        .collect()
}

/// Bifurcations visible in the frame: a child leaving a parent that goes on, both filled;
/// each with the child's label.
///
/// A bifurcation is placed where the image shows it. Usually that is the takeoff; but when
/// the child runs inside the parent's projected lumen (the two veins lie along the beam),
/// no junction is visible until the child's axis leaves the parent's shadow, so the truth
/// point moves there, and a child that never leaves it is no visible bifurcation at all.
fn truth_bifurcations(truth: &FrameTruth) -> Vec<([f64; 2], VeinLabel)> {
    let mut out = Vec::new();
    for child in &truth.branches {
        let Some(takeoff) = child.takeoff else { continue };
        let Some(parent) = truth.branches.iter().find(|b| b.id == takeoff.parent.0) else { continue };
        let child_filled = |c: &simulator::render::BranchTruth| c.opacity.iter().take(6).all(|o| *o > 0.5);
        // The parent goes on past the takeoff, or a filled sibling leaves at the same point
        // (a vein that divides at its end).
        let continues = takeoff.index + 1 < parent.centerline_px.len()
            || truth.branches.iter().any(|s| {
                s.id != child.id
                    && s.takeoff.is_some_and(|t| t.parent == takeoff.parent && t.index == takeoff.index)
                    && child_filled(s)
            });
        let filled = parent.opacity.get(takeoff.index).is_some_and(|o| *o > 0.5) && child_filled(child);
        if !(continues && filled) {
            continue;
        }
        // Where the child's axis leaves the parent's lumen, and how far along the child.
        let mut along = 0.0;
        let mut exit = None;
        for (j, p) in child.centerline_px.iter().enumerate() {
            if j > 0 {
                let q = child.centerline_px[j - 1];
                along += (p[0] - q[0]).hypot(p[1] - q[1]);
            }
            let (d, r) = distance_and_radius(*p, &parent.centerline_px, &parent.radius_px);
            if d > r {
                exit = Some((*p, along, r));
                break;
            }
        }
        let Some((exit_xy, along, parent_r)) = exit else { continue };
        // An ordinary takeoff leaves the lumen within about two parent radii.
        let at = if along <= 2.0 * parent_r + 3.0 { child.centerline_px[0] } else { exit_xy };
        // Siblings leaving at one point are one bifurcation.
        if !out.iter().any(|(o, _): &([f64; 2], VeinLabel)| (o[0] - at[0]).hypot(o[1] - at[1]) < 1.0) {
            out.push((at, child.label));
        }
    }
    out
}

/// Distance from `p` to a polyline and the polyline's radius at the nearest point.
fn distance_and_radius(p: [f64; 2], line: &[[f64; 2]], radius: &[f64]) -> (f64, f64) {
    let (d, i, t) = nearest_on_polyline(p, line);
    (d, radius[i] + t * (radius[(i + 1).min(radius.len() - 1)] - radius[i]))
}

fn evaluate(tree: &BranchTree, mask: &[u8], truth: &FrameTruth, w: u32, h: u32, tol: f64) -> Figures {
    let truth_mask = simulator::output::vessel_mask(truth, h, w);
    let inter = mask.iter().zip(&truth_mask).filter(|(a, b)| **a != 0 && **b != 0).count() as f64;
    let total = (mask.iter().filter(|v| **v != 0).count() + truth_mask.iter().filter(|v| **v != 0).count()) as f64;
    let dice = if total > 0.0 { 2.0 * inter / total } else { 0.0 };

    let truth_pts = truth_points(truth, f64::from(w), f64::from(h));
    let found: Vec<([f64; 2], VeinLabel)> =
        tree.branches.iter().flat_map(|b| densify(&b.points, 0.5).into_iter().map(move |p| (p, b.label))).collect();
    let found_grid = Grid::new(tol.max(6.0), found.iter().copied());
    let truth_grid = Grid::new(tol.max(6.0), truth_pts.iter().copied());
    let recall = truth_pts.iter().filter(|(p, _)| found_grid.nearest(*p, tol).is_some()).count() as f64
        / truth_pts.len().max(1) as f64;
    let precision =
        found.iter().filter(|(p, _)| truth_grid.nearest(*p, tol).is_some()).count() as f64 / found.len().max(1) as f64;

    let (mut matched, mut correct) = (0usize, 0usize);
    for (p, label) in &truth_pts {
        if *label == VeinLabel::Branch {
            continue;
        }
        if let Some((_, l, _)) = found_grid.nearest(*p, tol) {
            matched += 1;
            correct += usize::from(l == *label);
        }
    }
    let label_accuracy = correct as f64 / matched.max(1) as f64;
    let visible = visible_truth_points(truth, f64::from(w), f64::from(h));
    let visible_recall =
        visible.iter().filter(|p| found_grid.nearest(**p, tol).is_some()).count() as f64 / visible.len().max(1) as f64;
    if std::env::var_os("CSNAV_SEGMENT_DEBUG").is_some() {
        // Label confusion in truth points: truth label -> found label.
        let mut confusion = std::collections::BTreeMap::<String, usize>::new();
        for (p, label) in &truth_pts {
            if let Some((_, l, _)) = found_grid.nearest(*p, tol)
                && l != *label
                && *label != VeinLabel::Branch
            {
                *confusion.entry(format!("{label:?}->{l:?}")).or_default() += 1;
            }
        }
        println!("  label confusion (truth->found, points): {confusion:?}");
        // Missed truth points by branch label.
        let mut missed = std::collections::BTreeMap::<String, (usize, usize)>::new();
        for (p, label) in &truth_pts {
            let e = missed.entry(format!("{label:?}")).or_default();
            e.1 += 1;
            if found_grid.nearest(*p, tol).is_none() {
                e.0 += 1;
            }
        }
        println!("  missed truth points by label (missed, total): {missed:?}");
    }

    let radius_ratio = radius_ratio(tree, truth, f64::from(w), f64::from(h), tol);
    let measured = measurements(tree, truth, f64::from(w) / 512.0);
    let truth_bif = truth_bifurcations(truth);
    let found_bif: Vec<[f64; 2]> =
        tree.nodes.iter().filter(|n| n.kind == NodeKind::Bifurcation).map(|n| n.xy).collect();
    let bif_tol = 5.0 * f64::from(w) / 512.0;
    let all: Vec<[f64; 2]> = truth_bif.iter().map(|(p, _)| *p).collect();
    let bifurcation_f1 = junction_f1(&all, &[], &found_bif, bif_tol);
    let (named, twigs): (Vec<_>, Vec<_>) = truth_bif.iter().partition(|(_, l)| *l != VeinLabel::Branch);
    let named: Vec<[f64; 2]> = named.iter().map(|(p, _)| *p).collect();
    let twigs: Vec<[f64; 2]> = twigs.iter().map(|(p, _)| *p).collect();
    let named_bifurcation_f1 = junction_f1(&named, &twigs, &found_bif, bif_tol);
    if std::env::var_os("CSNAV_SEGMENT_DEBUG").is_some() {
        explain_bifurcations(tree, truth, &all, &found_bif, f64::from(w) / 512.0, &found_grid, tol);
    }
    let recall_of = |named: bool| {
        let pts: Vec<&[f64; 2]> =
            truth_pts.iter().filter(|(_, l)| (*l != VeinLabel::Branch) == named).map(|(p, _)| p).collect();
        pts.iter().filter(|p| found_grid.nearest(***p, tol).is_some()).count() as f64 / pts.len() as f64
    };
    let (named_recall, twig_recall) = (recall_of(true), recall_of(false));

    // Tree length lying on a catheter or lead and on no vein.
    let device_pts: Vec<([f64; 2], ())> = truth
        .devices
        .iter()
        .filter(|d| d.kind != simulator::render::DeviceKind::Balloon)
        .flat_map(|d| densify(&d.centerline_px, 0.5).into_iter().map(|p| (p, ())))
        .collect();
    let device_grid = Grid::new(6.0, device_pts);
    let device_px = 0.5
        * found
            .iter()
            .filter(|(p, _)| {
                device_grid.nearest(*p, tol).is_some() && truth_grid.nearest(*p, 2.0 * tol + 4.0).is_none()
            })
            .count() as f64;
    if std::env::var_os("CSNAV_SEGMENT_DEBUG").is_some() && device_px > 0.0 {
        explain_devices(tree, &device_grid, &truth_grid, tol);
    }
    Figures {
        dice,
        precision,
        recall,
        visible_recall,
        bifurcation_f1,
        label_accuracy,
        device_px,
        named_recall,
        twig_recall,
        named_bifurcation_f1,
        radius_ratio,
        measured,
    }
}

/// F1 of the found junctions against the truth bifurcations `truth` within `tol` px, each
/// matched once, nearest first; a found junction that matches none of them but lies within
/// `tol` of one of `ignored` counts neither way.
fn junction_f1(truth: &[[f64; 2]], ignored: &[[f64; 2]], found: &[[f64; 2]], tol: f64) -> f64 {
    let d = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
    let mut used = vec![false; found.len()];
    let mut tp = 0usize;
    for t in truth {
        let best = (0..found.len())
            .filter(|i| !used[*i])
            .map(|i| (i, d(found[i], *t)))
            .filter(|(_, dist)| *dist <= tol)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = best {
            used[i] = true;
            tp += 1;
        }
    }
    let counted = (0..found.len()).filter(|i| used[*i] || !ignored.iter().any(|q| d(found[*i], *q) <= tol)).count();
    let (p, r) = (tp as f64 / counted.max(1) as f64, tp as f64 / truth.len().max(1) as f64);
    if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }
}

/// Debug (`CSNAV_SEGMENT_DEBUG`): each tree branch lying on a catheter or lead (and on no
/// vein), its length there and its label.
fn explain_devices(tree: &BranchTree, device_grid: &Grid<()>, truth_grid: &Grid<VeinLabel>, tol: f64) {
    for b in &tree.branches {
        let on = densify(&b.points, 0.5)
            .iter()
            .filter(|p| device_grid.nearest(**p, tol).is_some() && truth_grid.nearest(**p, 2.0 * tol + 4.0).is_none())
            .count();
        if on > 0 {
            let (a, z) = (b.points[0], b.points[b.points.len() - 1]);
            println!(
                "  on a device: branch {} {:?} {:.0} of {:.0} px, ({:.0},{:.0})-({:.0},{:.0})",
                b.id,
                b.label,
                0.5 * on as f64,
                b.length_px,
                a[0],
                a[1],
                z[0],
                z[1]
            );
        }
    }
}

/// Debug: where the nearest found junction lies from a truth bifurcation `t`, along the
/// parent (downstream positive) and along the child's first 8 px, px; and where the image
/// shows the takeoff (the child's axis clear of the parent's lumen, extended back to the
/// parent's centerline), along the parent from `t` and from the found junction.
fn offset_geometry(truth: &FrameTruth, t: [f64; 2], found_bif: &[[f64; 2]]) -> String {
    let Some(f) =
        found_bif.iter().min_by(|a, b| ((a[0] - t[0]).hypot(a[1] - t[1])).total_cmp(&(b[0] - t[0]).hypot(b[1] - t[1])))
    else {
        return String::new();
    };
    let Some(child) = truth.branches.iter().filter(|b| b.takeoff.is_some()).min_by(|a, b| {
        (a.centerline_px[0][0] - t[0])
            .hypot(a.centerline_px[0][1] - t[1])
            .total_cmp(&(b.centerline_px[0][0] - t[0]).hypot(b.centerline_px[0][1] - t[1]))
    }) else {
        return String::new();
    };
    let Some(parent) = child.takeoff.as_ref().and_then(|tk| truth.branches.iter().find(|b| b.id == tk.parent.0)) else {
        return String::new();
    };
    let unit = |a: [f64; 2], b: [f64; 2]| {
        let n = (b[0] - a[0]).hypot(b[1] - a[1]).max(1e-9);
        [(b[0] - a[0]) / n, (b[1] - a[1]) / n]
    };
    let (pi, _) = parent.centerline_px.iter().enumerate().fold((0, f64::INFINITY), |acc, (i, p)| {
        let d = (p[0] - t[0]).hypot(p[1] - t[1]);
        if d < acc.1 { (i, d) } else { acc }
    });
    let n = parent.centerline_px.len();
    let along_parent = unit(parent.centerline_px[pi.saturating_sub(3)], parent.centerline_px[(pi + 3).min(n - 1)]);
    let c_end = child
        .centerline_px
        .iter()
        .find(|p| (p[0] - t[0]).hypot(p[1] - t[1]) > 8.0)
        .copied()
        .unwrap_or(child.centerline_px[child.centerline_px.len() - 1]);
    let along_child = unit(t, c_end);
    let v = [f[0] - t[0], f[1] - t[1]];
    let r = parent.radius_px[pi];
    let cos = along_parent[0] * along_child[0] + along_parent[1] * along_child[1];
    // The takeoff the image shows: the child's axis where it is clear of the parent's lumen,
    // extended back to the parent's centerline.
    let mut image_takeoff = String::new();
    let clear: Vec<[f64; 2]> = child
        .centerline_px
        .iter()
        .skip_while(|p| distance_and_radius(**p, &parent.centerline_px, &parent.radius_px).0 < r + 1.5)
        .scan(None::<[f64; 2]>, |first, p| {
            let f = *first.get_or_insert(*p);
            ((p[0] - f[0]).hypot(p[1] - f[1]) <= 8.0).then_some(*p)
        })
        .collect();
    if clear.len() >= 3 {
        let (a, b) = (clear[0], clear[clear.len() - 1]);
        let d = unit(b, a);
        // Walk back from a along d until the parent's axis is reached (nearest approach).
        let mut best = (f64::INFINITY, a);
        for s in 0..120 {
            let q = [a[0] + d[0] * f64::from(s) * 0.25, a[1] + d[1] * f64::from(s) * 0.25];
            let (dd, _, _) = nearest_on_polyline(q, &parent.centerline_px);
            if dd < best.0 {
                best = (dd, q);
            }
        }
        if best.0 < 1.5 {
            let q = best.1;
            let v2 = [q[0] - t[0], q[1] - t[1]];
            image_takeoff = format!(
                "; image takeoff along parent {:+.1}, found from it {:.1}",
                v2[0] * along_parent[0] + v2[1] * along_parent[1],
                (f[0] - q[0]).hypot(f[1] - q[1])
            );
        }
    }
    format!(
        "  parent r {r:.1} child r {:.1} angle {:.0}: found along parent {:+.1} along child {:+.1} (px){image_takeoff}",
        child.radius_px[0],
        cos.clamp(-1.0, 1.0).acos().to_degrees(),
        v[0] * along_parent[0] + v[1] * along_parent[1],
        v[0] * along_child[0] + v[1] * along_child[1],
    )
}

/// Debug (`CSNAV_SEGMENT_DEBUG`): why each bifurcation is unmatched: a found junction 5-12
/// px off, a child that was not segmented, a child segmented but joined elsewhere (or
/// running along its parent); found junctions inside one vein (spurs), where veins overlap
/// in projection (crossings), or off every vein.
fn explain_bifurcations(
    tree: &BranchTree,
    truth: &FrameTruth,
    truth_bif: &[[f64; 2]],
    found_bif: &[[f64; 2]],
    k: f64,
    found_grid: &Grid<VeinLabel>,
    tol: f64,
) {
    let near = |a: [f64; 2], set: &[[f64; 2]]| {
        set.iter().map(|b| (a[0] - b[0]).hypot(a[1] - b[1])).fold(f64::INFINITY, f64::min)
    };
    let mut fn_counts = std::collections::BTreeMap::<&str, usize>::new();
    for t in truth_bif {
        let d = near(*t, found_bif);
        let what = if d <= 5.0 * k {
            "matched"
        } else if d <= 12.0 * k {
            "FN offset 5-12"
        } else {
            // Is the child (the branch starting nearest this point) segmented a little past it?
            let child = truth.branches.iter().filter(|b| b.takeoff.is_some()).min_by(|a, b| {
                // The parent passes through a takeoff too: prefer the branch starting there.
                let key = |c: &simulator::render::BranchTruth| {
                    near(*t, &c.centerline_px) + 0.01 * near(*t, &c.centerline_px[..1])
                };
                key(a).total_cmp(&key(b))
            });
            let seen = child.is_some_and(|c| {
                let beyond: Vec<_> = c
                    .centerline_px
                    .iter()
                    .filter(|p| {
                        let e = (p[0] - t[0]).hypot(p[1] - t[1]);
                        e > 6.0 * k && e < 16.0 * k
                    })
                    .collect();
                !beyond.is_empty()
                    && beyond.iter().filter(|p| found_grid.nearest(***p, tol).is_some()).count() * 2 > beyond.len()
            });
            if seen { "FN child seen, no junction near" } else { "FN child not segmented" }
        };
        *fn_counts.entry(what).or_default() += 1;
        println!("    {what} at ({:.0},{:.0}) d {d:.1}{}", t[0], t[1], offset_geometry(truth, *t, found_bif));
    }
    for f in found_bif {
        let d = near(*f, truth_bif);
        let what = if d <= 5.0 * k {
            continue;
        } else if d <= 12.0 * k {
            "FP offset 5-12"
        } else {
            let on: Vec<u32> = truth
                .branches
                .iter()
                .filter(|b| b.opacity.iter().any(|o| *o > 0.5))
                .filter(|b| {
                    let (dd, r) = distance_and_radius(*f, &b.centerline_px, &b.radius_px);
                    dd <= r + 2.0 * k
                })
                .map(|b| b.id)
                .collect();
            match on.len() {
                0 => "FP off every vein",
                1 => "FP inside one vein",
                _ => "FP where veins overlap",
            }
        };
        *fn_counts.entry(what).or_default() += 1;
        // The nearest takeoff of any truth branch (a counted bifurcation or not) and the
        // nearest end of one, px.
        let nearest = |points: &mut dyn Iterator<Item = [f64; 2]>| {
            points.map(|p| (p[0] - f[0]).hypot(p[1] - f[1])).fold(f64::INFINITY, f64::min)
        };
        let takeoff = nearest(&mut truth.branches.iter().filter(|b| b.takeoff.is_some()).map(|b| b.centerline_px[0]));
        let end = nearest(&mut truth.branches.iter().filter_map(|b| b.centerline_px.last().copied()));
        // The filled veins whose lumen holds it, and how far along each (0 = its start).
        let veins: Vec<String> = truth
            .branches
            .iter()
            .filter(|b| b.opacity.iter().any(|o| *o > 0.5))
            .filter_map(|b| {
                let (dd, r) = distance_and_radius(*f, &b.centerline_px, &b.radius_px);
                let (_, seg, _) = nearest_on_polyline(*f, &b.centerline_px);
                (dd <= r + 2.0 * k).then(|| {
                    format!("{}:{:?}@{:.0}%", b.id, b.label, 100.0 * seg as f64 / b.centerline_px.len() as f64)
                })
            })
            .collect();
        // The tree's branches meeting at the junction: label and length, px.
        let node = tree.nodes.iter().find(|n| (n.xy[0] - f[0]).hypot(n.xy[1] - f[1]) < 1e-9).map(|n| n.id);
        let branches: Vec<String> = tree
            .branches
            .iter()
            .filter(|b| Some(b.from) == node || Some(b.to) == node)
            .map(|b| format!("{:?}{}{:.0}", b.label, if Some(b.from) == node { "+" } else { "-" }, b.length_px))
            .collect();
        println!(
            "    {what} at ({:.0},{:.0}): nearest takeoff {takeoff:.1}, branch end {end:.1}; in {}; tree {}",
            f[0],
            f[1],
            veins.join(" "),
            branches.join(" ")
        );
    }
    println!("  bifurcations: {fn_counts:?}");
}

struct Case {
    seed: u64,
    view: &'static str,
    bits: u16,
    size: u32,
}

/// The case's synthetic run and its pixel spacing at the isocentre, mm.
fn render_case(c: &Case) -> (simulator::render::RenderedRun, f64) {
    let patient = SyntheticPatient::generate(c.seed);
    let view: ViewAngles = c.view.parse().expect("view");
    let settings = RenderSettings::typical(view, c.size, c.bits, 14);
    let run = render(&patient, &settings).expect("render");
    let spacing = settings.pixel_spacing_mm() / run.projection.magnification_at_isocenter();
    (run, spacing)
}

/// The settings a case is segmented with: the run's spacing and projection, binned to the
/// working matrix unless `full_resolution`.
fn case_params(run: &simulator::render::RenderedRun, spacing: f64, full_resolution: bool) -> SegmentParams {
    SegmentParams {
        pixel_spacing_mm: Some(spacing),
        projection: Some(run.projection.clone()),
        full_resolution,
        average_plateau: std::env::var_os("CSNAV_SEGMENT_AVERAGE").is_some(),
        ..SegmentParams::default()
    }
}

/// Debug: the run's frames with their contrast energy (relative to the segmented frame's) and
/// the heart's contraction (0 in diastasis), to see which frames could be averaged.
fn print_frames(c: &Case, truth: &[FrameTruth], seg: &venogram::segment::Segmentation) {
    let motion = &SyntheticPatient::generate(c.seed).motion;
    let Some(sel) = &seg.selection else { return };
    for (k, t) in truth.iter().enumerate() {
        println!(
            "  frame {k:>2} t {:>4.0} ms contraction {:.2} energy {:.3}{}",
            t.time_ms,
            motion.contraction(t.time_ms),
            sel.energy[k] / sel.energy[seg.frame as usize],
            if k as u32 == seg.frame { "  <- segmented" } else { "" }
        );
    }
}

/// Which stages a case is run through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stages {
    /// The whole pipeline, from the cine.
    Whole,
    /// The centerline, graph and label stages on the truth's vessel mask of the frame the
    /// pipeline picks.
    FromTruthMask,
}

fn run_case(c: &Case, stages: Stages) -> Figures {
    let (run, spacing) = render_case(c);
    let params = case_params(&run, spacing, std::env::var_os("CSNAV_SEGMENT_FULL_RESOLUTION").is_some());
    let seg = match stages {
        Stages::Whole => segment_run(&run.cine, FrameChoice::Auto, &params).expect("segment"),
        Stages::FromTruthMask => {
            // The frame the pipeline picks, segmented from its truth's mask.
            let frame = venogram::segment::select_frame(&run.cine).expect("select a frame").frame;
            let size = c.size as usize;
            let data = simulator::output::vessel_mask(&run.truth[frame as usize], c.size, c.size);
            let mask = Mask { width: size, height: size, data };
            let params = SegmentParams { vessel_mask: Some(std::sync::Arc::new(mask)), ..params };
            segment_run(&run.cine, FrameChoice::Index(frame), &params).expect("segment the truth mask")
        }
    };
    let truth = &run.truth[seg.frame as usize];
    if std::env::var_os("CSNAV_SEGMENT_DUMP").is_some() {
        let dir = std::path::Path::new("/tmp/csnav-seg").join(format!("{}-{}-{}-{}", c.seed, c.view, c.bits, c.size));
        std::fs::create_dir_all(&dir).unwrap();
        let frame = run.cine.frame(seg.frame).unwrap();
        let o = venogram::segment::overlay::draw_overlay(&frame, &seg.tree, &seg.removed).unwrap();
        let plain = venogram::segment::overlay::draw_overlay(&frame, &BranchTree::default(), &[]).unwrap();
        write_png(&dir.join("frame.png"), &plain.data, c.size, png::ColorType::Rgb);
        if let Some(sel) = &seg.selection
            && let Some(b) = run.cine.frame(sel.baseline_frame)
        {
            let o = venogram::segment::overlay::draw_overlay(&b, &BranchTree::default(), &[]).unwrap();
            write_png(&dir.join("baseline.png"), &o.data, c.size, png::ColorType::Rgb);
        }
        write_png(&dir.join("overlay.png"), &o.data, c.size, png::ColorType::Rgb);
        write_png(&dir.join("mask.png"), &seg.mask.data, c.size, png::ColorType::Grayscale);
        write_png(&dir.join("candidates.png"), &seg.native_candidate_mask().data, c.size, png::ColorType::Grayscale);
        let truth_mask = simulator::output::vessel_mask(truth, c.size, c.size);
        write_png(&dir.join("truth.png"), &truth_mask, c.size, png::ColorType::Grayscale);
        // The thin-line response in noise levels above its floor (10 levels = 250).
        let lines =
            venogram::segment::line::line_response(&seg.native_enhanced().unwrap().tophat, f64::from(c.size) / 512.0)
                .unwrap();
        let size = c.size as usize;
        let img: Vec<u8> = (0..size * size)
            .map(|i| ((lines.at(i % size, i / size) - lines.median) / lines.noise * 25.0).clamp(0.0, 255.0) as u8)
            .collect();
        write_png(&dir.join("line.png"), &img, c.size, png::ColorType::Grayscale);
        let t = venogram::segment::overlay::draw_overlay(&frame, &truth_tree(truth), &[]).unwrap();
        write_png(&dir.join("truth_overlay.png"), &t.data, c.size, png::ColorType::Rgb);
    }
    if std::env::var_os("CSNAV_SEGMENT_DEBUG").is_some() {
        print_frames(c, &run.truth, &seg);
        // The truth of the frame: each branch and device with its ends, to read the
        // explanations below against.
        let ends = |p: &[[f64; 2]]| {
            let (a, b) = (p[0], p[p.len() - 1]);
            format!("({:.0},{:.0})-({:.0},{:.0})", a[0], a[1], b[0], b[1])
        };
        for b in &truth.branches {
            let filled = b.opacity.iter().filter(|o| **o > 0.5).count();
            let r = b.radius_px.iter().sum::<f64>() / b.radius_px.len().max(1) as f64;
            let parent = b.takeoff.map(|t| (t.parent.0, t.index));
            println!(
                "  truth branch {:>2} {:?} parent {parent:?} filled {filled}/{} r {r:.1} px {}",
                b.id,
                b.label,
                b.centerline_px.len(),
                ends(&b.centerline_px)
            );
        }
        for d in &truth.devices {
            println!("  truth device {:?} r {:.1} px {}", d.kind, d.radius_px, ends(&d.centerline_px));
        }
        let truth_balloon = truth.devices.iter().find(|d| d.kind == simulator::render::DeviceKind::Balloon);
        println!(
            "  balloon found {:?} truth {:?}",
            seg.balloon.map(|b| (b.center_xy, b.radius_px, b.strength)),
            truth_balloon.map(|d| (&d.centerline_px, &d.radius_px))
        );
    }
    let tol = 2.0 * f64::from(c.size) / 512.0;
    if std::env::var_os("CSNAV_SEGMENT_DEBUG").is_some() {
        explain_losses(&seg, truth, c.size, tol);
    }
    let mut f = evaluate(&seg.tree, &seg.mask.data, truth, c.size, c.size, tol);
    f.device_px *= 512.0 / f64::from(c.size);
    println!(
        "{}seed {:>3} {:<6} {:>2} bit {:>4}px frame {:>2} (truth peak {:>2}): {}  [{} branches, {:.0} ms]",
        if stages == Stages::FromTruthMask { "truth mask: " } else { "" },
        c.seed,
        c.view,
        c.bits,
        c.size,
        seg.frame,
        run.peak_frame,
        f.summary("device"),
        seg.tree.branches.len(),
        seg.timings.total_ms
    );
    f
}

impl Figures {
    /// The figures on one line; `device` names the device figure (a case's, or the worst).
    fn summary(&self, device: &str) -> String {
        format!(
            "Dice {:.3}  CL P {:.3} R {:.3} (visible {:.3})  bif F1 {:.3}  labels {:.3}  {device} {:.0} px  | named R {:.3} bif F1 {:.3}, twigs R {:.3}, radius {:.2} | per vein: length off {:.2}, diameter {:.2}, takeoff angle off {:.0} deg ({})",
            self.dice,
            self.precision,
            self.recall,
            self.visible_recall,
            self.bifurcation_f1,
            self.label_accuracy,
            self.device_px,
            self.named_recall,
            self.named_bifurcation_f1,
            self.twig_recall,
            self.radius_ratio,
            self.measured.length_error,
            self.measured.diameter_ratio,
            self.measured.angle_error_deg,
            self.measured.angles,
        )
    }
}

/// Debug (`CSNAV_SEGMENT_DEBUG`): vein removed by the removal stages, and where each twig is
/// lost (candidate mask, final mask, tree).
fn explain_losses(seg: &venogram::segment::Segmentation, truth: &FrameTruth, size_px: u32, tol: f64) {
    // What the removal stages took that lies on a vein.
    let truth_pts = truth_points(truth, f64::from(size_px), f64::from(size_px));
    let grid = Grid::new(tol.max(6.0), truth_pts.iter().copied());
    for r in &seg.removed {
        let on: Vec<VeinLabel> = r.points.iter().filter_map(|p| grid.nearest(*p, tol).map(|(_, l, _)| l)).collect();
        if on.len() * 2 > r.points.len() {
            println!(
                "  removed on a vein: {:?} {} px of {} from ({:.0},{:.0}) {:?}",
                r.kind,
                on.len(),
                r.points.len(),
                r.points[0][0],
                r.points[0][1],
                on[on.len() / 2]
            );
        }
    }
    let tree_pts: Vec<([f64; 2], ())> =
        seg.tree.branches.iter().flat_map(|b| densify(&b.points, 0.5).into_iter().map(|p| (p, ()))).collect();
    let tree_grid = Grid::new(tol.max(6.0), tree_pts);
    // Runs of missed centerline on the named veins: where along the vein, how wide, and
    // whether they reach its distal end.
    let filled = filled_points(truth, f64::from(size_px), f64::from(size_px));
    for b in truth.branches.iter().filter(|b| b.label != VeinLabel::Branch) {
        // Every half pixel along the vein (runs are printed in pixels).
        let pts: Vec<([f64; 2], f64)> =
            filled.iter().filter(|(_, o, _)| o.id == b.id).map(|(p, _, r)| (*p, *r)).collect();
        let missed: Vec<bool> = pts.iter().map(|(p, _)| tree_grid.nearest(*p, tol).is_none()).collect();
        let mut i = 0;
        while i < missed.len() {
            if !missed[i] {
                i += 1;
                continue;
            }
            let j = (i..missed.len()).find(|j| !missed[*j]).unwrap_or(missed.len());
            if j - i >= 8 {
                let r = pts[i..j].iter().map(|(_, r)| r).sum::<f64>() / (j - i) as f64;
                let others = |p: [f64; 2]| {
                    truth.branches.iter().filter(|o| o.id != b.id).any(|o| {
                        let (d, seg, _) = nearest_on_polyline(p, &o.centerline_px);
                        d < o.radius_px[seg] + 2.0 && o.opacity[seg] > 0.5
                    })
                };
                let overlap = pts[i..j].iter().filter(|(p, _)| others(*p)).count() as f64 / (j - i) as f64;
                let balloon = seg.balloon.as_ref().map_or(0.0, |bl| {
                    pts[i..j]
                        .iter()
                        .filter(|(p, _)| (p[0] - bl.center_xy[0]).hypot(p[1] - bl.center_xy[1]) < bl.radius_px + 10.0)
                        .count() as f64
                        / (j - i) as f64
                });
                println!(
                    "  named miss {:?} {} px at {:.0}-{:.0}% ({:.0},{:.0}) r {r:.1}{} overlap {overlap:.2} balloon {balloon:.2}",
                    b.label,
                    (j - i) / 2,
                    100.0 * i as f64 / pts.len() as f64,
                    100.0 * j as f64 / pts.len() as f64,
                    pts[i].0[0],
                    pts[i].0[1],
                    if j == missed.len() { " distal end" } else { "" },
                );
            }
            i = j;
        }
    }
    explain_twigs(seg, truth, size_px, &tree_grid, tol);
}

/// Debug: where each twig is lost (candidate mask, final mask, tree), and how deep the line
/// response is where the candidates miss it.
fn explain_twigs(
    seg: &venogram::segment::Segmentation,
    truth: &FrameTruth,
    size_px: u32,
    tree_grid: &Grid<()>,
    tol: f64,
) {
    let size = size_px as usize;
    let near = |m: &[u8], p: [f64; 2]| {
        let (x, y) = (p[0].round() as i64, p[1].round() as i64);
        (-1..=1).any(|dy| {
            (-1..=1).any(|dx| {
                let (u, v) = (x + dx, y + dy);
                u >= 0 && v >= 0 && (u as usize) < size && (v as usize) < size && m[v as usize * size + u as usize] != 0
            })
        })
    };
    let candidates = seg.native_candidate_mask();
    // The thin-line response in noise levels above its floor, the largest within a pixel.
    let lines = venogram::segment::line::line_response(
        &seg.native_enhanced().expect("enhanced").tophat,
        f64::from(size_px) / 512.0,
    )
    .expect("line response");
    let sigmas = |p: [f64; 2]| {
        let (x, y) = (p[0].round() as i64, p[1].round() as i64);
        (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (x + dx, y + dy)))
            .filter(|(u, v)| *u >= 0 && *v >= 0 && (*u as usize) < size && (*v as usize) < size)
            .map(|(u, v)| (lines.at(u as usize, v as usize) - lines.median) / lines.noise)
            .fold(f32::MIN, f32::max)
    };
    for b in truth.branches.iter().filter(|b| b.label == VeinLabel::Branch && b.opacity.iter().all(|o| *o > 0.5)) {
        let pts = densify(&b.centerline_px, 1.0);
        let n = pts.len() as f64;
        let cand = pts.iter().filter(|p| near(&candidates.data, **p)).count() as f64 / n;
        let mask = pts.iter().filter(|p| near(&seg.mask.data, **p)).count() as f64 / n;
        let tree = pts.iter().filter(|p| tree_grid.nearest(**p, tol).is_some()).count() as f64 / n;
        let r = b.radius_px.iter().sum::<f64>() / b.radius_px.len() as f64;
        // Where a twig found in the candidates first goes missing from the final mask.
        let lost = pts.iter().find(|p| near(&candidates.data, **p) && !near(&seg.mask.data, **p));
        // How deep the line response is where the candidates miss the twig (median, sigma).
        let mut missed: Vec<f32> = pts.iter().filter(|p| !near(&candidates.data, **p)).map(|p| sigmas(*p)).collect();
        missed.sort_by(f32::total_cmp);
        println!(
            "  twig {:>2} r {r:.1} len {:>3.0}: candidates {cand:.2} mask {mask:.2} tree {tree:.2}{}{}",
            b.id,
            n,
            missed.get(missed.len() / 2).map_or(String::new(), |m| format!(" (line where missed {m:.1} sigma)")),
            lost.map_or(String::new(), |p| format!(" (first lost candidate at {:.0},{:.0})", p[0], p[1]))
        );
    }
}

/// The truth's filled branches as a tree, to draw with the same palette.
fn truth_tree(truth: &FrameTruth) -> BranchTree {
    let branches = truth
        .branches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let points: Vec<[f64; 2]> =
                b.centerline_px.iter().zip(&b.opacity).filter(|(_, o)| **o > 0.5).map(|(p, _)| *p).collect();
            venogram::segment::TreeBranch {
                id: i as u32,
                parent: None,
                label: b.label,
                from: 0,
                to: 0,
                radius_px: vec![1.0; points.len()],
                points,
                length_px: 0.0,
                length_mm: None,
                mean_diameter_mm: None,
                min_diameter_mm: None,
                tortuosity: 1.0,
                takeoff_angle_deg: None,
            }
        })
        .collect();
    BranchTree { nodes: Vec::new(), branches, empty_reason: None }
}

fn write_png(path: &std::path::Path, data: &[u8], size: u32, colour: png::ColorType) {
    let file = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(file), size, size);
    e.set_color(colour);
    e.set_depth(png::BitDepth::Eight);
    e.write_header().unwrap().write_image_data(data).unwrap();
}

/// The cases: a fixed suite, or (`CSNAV_SEGMENT_SEEDS=23,29,...`) those seeds in both views
/// at 12 bits and 512 (or `CSNAV_SEGMENT_SIZE`), to check figures on patients the pipeline was not tuned on.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    if let Ok(seeds) = std::env::var("CSNAV_SEGMENT_SEEDS")
        && !seeds.trim().is_empty()
    {
        // `CSNAV_SEGMENT_SIZE=1024`: those seeds at another matrix.
        let size = std::env::var("CSNAV_SEGMENT_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(512);
        for seed in seeds.split(',').filter_map(|s| s.trim().parse::<u64>().ok()) {
            for view in ["LAO30", "RAO30"] {
                cases.push(Case { seed, view, bits: 12, size });
            }
        }
        return cases;
    }
    for seed in [3, 7, 11, 19] {
        for view in ["LAO30", "RAO30"] {
            cases.push(Case { seed, view, bits: 12, size: 512 });
        }
    }
    for seed in [5, 7] {
        for view in ["LAO30", "RAO30"] {
            cases.push(Case { seed, view, bits: 8, size: 512 });
        }
    }
    for (seed, bits) in [(3, 12), (11, 8)] {
        for view in ["LAO30", "RAO30"] {
            cases.push(Case { seed, view, bits, size: 1024 });
        }
    }
    // `CSNAV_SEGMENT_ONLY=3-RAO30-12-1024,...`: only these cases (seed-view-bits-size).
    if let Ok(only) = std::env::var("CSNAV_SEGMENT_ONLY")
        && !only.trim().is_empty()
    {
        let names: Vec<&str> = only.split(',').map(str::trim).collect();
        cases.retain(|c| names.contains(&format!("{}-{}-{}-{}", c.seed, c.view, c.bits, c.size).as_str()));
    }
    cases
}

/// Runs every case and returns the means (device: the worst case).
fn mean_figures(stages: Stages) -> Figures {
    let figures: Vec<Figures> = cases().iter().map(|c| run_case(c, stages)).collect();
    let n = figures.len() as f64;
    let mean = |f: fn(&Figures) -> f64| figures.iter().map(f).sum::<f64>() / n;
    let m = Figures {
        dice: mean(|f| f.dice),
        precision: mean(|f| f.precision),
        recall: mean(|f| f.recall),
        visible_recall: mean(|f| f.visible_recall),
        bifurcation_f1: mean(|f| f.bifurcation_f1),
        label_accuracy: mean(|f| f.label_accuracy),
        device_px: figures.iter().map(|f| f.device_px).fold(0.0, f64::max),
        named_recall: mean(|f| f.named_recall),
        twig_recall: {
            let shown: Vec<f64> = figures.iter().map(|f| f.twig_recall).filter(|r| !r.is_nan()).collect();
            shown.iter().sum::<f64>() / shown.len() as f64
        },
        named_bifurcation_f1: mean(|f| f.named_bifurcation_f1),
        radius_ratio: mean(|f| f.radius_ratio),
        measured: Measured {
            length_error: mean(|f| f.measured.length_error),
            diameter_ratio: mean(|f| f.measured.diameter_ratio),
            // Over every angle compared, not per case.
            angle_error_deg: figures.iter().map(|f| f.measured.angle_error_deg * f.measured.angles as f64).sum::<f64>()
                / figures.iter().map(|f| f.measured.angles).sum::<usize>().max(1) as f64,
            angles: figures.iter().map(|f| f.measured.angles).sum(),
        },
    };
    println!(
        "{}mean over {} cases: {}",
        if stages == Stages::FromTruthMask { "truth mask: " } else { "" },
        figures.len(),
        m.summary("device (worst)")
    );
    m
}

/// The bars of the issue. Not met yet on every figure (see issue 4's note): run with
/// `cargo test -p workstation --test segmentation_accuracy -- --ignored --nocapture`.
#[test]
#[ignore = "issue 4 open: bifurcation F1 is below the bar"]
fn segmentation_meets_the_accuracy_bars_on_synthetic_venograms() {
    let m = mean_figures(Stages::Whole);
    assert!(m.dice >= 0.80, "mean Dice {:.3} < 0.80", m.dice);
    assert!(m.precision >= 0.90, "mean centerline precision {:.3} < 0.90", m.precision);
    assert!(m.recall >= 0.90, "mean centerline recall {:.3} < 0.90", m.recall);
    assert!(m.bifurcation_f1 >= 0.85, "mean bifurcation F1 {:.3} < 0.85", m.bifurcation_f1);
    assert!(m.label_accuracy >= 0.85, "mean label accuracy {:.3} < 0.85", m.label_accuracy);
    assert!(m.device_px <= 10.0, "a catheter or lead is in a tree over {:.0} px", m.device_px);
}

/// What the pipeline achieves today, so it cannot regress while the rest is built: the
/// Dice, precision and lead-removal bars of the issue, floors a little under today's other
/// figures (recall 0.902, bifurcation F1 0.578, labels 0.882, recall on the named veins
/// 0.951), the reported radii within 10% of the truth's (median 0.96 of it; the mask's
/// own radii read 0.81), and the per-vein measurements ([`assert_measurements_hold`]; the
/// takeoff angles 8 degrees off on average, within 12).
#[test]
fn segmentation_holds_its_current_accuracy() {
    let m = mean_figures(Stages::Whole);
    assert!(m.dice >= 0.80, "mean Dice {:.3} < 0.80", m.dice);
    assert!(m.precision >= 0.90, "mean centerline precision {:.3} < 0.90", m.precision);
    assert!(m.recall >= 0.89, "mean centerline recall {:.3} fell under 0.89", m.recall);
    assert!(m.bifurcation_f1 >= 0.55, "mean bifurcation F1 {:.3} fell under 0.55", m.bifurcation_f1);
    assert!(m.label_accuracy >= 0.87, "mean label accuracy {:.3} fell under 0.87", m.label_accuracy);
    assert!(m.device_px <= 10.0, "a catheter or lead runs {:.0} px in a tree", m.device_px);
    assert!(m.named_recall >= 0.94, "mean centerline recall on the named veins {:.3} fell under 0.94", m.named_recall);
    assert!((0.9..=1.1).contains(&m.radius_ratio), "radii read {:.3} of the truth's", m.radius_ratio);
    assert_measurements_hold(&m, 12.0);
}

/// The centerline, graph and label stages on the truth's own vessel mask: what they give
/// with a perfect segmentation, held so that they cannot regress apart from the detection
/// (floors a little under today's figures: precision 0.982, recall 0.943, bifurcation F1
/// 0.664, labels 0.836; takeoff angles 5 degrees off on average, within 10). With every vein
/// in the mask the bifurcation F1 stays far under the bar (0.85): the rest of that gap is in
/// these stages, not in the detection.
#[test]
fn tree_stages_on_the_truth_mask_hold_their_accuracy() {
    let m = mean_figures(Stages::FromTruthMask);
    assert!(m.precision >= 0.97, "mean centerline precision {:.3} fell under 0.97", m.precision);
    assert!(m.recall >= 0.93, "mean centerline recall {:.3} fell under 0.93", m.recall);
    assert!(m.bifurcation_f1 >= 0.65, "mean bifurcation F1 {:.3} fell under 0.65", m.bifurcation_f1);
    assert!(m.label_accuracy >= 0.82, "mean label accuracy {:.3} fell under 0.82", m.label_accuracy);
    assert!((0.9..=1.1).contains(&m.radius_ratio), "radii read {:.3} of the truth's", m.radius_ratio);
    assert_measurements_hold(&m, 10.0);
}

/// The per-vein numbers an implanter weighs hold: each named vein's mean diameter within 10%
/// of the truth's (median 0.98 on the suite), its length within 25% (0.20; the label
/// boundaries move it), the tributaries' takeoff angles within `max_angle_error_deg` on average.
fn assert_measurements_hold(m: &Figures, max_angle_error_deg: f64) {
    let d = m.measured;
    assert!((0.9..=1.1).contains(&d.diameter_ratio), "per-vein diameters read {:.3} of the truth's", d.diameter_ratio);
    assert!(d.length_error <= 0.25, "per-vein lengths off by {:.3}", d.length_error);
    assert!(
        d.angles >= 20 && d.angle_error_deg <= max_angle_error_deg,
        "takeoff angles off by {:.1} degrees on average over {}",
        d.angle_error_deg,
        d.angles
    );
}

/// Averaging the contrast plateau for the twig detector (`SegmentParams::average_plateau`)
/// finds more of the twigs and lets no device in: on a case where, without the near-balloon
/// floor, a piece of the guide catheter came in (seed 7 LAO, 37 px) and on two where the
/// average brings out most beyond what following the lines in one frame finds (seed 11 RAO at
/// 12 bits, seed 5 RAO at 8).
#[test]
fn averaging_the_plateau_finds_more_twigs_and_lets_no_device_in() {
    let cases = [
        Case { seed: 7, view: "LAO30", bits: 12, size: 512 },
        Case { seed: 11, view: "RAO30", bits: 12, size: 512 },
        Case { seed: 5, view: "RAO30", bits: 8, size: 512 },
    ];
    let (mut single_twigs, mut averaged_twigs) = (0.0, 0.0);
    for c in &cases {
        let (run, spacing) = render_case(c);
        for average_plateau in [false, true] {
            let params = SegmentParams { average_plateau, ..case_params(&run, spacing, false) };
            let seg = segment_run(&run.cine, FrameChoice::Auto, &params).expect("segment");
            assert_eq!(seg.averaged_with.is_empty(), !average_plateau, "{:?}", seg.averaged_with);
            let f = evaluate(&seg.tree, &seg.mask.data, &run.truth[seg.frame as usize], c.size, c.size, 2.0);
            println!(
                "seed {} {} averaged {average_plateau}: CL P {:.3} R {:.3} twigs {:.3} labels {:.3} device {:.0} px (with {:?})",
                c.seed, c.view, f.precision, f.recall, f.twig_recall, f.label_accuracy, f.device_px, seg.averaged_with
            );
            assert!(f.device_px <= 10.0, "seed {} {}: a device runs {:.0} px in the tree", c.seed, c.view, f.device_px);
            assert!(f.precision >= 0.90 && f.dice >= 0.80, "seed {} {}: {f:?}", c.seed, c.view);
            *(if average_plateau { &mut averaged_twigs } else { &mut single_twigs }) += f.twig_recall;
        }
    }
    // Measured: 0.52 + 0.25 + 0.36 alone, 0.49 + 0.56 + 0.53 averaged.
    assert!(averaged_twigs >= single_twigs + 0.3, "twig recall summed {single_twigs:.3} -> {averaged_twigs:.3}");
}

/// A 1024 frame is segmented binned to the 512 working matrix by default, and at its own matrix
/// on request: both give a tree in the frame's pixels that meets the Dice, precision and recall
/// bars on the same case, and their masks agree.
#[test]
fn a_1024_frame_binned_or_at_its_own_matrix_gives_the_same_tree() {
    let c = Case { seed: 3, view: "LAO30", bits: 12, size: 1024 };
    let (run, spacing) = render_case(&c);
    let segment = |full_resolution| {
        segment_run(&run.cine, FrameChoice::Auto, &case_params(&run, spacing, full_resolution)).expect("segment")
    };
    let (binned, full) = (segment(false), segment(true));
    assert_eq!((binned.binning.factor(), full.binning.factor()), (2, 1));
    assert_eq!(binned.frame, full.frame);
    assert_eq!((binned.mask.width, binned.mask.height), (1024, 1024));
    assert_eq!(binned.native_enhanced().unwrap().vesselness.width, 1024);
    let truth = &run.truth[binned.frame as usize];
    let tol = 4.0;
    for (name, seg) in [("binned", &binned), ("full", &full)] {
        let f = evaluate(&seg.tree, &seg.mask.data, truth, 1024, 1024, tol);
        println!(
            "{name}: Dice {:.3} CL P {:.3} R {:.3} bif F1 {:.3} labels {:.3}",
            f.dice, f.precision, f.recall, f.bifurcation_f1, f.label_accuracy
        );
        assert!(f.dice >= 0.85 && f.precision >= 0.90 && f.recall >= 0.85, "{name}: {f:?}");
    }
    let both = binned.mask.data.iter().zip(&full.mask.data).filter(|(a, b)| **a > 0 && **b > 0).count() as f64;
    let agreement = 2.0 * both / (binned.mask.count() + full.mask.count()) as f64;
    assert!(agreement >= 0.85, "masks agree at Dice {agreement:.3}");
}

/// Distance from `p` to a polyline, pixels.
fn distance_to_polyline(p: [f64; 2], line: &[[f64; 2]]) -> f64 {
    nearest_on_polyline(p, line).0
}

/// Distance from `p` to a polyline, the nearest segment's index and the fraction along it.
fn nearest_on_polyline(p: [f64; 2], line: &[[f64; 2]]) -> (f64, usize, f64) {
    let mut best = (f64::INFINITY, 0, 0.0);
    for (i, w) in line.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let d = [b[0] - a[0], b[1] - a[1]];
        let len2 = (d[0] * d[0] + d[1] * d[1]).max(1e-12);
        let t = (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / len2).clamp(0.0, 1.0);
        let dist = (p[0] - a[0] - t * d[0]).hypot(p[1] - a[1] - t * d[1]);
        if dist < best.0 {
            best = (dist, i, t);
        }
    }
    best
}

/// The occlusion balloon, which roots the tree, is found in the frame before the contrast
/// in every case, inside the balloon the simulator drew.
#[test]
fn the_balloon_is_found_before_the_contrast_in_every_case() {
    for c in cases() {
        let (run, spacing) = render_case(&c);
        let max = f32::from(run.cine.format.max_stored_value());
        let frame = run.cine.frame(0).unwrap();
        let a = venogram::segment::ImageF32 {
            width: c.size as usize,
            height: c.size as usize,
            data: frame.samples.iter().map(|s| 1.0 - f32::from(*s) / max).collect(),
        };
        let truth = run.truth[0].devices.iter().find(|d| d.kind == simulator::render::DeviceKind::Balloon).unwrap();
        let range = venogram::segment::balloon::radius_range_px(spacing, true);
        let found = venogram::segment::balloon::find_balloon(&a, range, None).unwrap();
        let found = found.unwrap_or_else(|| panic!("seed {} {} {}: no balloon found", c.seed, c.view, c.size));
        let off = distance_to_polyline(found.center_xy, &truth.centerline_px);
        println!(
            "seed {:>3} {:<6} {:>4}px: balloon at ({:.0}, {:.0}), {off:.1} px from the truth axis (radius {:.1} px)",
            c.seed, c.view, c.size, found.center_xy[0], found.center_xy[1], truth.radius_px
        );
        assert!(off <= truth.radius_px, "seed {} {} {}: balloon {off:.1} px off its axis", c.seed, c.view, c.size);
    }
}
