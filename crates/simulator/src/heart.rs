//! The left-ventricular epicardial surface of a synthetic patient, in patient LPS
//! coordinates (mm, isocentre at the origin): a half-ellipsoid from the base (mitral/AV
//! groove level) to the apex, narrowing toward the AV groove, with its long axis pointing
//! anterior, inferior and leftward as in a real chest.
//!
//! Points on it are addressed by [`SurfaceCoord`]: `depth` from base (0) to apex (1) and
//! `angle` around the long axis with 0 = anterior wall, +90 degrees = lateral (free) wall,
//! 180 = posterior/inferior wall, -90 = septum.

use nalgebra::{Point3, Unit, Vector3};
use serde::Serialize;

use venogram::atlas;

use crate::rng::SimRng;

/// A position on the LV surface.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SurfaceCoord {
    /// Fraction of the base-to-apex length: 0 at the base (AV groove), 1 at the apex.
    pub depth: f64,
    /// Angle around the long axis, radians: 0 anterior, +pi/2 lateral, pi posterior, -pi/2 septal.
    pub angle_rad: f64,
}

/// Wall segment around the short axis (the MADIT-CRT / Singh scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WallSegment {
    /// Anterior wall.
    Anterior,
    /// Lateral (free) wall.
    Lateral,
    /// Posterior (inferior) wall.
    Posterior,
    /// Interventricular septum (no coronary vein target).
    Septal,
}

/// Third of the long axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LongAxisSegment {
    /// Basal third.
    Basal,
    /// Mid-ventricular third.
    Mid,
    /// Apical third.
    Apical,
}

impl SurfaceCoord {
    /// The short-axis wall segment of this position.
    #[must_use]
    pub fn wall(&self) -> WallSegment {
        let deg = self.angle_rad.to_degrees().rem_euclid(360.0);
        match deg {
            d if (330.0..360.0).contains(&d) || d < 45.0 => WallSegment::Anterior,
            d if d < 135.0 => WallSegment::Lateral,
            d if d < 225.0 => WallSegment::Posterior,
            _ => WallSegment::Septal,
        }
    }

    /// The long-axis third of this position.
    #[must_use]
    pub fn long_axis(&self) -> LongAxisSegment {
        match self.depth {
            d if d < 1.0 / 3.0 => LongAxisSegment::Basal,
            d if d < 2.0 / 3.0 => LongAxisSegment::Mid,
            _ => LongAxisSegment::Apical,
        }
    }
}

/// The LV epicardium of one patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LvSurface {
    /// Centre of the base (AV-groove plane) on the long axis.
    pub base_center_in_patient: Point3<f64>,
    /// Unit vector from base to apex.
    pub long_axis: Unit<Vector3<f64>>,
    /// Unit vector perpendicular to the long axis toward the anterior wall (angle 0).
    pub anterior_axis: Unit<Vector3<f64>>,
    /// Unit vector perpendicular to both toward the lateral wall (angle +90 degrees).
    pub lateral_axis: Unit<Vector3<f64>>,
    /// Epicardial base-to-apex length, mm.
    pub base_to_apex_mm: f64,
    /// Largest epicardial short-axis radius, mm.
    pub radius_mm: f64,
    /// Fraction by which the surface narrows at the AV groove (radius there = `(1 - n) * radius_mm`).
    pub groove_narrowing: f64,
}

impl LvSurface {
    /// A seeded LV of a CRT candidate (dilated: base-to-apex 85-105 mm, radius 28-36 mm)
    /// with the long axis within about 10 degrees of anterior-inferior-leftward.
    pub fn generate(rng: &mut SimRng) -> Self {
        let nominal = Vector3::from(atlas::LONG_AXIS_LPS);
        let jitter = Vector3::new(rng.normal(0.0, 0.08), rng.normal(0.0, 0.08), rng.normal(0.0, 0.08));
        let long_axis = Unit::new_normalize(nominal.normalize() + jitter);
        let (anterior_axis, lateral_axis) = atlas::wall_axes(&long_axis);
        let base_to_apex_mm = rng.normal_clamped(95.0, 6.0, 85.0, 105.0);
        let radius_mm = rng.normal_clamped(32.0, 2.5, 28.0, 36.0);
        // The heart sits about the isocentre: the middle of the long axis a few mm off it.
        let middle = Point3::new(rng.normal(8.0, 4.0), rng.normal(0.0, 4.0), rng.normal(-5.0, 4.0));
        Self {
            base_center_in_patient: middle - long_axis.into_inner() * (0.45 * base_to_apex_mm),
            long_axis,
            anterior_axis,
            lateral_axis,
            base_to_apex_mm,
            radius_mm,
            groove_narrowing: rng.range(0.15, 0.25),
        }
    }

