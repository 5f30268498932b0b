//! The tests an implanter runs at a site, as sans-IO state machines fed beat by beat
//! (research-device.md 1.3): they say which program to deliver next and, at the end, the
//! result. [`crate::runner`] drives them over a [`crate::client::DeviceClient`].
//!
//! - Capture threshold: step-down amplitude at a fixed pulse width (start, steps from the
//!   device's table, beats per step, loss declared on k of n beats); the threshold is the last
//!   capturing value. The pulse-width threshold is the same at a fixed amplitude.
//! - Strength-duration (Weiss) from an amplitude and a pulse-width threshold.
//! - Phrenic nerve stimulation: a screen at high output, then a step-down to the lowest
//!   output that still stimulates; the margin check (PNS threshold at least k x capture).

use serde::{Deserialize, Serialize};

use crate::lead::Vector;
use crate::protocol::{Beat, Capture, OutputLimits, PacingMode, Program};

/// Settings of a step-down test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepDownConfig {
    /// Beats delivered at each step.
    pub beats_per_step: u32,
    /// Loss is declared when at least this many of a step's beats lose capture.
    pub losses_for_loss: u32,
    /// Pacing rate during the test, bpm (above the intrinsic rate).
    pub rate_bpm: f64,
    /// LV-only (as programmers run the LV test) or with RV backup.
    pub mode: PacingMode,
    /// Coarse step first (e.g. 0.5 V), then back to the last capturing value and down the
    /// device's fine table (the Biotronik/BSci automatic pattern); `None`: the fine table
    /// from the start, as a manual test.
    pub coarse_step: Option<f64>,
}

impl Default for StepDownConfig {
    /// 3 beats per step, loss on 2 of 3, 90 bpm, LV only, fine steps throughout.
    fn default() -> Self {
        Self { beats_per_step: 3, losses_for_loss: 2, rate_bpm: 90.0, mode: PacingMode::LvOnly, coarse_step: None }
    }
}

/// What to step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stepped {
    /// Amplitude, at a fixed pulse width (ms).
    Amplitude {
        /// Pulse width, ms.
        pulse_width_ms: f64,
    },
    /// Pulse width, at a fixed amplitude (volts).
    PulseWidth {
        /// Amplitude, volts.
        amplitude_volts: f64,
    },
}

/// A threshold test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ThresholdOutcome {
    /// The threshold: the last capturing value.
    Threshold {
        /// Value (volts or ms).
        value: f64,
        /// True when it still captured at the table's lowest value (the threshold is at most this).
        at_floor: bool,
    },
    /// No capture at the starting value.
    NoCaptureAtStart {
        /// The start value.
        start: f64,
    },
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The stepped value (volts or ms).
    pub value: f64,
    /// Beats that captured.
    pub captured: u32,
    /// Beats that lost capture.
    pub lost: u32,
}

/// A test that steps its output beat by beat: what to deliver now, what a beat changes, and
/// the result once done. [`crate::runner`] drives any of them the same way.
pub trait StepTest {
    /// The result.
    type Outcome;

    /// The program of the current step (`None` once done).
    fn program(&self) -> Option<Program>;

    /// Takes a beat; returns the next program when the step changes (`None`: keep going, or
    /// done: see [`Self::outcome`]). Beats not delivered at the current step's settings
    /// (still the old program, or the safe program) are ignored.
    fn on_beat(&mut self, beat: &Beat) -> Option<Program>;

    /// The result, once done.
    fn outcome(&self) -> Option<&Self::Outcome>;
}

/// The capture-threshold state machine.
#[derive(Debug, Clone)]
pub struct ThresholdTest {
    vector: Vector,
    stepped: Stepped,
    config: StepDownConfig,
    table: Vec<f64>,
    index: usize,
    captured: u32,
    lost: u32,
    last_capturing: Option<f64>,
    steps: Vec<StepRecord>,
    done: Option<ThresholdOutcome>,
    /// The fine table, kept for after the coarse pass (`None` when not stepping coarsely).
    fine: Option<Vec<f64>>,
    /// The fine pass runs above a coarse value that lost capture.
    bounded_below: bool,
}

/// Values equal within this are the same setting.
const SAME: f64 = 1e-6;

