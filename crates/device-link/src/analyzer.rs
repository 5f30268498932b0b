//! The pacing system analyzer with its patient, sans-IO: it holds the program it delivers,
//! paces at the programmed rate when told the time, and returns each beat with its capture,
//! phrenic stimulation and electrograms. Safety lives here, below any network code: every
//! program is checked against the configured limits (a request outside them is refused with
//! a typed error), the delivered output is clamped to the maximum whatever happens, and
//! [`Analyzer::go_safe`] returns to the safe program at once.

use serde::{Deserialize, Serialize};
use simulator::SyntheticPatient;
use simulator::rng::SimRng;

use crate::heart::{Fault, HeartModelParams, LeadSite};
use crate::lead::Vector;
use crate::protocol::{
    Beat, Capture, Command, DeviceError, DeviceInfo, DeviceStatus, EgmChunk, Event, OutputLimits, PacingMode, Program,
    Reply, SafetyReason,
};

/// Stream of the seed's generator reserved for beat-to-beat noise.
const NOISE_STREAM: u64 = 0x0062_6561_7473;
/// Delay of the RV safety pace after an LV pace that did not capture, ms.
pub const RV_BACKUP_DELAY_MS: f64 = 80.0;

/// How the analyzer is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzerConfig {
    /// Output limits and step tables.
    pub limits: OutputLimits,
    /// The program it returns to on stop, link loss or a missed heartbeat (RV backup).
    pub safe_program: Program,
    /// Emergency VVI (configuration, not hard-coded: the vendors' values are not published).
    pub emergency_program: Program,
    /// EGM samples per second (500-1000).
    pub egm_rate_hz: f64,
    /// Heart model constants.
    pub heart: HeartModelParams,
    /// The patient's intrinsic rate, bpm (LBBB, sinus).
    pub intrinsic_rate_bpm: f64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        let vvi = |amplitude_volts, pulse_width_ms, rate_bpm| Program {
            mode: PacingMode::Vvi,
            vector: None,
            amplitude_volts,
            pulse_width_ms,
            rate_bpm,
        };
        Self {
            limits: OutputLimits::default(),
            safe_program: vvi(5.0, 0.5, 70.0),
            emergency_program: vvi(10.0, 1.0, 70.0),
            egm_rate_hz: 500.0,
            heart: HeartModelParams::default(),
            intrinsic_rate_bpm: 65.0,
        }
    }
}

/// The analyzer and the heart it paces.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzerConfig,
    patient: SyntheticPatient,
    site: Option<(LeadSite, String)>,
    program: Program,
    safe: bool,
    rng: SimRng,
    beats: u64,
    next_beat_ms: f64,
}

/// What happened on one beat.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatOutput {
    /// The beat.
    pub beat: Beat,
    /// Its electrograms.
    pub egm: EgmChunk,
}

fn gaussian(t: f64, centre: f64, width: f64) -> f64 {
    (-0.5 * ((t - centre) / width).powi(2)).exp()
}

impl Analyzer {
    /// An analyzer on `patient`, delivering the safe program from time `now_ms`.
    #[must_use]
    pub fn new(patient: SyntheticPatient, config: AnalyzerConfig, now_ms: f64) -> Self {
        let rng = SimRng::new(patient.seed, NOISE_STREAM);
        let program = config.safe_program;
        Self { config, patient, site: None, program, safe: true, rng, beats: 0, next_beat_ms: now_ms }
    }

    /// What the device says about itself.
    #[must_use]
    pub fn info(&self, heartbeat_interval_ms: u64) -> DeviceInfo {
        DeviceInfo {
            model: "csnav device model (pacing analyzer + synthetic heart)".into(),
            simulated: true,
            limits: self.config.limits.clone(),
            safe_program: self.config.safe_program,
            heartbeat_interval_ms,
            egm_rate_hz: self.config.egm_rate_hz,
            clock_origin_unix_ms: 0.0,
        }
    }

    /// The program delivered now.
    #[must_use]
    pub fn program(&self) -> Program {
        self.program
    }

    /// Whether the safe (or emergency) program is delivered.
    #[must_use]
    pub fn is_safe(&self) -> bool {
        self.safe
    }

