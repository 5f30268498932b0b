//! A training session, sans-IO: the trainee's actions arrive with their time (seconds from
//! the start) and are answered with feedback; the session keeps the catheter, the
//! fluoroscopy and contrast accounting, the sites tested and a log. [`TrainingSession::finish`]
//! pulls the wire (the lead must hold on its own), evaluates the final site, compares it with
//! the best usable site of the patient and scores the case.

use device_link::lead::LeadModel;
use serde::{Deserialize, Serialize};
use simulator::SyntheticPatient;

use crate::catheter::{Catheter, CatheterConfig, CatheterEvent};
use crate::dose::{DoseModel, Exposure};
use crate::scenario::{Scenario, ScenarioError};
use crate::score::{Conduct, Score, ScoreConfig, score};
use crate::site::{Analysis, Candidate, NOTABLE_SCAR, SiteEval, best_site, candidates, evaluate_catheter};

/// Something the trainee does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Push the wire, mm.
    AdvanceWire {
        /// Distance.
        mm: f64,
    },
    /// Pull the wire, mm.
    RetractWire {
        /// Distance.
        mm: f64,
    },
    /// Turn the wire tip, degrees (positive toward `tangent x outward`).
    Rotate {
        /// Angle.
        deg: f64,
    },
    /// Push the lead over the wire, mm.
    AdvanceLead {
        /// Distance.
        mm: f64,
    },
    /// Pull the lead, mm.
    RetractLead {
        /// Distance.
        mm: f64,
    },
    /// Exchange the lead (it must be back at the ostium).
    ChangeLead {
        /// The model; the scenario's shelf gives its diameter.
        model: LeadModel,
    },
    /// The fluoroscopy pedal.
    Fluoro {
        /// Pressed (true) or released.
        on: bool,
    },
    /// A hand injection of contrast.
    Inject,
    /// Test the site with the pacing system analyzer.
    TestSite,
    /// Leave the lead here: the wire comes out and the case ends.
    Finish,
}

/// How a feedback line reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Information.
    Info,
    /// Something to correct.
    Warning,
    /// Harm or a refused action.
    Error,
}

/// One line of feedback (also the log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    /// Seconds from the start.
    pub t_s: f64,
    /// How it reads.
    pub level: Level,
    /// What happened.
    pub text: String,
}

/// A site tested during the session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestedSite {
    /// When.
    pub t_s: f64,
    /// What the analyzer found.
    pub site: SiteEval,
}

/// How the session ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The final site (None: the lead fell back to the ostium).
    pub site: Option<SiteEval>,
    /// The best usable site of the patient.
    pub best: SiteEval,
    /// The score.
    pub score: Score,
    /// How the case was conducted.
    pub conduct: Conduct,
}

/// A trainee's session on one scenario.
#[derive(Debug, Clone)]
pub struct TrainingSession {
    scenario: Scenario,
    patient: SyntheticPatient,
    catheter: Catheter,
    analysis: Analysis,
    dose: DoseModel,
    score_config: ScoreConfig,
    candidates: Vec<Candidate>,
    best: Option<usize>,
    now_s: f64,
    fluoro_since_s: Option<f64>,
    fluoro_intervals: Vec<(f64, f64)>,
    injections: Vec<f64>,
    tests: Vec<TestedSite>,
    log: Vec<Feedback>,
    dislodgements: u32,
    vein_traumas: u32,
    outcome: Option<Outcome>,
}

