//! The trainee's score out of 100: the site (70: how close its value comes to the best
//! usable site of this patient, nothing for a site that fails the acceptance gates), and the
//! conduct of the case (fluoroscopy time 10, contrast 5, time to the final site 10, safety 5:
//! dislodgements and injured veins). Each part is full at or under the scenario's goal and
//! falls linearly to nothing at `worst_multiple` times it. Every lost point has a reason.

use serde::Serialize;

use crate::dose::Exposure;
use crate::scenario::Goals;
use crate::site::SiteEval;
use crate::site::{Analysis, NOTABLE_SCAR};

/// Points and the site-value scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreConfig {
    /// Points for the site.
    pub site_points: f64,
    /// Points for fluoroscopy time.
    pub fluoro_points: f64,
    /// Points for contrast.
    pub contrast_points: f64,
    /// Points for time to the final site.
    pub time_points: f64,
    /// Points for safety.
    pub safety_points: f64,
    /// Site value worth no points (about a site activated at a third of the QRS).
    pub value_floor: f64,
    /// Multiple of a goal at which its points reach zero.
    pub worst_multiple: f64,
    /// Safety points lost per dislodgement.
    pub per_dislodgement: f64,
    /// Safety points lost per injured vein.
    pub per_vein_trauma: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            site_points: 70.0,
            fluoro_points: 10.0,
            contrast_points: 5.0,
            time_points: 10.0,
            safety_points: 5.0,
            value_floor: 0.35,
            worst_multiple: 3.0,
            per_dislodgement: 1.5,
            per_vein_trauma: 2.5,
        }
    }
}

/// How the case was conducted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Conduct {
    /// Fluoroscopy, dose and contrast.
    pub exposure: Exposure,
    /// From the start to the final site, s.
    pub time_to_site_s: f64,
    /// Leads that fell back.
    pub dislodgements: u32,
    /// Veins injured by pushing a wedged lead.
    pub vein_traumas: u32,
}

/// One part of the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScorePart {
    /// Its name.
    pub name: String,
    /// Points given.
    pub points: f64,
    /// Points possible.
    pub max_points: f64,
    /// Why.
    pub detail: String,
}

/// The trainee's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Total points.
    pub total: f64,
    /// Points possible.
    pub max_points: f64,
    /// The parts.
    pub parts: Vec<ScorePart>,
    /// Why points were lost at the site, most important first.
    pub site_reasons: Vec<String>,
}

/// Points for `value` against a `goal`: full at or under it, none at `worst` times it.
fn graded(value: f64, goal: f64, worst: f64, max: f64) -> f64 {
    if value <= goal { max } else { max * (1.0 - (value - goal) / (goal * (worst - 1.0)).max(1e-9)).clamp(0.0, 1.0) }
}

/// Why a site is worse than the best one, in the implanter's terms.
#[must_use]
pub fn site_reasons(site: Option<&SiteEval>, best: &SiteEval, analysis: &Analysis) -> Vec<String> {
    let gates = &analysis.ranking;
    let Some(site) = site else {
        return vec!["no lead was left in a vein: the lead came back to the ostium".into()];
    };
    let mut out = Vec::new();
    if !site.eligible {
        let gates: Vec<&str> = site
            .reasons
            .iter()
            .skip_while(|r| r.as_str() == "no vector passes the gates")
            .take(3)
            .map(String::as_str)
            .collect();
        out.push(format!("the site fails the acceptance gates (no vector passes): {}", gates.join("; ")));
    }
    if let (Some(th), Some(pns)) = (site.threshold_volts, site.pns_volts)
        && pns < gates.pns_margin * th
    {
        out.push(format!(
            "phrenic nerve stimulation at {pns:.1} V, under {:.1}x the {th:.1} V capture threshold ({}): the diaphragm would twitch",
            gates.pns_margin,
            site.vector.as_deref().unwrap_or("best vector")
        ));
    }
    if site.apical {
        out.push(
            "apical position: apical LV pacing carried higher heart-failure and death risk (MADIT-CRT, REVERSE); \
             pull back to the basal or mid third"
                .into(),
        );
    }
    if site.scar > NOTABLE_SCAR {
        out.push(format!(
            "scar under the lead (burden {:.2}): pacing in scar captures at high output and responds poorly",
            site.scar
        ));
    }
    if let Some(th) = site.threshold_volts
        && th > gates.max_threshold_volts
    {
        out.push(format!(
            "capture threshold {th:.1} V at {:.1} ms, above the {:.1} V acceptance limit",
            analysis.pulse_width_ms, gates.max_threshold_volts
        ));
    }
    if let (Some(mine), Some(theirs)) = (site.qlv_ratio(), best.qlv_ratio())
        && theirs - mine > 0.05
    {
        out.push(format!(
            "QLV {:.0} ms is {mine:.2} of the QRS; the best site ({}) activates later, at {theirs:.2} ({:.0} ms)",
            site.qlv_ms.unwrap_or(0.0),
            best.name(),
            best.qlv_ms.unwrap_or(0.0)
        ));
    }
    if site.lead != best.lead && site.vein != best.vein {
        out.push(format!("the best site was reached with the {}", best.lead));
    }
    out
}

