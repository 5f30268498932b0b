//! How good a lead position is, from the heart model's truth (no measurement noise): every
//! vector's capture threshold and phrenic threshold at 0.5 ms, impedance, R wave and QLV,
//! put through device-link's ranking (the same gates and weights the live ranking uses), so
//! a trainee is scored by the rules csnav advises with. [`best_site`] searches every
//! position a lead on the shelf can reach and hold for the best site of the patient.

use device_link::heart::{HeartModelParams, LeadSite};
use device_link::lead::electrodes_along;
use device_link::procedures::{PhrenicOutcome, ThresholdOutcome};
use device_link::protocol::OutputLimits;
use device_link::ranking::{RankingConfig, SiteRecord, rank_sites};
use device_link::runner::{Measurements, Run, SweepSettings, VectorResult};
use nalgebra::Point3;
use serde::Serialize;
use simulator::SyntheticPatient;
use simulator::heart::{LongAxisSegment, WallSegment};
use simulator::venous_tree::BranchId;
use venogram::VeinLabel;

use crate::catheter::{Catheter, CatheterConfig, extend_out_of_ostium};
use crate::leads::LeadSpec;

/// Scar burden under the lead worth naming to the trainee.
pub const NOTABLE_SCAR: f64 = 0.2;

/// How a site is judged: the analyzer's test settings and the ranking's gates and weights,
/// by default the device link's own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Analysis {
    /// The ranking.
    pub ranking: RankingConfig,
    /// Pulse width of every threshold, ms.
    pub pulse_width_ms: f64,
    /// The analyzer's highest output: a threshold above it is no capture, volts.
    pub max_output_volts: f64,
    /// The phrenic screen output, volts.
    pub pns_screen_volts: f64,
}

impl Default for Analysis {
    fn default() -> Self {
        let sweep = SweepSettings::default();
        let max_output_volts = OutputLimits::default().max_amplitude_volts;
        Self {
            ranking: RankingConfig::default(),
            pulse_width_ms: sweep.pulse_width_ms,
            max_output_volts,
            pns_screen_volts: sweep.pns_screen_volts.min(max_output_volts),
        }
    }
}

/// A lead position and what the heart offers there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteEval {
    /// The lead.
    pub lead: String,
    /// Vein segment of the tip.
    pub branch: u32,
    /// Its label.
    pub vein: VeinLabel,
    /// Fraction along the segment.
    pub fraction: f64,
    /// Distance from the ostium along the veins, mm.
    pub arc_from_ostium_mm: f64,
    /// Tip position, patient LPS mm.
    pub tip_in_patient_mm: [f64; 3],
    /// Short-axis wall segment under the tip.
    pub wall: WallSegment,
    /// Long-axis third under the tip.
    pub long_axis: LongAxisSegment,
    /// Whether the tip is in the apical third.
    pub apical: bool,
    /// Largest scar burden under any electrode, 0..1.
    pub scar: f64,
    /// Whether any vector passes every gate.
    pub eligible: bool,
    /// The ranking's score (eligible sites only).
    pub value: Option<f64>,
    /// The best vector (eligible sites), or the lowest-threshold one.
    pub vector: Option<String>,
    /// Its capture threshold at 0.5 ms, volts.
    pub threshold_volts: Option<f64>,
    /// Its phrenic threshold at 0.5 ms, volts (None: no PNS at the screen output).
    pub pns_volts: Option<f64>,
    /// Its QLV, ms.
    pub qlv_ms: Option<f64>,
    /// Surface QRS duration, ms.
    pub qrs_duration_ms: f64,
    /// Its impedance, ohm.
    pub impedance_ohm: Option<f64>,
    /// The ranking's reasons (score terms, or the gates each vector failed).
    pub reasons: Vec<String>,
}

impl SiteEval {
    /// QLV as a fraction of the QRS duration.
    #[must_use]
    pub fn qlv_ratio(&self) -> Option<f64> {
        self.qlv_ms.map(|q| q / self.qrs_duration_ms.max(1.0))
    }

    /// PNS safety margin (PNS threshold over capture threshold), None without PNS or threshold.
    #[must_use]
    pub fn pns_margin(&self) -> Option<f64> {
        Some(self.pns_volts? / self.threshold_volts?.max(1e-6))
    }

    /// A short name, e.g. `PLV 45% (Quartet 4.7 Fr)`.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{} {:.0}% ({})", self.vein.abbreviation(), 100.0 * self.fraction, self.lead)
    }
}

