//! Tracked tools, sans-IO: the latest sample of each tool taken from OpenIGTLink messages
//! (TRANSFORM per tool, TDATA for several tools, POSITION), its age, and the watchdog that
//! marks a tool stale when its latest sample is older than a limit, so a tip that stopped
//! updating is never shown as current. Only the latest sample per tool is kept: a burst
//! from the tracker overwrites, it never queues.
//!
//! Motion-compensation signals ride in version-2 metadata: `CardiacPhase` and
//! `RespiratoryPhase`, fractions of the cycle in [0, 1) as decimal text.

use std::collections::BTreeMap;

use nalgebra::{Matrix4, Translation3};

use crate::gating::Phase;
use crate::igtl::{Body, Message, Timestamp};

/// Metadata key of the cardiac phase.
pub const CARDIAC_PHASE_KEY: &str = "CardiacPhase";
/// Metadata key of the respiratory phase.
pub const RESPIRATORY_PHASE_KEY: &str = "RespiratoryPhase";
/// Default age after which a tool is stale, ms (ten samples at a slow 50 Hz tracker).
pub const DEFAULT_STALE_AFTER_MS: f64 = 200.0;

/// One sample of one tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSample {
    /// Tool name (the device name, or the TDATA element name).
    pub tool: String,
    /// The sensor's pose in tracker space.
    pub tracker_from_sensor: Matrix4<f64>,
    /// The sender's time stamp (zero when it sent none).
    pub sent: Timestamp,
    /// When it was received, ms on the receiver's clock.
    pub received_ms: f64,
    /// Cardiac/respiratory phase sent with it.
    pub phase: Option<Phase>,
}

/// A tool as shown: its latest sample, that sample's age, and whether it is stale.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolState {
    /// The latest sample.
    pub sample: ToolSample,
    /// Milliseconds since it was received.
    pub age_ms: f64,
    /// Older than the limit: draw as stale, never as current.
    pub stale: bool,
}

/// The latest sample of every tool, with counts of what arrived.
#[derive(Debug, Clone, Default)]
pub struct LatestSamples {
    latest: BTreeMap<String, ToolSample>,
    /// Samples received, all tools.
    pub received: u64,
    /// Samples overwritten before anyone read them (dropped by design: only the latest counts).
    pub superseded: u64,
    unread: BTreeMap<String, bool>,
}

/// The pose carried by a POSITION message.
fn position_matrix(p: &crate::igtl::Position) -> Matrix4<f64> {
    let t = Translation3::new(f64::from(p.position_mm[0]), f64::from(p.position_mm[1]), f64::from(p.position_mm[2]));
    match p.orientation() {
        Some(q) => nalgebra::Isometry3::from_parts(t, q).to_homogeneous(),
        None => t.to_homogeneous(),
    }
}

fn phase_of(message: &Message) -> Option<Phase> {
    let parse = |key| message.meta(key).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| (0.0..1.0).contains(v));
    parse(CARDIAC_PHASE_KEY).map(|cardiac| Phase { cardiac, respiratory: parse(RESPIRATORY_PHASE_KEY) })
}

impl LatestSamples {
    /// Takes the tool samples a message carries (none for other types); returns how many.
    pub fn ingest(&mut self, message: &Message, received_ms: f64) -> usize {
        self.ingest_with(message, received_ms, |_| {})
    }

    /// [`Self::ingest`], calling `each` with every sample taken.
    pub fn ingest_with(&mut self, message: &Message, received_ms: f64, mut each: impl FnMut(&ToolSample)) -> usize {
        let phase = phase_of(message);
        let sample = |tool: &str, tracker_from_sensor: Matrix4<f64>| ToolSample {
            tool: tool.to_owned(),
            tracker_from_sensor,
            sent: message.timestamp,
            received_ms,
            phase,
        };
        let samples: Vec<ToolSample> = match &message.body {
            Body::Transform(t) => vec![sample(message.device_name.as_str(), t.to_matrix())],
            Body::Position(p) => vec![sample(message.device_name.as_str(), position_matrix(p))],
            Body::TrackingData(elements) => {
                elements.iter().map(|e| sample(e.name.as_str(), e.transform.to_matrix())).collect()
            }
            _ => Vec::new(),
        };
        let n = samples.len();
        for s in samples {
            if s.tracker_from_sensor.iter().any(|v| !v.is_finite()) {
                continue;
            }
            self.received += 1;
            each(&s);
            if self.unread.insert(s.tool.clone(), true) == Some(true) {
                self.superseded += 1;
            }
            self.latest.insert(s.tool.clone(), s);
        }
        n
    }

