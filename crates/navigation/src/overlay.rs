//! Placing a tracked tip on a venogram view: the tip (patient space) through the view's
//! C-arm projection (venogram's model, the same one segmentation and the simulator use),
//! drawn on the cine frame of the matching cardiac (and respiratory) phase, an ECG-gated
//! roadmap, so the overlay sits on the veins as they are at that moment of the beat.

use nalgebra::Point3;
use venogram::geometry::CArmProjection;

use crate::gating::{Phase, cardiac_phase, gated_frame};

/// One view: its projection and the phase of each cine frame.
#[derive(Debug, Clone)]
pub struct ViewTimeline {
    /// The view's projection, patient space to image pixels.
    pub projection: CArmProjection,
    /// Phase of each frame (`None` where the ECG does not cover the frame).
    pub frame_phases: Vec<Option<Phase>>,
}

/// Where a tip is drawn on a view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnView {
    /// The cine frame to draw on (`None`: no phase to gate by; draw on the current frame).
    pub frame: Option<usize>,
    /// Pixel position `(column, row)`.
    pub xy_px: [f64; 2],
}

impl ViewTimeline {
    /// A view whose frames were taken at `frame_times_ms`, with R waves at `r_waves_ms`
    /// (both on the cine's clock); no respiratory phase.
    #[must_use]
    pub fn from_ecg(projection: CArmProjection, frame_times_ms: &[f64], r_waves_ms: &[f64]) -> Self {
        let frame_phases = frame_times_ms
            .iter()
            .map(|t| cardiac_phase(r_waves_ms, *t).map(|cardiac| Phase { cardiac, respiratory: None }))
            .collect();
        Self { projection, frame_phases }
    }

    /// Where to draw a tip at `tip_in_patient`, sampled at `phase`; `None` when the point
    /// is behind the X-ray source.
    #[must_use]
    pub fn place(&self, tip_in_patient: &Point3<f64>, phase: Option<&Phase>) -> Option<OnView> {
        let xy = self.projection.project(tip_in_patient)?;
        let frame = phase.and_then(|now| {
            let known: Vec<(usize, Phase)> =
                self.frame_phases.iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect();
            let phases: Vec<Phase> = known.iter().map(|(_, p)| *p).collect();
            gated_frame(&phases, now).map(|k| known[k].0)
        });
        Some(OnView { frame, xy_px: [xy.x, xy.y] })
    }
}
