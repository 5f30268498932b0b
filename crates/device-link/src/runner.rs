//! Runs the procedures of [`crate::procedures`] on a live device: sends each step's program,
//! feeds the beats back, and restores safe pacing when done. Anything that ends a test early
//! (the device going safe on its own, a refused program, the link lost, the user stopping)
//! gives [`Run::Incomplete`], never a threshold. Every command and result goes to the
//! command log when one is given.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::client::DeviceClient;
use crate::lead::{LeadModel, Vector};
use crate::log::Journal;
use crate::procedures::{
    PhrenicOutcome, PhrenicTest, StepDownConfig, StepTest, Stepped, ThresholdOutcome, ThresholdTest, margin_ok,
};
use crate::protocol::{Command, Event, Reply};

/// A test that ran to its end, or why it did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Run<T> {
    /// Ran to its end.
    Complete {
        /// The result.
        result: T,
    },
    /// Ended early: no result may be taken from it.
    Incomplete {
        /// Why.
        reason: String,
    },
}

impl<T> Run<T> {
    /// Whether it ran to its end.
    pub fn is_complete(&self) -> bool {
        matches!(self, Self::Complete { .. })
    }

    /// The result of a complete run.
    pub fn complete(&self) -> Option<&T> {
        match self {
            Self::Complete { result } => Some(result),
            Self::Incomplete { .. } => None,
        }
    }
}

/// A live device with its event stream and, optionally, the command log.
pub struct Session<'a> {
    /// The client.
    pub client: &'a DeviceClient,
    /// Its events.
    pub events: &'a mut mpsc::Receiver<Event>,
    /// Where commands, results and events are written (the command log, a recording).
    pub journal: Option<&'a mut dyn Journal>,
    /// The site's name, for the log.
    pub site: String,
    /// Start of the session clock (log times are ms since it).
    pub epoch: tokio::time::Instant,
}

impl Session<'_> {
    /// Sends a command, logging it and its result.
    pub async fn command(&mut self, command: Command) -> Result<Reply, String> {
        let result = self.client.request(command.clone()).await;
        let t_ms = self.ms();
        if let Some(journal) = self.journal.as_deref_mut() {
            let logged = result.clone().map_err(|e| match e {
                crate::client::ClientError::Device(d) => d,
                other => crate::protocol::DeviceError::Protocol { reason: other.to_string() },
            });
            journal.command(t_ms, Some(&self.site), "client", &command, &logged);
        }
        result.map_err(|e| e.to_string())
    }

    fn ms(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1e3
    }

    /// The next device event, written to the journal.
    async fn next_event(&mut self) -> Option<Event> {
        let event = self.events.recv().await?;
        let t_ms = self.ms();
        if let Some(journal) = self.journal.as_deref_mut() {
            journal.event(t_ms, Some(&self.site), &event);
        }
        Some(event)
    }

    /// Runs a stepper to its end.
    async fn step<T: StepTest>(&mut self, test: &mut T) -> Result<(), String> {
        let Some(first) = test.program() else { return Err("nothing to test: the step table is empty".into()) };
        self.command(Command::Program { program: first }).await?;
        // Events from before this program (old beats) are skipped by the test itself.
        while test.outcome().is_none() {
            let Some(event) = self.next_event().await else { return Err("link to the device lost".into()) };
            match event {
                Event::Beat(beat) => {
                    if let Some(next) = test.on_beat(&beat) {
                        self.command(Command::Program { program: next }).await?;
                    }
                }
                Event::SafePacing { reason, .. } => return Err(format!("the device went to safe pacing ({reason:?})")),
                Event::Egm(_) | Event::ProgramApplied { .. } => {}
            }
        }
        Ok(())
    }

    /// Runs a test to its end, restores safe pacing, and says how it went.
    async fn run<T: StepTest>(&mut self, mut test: T) -> Run<T::Outcome>
    where
        T::Outcome: Clone,
    {
        let stepped = self.step(&mut test).await;
        self.finish().await;
        match (stepped, test.outcome()) {
            (Ok(()), Some(outcome)) => Run::Complete { result: outcome.clone() },
            (Err(reason), _) => Run::Incomplete { reason },
            (Ok(()), None) => Run::Incomplete { reason: "the test ended without a result".into() },
        }
    }

    /// Ends a test: safe pacing, and drains the stop's own safety event.
    async fn finish(&mut self) {
        if self.command(Command::Stop).await.is_ok() {
            while let Some(event) = self.next_event().await {
                if matches!(event, Event::SafePacing { .. }) {
                    break;
                }
            }
        }
    }

    /// A capture-threshold test.
    pub async fn threshold(
        &mut self,
        vector: Vector,
        stepped: Stepped,
        start: f64,
        config: StepDownConfig,
    ) -> Run<ThresholdOutcome> {
        let test = ThresholdTest::new(vector, stepped, start, &self.client.info().limits, config);
        self.run(test).await
    }

    /// A phrenic screen and threshold.
    pub async fn phrenic(
        &mut self,
        vector: Vector,
        screen_volts: f64,
        pulse_width_ms: f64,
        beats_per_step: u32,
    ) -> Run<PhrenicOutcome> {
        let screen = screen_volts.min(self.client.info().limits.max_amplitude_volts);
        let test = PhrenicTest::new(vector, screen, pulse_width_ms, beats_per_step, &self.client.info().limits);
        self.run(test).await
    }

    /// Measures impedance, R wave and QLV of a vector.
    pub async fn measure(&mut self, vector: Vector) -> Result<Measurements, String> {
        let Reply::Impedance { ohm, .. } = self.command(Command::MeasureImpedance { vector }).await? else {
            return Err("unexpected reply to an impedance measurement".into());
        };
        let Reply::RWave { mv, .. } = self.command(Command::MeasureRWave { vector }).await? else {
            return Err("unexpected reply to an R-wave measurement".into());
        };
        let Reply::Qlv { qlv_ms, qrs_duration_ms, .. } = self.command(Command::MeasureQlv { vector }).await? else {
            return Err("unexpected reply to a QLV measurement".into());
        };
        Ok(Measurements { impedance_ohm: ohm, r_wave_mv: mv, qlv_ms, qrs_duration_ms })
    }

    /// The full test of every vector of `lead` at the site: measurements, capture threshold
    /// and phrenic test per vector, calling `progress(done, total)` after each. It stops at
    /// the first test cut short (the vectors after it are not in the result).
    pub async fn sweep(
        &mut self,
        lead: LeadModel,
        settings: &SweepSettings,
        mut progress: impl FnMut(usize, usize),
    ) -> Vec<VectorResult> {
        let vectors = lead.vectors();
        let total = vectors.len();
        let mut out = Vec::with_capacity(total);
        for (k, vector) in vectors.into_iter().enumerate() {
            let measurements = self.measure(vector).await;
            let threshold = self
                .threshold(
                    vector,
                    Stepped::Amplitude { pulse_width_ms: settings.pulse_width_ms },
                    settings.start_volts,
                    settings.step_down,
                )
                .await;
            // A test cut short (stopped, link lost, device gone safe) ends the sweep: the
            // situation changed, and no more pulses are delivered on its behalf.
            let cut_short = !threshold.is_complete();
            let phrenic = if cut_short {
                Run::Incomplete { reason: "not run: the capture test was cut short".into() }
            } else {
                self.phrenic(
                    vector,
                    settings.pns_screen_volts,
                    settings.pulse_width_ms,
                    settings.step_down.beats_per_step,
                )
                .await
            };
            let cut_short = cut_short || !phrenic.is_complete();
            let margin_ok = match (threshold.complete(), phrenic.complete()) {
                (Some(ThresholdOutcome::Threshold { value, .. }), Some(p)) => {
                    Some(margin_ok(*value, p, settings.pns_margin))
                }
                _ => None,
            };
            out.push(VectorResult {
                vector,
                name: lead.vector_name(vector),
                measurements: measurements.ok(),
                threshold,
                phrenic,
                margin_ok,
            });
            progress(k + 1, total);
            if cut_short {
                break;
            }
        }
        out
    }
}

