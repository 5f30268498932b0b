//! Refining the second view's geometry from the two trees. The DICOM angles and distances are
//! not exact (the C-arm's angle readout, the isocentre, a table that moved between runs): the
//! second view's C-arm is allowed to rotate about the isocentre (3 angles) and to shift (the 2
//! components across the baseline), and those 5 parameters are fitted by Levenberg-Marquardt
//! to the symmetric epipolar distance of corresponding points: bifurcations (where a branch
//! leaves its parent, the same point in both views) and points along matched branches.
//!
//! A shift along the baseline (the line between the two X-ray sources) moves no epipolar line:
//! two views cannot see it, so it is not estimated and the report says so.

use nalgebra::{Matrix3, Point3, Rotation3, SMatrix, SVector, Vector3};
use serde::Serialize;

use super::{Line, View, align, epipolar_line, line_distance, resample};
use crate::geometry::CArmProjection;
use crate::labels::VeinLabel;

/// The parameters: rotation about the isocentre (rad, x y z) and the shift across the baseline
/// (mm, along two unit vectors perpendicular to it).
type Params = SVector<f64, 5>;

/// The largest correction believed, degrees: DICOM angles are off by a degree or two, not more.
pub const MAX_ROTATION_DEG: f64 = 5.0;
/// The largest shift believed, mm (an isocentre error or a table move between runs).
pub const MAX_SHIFT_MM: f64 = 25.0;

/// Why the geometry was not refined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefineError {
    /// Too few named veins in both trees to start from.
    #[error("too few named veins in both trees ({found} branch ends, at least 5 needed)")]
    TooFewCorrespondences {
        /// Branch ends found.
        found: usize,
    },
    /// The fit asks for more than a DICOM header is ever off by: the trees do not correspond
    /// well enough (mislabelled or broken branches), and the DICOM geometry is kept.
    #[error(
        "the fit asks for a {rotation_deg:.1} deg rotation and a {shift_mm:.0} mm shift (at most {MAX_ROTATION_DEG} deg and {MAX_SHIFT_MM} mm are believed): the trees do not correspond well enough"
    )]
    Implausible {
        /// The rotation asked for, degrees.
        rotation_deg: f64,
        /// The shift asked for, mm.
        shift_mm: f64,
    },
}

/// What the refinement did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refinement {
    /// Rotation of the second view about the isocentre, degrees.
    pub rotation_deg: f64,
    /// Shift of the second view's C-arm, mm (patient LPS; across the baseline only).
    pub shift_mm: [f64; 3],
    /// RMS symmetric epipolar distance of the correspondences before, px.
    pub epipolar_rms_before_px: f64,
    /// And after, px.
    pub epipolar_rms_after_px: f64,
    /// Corresponding points used.
    pub correspondences: usize,
    /// The direction two views cannot see (unit, patient LPS): the baseline, from the first
    /// X-ray source to the second. A shift of the second C-arm this way (an isocentre error or
    /// a table move between runs) scales the whole result about the first source.
    pub unobservable_direction: [f64; 3],
    /// How far each mm of such a shift moves the tree along the first view's rays, mm per mm
    /// (the first source-to-isocentre distance over the baseline length).
    pub depth_mm_per_unobserved_mm: f64,
}

/// The second view moved by `p`: rotated about the isocentre, then shifted.
fn moved(b: &CArmProjection, p: &Params, across: &[Vector3<f64>; 2]) -> Option<CArmProjection> {
    let rotation = Rotation3::new(Vector3::new(p[0], p[1], p[2]));
    let shift = across[0] * p[3] + across[1] * p[4];
    let view_from_patient: Matrix3<f64> = b.view_from_patient_rotation * rotation.matrix().transpose();
    let source = Point3::from(rotation * b.source_in_patient.coords + shift);
    CArmProjection::from_pinhole(b.intrinsics, view_from_patient, source, b.distance_source_to_detector_mm).ok()
}

