//! Reading a csnav recording back: every chunk of the `.rrd` file, the csnav records in
//! wall-time order, the electrograms, and row counts per entity. Bad files get an error
//! that says what is wrong with them: not a Rerun file, from an unsupported Rerun version,
//! not made by csnav, from an unsupported csnav schema, corrupt at a byte. A recording cut
//! short (a killed session) reads up to its last complete message and says so.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use re_log_encoding::rrd::{CodecError, DecodeError, DecoderApp};
use rerun::external::arrow::array::{Array as _, StringArray};
use rerun::log::{Chunk, LogMsg};

use crate::entity;
use crate::record::{SessionInfo, Stored};

/// The recording format csnav writes and reads.
pub const SCHEMA: &str = "csnav.recording/1";

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be opened.
    #[error("cannot open the recording {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not a Rerun recording at all.
    #[error("{path} is not a Rerun recording (.rrd): {reason}")]
    NotRrd {
        /// The file.
        path: PathBuf,
        /// What the decoder saw.
        reason: String,
    },
    /// A Rerun recording from a version this build cannot read.
    #[error("{path} was written by an unsupported Rerun version: {reason}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The versions.
        reason: String,
    },
    /// Damaged after a readable start.
    #[error("{path} is damaged at byte {at_byte}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Bytes read before the damage.
        at_byte: u64,
        /// What the decoder saw.
        reason: String,
    },
    /// A Rerun recording, but not one csnav made.
    #[error("{path} is a Rerun recording but not a csnav session (no `{}` metadata)", entity::SESSION)]
    NotCsnav {
        /// The file.
        path: PathBuf,
    },
    /// A csnav recording of a schema this build does not know.
    #[error("{path} is a csnav recording of schema {schema:?}; this csnav reads {SCHEMA:?}")]
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// Its schema.
        schema: String,
    },
}

/// One csnav record with its wall time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// ns since the Unix epoch.
    pub wall_ns: i64,
    /// The record.
    pub record: Stored,
}

/// A cine frame's pixels read back ([`read_with_frames`] only).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFrame {
    /// Frame index in the run.
    pub index: u32,
    /// When it was logged, ns since the Unix epoch.
    pub wall_ns: i64,
    /// The samples as logged: `rows * columns` bytes (8-bit) or twice that (16-bit, little-endian).
    pub bytes: Vec<u8>,
}

/// An electrogram sample: wall time (ns) and mV.
pub type EgmSample = (i64, f64);

/// Everything read from a recording.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// The session metadata.
    pub session: Option<SessionInfo>,
    /// csnav records, in wall-time order (ties in file order).
    pub records: Vec<Timed>,
    /// Electrograms per channel (`lv_tip_mv`, `lv_ring_mv`, `ecg_mv`), in time order.
    pub egm: BTreeMap<String, Vec<EgmSample>>,
    /// Frames per run.
    pub frames: BTreeMap<u32, u64>,
    /// The frames' pixels per run, in frame order ([`read_with_frames`] only; empty otherwise).
    pub frame_pixels: BTreeMap<u32, Vec<RecordedFrame>>,
    /// Rows per entity path.
    pub rows_per_entity: BTreeMap<String, u64>,
    /// First and last wall time of any row, ns.
    pub time_range_ns: Option<(i64, i64)>,
    /// Whether the file ends as a finished recording (the writer closed it); `false` for a
    /// session that was killed (everything up to its last flush is still here).
    pub finished: bool,
    /// Bytes at the end that do not make a whole message (a write cut short).
    pub trailing_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Chunks read.
    pub chunks: u64,
}

