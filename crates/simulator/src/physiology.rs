//! The physiology field over the LV surface that the device model reads at a lead position:
//! electrical activation time (for QLV, with a left bundle branch block pattern), scar
//! regions, the course of the left phrenic nerve, and tissue excitability (strength-duration
//! parameters). Values are seeded within the ranges of research-device.md and DOMAIN.md;
//! figures marked UNCONFIRMED there are fields of [`TissueModel`], not constants.

use nalgebra::Point3;
use serde::Serialize;

use crate::heart::{LvSurface, SurfaceCoord};
use crate::rng::SimRng;

/// LV activation in left bundle branch block: earliest at the mid septum, latest at the
/// basal-to-mid lateral or posterolateral wall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivationMap {
    /// Surface QRS duration, ms (CRT candidates: 130-200).
    pub qrs_duration_ms: f64,
    /// Delay from QRS onset to the first LV breakthrough, ms.
    pub breakthrough_ms: f64,
    /// Where LV activation starts.
    pub earliest: SurfaceCoord,
    /// The latest-activated site.
    pub latest: SurfaceCoord,
    /// Activation time at the latest site, ms after QRS onset.
    pub latest_ms: f64,
}

impl ActivationMap {
    /// Local activation time after QRS onset at a surface position (the QLV a lead there measures), ms.
    #[must_use]
    pub fn activation_time_ms(&self, lv: &LvSurface, at: SurfaceCoord) -> f64 {
        let span = lv.surface_distance_mm(self.earliest, self.latest).max(1.0);
        let d = lv.surface_distance_mm(self.earliest, at) / span;
        let to_latest = lv.surface_distance_mm(self.latest, at) / span;
        // Spread from the septum, with the latest region a smooth maximum.
        let fraction = (d / (d + to_latest).max(1e-9)).clamp(0.0, 1.0);
        self.breakthrough_ms + (self.latest_ms - self.breakthrough_ms) * fraction
    }
}

/// A patch of myocardial scar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScarRegion {
    /// Centre of the patch.
    pub center: SurfaceCoord,
    /// Radius over the surface, mm.
    pub radius_mm: f64,
    /// 0 (patchy) to 1 (transmural) at the centre.
    pub transmurality: f64,
}

/// The left phrenic nerve on the pericardium over the lateral LV wall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhrenicNerve {
    /// Its course from base to apex (patient LPS, mm), a few mm outside the epicardium.
    pub path_in_patient: Vec<Point3<f64>>,
}

impl PhrenicNerve {
    /// The nerve over the LV wall from just above the base to the apex, at `angle_rad` around
    /// the long axis at the base, drifting by `drift_rad` toward the apex, 3 mm outside the
    /// epicardium.
    #[must_use]
    pub fn over_wall(lv: &LvSurface, angle_rad: f64, drift_rad: f64) -> Self {
        let path_in_patient = (0..=40)
            .map(|i| {
                let t = f64::from(i) / 40.0;
                let coord = SurfaceCoord { depth: -0.1 + 1.05 * t, angle_rad: angle_rad + drift_rad * t };
                lv.point(coord, 3.0)
            })
            .collect();
        Self { path_in_patient }
    }

    /// Shortest distance from a point to the nerve, mm.
    #[must_use]
    pub fn distance_mm(&self, point: &Point3<f64>) -> f64 {
        self.path_in_patient
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0], w[1]);
                let ab = b - a;
                let t = ((point - a).dot(&ab) / ab.norm_squared().max(1e-12)).clamp(0.0, 1.0);
                (point - (a + ab * t)).norm()
            })
            .fold(f64::INFINITY, f64::min)
    }
}

/// Excitability of healthy and scarred myocardium (Weiss/Lapicque strength-duration).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TissueModel {
    /// Rheobase of healthy LV myocardium at a well-contacting epicardial electrode, volts.
    pub rheobase_volts: f64,
    /// Chronaxie, ms (0.4-0.6 for LV leads, UNCONFIRMED).
    pub chronaxie_ms: f64,
    /// Factor on the rheobase at the centre of a transmural scar.
    pub scar_rheobase_factor: f64,
    /// Extra rheobase factor at the base relative to mid-ventricle (thicker fat, AV groove).
    pub basal_rheobase_factor: f64,
}

/// Tissue parameters at one position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TissueParams {
    /// Rheobase, volts.
    pub rheobase_volts: f64,
    /// Chronaxie, ms.
    pub chronaxie_ms: f64,
    /// Scar burden under the position, 0..1.
    pub scar: f64,
}

/// Everything the device model reads about the patient's myocardium.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Physiology {
    /// Activation times.
    pub activation: ActivationMap,
    /// Scar patches (none in a non-ischaemic cardiomyopathy).
    pub scars: Vec<ScarRegion>,
    /// The left phrenic nerve.
    pub phrenic_nerve: PhrenicNerve,
    /// Excitability.
    pub tissue: TissueModel,
}

