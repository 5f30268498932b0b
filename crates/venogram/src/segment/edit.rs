//! Editing a segmented tree by hand (`csnav review`): remove a branch with everything distal to
//! it, add a branch traced along the vessel from a point on the tree to a point the physician
//! picks, rename a branch. Measurements of what changed are recomputed; branches that did not
//! change keep their identifiers; branches stay ordered parents before children.
//!
//! The added branch follows the cheapest 8-connected path through the vesselness image (cost
//! per pixel step `1 / (vesselness + 0.01)` times the step length): a minimal path, as
//! interactive vessel tracing tools do ([`geodesic`](mod@super::geodesic): OpenCV has no
//! geodesic minimal path between two points); the search is bounded to a box around the two
//! ends.

use crate::labels::VeinLabel;

use super::calibre::lumen_radii;
use super::enhance::Enhanced;
use super::geodesic::{Window, cheapest_path};
use super::graph::polyline_length;
use super::pipeline::{measure_branch, takeoff_angle_deg};
use super::tree::{BranchTree, NodeKind, TreeBranch, TreeNode};

/// A click this far from every centerline picks no branch, px.
pub const PICK_RADIUS_PX: f64 = 15.0;
/// Margin of the minimal path's search box around its two ends, px.
const SEARCH_MARGIN_PX: usize = 40;
/// Vesselness floor in the path cost (keeps the cost finite off the vessels).
const COST_FLOOR: f32 = 0.01;

/// Why an edit cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// No branch with this identifier.
    #[error("the tree has no branch {0}")]
    NoBranch(u32),
    /// The trunk at the ostium cannot be removed (the tree would be gone).
    #[error("branch {0} is the trunk at the ostium: move the seed or segment again instead of removing it")]
    Root(u32),
    /// The point is not near the tree.
    #[error(
        "({x:.0}, {y:.0}) is {distance_px:.0} px from the tree; start a branch on the tree (within {PICK_RADIUS_PX:.0} px)"
    )]
    OffTree {
        /// Column.
        x: f64,
        /// Row.
        y: f64,
        /// Distance to the nearest centerline, px.
        distance_px: f64,
    },
    /// The point is outside the image.
    #[error("({x:.0}, {y:.0}) is outside the {width}x{height} image")]
    OutsideImage {
        /// Column.
        x: f64,
        /// Row.
        y: f64,
        /// Columns.
        width: usize,
        /// Rows.
        height: usize,
    },
    /// The new branch would be shorter than a vessel is wide.
    #[error("the new branch would be only {length_px:.1} px long")]
    TooShort {
        /// Its length, px.
        length_px: f64,
    },
}

/// The branch nearest a point: its identifier, the index of the nearest centerline point and
/// the distance to it, px; `None` for an empty tree.
#[must_use]
pub fn nearest_branch(tree: &BranchTree, xy: [f64; 2]) -> Option<(u32, usize, f64)> {
    tree.branches
        .iter()
        .flat_map(|b| b.points.iter().enumerate().map(move |(i, p)| (b.id, i, (p[0] - xy[0]).hypot(p[1] - xy[1]))))
        .min_by(|a, b| a.2.total_cmp(&b.2))
}

/// Renames a branch.
pub fn rename_branch(tree: &mut BranchTree, id: u32, label: VeinLabel) -> Result<(), EditError> {
    let branch = tree.branches.iter_mut().find(|b| b.id == id).ok_or(EditError::NoBranch(id))?;
    branch.label = label;
    Ok(())
}

