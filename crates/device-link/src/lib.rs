//! Device link: the network link to the pacing-analyzer and heart model, threshold, PNS and
//! vector tests with hard safety limits, and candidate-site ranking.

pub mod analyzer;
pub mod client;
pub mod heart;
pub mod lead;
pub mod log;
pub mod procedures;
pub mod protocol;
pub mod ranking;
pub mod runner;
pub mod server;
pub mod session;

/// Milliseconds since `epoch` on tokio's clock (paused in tests): the drivers' session clock.
pub(crate) fn ms_since(epoch: tokio::time::Instant) -> f64 {
    epoch.elapsed().as_secs_f64() * 1e3
}
