//! Simulator: the synthetic patient csnav is developed and tested against, with known truth.
//!
//! A seed gives a dilated LV ([`heart`]) with the coronary venous tree on its epicardium
//! ([`venous_tree`]), cardiac and respiratory motion as functions of time ([`motion`]) and the
//! physiology the device model reads ([`physiology`]). X-ray cine rendering with ground truth
//! ([`render`]) projects them through venogram's C-arm model with ground truth. Everything is deterministic per seed ([`rng`]).

pub mod heart;
pub mod motion;
pub mod output;
pub mod patient;
pub mod physiology;
pub mod render;
pub mod rng;
pub mod tracker;
pub mod venous_tree;
pub mod view;

pub use patient::SyntheticPatient;
