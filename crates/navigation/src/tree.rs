//! The branch tree as navigation sees it: centerlines with radii and the arc length of
//! every point from the CS ostium, in 2D (a venogram view, pixels) or 3D (patient space,
//! mm). Built from a segmented [`venogram::segment::BranchTree`] or from any labelled
//! centerlines (the simulator's ground truth, the 3D reconstruction).

use nalgebra::SVector;
use venogram::VeinLabel;
use venogram::segment::BranchTree;

/// Why a tree cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TreeError {
    /// The tree has no branch.
    #[error("the branch tree is empty")]
    Empty,
    /// A branch has fewer than two points or mismatched radii.
    #[error("branch {index} has {points} points and {radii} radii (needs two or more points, one radius each)")]
    BadBranch {
        /// Branch index.
        index: usize,
        /// Points.
        points: usize,
        /// Radii.
        radii: usize,
    },
    /// A branch names a parent that does not come before it.
    #[error("branch {index} names parent {parent}, which does not come before it")]
    BadParent {
        /// Branch index.
        index: usize,
        /// The parent it names.
        parent: usize,
    },
    /// A coordinate or radius is not finite, or the scale is not positive.
    #[error("branch {index} has a coordinate or radius that is not finite (or the scale is not positive)")]
    NotFinite {
        /// Branch index.
        index: usize,
    },
}

/// One branch given to [`NavTree::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct BranchInput<const D: usize> {
    /// Index of the parent branch (which must come earlier), `None` for a root.
    pub parent: Option<usize>,
    /// Anatomical label.
    pub label: VeinLabel,
    /// Centerline, proximal to distal, in the tree's units.
    pub points: Vec<SVector<f64, D>>,
    /// Lumen radius at each point, in the tree's units.
    pub radius: Vec<f64>,
}

/// A branch with its arc lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct NavBranch<const D: usize> {
    /// Index of the parent branch.
    pub parent: Option<usize>,
    /// Anatomical label.
    pub label: VeinLabel,
    /// Centerline, proximal to distal, in the tree's units.
    pub points: Vec<SVector<f64, D>>,
    /// Lumen radius at each point, in the tree's units.
    pub radius: Vec<f64>,
    /// Arc length from the ostium at each point, mm.
    pub arc_from_ostium_mm: Vec<f64>,
    /// Where it leaves its parent: the parent's arc length there, mm.
    pub takeoff_arc_mm: f64,
    /// Bounding box (min, max) in the tree's units.
    pub bounds: (SVector<f64, D>, SVector<f64, D>),
}

impl<const D: usize> NavBranch<D> {
    /// Distance from `p` to the branch's bounding box (0 inside): no centerline point is nearer.
    #[must_use]
    pub fn distance_to_bounds(&self, p: &SVector<f64, D>) -> f64 {
        (self.bounds.0 - p).sup(&(p - self.bounds.1)).sup(&SVector::zeros()).norm()
    }

    /// Arc length of the branch's last point from the ostium, mm.
    #[must_use]
    pub fn end_arc_mm(&self) -> f64 {
        self.arc_from_ostium_mm.last().copied().unwrap_or(self.takeoff_arc_mm)
    }
}

/// The nearest point of a branch to a query point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest<const D: usize> {
    /// Branch index.
    pub branch: usize,
    /// The nearest centerline point, tree units.
    pub point: SVector<f64, D>,
    /// Distance from the query, tree units.
    pub distance: f64,
    /// Arc length from the ostium there, mm.
    pub arc_mm: f64,
    /// Lumen radius there, tree units.
    pub radius: f64,
}

/// A navigable tree in `D` dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct NavTree<const D: usize> {
    /// Branches, parents before children.
    pub branches: Vec<NavBranch<D>>,
    /// Millimetres per tree unit (1 for a 3D tree in mm; the pixel spacing at the
    /// isocentre for a 2D view, where arc lengths are in-plane and so foreshortened).
    pub mm_per_unit: f64,
}

/// A tree in a venogram view, pixel coordinates `(column, row)`.
pub type NavTree2 = NavTree<2>;
/// A tree in patient space, mm.
pub type NavTree3 = NavTree<3>;

/// Nearest point on segment `a`-`b` to `p`: `(fraction along, distance)`.
fn nearest_on_segment<const D: usize>(p: &SVector<f64, D>, a: &SVector<f64, D>, b: &SVector<f64, D>) -> (f64, f64) {
    let d = b - a;
    let len2 = d.norm_squared();
    let t = if len2 > 0.0 { ((p - a).dot(&d) / len2).clamp(0.0, 1.0) } else { 0.0 };
    (t, (a + d * t - p).norm())
}

/// The nearest point of branch `b` (index `index`) to `p`.
fn nearest_on<const D: usize>(b: &NavBranch<D>, index: usize, p: &SVector<f64, D>) -> Nearest<D> {
    let mut best = Nearest { branch: index, point: b.points[0], distance: f64::INFINITY, arc_mm: 0.0, radius: 0.0 };
    for i in 0..b.points.len() - 1 {
        let (t, d) = nearest_on_segment(p, &b.points[i], &b.points[i + 1]);
        if d < best.distance {
            best = Nearest {
                branch: index,
                point: b.points[i] + (b.points[i + 1] - b.points[i]) * t,
                distance: d,
                arc_mm: b.arc_from_ostium_mm[i] + t * (b.arc_from_ostium_mm[i + 1] - b.arc_from_ostium_mm[i]),
                radius: b.radius[i] + t * (b.radius[i + 1] - b.radius[i]),
            };
        }
    }
    best
}

