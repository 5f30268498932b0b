//! The leads on a training shelf: a quadripolar model (electrodes and vectors from
//! device-link) and the diameter at which it wedges in a vein. Nominal diameters are not
//! published consistently (lead body versus tip, French sizes rounded); the defaults here are
//! modelling assumptions (UNCONFIRMED) and every scenario may set its own.

use device_link::lead::LeadModel;
use serde::Serialize;

/// Millimetres per French (1 Fr = 1/3 mm).
pub const MM_PER_FRENCH: f64 = 1.0 / 3.0;

/// A lead on the shelf.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LeadSpec {
    /// The model.
    pub model: LeadModel,
    /// Diameter where it wedges, French.
    pub diameter_fr: f64,
}

impl LeadSpec {
    /// Diameter, mm.
    #[must_use]
    pub fn diameter_mm(&self) -> f64 {
        self.diameter_fr * MM_PER_FRENCH
    }

    /// Name as shown to the trainee, e.g. `Attain Performa 5.3 Fr`.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{} {:.1} Fr", model_name(self.model), self.diameter_fr)
    }
}

/// The model's trade name.
#[must_use]
pub fn model_name(model: LeadModel) -> &'static str {
    match model {
        LeadModel::AttainPerforma => "Attain Performa",
        LeadModel::Quartet => "Quartet",
        LeadModel::AcuityX4 => "Acuity X4",
    }
}

/// Nominal diameter of a model, French (UNCONFIRMED: lead-body figures as commonly quoted).
#[must_use]
pub fn default_diameter_fr(model: LeadModel) -> f64 {
    match model {
        LeadModel::AttainPerforma => 5.3,
        LeadModel::Quartet => 4.7,
        LeadModel::AcuityX4 => 5.0,
    }
}
