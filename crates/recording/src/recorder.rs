//! The recorder: a bounded queue in front of a writer thread that turns csnav records into
//! Rerun archetypes on the entity tree of [`crate::entity`] and streams them to an `.rrd`
//! file. Sending never blocks (a full queue drops the record and counts it by kind; the
//! writer says in the recording how much of what was dropped), and the file is flushed at
//! least every [`RecorderConfig::flush_interval`], so a killed process leaves a readable
//! recording up to the last flush.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::record::{Record, RecordKind, SessionInfo};
use crate::write::Writer;

/// Errors of the recorder.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be created.
    #[error("cannot create the recording {path}: {reason}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The writer failed (disk full, file removed...).
    #[error("the recording {path} could not be written to its end: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How the recorder queues and flushes.
#[derive(Debug, Clone, Copy)]
pub struct RecorderConfig {
    /// Records held between the live code and the writer; beyond it they are dropped.
    pub queue_capacity: usize,
    /// Longest time between two flushes to the file.
    pub flush_interval: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        // 4096 records: 10 s of 4 tools at 100 Hz, or 4 s of 512x512 frames (16 MiB) at 15 fps.
        Self { queue_capacity: 4096, flush_interval: Duration::from_secs(1) }
    }
}

/// A record with the wall time it was sent at.
pub(crate) struct Envelope {
    /// ns since the Unix epoch.
    pub wall_ns: i64,
    pub record: Record,
}

/// Counters shared by the senders and the writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent: [AtomicU64; RecordKind::ALL.len()],
    pub dropped: [AtomicU64; RecordKind::ALL.len()],
    /// Set by `finish`: the writer drains what is queued and stops; later sends are dropped.
    pub closing: AtomicBool,
}

/// Counts per record kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindCounts(pub Vec<(RecordKind, u64)>);

impl KindCounts {
    fn from(counters: &[AtomicU64; RecordKind::ALL.len()]) -> Self {
        Self(
            RecordKind::ALL
                .iter()
                .map(|k| (*k, counters[k.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// The count of one kind.
    #[must_use]
    pub fn get(&self, kind: RecordKind) -> u64 {
        self.0.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }

    /// The total.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// "12 tip samples, 3 cine frames".
    #[must_use]
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            return "nothing".to_owned();
        }
        self.0.iter().map(|(k, n)| format!("{n} {}", k.describe())).collect::<Vec<_>>().join(", ")
    }
}

/// What a finished recording holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecorderStats {
    /// The file.
    pub path: PathBuf,
    /// Records accepted, by kind.
    pub sent: KindCounts,
    /// Records dropped because the queue was full, by kind.
    pub dropped: KindCounts,
    /// Flushes to the file.
    pub flushes: u64,
    /// Size of the file, bytes.
    pub file_bytes: u64,
}

/// Current time, ns since the Unix epoch.
pub(crate) fn wall_now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// A cloneable, non-blocking handle to send records from any thread.
#[derive(Clone)]
pub struct RecordSender {
    tx: SyncSender<Envelope>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for RecordSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSender").finish_non_exhaustive()
    }
}

impl RecordSender {
    /// Queues a record stamped with the current wall time; `false` when it was dropped (queue
    /// full, or the recorder gone). Never blocks.
    #[allow(clippy::must_use_candidate, reason = "the loss is counted and reported; callers may go on regardless")]
    pub fn send(&self, record: Record) -> bool {
        self.send_at(wall_now_ns(), record)
    }

