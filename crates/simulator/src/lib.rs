//! Simulator: the synthetic patient csnav is developed and tested against, with known truth.
//!
//! A seed gives a dilated LV ([`heart`]) with the coronary venous tree on its epicardium
//! ([`venous_tree`]), cardiac and respiratory motion as functions of time ([`motion`]) and the
//! physiology the device model reads ([`physiology`]). X-ray cine rendering with ground truth
//! builds on these (issue 3, in progress). Everything is deterministic per seed ([`rng`]).

pub mod heart;
pub mod motion;
pub mod patient;
pub mod physiology;
pub mod rng;
pub mod venous_tree;

pub use patient::SyntheticPatient;
