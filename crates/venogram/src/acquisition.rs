//! Acquisition facts of an XA run as typed values: the positioner (PS3.3 C.8.7.5), cine
//! timing and ECG pointers (C.7.6.5, C.8.7.1), and the UIDs that identify the run.
//!
//! Optional attributes are `Option`s; a value that is present but unusable (not a number,
//! out of its defined range) is dropped with a warning rather than guessed. Patient
//! identifiers are never read here.

use serde::Serialize;

use crate::attributes::{self as attr, AttributeProblem, Attributes};

/// XA Positioner and X-Ray Acquisition attributes that define the projection geometry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PositionerGeometry {
    /// Positioner Primary Angle (0018,1510), degrees, LAO positive, RAO negative.
    pub positioner_primary_angle_deg: Option<f64>,
    /// Positioner Secondary Angle (0018,1511), degrees, cranial positive, caudal negative.
    pub positioner_secondary_angle_deg: Option<f64>,
    /// Distance Source to Detector (0018,1110), mm.
    pub distance_source_to_detector_mm: Option<f64>,
    /// Distance Source to Patient (0018,1111), mm: source to isocentre on cardiac systems.
    pub distance_source_to_patient_mm: Option<f64>,
    /// Imager Pixel Spacing (0018,1164), mm at the detector, `[row spacing, column spacing]`.
    pub imager_pixel_spacing_mm: Option<[f64; 2]>,
    /// Pixel Spacing (0028,0030), mm, `[row spacing, column spacing]` (calibrated, if present).
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// Estimated Radiographic Magnification Factor (0018,1114), SID/SOD.
    pub estimated_radiographic_magnification_factor: Option<f64>,
    /// Positioner Motion (0018,1500): `STATIC` or `DYNAMIC` (rotational run).
    pub positioner_motion: Option<String>,
}

/// Cine timing and ECG pointers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CineTiming {
    /// Frame Time (0018,1063), ms between frames.
    pub frame_time_ms: Option<f64>,
    /// Frame Time Vector (0018,1065), ms since the previous frame, first entry 0.
    pub frame_time_vector_ms: Option<Vec<f64>>,
    /// Cine Rate (0018,0040), frames per second.
    pub cine_rate_hz: Option<f64>,
    /// Recommended Display Frame Rate (0008,2144), frames per second.
    pub recommended_display_frame_rate_hz: Option<f64>,
    /// Frame Delay (0018,1066), ms from Content Time to the first frame.
    pub frame_delay_ms: Option<f64>,
    /// Frames at R waves from R Wave Pointer (0028,6040), as zero-based frame indices.
    pub r_wave_frame_indices: Vec<u32>,
    /// Heart Rate (0018,1088), beats per minute.
    pub heart_rate_bpm: Option<f64>,
}

/// Where the frame times of a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FrameTimeSource {
    /// Frame Time Vector (0018,1065).
    FrameTimeVector,
    /// Frame Time (0018,1063).
    FrameTime,
    /// Cine Rate (0018,0040).
    CineRate,
    /// Recommended Display Frame Rate (0008,2144).
    RecommendedDisplayFrameRate,
}

impl CineTiming {
    /// Time of each frame in ms from the first frame, from the most specific attribute
    /// present, with where it came from; `None` when the file carries no timing at all.
    #[must_use]
    pub fn frame_times_ms(&self, frame_count: u32) -> Option<(Vec<f64>, FrameTimeSource)> {
        let n = frame_count as usize;
        if let Some(vector) = &self.frame_time_vector_ms
            && vector.len() == n
        {
            let mut t = 0.0;
            let times = vector
                .iter()
                .enumerate()
                .map(|(i, dt)| {
                    if i > 0 {
                        t += dt;
                    }
                    t
                })
                .collect();
            return Some((times, FrameTimeSource::FrameTimeVector));
        }
        let (interval_ms, source) = if let Some(ft) = self.frame_time_ms {
            (ft, FrameTimeSource::FrameTime)
        } else if let Some(rate) = self.cine_rate_hz {
            (1000.0 / rate, FrameTimeSource::CineRate)
        } else {
            (1000.0 / self.recommended_display_frame_rate_hz?, FrameTimeSource::RecommendedDisplayFrameRate)
        };
        Some(((0..n).map(|i| i as f64 * interval_ms).collect(), source))
    }
}