    /// The heart under the placed lead (the model's truth, for tests and the log).
    #[must_use]
    pub fn site(&self) -> Option<&LeadSite> {
        self.site.as_ref().map(|(s, _)| s)
    }

    /// When the next beat is due, ms.
    #[must_use]
    pub fn next_beat_ms(&self) -> f64 {
        self.next_beat_ms
    }

    /// Returns to the safe (or, for [`SafetyReason::Emergency`], the emergency) program at
    /// once; returns the event to broadcast.
    pub fn go_safe(&mut self, reason: SafetyReason) -> Event {
        self.program =
            if reason == SafetyReason::Emergency { self.config.emergency_program } else { self.config.safe_program };
        self.safe = true;
        Event::SafePacing { reason, program: self.program }
    }

    fn lead(&self) -> Result<&LeadSite, DeviceError> {
        self.site.as_ref().map(|(s, _)| s).ok_or(DeviceError::NoLead)
    }

    fn check_vector(&self, vector: Vector) -> Result<&LeadSite, DeviceError> {
        let site = self.lead()?;
        if site.lead.vectors().contains(&vector) { Ok(site) } else { Err(DeviceError::BadVector) }
    }

    /// Carries out a command; returns the reply and the events it caused.
    pub fn command(&mut self, command: &Command, now_ms: f64) -> (Result<Reply, DeviceError>, Vec<Event>) {
        let mut events = Vec::new();
        let result = match command {
            Command::PlaceLead { lead, electrodes_in_patient_mm, site } => {
                if electrodes_in_patient_mm.iter().flatten().any(|v| !v.is_finite()) {
                    Err(DeviceError::Malformed { reason: "an electrode position is not finite".into() })
                } else {
                    if !self.safe {
                        events.push(self.go_safe(SafetyReason::LeadMoved));
                    }
                    let heart =
                        LeadSite::new(&self.patient, *lead, *electrodes_in_patient_mm, self.config.heart.clone());
                    self.site = Some((heart, site.clone()));
                    Ok(Reply::Ack)
                }
            }
            Command::Program { program } => self.apply(program, now_ms).map(|e| {
                events.push(e);
                Reply::Ack
            }),
            Command::Stop => {
                events.push(self.go_safe(SafetyReason::StopRequested));
                Ok(Reply::Ack)
            }
            Command::EmergencyVvi => {
                events.push(self.go_safe(SafetyReason::Emergency));
                Ok(Reply::Ack)
            }
            Command::MeasureImpedance { vector } => {
                self.check_vector(*vector).map(|s| s.impedance_ohm(*vector)).map(|ohm| {
                    // Measurement noise: 1% (insulation breach and fracture read erratically).
                    let spread = match self.site().and_then(|s| s.fault) {
                        Some(Fault::InsulationBreach) => self.rng.range(-50.0, 50.0),
                        Some(Fault::Fracture) => self.rng.range(-500.0, 1000.0),
                        _ => ohm * self.rng.normal(0.0, 0.01),
                    };
                    Reply::Impedance { vector: *vector, ohm: (ohm + spread).max(1.0) }
                })
            }
            Command::MeasureRWave { vector } => self
                .check_vector(*vector)
                .map(|s| s.r_wave_mv(*vector))
                .map(|mv| Reply::RWave { vector: *vector, mv: mv * (1.0 + self.rng.normal(0.0, 0.03)) }),
            Command::MeasureQlv { vector } => self.check_vector(*vector).map(|s| Reply::Qlv {
                vector: *vector,
                qlv_ms: s.qlv_ms(*vector),
                qrs_duration_ms: s.qrs_duration_ms,
            }),
            Command::Status => Ok(Reply::Status(DeviceStatus {
                program: self.program,
                safe: self.safe,
                lead: self.site().map(|s| s.lead),
                site: self.site.as_ref().map(|(_, n)| n.clone()),
                beats: self.beats,
            })),
            Command::InjectFault { fault } => match self.site.as_mut() {
                Some((s, _)) => {
                    s.fault = *fault;
                    Ok(Reply::Ack)
                }
                None => Err(DeviceError::NoLead),
            },
        };
        (result, events)
    }