/// Corresponding point pairs (view a px, view b px) that need no geometry: where each named
/// branch leaves its parent and where it ends, taken from the same-named branch of the other
/// view (the one closest in length).
fn correspondences(a: View<'_>, b: View<'_>) -> Vec<([f64; 2], [f64; 2])> {
    let mut pairs = Vec::new();
    for ba in &a.tree.branches {
        if ba.label == VeinLabel::Branch || ba.points.len() < 2 {
            continue;
        }
        let Some(bb) = b.tree.branches.iter().filter(|x| x.label == ba.label && x.points.len() >= 2).min_by(|x, y| {
            let la = ba.points.len() as f64;
            ((x.points.len() as f64 - la).abs()).total_cmp(&(y.points.len() as f64 - la).abs())
        }) else {
            continue;
        };
        pairs.push((ba.points[0], bb.points[0]));
        pairs.push((ba.points[ba.points.len() - 1], bb.points[bb.points.len() - 1]));
    }
    pairs
}

/// The symmetric epipolar distances of the pairs under a geometry, px.
fn residuals(a: &CArmProjection, b: &CArmProjection, pairs: &[([f64; 2], [f64; 2])]) -> Vec<f64> {
    pairs
        .iter()
        .map(|(xa, xb)| match (epipolar_line(a, b, *xa), epipolar_line(b, a, *xb)) {
            (Some(la), Some(lb)) => 0.5 * (line_distance(&la, *xb) + line_distance(&lb, *xa)),
            _ => 1e3,
        })
        .collect()
}

fn rms(r: &[f64]) -> f64 {
    (r.iter().map(|v| v * v).sum::<f64>() / r.len().max(1) as f64).sqrt()
}

/// Refines the second view against the first; an error when there is too little to go on or
/// the correction would be larger than a header is ever off by.
pub fn refine_second_view(a: View<'_>, b: View<'_>) -> Result<(CArmProjection, Refinement), RefineError> {
    let baseline_mm = b.projection.source_in_patient - a.projection.source_in_patient;
    let baseline = baseline_mm.normalize();
    let helper = if baseline.z.abs() < 0.9 { Vector3::z() } else { Vector3::x() };
    let across = [baseline.cross(&helper).normalize(), baseline.cross(&baseline.cross(&helper)).normalize()];
    // First correspondences by name and length share; then, with the geometry refined, again
    // along the epipolar lines (monotone alignment), and refined once more.
    let mut pairs = correspondences(a, b);
    if pairs.len() < 5 {
        return Err(RefineError::TooFewCorrespondences { found: pairs.len() });
    }
    let before = rms(&residuals(a.projection, b.projection, &pairs));
    let mut p = Params::zeros();
    for round in 0..3 {
        p = fit(a.projection, b.projection, &pairs, p, &across);
        if round < 2
            && let Some(current) = moved(b.projection, &p, &across)
        {
            let aligned = aligned_pairs(a, View { tree: b.tree, projection: &current });
            if aligned.len() >= 12 {
                pairs = aligned;
            }
        }
    }
    let shift = across[0] * p[3] + across[1] * p[4];
    let rotation_deg = Vector3::new(p[0], p[1], p[2]).norm().to_degrees();
    let implausible = RefineError::Implausible { rotation_deg, shift_mm: shift.norm() };
    if rotation_deg > MAX_ROTATION_DEG || shift.norm() > MAX_SHIFT_MM {
        return Err(implausible);
    }
    let refined = moved(b.projection, &p, &across).ok_or(implausible)?;
    let after = rms(&residuals(a.projection, &refined, &pairs));
    Ok((
        refined,
        Refinement {
            rotation_deg,
            shift_mm: [shift.x, shift.y, shift.z],
            epipolar_rms_before_px: before,
            epipolar_rms_after_px: after,
            correspondences: pairs.len(),
            unobservable_direction: [baseline.x, baseline.y, baseline.z],
            depth_mm_per_unobserved_mm: a.projection.distance_source_to_patient_mm / baseline_mm.norm().max(1e-9),
        },
    ))
}

