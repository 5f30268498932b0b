//! Training scenarios: TOML files (`csnav.scenario/1`) that describe the patient (a simulator
//! seed plus anatomy edits), the physiology (latest-activated region, scar, phrenic nerve
//! course), the leads on the shelf and the learning goals. [`Scenario::parse`] reads and
//! validates one; every error names the file, the line and the field
//! ([`ScenarioError`]); [`Scenario::patient`] builds the synthetic patient it describes.
//!
//! Places on the heart are given by vein and fraction along it (`{ vein = "PLV",
//! fraction = 0.4 }`), so a scenario stays meaningful for its seed's anatomy, or by surface
//! coordinates (`{ depth = 0.4, angle_deg = 110 }`: depth 0 base to 1 apex, angle 0
//! anterior, 90 lateral, 180 posterior).

use std::ops::Range;
use std::path::Path;

use nalgebra::Point3;
use serde::Deserialize;
use simulator::SyntheticPatient;
use simulator::heart::SurfaceCoord;
use simulator::physiology::{PhrenicNerve, ScarRegion};
use simulator::venous_tree::BranchId;
use toml::Spanned;
use venogram::VeinLabel;

use crate::leads::{LeadSpec, default_diameter_fr};

/// The schema name every scenario file carries.
pub const SCHEMA: &str = "csnav.scenario/1";

/// Why a scenario cannot be used: where (file, line, column), which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or `<text>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field's path, e.g. `physiology.scar[0].radius_mm` (empty when the TOML itself is bad).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        } else {
            write!(f, "{}:{}:{}: field `{}`: {}", self.file, self.line, self.column, self.field, self.message)
        }
    }
}

impl std::error::Error for ScenarioError {}

/// How hard a scenario is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    /// First cases.
    Beginner,
    /// Needs a technique or a judgement.
    Intermediate,
    /// Traps and trade-offs.
    Advanced,
}

/// A place on the heart: a vein and a fraction along it, or surface coordinates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceFile {
    /// Vein abbreviation (CS, GCV, AIV, MCV, PLV, LMV, ALV).
    pub vein: Option<Spanned<String>>,
    /// Fraction of the vein's length from its takeoff, 0-1.
    pub fraction: Option<Spanned<f64>>,
    /// Fraction of the base-to-apex length, 0-1.
    pub depth: Option<Spanned<f64>>,
    /// Angle around the long axis, degrees (0 anterior, 90 lateral, 180 posterior).
    pub angle_deg: Option<Spanned<f64>>,
}

/// The `[patient]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientFile {
    /// Simulator seed.
    pub seed: u64,
}

/// One `[[anatomy.vein]]` edit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VeinEditFile {
    /// The vein edited (its first segment with this label).
    pub label: Spanned<String>,
    /// Factor on its calibre (0.2-2).
    pub calibre_scale: Option<Spanned<f64>>,
    /// Sideways amplitude of an S-bend at its takeoff, mm (0-8).
    pub takeoff_bend_mm: Option<Spanned<f64>>,
    /// Length of the bend, mm (5-40, default 18).
    pub takeoff_bend_length_mm: Option<Spanned<f64>>,
}

/// The `[anatomy]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnatomyFile {
    /// Veins absent in this patient (with their twigs).
    #[serde(default)]
    pub remove: Vec<Spanned<String>>,
    /// Edits of single veins.
    #[serde(default)]
    pub vein: Vec<VeinEditFile>,
}

/// One `[[physiology.scar]]` patch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScarFile {
    /// Its centre.
    pub at: Spanned<PlaceFile>,
    /// Radius over the surface, mm (5-40).
    pub radius_mm: Spanned<f64>,
    /// 0 (patchy) to 1 (transmural) at the centre.
    pub transmurality: Spanned<f64>,
}

/// The `[physiology.phrenic_nerve]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NerveFile {
    /// A place the nerve passes over (its angle at that place is used).
    pub over: Option<Spanned<PlaceFile>>,
    /// Or its angle at the base, degrees.
    pub angle_deg: Option<Spanned<f64>>,
    /// Drift of its angle from base to apex, degrees (default 0).
    pub drift_deg: Option<Spanned<f64>>,
}

