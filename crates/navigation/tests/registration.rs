//! Registration: known transforms recovered exactly without noise, FRE and TRE matching
//! the closed forms (Fitzpatrick, West and Maurer 1998) under noise, degenerate sets refused.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use navigation::registration::{RegistrationError, register_points};
use proptest::prelude::*;

mod common;
use common::Noise;

/// Fiducials as a cath lab would place them: on the chest and table around the heart, mm.
fn fiducials() -> Vec<Point3<f64>> {
    vec![
        Point3::new(-80.0, -60.0, 20.0),
        Point3::new(90.0, -50.0, 10.0),
        Point3::new(70.0, 80.0, -30.0),
        Point3::new(-60.0, 70.0, 40.0),
        Point3::new(0.0, 10.0, 90.0),
        Point3::new(10.0, -20.0, -70.0),
    ]
}

proptest! {
    /// Any rigid transform is recovered to 1e-6 from noise-free points.
    #[test]
    fn a_known_transform_is_recovered(
        axis in proptest::array::uniform3(-1.0f64..1.0),
        angle in -3.1f64..3.1,
        t in proptest::array::uniform3(-500.0f64..500.0),
    ) {
        let axis = Vector3::from(axis);
        prop_assume!(axis.norm() > 0.1);
        let truth = Isometry3::from_parts(
            Translation3::from(Vector3::from(t)),
            UnitQuaternion::from_axis_angle(&nalgebra::Unit::new_normalize(axis), angle),
        );
        let tracker = fiducials();
        let patient: Vec<Point3<f64>> = tracker.iter().map(|p| truth * p).collect();
        let reg = register_points(&tracker, &patient).unwrap();
        let m = reg.patient_from_tracker.to_homogeneous() - truth.to_homogeneous();
        prop_assert!(m.abs().max() < 1e-6, "difference {m}");
        prop_assert!(reg.fre_rms_mm < 1e-6);
        prop_assert!(reg.residuals_mm.iter().all(|r| *r < 1e-6));
    }
}

/// Under isotropic localisation noise, the mean squared FRE is (1 - 2/N) FLE^2 and the mean
/// squared TRE at a target is the Fitzpatrick prediction, each within a few percent over
/// 4000 trials.
#[test]
fn fre_and_tre_match_the_closed_forms_under_noise() {
    let truth =
        Isometry3::from_parts(Translation3::new(12.0, -40.0, 300.0), UnitQuaternion::from_euler_angles(0.3, -0.2, 1.1));
    let tracker = fiducials();
    let patient: Vec<Point3<f64>> = tracker.iter().map(|p| truth * p).collect();
    let n = tracker.len() as f64;
    let sigma = 0.5; // per axis, mm
    let fle_sq = 3.0 * sigma * sigma;
    let targets = [Point3::new(0.0, 0.0, 0.0), Point3::new(40.0, -30.0, 20.0), Point3::new(150.0, 0.0, 0.0)];
    let reference = register_points(&tracker, &patient).unwrap();
    let mut noise = Noise::new(1, sigma * 3f64.sqrt());
    let trials = 4000;
    let (mut fre_sq, mut tre_sq) = (0.0, [0.0; 3]);
    for _ in 0..trials {
        let noisy: Vec<Point3<f64>> = tracker.iter().map(|p| p + noise.vector()).collect();
        let reg = register_points(&noisy, &patient).unwrap();
        fre_sq += reg.fre_rms_mm.powi(2);
        for (k, target_in_tracker) in targets.iter().enumerate() {
            tre_sq[k] += (reg.patient_from_tracker * target_in_tracker - truth * target_in_tracker).norm_squared();
        }
    }
    let fre_sq = fre_sq / f64::from(trials);
    let expected_fre_sq = (1.0 - 2.0 / n) * fle_sq;
    assert!((fre_sq / expected_fre_sq - 1.0).abs() < 0.05, "FRE^2 {fre_sq:.4} vs {expected_fre_sq:.4}");
    for (k, target_in_tracker) in targets.iter().enumerate() {
        let measured = (tre_sq[k] / f64::from(trials)).sqrt();
        let predicted = reference.predicted_tre_mm_for_fle(&(truth * target_in_tracker), fle_sq.sqrt());
        println!("target {k}: TRE measured {measured:.4} mm, predicted {predicted:.4} mm");
        assert!((measured / predicted - 1.0).abs() < 0.06, "target {k}: TRE {measured:.4} vs predicted {predicted:.4}");
    }
    // Far from the fiducials' centroid the TRE grows.
    let near = reference.predicted_tre_mm_for_fle(&(truth * targets[0]), 1.0);
    let far = reference.predicted_tre_mm_for_fle(&(truth * targets[2]), 1.0);
    assert!(far > near);
}

/// The FLE estimate from one registration's FRE follows `N / (N - 2)`.
#[test]
fn the_fle_estimate_inverts_the_fre_relation() {
    let tracker = fiducials();
    let mut noise = Noise::new(7, 0.5);
    let patient: Vec<Point3<f64>> = tracker.iter().map(|p| p + noise.vector()).collect();
    let reg = register_points(&tracker, &patient).unwrap();
    let n = 6.0;
    assert!((reg.estimated_fle_rms_mm() - reg.fre_rms_mm * (n / (n - 2.0_f64)).sqrt()).abs() < 1e-12);
    assert!(reg.predicted_tre_mm(&Point3::origin()) > 0.0);
    assert_eq!(reg.residuals_mm.len(), 6);
}

#[test]
fn degenerate_point_sets_are_refused_with_the_reason() {
    let p = fiducials();
    assert_eq!(register_points(&p[..2], &p[..2]).unwrap_err(), RegistrationError::TooFewPoints(2));
    assert!(matches!(
        register_points(&p[..3], &p[..4]).unwrap_err(),
        RegistrationError::Unpaired { tracker: 3, patient: 4 }
    ));
    let line: Vec<Point3<f64>> = (0..5).map(|i| Point3::new(f64::from(i) * 10.0, f64::from(i) * 5.0, 1.0)).collect();
    let err = register_points(&line, &p[..5]).unwrap_err();
    assert!(err.to_string().contains("tracker points are collinear"), "{err}");
    let err = register_points(&p[..5], &line).unwrap_err();
    assert!(err.to_string().contains("patient points are collinear"), "{err}");
    let same = vec![Point3::new(1.0, 2.0, 3.0); 4];
    assert!(matches!(register_points(&same, &p[..4]).unwrap_err(), RegistrationError::Collinear { .. }));
    let mut bad = p.clone();
    bad[2].x = f64::NAN;
    assert_eq!(register_points(&bad, &p).unwrap_err(), RegistrationError::NotFinite { index: 2 });
}
