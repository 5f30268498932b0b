//! Coronary-sinus venogram: reading X-ray angiography (XA) DICOM runs, the C-arm geometry
//! they were acquired with, and (in later issues) vessel segmentation and the labelled
//! branch tree.
//!
//! The layers follow dicom-rs: [`ingest`] decodes a file into a [`Cine`] of frames in the
//! MONOCHROME2 convention; [`acquisition`] reads the positioner, timing and identity
//! attributes as typed values; [`geometry`] turns them into a C-arm projection with every
//! substituted default reported. Presentation (window/level) is a later, separate stage.

pub mod acquisition;
pub mod atlas;
pub mod cine;
pub mod export;
pub mod geometry;
pub mod ingest;
pub mod labels;
pub mod reconstruct;
pub mod segment;
pub mod test_pattern;
pub mod transfer_syntax;
pub mod xa_writer;

mod attributes;
mod frames;
mod jpeg_dct;
mod jpeg_lossless;
mod jpeg_markers;
mod pixels;
mod rle;
mod structure;

pub use acquisition::{CineTiming, PositionerGeometry, SeriesIdentity, XaAcquisition};
pub use cine::{Cine, FrameView, LossyCompression, PhotometricInterpretation, PixelFormat, Rescale, VoiWindow};
pub use geometry::{CArmProjection, GeometryDefaults, GeometryOverrides, ResolvedGeometry, Sourced, ValueSource};
pub use ingest::{IngestError, XaRun, read_xa_bytes, read_xa_file};
pub use labels::VeinLabel;
pub use pixels::error_chain;
pub use transfer_syntax::TransferSyntaxInfo;