/// Removes a branch and everything distal to it; returns the identifiers removed. Where the
/// branch left its parent, the node becomes an end (no branch left there), or the parent and
/// its one remaining child are joined when they carry the same label (no bifurcation left).
pub fn remove_branch(tree: &mut BranchTree, id: u32) -> Result<Vec<u32>, EditError> {
    let branch = tree.branch(id).ok_or(EditError::NoBranch(id))?;
    let Some(parent) = branch.parent else { return Err(EditError::Root(id)) };
    let junction = branch.from;
    let mut removed = vec![id];
    let mut k = 0;
    while k < removed.len() {
        let of = removed[k];
        removed.extend(tree.branches.iter().filter(|b| b.parent == Some(of)).map(|b| b.id));
        k += 1;
    }
    let gone_nodes: Vec<u32> = tree.branches.iter().filter(|b| removed.contains(&b.id)).map(|b| b.to).collect();
    tree.branches.retain(|b| !removed.contains(&b.id));
    tree.nodes.retain(|n| !gone_nodes.contains(&n.id));
    let remaining: Vec<u32> = tree.branches.iter().filter(|b| b.parent == Some(parent)).map(|b| b.id).collect();
    match remaining.as_slice() {
        [] => set_kind(tree, junction, NodeKind::End),
        [only] => {
            let same_label = tree.branch(*only).map(|b| b.label) == tree.branch(parent).map(|b| b.label);
            if same_label {
                join(tree, parent, *only);
            } else {
                set_kind(tree, junction, NodeKind::Transition);
            }
        }
        _ => {}
    }
    Ok(removed)
}

fn set_kind(tree: &mut BranchTree, node: u32, kind: NodeKind) {
    if let Some(n) = tree.nodes.iter_mut().find(|n| n.id == node) {
        n.kind = kind;
    }
}

/// Joins `child` onto the end of `parent` (one branch, the parent's identifier).
fn join(tree: &mut BranchTree, parent: u32, child: u32) {
    let Some(c) = tree.branches.iter().position(|b| b.id == child) else { return };
    let child_branch = tree.branches.remove(c);
    let Some(p) = tree.branches.iter_mut().find(|b| b.id == parent) else { return };
    let junction = p.to;
    p.points.extend(child_branch.points.iter().skip(1));
    p.radius_px.extend(child_branch.radius_px.iter().skip(1));
    p.to = child_branch.to;
    tree.nodes.retain(|n| n.id != junction);
    for b in &mut tree.branches {
        if b.parent == Some(child) {
            b.parent = Some(parent);
        }
    }
    remeasure(tree, parent);
}

/// Adds a branch from the tree point nearest `from_xy` along the vessels to `to_xy`; returns
/// its identifier. The branch it leaves is split there (its distal part keeps the label and
/// gets a new identifier), and the new branch is labelled `branch` until renamed.
pub fn add_branch(
    tree: &mut BranchTree,
    enhanced: &Enhanced,
    from_xy: [f64; 2],
    to_xy: [f64; 2],
    spacing_mm: Option<f64>,
) -> Result<u32, EditError> {
    let (width, height) = (enhanced.vesselness.width, enhanced.vesselness.height);
    for [x, y] in [from_xy, to_xy] {
        if !(x >= 0.0 && y >= 0.0 && x <= (width - 1) as f64 && y <= (height - 1) as f64) {
            return Err(EditError::OutsideImage { x, y, width, height });
        }
    }
    let (on, index, distance_px) = nearest_branch(tree, from_xy).ok_or(EditError::OffTree {
        x: from_xy[0],
        y: from_xy[1],
        distance_px: f64::INFINITY,
    })?;
    if distance_px > PICK_RADIUS_PX {
        return Err(EditError::OffTree { x: from_xy[0], y: from_xy[1], distance_px });
    }
    let start = tree.branch(on).ok_or(EditError::NoBranch(on))?.points[index];
    let path = minimal_path(enhanced, start, to_xy);
    let length_px = polyline_length(&path);
    if length_px < 3.0 {
        return Err(EditError::TooShort { length_px });
    }
    let junction = split_at(tree, on, index, spacing_mm);
    let parent = tree.branches.iter().find(|b| b.to == junction).map_or(on, |b| b.id);
    // The lumen read across the vein, as the pipeline's branches are measured, with the
    // vesselness scale's radius setting the reach.
    let scale_radius: Vec<f64> =
        path.iter().map(|p| f64::from(enhanced.radius_px.at_clamped(p[0], p[1])).max(0.5)).collect();
    let radius = lumen_radii(&path, &scale_radius, &enhanced.tophat);
    let end = next_node_id(tree);
    tree.nodes.push(TreeNode { id: end, kind: NodeKind::End, xy: path[path.len() - 1] });
    let id = next_branch_id(tree);
    let mut branch = measure_branch(id, Some(parent), VeinLabel::Branch, junction, end, &path, &radius, spacing_mm);
    branch.takeoff_angle_deg = tree.branch(parent).and_then(|p| takeoff_angle_deg(&tree.branches, p, &branch));
    tree.branches.push(branch);
    reorder(tree);
    Ok(id)
}