impl Physiology {
    /// Seeded physiology of a CRT candidate with LBBB; about a third have scar (ischaemic).
    pub fn generate(lv: &LvSurface, rng: &mut SimRng) -> Self {
        let deg = f64::to_radians;
        let qrs_duration_ms = rng.normal_clamped(160.0, 15.0, 130.0, 200.0);
        let activation = ActivationMap {
            qrs_duration_ms,
            breakthrough_ms: rng.range(15.0, 30.0),
            earliest: SurfaceCoord { depth: rng.range(0.4, 0.6), angle_rad: deg(rng.range(-100.0, -80.0)) },
            latest: SurfaceCoord { depth: rng.range(0.1, 0.45), angle_rad: deg(rng.range(95.0, 160.0)) },
            latest_ms: qrs_duration_ms * rng.range(0.75, 0.92),
        };
        let scar_count = if rng.chance(0.35) { 1 + usize::from(rng.chance(0.3)) } else { 0 };
        let scars = (0..scar_count)
            .map(|_| ScarRegion {
                center: SurfaceCoord { depth: rng.range(0.2, 0.9), angle_rad: deg(rng.range(60.0, 220.0)) },
                radius_mm: rng.range(10.0, 25.0),
                transmurality: rng.range(0.4, 1.0),
            })
            .collect();
        let nerve_angle = deg(rng.range(75.0, 125.0));
        let drift = deg(rng.normal(0.0, 10.0));
        let phrenic_nerve = PhrenicNerve::over_wall(lv, nerve_angle, drift);
        let tissue = TissueModel {
            rheobase_volts: rng.range(0.35, 0.6),
            chronaxie_ms: rng.range(0.4, 0.6),
            scar_rheobase_factor: rng.range(3.0, 6.0),
            basal_rheobase_factor: rng.range(1.2, 1.6),
        };
        Self { activation, scars, phrenic_nerve, tissue }
    }

    /// Scar burden at a position: the strongest patch, fading to 0 at its edge.
    #[must_use]
    pub fn scar_at(&self, lv: &LvSurface, at: SurfaceCoord) -> f64 {
        self.scars
            .iter()
            .map(|s| {
                let d = lv.surface_distance_mm(s.center, at) / s.radius_mm;
                if d >= 1.0 { 0.0 } else { s.transmurality * (1.0 - d * d) }
            })
            .fold(0.0, f64::max)
    }

    /// Tissue parameters under an electrode at a surface position.
    #[must_use]
    pub fn tissue_at(&self, lv: &LvSurface, at: SurfaceCoord) -> TissueParams {
        let scar = self.scar_at(lv, at);
        let basal = 1.0 + (self.tissue.basal_rheobase_factor - 1.0) * (1.0 - at.depth / 0.33).clamp(0.0, 1.0);
        let scarred = 1.0 + (self.tissue.scar_rheobase_factor - 1.0) * scar;
        TissueParams {
            rheobase_volts: self.tissue.rheobase_volts * basal * scarred,
            chronaxie_ms: self.tissue.chronaxie_ms,
            scar,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_is_latest_at_the_latest_site_and_within_qrs() {
        for seed in 0..100 {
            let mut rng = SimRng::new(seed, 0);
            let lv = LvSurface::generate(&mut rng);
            let p = Physiology::generate(&lv, &mut rng);
            let a = &p.activation;
            let at_latest = a.activation_time_ms(&lv, a.latest);
            let at_septum = a.activation_time_ms(&lv, a.earliest);
            assert!((at_latest - a.latest_ms).abs() < 1e-6);
            assert!((at_septum - a.breakthrough_ms).abs() < 1e-6);
            assert!(at_latest <= a.qrs_duration_ms && at_latest >= 0.7 * a.qrs_duration_ms, "seed {seed}");
            let lateral_mid = SurfaceCoord { depth: 0.4, angle_rad: f64::to_radians(110.0) };
            let anterior_apex = SurfaceCoord { depth: 0.9, angle_rad: f64::to_radians(-60.0) };
            assert!(a.activation_time_ms(&lv, lateral_mid) > a.activation_time_ms(&lv, anterior_apex), "seed {seed}");
        }
    }

    #[test]
    fn scar_raises_rheobase_and_the_nerve_runs_over_the_lateral_wall() {
        let mut found_scar = false;
        for seed in 0..60 {
            let mut rng = SimRng::new(seed, 0);
            let lv = LvSurface::generate(&mut rng);
            let p = Physiology::generate(&lv, &mut rng);
            for s in &p.scars {
                found_scar = true;
                let centre = p.tissue_at(&lv, s.center);
                assert!(centre.scar > 0.39 && centre.rheobase_volts > p.tissue.rheobase_volts * 1.5, "seed {seed}");
            }
            let lateral = lv.point(SurfaceCoord { depth: 0.5, angle_rad: f64::to_radians(100.0) }, 0.0);
            let septal = lv.point(SurfaceCoord { depth: 0.5, angle_rad: f64::to_radians(-90.0) }, 0.0);
            assert!(p.phrenic_nerve.distance_mm(&lateral) < p.phrenic_nerve.distance_mm(&septal), "seed {seed}");
        }
        assert!(found_scar, "about a third of patients have scar");
    }
}
