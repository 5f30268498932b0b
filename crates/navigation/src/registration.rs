//! Paired-point rigid registration of tracker space to patient (C-arm) space: the
//! least-squares rotation and translation of Umeyama (1991) / Arun et al. (1987) through the
//! SVD of the cross-covariance, with the reflection guard; the fiducial registration error
//! (FRE) and each fiducial's residual; and the target registration error (TRE) predicted at
//! any point by Fitzpatrick, West and Maurer (IEEE TMI 17(5), 1998):
//!
//! `<TRE^2(r)> = <FLE^2> / N * (1 + 1/3 * sum_k d_k^2 / f_k^2)`
//!
//! where `d_k` is the target's distance from the k-th principal axis of the fiducial
//! configuration and `f_k` the fiducials' RMS distance from that axis; the fiducial
//! localisation error is estimated from the FRE by `<FRE^2> = (1 - 2/N) <FLE^2>`.

use nalgebra::{Isometry3, Matrix3, Point3, Rotation3, SVD, Translation3, UnitQuaternion, Vector3};

/// Why a registration cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistrationError {
    /// Fewer than three point pairs.
    #[error("registration needs at least 3 point pairs, got {0}")]
    TooFewPoints(usize),
    /// The two point lists differ in length.
    #[error("registration needs paired points: {tracker} in tracker space, {patient} in patient space")]
    Unpaired {
        /// Points in tracker space.
        tracker: usize,
        /// Points in patient space.
        patient: usize,
    },
    /// A coordinate is not finite.
    #[error("point {index} has a coordinate that is not finite")]
    NotFinite {
        /// Index of the pair.
        index: usize,
    },
    /// The points lie on one line (or at one place), which leaves a rotation free.
    #[error(
        "the {space} points are collinear (spread off their best line {off_line_mm:.3} mm): a rotation about that line is undetermined; add a point off the line"
    )]
    Collinear {
        /// Which space.
        space: &'static str,
        /// RMS distance of the points from their best-fit line, mm.
        off_line_mm: f64,
    },
}

/// Points closer to their best-fit line than this (RMS, relative to their spread along it,
/// or absolutely) are collinear.
const COLLINEAR_RELATIVE: f64 = 1e-3;
/// Absolute collinearity floor, mm.
const COLLINEAR_ABSOLUTE_MM: f64 = 1e-3;

/// A computed registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The rigid transform taking tracker coordinates to patient coordinates.
    pub patient_from_tracker: Isometry3<f64>,
    /// RMS fiducial registration error, mm.
    pub fre_rms_mm: f64,
    /// Each pair's residual `|patient - patient_from_tracker * tracker|`, mm.
    pub residuals_mm: Vec<f64>,
    /// Fiducials in patient space (for the TRE prediction).
    fiducials_in_patient: Vec<Point3<f64>>,
}

/// Principal axes of a point set: centroid, axes (columns) and the variance along each.
fn principal_axes(points: &[Point3<f64>]) -> (Point3<f64>, Matrix3<f64>, Vector3<f64>) {
    let n = points.len() as f64;
    let centroid = Point3::from(points.iter().map(|p| p.coords).sum::<Vector3<f64>>() / n);
    let mut cov = Matrix3::zeros();
    for p in points {
        let d = p - centroid;
        cov += d * d.transpose();
    }
    cov /= n;
    let eig = cov.symmetric_eigen();
    (centroid, eig.eigenvectors, eig.eigenvalues)
}

fn check_not_collinear(points: &[Point3<f64>], space: &'static str) -> Result<(), RegistrationError> {
    let (_, _, variances) = principal_axes(points);
    let mut v = [variances[0].max(0.0), variances[1].max(0.0), variances[2].max(0.0)];
    v.sort_by(f64::total_cmp);
    // Spread off the best line: the two smaller principal variances.
    let off_line_mm = (v[0] + v[1]).sqrt();
    let along_mm = v[2].sqrt();
    if off_line_mm < COLLINEAR_ABSOLUTE_MM.max(COLLINEAR_RELATIVE * along_mm) {
        return Err(RegistrationError::Collinear { space, off_line_mm });
    }
    Ok(())
}

