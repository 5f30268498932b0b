//! The tracked tool: a position sensor near the tip of a guidewire or lead, and the tip's
//! offset from it (the tool calibration, e.g. from pivot calibration), so that
//! `tip_in_tracker = tracker_from_sensor * tip_in_sensor`.

use nalgebra::{Isometry3, Matrix4, Point3, Vector3};

/// A tool's calibration: where its tip is in the sensor's own frame, mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolCalibration {
    /// The tip in sensor coordinates, mm (zero when the sensor is at the tip).
    pub tip_in_sensor_mm: Vector3<f64>,
}

impl Default for ToolCalibration {
    fn default() -> Self {
        Self { tip_in_sensor_mm: Vector3::zeros() }
    }
}

impl ToolCalibration {
    /// The tip in tracker space from the sensor's pose (`tracker_from_sensor`, a rigid or
    /// affine 4x4 as OpenIGTLink carries it).
    #[must_use]
    pub fn tip_in_tracker(&self, tracker_from_sensor: &Matrix4<f64>) -> Point3<f64> {
        tracker_from_sensor.transform_point(&Point3::from(self.tip_in_sensor_mm))
    }

    /// The tip in patient space through a registration.
    #[must_use]
    pub fn tip_in_patient(
        &self,
        patient_from_tracker: &Isometry3<f64>,
        tracker_from_sensor: &Matrix4<f64>,
    ) -> Point3<f64> {
        patient_from_tracker * self.tip_in_tracker(tracker_from_sensor)
    }

    /// The tool's pointing direction (the sensor's z axis) in tracker space.
    #[must_use]
    pub fn direction_in_tracker(tracker_from_sensor: &Matrix4<f64>) -> Option<nalgebra::Unit<Vector3<f64>>> {
        nalgebra::Unit::try_new(tracker_from_sensor.fixed_view::<3, 1>(0, 2).into_owned(), 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    /// A tip 5 mm along the sensor's z axis, with the sensor turned 90 degrees about x.
    #[test]
    fn the_tip_offset_turns_with_the_sensor() {
        let calib = ToolCalibration { tip_in_sensor_mm: Vector3::new(0.0, 0.0, 5.0) };
        let tracker_from_sensor = Isometry3::from_parts(
            Translation3::new(10.0, 20.0, 30.0),
            UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::FRAC_PI_2),
        )
        .to_homogeneous();
        let tip = calib.tip_in_tracker(&tracker_from_sensor);
        assert!((tip - Point3::new(10.0, 15.0, 30.0)).norm() < 1e-9, "{tip}");
        let dir = ToolCalibration::direction_in_tracker(&tracker_from_sensor).unwrap();
        assert!((dir.into_inner() - Vector3::new(0.0, -1.0, 0.0)).norm() < 1e-9);
    }
}