impl ThresholdTest {
    /// A test of `vector` stepping `stepped` down from `start` along the device's table.
    #[must_use]
    pub fn new(vector: Vector, stepped: Stepped, start: f64, limits: &OutputLimits, config: StepDownConfig) -> Self {
        let all = match stepped {
            Stepped::Amplitude { .. } => limits.amplitudes_volts(),
            Stepped::PulseWidth { .. } => limits.pulse_widths_ms(),
        };
        // The table from the start downwards (start snapped to the table, at most the top).
        let mut table: Vec<f64> = all.into_iter().filter(|v| *v <= start + SAME).collect();
        table.reverse();
        // A coarse pass takes every value at least one coarse step below the last taken.
        let (table, fine) = match config.coarse_step {
            Some(step) if step > 0.0 => {
                let mut coarse: Vec<f64> = Vec::new();
                for v in &table {
                    if coarse.last().is_none_or(|last| last - v >= step - SAME) {
                        coarse.push(*v);
                    }
                }
                (coarse, Some(table))
            }
            _ => (table, None),
        };
        Self {
            vector,
            stepped,
            config,
            table,
            index: 0,
            captured: 0,
            lost: 0,
            last_capturing: None,
            steps: Vec::new(),
            done: None,
            fine,
            bounded_below: false,
        }
    }

    /// The steps so far.
    #[must_use]
    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }
}

impl StepTest for ThresholdTest {
    type Outcome = ThresholdOutcome;

    fn program(&self) -> Option<Program> {
        if self.done.is_some() {
            return None;
        }
        let value = *self.table.get(self.index)?;
        let (amplitude_volts, pulse_width_ms) = match self.stepped {
            Stepped::Amplitude { pulse_width_ms } => (value, pulse_width_ms),
            Stepped::PulseWidth { amplitude_volts } => (amplitude_volts, value),
        };
        Some(Program {
            mode: self.config.mode,
            vector: Some(self.vector),
            amplitude_volts,
            pulse_width_ms,
            rate_bpm: self.config.rate_bpm,
        })
    }

    fn on_beat(&mut self, beat: &Beat) -> Option<Program> {
        let current = self.program()?;
        let matches = beat.vector == current.vector
            && beat.mode == current.mode
            && (beat.amplitude_volts - current.amplitude_volts).abs() < SAME
            && (beat.pulse_width_ms - current.pulse_width_ms).abs() < SAME;
        if !matches {
            return None;
        }
        match beat.capture {
            Capture::Captured => self.captured += 1,
            Capture::Lost => self.lost += 1,
            Capture::NotPaced => return None,
        }
        let delivered = self.captured + self.lost;
        let loss = self.lost >= self.config.losses_for_loss;
        if !loss && delivered < self.config.beats_per_step {
            return None;
        }
        let value = self.table[self.index];
        self.steps.push(StepRecord { value, captured: self.captured, lost: self.lost });
        self.captured = 0;
        self.lost = 0;
        if loss {
            // After a coarse loss, go back to the last capturing value and down the fine
            // steps between it and the value that lost.
            if let (Some(fine), Some(last)) = (self.fine.take(), self.last_capturing) {
                let between: Vec<f64> = fine.into_iter().filter(|v| *v < last - SAME && *v > value + SAME).collect();
                if !between.is_empty() {
                    self.table = between;
                    self.index = 0;
                    self.bounded_below = true;
                    return self.program();
                }
            }
            self.done = Some(match self.last_capturing {
                Some(value) => ThresholdOutcome::Threshold { value, at_floor: false },
                None => ThresholdOutcome::NoCaptureAtStart { start: value },
            });
            return None;
        }
        self.last_capturing = Some(value);
        self.index += 1;
        if self.index < self.table.len() {
            return self.program();
        }
        // The table ran out still capturing. After a coarse pass, the fine values below.
        if let Some(fine) = self.fine.take() {
            let below: Vec<f64> = fine.into_iter().filter(|v| *v < value - SAME).collect();
            if !below.is_empty() {
                self.table = below;
                self.index = 0;
                return self.program();
            }
        }
        // At the table's floor, unless this fine pass stopped above a coarse value that lost.
        self.done = Some(ThresholdOutcome::Threshold { value, at_floor: !self.bounded_below });
        None
    }

    fn outcome(&self) -> Option<&ThresholdOutcome> {
        self.done.as_ref()
    }
}

/// Weiss strength-duration parameters from two thresholds: amplitude `volts_at` a pulse
/// width `at_ms`, and pulse width `width_ms` at amplitude `amplitude_volts`. `None` when the
/// two points do not determine a curve (same width, or a non-positive result).
#[must_use]
pub fn strength_duration_fit(volts_at: f64, at_ms: f64, width_ms: f64, amplitude_volts: f64) -> Option<(f64, f64)> {
    // V d = R (d + c): V1 d1 - V2 d2 = R (d1 - d2).
    let denominator = at_ms - width_ms;
    if denominator.abs() < 1e-9 {
        return None;
    }
    let rheobase = (volts_at * at_ms - amplitude_volts * width_ms) / denominator;
    let chronaxie = at_ms * (volts_at / rheobase - 1.0);
    (rheobase > 0.0 && chronaxie > 0.0).then_some((rheobase, chronaxie))
}