/// The UIDs and modality that identify a run (no patient identifiers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeriesIdentity {
    /// SOP Class UID (0008,0016), or the file meta's Media Storage SOP Class UID.
    pub sop_class_uid: Option<String>,
    /// SOP Instance UID (0008,0018).
    pub sop_instance_uid: Option<String>,
    /// Study Instance UID (0020,000D).
    pub study_instance_uid: Option<String>,
    /// Series Instance UID (0020,000E).
    pub series_instance_uid: Option<String>,
    /// Modality (0008,0060), `XA` for angiography.
    pub modality: Option<String>,
}

/// Everything about how a run was acquired that csnav uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct XaAcquisition {
    /// Projection geometry from the positioner.
    pub positioner: PositionerGeometry,
    /// Frame timing and ECG pointers.
    pub timing: CineTiming,
    /// UIDs.
    pub identity: SeriesIdentity,
}

/// Collects non-fatal problems while reading optional attributes.
struct Reader<'a, 'w> {
    attrs: Attributes<'a>,
    warnings: &'w mut Vec<String>,
}

impl Reader<'_, '_> {
    fn keep<T>(&mut self, result: Result<Option<T>, AttributeProblem>) -> Option<T> {
        match result {
            Ok(v) => v,
            Err(p) => {
                self.warnings.push(format!("{} ignored: {}", p.attribute, p.reason));
                None
            }
        }
    }

    /// A number, dropped with a warning when outside `range`.
    fn number(&mut self, attribute: attr::Attribute, range: std::ops::RangeInclusive<f64>) -> Option<f64> {
        let value = self.keep(self.attrs.float(attribute))?;
        if range.contains(&value) {
            Some(value)
        } else {
            self.warnings.push(format!("{attribute} ignored: {value} is outside {}..={}", range.start(), range.end()));
            None
        }
    }

    fn positive(&mut self, attribute: attr::Attribute) -> Option<f64> {
        self.number(attribute, f64::MIN_POSITIVE..=f64::MAX)
    }

    fn spacing(&mut self, attribute: attr::Attribute) -> Option<[f64; 2]> {
        let pair = self.keep(self.attrs.pair(attribute))?;
        if pair.iter().all(|v| *v > 0.0) {
            Some(pair)
        } else {
            self.warnings.push(format!("{attribute} ignored: spacings must be positive, found {pair:?}"));
            None
        }
    }
}

