//! Procedure recording and replay for csnav on Rerun's data model.
//!
//! A live or simulated session sends typed [`record::Record`]s to a [`recorder::Recorder`],
//! which never blocks the caller and writes them, on its own thread, to an `.rrd` file as
//! Rerun archetypes on one entity tree ([`entity`], docs/recording.md): the venogram runs
//! with their C-arm cameras, masks and labelled trees, tip samples in 3D and projected into
//! each view, registration, targets, device commands, beats, thresholds and electrograms.
//! [`reader::read`] reads a recording back for `csnav replay` and `csnav record-info`.

pub mod entity;
pub mod pseudonym;
pub mod reader;
pub mod record;
pub mod recorder;
mod write;

pub use reader::{Contents, ReadError, RecordedFrame, SCHEMA, read, read_with_frames};
pub use record::{Record, RecordKind, SessionInfo, SessionMode, Stored};
pub use recorder::{RecordError, RecordSender, Recorder, RecorderConfig, RecorderStats};
