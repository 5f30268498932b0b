//! Helpers shared by navigation's integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "test helpers: a failure is a failed test")]

use std::path::PathBuf;
use std::time::Duration;

use nalgebra::Vector3;
use simulator::rng::SimRng;

/// Isotropic Gaussian noise of `rms_mm` (3D RMS), from a seeded generator.
pub struct Noise {
    rng: SimRng,
    sigma: f64,
}

impl Noise {
    /// Noise with a 3D RMS of `rms_mm`.
    pub fn new(seed: u64, rms_mm: f64) -> Self {
        Self { rng: SimRng::new(seed, 0x006e_6f69_7365), sigma: rms_mm / 3f64.sqrt() }
    }

    /// One sample.
    pub fn vector(&mut self) -> Vector3<f64> {
        Vector3::new(
            self.rng.normal(0.0, self.sigma),
            self.rng.normal(0.0, self.sigma),
            self.rng.normal(0.0, self.sigma),
        )
    }
}

/// The Python interpreter of the peers venv (`scripts/install-peers.sh`); panics with the fix.
pub fn peers_python() -> PathBuf {
    let venv = std::env::var_os("CSNAV_PEERS_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/csnav/peers-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "pyigtl peer venv not found at {}: run scripts/install-peers.sh (the README's test command does)",
        venv.display()
    );
    python
}

/// Waits (up to 20 s) until `check` holds.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