impl XaAcquisition {
    /// Reads the acquisition attributes of a data set; `frame_count` validates per-frame lists.
    pub(crate) fn read(
        attrs: Attributes<'_>,
        meta_sop_class_uid: Option<String>,
        frame_count: u32,
        warnings: &mut Vec<String>,
    ) -> Self {
        let identity = SeriesIdentity {
            sop_class_uid: attrs.string(attr::SOP_CLASS_UID).or(meta_sop_class_uid),
            sop_instance_uid: attrs.string(attr::SOP_INSTANCE_UID),
            study_instance_uid: attrs.string(attr::STUDY_INSTANCE_UID),
            series_instance_uid: attrs.string(attr::SERIES_INSTANCE_UID),
            modality: attrs.string(attr::MODALITY),
        };
        let positioner_motion = attrs.string(attr::POSITIONER_MOTION);
        if positioner_motion.as_deref() == Some("DYNAMIC") {
            warnings.push(
                "Positioner Motion (0018,1500) is DYNAMIC (rotational run): the angles describe the first frame; \
                 per-frame angle increments are not applied"
                    .to_owned(),
            );
        }
        let mut r = Reader { attrs, warnings };
        let positioner = PositionerGeometry {
            positioner_primary_angle_deg: r.number(attr::POSITIONER_PRIMARY_ANGLE, -180.0..=180.0),
            positioner_secondary_angle_deg: r.number(attr::POSITIONER_SECONDARY_ANGLE, -90.0..=90.0),
            distance_source_to_detector_mm: r.positive(attr::DISTANCE_SOURCE_TO_DETECTOR),
            distance_source_to_patient_mm: r.positive(attr::DISTANCE_SOURCE_TO_PATIENT),
            imager_pixel_spacing_mm: r.spacing(attr::IMAGER_PIXEL_SPACING),
            pixel_spacing_mm: r.spacing(attr::PIXEL_SPACING),
            estimated_radiographic_magnification_factor: r
                .number(attr::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, 1.0..=f64::MAX),
            positioner_motion,
        };
        let frame_time_vector_ms = match r.keep(r.attrs.floats(attr::FRAME_TIME_VECTOR)) {
            Some(v) if v.len() == frame_count as usize && v.iter().all(|dt| *dt >= 0.0) => Some(v),
            Some(v) => {
                r.warnings.push(format!(
                    "{} ignored: {} entries (all >= 0 expected) for {frame_count} frames",
                    attr::FRAME_TIME_VECTOR,
                    v.len()
                ));
                None
            }
            None => None,
        };
        let mut r_wave_frame_indices = Vec::new();
        for pointer in r.keep(r.attrs.integers(attr::R_WAVE_POINTER)).unwrap_or_default() {
            // R Wave Pointer holds frame numbers, and frame numbers start at 1 (PS3.3 C.8.7.1.1.8).
            match u32::try_from(pointer) {
                Ok(number) if (1..=frame_count).contains(&number) => r_wave_frame_indices.push(number - 1),
                _ => r.warnings.push(format!(
                    "{} entry {pointer} ignored: frame numbers run 1..={frame_count}",
                    attr::R_WAVE_POINTER
                )),
            }
        }
        let timing = CineTiming {
            frame_time_ms: r.positive(attr::FRAME_TIME),
            frame_time_vector_ms,
            cine_rate_hz: r.positive(attr::CINE_RATE),
            recommended_display_frame_rate_hz: r.positive(attr::RECOMMENDED_DISPLAY_FRAME_RATE),
            frame_delay_ms: r.number(attr::FRAME_DELAY, 0.0..=f64::MAX),
            r_wave_frame_indices,
            heart_rate_bpm: r.positive(attr::HEART_RATE),
        };
        Self { positioner, timing, identity }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_times_prefer_the_vector() {
        let timing = CineTiming {
            frame_time_ms: Some(66.7),
            frame_time_vector_ms: Some(vec![0.0, 33.0, 34.0]),
            ..CineTiming::default()
        };
        let (t, source) = timing.frame_times_ms(3).unwrap();
        assert_eq!(t, vec![0.0, 33.0, 67.0]);
        assert_eq!(source, FrameTimeSource::FrameTimeVector);
        // A vector of the wrong length falls back to Frame Time.
        let (t, source) = timing.frame_times_ms(2).unwrap();
        assert_eq!(source, FrameTimeSource::FrameTime);
        assert!((t[1] - 66.7).abs() < 1e-12);
    }

    #[test]
    fn frame_times_from_rates_or_none() {
        let timing = CineTiming { cine_rate_hz: Some(15.0), ..CineTiming::default() };
        let (t, source) = timing.frame_times_ms(2).unwrap();
        assert_eq!(source, FrameTimeSource::CineRate);
        assert!((t[1] - 66.666_666).abs() < 1e-3);
        assert!(CineTiming::default().frame_times_ms(4).is_none());
    }
}