    /// Checks and applies a program (the next beat comes at the new rate).
    fn apply(&mut self, program: &Program, now_ms: f64) -> Result<Event, DeviceError> {
        self.config.limits.check(program)?;
        if let Some(v) = program.vector
            && program.mode != PacingMode::Vvi
        {
            self.check_vector(v)?;
        }
        self.program = *program;
        self.safe = false;
        self.next_beat_ms = self.next_beat_ms.min(now_ms + 60_000.0 / program.rate_bpm);
        Ok(Event::ProgramApplied { program: *program })
    }

    /// Delivers the beat due at [`Self::next_beat_ms`] and schedules the next.
    pub fn beat(&mut self) -> BeatOutput {
        let p = self.program;
        let t_ms = self.next_beat_ms;
        self.next_beat_ms =
            t_ms + 60_000.0 / p.rate_bpm.clamp(self.config.limits.rate_bpm.0, self.config.limits.rate_bpm.1);
        // Defence in depth: whatever set the program, never deliver over the maximum.
        let amplitude_volts = p.amplitude_volts.clamp(0.0, self.config.limits.max_amplitude_volts);
        let pulse_width_ms =
            p.pulse_width_ms.clamp(self.config.limits.pulse_width_ms.0, self.config.limits.pulse_width_ms.1);
        let jitter = (self.config.heart.threshold_jitter * self.rng.normal(0.0, 1.0)).exp();
        let pns_jitter = (self.config.heart.threshold_jitter * self.rng.normal(0.0, 1.0)).exp();
        let lv = match (p.mode, p.vector, self.site.as_ref()) {
            (PacingMode::Vvi, _, _) | (_, None, _) | (_, _, None) => None,
            (_, Some(v), Some((site, _))) => Some((v, site)),
        };
        let (capture, phrenic, qlv, qrs, r_wave) = match lv {
            None => (Capture::NotPaced, false, 0.0, 150.0, 0.0),
            Some((v, site)) => {
                let threshold = site.capture_threshold_volts(v, pulse_width_ms) * jitter;
                let pns = site.phrenic_threshold_volts(v, pulse_width_ms) * pns_jitter;
                let capture = if amplitude_volts >= threshold { Capture::Captured } else { Capture::Lost };
                (capture, amplitude_volts >= pns, site.qlv_ms(v), site.qrs_duration_ms, site.r_wave_mv(v))
            }
        };
        let rv_paced = match p.mode {
            PacingMode::Vvi => true,
            PacingMode::LvWithRvBackup => capture == Capture::Lost,
            PacingMode::LvOnly => false,
        };
        let reason = match (p.mode, capture) {
            (_, Capture::Captured) => "evoked response on the LV tip and LV-to-RV conduction within 150 ms".to_owned(),
            (PacingMode::LvWithRvBackup, Capture::Lost) => {
                format!("no evoked response; RV backup paced at {RV_BACKUP_DELAY_MS:.0} ms")
            }
            (_, Capture::Lost) => "no evoked response; intrinsic (LBBB) activation".to_owned(),
            (_, Capture::NotPaced) => "RV pacing (VVI)".to_owned(),
        };
        let beat = Beat {
            index: self.beats,
            t_ms,
            mode: p.mode,
            vector: p.vector.filter(|_| p.mode != PacingMode::Vvi),
            amplitude_volts,
            pulse_width_ms,
            capture,
            rv_paced,
            phrenic,
            reason,
        };
        self.beats += 1;
        let egm = self.egm(&beat, self.next_beat_ms - t_ms, qlv, qrs, r_wave);
        BeatOutput { beat, egm }
    }