/// The `[physiology]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysiologyFile {
    /// Surface QRS duration, ms (120-220).
    pub qrs_duration_ms: Option<Spanned<f64>>,
    /// The latest-activated site.
    pub latest_activated: Option<Spanned<PlaceFile>>,
    /// Activation time there as a fraction of the QRS duration (0.5-0.98).
    pub latest_activation_fraction: Option<Spanned<f64>>,
    /// Clear the seed's scar (a non-ischaemic heart) before adding `scar`.
    #[serde(default)]
    pub no_seeded_scar: bool,
    /// Scar patches to add.
    #[serde(default)]
    pub scar: Vec<ScarFile>,
    /// The left phrenic nerve's course.
    pub phrenic_nerve: Option<NerveFile>,
}

/// One lead on the shelf.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadFile {
    /// The model (`attain_performa`, `quartet`, `acuity_x4`).
    pub model: device_link::lead::LeadModel,
    /// Its diameter where it wedges, French (3-7); the model's nominal one when absent.
    pub diameter_fr: Option<Spanned<f64>>,
}

/// The `[lead]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadsFile {
    /// The leads the trainee may choose from; the first is loaded at the start.
    pub available: Spanned<Vec<LeadFile>>,
}

/// The `[goals]` table: what a good run looks like, and what it teaches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoalsFile {
    /// Fluoroscopy time within which full marks are given, s.
    pub fluoro_time_s: Spanned<f64>,
    /// Contrast injections within which full marks are given.
    pub contrast_injections: Spanned<u32>,
    /// Time to the final site within which full marks are given, s.
    pub time_to_target_s: Spanned<f64>,
    /// The learning goals, shown at the start and in the debrief.
    pub learning: Vec<String>,
}

/// A scenario file as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Must be [`SCHEMA`].
    pub schema: Spanned<String>,
    /// Short identifier (file stem by convention).
    pub id: String,
    /// Title shown to the trainee.
    pub title: String,
    /// How hard it is.
    pub difficulty: Difficulty,
    /// The case in a few sentences.
    pub summary: String,
    /// The patient.
    pub patient: PatientFile,
    /// Anatomy edits.
    #[serde(default)]
    pub anatomy: AnatomyFile,
    /// Physiology overrides.
    #[serde(default)]
    pub physiology: PhysiologyFile,
    /// The leads.
    pub lead: LeadsFile,
    /// The goals.
    pub goals: GoalsFile,
}

/// Goals, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Goals {
    /// Full marks at or under this fluoroscopy time, s.
    pub fluoro_time_s: f64,
    /// Full marks at or under this many injections.
    pub contrast_injections: u32,
    /// Full marks at or under this time to the final site, s.
    pub time_to_target_s: f64,
    /// What the scenario teaches.
    pub learning: Vec<String>,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Where it came from (for messages).
    pub file: String,
    /// The text as written.
    pub source: ScenarioFile,
    /// Its leads, validated.
    pub leads: Vec<LeadSpec>,
    /// Its goals, validated.
    pub goals: Goals,
    text: String,
}

/// The dotted key written at a byte offset: the table in effect there and the key of its line
/// (`patient.seed`), or the table itself when the offset is on its header.
fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[start..end].trim();
    let table_of = |l: &str| l.trim_start_matches('[').trim_end_matches(']').trim().to_owned();
    if line.starts_with('[') {
        return table_of(line);
    }
    let table =
        text[..start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(table_of).unwrap_or_default();
    let key = line.split_once('=').map(|(k, _)| k.trim().to_owned()).unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

/// A `(line, column)` pair, 1-based, of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| before[nl + 1..].chars().count()) + 1;
    (line, column)
}

