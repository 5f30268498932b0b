//! Target sites and the guidance to reach them: the distance along the tree from a snapped
//! tip to a target, the branches to follow, the straight-line distance and direction, and,
//! for magnetic navigation, the field direction that steers the tip toward the path.
//!
//! Field model (magnetic navigation as in Stereotaxis Niobe/Genesis, research-clinical 1.2):
//! the tip carries a small permanent magnet that turns to align with the applied field, so
//! the field is set along the direction the tip should take. That direction is the chord
//! from the tip's snapped point to the point of the tree path a look-ahead distance ahead
//! (default 10 mm, about a tip's deflectable length): at a bifurcation on the path it
//! points into the next branch, along a branch it follows the branch's course, and the
//! chord (not the local tangent) keeps it steady under sensor noise. It is a unit vector in
//! the tree's space (patient space for a 3D tree).

use nalgebra::{SVector, Unit};

use crate::snap::Snap;
use crate::tree::NavTree;

/// A candidate site on the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Name shown to the implanter ("PLV mid", "site 2").
    pub name: String,
    /// Branch index.
    pub branch: usize,
    /// Arc length from the ostium, mm.
    pub arc_mm: f64,
}

impl Target {
    /// A target at the tree point nearest `point` (a 3D point picked in the view).
    #[must_use]
    pub fn nearest_to<const D: usize>(tree: &NavTree<D>, name: &str, point: &SVector<f64, D>) -> Option<Self> {
        tree.nearest(point).map(|n| Self { name: name.to_owned(), branch: n.branch, arc_mm: n.arc_mm })
    }
}

/// How to get from a tip to a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Guidance<const D: usize> {
    /// The target's name.
    pub target: String,
    /// Distance along the tree, mm.
    pub path_mm: f64,
    /// Branches to follow, from the tip's branch to the target's.
    pub path_branches: Vec<usize>,
    /// Straight-line distance from the tip to the target, mm.
    pub straight_mm: f64,
    /// Straight-line direction from the tip to the target (tree space).
    pub direction: Option<Unit<SVector<f64, D>>>,
    /// Direction to steer the tip: toward the path a look-ahead distance ahead (`None` once
    /// the tip is within [`ARRIVED_WITHIN_MM`] of the target).
    pub steer_direction: Option<Unit<SVector<f64, D>>>,
    /// The path as a polyline from the tip's snapped point to the target, tree units.
    pub path: Vec<SVector<f64, D>>,
}

/// Default look-ahead for the steering direction, mm.
pub const DEFAULT_LOOK_AHEAD_MM: f64 = 10.0;
/// Closer than this along the tree the tip is at the target: no steering direction.
pub const ARRIVED_WITHIN_MM: f64 = 2.0;

/// Points of branch `b` from arc `from_mm` to arc `to_mm` (either direction), ends
/// interpolated.
fn walk<const D: usize>(tree: &NavTree<D>, b: usize, from_mm: f64, to_mm: f64, out: &mut Vec<SVector<f64, D>>) {
    let (Some(start), Some(end)) = (tree.point_at(b, from_mm), tree.point_at(b, to_mm)) else { return };
    let push = |out: &mut Vec<SVector<f64, D>>, p: SVector<f64, D>| {
        if out.last().is_none_or(|q| (q - p).norm() > 1e-9) {
            out.push(p);
        }
    };
    push(out, start);
    let branch = &tree.branches[b];
    let inner = branch.points.iter().zip(&branch.arc_from_ostium_mm);
    if to_mm >= from_mm {
        for (p, _) in inner.filter(|(_, s)| **s > from_mm && **s < to_mm) {
            push(out, *p);
        }
    } else {
        let mut back: Vec<_> = inner.filter(|(_, s)| **s < from_mm && **s > to_mm).map(|(p, _)| *p).collect();
        back.reverse();
        for p in back {
            push(out, p);
        }
    }
    push(out, end);
}

/// The point a distance `ahead` along a polyline (its end when shorter).
fn along<const D: usize>(path: &[SVector<f64, D>], ahead: f64) -> Option<SVector<f64, D>> {
    let mut left = ahead;
    for w in path.windows(2) {
        let len = (w[1] - w[0]).norm();
        if len >= left && len > 0.0 {
            return Some(w[0] + (w[1] - w[0]) * (left / len));
        }
        left -= len;
    }
    path.last().copied()
}

/// Guidance from a snapped tip (and its measured position `tip`, tree units) to `target`,
/// steering `look_ahead_mm` ahead along the path. `None` when the target's branch is not
/// in the tree or the two are on separate roots.
#[must_use]
pub fn guide<const D: usize>(
    tree: &NavTree<D>,
    snap: &Snap<D>,
    tip: &SVector<f64, D>,
    target: &Target,
    look_ahead_mm: f64,
) -> Option<Guidance<D>> {
    let target_point = tree.point_at(target.branch, target.arc_mm)?;
    let up = tree.lineage(snap.branch);
    let down = tree.lineage(target.branch);
    // The deepest branch both lineages share.
    let common = up.iter().zip(&down).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let junction_branch = up[common - 1];
    // Where each side leaves the shared branch (or the point itself when on it).
    let leave_up = up.get(common).map_or(snap.arc_mm, |b| tree.branches[*b].takeoff_arc_mm);
    let leave_down = down.get(common).map_or(target.arc_mm, |b| tree.branches[*b].takeoff_arc_mm);

    let mut path = Vec::new();
    // Up from the tip to the shared branch.
    let mut arc = snap.arc_mm;
    for &b in up[common..].iter().rev() {
        let takeoff = tree.branches[b].takeoff_arc_mm;
        walk(tree, b, arc, tree.branches[b].arc_from_ostium_mm[0], &mut path);
        arc = takeoff;
    }
    // Along the shared branch.
    walk(tree, junction_branch, leave_up, leave_down, &mut path);
    // Down to the target.
    for (k, &b) in down[common..].iter().enumerate() {
        let end = if k + common + 1 == down.len() {
            target.arc_mm
        } else {
            tree.branches[down[common + k + 1]].takeoff_arc_mm
        };
        walk(tree, b, tree.branches[b].arc_from_ostium_mm[0], end, &mut path);
    }
    if path.is_empty() {
        path.push(snap.point);
    }
    let path_mm: f64 = path.windows(2).map(|w| (w[1] - w[0]).norm()).sum::<f64>() * tree.mm_per_unit;

    let mut path_branches: Vec<usize> = up[common - 1..].iter().rev().copied().collect();
    path_branches.extend(down[common..].iter().copied());
    path_branches.dedup();

    let to_target = target_point - tip;
    let steer_direction =
        along(&path, look_ahead_mm / tree.mm_per_unit).and_then(|p| Unit::try_new(p - snap.point, 1e-9));
    Some(Guidance {
        target: target.name.clone(),
        path_mm,
        path_branches,
        straight_mm: to_target.norm() * tree.mm_per_unit,
        direction: Unit::try_new(to_target, 1e-9),
        steer_direction,
        path,
    })
}
