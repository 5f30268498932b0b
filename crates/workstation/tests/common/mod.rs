//! Helpers shared by the `csnav` end-to-end tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "test helpers: a failure is a failed test")]

pub mod dicom;
pub mod shot;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The bundled case directory.
pub fn case() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/cases/synthetic-seed7").display().to_string()
}

/// Runs `csnav` with `args`.
pub fn csnav(args: &[&str]) -> Output {
    csnav_command().args(args).output().unwrap()
}

/// The `csnav` binary, its default recordings kept out of the source tree.
pub fn csnav_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_csnav"));
    command.env("CSNAV_RECORD_DIR", std::env::temp_dir().join("csnav-test-recordings"));
    command
}

/// A free TCP port on loopback (bound, noted, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Rerun's Python SDK and CLI (`scripts/install-rerun-peer.sh`).
pub struct RerunPeer {
    /// The venv's Python.
    pub python: PathBuf,
    /// The `rerun` CLI of the same wheel.
    pub rerun: PathBuf,
    /// The reader script.
    pub reader: PathBuf,
}

/// The rerun-sdk peer; panics with the fix when it is not installed.
pub fn rerun_peer() -> RerunPeer {
    let venv = std::env::var_os("CSNAV_RERUN_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/csnav/rerun-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "rerun-sdk peer venv not found at {}: run scripts/install-rerun-peer.sh (the README's test command does)",
        venv.display()
    );
    RerunPeer {
        python,
        rerun: venv.join("bin/rerun"),
        reader: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/rerun_read_recording.py"),
    }
}