    /// Epicardial short-axis radius at a depth (0 base .. 1 apex): a half-ellipsoid that
    /// narrows smoothly into the AV groove.
    #[must_use]
    pub fn radius_at(&self, depth: f64) -> f64 {
        let d = depth.clamp(0.0, 1.0);
        self.radius_mm * (1.0 - d * d).max(0.0).sqrt() * (1.0 - self.groove_narrowing * (-d / 0.08).exp())
    }

    /// Unit radial direction (outward, perpendicular to the long axis) at an angle.
    #[must_use]
    pub fn radial(&self, angle_rad: f64) -> Vector3<f64> {
        self.anterior_axis.into_inner() * angle_rad.cos() + self.lateral_axis.into_inner() * angle_rad.sin()
    }

    /// The point at `coord`, `outward_mm` beyond the epicardium along the radial direction.
    #[must_use]
    pub fn point(&self, coord: SurfaceCoord, outward_mm: f64) -> Point3<f64> {
        self.base_center_in_patient
            + self.long_axis.into_inner() * (coord.depth * self.base_to_apex_mm)
            + self.radial(coord.angle_rad) * (self.radius_at(coord.depth) + outward_mm)
    }

    /// The surface coordinate under a point; the depth is negative above the base plane (the
    /// AV groove and atria) and above 1 beyond the apex.
    #[must_use]
    pub fn coord_of(&self, point: &Point3<f64>) -> SurfaceCoord {
        let v = point - self.base_center_in_patient;
        let depth = v.dot(&self.long_axis) / self.base_to_apex_mm;
        let angle_rad = v.dot(&self.lateral_axis).atan2(v.dot(&self.anterior_axis));
        SurfaceCoord { depth, angle_rad }
    }

    /// How far a point lies outside the epicardium, radially, mm (negative inside).
    #[must_use]
    pub fn outward_distance_mm(&self, point: &Point3<f64>) -> f64 {
        let v = point - self.base_center_in_patient;
        let along = v.dot(&self.long_axis);
        let radial = (v - self.long_axis.into_inner() * along).norm();
        radial - self.radius_at(along / self.base_to_apex_mm)
    }

    /// The apex.
    #[must_use]
    pub fn apex(&self) -> Point3<f64> {
        self.base_center_in_patient + self.long_axis.into_inner() * self.base_to_apex_mm
    }

    /// Distance between two surface positions measured over the surface, approximately
    /// (arc along the long axis and around it at the mean radius), mm.
    #[must_use]
    pub fn surface_distance_mm(&self, a: SurfaceCoord, b: SurfaceCoord) -> f64 {
        let mean_radius = self.radius_at(f64::midpoint(a.depth, b.depth)).max(1.0);
        let mut dphi = (a.angle_rad - b.angle_rad).rem_euclid(std::f64::consts::TAU);
        if dphi > std::f64::consts::PI {
            dphi = std::f64::consts::TAU - dphi;
        }
        let along = (a.depth - b.depth) * self.base_to_apex_mm;
        (along * along + (dphi * mean_radius).powi(2)).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apex_points_anterior_inferior_leftward_for_every_seed() {
        for seed in 0..200 {
            let lv = LvSurface::generate(&mut SimRng::new(seed, 0));
            let (base, apex) = (lv.base_center_in_patient, lv.apex());
            assert!(apex.x > base.x + 20.0, "seed {seed}: apex must be leftward");
            assert!(apex.y < base.y - 20.0, "seed {seed}: apex must be anterior");
            assert!(apex.z < base.z - 20.0, "seed {seed}: apex must be inferior");
            // The lateral wall faces the patient's left, the anterior wall the front.
            assert!(lv.lateral_axis.x > 0.0 && lv.anterior_axis.y < 0.0);
            assert!(lv.anterior_axis.dot(&lv.long_axis).abs() < 1e-12);
            assert!(lv.lateral_axis.dot(&lv.long_axis).abs() < 1e-12);
        }
    }

    #[test]
    fn coordinates_round_trip_and_walls_are_named() {
        let lv = LvSurface::generate(&mut SimRng::new(5, 0));
        for (depth, deg, wall) in [
            (0.2, 0.0, WallSegment::Anterior),
            (0.5, 90.0, WallSegment::Lateral),
            (0.8, 170.0, WallSegment::Posterior),
            (0.4, -90.0, WallSegment::Septal),
        ] {
            let c = SurfaceCoord { depth, angle_rad: f64::to_radians(deg) };
            let p = lv.point(c, 0.0);
            let back = lv.coord_of(&p);
            assert!((back.depth - depth).abs() < 1e-9 && (back.angle_rad - c.angle_rad).abs() < 1e-9);
            assert!(lv.outward_distance_mm(&p).abs() < 1e-9);
            assert_eq!(back.wall(), wall);
        }
        assert!(lv.radius_at(0.0) < lv.radius_at(0.3), "narrower at the AV groove");
        assert!(lv.radius_at(1.0).abs() < 1e-9);
    }
}
