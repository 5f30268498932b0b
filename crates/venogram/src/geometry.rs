//! C-arm projection geometry: from the positioner attributes of an XA run to a 3x4
//! projection matrix in patient LPS coordinates with the isocentre at the origin.
//!
//! Conventions (../shared/reference/DOMAIN.md, PS3.3 C.8.7.5.1.2): primary angle `a` LAO
//! positive, secondary angle `b` cranial positive; beam direction (isocentre to detector)
//! `d = (sin a cos b, -cos a cos b, sin b)`, image column axis `u = (cos a, sin a, 0)`, image
//! row axis `v = (sin a sin b, -cos a sin b, -cos b)`, source `S = -SOD d`,
//! `K = [[SID/ps_col, 0, (cols-1)/2], [0, SID/ps_row, (rows-1)/2], [0, 0, 1]]` and
//! `image_from_patient = K [R | -R S]` with `R`'s rows `u, v, d`. The central ray is assumed
//! to hit the detector centre. Missing distances and spacings are filled from
//! [`GeometryDefaults`] or manual [`GeometryOverrides`], and every such value says so.

use nalgebra::{Matrix3, Matrix3x4, Point2, Point3, Unit, Vector3};
use serde::Serialize;

use crate::acquisition::PositionerGeometry;

/// Where a geometry value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ValueSource {
    /// Read from the DICOM attribute of the same meaning.
    Dicom,
    /// Computed from other attributes; the text says how.
    Derived(String),
    /// Entered by the user, overriding the file.
    Manual,
    /// Not in the file: a configured default was substituted.
    Default,
}

/// A value with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    /// The value used.
    pub value: T,
    /// Where it came from.
    pub source: ValueSource,
}

impl<T> Sourced<T> {
    fn new(value: T, source: ValueSource) -> Self {
        Self { value, source }
    }
}

/// Values substituted when a run lacks an optional geometry attribute (all are UNCONFIRMED
/// typical figures for cardiac C-arms: configuration, not truth).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeometryDefaults {
    /// Positioner angles when absent, degrees (0 = AP).
    pub angle_deg: f64,
    /// Distance source to detector, mm.
    pub distance_source_to_detector_mm: f64,
    /// Distance source to isocentre, mm.
    pub distance_source_to_patient_mm: f64,
    /// Width of the detector field imaged by the full matrix, mm; the default imager pixel
    /// spacing is this over the number of columns (and rows).
    pub detector_field_mm: f64,
}

impl Default for GeometryDefaults {
    fn default() -> Self {
        Self {
            angle_deg: 0.0,
            distance_source_to_detector_mm: 1000.0,
            distance_source_to_patient_mm: 750.0,
            detector_field_mm: 250.0,
        }
    }
}

/// Manual entries that override the file (e.g. read off the C-arm display).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GeometryOverrides {
    /// Positioner primary angle, degrees, LAO positive.
    pub primary_angle_deg: Option<f64>,
    /// Positioner secondary angle, degrees, cranial positive.
    pub secondary_angle_deg: Option<f64>,
    /// Distance source to detector, mm.
    pub distance_source_to_detector_mm: Option<f64>,
    /// Distance source to isocentre, mm.
    pub distance_source_to_patient_mm: Option<f64>,
    /// Imager pixel spacing, mm, `[row, column]`.
    pub imager_pixel_spacing_mm: Option<[f64; 2]>,
}

/// The geometry a projection is built from, every value with its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedGeometry {
    /// Positioner primary angle, degrees, LAO positive.
    pub primary_angle_deg: Sourced<f64>,
    /// Positioner secondary angle, degrees, cranial positive.
    pub secondary_angle_deg: Sourced<f64>,
    /// Distance source to detector, mm.
    pub distance_source_to_detector_mm: Sourced<f64>,
    /// Distance source to isocentre, mm.
    pub distance_source_to_patient_mm: Sourced<f64>,
    /// Imager pixel spacing at the detector, mm, `[row, column]`.
    pub imager_pixel_spacing_mm: Sourced<[f64; 2]>,
    /// Image rows.
    pub rows: u32,
    /// Image columns.
    pub columns: u32,
}