/// Correspondences along the epipolar lines: same-named branches aligned by the monotone DP,
/// every fourth pair.
fn aligned_pairs(a: View<'_>, b: View<'_>) -> Vec<([f64; 2], [f64; 2])> {
    let mut pairs = Vec::new();
    for ba in a.tree.branches.iter().filter(|x| x.label != VeinLabel::Branch && x.points.len() >= 2) {
        let (pa, _) = resample(&ba.points, &ba.radius_px, 1.0);
        let la: Vec<Option<Line>> = pa.iter().map(|x| epipolar_line(a.projection, b.projection, *x)).collect();
        let best = b
            .tree
            .branches
            .iter()
            .filter(|x| x.label == ba.label && x.points.len() >= 2)
            .filter_map(|bb| {
                let (pb, _) = resample(&bb.points, &bb.radius_px, 1.0);
                let lb: Vec<Option<Line>> = pb.iter().map(|x| epipolar_line(b.projection, a.projection, *x)).collect();
                align(&pa, &pb, &la, &lb).map(|(path, mean)| (mean, path, pb))
            })
            .min_by(|x, y| x.0.total_cmp(&y.0));
        if let Some((_, path, pb)) = best {
            pairs.extend(path.iter().step_by(4).map(|(i, j)| (pa[*i], pb[*j])));
        }
    }
    pairs
}

/// Levenberg-Marquardt on the 5 parameters (numerical Jacobian), from `start`.
fn fit(
    a: &CArmProjection,
    b: &CArmProjection,
    pairs: &[([f64; 2], [f64; 2])],
    start: Params,
    across: &[Vector3<f64>; 2],
) -> Params {
    // The data (epipolar distances, px) and a weak prior toward the DICOM geometry: a 3 deg
    // rotation or a 15 mm shift costs as much as one correspondence 1 px off.
    let cost = |p: &Params| {
        moved(b, p, across).map(|m| {
            let mut r = residuals(a, &m, pairs);
            let sigma = [3f64.to_radians(), 3f64.to_radians(), 3f64.to_radians(), 15.0, 15.0];
            r.extend((0..5).map(|k| p[k] / sigma[k]));
            r
        })
    };
    let Some(mut r) = cost(&start) else { return start };
    let mut p = start;
    let mut lambda = 1e-3;
    // Steps: 1e-5 rad and 1e-3 mm.
    let h = [1e-5, 1e-5, 1e-5, 1e-3, 1e-3];
    for _ in 0..40 {
        let n = r.len();
        let mut jtj = SMatrix::<f64, 5, 5>::zeros();
        let mut jtr = Params::zeros();
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(5);
        for k in 0..5 {
            let mut q = p;
            q[k] += h[k];
            let Some(rq) = cost(&q) else { return p };
            columns.push((0..n).map(|i| (rq[i] - r[i]) / h[k]).collect());
        }
        for i in 0..n {
            for k in 0..5 {
                jtr[k] += columns[k][i] * r[i];
                for l in 0..5 {
                    jtj[(k, l)] += columns[k][i] * columns[l][i];
                }
            }
        }
        let current = rms(&r);
        let mut improved = false;
        for _ in 0..10 {
            let mut damped = jtj;
            for k in 0..5 {
                damped[(k, k)] *= 1.0 + lambda;
                damped[(k, k)] += 1e-12;
            }
            let Some(step) = damped.lu().solve(&(-jtr)) else { break };
            let q = p + step;
            if let Some(rq) = cost(&q)
                && rms(&rq) < current
            {
                p = q;
                r = rq;
                lambda = (lambda / 3.0).max(1e-9);
                improved = true;
                break;
            }
            lambda *= 10.0;
        }
        if !improved || current - rms(&r) < 1e-6 {
            break;
        }
    }
    p
}

/// Helpers for the parent module's tests.
#[cfg(test)]
pub(super) mod tests_support {
    use super::{CArmProjection, Params, Vector3};

    /// Parameters from a rotation vector (rad) and a shift across the baseline (mm).
    pub(in crate::reconstruct) fn params(rotation: [f64; 3], shift: [f64; 2]) -> Params {
        Params::from_column_slice(&[rotation[0], rotation[1], rotation[2], shift[0], shift[1]])
    }

    /// The second view moved by `p`.
    pub(in crate::reconstruct) fn moved(
        b: &CArmProjection,
        p: &Params,
        across: &[Vector3<f64>; 2],
    ) -> Option<CArmProjection> {
        super::moved(b, p, across)
    }
}