fn next_node_id(tree: &BranchTree) -> u32 {
    tree.nodes.iter().map(|n| n.id + 1).max().unwrap_or(0)
}

fn next_branch_id(tree: &BranchTree) -> u32 {
    tree.branches.iter().map(|b| b.id + 1).max().unwrap_or(0)
}

/// Makes point `index` of branch `id` a bifurcation node and returns it: the branch's own end
/// when `index` is its last point, else the branch is split there.
fn split_at(tree: &mut BranchTree, id: u32, index: usize, spacing_mm: Option<f64>) -> u32 {
    let Some(k) = tree.branches.iter().position(|b| b.id == id) else { return 0 };
    let last = tree.branches[k].points.len() - 1;
    // A branch is split no closer than one point to its start (a takeoff needs a parent).
    let index = index.max(1).min(last);
    if index == last {
        let to = tree.branches[k].to;
        set_kind(tree, to, NodeKind::Bifurcation);
        return to;
    }
    let node = next_node_id(tree);
    let new_id = next_branch_id(tree);
    let b = &tree.branches[k];
    let xy = b.points[index];
    let distal =
        measure_branch(new_id, Some(id), b.label, node, b.to, &b.points[index..], &b.radius_px[index..], spacing_mm);
    let (proximal_points, proximal_radius) = (b.points[..=index].to_vec(), b.radius_px[..=index].to_vec());
    for child in &mut tree.branches {
        if child.parent == Some(id) {
            child.parent = Some(new_id);
        }
    }
    let b = &mut tree.branches[k];
    b.points = proximal_points;
    b.radius_px = proximal_radius;
    b.to = node;
    tree.nodes.push(TreeNode { id: node, kind: NodeKind::Bifurcation, xy });
    tree.branches.push(distal);
    remeasure_with(tree, id, spacing_mm);
    node
}

/// Recomputes a branch's measurements from its points (the spacing as it had it).
fn remeasure(tree: &mut BranchTree, id: u32) {
    let spacing_mm = tree.branch(id).and_then(|b| match (b.length_mm, b.length_px) {
        (Some(mm), px) if px > 1e-9 => Some(mm / px),
        _ => None,
    });
    remeasure_with(tree, id, spacing_mm);
}

fn remeasure_with(tree: &mut BranchTree, id: u32, spacing_mm: Option<f64>) {
    let Some(k) = tree.branches.iter().position(|b| b.id == id) else { return };
    let b = &tree.branches[k];
    let mut again = measure_branch(b.id, b.parent, b.label, b.from, b.to, &b.points, &b.radius_px, spacing_mm);
    again.takeoff_angle_deg =
        b.parent.and_then(|p| tree.branch(p)).and_then(|p| takeoff_angle_deg(&tree.branches, p, &again));
    tree.branches[k] = again;
}

/// Orders branches parents before children (roots first, then breadth first, stable).
fn reorder(tree: &mut BranchTree) {
    let mut ordered: Vec<TreeBranch> = Vec::with_capacity(tree.branches.len());
    let mut rest = std::mem::take(&mut tree.branches);
    let mut frontier: Vec<Option<u32>> = vec![None];
    while !frontier.is_empty() && !rest.is_empty() {
        let mut next = Vec::new();
        for parent in frontier {
            let (children, others): (Vec<TreeBranch>, Vec<TreeBranch>) =
                rest.into_iter().partition(|b| b.parent == parent);
            rest = others;
            next.extend(children.iter().map(|b| Some(b.id)));
            ordered.extend(children);
        }
        frontier = next;
    }
    // Anything left has a parent that is not in the tree: kept, last, rather than lost.
    ordered.extend(rest);
    tree.branches = ordered;
}