/// The phrenic test: a screen at high output, then a step-down to the lowest output that
/// still stimulates the nerve.
#[derive(Debug, Clone)]
pub struct PhrenicTest {
    vector: Vector,
    pulse_width_ms: f64,
    beats_per_step: u32,
    rate_bpm: f64,
    table: Vec<f64>,
    index: usize,
    seen: u32,
    delivered: u32,
    lowest_stimulating: Option<f64>,
    done: Option<PhrenicOutcome>,
}

/// The phrenic test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PhrenicOutcome {
    /// No stimulation at the screen output.
    NoneAtScreen {
        /// The screen output, volts.
        screen_volts: f64,
    },
    /// Stimulation; the lowest output that still stimulated.
    Threshold {
        /// Volts.
        volts: f64,
    },
}

impl PhrenicTest {
    /// A test of `vector` screening at `screen_volts` (snapped down to the device's table)
    /// and `pulse_width_ms`, `beats_per_step` beats per output.
    #[must_use]
    pub fn new(
        vector: Vector,
        screen_volts: f64,
        pulse_width_ms: f64,
        beats_per_step: u32,
        limits: &OutputLimits,
    ) -> Self {
        let mut table: Vec<f64> = limits.amplitudes_volts().into_iter().filter(|v| *v <= screen_volts + SAME).collect();
        table.reverse();
        Self {
            vector,
            pulse_width_ms,
            beats_per_step: beats_per_step.max(1),
            rate_bpm: 90.0,
            table,
            index: 0,
            seen: 0,
            delivered: 0,
            lowest_stimulating: None,
            done: None,
        }
    }
}

impl StepTest for PhrenicTest {
    type Outcome = PhrenicOutcome;

    // LV with RV backup: a loss of capture at low output must not leave the patient
    // unpaced during a test of the nerve.
    fn program(&self) -> Option<Program> {
        if self.done.is_some() {
            return None;
        }
        Some(Program {
            mode: PacingMode::LvWithRvBackup,
            vector: Some(self.vector),
            amplitude_volts: *self.table.get(self.index)?,
            pulse_width_ms: self.pulse_width_ms,
            rate_bpm: self.rate_bpm,
        })
    }

    fn on_beat(&mut self, beat: &Beat) -> Option<Program> {
        let current = self.program()?;
        if beat.vector != current.vector
            || (beat.amplitude_volts - current.amplitude_volts).abs() >= SAME
            || beat.mode != current.mode
        {
            return None;
        }
        self.delivered += 1;
        self.seen += u32::from(beat.phrenic);
        if self.seen == 0 && self.delivered < self.beats_per_step {
            return None;
        }
        let stimulated = self.seen > 0;
        let value = self.table[self.index];
        self.seen = 0;
        self.delivered = 0;
        if !stimulated {
            self.done = Some(match self.lowest_stimulating {
                None => PhrenicOutcome::NoneAtScreen { screen_volts: value },
                Some(volts) => PhrenicOutcome::Threshold { volts },
            });
            return None;
        }
        self.lowest_stimulating = Some(value);
        self.index += 1;
        if self.index >= self.table.len() {
            self.done = Some(PhrenicOutcome::Threshold { volts: value });
            return None;
        }
        self.program()
    }

    fn outcome(&self) -> Option<&PhrenicOutcome> {
        self.done.as_ref()
    }
}

