//! The device-link wire protocol (docs/device-link-protocol.md), version 1: length-delimited
//! frames (a 4-byte big-endian length, then that many bytes of JSON) carrying a hello /
//! welcome handshake with the protocol version, requests with ids and their responses,
//! heartbeats both ways, and the device's event stream (beats, EGM, safety). Errors are typed
//! values on the wire, never free text alone.

use serde::{Deserialize, Serialize};

use crate::heart::Fault;
use crate::lead::{LeadModel, Vector};

/// Protocol name sent in the handshake.
pub const PROTOCOL_NAME: &str = "csnav-device-link";
/// The version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest frame accepted, bytes (a second of EGM at 1 kHz on three channels is ~60 kB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Pacing mode of the analyzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacingMode {
    /// LV pacing only (the LV threshold test; no RV backup, as programmers do it).
    LvOnly,
    /// LV pacing with an RV safety pace 80 ms after an LV pace that did not capture.
    LvWithRvBackup,
    /// RV demand pacing: the safe and the emergency program.
    Vvi,
}

/// What the analyzer delivers, beat after beat.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Mode.
    pub mode: PacingMode,
    /// LV vector (required for the LV modes, ignored in VVI).
    pub vector: Option<Vector>,
    /// Output amplitude, volts.
    pub amplitude_volts: f64,
    /// Pulse width, ms.
    pub pulse_width_ms: f64,
    /// Pacing rate, beats per minute.
    pub rate_bpm: f64,
}

/// A band of the amplitude step table: values from `from_volts` to `to_volts` in `step_volts`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepBand {
    /// First value, volts.
    pub from_volts: f64,
    /// Last value, volts.
    pub to_volts: f64,
    /// Step, volts.
    pub step_volts: f64,
}

/// The analyzer's hard output limits and step tables (configured at the device; a request
/// outside them is refused, and the delivered output is clamped to them whatever happens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputLimits {
    /// Amplitude steps, ascending bands.
    pub amplitude_bands: Vec<StepBand>,
    /// The most the analyzer will ever deliver, volts (at most the table's top).
    pub max_amplitude_volts: f64,
    /// Pulse widths offered: from, to, step, ms.
    pub pulse_width_ms: (f64, f64, f64),
    /// Rates offered, bpm (from, to).
    pub rate_bpm: (f64, f64),
}

impl Default for OutputLimits {
    /// 0.1-5.0 V in 0.1 V steps, 5.5-10 V in 0.5 V steps; 0.1-1.5 ms in 0.1 ms; 30-150 bpm.
    fn default() -> Self {
        Self {
            amplitude_bands: vec![
                StepBand { from_volts: 0.1, to_volts: 5.0, step_volts: 0.1 },
                StepBand { from_volts: 5.5, to_volts: 10.0, step_volts: 0.5 },
            ],
            max_amplitude_volts: 10.0,
            pulse_width_ms: (0.1, 1.5, 0.1),
            rate_bpm: (30.0, 150.0),
        }
    }
}

/// Values closer than this to a table entry are that entry (JSON decimals).
const ON_TABLE_TOLERANCE: f64 = 1e-6;

impl OutputLimits {
    /// Every amplitude the table offers, ascending, up to the maximum.
    #[must_use]
    pub fn amplitudes_volts(&self) -> Vec<f64> {
        self.amplitude_bands
            .iter()
            .flat_map(|band| steps(band.from_volts, band.to_volts, band.step_volts))
            .filter(|v| *v <= self.max_amplitude_volts + ON_TABLE_TOLERANCE)
            .collect()
    }

    /// Every pulse width offered, ascending.
    #[must_use]
    pub fn pulse_widths_ms(&self) -> Vec<f64> {
        let (from, to, step) = self.pulse_width_ms;
        steps(from, to, step).collect()
    }

    /// The next amplitude below `volts` on the table, if any.
    #[must_use]
    pub fn step_down_volts(&self, volts: f64) -> Option<f64> {
        self.amplitudes_volts().into_iter().rev().find(|v| *v < volts - ON_TABLE_TOLERANCE)
    }