/// Why a geometry cannot form a projection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    /// The source-to-isocentre distance must be positive and shorter than source-to-detector.
    #[error(
        "distance source to patient ({sod_mm} mm) must be positive and less than distance source to detector ({sid_mm} mm)"
    )]
    Distances {
        /// Source to isocentre, mm.
        sod_mm: f64,
        /// Source to detector, mm.
        sid_mm: f64,
    },
    /// Pixel spacing must be positive and finite.
    #[error("imager pixel spacing {spacing_mm:?} mm must be positive")]
    Spacing {
        /// The offending spacing.
        spacing_mm: [f64; 2],
    },
    /// Angles must be finite and in their DICOM ranges.
    #[error("positioner angles ({primary_deg}, {secondary_deg}) deg are outside -180..180 / -90..90")]
    Angles {
        /// Primary angle.
        primary_deg: f64,
        /// Secondary angle.
        secondary_deg: f64,
    },
    /// A pinhole whose rotation is not a rotation or whose focal lengths are not positive.
    #[error("the camera's rotation is not orthonormal or its focal lengths are not positive")]
    Pinhole,
    /// The image has no pixels.
    #[error("image size {columns}x{rows} has no pixels")]
    EmptyImage {
        /// Rows.
        rows: u32,
        /// Columns.
        columns: u32,
    },
}

impl ResolvedGeometry {
    /// Resolves each value: manual override, else the DICOM attribute, else one derived from
    /// the magnification factor or pixel spacing, else the default.
    #[must_use]
    pub fn resolve(
        positioner: &PositionerGeometry,
        rows: u32,
        columns: u32,
        overrides: &GeometryOverrides,
        defaults: &GeometryDefaults,
    ) -> Self {
        let pick = |manual: Option<f64>, dicom: Option<f64>| match (manual, dicom) {
            (Some(v), _) => Some(Sourced::new(v, ValueSource::Manual)),
            (None, Some(v)) => Some(Sourced::new(v, ValueSource::Dicom)),
            (None, None) => None,
        };
        let angle =
            |manual, dicom| pick(manual, dicom).unwrap_or(Sourced::new(defaults.angle_deg, ValueSource::Default));
        let magnification = positioner.estimated_radiographic_magnification_factor;

        let sid = pick(overrides.distance_source_to_detector_mm, positioner.distance_source_to_detector_mm);
        let sod = pick(overrides.distance_source_to_patient_mm, positioner.distance_source_to_patient_mm);
        let (sid, sod) = match (sid, sod, magnification) {
            (Some(sid), Some(sod), _) => (sid, sod),
            (Some(sid), None, Some(m)) => {
                let sod = Sourced::new(
                    sid.value / m,
                    ValueSource::Derived("DistanceSourceToDetector / EstimatedRadiographicMagnificationFactor".into()),
                );
                (sid, sod)
            }
            (None, Some(sod), Some(m)) => {
                let sid = Sourced::new(
                    sod.value * m,
                    ValueSource::Derived("DistanceSourceToPatient x EstimatedRadiographicMagnificationFactor".into()),
                );
                (sid, sod)
            }
            (sid, sod, _) => (
                sid.unwrap_or(Sourced::new(defaults.distance_source_to_detector_mm, ValueSource::Default)),
                sod.unwrap_or(Sourced::new(defaults.distance_source_to_patient_mm, ValueSource::Default)),
            ),
        };

        let spacing = if let Some(s) = overrides.imager_pixel_spacing_mm {
            Sourced::new(s, ValueSource::Manual)
        } else if let Some(s) = positioner.imager_pixel_spacing_mm {
            Sourced::new(s, ValueSource::Dicom)
        } else if let (Some(ps), Some(m)) = (positioner.pixel_spacing_mm, magnification) {
            Sourced::new(
                [ps[0] * m, ps[1] * m],
                ValueSource::Derived("PixelSpacing x EstimatedRadiographicMagnificationFactor".into()),
            )
        } else {
            let field = defaults.detector_field_mm;
            let side = f64::from(rows.max(columns).max(1));
            Sourced::new([field / side, field / side], ValueSource::Default)
        };

        Self {
            primary_angle_deg: angle(overrides.primary_angle_deg, positioner.positioner_primary_angle_deg),
            secondary_angle_deg: angle(overrides.secondary_angle_deg, positioner.positioner_secondary_angle_deg),
            distance_source_to_detector_mm: sid,
            distance_source_to_patient_mm: sod,
            imager_pixel_spacing_mm: spacing,
            rows,
            columns,
        }
    }

