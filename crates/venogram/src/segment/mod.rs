//! Vessel segmentation of an occlusive CS venogram: from an XA frame to the labelled
//! coronary-sinus branch tree the implanter navigates.
//!
//! Stages, each a module that can be run and tested on its own:
//! 1. [`frame_select`]: the best-opacified frame of a run (vessel energy per frame);
//! 2. [`enhance`]: white top-hat background suppression and multi-scale Hessian
//!    vesselness (Frangi, Jerman) over radii 1-12 px (at a 512 matrix); [`line`](mod@line): an
//!    oriented line detector for the one-pixel twigs the Hessian loses in noise;
//! 3. [`threshold`] and this module: hysteresis thresholds chosen from the image, removal
//!    of what is not contrast-filled vein (catheter, leads, wires, ribs, diaphragm edge);
//! 4. [`skeleton`] and [`graph`]: centerlines, nodes, spur pruning, loop breaking, rooting at
//!    the CS ostium; `junction`: a side branch joined where its axis meets its parent's;
//! 5. labels and measurements, giving a [`tree::BranchTree`].

pub mod balloon;
mod bridge;
mod calibre;
mod crossing;
pub mod edit;
pub mod enhance;
pub mod frame_select;
mod geodesic;
pub mod graph;
mod groove;
mod hairpin;
pub mod image;
pub(crate) mod junction;
mod label;
pub mod line;
pub mod memory;
mod overlap;
pub mod overlay;
mod pipeline;
mod profile;
pub mod resolution;
mod shift;
pub mod simd;
pub mod skeleton;
pub mod temporal;
pub mod threshold;
mod tip;
pub mod tree;

pub use enhance::{Enhanced, Scales, VesselnessMeasure};
pub use frame_select::{FrameSelection, select_frame};
pub use image::{ImageF32, Mask};
pub use label::apical_direction;
pub use pipeline::{
    FrameChoice, RemovedKind, RemovedStructure, SegmentParams, Segmentation, StageTimings, segment_cine, segment_frame,
    segment_run,
};
pub use temporal::PlateauFrame;
pub use tree::{BranchTree, NodeKind, TreeBranch, TreeDocument, TreeNode, TreeSource};

/// Why a frame cannot be segmented.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SegmentError {
    /// The requested frame is not in the run.
    #[error("frame {frame} is out of range: the run has {count} frame(s) (0-based)")]
    FrameOutOfRange {
        /// Requested frame.
        frame: u32,
        /// Frames in the run.
        count: u32,
    },
    /// The image is too small to hold a vessel tree.
    #[error("the image is {columns}x{rows} pixels; segmentation needs at least {min}x{min}")]
    ImageTooSmall {
        /// Rows.
        rows: u32,
        /// Columns.
        columns: u32,
        /// Smallest accepted side.
        min: u32,
    },
    /// The seed point is outside the image.
    #[error("seed ({x}, {y}) is outside the {columns}x{rows} image")]
    SeedOutsideImage {
        /// Seed column.
        x: f64,
        /// Seed row.
        y: f64,
        /// Rows.
        rows: u32,
        /// Columns.
        columns: u32,
    },
    /// A given vessel mask ([`SegmentParams::vessel_mask`]) is not the frame's size.
    #[error("the vessel mask is {mask_columns}x{mask_rows} pixels; the frame is {columns}x{rows}")]
    MaskSize {
        /// Mask columns.
        mask_columns: usize,
        /// Mask rows.
        mask_rows: usize,
        /// Frame columns.
        columns: u32,
        /// Frame rows.
        rows: u32,
    },
    /// An OpenCV call failed.
    #[error("OpenCV failed in {step}: {message}")]
    OpenCv {
        /// The pipeline step.
        step: &'static str,
        /// OpenCV's message.
        message: String,
    },
}