/// Why a scenario cannot be trained on.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    /// The scenario is invalid.
    Scenario(ScenarioError),
    /// No lead on the shelf can be left at an acceptable site in this patient.
    Unsolvable(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scenario(e) => e.fmt(f),
            Self::Unsolvable(why) => write!(f, "the scenario cannot be solved: {why}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl TrainingSession {
    /// Starts a session: the patient is built, every site evaluated and the best one found.
    pub fn new(scenario: Scenario) -> Result<Self, SessionError> {
        let patient = scenario.patient().map_err(SessionError::Scenario)?;
        let config = CatheterConfig::default();
        let analysis = Analysis::default();
        let all = candidates(&patient, &scenario.leads, &config, &analysis);
        let best = best_site(&all);
        if best.is_none() {
            return Err(SessionError::Unsolvable(format!(
                "{} ({}): no position is acceptable, reachable and stable with {}",
                scenario.id(),
                scenario.file,
                scenario.leads.iter().map(crate::leads::LeadSpec::name).collect::<Vec<_>>().join(", ")
            )));
        }
        let first_lead = scenario.leads[0];
        let catheter = Catheter::new(&patient.tree, &patient.lv, first_lead, config);
        let mut session = Self {
            scenario,
            patient,
            catheter,
            analysis,
            dose: DoseModel::default(),
            score_config: ScoreConfig::default(),
            candidates: all,
            best,
            now_s: 0.0,
            fluoro_since_s: None,
            fluoro_intervals: Vec::new(),
            injections: Vec::new(),
            tests: Vec::new(),
            log: Vec::new(),
            dislodgements: 0,
            vein_traumas: 0,
            outcome: None,
        };
        let text = format!(
            "{}: {} Lead loaded: {}.",
            session.scenario.source.title,
            session.scenario.source.summary.trim(),
            first_lead.name()
        );
        session.note(Level::Info, text);
        Ok(session)
    }

    fn note(&mut self, level: Level, text: String) -> Feedback {
        let f = Feedback { t_s: self.now_s, level, text };
        self.log.push(f.clone());
        f
    }

    /// Applies an action at `t_s` (times never run backward; an earlier time is taken as now).
    pub fn apply(&mut self, t_s: f64, action: Action) -> Vec<Feedback> {
        self.now_s = self.now_s.max(t_s);
        if self.outcome.is_some() {
            return vec![self.note(Level::Error, "the case is finished".into())];
        }
        let mut out = Vec::new();
        let events = match action {
            Action::AdvanceWire { mm } => self.catheter.advance_wire(mm),
            Action::RetractWire { mm } => self.catheter.retract_wire(mm),
            Action::Rotate { deg } => {
                self.catheter.rotate(deg);
                Vec::new()
            }
            Action::AdvanceLead { mm } => self.catheter.advance_lead(mm),
            Action::RetractLead { mm } => self.catheter.retract_lead(mm),
            Action::ChangeLead { model } => {
                if let Some(spec) = self.scenario.leads.iter().find(|l| l.model == model) {
                    self.catheter.change_lead(*spec)
                } else {
                    out.push(self.note(Level::Error, format!("{model:?} is not on this scenario's shelf")));
                    Vec::new()
                }
            }
            Action::Fluoro { on } => {
                match (on, self.fluoro_since_s) {
                    (true, None) => self.fluoro_since_s = Some(self.now_s),
                    (false, Some(since)) => {
                        self.fluoro_intervals.push((since, self.now_s));
                        self.fluoro_since_s = None;
                    }
                    _ => {}
                }
                Vec::new()
            }
            Action::Inject => {
                self.injections.push(self.now_s);
                let n = self.injections.len();
                let text = if self.fluoro_since_s.is_some() {
                    format!("contrast injection {n}")
                } else {
                    format!("contrast injection {n} without fluoroscopy: nothing was seen")
                };
                let level = if self.fluoro_since_s.is_some() { Level::Info } else { Level::Warning };
                out.push(self.note(level, text));
                Vec::new()
            }
            Action::TestSite => {
                let site = evaluate_catheter(&self.patient, &self.catheter, &self.analysis);
                let text = describe_test(&site, &self.analysis);
                let level = if site.eligible { Level::Info } else { Level::Warning };
                self.tests.push(TestedSite { t_s: self.now_s, site });
                out.push(self.note(level, text));
                Vec::new()
            }
            Action::Finish => {
                let outcome = self.finish_now();
                let text =
                    format!("case finished: {:.0} of {:.0} points", outcome.score.total, outcome.score.max_points);
                out.push(self.note(Level::Info, text));
                Vec::new()
            }
        };
        for e in events {
            out.push(self.catheter_event(&e));
        }
        out
    }

    fn catheter_event(&mut self, e: &CatheterEvent) -> Feedback {
        let (level, text) = match e {
            CatheterEvent::WireEntered { vein } => (Level::Info, format!("wire in the {}", vein.abbreviation())),
            CatheterEvent::WireAtVeinEnd { vein } => {
                (Level::Warning, format!("wire at the end of the {}", vein.abbreviation()))
            }
            CatheterEvent::LeadWedged { vein_diameter_mm } => (
                Level::Info,
                format!(
                    "lead wedged: the vein is {vein_diameter_mm:.1} mm for a {:.1} mm lead",
                    self.catheter.lead().diameter_mm()
                ),
            ),
            CatheterEvent::LeadNeedsSupport { wire_ahead_mm } => (
                Level::Warning,
                format!("the lead will not track the bend with {wire_ahead_mm:.0} mm of wire ahead: advance the wire"),
            ),
            CatheterEvent::LeadAtWireTip => {
                (Level::Warning, "the lead is at the wire tip: advance the wire first".into())
            }
            CatheterEvent::VeinTrauma { vein } => {
                self.vein_traumas += 1;
                (Level::Error, format!("pushing a wedged lead injured the {}", vein.abbreviation()))
            }
            CatheterEvent::Dislodged { from, to, vein_diameter_mm } => {
                self.dislodgements += 1;
                let to = to.map_or("the ostium".to_owned(), |v| format!("the {}", v.abbreviation()));
                (
                    Level::Error,
                    format!(
                        "lead dislodged from the {} ({vein_diameter_mm:.1} mm vein, {:.1} mm lead) back to {to}",
                        from.abbreviation(),
                        self.catheter.lead().diameter_mm()
                    ),
                )
            }
            CatheterEvent::LeadChanged { lead } => (Level::Info, format!("lead exchanged: {lead}")),
            CatheterEvent::LeadNotOut => (Level::Error, "pull the lead back to the ostium before exchanging it".into()),
        };
        self.note(level, text)
    }

    fn finish_now(&mut self) -> Outcome {
        if let Some(since) = self.fluoro_since_s.take() {
            self.fluoro_intervals.push((since, self.now_s));
        }
        let events = self.catheter.retract_wire(f64::INFINITY);
        for e in &events {
            self.catheter_event(e);
        }
        let site =
            (self.catheter.lead_s_mm() > 0.0).then(|| evaluate_catheter(&self.patient, &self.catheter, &self.analysis));
        let best = self.best_site().eval.clone();
        let conduct = Conduct {
            exposure: self.exposure(),
            time_to_site_s: self.now_s,
            dislodgements: self.dislodgements,
            vein_traumas: self.vein_traumas,
        };
        let score = score(site.as_ref(), &best, &conduct, &self.scenario.goals, &self.score_config, &self.analysis);
        let outcome = Outcome { site, best, score, conduct };
        self.outcome = Some(outcome.clone());
        outcome
    }

    /// Ends the case at `t_s` (as [`Action::Finish`]); a finished case keeps its outcome.
    pub fn finish(&mut self, t_s: f64) -> Outcome {
        if let Some(o) = &self.outcome {
            return o.clone();
        }
        self.now_s = self.now_s.max(t_s);
        let outcome = self.finish_now();
        let text = format!("case finished: {:.0} of {:.0} points", outcome.score.total, outcome.score.max_points);
        self.note(Level::Info, text);
        outcome
    }

    /// Fluoroscopy time up to now (a pressed pedal counts to now), s.
    #[must_use]
    pub fn fluoro_s(&self) -> f64 {
        self.fluoro_intervals.iter().map(|(a, b)| b - a).sum::<f64>()
            + self.fluoro_since_s.map_or(0.0, |since| self.now_s - since)
    }

    /// Whether the pedal is pressed.
    #[must_use]
    pub fn fluoro_on(&self) -> bool {
        self.fluoro_since_s.is_some()
    }

    /// Seconds since the last injection (None: none yet).
    #[must_use]
    pub fn since_injection_s(&self) -> Option<f64> {
        self.injections.last().map(|t| self.now_s - t)
    }

    /// Exposure so far.
    #[must_use]
    pub fn exposure(&self) -> Exposure {
        Exposure::of(self.fluoro_s(), self.injections.len() as u32, &self.dose)
    }

    /// Advances the clock without an action (fluoroscopy keeps counting).
    pub fn tick(&mut self, t_s: f64) {
        self.now_s = self.now_s.max(t_s);
    }

    /// The best usable site.
    #[must_use]
    pub fn best_site(&self) -> &Candidate {
        &self.candidates[self.best.unwrap_or(0)]
    }

    /// How the case is scored.
    #[must_use]
    pub fn score_config(&self) -> &ScoreConfig {
        &self.score_config
    }

    /// How sites are judged.
    #[must_use]
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// Every evaluated position.
    #[must_use]
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The catheter.
    #[must_use]
    pub fn catheter(&self) -> &Catheter {
        &self.catheter
    }

    /// The patient.
    #[must_use]
    pub fn patient(&self) -> &SyntheticPatient {
        &self.patient
    }

    /// The scenario.
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The log so far.
    #[must_use]
    pub fn log(&self) -> &[Feedback] {
        &self.log
    }

    /// Sites tested so far.
    #[must_use]
    pub fn tests(&self) -> &[TestedSite] {
        &self.tests
    }

    /// Fluoroscopy intervals (closed ones), s.
    #[must_use]
    pub fn fluoro_intervals(&self) -> &[(f64, f64)] {
        &self.fluoro_intervals
    }

    /// Injection times, s.
    #[must_use]
    pub fn injections(&self) -> &[f64] {
        &self.injections
    }

    /// The outcome, once finished.
    #[must_use]
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Seconds from the start.
    #[must_use]
    pub fn now_s(&self) -> f64 {
        self.now_s
    }
}

/// The analyzer's answer at a site, in one line.
#[must_use]
pub fn describe_test(site: &SiteEval, analysis: &Analysis) -> String {
    let pns = match (site.pns_volts, site.threshold_volts) {
        (Some(p), Some(t)) => format!("PNS at {p:.1} V ({:.1}x)", p / t.max(1e-6)),
        _ => format!("no PNS at {:.0} V", analysis.pns_screen_volts),
    };
    format!(
        "test at {}: {} threshold {} at {:.1} ms, {pns}, QLV {} ({} QRS), impedance {}{}{} -> {}",
        site.name(),
        site.vector.as_deref().unwrap_or("-"),
        site.threshold_volts.map_or("none".into(), |t| format!("{t:.1} V")),
        analysis.pulse_width_ms,
        site.qlv_ms.map_or("-".into(), |q| format!("{q:.0} ms")),
        site.qlv_ratio().map_or("-".into(), |r| format!("{r:.2}")),
        site.impedance_ohm.map_or("-".into(), |z| format!("{z:.0} ohm")),
        if site.apical { ", apical" } else { "" },
        if site.scar > NOTABLE_SCAR { format!(", scar {:.2}", site.scar) } else { String::new() },
        if site.eligible { "acceptable" } else { "not acceptable" }
    )
}