    /// The next amplitude above `volts` on the table, if any.
    #[must_use]
    pub fn step_up_volts(&self, volts: f64) -> Option<f64> {
        self.amplitudes_volts().into_iter().find(|v| *v > volts + ON_TABLE_TOLERANCE)
    }

    /// Checks a program against the limits and tables.
    pub fn check(&self, p: &Program) -> Result<(), DeviceError> {
        let finite = [p.amplitude_volts, p.pulse_width_ms, p.rate_bpm].iter().all(|v| v.is_finite());
        if !finite {
            return Err(DeviceError::Malformed { reason: "a program value is not a finite number".into() });
        }
        let amplitudes = self.amplitudes_volts();
        let lowest = amplitudes.first().copied().unwrap_or(0.0);
        on_table("amplitude_volts", p.amplitude_volts, &amplitudes, (lowest, self.max_amplitude_volts))?;
        on_table(
            "pulse_width_ms",
            p.pulse_width_ms,
            &self.pulse_widths_ms(),
            (self.pulse_width_ms.0, self.pulse_width_ms.1),
        )?;
        if p.rate_bpm < self.rate_bpm.0 || p.rate_bpm > self.rate_bpm.1 {
            return Err(DeviceError::OutOfRange {
                field: "rate_bpm".into(),
                value: p.rate_bpm,
                min: self.rate_bpm.0,
                max: self.rate_bpm.1,
            });
        }
        if p.mode != PacingMode::Vvi && p.vector.is_none() {
            return Err(DeviceError::Malformed { reason: "an LV pacing mode needs a vector".into() });
        }
        Ok(())
    }
}

/// `from`, `from + step`, ... up to `to`, rounded to 1/1000 so table values compare exactly.
fn steps(from: f64, to: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = ((to - from) / step).round().max(0.0) as i64;
    (0..=n).map(move |k| ((from + k as f64 * step) * 1000.0).round() / 1000.0)
}

/// Checks that `value` lies within `range` and on `table` (within the JSON tolerance).
fn on_table(field: &str, value: f64, table: &[f64], range: (f64, f64)) -> Result<(), DeviceError> {
    let (min, max) = range;
    if value < min - ON_TABLE_TOLERANCE || value > max + ON_TABLE_TOLERANCE {
        return Err(DeviceError::OutOfRange { field: field.into(), value, min, max });
    }
    if !table.iter().any(|v| (v - value).abs() < ON_TABLE_TOLERANCE) {
        let nearest = table.iter().copied().min_by(|a, b| (a - value).abs().total_cmp(&(b - value).abs()));
        return Err(DeviceError::NotOnStepTable { field: field.into(), value, nearest: nearest.unwrap_or(min) });
    }
    Ok(())
}

/// The role a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Commands the analyzer (one client at a time).
    Control,
    /// Reads events only.
    Observe,
}

/// A request to the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// The lead is at a new site: its model and electrode positions (patient mm, distal first).
    PlaceLead {
        /// Lead model.
        lead: LeadModel,
        /// Electrode positions.
        electrodes_in_patient_mm: [[f64; 3]; 4],
        /// Name of the site, for the log.
        site: String,
    },
    /// Deliver this program (a test step) until told otherwise.
    Program {
        /// The program.
        program: Program,
    },
    /// End the running test: back to safe pacing at once.
    Stop,
    /// Emergency VVI pacing at the configured emergency output.
    EmergencyVvi,
    /// Measure the pacing impedance of a vector.
    MeasureImpedance {
        /// The vector.
        vector: Vector,
    },
    /// Measure the R wave on a vector's cathode.
    MeasureRWave {
        /// The vector.
        vector: Vector,
    },
    /// Measure QLV on a vector's cathode (QRS onset to local LV activation).
    MeasureQlv {
        /// The vector.
        vector: Vector,
    },
    /// The device model's state.
    Status,
    /// Device model only: inject (or clear) a lead fault.
    InjectFault {
        /// The fault, or `None` to clear.
        fault: Option<Fault>,
    },
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ack,
    /// Pacing impedance.
    Impedance {
        /// The vector.
        vector: Vector,
        /// Ohm.
        ohm: f64,
    },
    /// R-wave amplitude.
    RWave {
        /// The vector.
        vector: Vector,
        /// mV.
        mv: f64,
    },
    /// QLV.
    Qlv {
        /// The vector.
        vector: Vector,
        /// QRS onset to local LV activation, ms.
        qlv_ms: f64,
        /// Surface QRS duration, ms.
        qrs_duration_ms: f64,
    },
    /// State.
    Status(DeviceStatus),
}

