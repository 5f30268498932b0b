//! A synthetic electromagnetic tracker for the patient: where its field generator sits
//! (the rigid `tracker_from_patient`, unknown to csnav, which must register it) and the skin
//! fiducials used for that registration, each measured in tracker space with a fiducial
//! localisation error.

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};

use crate::patient::SyntheticPatient;
use crate::rng::SimRng;

/// Stream of the seed's generator reserved for the tracker.
const TRACKER_STREAM: u64 = 0x0074_7261_636b_6572;
/// Fiducial localisation error of a pointer touching skin markers, RMS mm (3D).
pub const FIDUCIAL_LOCALISATION_ERROR_MM: f64 = 0.5;

/// One registration fiducial.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fiducial {
    /// Where it is in patient space (LPS, mm): known from the C-arm images.
    pub in_patient_mm: [f64; 3],
    /// Where the tracker measured it, mm (with localisation error).
    pub in_tracker_mm: [f64; 3],
}

/// The synthetic tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticTracker {
    /// Ground truth: tracker coordinates from patient coordinates (not for csnav's use).
    pub tracker_from_patient: Isometry3<f64>,
    /// Registration fiducials.
    pub fiducials: Vec<Fiducial>,
    /// Their localisation error, RMS mm.
    pub fle_rms_mm: f64,
}

impl SyntheticTracker {
    /// The tracker of `patient`: a field generator under the table (tracker z up, about
    /// 150 mm below the heart, turned 5-20 degrees), six skin fiducials around the chest.
    #[must_use]
    pub fn generate(patient: &SyntheticPatient) -> Self {
        let mut rng = SimRng::new(patient.seed, TRACKER_STREAM);
        let deg = f64::to_radians;
        let rotation = UnitQuaternion::from_euler_angles(
            deg(rng.range(-8.0, 8.0)) + std::f64::consts::PI,
            deg(rng.range(-8.0, 8.0)),
            deg(rng.range(5.0, 20.0)),
        );
        let heart = patient.lv.base_center_in_patient;
        let offset = Vector3::new(rng.range(-40.0, 40.0), rng.range(140.0, 180.0), rng.range(-40.0, 40.0));
        // tracker_from_patient maps the heart to `offset` (above the generator).
        let translation = offset - rotation * heart.coords;
        let tracker_from_patient = Isometry3::from_parts(Translation3::from(translation), rotation);
        // Skin markers: anterior chest (-y in LPS), left side, right side, about the heart.
        let spots = [
            Vector3::new(-70.0, -110.0, 60.0),
            Vector3::new(80.0, -100.0, 70.0),
            Vector3::new(-60.0, -105.0, -80.0),
            Vector3::new(90.0, -90.0, -60.0),
            Vector3::new(150.0, 0.0, 0.0),
            Vector3::new(-150.0, 10.0, 20.0),
        ];
        let sigma = FIDUCIAL_LOCALISATION_ERROR_MM / 3f64.sqrt();
        let fiducials = spots
            .iter()
            .map(|s| {
                let in_patient =
                    heart + s + Vector3::new(rng.normal(0.0, 5.0), rng.normal(0.0, 5.0), rng.normal(0.0, 5.0));
                let noise = Vector3::new(rng.normal(0.0, sigma), rng.normal(0.0, sigma), rng.normal(0.0, sigma));
                let in_tracker = tracker_from_patient * in_patient + noise;
                Fiducial { in_patient_mm: in_patient.coords.into(), in_tracker_mm: in_tracker.coords.into() }
            })
            .collect();
        Self { tracker_from_patient, fiducials, fle_rms_mm: FIDUCIAL_LOCALISATION_ERROR_MM }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Point3;

    #[test]
    fn the_tracker_is_seeded_and_its_fiducials_carry_their_error() {
        let patient = SyntheticPatient::generate(7);
        let a = SyntheticTracker::generate(&patient);
        assert_eq!(a, SyntheticTracker::generate(&patient));
        let errors: Vec<f64> = a
            .fiducials
            .iter()
            .map(|f| {
                let truth = a.tracker_from_patient * Point3::from(f.in_patient_mm);
                (truth - Point3::from(f.in_tracker_mm)).norm()
            })
            .collect();
        assert!(errors.iter().all(|e| *e < 2.0 && *e > 0.0), "{errors:?}");
    }
}
