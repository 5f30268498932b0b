//! The command log: every command, result and safety event as one JSON line with its time
//! and site, flushed line by line, so that nothing measured is lost when the app or the
//! device closes mid-test. A failed write is reported on the log channel and never stops
//! pacing or testing.

use std::io::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::protocol::{Command, DeviceError, Event, Reply};

/// An append-only JSON-lines log.
#[derive(Debug)]
pub struct CommandLog {
    file: std::fs::File,
    failed: bool,
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    /// Wall-clock time, seconds since the Unix epoch.
    wall_time_s: f64,
    /// Time on the device or session clock, ms.
    t_ms: f64,
    site: Option<&'a str>,
    what: &'a str,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct CommandBody<'a> {
    command: &'a Command,
    result: &'a Result<Reply, DeviceError>,
}

#[derive(Serialize)]
struct SafetyBody<'a> {
    event: &'a Event,
}

impl CommandLog {
    /// Opens (appending to) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file, failed: false })
    }

    /// Writes one entry of any serialisable body.
    pub fn entry<T: Serialize>(&mut self, t_ms: f64, site: Option<&str>, what: &str, body: T) {
        let wall_time_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let line = Line { wall_time_s, t_ms, site, what, body };
        let written = serde_json::to_vec(&line).map_err(std::io::Error::other).and_then(|mut bytes| {
            bytes.push(b'\n');
            self.file.write_all(&bytes)?;
            self.file.flush()
        });
        match written {
            Ok(()) => self.failed = false,
            Err(e) if !self.failed => {
                self.failed = true;
                tracing::error!("command log: cannot write ({e}); entries are being lost");
            }
            Err(_) => {}
        }
    }

    /// Logs a command and its result.
    pub fn record(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<Reply, DeviceError>,
    ) {
        self.entry(t_ms, site, who, CommandBody { command, result });
    }

    /// Logs a safety event.
    pub fn safety(&mut self, t_ms: f64, site: Option<&str>, event: &Event) {
        self.entry(t_ms, site, "safety", SafetyBody { event });
    }
}

/// Where a test session writes what it did: the command log, a recording, or both.
pub trait Journal {
    /// A command and its result.
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<Reply, DeviceError>,
    );
    /// An event the session received (beats, EGM, programs, safe pacing).
    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &Event);
}

impl Journal for CommandLog {
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<Reply, DeviceError>,
    ) {
        self.record(t_ms, site, who, command, result);
    }

    /// Only safety events go to the command log (beats and EGM are the recording's).
    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &Event) {
        if matches!(event, Event::SafePacing { .. }) {
            self.safety(t_ms, site, event);
        }
    }
}

/// Two journals written together.
impl<A: Journal, B: Journal> Journal for (A, B) {
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<Reply, DeviceError>,
    ) {
        self.0.command(t_ms, site, who, command, result);
        self.1.command(t_ms, site, who, command, result);
    }

    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &Event) {
        self.0.event(t_ms, site, event);
        self.1.event(t_ms, site, event);
    }
}

/// A journal that may be absent.
impl<J: Journal> Journal for Option<J> {
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<Reply, DeviceError>,
    ) {
        if let Some(j) = self {
            j.command(t_ms, site, who, command, result);
        }
    }

    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &Event) {
        if let Some(j) = self {
            j.event(t_ms, site, event);
        }
    }
}