/// Impedance, R wave and QLV of one vector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// Pacing impedance, ohm.
    pub impedance_ohm: f64,
    /// R-wave amplitude, mV.
    pub r_wave_mv: f64,
    /// QLV, ms.
    pub qlv_ms: f64,
    /// Surface QRS duration, ms.
    pub qrs_duration_ms: f64,
}

/// One vector's results in a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorResult {
    /// The vector.
    pub vector: Vector,
    /// Its name, e.g. `LV1-RV coil`.
    pub name: String,
    /// Impedance, R wave, QLV (`None` when the measurement failed).
    pub measurements: Option<Measurements>,
    /// Capture threshold.
    pub threshold: Run<ThresholdOutcome>,
    /// Phrenic test.
    pub phrenic: Run<PhrenicOutcome>,
    /// PNS margin met (`None` when either test is incomplete).
    pub margin_ok: Option<bool>,
}

/// How a sweep tests each vector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    /// Capture test start, volts.
    pub start_volts: f64,
    /// Pulse width of all tests, ms.
    pub pulse_width_ms: f64,
    /// Step-down settings (a coarse pass shortens a sweep).
    pub step_down: StepDownConfig,
    /// PNS screen output, volts (capped at the device's maximum).
    pub pns_screen_volts: f64,
    /// Required PNS/capture ratio.
    pub pns_margin: f64,
}

impl Default for SweepSettings {
    /// Start 5 V, 0.5 ms, coarse 0.5 V then 0.1 V, 3 beats per step with loss on 2, PNS screen
    /// at 10 V, margin 2.
    fn default() -> Self {
        Self {
            start_volts: 5.0,
            pulse_width_ms: 0.5,
            step_down: StepDownConfig { coarse_step: Some(0.5), ..StepDownConfig::default() },
            pns_screen_volts: 10.0,
            pns_margin: 2.0,
        }
    }
}

impl SweepSettings {
    /// The time a sweep of `lead` is expected to take, ms: per vector, the coarse steps from
    /// the start to a typical 1.5 V threshold and the fine steps below, and a PNS screen, at
    /// the test rate (a measured Quartet sweep at 90 bpm: 36 s per vector, estimate 31 s;
    /// a vector with PNS takes longer by its step-down). Shown before the sweep starts.
    #[must_use]
    pub fn estimate_ms(&self, lead: LeadModel) -> f64 {
        let typical = 1.5;
        let coarse = self.step_down.coarse_step.unwrap_or(0.1).max(0.1);
        let coarse_steps = ((self.start_volts - typical) / coarse).ceil().max(0.0) + 1.0;
        let fine_steps = if self.step_down.coarse_step.is_some() { (coarse / 0.1).round() } else { 0.0 };
        // Steps of the capture test, the phrenic screen (no PNS is the common case), and a
        // beat lost at each of the test's two program changes into and out of safe pacing.
        let beats = (coarse_steps + fine_steps + 1.0) * f64::from(self.step_down.beats_per_step)
            + f64::from(self.step_down.beats_per_step)
            + 2.0;
        lead.vectors().len() as f64 * beats * 60_000.0 / self.step_down.rate_bpm
    }
}
