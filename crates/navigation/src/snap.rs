//! Snapping a tracked tip to the branch tree: which branch, how far from the ostium along
//! it, how far off its centerline, and whether inside its lumen. Near a bifurcation the
//! parent and the child are almost equally near; a [`Snapper`] keeps the branch it
//! reported until another is nearer by a hysteresis margin, so the reported branch does
//! not flicker with sensor noise.

use nalgebra::SVector;
use venogram::VeinLabel;

use crate::tree::{NavTree, Nearest};

/// Where a tip is on the tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap<const D: usize> {
    /// Branch index in the tree.
    pub branch: usize,
    /// The branch's label.
    pub label: VeinLabel,
    /// Arc length from the ostium, mm.
    pub arc_mm: f64,
    /// Distance from the centerline, mm.
    pub off_centerline_mm: f64,
    /// Distance outside the lumen wall, mm (0 inside the lumen).
    pub off_vessel_mm: f64,
    /// Whether the tip is inside the lumen.
    pub inside_lumen: bool,
    /// The centerline point it snapped to, tree units.
    pub point: SVector<f64, D>,
}

impl<const D: usize> Snap<D> {
    fn from_nearest(tree: &NavTree<D>, n: &Nearest<D>) -> Self {
        let off_centerline_mm = n.distance * tree.mm_per_unit;
        let radius_mm = n.radius.max(0.0) * tree.mm_per_unit;
        Self {
            branch: n.branch,
            label: tree.branches[n.branch].label,
            arc_mm: n.arc_mm,
            off_centerline_mm,
            off_vessel_mm: (off_centerline_mm - radius_mm).max(0.0),
            inside_lumen: off_centerline_mm <= radius_mm,
            point: n.point,
        }
    }
}

/// Per-tool snapping state with hysteresis.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapper {
    /// Another branch must be nearer than the current one by this much to take over, mm.
    pub hysteresis_mm: f64,
    /// Beyond this distance from every centerline the tip is on no branch, mm.
    pub max_off_centerline_mm: f64,
    current: Option<usize>,
}

impl Default for Snapper {
    fn default() -> Self {
        Self::new(1.5, 15.0)
    }
}

impl Snapper {
    /// A snapper with a hysteresis margin and a capture distance, mm.
    #[must_use]
    pub fn new(hysteresis_mm: f64, max_off_centerline_mm: f64) -> Self {
        Self { hysteresis_mm, max_off_centerline_mm, current: None }
    }

    /// The branch last reported.
    #[must_use]
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Forgets the branch (a new tool, or the tip left the tree).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Snaps `tip` (tree units) to `tree`; `None` when it is farther than the capture
    /// distance from every centerline.
    pub fn snap<const D: usize>(&mut self, tree: &NavTree<D>, tip: &SVector<f64, D>) -> Option<Snap<D>> {
        let Some(best) = tree.nearest(tip) else {
            self.current = None;
            return None;
        };
        if best.distance * tree.mm_per_unit > self.max_off_centerline_mm {
            self.current = None;
            return None;
        }
        let chosen = match self.current.and_then(|c| tree.nearest_on_branch(c, tip)) {
            Some(kept) if (kept.distance - best.distance) * tree.mm_per_unit <= self.hysteresis_mm => kept,
            _ => best,
        };
        self.current = Some(chosen.branch);
        Some(Snap::from_nearest(tree, &chosen))
    }
}