/// The PNS safety margin: no PNS at the screen, or a PNS threshold at least `ratio` times
/// the capture threshold.
#[must_use]
pub fn margin_ok(capture_volts: f64, phrenic: &PhrenicOutcome, ratio: f64) -> bool {
    match phrenic {
        PhrenicOutcome::NoneAtScreen { .. } => true,
        PhrenicOutcome::Threshold { volts } => *volts >= ratio * capture_volts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Pole;

    const V: Vector = Vector { cathode: 0, anode: Pole::RvCoil };

    fn beat(p: &Program, threshold: f64) -> Beat {
        Beat {
            index: 0,
            t_ms: 0.0,
            mode: p.mode,
            vector: p.vector,
            amplitude_volts: p.amplitude_volts,
            pulse_width_ms: p.pulse_width_ms,
            capture: if p.amplitude_volts >= threshold { Capture::Captured } else { Capture::Lost },
            rv_paced: false,
            phrenic: false,
            reason: String::new(),
        }
    }

    /// Runs a test against a heart with a fixed threshold.
    fn run(t: &mut ThresholdTest, threshold: f64) -> ThresholdOutcome {
        let mut program = t.program().unwrap();
        for _ in 0..1000 {
            if let Some(next) = t.on_beat(&beat(&program, threshold)) {
                program = next;
            }
            if let Some(o) = t.outcome() {
                return o.clone();
            }
        }
        panic!("never finished");
    }

    #[test]
    fn the_threshold_is_the_last_capturing_step() {
        let limits = OutputLimits::default();
        for truth in [0.35, 0.8, 1.23, 2.5, 4.9] {
            let mut t = ThresholdTest::new(
                V,
                Stepped::Amplitude { pulse_width_ms: 0.5 },
                5.0,
                &limits,
                StepDownConfig::default(),
            );
            let ThresholdOutcome::Threshold { value, at_floor } = run(&mut t, truth) else { panic!() };
            assert!(!at_floor);
            assert!(value >= truth - 1e-9 && value - truth < 0.1 + 1e-9, "truth {truth}, found {value}");
            // Each step delivered its beats; the last lost on 2 of them.
            assert!(t.steps().iter().rev().skip(1).all(|s| s.captured == 3));
            assert_eq!(t.steps().last().unwrap().lost, 2);
        }
        // Coarse 0.5 V steps first, then the fine table: the same threshold in fewer steps.
        let coarse = StepDownConfig { coarse_step: Some(0.5), ..StepDownConfig::default() };
        for truth in [0.05, 0.12, 0.35, 0.8, 1.23, 2.5, 4.9] {
            let mut fine_only = ThresholdTest::new(
                V,
                Stepped::Amplitude { pulse_width_ms: 0.5 },
                5.0,
                &limits,
                StepDownConfig::default(),
            );
            let mut t = ThresholdTest::new(V, Stepped::Amplitude { pulse_width_ms: 0.5 }, 5.0, &limits, coarse);
            assert_eq!(run(&mut t, truth), run(&mut fine_only, truth), "truth {truth}");
            assert!(t.steps().len() <= 20, "{} steps", t.steps().len());
        }
        let mut t =
            ThresholdTest::new(V, Stepped::Amplitude { pulse_width_ms: 0.5 }, 5.0, &limits, StepDownConfig::default());
        assert_eq!(run(&mut t, 6.0), ThresholdOutcome::NoCaptureAtStart { start: 5.0 });
        let mut t =
            ThresholdTest::new(V, Stepped::Amplitude { pulse_width_ms: 0.5 }, 1.0, &limits, StepDownConfig::default());
        assert!(matches!(run(&mut t, 0.05), ThresholdOutcome::Threshold { at_floor: true, .. }));
        let mut t = ThresholdTest::new(
            V,
            Stepped::PulseWidth { amplitude_volts: 2.0 },
            1.5,
            &limits,
            StepDownConfig::default(),
        );
        assert!(t.program().is_some());
        // Stale beats (another program) are ignored.
        let stale = Program { amplitude_volts: 3.3, ..t.program().unwrap() };
        assert_eq!(t.on_beat(&beat(&stale, 0.0)), None);
        assert!(t.steps().is_empty());
    }

    #[test]
    fn weiss_parameters_come_back_from_two_thresholds() {
        let (rheobase, chronaxie) = (0.55, 0.45);
        let weiss = |d: f64| rheobase * (1.0 + chronaxie / d);
        // Amplitude threshold at 0.5 ms; pulse-width threshold at 2 x that.
        let v = weiss(0.5);
        let a = 2.0 * v;
        let d = chronaxie / (a / rheobase - 1.0);
        let (r, c) = strength_duration_fit(v, 0.5, d, a).unwrap();
        assert!((r - rheobase).abs() < 1e-9 && (c - chronaxie).abs() < 1e-9);
        assert!(strength_duration_fit(1.0, 0.5, 0.5, 2.0).is_none());
    }

    #[test]
    fn the_phrenic_threshold_is_the_lowest_stimulating_output() {
        let limits = OutputLimits::default();
        let mut t = PhrenicTest::new(V, 10.0, 0.5, 3, &limits);
        let pns = 6.2;
        let mut program = t.program().unwrap();
        while t.outcome().is_none() {
            let mut b = beat(&program, 0.0);
            b.phrenic = program.amplitude_volts >= pns;
            if let Some(next) = t.on_beat(&b) {
                program = next;
            }
        }
        assert_eq!(t.outcome(), Some(&PhrenicOutcome::Threshold { volts: 6.5 }));
        assert!(margin_ok(1.0, t.outcome().unwrap(), 2.0));
        assert!(!margin_ok(3.5, t.outcome().unwrap(), 2.0));
        let mut t = PhrenicTest::new(V, 10.0, 0.5, 3, &limits);
        let program = t.program().unwrap();
        for _ in 0..3 {
            t.on_beat(&beat(&program, 0.0));
        }
        assert_eq!(t.outcome(), Some(&PhrenicOutcome::NoneAtScreen { screen_volts: 10.0 }));
    }
}