/// Registers tracker space to patient space from paired points (`tracker[i]` and
/// `patient[i]` are the same physical point), least squares, rigid.
pub fn register_points(tracker: &[Point3<f64>], patient: &[Point3<f64>]) -> Result<Registration, RegistrationError> {
    if tracker.len() != patient.len() {
        return Err(RegistrationError::Unpaired { tracker: tracker.len(), patient: patient.len() });
    }
    if tracker.len() < 3 {
        return Err(RegistrationError::TooFewPoints(tracker.len()));
    }
    if let Some(index) =
        tracker.iter().zip(patient).position(|(a, b)| !(a.coords.iter().chain(b.coords.iter()).all(|v| v.is_finite())))
    {
        return Err(RegistrationError::NotFinite { index });
    }
    check_not_collinear(tracker, "tracker")?;
    check_not_collinear(patient, "patient")?;

    let n = tracker.len() as f64;
    let ct = Point3::from(tracker.iter().map(|p| p.coords).sum::<Vector3<f64>>() / n);
    let cp = Point3::from(patient.iter().map(|p| p.coords).sum::<Vector3<f64>>() / n);
    // Cross-covariance sum (patient - cp)(tracker - ct)^T; R = U diag(1, 1, det(U V^T)) V^T.
    let mut h = Matrix3::zeros();
    for (t, p) in tracker.iter().zip(patient) {
        h += (p - cp) * (t - ct).transpose();
    }
    let svd = SVD::new(h, true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(RegistrationError::Collinear { space: "tracker", off_line_mm: 0.0 });
    };
    let d = (u * v_t).determinant().signum();
    let r = u * Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, d)) * v_t;
    let rotation = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(r));
    let translation = cp.coords - rotation * ct.coords;
    let patient_from_tracker = Isometry3::from_parts(Translation3::from(translation), rotation);

    let residuals_mm: Vec<f64> =
        tracker.iter().zip(patient).map(|(t, p)| (patient_from_tracker * t - p).norm()).collect();
    let fre_rms_mm = (residuals_mm.iter().map(|r| r * r).sum::<f64>() / n).sqrt();
    Ok(Registration { patient_from_tracker, fre_rms_mm, residuals_mm, fiducials_in_patient: patient.to_vec() })
}

impl Registration {
    /// Number of fiducials.
    #[must_use]
    pub fn fiducial_count(&self) -> usize {
        self.fiducials_in_patient.len()
    }

    /// The fiducial localisation error (RMS, mm) implied by the FRE: `FRE^2 N / (N - 2)`
    /// (exact in expectation for isotropic FLE; for N = 3 it is FRE^2 * 3).
    #[must_use]
    pub fn estimated_fle_rms_mm(&self) -> f64 {
        let n = self.fiducial_count() as f64;
        self.fre_rms_mm * (n / (n - 2.0)).sqrt()
    }

    /// Predicted RMS target registration error at `target_in_patient` for a fiducial
    /// localisation error of `fle_rms_mm` (Fitzpatrick, West and Maurer 1998).
    #[must_use]
    pub fn predicted_tre_mm_for_fle(&self, target_in_patient: &Point3<f64>, fle_rms_mm: f64) -> f64 {
        let (centroid, axes, _) = principal_axes(&self.fiducials_in_patient);
        let n = self.fiducial_count() as f64;
        let rel = |p: &Point3<f64>| p - centroid;
        let target = rel(target_in_patient);
        let mut sum = 0.0;
        for k in 0..3 {
            let axis = axes.column(k).into_owned();
            // Squared distance from the k-th principal axis.
            let off_axis_sq = |v: &Vector3<f64>| (v - axis * axis.dot(v)).norm_squared();
            let f_sq = self.fiducials_in_patient.iter().map(|p| off_axis_sq(&rel(p))).sum::<f64>() / n;
            if f_sq > 0.0 {
                sum += off_axis_sq(&target) / f_sq;
            }
        }
        (fle_rms_mm * fle_rms_mm / n * (1.0 + sum / 3.0)).sqrt()
    }

    /// Predicted RMS target registration error at `target_in_patient`, with the fiducial
    /// localisation error estimated from this registration's FRE.
    #[must_use]
    pub fn predicted_tre_mm(&self, target_in_patient: &Point3<f64>) -> f64 {
        self.predicted_tre_mm_for_fle(target_in_patient, self.estimated_fle_rms_mm())
    }
}