/// The cheapest 8-connected pixel path from `from` to `to` through the vesselness (Dijkstra
/// in a box around the two ends, [`geodesic`](mod@super::geodesic)), from `from` to `to`,
/// pixel centres.
fn minimal_path(enhanced: &Enhanced, from: [f64; 2], to: [f64; 2]) -> Vec<[f64; 2]> {
    let v = &enhanced.vesselness;
    let clamp = |p: [f64; 2]| {
        ((p[0].round().max(0.0) as usize).min(v.width - 1), (p[1].round().max(0.0) as usize).min(v.height - 1))
    };
    let (start, goal) = (clamp(from), clamp(to));
    let window = Window::around(start, goal, SEARCH_MARGIN_PX, v.width, v.height);
    let cost = |x: usize, y: usize| Some(1.0 / f64::from(v.at(x, y).max(0.0) + COST_FLOOR));
    // Every pixel of the box is passable and the goal lies in it, so a path is always found;
    // the straight pair is only a fallback.
    let path = cheapest_path(&window, start, cost, |x, y| (x, y) == goal).unwrap_or_else(|| vec![start, goal]);
    let mut points: Vec<[f64; 2]> = path.iter().map(|(x, y)| [*x as f64, *y as f64]).collect();
    // The branch starts exactly on the tree point it leaves.
    if let Some(first) = points.first_mut() {
        *first = from;
    }
    points
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "pixel centres here are exact integers")]
mod tests {
    use super::*;
    use crate::segment::image::ImageF32;

    /// A trunk along row 50 (x 10..=90) with a side branch down column 50 (y 50..=90).
    fn tree() -> BranchTree {
        let trunk: Vec<[f64; 2]> = (10..=50).map(|x| [f64::from(x), 50.0]).collect();
        let on: Vec<[f64; 2]> = (50..=90).map(|x| [f64::from(x), 50.0]).collect();
        let side: Vec<[f64; 2]> = (50..=90).map(|y| [50.0, f64::from(y)]).collect();
        let b = |id, parent, label, from, to, points: &[[f64; 2]]| {
            measure_branch(id, parent, label, from, to, points, &vec![2.0; points.len()], Some(0.2))
        };
        BranchTree {
            nodes: vec![
                TreeNode { id: 0, kind: NodeKind::Root, xy: [10.0, 50.0] },
                TreeNode { id: 1, kind: NodeKind::Bifurcation, xy: [50.0, 50.0] },
                TreeNode { id: 2, kind: NodeKind::End, xy: [90.0, 50.0] },
                TreeNode { id: 3, kind: NodeKind::End, xy: [50.0, 90.0] },
            ],
            branches: vec![
                b(0, None, VeinLabel::CoronarySinus, 0, 1, &trunk),
                b(1, Some(0), VeinLabel::CoronarySinus, 1, 2, &on),
                b(2, Some(0), VeinLabel::PosterolateralVein, 1, 3, &side),
            ],
            empty_reason: None,
        }
    }

    /// Vesselness 1 along a curved vessel from (70, 50) to (80, 20), 0 elsewhere.
    fn enhanced() -> Enhanced {
        let mut vesselness = ImageF32::zeros(120, 120);
        for k in 0..=100 {
            let t = f64::from(k) / 100.0;
            // A quarter bend: right then up.
            let (x, y) = (70.0 + 10.0 * (t * std::f64::consts::FRAC_PI_2).sin(), 50.0 - 30.0 * t);
            vesselness.data[y.round() as usize * 120 + x.round() as usize] = 1.0;
        }
        let mut radius_px = ImageF32::zeros(120, 120);
        radius_px.data.fill(1.5);
        Enhanced { tophat: ImageF32::zeros(120, 120), vesselness, radius_px }
    }