/// Where the lead is, for an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Segment.
    pub branch: BranchId,
    /// Its label.
    pub vein: VeinLabel,
    /// Fraction along it.
    pub fraction: f64,
    /// Distance from the ostium, mm.
    pub arc_from_ostium_mm: f64,
}

/// Evaluates `lead` with its tip at `path_from_tip[0]` and its body along the path.
#[must_use]
pub fn evaluate(
    patient: &SyntheticPatient,
    lead: LeadSpec,
    path_from_tip: &[[f64; 3]],
    placement: Placement,
    analysis: &Analysis,
) -> SiteEval {
    let (pulse_width_ms, max_output_volts, pns_screen_volts) =
        (analysis.pulse_width_ms, analysis.max_output_volts, analysis.pns_screen_volts);
    let tip = path_from_tip.first().copied().unwrap_or([0.0; 3]);
    let coord = patient.lv.coord_of(&Point3::from(tip));
    let qrs_duration_ms = patient.physiology.activation.qrs_duration_ms;
    let mut eval = SiteEval {
        lead: lead.name(),
        branch: placement.branch.0,
        vein: placement.vein,
        fraction: placement.fraction,
        arc_from_ostium_mm: placement.arc_from_ostium_mm,
        tip_in_patient_mm: tip,
        wall: coord.wall(),
        long_axis: coord.long_axis(),
        apical: coord.long_axis() == LongAxisSegment::Apical,
        scar: 0.0,
        eligible: false,
        value: None,
        vector: None,
        threshold_volts: None,
        pns_volts: None,
        qlv_ms: None,
        qrs_duration_ms,
        impedance_ohm: None,
        reasons: Vec::new(),
    };
    let Some(electrodes) = electrodes_along(lead.model, path_from_tip) else {
        eval.reasons.push("the lead's electrodes do not fit along the path".into());
        return eval;
    };
    let site = LeadSite::new(patient, lead.model, electrodes, HeartModelParams::default());
    eval.scar = site.electrodes.iter().map(|e| e.scar).fold(0.0, f64::max);
    let vectors: Vec<VectorResult> = lead
        .model
        .vectors()
        .into_iter()
        .map(|v| {
            let threshold = site.capture_threshold_volts(v, pulse_width_ms);
            let pns = site.phrenic_threshold_volts(v, pulse_width_ms);
            VectorResult {
                vector: v,
                name: lead.model.vector_name(v),
                measurements: Some(Measurements {
                    impedance_ohm: site.impedance_ohm(v),
                    r_wave_mv: site.r_wave_mv(v),
                    qlv_ms: site.qlv_ms(v),
                    qrs_duration_ms,
                }),
                threshold: Run::Complete {
                    result: if threshold <= max_output_volts {
                        ThresholdOutcome::Threshold { value: threshold, at_floor: false }
                    } else {
                        ThresholdOutcome::NoCaptureAtStart { start: max_output_volts }
                    },
                },
                phrenic: Run::Complete {
                    result: if pns <= pns_screen_volts {
                        PhrenicOutcome::Threshold { volts: pns }
                    } else {
                        PhrenicOutcome::NoneAtScreen { screen_volts: pns_screen_volts }
                    },
                },
                margin_ok: None,
            }
        })
        .collect();
    let record = SiteRecord {
        site: placement.vein.abbreviation().to_owned(),
        vein: Some(placement.vein.abbreviation().to_owned()),
        arc_mm: Some(placement.arc_from_ostium_mm),
        apical: eval.apical,
        scar: Some(eval.scar),
        vectors: vectors.clone(),
    };
    let Some(ranked) = rank_sites(&[record], &analysis.ranking).into_iter().next() else { return eval };
    eval.eligible = ranked.eligible;
    eval.value = ranked.score;
    eval.reasons = ranked.reasons;
    // The vector shown: the ranking's best, else the one with the lowest threshold.
    let shown = match &ranked.best_vector {
        Some(name) => vectors.iter().find(|v| &v.name == name),
        None => vectors.iter().min_by(|a, b| {
            site.capture_threshold_volts(a.vector, pulse_width_ms)
                .total_cmp(&site.capture_threshold_volts(b.vector, pulse_width_ms))
        }),
    };
    if let Some(v) = shown {
        eval.vector = Some(v.name.clone());
        eval.threshold_volts = Some(site.capture_threshold_volts(v.vector, pulse_width_ms));
        let pns = site.phrenic_threshold_volts(v.vector, pulse_width_ms);
        eval.pns_volts = (pns <= pns_screen_volts).then_some(pns);
        eval.qlv_ms = Some(site.qlv_ms(v.vector));
        eval.impedance_ohm = Some(site.impedance_ohm(v.vector));
    }
    eval
}

