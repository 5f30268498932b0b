//! The simulated fluoroscopy image of the trainee's wire and lead: one frame of the synthetic
//! patient at the chosen C-arm angulation, at fluoroscopy's lower dose (fewer photons, more
//! quantum noise than the cine), the wire and the lead radiopaque in the veins, and the veins
//! opacified only while an injection is still in them.

use simulator::SyntheticPatient;
use simulator::render::{DeviceKind, Instrument, RenderError, RenderSettings, RenderedRun, render};
use simulator::view::ViewAngles;

use crate::catheter::Catheter;

/// How long an injection keeps the veins visible, s.
pub const CONTRAST_VISIBLE_S: f64 = 3.0;
/// Photons per pixel of fluoroscopy (the cine uses 1500).
pub const FLUORO_PHOTONS_PER_PIXEL: f64 = 300.0;

/// Settings of one fluoroscopy frame: `since_injection_s` says whether contrast is in the veins.
#[must_use]
pub fn settings(
    catheter: &Catheter,
    view: ViewAngles,
    size_px: u32,
    since_injection_s: Option<f64>,
    frame_seed: u64,
) -> RenderSettings {
    let mut s = RenderSettings::typical(view, size_px, 12, 1);
    s.photons_per_pixel = FLUORO_PHOTONS_PER_PIXEL;
    s.noise_seed = frame_seed;
    match since_injection_s.filter(|t| *t <= CONTRAST_VISIBLE_S) {
        // Contrast filled the veins against the balloon and is washing out.
        Some(t) => {
            s.injection.start_ms = -10_000.0 - 1000.0 * t;
            s.injection.washout_start_ms = -1000.0 * t;
            s.injection.washout_tau_ms = 1000.0 * CONTRAST_VISIBLE_S;
        }
        None => s.injection.contrast_mu_per_mm = 0.0,
    }
    s.instruments = vec![
        Instrument {
            kind: DeviceKind::Guidewire,
            points_in_patient: catheter.wire_points(),
            radius_mm: 0.18,
            mu_per_mm: 0.8,
        },
        Instrument {
            kind: DeviceKind::LvLead,
            points_in_patient: catheter.lead_points(),
            radius_mm: 0.5 * catheter.lead().diameter_mm(),
            mu_per_mm: 0.2,
        },
    ];
    s
}

/// Renders one fluoroscopy frame.
pub fn frame(
    patient: &SyntheticPatient,
    catheter: &Catheter,
    view: ViewAngles,
    size_px: u32,
    since_injection_s: Option<f64>,
    frame_seed: u64,
) -> Result<RenderedRun, RenderError> {
    render(patient, &settings(catheter, view, size_px, since_injection_s, frame_seed))
}
