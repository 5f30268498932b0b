//! A textbook heart: the mean LV and AV-groove geometry of a CRT candidate in patient
//! coordinates (LPS, mm, origin at the C-arm isocentre), from research-imaging.md 4.1-4.4
//! and DOMAIN.md. The labeller projects it into a view to know where along the AV groove a
//! vein leaves; the simulator draws its patients around the same means, so a label means
//! the same thing to the generator and to the labeller.
//!
//! Angles around the LV long axis follow the wall-segment convention: 0 = anterior wall,
//! +90 degrees = lateral (free) wall, 180 = posterior (inferior) wall.

use nalgebra::{Point3, Unit, Vector3};

/// Direction of the LV long axis (base to apex): leftward, anterior and inferior at roughly
/// 45 degrees to each axis.
pub const LONG_AXIS_LPS: [f64; 3] = [0.62, -0.55, -0.56];
/// Middle of the long axis relative to the isocentre, mm (the heart is centred in the field).
pub const HEART_MIDDLE_LPS_MM: [f64; 3] = [8.0, 0.0, -5.0];
/// Base (AV-groove plane) to apex, mm (dilated LV of a CRT candidate).
pub const BASE_TO_APEX_MM: f64 = 95.0;
/// Largest epicardial short-axis radius, mm.
pub const LV_RADIUS_MM: f64 = 32.0;
/// Fraction by which the surface narrows into the AV groove.
pub const GROOVE_NARROWING: f64 = 0.2;
/// Angle of the CS ostium around the long axis (posteroseptal), degrees.
pub const OSTIUM_ANGLE_DEG: f64 = 222.0;
/// Angle of the anterior interventricular groove, where the GCV turns into the AIV, degrees.
pub const ANTERIOR_GROOVE_ANGLE_DEG: f64 = -22.0;
/// Length of the CS from the ostium to the vein of Marshall, mm.
pub const CS_LENGTH_MM: f64 = 32.0;
/// Distance from the ostium at which the MCV joins, mm.
pub const MCV_FROM_OSTIUM_MM: f64 = 7.0;
/// Radius of the inflated occlusion balloon in the proximal CS, mm (the device, not the
/// anatomy: a 9-10 mm balloon occludes a CS of the calibres above).
pub const OCCLUSION_BALLOON_RADIUS_MM: f64 = 4.6;
/// Where along the groove the posterolateral vein leaves, degrees around the long axis.
pub const PLV_ANGLE_RANGE_DEG: (f64, f64) = (130.0, 165.0);
/// Where the lateral marginal vein leaves (the common, mid-lateral position), degrees.
pub const LMV_ANGLE_RANGE_DEG: (f64, f64) = (88.0, 120.0);
/// Where a second, more anterior lateral marginal vein leaves, degrees.
pub const LMV_ANTERIOR_ANGLE_RANGE_DEG: (f64, f64) = (65.0, 85.0);
/// Where the anterolateral vein leaves, degrees.
pub const ALV_ANGLE_RANGE_DEG: (f64, f64) = (25.0, 55.0);
/// Boundary between the posterolateral and the lateral marginal positions: midway between
/// their ranges, degrees.
pub const PLV_LMV_BOUNDARY_DEG: f64 = 0.5 * (PLV_ANGLE_RANGE_DEG.0 + LMV_ANGLE_RANGE_DEG.1);
/// Boundary between the lateral marginal and the anterolateral positions, degrees.
pub const LMV_ALV_BOUNDARY_DEG: f64 = 0.5 * (LMV_ANTERIOR_ANGLE_RANGE_DEG.0 + ALV_ANGLE_RANGE_DEG.1);

/// The textbook LV: a half-ellipsoid about [`LONG_AXIS_LPS`] narrowing into the AV groove.
#[derive(Debug, Clone, PartialEq)]
pub struct TextbookHeart {
    /// Centre of the base (AV-groove plane), patient LPS mm.
    pub base_center_in_patient: Point3<f64>,
    /// Long axis, base to apex.
    pub long_axis: Unit<Vector3<f64>>,
    /// Perpendicular to the long axis toward the anterior wall (angle 0).
    pub anterior_axis: Unit<Vector3<f64>>,
    /// Perpendicular to both, toward the lateral wall (angle +90 degrees, patient left).
    pub lateral_axis: Unit<Vector3<f64>>,
}