impl<const D: usize> NavTree<D> {
    /// Builds the tree: arc lengths from the ostium, each child's takeoff on its parent
    /// (the parent's point nearest the child's first point).
    pub fn new(inputs: Vec<BranchInput<D>>, mm_per_unit: f64) -> Result<Self, TreeError> {
        if inputs.is_empty() {
            return Err(TreeError::Empty);
        }
        let mut branches: Vec<NavBranch<D>> = Vec::with_capacity(inputs.len());
        for (index, b) in inputs.into_iter().enumerate() {
            if b.points.len() < 2 || b.radius.len() != b.points.len() {
                return Err(TreeError::BadBranch { index, points: b.points.len(), radii: b.radius.len() });
            }
            let finite =
                b.points.iter().all(|p| p.iter().all(|v| v.is_finite())) && b.radius.iter().all(|r| r.is_finite());
            if !(finite && mm_per_unit.is_finite() && mm_per_unit > 0.0) {
                return Err(TreeError::NotFinite { index });
            }
            let takeoff_arc_mm = match b.parent {
                None => 0.0,
                Some(parent) if parent < index => nearest_on(&branches[parent], parent, &b.points[0]).arc_mm,
                Some(parent) => return Err(TreeError::BadParent { index, parent }),
            };
            let mut arc = Vec::with_capacity(b.points.len());
            let mut s = takeoff_arc_mm;
            for (i, p) in b.points.iter().enumerate() {
                if i > 0 {
                    s += (p - b.points[i - 1]).norm() * mm_per_unit;
                }
                arc.push(s);
            }
            let mut lo = b.points[0];
            let mut hi = b.points[0];
            for p in &b.points {
                lo = lo.inf(p);
                hi = hi.sup(p);
            }
            branches.push(NavBranch {
                parent: b.parent,
                label: b.label,
                points: b.points,
                radius: b.radius,
                arc_from_ostium_mm: arc,
                takeoff_arc_mm,
                bounds: (lo, hi),
            });
        }
        Ok(Self { branches, mm_per_unit })
    }

    /// The nearest point of branch `index` to `p`; `None` for an unknown branch.
    #[must_use]
    pub fn nearest_on_branch(&self, index: usize, p: &SVector<f64, D>) -> Option<Nearest<D>> {
        self.branches.get(index).map(|b| nearest_on(b, index, p))
    }

    /// The nearest point of every branch whose bounding box lies within `within` (tree
    /// units) of `p`, nearest first.
    #[must_use]
    pub fn nearest_per_branch(&self, p: &SVector<f64, D>, within: f64) -> Vec<Nearest<D>> {
        let mut out: Vec<Nearest<D>> = self
            .branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.distance_to_bounds(p) <= within)
            .map(|(i, b)| nearest_on(b, i, p))
            .collect();
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        out
    }

    /// The nearest centerline point of the whole tree.
    #[must_use]
    pub fn nearest(&self, p: &SVector<f64, D>) -> Option<Nearest<D>> {
        let mut best: Option<Nearest<D>> = None;
        for (i, b) in self.branches.iter().enumerate() {
            let outside = b.distance_to_bounds(p);
            if best.is_some_and(|n| outside >= n.distance) {
                continue;
            }
            let n = nearest_on(b, i, p);
            if best.is_none_or(|bn| n.distance < bn.distance) {
                best = Some(n);
            }
        }
        best
    }

    /// The centerline point of branch `index` at `arc_mm` from the ostium (clamped to the
    /// branch).
    #[must_use]
    pub fn point_at(&self, index: usize, arc_mm: f64) -> Option<SVector<f64, D>> {
        let b = self.branches.get(index)?;
        let arc = &b.arc_from_ostium_mm;
        let s = arc_mm.clamp(arc[0], arc[arc.len() - 1]);
        let i = arc.partition_point(|a| *a <= s).clamp(1, arc.len() - 1);
        let span = arc[i] - arc[i - 1];
        let t = if span > 0.0 { (s - arc[i - 1]) / span } else { 0.0 };
        Some(b.points[i - 1] + (b.points[i] - b.points[i - 1]) * t)
    }

    /// Branch indices from a root down to `index`.
    #[must_use]
    pub fn lineage(&self, index: usize) -> Vec<usize> {
        let mut out = vec![index];
        let mut at = index;
        while let Some(p) = self.branches.get(at).and_then(|b| b.parent) {
            out.push(p);
            at = p;
        }
        out.reverse();
        out
    }
}

impl NavTree2 {
    /// From a segmented venogram tree (pixels), with the pixel spacing at the isocentre.
    pub fn from_branch_tree(tree: &BranchTree, mm_per_px: f64) -> Result<Self, TreeError> {
        let index_of = |id: u32| tree.branches.iter().position(|b| b.id == id);
        let inputs = tree
            .branches
            .iter()
            .map(|b| BranchInput {
                parent: b.parent.and_then(index_of),
                label: b.label,
                points: b.points.iter().map(|p| SVector::<f64, 2>::new(p[0], p[1])).collect(),
                radius: b.radius_px.clone(),
            })
            .collect();
        Self::new(inputs, mm_per_px)
    }
}