/// The device's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// What it delivers now.
    pub program: Program,
    /// Whether that is the safe (or emergency) program rather than a test.
    pub safe: bool,
    /// The lead placed, if any.
    pub lead: Option<LeadModel>,
    /// The site's name.
    pub site: Option<String>,
    /// Beats delivered since start.
    pub beats: u64,
}

/// Why the device went to safe pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafetyReason {
    /// The controlling client asked (stop).
    StopRequested,
    /// The controlling client's link dropped.
    LinkDropped,
    /// The controlling client missed its heartbeats.
    HeartbeatMissed,
    /// The controlling client said goodbye.
    ClientLeft,
    /// Emergency VVI was asked for.
    Emergency,
    /// The lead was moved: any test at the old site is over.
    LeadMoved,
}

/// How an LV pace ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    /// The LV pace captured (seen by LV-to-RV conduction and the evoked response).
    Captured,
    /// It did not: no evoked response, the RV activated late (intrinsically or by backup).
    Lost,
    /// No LV pace this beat (VVI).
    NotPaced,
}

/// One beat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    /// Beat number since the device started.
    pub index: u64,
    /// Time of the pace, ms on the device clock.
    pub t_ms: f64,
    /// Mode.
    pub mode: PacingMode,
    /// LV vector paced (None in VVI).
    pub vector: Option<Vector>,
    /// Amplitude delivered, volts.
    pub amplitude_volts: f64,
    /// Pulse width delivered, ms.
    pub pulse_width_ms: f64,
    /// LV capture.
    pub capture: Capture,
    /// Whether an RV pace was delivered (backup after loss, or VVI).
    pub rv_paced: bool,
    /// Whether the pace stimulated the phrenic nerve (diaphragm twitch).
    pub phrenic: bool,
    /// Why the capture call was made, for the display.
    pub reason: String,
}

/// A stretch of electrograms, one beat long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EgmChunk {
    /// Time of the first sample, ms on the device clock.
    pub t_ms: f64,
    /// Samples per second.
    pub sample_rate_hz: f64,
    /// LV tip (cathode) unipolar EGM, mV.
    pub lv_tip_mv: Vec<f32>,
    /// LV ring (next electrode) EGM, mV.
    pub lv_ring_mv: Vec<f32>,
    /// Surface ECG lead, mV.
    pub ecg_mv: Vec<f32>,
}

/// Something the device reports without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A beat.
    Beat(Beat),
    /// Its electrograms.
    Egm(EgmChunk),
    /// A new program is delivered.
    ProgramApplied {
        /// The program.
        program: Program,
    },
    /// The device went to safe pacing.
    SafePacing {
        /// Why.
        reason: SafetyReason,
        /// What it delivers now.
        program: Program,
    },
}

/// A typed error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum DeviceError {
    /// The peer speaks another protocol version.
    #[error("protocol version {offered} is not supported (this device speaks {supported})")]
    UnsupportedVersion {
        /// Offered.
        offered: u32,
        /// Supported.
        supported: u32,
    },
    /// Another client controls the device.
    #[error("another client controls the device; connect as an observer or wait")]
    ControlHeld,
    /// An observer sent a command.
    #[error("this connection is read-only (observer)")]
    ReadOnly,
    /// A value is outside the device's limits.
    #[error("{field} {value} is outside {min}-{max}")]
    OutOfRange {
        /// Which value.
        field: String,
        /// The value asked for.
        value: f64,
        /// Lowest allowed.
        min: f64,
        /// Highest allowed.
        max: f64,
    },
    /// A value within the limits but not on the step table.
    #[error("{field} {value} is not on the step table (nearest {nearest})")]
    NotOnStepTable {
        /// Which value.
        field: String,
        /// The value asked for.
        value: f64,
        /// The nearest offered.
        nearest: f64,
    },
    /// The command needs a placed lead.
    #[error("no lead placed: send place_lead first")]
    NoLead,
    /// The vector is not one of the placed lead's.
    #[error("vector not offered by the placed lead")]
    BadVector,
    /// A frame could not be understood.
    #[error("malformed: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// A frame is larger than the limit.
    #[error("frame of {bytes} bytes is over the {max} byte limit")]
    FrameTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A frame arrived out of order (a request before the handshake...).
    #[error("protocol: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
}

