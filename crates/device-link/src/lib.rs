//! Device link: the network link to the pacing-analyzer and heart model, threshold, PNS and
//! vector tests with hard safety limits, and candidate-site ranking.

pub mod analyzer;
pub mod heart;
pub mod lead;
pub mod protocol;
pub mod session;