/// Evaluates where the catheter's lead is now.
#[must_use]
pub fn evaluate_catheter(patient: &SyntheticPatient, catheter: &Catheter, analysis: &Analysis) -> SiteEval {
    let place = catheter.lead_place();
    evaluate(
        patient,
        catheter.lead(),
        &catheter.path_back_from(catheter.lead_s_mm()),
        Placement {
            branch: place.branch,
            vein: place.vein,
            fraction: place.fraction,
            arc_from_ostium_mm: place.arc_from_ostium_mm,
        },
        analysis,
    )
}

/// A candidate position in the search, and whether a lead can be left there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The lead.
    pub lead: LeadSpec,
    /// The evaluation.
    pub eval: SiteEval,
    /// Centerline index of the tip in its segment.
    pub index: usize,
    /// Whether the lead can get there (the veins on the way admit it).
    pub reachable: bool,
    /// Whether it stays there without the wire (wedged or a vein small enough to hold it).
    pub stable: bool,
}

impl Candidate {
    /// Whether it is a site a trainee could finish at.
    #[must_use]
    pub fn usable(&self) -> bool {
        self.reachable && self.stable
    }
}

/// Every position every 2 mm of every segment, for each lead on the shelf, evaluated, with
/// whether the lead can reach it and stay.
#[must_use]
pub fn candidates(
    patient: &SyntheticPatient,
    leads: &[LeadSpec],
    config: &CatheterConfig,
    analysis: &Analysis,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for lead in leads {
        let lead_d = lead.diameter_mm();
        for b in &patient.tree.branches {
            let n = b.centerline_in_patient.len();
            let first = usize::from(b.takeoff.is_some());
            for index in (first..n).step_by(2) {
                let path = patient.tree.path_to_ostium(b.id, index);
                // Every vein on the way admits the lead.
                let reachable = path.iter().all(|(_, r)| 2.0 * r >= config.distension * lead_d);
                let vein_d = 2.0 * b.radius_mm[index];
                let stable = vein_d <= config.stable_ratio * lead_d;
                let arc: f64 = path.windows(2).map(|w| (w[1].0 - w[0].0).norm()).sum();
                let mut path_from_tip: Vec<[f64; 3]> = path.iter().map(|(p, _)| p.coords.into()).collect();
                extend_out_of_ostium(&patient.tree, &mut path_from_tip);
                let eval = evaluate(
                    patient,
                    *lead,
                    &path_from_tip,
                    Placement {
                        branch: b.id,
                        vein: b.label,
                        fraction: index as f64 / (n - 1).max(1) as f64,
                        arc_from_ostium_mm: arc,
                    },
                    analysis,
                );
                out.push(Candidate { lead: *lead, eval, index, reachable, stable });
            }
        }
    }
    out
}

/// The best usable site of the patient (eligible, reachable and stable): its index in `all`.
#[must_use]
pub fn best_site(all: &[Candidate]) -> Option<usize> {
    (0..all.len())
        .filter(|&k| all[k].usable() && all[k].eval.eligible)
        // The first of equals, as the search found them.
        .min_by(|&a, &b| all[b].eval.value.unwrap_or(f64::MIN).total_cmp(&all[a].eval.value.unwrap_or(f64::MIN)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::default_diameter_fr;
    use device_link::lead::LeadModel;

    #[test]
    fn the_best_site_is_late_non_apical_and_better_than_the_apex() {
        let patient = SyntheticPatient::generate(7);
        let lead =
            LeadSpec { model: LeadModel::AttainPerforma, diameter_fr: default_diameter_fr(LeadModel::AttainPerforma) };
        let all = candidates(&patient, &[lead], &CatheterConfig::default(), &Analysis::default());
        let top = &all[best_site(&all).expect("a usable site")];
        assert!(!top.eval.apical && top.eval.eligible, "{:?}", top.eval);
        assert!(top.eval.qlv_ratio().unwrap() > 0.6, "{:?}", top.eval);
        // Every apical eligible site scores below the best, by at least the apical penalty's share.
        for c in all.iter().filter(|c| c.eval.apical && c.eval.eligible) {
            assert!(c.eval.value.unwrap() < top.eval.value.unwrap() - 0.1, "{:?}", c.eval);
        }
        // Positions are evaluated across the whole tree.
        assert!(all.len() > 100);
    }
}