    /// Every tool's state at `now_ms`, stale past `stale_after_ms`; marks them read.
    pub fn states(&mut self, now_ms: f64, stale_after_ms: f64) -> Vec<ToolState> {
        self.unread.values_mut().for_each(|u| *u = false);
        self.latest
            .values()
            .map(|s| {
                let age_ms = (now_ms - s.received_ms).max(0.0);
                ToolState { sample: s.clone(), age_ms, stale: age_ms > stale_after_ms }
            })
            .collect()
    }

    /// The earliest time after `after_ms` at which a tool now current turns stale, ms (a
    /// replay or a display checks then rather than at the next sample).
    #[must_use]
    pub fn next_stale_ms(&self, after_ms: f64, stale_after_ms: f64) -> Option<f64> {
        self.latest.values().map(|s| s.received_ms + stale_after_ms).filter(|t| *t > after_ms).min_by(f64::total_cmp)
    }

    /// The latest sample of one tool.
    #[must_use]
    pub fn get(&self, tool: &str) -> Option<&ToolSample> {
        self.latest.get(tool)
    }

    /// Number of tools seen.
    #[must_use]
    pub fn tool_count(&self) -> usize {
        self.latest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::igtl::{DeviceName, FixedName, HeaderVersion, MetaEntry, TrackingElement, TrackingKind, Transform};

    fn transform_at(x: f32) -> Transform {
        let mut t = Transform::IDENTITY;
        t.0[9] = x;
        t
    }

    #[test]
    fn only_the_latest_sample_per_tool_is_kept_and_old_ones_go_stale() {
        let mut s = LatestSamples::default();
        let wire = |x| Message::new(DeviceName::new("Guidewire").unwrap(), Body::Transform(transform_at(x)));
        for k in 0..100 {
            s.ingest(&wire(k as f32), f64::from(k));
        }
        let tdata = Message::new(
            DeviceName::new("Tracker").unwrap(),
            Body::TrackingData(vec![
                TrackingElement {
                    name: FixedName::new("Lead").unwrap(),
                    kind: TrackingKind::Instrument6D,
                    transform: transform_at(5.0),
                },
                TrackingElement {
                    name: FixedName::new("Ref").unwrap(),
                    kind: TrackingKind::Instrument6D,
                    transform: transform_at(6.0),
                },
            ]),
        );
        assert_eq!(s.ingest(&tdata, 150.0), 2);
        assert_eq!(s.tool_count(), 3);
        assert_eq!(s.received, 102);
        assert_eq!(s.superseded, 99);
        let states = s.states(300.0, DEFAULT_STALE_AFTER_MS);
        let wire_state = states.iter().find(|t| t.sample.tool == "Guidewire").unwrap();
        assert!((wire_state.sample.tracker_from_sensor[(0, 3)] - 99.0).abs() < 1e-9);
        assert!((wire_state.age_ms - 201.0).abs() < 1e-9);
        assert!(wire_state.stale);
        assert!(!states.iter().find(|t| t.sample.tool == "Lead").unwrap().stale);
        // Read: the next sample supersedes nothing.
        s.ingest(&wire(1.0), 301.0);
        assert_eq!(s.superseded, 99);
    }

    #[test]
    fn phases_come_from_metadata() {
        let mut s = LatestSamples::default();
        let m = Message {
            version: HeaderVersion::V2,
            metadata: vec![
                MetaEntry { key: CARDIAC_PHASE_KEY.into(), encoding: 3, value: "0.25".into() },
                MetaEntry { key: RESPIRATORY_PHASE_KEY.into(), encoding: 3, value: "1.5".into() },
            ],
            ..Message::new(DeviceName::new("Lead").unwrap(), Body::Transform(Transform::IDENTITY))
        };
        s.ingest(&m, 0.0);
        assert_eq!(s.get("Lead").unwrap().phase, Some(Phase { cardiac: 0.25, respiratory: None }));
    }
}