    /// Names of the values that are defaults rather than measured or entered.
    #[must_use]
    pub fn defaulted(&self) -> Vec<&'static str> {
        [
            ("PositionerPrimaryAngle", &self.primary_angle_deg.source),
            ("PositionerSecondaryAngle", &self.secondary_angle_deg.source),
            ("DistanceSourceToDetector", &self.distance_source_to_detector_mm.source),
            ("DistanceSourceToPatient", &self.distance_source_to_patient_mm.source),
            ("ImagerPixelSpacing", &self.imager_pixel_spacing_mm.source),
        ]
        .into_iter()
        .filter(|(_, s)| **s == ValueSource::Default)
        .map(|(name, _)| name)
        .collect()
    }

    /// Builds the projection, checking that the values are physically possible.
    pub fn projection(&self) -> Result<CArmProjection, GeometryError> {
        CArmProjection::new(
            self.primary_angle_deg.value,
            self.secondary_angle_deg.value,
            self.distance_source_to_detector_mm.value,
            self.distance_source_to_patient_mm.value,
            self.imager_pixel_spacing_mm.value,
            self.rows,
            self.columns,
        )
    }
}

/// A pinhole model of one C-arm view: patient LPS mm (isocentre at origin) to image pixels
/// `(column, row)` with (0, 0) at the centre of the top-left pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct CArmProjection {
    /// The 3x4 projection matrix `K [R | -R S]`.
    pub image_from_patient: Matrix3x4<f64>,
    /// The intrinsic matrix `K` (pixels from view coordinates).
    pub intrinsics: Matrix3<f64>,
    /// Rotation whose rows are the column axis `u`, row axis `v` and beam direction `d`.
    pub view_from_patient_rotation: Matrix3<f64>,
    /// X-ray source position.
    pub source_in_patient: Point3<f64>,
    /// Distance source to detector, mm.
    pub distance_source_to_detector_mm: f64,
    /// Distance source to isocentre, mm.
    pub distance_source_to_patient_mm: f64,
}