/// Scores a finished session.
#[must_use]
pub fn score(
    site: Option<&SiteEval>,
    best: &SiteEval,
    conduct: &Conduct,
    goals: &Goals,
    config: &ScoreConfig,
    analysis: &Analysis,
) -> Score {
    let best_value = best.value.unwrap_or(config.value_floor + 1.0);
    let (site_points, site_detail) = match site {
        None => (0.0, "no lead in a vein".to_owned()),
        Some(s) => match s.value.filter(|_| s.eligible) {
            None => (0.0, format!("{}: not an acceptable site", s.name())),
            Some(v) => {
                let fraction = ((v - config.value_floor) / (best_value - config.value_floor).max(1e-9)).clamp(0.0, 1.0);
                (
                    config.site_points * fraction,
                    format!("{}: value {v:.2} against {best_value:.2} at the best site ({})", s.name(), best.name()),
                )
            }
        },
    };
    let e = &conduct.exposure;
    let w = config.worst_multiple;
    let safety_lost = f64::from(conduct.dislodgements) * config.per_dislodgement
        + f64::from(conduct.vein_traumas) * config.per_vein_trauma;
    let parts = vec![
        ScorePart { name: "site".into(), points: site_points, max_points: config.site_points, detail: site_detail },
        ScorePart {
            name: "fluoroscopy".into(),
            points: graded(e.fluoro_s, goals.fluoro_time_s, w, config.fluoro_points),
            max_points: config.fluoro_points,
            detail: format!(
                "{:.0} s (goal {:.0} s), air kerma {:.1} mGy, DAP {:.2} Gy cm2",
                e.fluoro_s, goals.fluoro_time_s, e.air_kerma_mgy, e.dap_gycm2
            ),
        },
        ScorePart {
            name: "contrast".into(),
            points: graded(f64::from(e.injections), f64::from(goals.contrast_injections), w, config.contrast_points),
            max_points: config.contrast_points,
            detail: format!(
                "{} injections, {:.0} mL (goal {} injections)",
                e.injections, e.contrast_ml, goals.contrast_injections
            ),
        },
        ScorePart {
            name: "time to site".into(),
            points: graded(conduct.time_to_site_s, goals.time_to_target_s, w, config.time_points),
            max_points: config.time_points,
            detail: format!("{:.0} s (goal {:.0} s)", conduct.time_to_site_s, goals.time_to_target_s),
        },
        ScorePart {
            name: "safety".into(),
            points: (config.safety_points - safety_lost).max(0.0),
            max_points: config.safety_points,
            detail: format!("{} dislodgements, {} injured veins", conduct.dislodgements, conduct.vein_traumas),
        },
    ];
    let total = parts.iter().map(|p| p.points).sum();
    let max_points = parts.iter().map(|p| p.max_points).sum();
    Score { total, max_points, parts, site_reasons: site_reasons(site, best, analysis) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graded_is_full_at_the_goal_and_nothing_at_the_worst() {
        assert!((graded(50.0, 60.0, 3.0, 10.0) - 10.0).abs() < 1e-12);
        assert!((graded(120.0, 60.0, 3.0, 10.0) - 5.0).abs() < 1e-12);
        assert!(graded(180.0, 60.0, 3.0, 10.0).abs() < 1e-12);
        assert!(graded(1000.0, 60.0, 3.0, 10.0).abs() < 1e-12);
    }
}