impl Default for TextbookHeart {
    fn default() -> Self {
        Self::new()
    }
}

impl TextbookHeart {
    /// The textbook heart of this module's constants.
    #[must_use]
    pub fn new() -> Self {
        let long_axis = Unit::new_normalize(Vector3::from(LONG_AXIS_LPS));
        let (anterior_axis, lateral_axis) = wall_axes(&long_axis);
        Self {
            base_center_in_patient: Point3::from(HEART_MIDDLE_LPS_MM)
                - long_axis.into_inner() * (0.45 * BASE_TO_APEX_MM),
            long_axis,
            anterior_axis,
            lateral_axis,
        }
    }

    /// Epicardial short-axis radius at a depth (0 base .. 1 apex), mm.
    #[must_use]
    pub fn radius_at(&self, depth: f64) -> f64 {
        let d = depth.clamp(0.0, 1.0);
        LV_RADIUS_MM * (1.0 - d * d).max(0.0).sqrt() * (1.0 - GROOVE_NARROWING * (-d / 0.08).exp())
    }

    /// The epicardial point at `depth` (0 base .. 1 apex) and `angle_deg` around the long
    /// axis, `outward_mm` beyond the surface.
    #[must_use]
    pub fn point(&self, depth: f64, angle_deg: f64, outward_mm: f64) -> Point3<f64> {
        let a = angle_deg.to_radians();
        let radial = self.anterior_axis.into_inner() * a.cos() + self.lateral_axis.into_inner() * a.sin();
        self.base_center_in_patient
            + self.long_axis.into_inner() * (depth * BASE_TO_APEX_MM)
            + radial * (self.radius_at(depth) + outward_mm)
    }
}

/// The anterior and lateral wall axes of an LV with this long axis: anterior is the patient's
/// anterior (-y in LPS) made perpendicular to the long axis; lateral completes the frame on
/// the patient's left.
#[must_use]
pub fn wall_axes(long_axis: &Unit<Vector3<f64>>) -> (Unit<Vector3<f64>>, Unit<Vector3<f64>>) {
    let anterior = Vector3::new(0.0, -1.0, 0.0);
    let anterior_axis = Unit::new_normalize(anterior - long_axis.into_inner() * anterior.dot(long_axis));
    let mut lateral = long_axis.cross(&anterior_axis);
    if lateral.x < 0.0 {
        lateral = -lateral;
    }
    (anterior_axis, Unit::new_normalize(lateral))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_orthonormal_and_lateral_is_patient_left() {
        let h = TextbookHeart::new();
        assert!(h.long_axis.dot(&h.anterior_axis).abs() < 1e-12);
        assert!(h.long_axis.dot(&h.lateral_axis).abs() < 1e-12);
        assert!(h.anterior_axis.dot(&h.lateral_axis).abs() < 1e-12);
        assert!(h.lateral_axis.x > 0.0, "LPS +x is the patient's left");
        assert!(h.anterior_axis.y < 0.0, "LPS -y is anterior");
    }

    #[test]
    fn the_groove_ring_is_narrower_than_the_widest_short_axis() {
        let h = TextbookHeart::new();
        let groove = (h.point(0.0, 90.0, 0.0) - h.point(0.0, -90.0, 0.0)).norm() / 2.0;
        assert!((groove - LV_RADIUS_MM * (1.0 - GROOVE_NARROWING)).abs() < 1e-9);
        assert!(h.radius_at(0.3) > groove);
    }

    #[test]
    fn tributary_boundaries_fall_between_the_ranges() {
        assert!(PLV_LMV_BOUNDARY_DEG < PLV_ANGLE_RANGE_DEG.0 && PLV_LMV_BOUNDARY_DEG > LMV_ANGLE_RANGE_DEG.1);
        assert!(LMV_ALV_BOUNDARY_DEG < LMV_ANTERIOR_ANGLE_RANGE_DEG.0 && LMV_ALV_BOUNDARY_DEG > ALV_ANGLE_RANGE_DEG.1);
    }
}
