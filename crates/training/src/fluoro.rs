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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catheter::CatheterConfig;
    use crate::leads::LeadSpec;
    use device_link::lead::LeadModel;
    use simulator::render::DeviceKind;

    #[test]
    fn the_wire_and_the_lead_show_dark_in_fluoroscopy_and_contrast_only_after_an_injection() {
        let patient = SyntheticPatient::generate(7);
        let lead = LeadSpec { model: LeadModel::Quartet, diameter_fr: 4.7 };
        let mut c = Catheter::new(&patient.tree, &patient.lv, lead, CatheterConfig::default());
        c.advance_wire(60.0);
        c.advance_lead(40.0);
        let view = ViewAngles { primary_deg: 35.0, secondary_deg: 0.0 };
        let run = frame(&patient, &c, view, 256, None, 1).unwrap();
        let truth = &run.truth[0];
        let samples = run.cine.samples();
        let at = |x: f64, y: f64| -> f64 {
            let (x, y) = (x.round().clamp(0.0, 255.0) as usize, y.round().clamp(0.0, 255.0) as usize);
            f64::from(samples[y * 256 + x])
        };
        for kind in [DeviceKind::Guidewire, DeviceKind::LvLead] {
            let d = truth.devices.iter().find(|d| d.kind == kind).unwrap();
            let (mut on, mut off) = (0.0, 0.0);
            for w in d.centerline_px.windows(2) {
                let ([x0, y0], [x1, y1]) = (w[0], w[1]);
                let (nx, ny) = (-(y1 - y0), x1 - x0);
                let norm = nx.hypot(ny).max(1e-9);
                on += at(x0, y0);
                off += 0.5
                    * (at(x0 + 6.0 * nx / norm, y0 + 6.0 * ny / norm) + at(x0 - 6.0 * nx / norm, y0 - 6.0 * ny / norm));
            }
            assert!(on < off, "{kind:?}: {on} on the device, {off} beside it");
        }
        // No contrast without an injection; contrast a second after one.
        let opacity = |r: &RenderedRun| r.truth[0].branches.iter().flat_map(|b| b.opacity.iter()).sum::<f64>();
        let after = frame(&patient, &c, view, 256, Some(1.0), 1).unwrap();
        let long_after = frame(&patient, &c, view, 256, Some(10.0), 1).unwrap();
        assert!(opacity(&after) > 10.0 * opacity(&long_after).max(1e-9) || opacity(&long_after) == 0.0);
        assert!(opacity(&after) > 1.0);
    }
}
