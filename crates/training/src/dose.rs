//! Fluoroscopy time, dose and contrast: what a trainee's session exposes the patient to.
//! The rates are typical figures for low-dose cardiac fluoroscopy, not a dosimetry model
//! (UNCONFIRMED; fields, so a scenario or a site can set its own): reference air kerma rate
//! 10 mGy/min and dose-area product rate 0.5 Gy cm2/min at 7.5 pulses/s, 8 mL of contrast
//! per hand injection through the balloon catheter.

use serde::Serialize;

/// Dose and contrast rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DoseModel {
    /// Reference-point air kerma rate during fluoroscopy, mGy per minute.
    pub air_kerma_rate_mgy_per_min: f64,
    /// Dose-area product rate during fluoroscopy, Gy cm2 per minute.
    pub dap_rate_gycm2_per_min: f64,
    /// Contrast per injection, mL.
    pub contrast_ml_per_injection: f64,
}

impl Default for DoseModel {
    fn default() -> Self {
        Self { air_kerma_rate_mgy_per_min: 10.0, dap_rate_gycm2_per_min: 0.5, contrast_ml_per_injection: 8.0 }
    }
}

/// What a session has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Exposure {
    /// Fluoroscopy time, s.
    pub fluoro_s: f64,
    /// Contrast injections.
    pub injections: u32,
    /// Reference air kerma, mGy.
    pub air_kerma_mgy: f64,
    /// Dose-area product, Gy cm2.
    pub dap_gycm2: f64,
    /// Contrast volume, mL.
    pub contrast_ml: f64,
}

impl Exposure {
    /// The exposure of `fluoro_s` of fluoroscopy and `injections` injections.
    #[must_use]
    pub fn of(fluoro_s: f64, injections: u32, model: &DoseModel) -> Self {
        let minutes = fluoro_s / 60.0;
        Self {
            fluoro_s,
            injections,
            air_kerma_mgy: minutes * model.air_kerma_rate_mgy_per_min,
            dap_gycm2: minutes * model.dap_rate_gycm2_per_min,
            contrast_ml: f64::from(injections) * model.contrast_ml_per_injection,
        }
    }
}