    #[test]
    fn removing_a_side_branch_joins_the_trunk_again() {
        let mut t = tree();
        assert_eq!(remove_branch(&mut t, 2).unwrap(), vec![2]);
        assert_eq!(t.branches.len(), 1, "the two trunk pieces are one branch again");
        let trunk = &t.branches[0];
        assert_eq!((trunk.id, trunk.to), (0, 2));
        assert_eq!(trunk.points.len(), 81);
        assert!((trunk.length_px - 80.0).abs() < 1e-9 && (trunk.length_mm.unwrap() - 16.0).abs() < 1e-9);
        assert!(t.nodes.iter().all(|n| n.id != 1 && n.id != 3), "junction and the side end are gone");
        assert_eq!(remove_branch(&mut t, 0), Err(EditError::Root(0)));
        assert_eq!(remove_branch(&mut t, 9), Err(EditError::NoBranch(9)));
    }

    #[test]
    fn removing_a_branch_takes_what_is_distal_and_marks_a_labelled_junction() {
        let mut t = tree();
        assert_eq!(remove_branch(&mut t, 1).unwrap(), vec![1]);
        // CS ends where the PLV leaves: the node is a label change, no longer a branching.
        assert_eq!(t.nodes.iter().find(|n| n.id == 1).unwrap().kind, NodeKind::Transition);
        let mut t = tree();
        rename_branch(&mut t, 2, VeinLabel::LateralMarginalVein).unwrap();
        assert_eq!(t.branch(2).unwrap().label, VeinLabel::LateralMarginalVein);
        assert_eq!(rename_branch(&mut t, 7, VeinLabel::Branch), Err(EditError::NoBranch(7)));
    }

    #[test]
    fn an_added_branch_follows_the_vessel_and_splits_its_parent() {
        let mut t = tree();
        let id = add_branch(&mut t, &enhanced(), [70.0, 52.0], [80.0, 20.0], Some(0.2)).unwrap();
        let added = t.branch(id).unwrap();
        assert_eq!(added.label, VeinLabel::Branch);
        assert_eq!(added.points[0], [70.0, 50.0], "it starts on the trunk point nearest the click");
        assert_eq!(*added.points.last().unwrap(), [80.0, 20.0]);
        // Every point lies on the vessel (within a pixel of a vesselness-1 pixel).
        let v = enhanced().vesselness;
        for p in &added.points[1..] {
            let near = (-1i64..=1)
                .any(|dy| (-1i64..=1).any(|dx| v.at((p[0] as i64 + dx) as usize, (p[1] as i64 + dy) as usize) > 0.5));
            assert!(near, "{p:?} is off the vessel");
        }
        // The trunk piece it leaves was split at x = 70: proximal keeps id 1, distal is new.
        let proximal = t.branch(1).unwrap();
        assert_eq!(*proximal.points.last().unwrap(), [70.0, 50.0]);
        assert_eq!(added.parent, Some(1));
        let distal = t.branches.iter().find(|b| b.parent == Some(1) && b.id != id).unwrap();
        assert_eq!(
            (distal.label, distal.points[0], *distal.points.last().unwrap()),
            (VeinLabel::CoronarySinus, [70.0, 50.0], [90.0, 50.0])
        );
        assert!(added.takeoff_angle_deg.unwrap() > 45.0, "{:?}", added.takeoff_angle_deg);
        // Parents come before children.
        for (k, b) in t.branches.iter().enumerate() {
            if let Some(p) = b.parent {
                assert!(t.branches[..k].iter().any(|q| q.id == p), "branch {} before its parent {p}", b.id);
            }
        }
    }

    #[test]
    fn adding_from_off_the_tree_or_outside_the_image_is_refused() {
        let mut t = tree();
        let e = add_branch(&mut t, &enhanced(), [70.0, 90.0], [80.0, 20.0], None).unwrap_err();
        assert!(matches!(e, EditError::OffTree { .. }), "{e}");
        let e = add_branch(&mut t, &enhanced(), [70.0, 50.0], [500.0, 20.0], None).unwrap_err();
        assert!(matches!(e, EditError::OutsideImage { .. }), "{e}");
        let e = add_branch(&mut t, &enhanced(), [70.0, 50.0], [71.0, 50.0], None).unwrap_err();
        assert!(matches!(e, EditError::TooShort { .. }), "{e}");
        assert_eq!(t, tree(), "a refused edit changes nothing");
    }
}
