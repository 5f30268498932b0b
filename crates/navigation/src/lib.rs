//! Navigation: tracked guidewire and lead tips over OpenIGTLink ([`igtl`]), the tool model
//! and tracker-to-patient registration, projection onto the venogram and snapping to the
//! branch tree, and guidance to target sites.

pub mod gating;
pub mod guidance;
pub mod igtl;
pub mod link;
pub mod overlay;
pub mod registration;
pub mod snap;
pub mod tool;
pub mod tracking;
pub mod tree;
