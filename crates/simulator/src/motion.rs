//! Heart and breathing motion as functions of time, so every cine frame and every tracked
//! position of a synthetic patient agree: radial contraction and base-to-apex shortening
//! over the cardiac cycle (time from the R wave), and a respiratory shift along the body
//! axis. Time is in ms from the start of the acquisition; R waves fall at multiples of the
//! RR interval.

use nalgebra::{Point3, Vector3};
use serde::Serialize;

use crate::heart::LvSurface;
use crate::rng::SimRng;

/// Motion parameters of one patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Motion {
    /// Heart rate, beats per minute.
    pub heart_rate_bpm: f64,
    /// Fractional shortening of the short-axis radius at end-systole (0.05-0.15 in CRT candidates).
    pub radial_contraction: f64,
    /// Fractional base-to-apex shortening at end-systole (the base descends; the apex stays).
    pub longitudinal_shortening: f64,
    /// Peak respiratory shift along the superior-inferior axis, mm (0 for a breath hold).
    pub respiratory_amplitude_mm: f64,
    /// Breathing period, ms.
    pub respiratory_period_ms: f64,
    /// Time of the first R wave after acquisition start, ms.
    pub first_r_wave_ms: f64,
}

impl Motion {
    /// Seeded motion of a CRT candidate: 60-90 bpm, reduced contraction (low ejection
    /// fraction), shallow breathing during the venogram.
    pub fn generate(rng: &mut SimRng) -> Self {
        let heart_rate_bpm = rng.normal_clamped(72.0, 8.0, 60.0, 90.0);
        Self {
            heart_rate_bpm,
            radial_contraction: rng.range(0.05, 0.12),
            longitudinal_shortening: rng.range(0.04, 0.09),
            respiratory_amplitude_mm: rng.range(2.0, 6.0),
            respiratory_period_ms: rng.range(3500.0, 5000.0),
            first_r_wave_ms: rng.range(0.0, 60_000.0 / heart_rate_bpm),
        }
    }

    /// RR interval, ms.
    #[must_use]
    pub fn rr_interval_ms(&self) -> f64 {
        60_000.0 / self.heart_rate_bpm
    }

    /// Cardiac phase at `t_ms`: 0 at an R wave, rising to 1 before the next.
    #[must_use]
    pub fn cardiac_phase(&self, t_ms: f64) -> f64 {
        ((t_ms - self.first_r_wave_ms) / self.rr_interval_ms()).rem_euclid(1.0)
    }

    /// Times of the R waves in `[0, duration_ms)`.
    #[must_use]
    pub fn r_wave_times_ms(&self, duration_ms: f64) -> Vec<f64> {
        let rr = self.rr_interval_ms();
        let count = ((duration_ms - self.first_r_wave_ms) / rr).ceil().max(0.0) as u32;
        (0..count).map(|k| self.first_r_wave_ms + f64::from(k) * rr).filter(|t| *t < duration_ms).collect()
    }

    /// Contraction state at `t_ms`: 0 in diastole, 1 at end-systole. Systole rises over the
    /// first 35% of the cycle, relaxation ends at 55%.
    #[must_use]
    pub fn contraction(&self, t_ms: f64) -> f64 {
        let phase = self.cardiac_phase(t_ms);
        let smooth = |x: f64| 0.5 - 0.5 * (std::f64::consts::PI * x.clamp(0.0, 1.0)).cos();
        if phase < 0.35 {
            smooth(phase / 0.35)
        } else if phase < 0.55 {
            1.0 - smooth((phase - 0.35) / 0.2)
        } else {
            0.0
        }
    }

    /// Respiratory shift at `t_ms`, mm along the patient's superior axis (+z).
    #[must_use]
    pub fn respiratory_shift_mm(&self, t_ms: f64) -> f64 {
        self.respiratory_amplitude_mm * (std::f64::consts::TAU * t_ms / self.respiratory_period_ms).sin()
    }

    /// Where a point fixed to the heart (given at end-diastole) is at `t_ms`.
    #[must_use]
    pub fn displace(&self, lv: &LvSurface, point_at_end_diastole: &Point3<f64>, t_ms: f64) -> Point3<f64> {
        let c = self.contraction(t_ms);
        let axis = lv.long_axis.into_inner();
        let v = point_at_end_diastole - lv.base_center_in_patient;
        let along = v.dot(&axis);
        let radial = v - axis * along;
        let along_now = along + self.longitudinal_shortening * c * (lv.base_to_apex_mm - along);
        let radial_now = radial * (1.0 - self.radial_contraction * c);
        lv.base_center_in_patient
            + axis * along_now
            + radial_now
            + Vector3::new(0.0, 0.0, self.respiratory_shift_mm(t_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn still_breathing(mut m: Motion) -> Motion {
        m.respiratory_amplitude_mm = 0.0;
        m
    }

    #[test]
    fn motion_is_periodic_and_still_at_the_r_wave() {
        let mut rng = SimRng::new(11, 0);
        let lv = LvSurface::generate(&mut rng);
        let m = still_breathing(Motion::generate(&mut rng));
        let p = lv.point(crate::heart::SurfaceCoord { depth: 0.3, angle_rad: 1.5 }, 2.0);
        let r = m.first_r_wave_ms;
        assert!((m.displace(&lv, &p, r) - p).norm() < 1e-9, "end-diastole is the reference");
        let a = m.displace(&lv, &p, r + 100.0);
        let b = m.displace(&lv, &p, r + 100.0 + m.rr_interval_ms());
        assert!((a - b).norm() < 1e-9);
        let systole = m.displace(&lv, &p, r + 0.35 * m.rr_interval_ms());
        assert!((systole - p).norm() > 1.0, "the wall moves in systole");
        // The apex barely moves; the base descends toward it.
        let apex_shift = (m.displace(&lv, &lv.apex(), r + 0.35 * m.rr_interval_ms()) - lv.apex()).norm();
        assert!(apex_shift < 1e-9, "{apex_shift}");
    }

    #[test]
    fn r_waves_are_one_rr_apart() {
        let m = Motion::generate(&mut SimRng::new(2, 0));
        let r = m.r_wave_times_ms(5000.0);
        assert!(r.len() >= 4);
        assert!(r.windows(2).all(|w| (w[1] - w[0] - m.rr_interval_ms()).abs() < 1e-9));
        assert!(r.iter().all(|t| m.cardiac_phase(*t) < 1e-9 || m.cardiac_phase(*t) > 1.0 - 1e-9));
    }
}
