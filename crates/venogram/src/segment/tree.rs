//! The labelled branch tree: the typed result of segmentation and its JSON form
//! (`csnav.tree/1`). Pixel coordinates are `(x, y)` = (column, row), pixel centres at
//! integers, origin top-left; every branch's points run from its parent end to its distal end.

use serde::Serialize;

use crate::labels::VeinLabel;

/// What a node of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// The CS ostium (or the user's seed).
    Root,
    /// Where a branch leaves its parent.
    Bifurcation,
    /// A distal end.
    End,
    /// Where one named segment of the trunk becomes the next (CS to GCV at the vein of
    /// Marshall, GCV to AIV at the anterior groove): a landmark, not a branching.
    Transition,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode {
    /// Identifier, unique in the tree.
    pub id: u32,
    /// Root, bifurcation or end.
    pub kind: NodeKind,
    /// Position, pixels `(x, y)`.
    pub xy: [f64; 2],
}

/// A branch: the centerline between two nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeBranch {
    /// Identifier, unique in the tree.
    pub id: u32,
    /// The branch this one leaves (`None` at the root).
    pub parent: Option<u32>,
    /// Anatomical label.
    #[serde(serialize_with = "serialize_label")]
    pub label: VeinLabel,
    /// Proximal node.
    pub from: u32,
    /// Distal node.
    pub to: u32,
    /// Centerline, pixels `(x, y)`, proximal to distal.
    pub points: Vec<[f64; 2]>,
    /// Vessel radius at each point, pixels.
    pub radius_px: Vec<f64>,
    /// Centerline length, pixels.
    pub length_px: f64,
    /// Centerline length, mm at the isocentre (when the pixel spacing is known).
    pub length_mm: Option<f64>,
    /// Mean diameter, mm (when the pixel spacing is known).
    pub mean_diameter_mm: Option<f64>,
    /// Smallest diameter along the branch, mm (when the pixel spacing is known).
    pub min_diameter_mm: Option<f64>,
    /// Tortuosity: centerline length over the straight distance between its ends (>= 1).
    pub tortuosity: f64,
    /// Angle between the parent's direction at the takeoff and this branch's first
    /// direction, degrees (0 = straight on); `None` at the root.
    pub takeoff_angle_deg: Option<f64>,
}

impl TreeBranch {
    /// A branch with its measurements from its centerline and radii (length, diameters when
    /// the pixel spacing is known, tortuosity; the takeoff angle is left to the caller).
    #[allow(clippy::too_many_arguments, reason = "the fields of a branch, named at each call")]
    #[must_use]
    pub fn measured(
        id: u32,
        parent: Option<u32>,
        label: VeinLabel,
        from: u32,
        to: u32,
        points: &[[f64; 2]],
        radius_px: &[f64],
        spacing_mm: Option<f64>,
    ) -> Self {
        super::pipeline::measure_branch(id, parent, label, from, to, points, radius_px, spacing_mm)
    }
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde passes fields by reference")]
pub(crate) fn serialize_label<S: serde::Serializer>(label: &VeinLabel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(label.abbreviation())
}

/// The labelled coronary-sinus branch tree of one frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BranchTree {
    /// Nodes.
    pub nodes: Vec<TreeNode>,
    /// Branches, parents before children.
    pub branches: Vec<TreeBranch>,
    /// Why the tree is empty, when it is.
    pub empty_reason: Option<String>,
}

impl BranchTree {
    /// An empty tree with the reason.
    #[must_use]
    pub fn empty(reason: impl Into<String>) -> Self {
        Self { nodes: Vec::new(), branches: Vec::new(), empty_reason: Some(reason.into()) }
    }

    /// The root node, if any.
    #[must_use]
    pub fn root(&self) -> Option<&TreeNode> {
        self.nodes.iter().find(|n| n.kind == NodeKind::Root)
    }

    /// The branch with identifier `id`.
    #[must_use]
    pub fn branch(&self, id: u32) -> Option<&TreeBranch> {
        self.branches.iter().find(|b| b.id == id)
    }

    /// Every centerline point of the tree with its branch's label.
    pub fn labelled_points(&self) -> impl Iterator<Item = ([f64; 2], VeinLabel)> + '_ {
        self.branches.iter().flat_map(|b| b.points.iter().map(move |p| (*p, b.label)))
    }
}

/// Where a tree came from, for its JSON form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeSource {
    /// The file it was read from.
    pub file: String,
    /// SOP Instance UID of the run.
    pub sop_instance_uid: Option<String>,
    /// Frame index (0-based).
    pub frame: u32,
    /// Rows of the frame.
    pub rows: u32,
    /// Columns of the frame.
    pub columns: u32,
}

/// The `csnav.tree/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct TreeDocument<'a> {
    /// Always `csnav.tree/1`.
    pub schema: &'static str,
    /// Where the tree came from.
    pub source: &'a TreeSource,
    /// Pixel spacing at the isocentre, mm (`null` when unknown).
    pub pixel_spacing_mm: Option<f64>,
    /// Nodes.
    pub nodes: &'a [TreeNode],
    /// Branches.
    pub branches: &'a [TreeBranch],
    /// Why the tree is empty (absent when it is not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_reason: Option<&'a str>,
}

impl<'a> TreeDocument<'a> {
    /// The document of `tree`.
    #[must_use]
    pub fn new(tree: &'a BranchTree, source: &'a TreeSource, pixel_spacing_mm: Option<f64>) -> Self {
        Self {
            schema: "csnav.tree/1",
            source,
            pixel_spacing_mm,
            nodes: &tree.nodes,
            branches: &tree.branches,
            empty_reason: tree.empty_reason.as_deref(),
        }
    }
}
