//! Helpers shared by the `csnav` end-to-end tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "test helpers: a failure is a failed test")]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The bundled case directory.
pub fn case() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/cases/synthetic-seed7").display().to_string()
}

/// Runs `csnav` with `args`.
pub fn csnav(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csnav")).args(args).output().unwrap()
}

/// Bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
