//! Ranking candidate LV lead sites from their test results (research-device.md 5; the score
//! is a design, not a validated model, and every gate and weight is a field of
//! [`RankingConfig`]).
//!
//! Hard gates, per vector: a complete capture threshold at most 2.5 V at 0.5 ms; a complete
//! phrenic test with no stimulation at the screen output or a PNS threshold at least twice
//! the capture threshold; impedance within 200-2000 ohm. A site is eligible when at least one
//! vector passes. Eligible sites are ordered by score: the best vector's electrical delay
//! (QLV/QRSd, the strongest published predictor of response), less a battery cost of the
//! threshold (energy goes with V^2), less a penalty for a small R wave (a scar marker); the
//! site then loses for an apical position (MADIT-CRT, REVERSE) and for known scar, and gains
//! a little for the lateral wall. Ineligible sites follow, each with the gate it failed.

use serde::{Deserialize, Serialize};

use crate::procedures::{PhrenicOutcome, ThresholdOutcome};
use crate::runner::{Run, VectorResult};

/// Gates and weights of the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankingConfig {
    /// Highest acceptable capture threshold at 0.5 ms, volts.
    pub max_threshold_volts: f64,
    /// Required PNS/capture ratio.
    pub pns_margin: f64,
    /// Acceptable impedance, ohm.
    pub impedance_ohm: (f64, f64),
    /// Weight of QLV/QRSd.
    pub weight_qlv_ratio: f64,
    /// Cost per V^2 of threshold.
    pub weight_threshold_energy: f64,
    /// R wave below which the site looks scarred, mV, and its penalty.
    pub low_r_wave_mv: f64,
    /// See `low_r_wave_mv`.
    pub weight_low_r_wave: f64,
    /// Penalty of an apical site.
    pub weight_apical: f64,
    /// Penalty per unit of known scar (0..1) under the site.
    pub weight_scar: f64,
    /// Bonus of a lateral-wall vein (PLV, LMV).
    pub weight_lateral: f64,
}

impl Default for RankingConfig {
    fn default() -> Self {
        Self {
            max_threshold_volts: 2.5,
            pns_margin: 2.0,
            impedance_ohm: (200.0, 2000.0),
            weight_qlv_ratio: 1.0,
            weight_threshold_energy: 0.02,
            low_r_wave_mv: 5.0,
            weight_low_r_wave: 0.15,
            weight_apical: 0.3,
            weight_scar: 0.6,
            weight_lateral: 0.05,
        }
    }
}

/// Everything measured at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRecord {
    /// The site's name (e.g. `PLV@0.67`).
    pub site: String,
    /// Vein label abbreviation, when known.
    pub vein: Option<String>,
    /// Arc length from the ostium, mm, when known.
    pub arc_mm: Option<f64>,
    /// Whether the tip is in the apical third.
    pub apical: bool,
    /// Scar under the tip from imaging, 0..1, when known.
    pub scar: Option<f64>,
    /// Per-vector results (a sweep).
    pub vectors: Vec<VectorResult>,
}

/// A site's place in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedSite {
    /// 1 = best.
    pub rank: usize,
    /// The site.
    pub site: String,
    /// Whether any vector passes every gate.
    pub eligible: bool,
    /// The best vector, when eligible.
    pub best_vector: Option<String>,
    /// Its score, when eligible.
    pub score: Option<f64>,
    /// Why: the score's terms, or the gates each vector failed.
    pub reasons: Vec<String>,
}

/// A vector's gates: `Ok((threshold, qlv ratio, r wave))` or why it fails.
fn gate(v: &VectorResult, config: &RankingConfig) -> Result<(f64, f64, f64), String> {
    let threshold = match &v.threshold {
        Run::Complete { result: ThresholdOutcome::Threshold { value, .. } } => *value,
        Run::Complete { result: ThresholdOutcome::NoCaptureAtStart { start } } => {
            return Err(format!("no capture at {start:.1} V"));
        }
        Run::Incomplete { reason } => return Err(format!("capture test incomplete ({reason})")),
    };
    if threshold > config.max_threshold_volts {
        return Err(format!("threshold {threshold:.1} V over {:.1} V", config.max_threshold_volts));
    }
    match &v.phrenic {
        Run::Complete { result: PhrenicOutcome::NoneAtScreen { .. } } => {}
        Run::Complete { result: PhrenicOutcome::Threshold { volts } } => {
            if *volts < config.pns_margin * threshold {
                return Err(format!(
                    "PNS at {volts:.1} V, under {:.1}x the {threshold:.1} V threshold",
                    config.pns_margin
                ));
            }
        }
        Run::Incomplete { reason } => return Err(format!("PNS test incomplete ({reason})")),
    }
    let Some(m) = v.measurements else { return Err("no impedance/QLV measurement".into()) };
    if m.impedance_ohm < config.impedance_ohm.0 || m.impedance_ohm > config.impedance_ohm.1 {
        return Err(format!(
            "impedance {:.0} ohm outside {:.0}-{:.0}",
            m.impedance_ohm, config.impedance_ohm.0, config.impedance_ohm.1
        ));
    }
    Ok((threshold, m.qlv_ms / m.qrs_duration_ms.max(1.0), m.r_wave_mv))
}