    /// Synthetic electrograms of one beat: pacing artefacts, the evoked response or the late
    /// intrinsic deflection on the LV electrodes, and a surface QRS whose width and timing
    /// follow capture (captured LV pacing narrows and advances it).
    fn egm(&mut self, beat: &Beat, length_ms: f64, qlv_ms: f64, qrs_ms: f64, r_wave_mv: f64) -> EgmChunk {
        let rate = self.config.egm_rate_hz;
        let n = ((length_ms / 1000.0) * rate).round().max(1.0) as usize;
        let dt = 1000.0 / rate;
        let lv_paced = beat.capture != Capture::NotPaced;
        // Local LV activation: right after the pace when captured, else late (intrinsic or
        // via the RV backup).
        let (lv_activation_ms, qrs_onset_ms, qrs_width_ms) = match beat.capture {
            Capture::Captured => (15.0, 5.0, 0.85 * qrs_ms),
            Capture::Lost if beat.rv_paced => (RV_BACKUP_DELAY_MS + qlv_ms, RV_BACKUP_DELAY_MS, qrs_ms),
            Capture::Lost => (120.0 + qlv_ms, 120.0, qrs_ms),
            Capture::NotPaced => (qlv_ms + 10.0, 10.0, qrs_ms),
        };
        let amplitude = r_wave_mv.max(2.0);
        let mut tip = Vec::with_capacity(n);
        let mut ring = Vec::with_capacity(n);
        let mut ecg = Vec::with_capacity(n);
        for k in 0..n {
            let t = k as f64 * dt;
            let artefact = |at: f64| if (t - at).abs() < dt * 0.5 { 8.0 } else { 0.0 };
            let mut v_tip = self.rng.normal(0.0, 0.05);
            let mut v_ring = self.rng.normal(0.0, 0.05);
            let mut v_ecg = self.rng.normal(0.0, 0.02);
            if lv_paced {
                v_tip += artefact(0.0);
                v_ring += 0.5 * artefact(0.0);
            }
            if beat.rv_paced {
                let at = if beat.mode == PacingMode::Vvi { 0.0 } else { RV_BACKUP_DELAY_MS };
                v_tip += 0.3 * artefact(at);
                v_ring += 0.3 * artefact(at);
                v_ecg += 0.5 * artefact(at);
            }
            // Local deflection: biphasic, larger on the tip.
            let local = -amplitude * gaussian(t, lv_activation_ms, 6.0)
                + 0.4 * amplitude * gaussian(t, lv_activation_ms + 14.0, 8.0);
            v_tip += local;
            v_ring += 0.6
                * (-amplitude * gaussian(t, lv_activation_ms + 3.0, 7.0)
                    + 0.4 * amplitude * gaussian(t, lv_activation_ms + 18.0, 9.0));
            // Surface QRS and T wave.
            v_ecg += 1.2 * gaussian(t, qrs_onset_ms + 0.4 * qrs_width_ms, qrs_width_ms / 5.0)
                - 0.5 * gaussian(t, qrs_onset_ms + 0.75 * qrs_width_ms, qrs_width_ms / 7.0)
                - 0.3 * gaussian(t, qrs_onset_ms + qrs_width_ms + 180.0, 45.0);
            tip.push(v_tip as f32);
            ring.push(v_ring as f32);
            ecg.push(v_ecg as f32);
        }
        EgmChunk { t_ms: beat.t_ms, sample_rate_hz: rate, lv_tip_mv: tip, lv_ring_mv: ring, ecg_mv: ecg }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{LeadModel, Pole};

    /// An analyzer with a Quartet in patient 7's posterolateral vein.
    pub(crate) fn placed() -> Analyzer {
        let patient = SyntheticPatient::generate(7);
        let electrodes = crate::heart::electrodes_in_vein(
            &patient,
            venogram::VeinLabel::PosterolateralVein,
            0.67,
            LeadModel::Quartet,
        )
        .unwrap();
        let mut a = Analyzer::new(patient, AnalyzerConfig::default(), 0.0);
        let place =
            Command::PlaceLead { lead: LeadModel::Quartet, electrodes_in_patient_mm: electrodes, site: "PLV".into() };
        assert_eq!(a.command(&place, 0.0).0, Ok(Reply::Ack));
        a
    }

    fn lv(vector: Vector, amplitude_volts: f64) -> Program {
        Program { mode: PacingMode::LvOnly, vector: Some(vector), amplitude_volts, pulse_width_ms: 0.5, rate_bpm: 90.0 }
    }

    #[test]
    fn capture_follows_the_true_threshold() {
        let mut a = placed();
        let v = Vector { cathode: 0, anode: Pole::RvCoil };
        let truth = a.site().unwrap().capture_threshold_volts(v, 0.5);
        let above = a.config.limits.step_up_volts(truth * 1.1).unwrap();
        let below = a.config.limits.step_down_volts(truth * 0.9).unwrap();
        assert_eq!(a.command(&Command::Program { program: lv(v, above) }, 0.0).0, Ok(Reply::Ack));
        for _ in 0..30 {
            let b = a.beat();
            assert_eq!(b.beat.capture, Capture::Captured, "{above} V over a {truth:.2} V threshold");
            assert_eq!(b.egm.lv_tip_mv.len(), (60_000.0_f64 / 90.0 * 0.5).round() as usize);
        }
        let backup = Program { mode: PacingMode::LvWithRvBackup, ..lv(v, below) };
        assert_eq!(a.command(&Command::Program { program: backup }, 0.0).0, Ok(Reply::Ack));
        for _ in 0..30 {
            let b = a.beat().beat;
            assert_eq!(b.capture, Capture::Lost);
            assert!(b.rv_paced, "loss with backup paces the RV");
        }
    }

    #[test]
    fn out_of_range_programs_are_refused_and_stop_is_safe() {
        let mut a = placed();
        let v = Vector { cathode: 1, anode: Pole::RvCoil };
        let (r, events) = a.command(&Command::Program { program: lv(v, 12.0) }, 0.0);
        assert!(matches!(r, Err(DeviceError::OutOfRange { .. })));
        assert!(events.is_empty() && a.is_safe(), "a refused program changes nothing");
        let (r, _) = a.command(&Command::Program { program: lv(Vector { cathode: 0, anode: Pole::Can }, 1.0) }, 0.0);
        assert_eq!(r, Err(DeviceError::BadVector), "the Quartet offers no D1-can vector");
        assert_eq!(a.command(&Command::Program { program: lv(v, 2.0) }, 0.0).0, Ok(Reply::Ack));
        assert!(!a.is_safe());
        let (_, events) = a.command(&Command::Stop, 0.0);
        assert!(matches!(events[..], [Event::SafePacing { reason: SafetyReason::StopRequested, .. }]));
        assert!(a.is_safe() && a.program().mode == PacingMode::Vvi);
        assert_eq!(a.beat().beat.capture, Capture::NotPaced);
        let (_, events) = a.command(&Command::EmergencyVvi, 0.0);
        assert!(
            matches!(events[..], [Event::SafePacing { reason: SafetyReason::Emergency, program }] if (program.amplitude_volts - 10.0).abs() < 1e-9)
        );
        // No lead, no LV measurements.
        let mut bare = Analyzer::new(SyntheticPatient::generate(7), AnalyzerConfig::default(), 0.0);
        assert_eq!(bare.command(&Command::MeasureImpedance { vector: v }, 0.0).0, Err(DeviceError::NoLead));
    }

    #[test]
    fn phrenic_stimulation_appears_above_its_threshold() {
        let mut a = placed();
        let site = a.site().unwrap().clone();
        let v = LeadModel::Quartet
            .vectors()
            .into_iter()
            .min_by(|x, y| site.phrenic_threshold_volts(*x, 0.5).total_cmp(&site.phrenic_threshold_volts(*y, 0.5)))
            .unwrap();
        let pns = site.phrenic_threshold_volts(v, 0.5);
        let high = a.config.limits.step_up_volts(pns * 1.1);
        let low = a.config.limits.step_down_volts(pns * 0.9).unwrap();
        assert_eq!(a.command(&Command::Program { program: lv(v, low) }, 0.0).0, Ok(Reply::Ack));
        assert!((0..20).all(|_| !a.beat().beat.phrenic));
        if let Some(high) = high {
            assert_eq!(a.command(&Command::Program { program: lv(v, high) }, 0.0).0, Ok(Reply::Ack));
            assert!((0..20).all(|_| a.beat().beat.phrenic), "PNS at {high} V over {pns:.2} V");
        }
    }
}