impl CArmProjection {
    /// Builds the projection from angles (degrees), distances (mm), imager pixel spacing
    /// (`[row, column]` mm at the detector) and the image size.
    pub fn new(
        primary_angle_deg: f64,
        secondary_angle_deg: f64,
        distance_source_to_detector_mm: f64,
        distance_source_to_patient_mm: f64,
        imager_pixel_spacing_mm: [f64; 2],
        rows: u32,
        columns: u32,
    ) -> Result<Self, GeometryError> {
        let (sid, sod) = (distance_source_to_detector_mm, distance_source_to_patient_mm);
        if !(sod.is_finite() && sid.is_finite() && sod > 0.0 && sod < sid) {
            return Err(GeometryError::Distances { sod_mm: sod, sid_mm: sid });
        }
        if !imager_pixel_spacing_mm.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(GeometryError::Spacing { spacing_mm: imager_pixel_spacing_mm });
        }
        if !((-180.0..=180.0).contains(&primary_angle_deg) && (-90.0..=90.0).contains(&secondary_angle_deg)) {
            return Err(GeometryError::Angles { primary_deg: primary_angle_deg, secondary_deg: secondary_angle_deg });
        }
        if rows == 0 || columns == 0 {
            return Err(GeometryError::EmptyImage { rows, columns });
        }
        let (sa, ca) = primary_angle_deg.to_radians().sin_cos();
        let (sb, cb) = secondary_angle_deg.to_radians().sin_cos();
        let d = Vector3::new(sa * cb, -ca * cb, sb);
        let u = Vector3::new(ca, sa, 0.0);
        let v = Vector3::new(sa * sb, -ca * sb, -cb);
        let rotation = Matrix3::from_rows(&[u.transpose(), v.transpose(), d.transpose()]);
        let source = Point3::from(-sod * d);
        let [ps_row, ps_col] = imager_pixel_spacing_mm;
        let intrinsics = Matrix3::new(
            sid / ps_col,
            0.0,
            (f64::from(columns) - 1.0) / 2.0,
            0.0,
            sid / ps_row,
            (f64::from(rows) - 1.0) / 2.0,
            0.0,
            0.0,
            1.0,
        );
        let translation = -(rotation * source.coords);
        let mut extrinsics = Matrix3x4::zeros();
        extrinsics.fixed_view_mut::<3, 3>(0, 0).copy_from(&rotation);
        extrinsics.set_column(3, &translation);
        Ok(Self {
            image_from_patient: intrinsics * extrinsics,
            intrinsics,
            view_from_patient_rotation: rotation,
            source_in_patient: source,
            distance_source_to_detector_mm: sid,
            distance_source_to_patient_mm: sod,
        })
    }

    /// Rebuilds a projection from its pinhole parts as a recording keeps them: `K`, the
    /// rotation (rows `u`, `v`, `d`), the source position (isocentre at the origin) and the
    /// source-to-detector distance.
    pub fn from_pinhole(
        intrinsics: Matrix3<f64>,
        view_from_patient_rotation: Matrix3<f64>,
        source_in_patient: Point3<f64>,
        distance_source_to_detector_mm: f64,
    ) -> Result<Self, GeometryError> {
        let sod = source_in_patient.coords.norm();
        let sid = distance_source_to_detector_mm;
        if !(sod.is_finite() && sid.is_finite() && sod > 0.0 && sod < sid) {
            return Err(GeometryError::Distances { sod_mm: sod, sid_mm: sid });
        }
        let orthonormal =
            (view_from_patient_rotation * view_from_patient_rotation.transpose() - Matrix3::identity()).abs().max()
                < 1e-6;
        let (fx, fy) = (intrinsics[(0, 0)], intrinsics[(1, 1)]);
        if !(orthonormal && fx.is_finite() && fy.is_finite() && fx > 0.0 && fy > 0.0) {
            return Err(GeometryError::Pinhole);
        }
        let translation = -(view_from_patient_rotation * source_in_patient.coords);
        let mut extrinsics = Matrix3x4::zeros();
        extrinsics.fixed_view_mut::<3, 3>(0, 0).copy_from(&view_from_patient_rotation);
        extrinsics.set_column(3, &translation);
        Ok(Self {
            image_from_patient: intrinsics * extrinsics,
            intrinsics,
            view_from_patient_rotation,
            source_in_patient,
            distance_source_to_detector_mm: sid,
            distance_source_to_patient_mm: sod,
        })
    }

    /// Unit beam direction, from the source through the isocentre toward the detector.
    #[must_use]
    pub fn beam_direction(&self) -> Unit<Vector3<f64>> {
        Unit::new_normalize(self.view_from_patient_rotation.row(2).transpose())
    }

    /// Distance of a point from the source along the beam (its depth), mm.
    #[must_use]
    pub fn depth_mm(&self, point_in_patient: &Point3<f64>) -> f64 {
        self.beam_direction().dot(&(point_in_patient - self.source_in_patient))
    }

    /// Projects a patient point to image pixels `(column, row)`; `None` for a point at or
    /// behind the source plane, which has no image.
    #[must_use]
    pub fn project(&self, point_in_patient: &Point3<f64>) -> Option<Point2<f64>> {
        let h = self.image_from_patient * point_in_patient.to_homogeneous();
        (h.z > 1e-9).then(|| Point2::new(h.x / h.z, h.y / h.z))
    }

    /// The X-ray through an image pixel: origin at the source, unit direction toward the detector.
    #[must_use]
    pub fn ray_through_pixel(&self, pixel: &Point2<f64>) -> (Point3<f64>, Unit<Vector3<f64>>) {
        let k = &self.intrinsics;
        let in_view = Vector3::new((pixel.x - k[(0, 2)]) / k[(0, 0)], (pixel.y - k[(1, 2)]) / k[(1, 1)], 1.0);
        let direction = self.view_from_patient_rotation.transpose() * in_view;
        (self.source_in_patient, Unit::new_normalize(direction))
    }

    /// The patient point on the ray through `pixel` at the given depth along the beam.
    #[must_use]
    pub fn back_project(&self, pixel: &Point2<f64>, depth_mm: f64) -> Point3<f64> {
        let (origin, direction) = self.ray_through_pixel(pixel);
        let cos = direction.dot(&self.beam_direction());
        origin + direction.into_inner() * (depth_mm / cos)
    }

    /// Magnification of an object at the isocentre, SID/SOD.
    #[must_use]
    pub fn magnification_at_isocenter(&self) -> f64 {
        self.distance_source_to_detector_mm / self.distance_source_to_patient_mm
    }
}