impl Contents {
    /// Records of one kind, e.g. `contents.of(|r| match r { Stored::Tip(t) => Some(t), _ => None })`.
    pub fn of<'a, T: 'a>(
        &'a self,
        pick: impl Fn(&'a Stored) -> Option<&'a T> + 'a,
    ) -> impl Iterator<Item = (i64, &'a T)> + 'a {
        self.records.iter().filter_map(move |t| pick(&t.record).map(|r| (t.wall_ns, r)))
    }

    /// Duration from the first to the last row, seconds.
    #[must_use]
    pub fn duration_s(&self) -> f64 {
        self.time_range_ns.map_or(0.0, |(a, b)| (b - a) as f64 / 1e9)
    }
}

fn classify(path: &Path, at_byte: u64, e: DecodeError) -> ReadError {
    let path = path.to_owned();
    match e {
        DecodeError::Codec(CodecError::NotAnRrd(inner)) => ReadError::NotRrd { path, reason: inner.to_string() },
        DecodeError::Codec(c @ (CodecError::IncompatibleRerunVersion { .. } | CodecError::OldRrdVersion)) => {
            ReadError::UnsupportedVersion { path, reason: c.to_string() }
        }
        DecodeError::Codec(CodecError::InvalidOptions(o)) if at_byte == 0 => {
            ReadError::UnsupportedVersion { path, reason: o.to_string() }
        }
        other if at_byte == 0 => ReadError::NotRrd { path, reason: other.to_string() },
        other => ReadError::Corrupt { path, at_byte, reason: other.to_string() },
    }
}

/// Reads the recording at `path` (everything but the frames' pixels).
pub fn read(path: &Path) -> Result<Contents, ReadError> {
    read_impl(path, false)
}

/// Reads the recording at `path` with the cine frames' pixels (for showing the runs again).
pub fn read_with_frames(path: &Path) -> Result<Contents, ReadError> {
    read_impl(path, true)
}

fn read_impl(path: &Path, with_frames: bool) -> Result<Contents, ReadError> {
    let file =
        std::fs::File::open(path).map_err(|e| ReadError::Open { path: path.to_owned(), reason: e.to_string() })?;
    let file_bytes = file.metadata().map_or(0, |m| m.len());
    if file_bytes == 0 {
        return Err(ReadError::NotRrd { path: path.to_owned(), reason: "the file is empty".into() });
    }
    let mut messages = DecoderApp::decode_lazy(BufReader::with_capacity(1 << 20, file));
    let mut contents = Contents { file_bytes, ..Contents::default() };
    let mut records: Vec<Timed> = Vec::new();
    loop {
        let at_byte = messages.num_bytes_processed();
        let message = match messages.next() {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(classify(path, at_byte, e)),
        };
        let LogMsg::ArrowMsg(_, arrow) = message else { continue };
        let chunk = Chunk::from_arrow_msg(&arrow).map_err(|e| ReadError::Corrupt {
            path: path.to_owned(),
            at_byte,
            reason: format!("a chunk cannot be read: {e}"),
        })?;
        contents.chunks += 1;
        ingest(&chunk, &mut contents, &mut records, with_frames);
    }
    contents.finished = messages.rrd_manifests().is_ok_and(|m| !m.is_empty());
    contents.trailing_bytes = file_bytes.saturating_sub(messages.num_bytes_processed());
    records.sort_by_key(|t| t.wall_ns);
    contents.records = records;
    for samples in contents.egm.values_mut() {
        samples.sort_by_key(|s| s.0);
    }
    for frames in contents.frame_pixels.values_mut() {
        frames.sort_by_key(|f| (f.index, f.wall_ns));
    }
    let session = contents.records.iter().find_map(|t| match &t.record {
        Stored::Session(s) => Some(s.clone()),
        _ => None,
    });
    match session {
        None if contents.chunks == 0 => Err(ReadError::Corrupt {
            path: path.to_owned(),
            at_byte: 0,
            reason: "no complete chunk in the file".into(),
        }),
        None => Err(ReadError::NotCsnav { path: path.to_owned() }),
        Some(s) if s.schema != SCHEMA => Err(ReadError::UnsupportedSchema { path: path.to_owned(), schema: s.schema }),
        Some(s) => {
            contents.session = Some(s);
            Ok(contents)
        }
    }
}

/// Takes what csnav needs from one chunk.
fn ingest(chunk: &Chunk, contents: &mut Contents, records: &mut Vec<Timed>, with_frames: bool) {
    let path = chunk.entity_path().to_string();
    let path = path.trim_start_matches('/').to_owned();
    let rows = chunk.num_rows() as u64;
    *contents.rows_per_entity.entry(path.clone()).or_default() += rows;
    let wall = rerun::TimelineName::from(entity::WALL_TIME);
    let times: Vec<i64> = if chunk.is_static() {
        vec![0; chunk.num_rows()]
    } else {
        chunk.iter_indices(&wall).map(|(t, _)| t.as_i64()).collect()
    };
    if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max())
        && !chunk.is_static()
    {
        let range = contents.time_range_ns.get_or_insert((*first, *last));
        range.0 = range.0.min(*first);
        range.1 = range.1.max(*last);
    }
    if let Some(run) =
        path.strip_prefix("world/runs/run").and_then(|r| r.strip_suffix("/image")).and_then(|r| r.parse().ok())
    {
        let component = rerun::Image::descriptor_buffer().component;
        let frames = chunk.iter_component_indices(wall, component).count() as u64;
        *contents.frames.entry(run).or_default() += frames;
        if with_frames {
            let cine = rerun::TimelineName::from(entity::CINE_FRAME);
            let pixels = contents.frame_pixels.entry(run).or_default();
            for (((wall_ns, _), (index, _)), buffers) in chunk
                .iter_component_indices(wall, component)
                .zip(chunk.iter_component_indices(cine, component))
                .zip(chunk.iter_slices::<&[u8]>(component))
            {
                if let Some(buffer) = buffers.first() {
                    pixels.push(RecordedFrame {
                        index: u32::try_from(index.as_i64()).unwrap_or(u32::MAX),
                        wall_ns: wall_ns.as_i64(),
                        bytes: buffer.to_vec(),
                    });
                }
            }
        }
    }
    if let Some(channel) = path.strip_prefix("device/egm/") {
        let component = rerun::Scalars::descriptor_scalars().component;
        let samples = contents.egm.entry(channel.to_owned()).or_default();
        for (t, values) in times.iter().zip(chunk.iter_slices::<f64>(component)) {
            samples.extend(values.iter().map(|v| (*t, *v)));
        }
    }
    let component = rerun::ComponentIdentifier::from(entity::RECORD_COMPONENT);
    let Some(list) = chunk.components().get_array(component) else { return };
    let Some(strings) = list.values().as_any().downcast_ref::<StringArray>() else { return };
    let offsets = list.value_offsets();
    for (row, t) in times.iter().enumerate() {
        if list.is_null(row) {
            continue;
        }
        for i in offsets[row]..offsets[row + 1] {
            let json = strings.value(i as usize);
            match serde_json::from_str::<Stored>(json) {
                Ok(record) => records.push(Timed { wall_ns: *t, record }),
                Err(e) => tracing::warn!("{path}: a csnav record cannot be read ({e}); skipped"),
            }
        }
    }
}