    /// Queues a record stamped with `wall_ns` (ns since the Unix epoch): for simulated
    /// sessions that run on their own clock.
    #[allow(clippy::must_use_candidate, reason = "the loss is counted and reported; callers may go on regardless")]
    pub fn send_at(&self, wall_ns: i64, record: Record) -> bool {
        let kind = record.kind().index();
        if self.counters.closing.load(Ordering::Acquire) {
            self.counters.dropped[kind].fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.tx.try_send(Envelope { wall_ns, record }) {
            Ok(()) => {
                self.counters.sent[kind].fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped[kind].fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records dropped so far, by kind.
    #[must_use]
    pub fn dropped(&self) -> KindCounts {
        KindCounts::from(&self.counters.dropped)
    }
}

/// A recording being written.
pub struct Recorder {
    sender: RecordSender,
    thread: Option<std::thread::JoinHandle<Result<u64, String>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates the recording at `path` (replacing a file there) and writes the session's
    /// metadata.
    pub fn create(path: &Path, info: &SessionInfo, config: RecorderConfig) -> Result<Self, RecordError> {
        let create_error = |reason: String| RecordError::Create { path: path.to_owned(), reason };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| create_error(e.to_string()))?;
        }
        // Rerun's own writer reports a failed create only in its log: try it here first.
        std::fs::File::create(path).map_err(|e| create_error(e.to_string()))?;
        let rec = rerun::RecordingStreamBuilder::new("csnav")
            .recording_id(format!("csnav-{}-{}", info.case_pseudonym, info.started_unix_ms))
            .batcher_config(rerun::log::ChunkBatcherConfig {
                flush_tick: Duration::from_millis(200),
                ..rerun::log::ChunkBatcherConfig::DEFAULT
            })
            .save(path)
            .map_err(|e| create_error(e.to_string()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let mut writer = Writer::new(rec);
        // The metadata goes to the file first, so any part of the file that can be read says
        // what it is.
        writer.session(info).and_then(|()| writer.flush()).map_err(create_error)?;
        let thread_counters = counters.clone();
        let flush_interval = config.flush_interval;
        let thread = std::thread::Builder::new()
            .name("csnav-recorder".into())
            .spawn(move || write_loop(writer, &rx, &thread_counters, flush_interval))
            .map_err(|e| create_error(e.to_string()))?;
        Ok(Self { sender: RecordSender { tx, counters }, thread: Some(thread), path: path.to_owned() })
    }

    /// Queues a record (see [`RecordSender::send`]).
    #[allow(clippy::must_use_candidate, reason = "the loss is counted and reported; callers may go on regardless")]
    pub fn send(&self, record: Record) -> bool {
        self.sender.send(record)
    }

    /// A handle for other threads.
    #[must_use]
    pub fn sender(&self) -> RecordSender {
        self.sender.clone()
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything queued, closes the file and says what it holds.
    pub fn finish(mut self) -> Result<RecorderStats, RecordError> {
        self.close()
    }

    fn close(&mut self) -> Result<RecorderStats, RecordError> {
        let counters = self.sender.counters.clone();
        // The writer drains the queue and stops even while other handles are still held.
        counters.closing.store(true, Ordering::Release);
        let (dead_tx, _) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.sender.tx, dead_tx));
        let flushes = match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| RecordError::Write { path: self.path.clone(), reason: "the writer panicked".into() })?
                .map_err(|reason| RecordError::Write { path: self.path.clone(), reason })?,
            None => 0,
        };
        let file_bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(RecorderStats {
            path: self.path.clone(),
            sent: KindCounts::from(&counters.sent),
            dropped: KindCounts::from(&counters.dropped),
            flushes,
            file_bytes,
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some()
            && let Err(e) = self.close()
        {
            tracing::error!("{e}");
        }
    }
}

/// The writer thread: records to archetypes, a flush at least every `flush_interval`, and a
/// note in the recording whenever records were dropped since the last one.
fn write_loop(
    mut writer: Writer,
    rx: &Receiver<Envelope>,
    counters: &Counters,
    flush_interval: Duration,
) -> Result<u64, String> {
    let mut last_flush = Instant::now();
    let mut reported = [0u64; RecordKind::ALL.len()];
    let mut flushes = 0u64;
    let mut failure: Option<String> = None;
    let flush = |writer: &mut Writer, reported: &mut [u64; RecordKind::ALL.len()]| {
        let dropped: Vec<(RecordKind, u64)> = RecordKind::ALL
            .iter()
            .filter_map(|k| {
                let now = counters.dropped[k.index()].load(Ordering::Relaxed);
                let new = now - reported[k.index()];
                reported[k.index()] = now;
                (new > 0).then_some((*k, new))
            })
            .collect();
        if !dropped.is_empty() {
            writer.dropped(wall_now_ns(), &KindCounts(dropped));
        }
        writer.flush()
    };
    loop {
        // Short waits: a finish is noticed within 100 ms even while other handles live.
        let wait = flush_interval.saturating_sub(last_flush.elapsed()).min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(envelope) => {
                if let Err(e) = writer.write(envelope) {
                    // One bad record is reported and skipped; the recording goes on.
                    tracing::error!("recording: {e}");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if counters.closing.load(Ordering::Acquire) {
            while let Ok(envelope) = rx.try_recv() {
                if let Err(e) = writer.write(envelope) {
                    tracing::error!("recording: {e}");
                }
            }
            break;
        }
        if last_flush.elapsed() >= flush_interval {
            if let Err(e) = flush(&mut writer, &mut reported) {
                tracing::error!("recording: flush failed: {e}");
                failure = Some(e);
            }
            flushes += 1;
            last_flush = Instant::now();
        }
    }
    flush(&mut writer, &mut reported)?;
    flushes += 1;
    writer.close()?;
    match failure {
        Some(e) => Err(e),
        None => Ok(flushes),
    }
}

/// A device test session writes its commands, results and events into the recording.
impl device_link::log::Journal for RecordSender {
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &device_link::protocol::Command,
        result: &Result<device_link::protocol::Reply, device_link::protocol::DeviceError>,
    ) {
        self.send(Record::DeviceCommand(Box::new(crate::record::DeviceCommandRecord {
            t_ms,
            site: site.map(str::to_owned),
            who: who.to_owned(),
            command: command.clone(),
            result: result.clone(),
        })));
    }

    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &device_link::protocol::Event) {
        self.send(Record::device_event(t_ms, site, event));
    }
}