/// What the device says about itself in the welcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Model name ("csnav device model").
    pub model: String,
    /// Whether it is a simulator (always true for csnav's model).
    pub simulated: bool,
    /// Output limits and step tables.
    pub limits: OutputLimits,
    /// The safe program it returns to.
    pub safe_program: Program,
    /// The heartbeat interval the client must keep, ms; silence for 3 intervals is a loss.
    pub heartbeat_interval_ms: u64,
    /// EGM sample rate, Hz.
    pub egm_rate_hz: f64,
    /// Wall-clock time of the device clock's zero, ms since the Unix epoch (event times are
    /// ms on the device clock; with this a client on a synchronised clock measures latency).
    pub clock_origin_unix_ms: f64,
}

/// Frames from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame: who and which version.
    Hello {
        /// Must be [`PROTOCOL_NAME`].
        protocol: String,
        /// The version the client speaks.
        version: u32,
        /// Client name, for the log.
        client: String,
        /// Role asked for.
        role: Role,
    },
    /// A request.
    Request {
        /// Id chosen by the client, echoed in the response.
        id: u64,
        /// What to do.
        command: Command,
    },
    /// I am alive.
    Heartbeat {
        /// Sequence number.
        seq: u64,
    },
    /// Leaving (the device goes to safe pacing if this client controlled it).
    Goodbye,
}

/// Frames from the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The handshake is accepted.
    Welcome {
        /// Version in use.
        version: u32,
        /// Role granted.
        role: Role,
        /// The device.
        device: DeviceInfo,
    },
    /// The handshake is refused; the device closes the connection.
    Refused {
        /// Why.
        error: DeviceError,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// Its result.
        result: Result<Reply, DeviceError>,
    },
    /// An event.
    Event(Event),
    /// I am alive.
    Heartbeat {
        /// Sequence number.
        seq: u64,
    },
    /// The device could not read a frame (the connection closes after it when fatal).
    Error {
        /// What was wrong.
        error: DeviceError,
    },
}

/// Encodes a frame: 4-byte big-endian length, then the JSON.
pub fn encode_frame<T: Serialize>(frame: &T) -> Result<Vec<u8>, DeviceError> {
    let json =
        serde_json::to_vec(frame).map_err(|e| DeviceError::Malformed { reason: format!("cannot encode: {e}") })?;
    if json.len() > MAX_FRAME_BYTES {
        return Err(DeviceError::FrameTooLarge { bytes: json.len(), max: MAX_FRAME_BYTES });
    }
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// Sans-IO frame decoder: feed bytes, take frames. A length over the limit is refused from
/// the prefix alone (nothing is buffered for it) and the stream is then unusable.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    failed: bool,
}