impl Scenario {
    /// Reads and validates a scenario file (the patient is built to check the veins it names).
    pub fn read(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read the scenario: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates a scenario's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let source: ScenarioFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |span| line_column(text, span.start));
            ScenarioError {
                file: file.to_owned(),
                line,
                column,
                field: e.span().map_or_else(String::new, |span| field_at(text, span.start)),
                message: e.message().trim().to_owned(),
            }
        })?;
        let mut scenario =
            Self { file: file.to_owned(), source, leads: Vec::new(), goals: empty_goals(), text: text.to_owned() };
        scenario.validate()?;
        // Building the patient checks every vein the scenario names exists.
        scenario.patient()?;
        Ok(scenario)
    }

    /// The scenario's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.source.id
    }

    /// An error at a span.
    fn error(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_column(&self.text, span.start);
        ScenarioError { file: self.file.clone(), line, column, field: field.to_owned(), message: message.into() }
    }

    fn check_range(&self, value: &Spanned<f64>, field: &str, range: (f64, f64)) -> Result<f64, ScenarioError> {
        let v = *value.get_ref();
        if v.is_finite() && (range.0..=range.1).contains(&v) {
            Ok(v)
        } else {
            Err(self.error(value.span(), field, format!("{v} is outside {}-{}", range.0, range.1)))
        }
    }

    fn label(&self, value: &Spanned<String>, field: &str) -> Result<VeinLabel, ScenarioError> {
        VeinLabel::from_abbreviation(value.get_ref()).filter(|l| *l != VeinLabel::Branch).ok_or_else(|| {
            self.error(
                value.span(),
                field,
                format!("unknown vein {:?}: use CS, GCV, AIV, MCV, PLV, LMV or ALV", value.get_ref()),
            )
        })
    }

    fn check_place(&self, place: &Spanned<PlaceFile>, field: &str) -> Result<(), ScenarioError> {
        let p = place.get_ref();
        match (&p.vein, &p.fraction, &p.depth, &p.angle_deg) {
            (Some(vein), Some(fraction), None, None) => {
                self.label(vein, &format!("{field}.vein"))?;
                self.check_range(fraction, &format!("{field}.fraction"), (0.0, 1.0))?;
            }
            (None, None, Some(depth), Some(angle)) => {
                self.check_range(depth, &format!("{field}.depth"), (0.0, 1.0))?;
                self.check_range(angle, &format!("{field}.angle_deg"), (-360.0, 360.0))?;
            }
            _ => {
                return Err(self.error(
                    place.span(),
                    field,
                    "give either `vein` and `fraction`, or `depth` and `angle_deg`",
                ));
            }
        }
        Ok(())
    }

    /// Checks every value against its range and the structure rules.
    fn validate(&mut self) -> Result<(), ScenarioError> {
        let s = &self.source;
        if s.schema.get_ref() != SCHEMA {
            return Err(self.error(s.schema.span(), "schema", format!("{:?} is not {SCHEMA:?}", s.schema.get_ref())));
        }
        for (k, r) in s.anatomy.remove.iter().enumerate() {
            let label = self.label(r, &format!("anatomy.remove[{k}]"))?;
            if matches!(label, VeinLabel::CoronarySinus | VeinLabel::GreatCardiacVein) {
                return Err(self.error(r.span(), &format!("anatomy.remove[{k}]"), "the CS and GCV cannot be removed"));
            }
        }
        for (k, v) in s.anatomy.vein.iter().enumerate() {
            let field = format!("anatomy.vein[{k}]");
            self.label(&v.label, &format!("{field}.label"))?;
            if let Some(c) = &v.calibre_scale {
                self.check_range(c, &format!("{field}.calibre_scale"), (0.2, 2.0))?;
            }
            if let Some(b) = &v.takeoff_bend_mm {
                self.check_range(b, &format!("{field}.takeoff_bend_mm"), (0.0, 8.0))?;
            }
            if let Some(b) = &v.takeoff_bend_length_mm {
                self.check_range(b, &format!("{field}.takeoff_bend_length_mm"), (5.0, 40.0))?;
            }
        }
        let p = &s.physiology;
        if let Some(q) = &p.qrs_duration_ms {
            self.check_range(q, "physiology.qrs_duration_ms", (120.0, 220.0))?;
        }
        if let Some(l) = &p.latest_activated {
            self.check_place(l, "physiology.latest_activated")?;
        }
        if let Some(f) = &p.latest_activation_fraction {
            self.check_range(f, "physiology.latest_activation_fraction", (0.5, 0.98))?;
        }
        for (k, scar) in p.scar.iter().enumerate() {
            let field = format!("physiology.scar[{k}]");
            self.check_place(&scar.at, &format!("{field}.at"))?;
            self.check_range(&scar.radius_mm, &format!("{field}.radius_mm"), (5.0, 40.0))?;
            self.check_range(&scar.transmurality, &format!("{field}.transmurality"), (0.0, 1.0))?;
        }
        if let Some(n) = &p.phrenic_nerve {
            match (&n.over, &n.angle_deg) {
                (Some(over), None) => self.check_place(over, "physiology.phrenic_nerve.over")?,
                (None, Some(angle)) => {
                    self.check_range(angle, "physiology.phrenic_nerve.angle_deg", (-360.0, 360.0))?;
                }
                _ => {
                    let span = n.over.as_ref().map(Spanned::span).or(n.angle_deg.as_ref().map(Spanned::span));
                    return Err(self.error(
                        span.unwrap_or(0..0),
                        "physiology.phrenic_nerve",
                        "give either `over` or `angle_deg`",
                    ));
                }
            }
            if let Some(d) = &n.drift_deg {
                self.check_range(d, "physiology.phrenic_nerve.drift_deg", (-60.0, 60.0))?;
            }
        }
        let available = &s.lead.available;
        if available.get_ref().is_empty() {
            return Err(self.error(available.span(), "lead.available", "list at least one lead"));
        }
        let mut leads = Vec::new();
        for (k, l) in available.get_ref().iter().enumerate() {
            let diameter_fr = match &l.diameter_fr {
                Some(d) => self.check_range(d, &format!("lead.available[{k}].diameter_fr"), (3.0, 7.0))?,
                None => default_diameter_fr(l.model),
            };
            leads.push(LeadSpec { model: l.model, diameter_fr });
        }
        let g = &s.goals;
        let goals = Goals {
            fluoro_time_s: self.check_range(&g.fluoro_time_s, "goals.fluoro_time_s", (10.0, 3600.0))?,
            contrast_injections: {
                let n = *g.contrast_injections.get_ref();
                if !(1..=30).contains(&n) {
                    return Err(self.error(
                        g.contrast_injections.span(),
                        "goals.contrast_injections",
                        format!("{n} is outside 1-30"),
                    ));
                }
                n
            },
            time_to_target_s: self.check_range(&g.time_to_target_s, "goals.time_to_target_s", (10.0, 7200.0))?,
            learning: g.learning.clone(),
        };
        self.leads = leads;
        self.goals = goals;
        Ok(())
    }

    /// The synthetic patient the scenario describes.
    pub fn patient(&self) -> Result<SyntheticPatient, ScenarioError> {
        let s = &self.source;
        let mut patient = SyntheticPatient::generate(s.patient.seed);
        for (k, r) in s.anatomy.remove.iter().enumerate() {
            let field = format!("anatomy.remove[{k}]");
            let label = self.label(r, &field)?;
            let id = self.vein_id(&patient, label, r.span(), &field)?;
            patient.tree.remove_subtree(id);
        }
        for (k, v) in s.anatomy.vein.iter().enumerate() {
            let field = format!("anatomy.vein[{k}].label");
            let label = self.label(&v.label, &field)?;
            let id = self.vein_id(&patient, label, v.label.span(), &field)?;
            if let Some(c) = &v.calibre_scale {
                patient.tree.scale_calibre(id, *c.get_ref());
            }
            if let Some(b) = &v.takeoff_bend_mm {
                let length = v.takeoff_bend_length_mm.as_ref().map_or(18.0, |l| *l.get_ref());
                patient.tree.bend_takeoff(&patient.lv, id, *b.get_ref(), length);
            }
        }
        let p = &s.physiology;
        let field_place =
            |place: &Spanned<PlaceFile>, field: &str, patient: &SyntheticPatient| self.place(patient, place, field);
        if let Some(q) = &p.qrs_duration_ms {
            let a = &mut patient.physiology.activation;
            let ratio = a.latest_ms / a.qrs_duration_ms;
            a.qrs_duration_ms = *q.get_ref();
            a.latest_ms = ratio * a.qrs_duration_ms;
        }
        if let Some(l) = &p.latest_activated {
            let coord = field_place(l, "physiology.latest_activated", &patient)?;
            patient.physiology.activation.latest = coord;
        }
        if let Some(f) = &p.latest_activation_fraction {
            let a = &mut patient.physiology.activation;
            a.latest_ms = *f.get_ref() * a.qrs_duration_ms;
        }
        if p.no_seeded_scar {
            patient.physiology.scars.clear();
        }
        for (k, scar) in p.scar.iter().enumerate() {
            let center = field_place(&scar.at, &format!("physiology.scar[{k}].at"), &patient)?;
            patient.physiology.scars.push(ScarRegion {
                center,
                radius_mm: *scar.radius_mm.get_ref(),
                transmurality: *scar.transmurality.get_ref(),
            });
        }
        if let Some(n) = &p.phrenic_nerve {
            let angle_rad = match (&n.over, &n.angle_deg) {
                (Some(over), _) => field_place(over, "physiology.phrenic_nerve.over", &patient)?.angle_rad,
                (None, Some(a)) => a.get_ref().to_radians(),
                (None, None) => {
                    return Err(self.error(0..0, "physiology.phrenic_nerve", "give either `over` or `angle_deg`"));
                }
            };
            let drift = n.drift_deg.as_ref().map_or(0.0, |d| d.get_ref().to_radians());
            patient.physiology.phrenic_nerve = PhrenicNerve::over_wall(&patient.lv, angle_rad, drift);
        }
        Ok(patient)
    }

    fn vein_id(
        &self,
        patient: &SyntheticPatient,
        label: VeinLabel,
        span: Range<usize>,
        field: &str,
    ) -> Result<BranchId, ScenarioError> {
        patient.tree.find(label).map(|b| b.id).ok_or_else(|| {
            let present: Vec<&str> = patient
                .tree
                .branches
                .iter()
                .filter(|b| b.label != VeinLabel::Branch)
                .map(|b| b.label.abbreviation())
                .collect();
            self.error(
                span,
                field,
                format!(
                    "patient {} has no {} (its veins: {})",
                    self.source.patient.seed,
                    label.abbreviation(),
                    present.join(" ")
                ),
            )
        })
    }

    /// The surface coordinate of a place.
    fn place(
        &self,
        patient: &SyntheticPatient,
        place: &Spanned<PlaceFile>,
        field: &str,
    ) -> Result<SurfaceCoord, ScenarioError> {
        let p = place.get_ref();
        if let (Some(vein), Some(fraction)) = (&p.vein, &p.fraction) {
            let label = self.label(vein, &format!("{field}.vein"))?;
            let id = self.vein_id(patient, label, vein.span(), &format!("{field}.vein"))?;
            let point = point_along(patient, id, *fraction.get_ref());
            return Ok(patient.lv.coord_of(&point));
        }
        match (&p.depth, &p.angle_deg) {
            (Some(depth), Some(angle)) => {
                Ok(SurfaceCoord { depth: *depth.get_ref(), angle_rad: angle.get_ref().to_radians() })
            }
            _ => Err(self.error(place.span(), field, "give either `vein` and `fraction`, or `depth` and `angle_deg`")),
        }
    }
}