/// Distance along a polyline from its first point to each point, mm (patient space).
#[must_use]
pub fn cumulative_arc_mm(points: &[Point3<f64>]) -> Vec<f64> {
    let mut s = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i > 0 {
                s += (p - points[i - 1]).norm();
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    fn view(primary: f64, secondary: f64) -> CArmProjection {
        CArmProjection::new(primary, secondary, 1000.0, 750.0, [0.2, 0.2], 1024, 1024).unwrap()
    }

    const CENTRE: f64 = 511.5;

    #[test]
    fn isocentre_projects_to_image_centre_in_every_view() {
        for (a, b) in [(0.0, 0.0), (30.0, 0.0), (-30.0, 20.0), (90.0, -25.0), (-120.0, 45.0)] {
            let p = view(a, b).project(&Point3::origin()).unwrap();
            assert_relative_eq!(p.x, CENTRE, epsilon = 1e-9);
            assert_relative_eq!(p.y, CENTRE, epsilon = 1e-9);
        }
    }

    #[test]
    fn a_projection_rebuilt_from_its_pinhole_parts_projects_the_same() {
        let original = view(-30.0, 20.0);
        let rebuilt = CArmProjection::from_pinhole(
            original.intrinsics,
            original.view_from_patient_rotation,
            original.source_in_patient,
            original.distance_source_to_detector_mm,
        )
        .unwrap();
        assert_relative_eq!(
            rebuilt.distance_source_to_patient_mm,
            original.distance_source_to_patient_mm,
            epsilon = 1e-9
        );
        for p in [Point3::new(10.0, -20.0, 30.0), Point3::new(-45.0, 60.0, -5.0)] {
            let (a, b) = (original.project(&p).unwrap(), rebuilt.project(&p).unwrap());
            assert_relative_eq!(a.x, b.x, epsilon = 1e-9);
            assert_relative_eq!(a.y, b.y, epsilon = 1e-9);
        }
        let skewed = original.view_from_patient_rotation * 1.1;
        let bad = CArmProjection::from_pinhole(original.intrinsics, skewed, original.source_in_patient, 1000.0);
        assert!(matches!(bad, Err(GeometryError::Pinhole)));
        let inside = CArmProjection::from_pinhole(
            original.intrinsics,
            original.view_from_patient_rotation,
            original.source_in_patient,
            10.0,
        );
        assert!(matches!(inside, Err(GeometryError::Distances { .. })));
    }

    #[test]
    fn ap_shows_patient_left_on_screen_right_and_head_up() {
        let ap = view(0.0, 0.0);
        let left = ap.project(&Point3::new(10.0, 0.0, 0.0)).unwrap();
        assert!(left.x > CENTRE + 1.0, "patient left must be on screen right: {left}");
        assert_relative_eq!(left.y, CENTRE, epsilon = 1e-9);
        // 10 mm at the isocentre magnified by 1000/750 over 0.2 mm pixels.
        assert_relative_eq!(left.x - CENTRE, 10.0 * 1000.0 / 750.0 / 0.2, epsilon = 1e-9);
        let head = ap.project(&Point3::new(0.0, 0.0, 10.0)).unwrap();
        assert!(head.y < CENTRE - 1.0, "head must be up: {head}");
    }

    #[test]
    fn lao_puts_the_spine_right_and_rao_puts_it_left() {
        let posterior = Point3::new(0.0, 50.0, 0.0); // toward the spine
        let lao = view(30.0, 0.0).project(&posterior).unwrap();
        assert!(lao.x > CENTRE + 1.0, "LAO: spine on screen right, got {lao}");
        let rao = view(-30.0, 0.0).project(&posterior).unwrap();
        assert!(rao.x < CENTRE - 1.0, "RAO: spine on screen left, got {rao}");
        let lao90_anterior = view(90.0, 0.0).project(&Point3::new(0.0, -50.0, 0.0)).unwrap();
        assert!(lao90_anterior.x < CENTRE - 1.0);
    }

    #[test]
    fn cranial_moves_the_head_up_and_anterior_down() {
        let cra = view(0.0, 30.0);
        assert!(cra.project(&Point3::new(0.0, 0.0, 40.0)).unwrap().y < CENTRE - 1.0);
        assert!(cra.project(&Point3::new(0.0, -40.0, 0.0)).unwrap().y > CENTRE + 1.0);
        let cau = view(0.0, -30.0);
        assert!(cau.project(&Point3::new(0.0, -40.0, 0.0)).unwrap().y < CENTRE - 1.0);
    }

    #[test]
    fn beam_points_from_source_through_isocentre() {
        let p = view(35.0, -20.0);
        assert_relative_eq!(p.depth_mm(&Point3::origin()), 750.0, epsilon = 1e-9);
        assert_relative_eq!((p.source_in_patient.coords.norm()), 750.0, epsilon = 1e-9);
        assert!(p.project(&(p.source_in_patient + p.beam_direction().into_inner() * -1.0)).is_none());
    }

    #[test]
    fn impossible_geometry_is_rejected_with_reason() {
        let err = CArmProjection::new(0.0, 0.0, 700.0, 750.0, [0.2, 0.2], 8, 8).unwrap_err();
        assert!(err.to_string().contains("750"));
        assert!(CArmProjection::new(0.0, 0.0, 1000.0, 750.0, [0.0, 0.2], 8, 8).is_err());
        assert!(CArmProjection::new(200.0, 0.0, 1000.0, 750.0, [0.2, 0.2], 8, 8).is_err());
    }

    #[test]
    fn resolution_reports_sources() {
        let positioner = PositionerGeometry {
            positioner_primary_angle_deg: Some(30.0),
            distance_source_to_detector_mm: Some(1100.0),
            estimated_radiographic_magnification_factor: Some(1.4),
            ..PositionerGeometry::default()
        };
        let g = ResolvedGeometry::resolve(
            &positioner,
            512,
            512,
            &GeometryOverrides { secondary_angle_deg: Some(10.0), ..GeometryOverrides::default() },
            &GeometryDefaults::default(),
        );
        assert_eq!(g.primary_angle_deg.source, ValueSource::Dicom);
        assert_eq!(g.secondary_angle_deg.source, ValueSource::Manual);
        assert!(matches!(g.distance_source_to_patient_mm.source, ValueSource::Derived(_)));
        assert_relative_eq!(g.distance_source_to_patient_mm.value, 1100.0 / 1.4);
        assert_eq!(g.defaulted(), vec!["ImagerPixelSpacing"]);
        assert_relative_eq!(g.imager_pixel_spacing_mm.value[0], 250.0 / 512.0);
        assert!(g.projection().is_ok());
    }

    proptest! {
        #[test]
        fn project_then_back_project_round_trips(
            a in -180.0f64..180.0, b in -90.0f64..90.0,
            x in -120.0f64..120.0, y in -120.0f64..120.0, z in -120.0f64..120.0,
            sod in 600.0f64..850.0, extra in 150.0f64..500.0,
        ) {
            let p = CArmProjection::new(a, b, sod + extra, sod, [0.18, 0.2], 768, 1024).unwrap();
            let point = Point3::new(x, y, z);
            let pixel = p.project(&point).unwrap();
            let back = p.back_project(&pixel, p.depth_mm(&point));
            prop_assert!((back - point).norm() < 1e-6, "{point} -> {pixel} -> {back}");
            let (origin, dir) = p.ray_through_pixel(&pixel);
            let along = (point - origin).normalize();
            prop_assert!((along - dir.into_inner()).norm() < 1e-9);
        }

        #[test]
        fn rotation_is_orthonormal(a in -180.0f64..180.0, b in -90.0f64..90.0) {
            let r = view(a, b).view_from_patient_rotation;
            prop_assert!((r * r.transpose() - Matrix3::identity()).norm() < 1e-12);
        }
    }
}