impl FrameDecoder {
    /// Appends received bytes (dropped after a fatal error).
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next frame: `Ok(None)` when more bytes are needed; `Err((error, fatal))`.
    pub fn next_frame<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, (DeviceError, bool)> {
        if self.failed {
            return Err((DeviceError::Protocol { reason: "the stream already failed".into() }, true));
        }
        if self.buffer.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]]) as usize;
        if len > MAX_FRAME_BYTES {
            self.failed = true;
            self.buffer = Vec::new();
            return Err((DeviceError::FrameTooLarge { bytes: len, max: MAX_FRAME_BYTES }, true));
        }
        if self.buffer.len() < 4 + len {
            return Ok(None);
        }
        let parsed = serde_json::from_slice::<T>(&self.buffer[4..4 + len]);
        self.buffer.drain(..4 + len);
        parsed.map(Some).map_err(|e| (DeviceError::Malformed { reason: e.to_string() }, false))
    }

    /// Bytes buffered.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Pole;

    fn lv(amplitude_volts: f64) -> Program {
        Program {
            mode: PacingMode::LvOnly,
            vector: Some(Vector { cathode: 0, anode: Pole::RvCoil }),
            amplitude_volts,
            pulse_width_ms: 0.5,
            rate_bpm: 90.0,
        }
    }

    #[test]
    fn the_step_table_and_limits_are_enforced_with_typed_errors() {
        let limits = OutputLimits::default();
        let table = limits.amplitudes_volts();
        assert_eq!(table.len(), 50 + 10);
        assert!((table[0] - 0.1).abs() < 1e-12 && (table[table.len() - 1] - 10.0).abs() < 1e-12);
        assert!(limits.check(&lv(2.3)).is_ok());
        assert!(limits.check(&lv(7.5)).is_ok());
        assert!(matches!(limits.check(&lv(12.0)), Err(DeviceError::OutOfRange { .. })));
        assert!(
            matches!(limits.check(&lv(7.3)), Err(DeviceError::NotOnStepTable { nearest, .. }) if (nearest - 7.5).abs() < 1e-9)
        );
        assert!(matches!(limits.check(&lv(f64::NAN)), Err(DeviceError::Malformed { .. })));
        assert!(matches!(
            limits.check(&Program { pulse_width_ms: 2.0, ..lv(1.0) }),
            Err(DeviceError::OutOfRange { .. })
        ));
        assert!(matches!(limits.check(&Program { rate_bpm: 200.0, ..lv(1.0) }), Err(DeviceError::OutOfRange { .. })));
        // A device configured to 6 V refuses 7 V though the table has it.
        let capped = OutputLimits { max_amplitude_volts: 6.0, ..OutputLimits::default() };
        assert!(
            matches!(capped.check(&lv(7.0)), Err(DeviceError::OutOfRange { max, .. }) if (max - 6.0).abs() < 1e-12)
        );
        assert_eq!(limits.step_down_volts(3.5).map(|v| (v * 10.0).round()), Some(34.0));
        assert_eq!(limits.step_up_volts(5.0).map(|v| (v * 10.0).round()), Some(55.0));
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_named() {
        let frame = ClientFrame::Request { id: 7, command: Command::Program { program: lv(1.5) } };
        let bytes = encode_frame(&frame).unwrap();
        let mut d = FrameDecoder::default();
        for b in &bytes {
            assert_eq!(d.next_frame::<ClientFrame>().unwrap(), None);
            d.feed(&[*b]);
        }
        assert_eq!(d.next_frame::<ClientFrame>().unwrap(), Some(frame));
        // Malformed JSON: rejected, the stream goes on.
        let mut bad = vec![0, 0, 0, 5];
        bad.extend_from_slice(b"{nope");
        d.feed(&bad);
        d.feed(&encode_frame(&ClientFrame::Heartbeat { seq: 1 }).unwrap());
        assert!(matches!(d.next_frame::<ClientFrame>(), Err((DeviceError::Malformed { .. }, false))));
        assert_eq!(d.next_frame::<ClientFrame>().unwrap(), Some(ClientFrame::Heartbeat { seq: 1 }));
        // Oversized: fatal from the prefix.
        d.feed(&(u32::MAX).to_be_bytes());
        assert!(matches!(d.next_frame::<ClientFrame>(), Err((DeviceError::FrameTooLarge { .. }, true))));
        assert_eq!(d.buffered(), 0);
        // The wire form is readable JSON with tags.
        let json = String::from_utf8(
            encode_frame(&ServerFrame::Response { id: 3, result: Err(DeviceError::ControlHeld) }).unwrap()[4..]
                .to_vec(),
        )
        .unwrap();
        assert_eq!(json, r#"{"type":"response","id":3,"result":{"Err":{"error":"control_held"}}}"#);
    }
}
