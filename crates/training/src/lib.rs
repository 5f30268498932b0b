//! Simulator training: a trainee places an LV lead in a synthetic patient described by a
//! scenario, steering a guidewire and the lead through the veins, asking for fluoroscopy and
//! contrast, testing sites, and is scored against the best site the anatomy offers.
//!
//! Sans-IO and clock-free: [`session::TrainingSession`] takes actions with their time and
//! answers with feedback; the workstation drives it from the keyboard (the app) or from a
//! script (tests, `csnav train --script`), streams the tips over OpenIGTLink and records it.

pub mod catheter;
pub mod debrief;
pub mod dose;
pub mod fluoro;
pub mod leads;
pub mod scenario;
pub mod score;
pub mod session;
pub mod site;
pub mod trainee;

pub use scenario::{Scenario, ScenarioError};
pub use session::TrainingSession;