/// Ranks the sites, best first.
#[must_use]
pub fn rank_sites(records: &[SiteRecord], config: &RankingConfig) -> Vec<RankedSite> {
    let mut ranked: Vec<RankedSite> = records
        .iter()
        .map(|site| {
            let mut best: Option<(f64, String, Vec<String>)> = None;
            let mut failures = Vec::new();
            for v in &site.vectors {
                match gate(v, config) {
                    Ok((threshold, qlv_ratio, r_wave)) => {
                        let mut score = config.weight_qlv_ratio * qlv_ratio
                            - config.weight_threshold_energy * threshold * threshold;
                        let mut terms = vec![
                            format!("QLV/QRSd {qlv_ratio:.2} (+{:.2})", config.weight_qlv_ratio * qlv_ratio),
                            format!(
                                "threshold {threshold:.1} V (-{:.2})",
                                config.weight_threshold_energy * threshold * threshold
                            ),
                        ];
                        if r_wave < config.low_r_wave_mv {
                            score -= config.weight_low_r_wave;
                            terms.push(format!("R wave {r_wave:.1} mV, low (-{:.2})", config.weight_low_r_wave));
                        }
                        if best.as_ref().is_none_or(|b| score > b.0) {
                            best = Some((score, v.name.clone(), terms));
                        }
                    }
                    Err(why) => failures.push(format!("{}: {why}", v.name)),
                }
            }
            let Some((mut score, vector, mut reasons)) = best else {
                let mut reasons = vec!["no vector passes the gates".to_owned()];
                reasons.extend(failures);
                return RankedSite {
                    rank: 0,
                    site: site.site.clone(),
                    eligible: false,
                    best_vector: None,
                    score: None,
                    reasons,
                };
            };
            if site.apical {
                score -= config.weight_apical;
                reasons.push(format!("apical (-{:.2})", config.weight_apical));
            }
            if let Some(scar) = site.scar.filter(|s| *s > 0.0) {
                score -= config.weight_scar * scar;
                reasons.push(format!("scar {scar:.2} (-{:.2})", config.weight_scar * scar));
            }
            if matches!(site.vein.as_deref(), Some("PLV" | "LMV")) {
                score += config.weight_lateral;
                reasons.push(format!("lateral wall (+{:.2})", config.weight_lateral));
            }
            reasons.insert(0, format!("best vector {vector}"));
            RankedSite {
                rank: 0,
                site: site.site.clone(),
                eligible: true,
                best_vector: Some(vector),
                score: Some(score),
                reasons,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.eligible
            .cmp(&a.eligible)
            .then(b.score.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.score.unwrap_or(f64::NEG_INFINITY)))
    });
    for (k, r) in ranked.iter_mut().enumerate() {
        r.rank = k + 1;
    }
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{Pole, Vector};
    use crate::runner::Measurements;

    fn vector(threshold: f64, pns: Option<f64>, qlv_ms: f64, impedance_ohm: f64, r_wave_mv: f64) -> VectorResult {
        VectorResult {
            vector: Vector { cathode: 0, anode: Pole::RvCoil },
            name: format!("v{threshold}"),
            measurements: Some(Measurements { impedance_ohm, r_wave_mv, qlv_ms, qrs_duration_ms: 160.0 }),
            threshold: Run::Complete { result: ThresholdOutcome::Threshold { value: threshold, at_floor: false } },
            phrenic: Run::Complete {
                result: pns.map_or(PhrenicOutcome::NoneAtScreen { screen_volts: 10.0 }, |volts| {
                    PhrenicOutcome::Threshold { volts }
                }),
            },
            margin_ok: None,
        }
    }

    fn site(name: &str, vein: &str, apical: bool, vectors: Vec<VectorResult>) -> SiteRecord {
        SiteRecord { site: name.into(), vein: Some(vein.into()), arc_mm: None, apical, scar: None, vectors }
    }

    #[test]
    fn gates_then_score_with_reasons() {
        let config = RankingConfig::default();
        let sites = vec![
            // Late activation but apical.
            site("PLV apical", "PLV", true, vec![vector(1.0, None, 130.0, 700.0, 10.0)]),
            // Late, mid, good: the best.
            site("PLV mid", "PLV", false, vec![vector(1.2, Some(8.0), 125.0, 800.0, 9.0)]),
            // Early activation (anterior).
            site("ALV", "ALV", false, vec![vector(0.8, None, 60.0, 650.0, 12.0)]),
            // PNS too close to the threshold on its only vector.
            site("LMV", "LMV", false, vec![vector(1.5, Some(2.5), 140.0, 700.0, 8.0)]),
            // Threshold too high.
            site("MCV", "MCV", false, vec![vector(3.5, None, 110.0, 700.0, 8.0)]),
            // An incomplete test is no result.
            site(
                "GCV",
                "GCV",
                false,
                vec![VectorResult {
                    threshold: Run::Incomplete { reason: "link lost".into() },
                    ..vector(1.0, None, 100.0, 700.0, 8.0)
                }],
            ),
        ];
        let ranked = rank_sites(&sites, &config);
        let order: Vec<&str> = ranked.iter().map(|r| r.site.as_str()).collect();
        assert_eq!(&order[..3], ["PLV mid", "PLV apical", "ALV"]);
        assert!(ranked[..3].iter().all(|r| r.eligible) && ranked[3..].iter().all(|r| !r.eligible));
        assert_eq!(ranked.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert!(ranked[1].reasons.iter().any(|r| r.starts_with("apical")));
        let why = |name: &str| ranked.iter().find(|r| r.site == name).unwrap().reasons.join("; ");
        assert!(why("LMV").contains("PNS at 2.5 V, under 2.0x"), "{}", why("LMV"));
        assert!(why("MCV").contains("threshold 3.5 V over 2.5 V"), "{}", why("MCV"));
        assert!(why("GCV").contains("incomplete"), "{}", why("GCV"));
        // The gates are configuration: a looser threshold gate admits the MCV.
        let loose = RankingConfig { max_threshold_volts: 4.0, ..config };
        assert!(rank_sites(&sites, &loose).iter().find(|r| r.site == "MCV").unwrap().eligible);
    }
}