fn empty_goals() -> Goals {
    Goals { fluoro_time_s: 0.0, contrast_injections: 0, time_to_target_s: 0.0, learning: Vec::new() }
}

/// The centerline point `fraction` of the way along a branch.
#[must_use]
pub fn point_along(patient: &SyntheticPatient, id: BranchId, fraction: f64) -> Point3<f64> {
    let Some(b) = patient.tree.get(id) else { return patient.lv.base_center_in_patient };
    let n = b.centerline_in_patient.len();
    let k = ((n.saturating_sub(1)) as f64 * fraction.clamp(0.0, 1.0)).round() as usize;
    b.centerline_in_patient[k.min(n - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
schema = "csnav.scenario/1"
id = "t"
title = "Test"
difficulty = "beginner"
summary = "A test."

[patient]
seed = 7

[physiology]
latest_activated = { vein = "PLV", fraction = 0.5 }
no_seeded_scar = true

[[physiology.scar]]
at = { depth = 0.5, angle_deg = 160 }
radius_mm = 15
transmurality = 0.8

[lead]
available = [{ model = "attain_performa" }, { model = "quartet", diameter_fr = 4.0 }]

[goals]
fluoro_time_s = 240
contrast_injections = 4
time_to_target_s = 600
learning = ["x"]
"#;

    #[test]
    fn a_good_scenario_builds_its_patient() {
        let s = Scenario::parse(GOOD, "good.toml").unwrap();
        let p = s.patient().unwrap();
        assert_eq!(p.physiology.scars.len(), 1);
        assert_eq!(s.leads.len(), 2);
        assert!((s.leads[1].diameter_fr - 4.0).abs() < 1e-12);
        let plv = p.tree.find(VeinLabel::PosterolateralVein).unwrap();
        let mid = plv.centerline_in_patient[(plv.centerline_in_patient.len() - 1) / 2];
        let want = p.lv.coord_of(&mid);
        assert!((p.physiology.activation.latest.angle_rad - want.angle_rad).abs() < 0.05);
    }

    fn error_of(text: &str) -> ScenarioError {
        Scenario::parse(text, "bad.toml").unwrap_err()
    }

    #[test]
    fn errors_name_the_field_and_the_line() {
        let e = error_of(&GOOD.replace("radius_mm = 15", "radius_mm = 90"));
        assert_eq!((e.field.as_str(), e.line), ("physiology.scar[0].radius_mm", 17), "{e}");
        assert!(
            e.to_string().starts_with("bad.toml:17:13: field `physiology.scar[0].radius_mm`: 90 is outside"),
            "{e}"
        );

        let e = error_of(&GOOD.replace("fraction = 0.5", "fraction = 1.5"));
        assert_eq!((e.field.as_str(), e.line), ("physiology.latest_activated.fraction", 12), "{e}");

        let e = error_of(&GOOD.replace("vein = \"PLV\"", "vein = \"XYZ\""));
        assert_eq!(e.field, "physiology.latest_activated.vein", "{e}");
        assert!(e.message.contains("unknown vein \"XYZ\""), "{e}");

        // A vein the seed's anatomy lacks: patient 7 has no ALV?
        let seven = SyntheticPatient::generate(7);
        let missing = [VeinLabel::AnterolateralVein, VeinLabel::LateralMarginalVein, VeinLabel::PosterolateralVein]
            .into_iter()
            .find(|l| seven.tree.find(*l).is_none());
        if let Some(missing) = missing {
            let e = error_of(&GOOD.replace("vein = \"PLV\"", &format!("vein = \"{}\"", missing.abbreviation())));
            assert!(e.message.contains("patient 7 has no"), "{e}");
            assert_eq!(e.line, 12);
        }

        let e = error_of(&GOOD.replace("seed = 7", "seed = \"seven\""));
        assert_eq!((e.field.as_str(), e.line), ("patient.seed", 9), "{e}");
        assert!(e.message.contains("invalid type"), "{e}");

        let e = error_of(&GOOD.replace("[patient]\nseed = 7", "[patient]\nsead = 7"));
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("unknown field `sead`"), "{e}");

        let e = error_of(&GOOD.replace("fluoro_time_s = 240\n", ""));
        assert!(e.message.contains("missing field `fluoro_time_s`"), "{e}");
        assert_eq!(e.field, "goals", "{e}");
        // The table that lacks it.
        assert_eq!(e.line, 23, "{e}");

        let e = error_of(&GOOD.replace("model = \"quartet\"", "model = \"quartz\""));
        assert!(e.message.contains("unknown variant `quartz`"), "{e}");
        assert_eq!(e.line, 21, "{e}");

        let e = error_of(&GOOD.replace("at = { depth = 0.5, angle_deg = 160 }", "at = { depth = 0.5 }"));
        assert_eq!(e.field, "physiology.scar[0].at", "{e}");
        assert!(e.message.contains("either `vein` and `fraction`"), "{e}");

        let e = error_of(&GOOD.replace("csnav.scenario/1", "csnav.scenario/9"));
        assert_eq!((e.field.as_str(), e.line), ("schema", 2), "{e}");

        let e = error_of("schema = \"csnav.scenario/1\"\nid = [");
        assert_eq!(e.line, 2, "{e}");
    }
}
