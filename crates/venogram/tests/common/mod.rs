//! Helpers shared by venogram's integration tests: locating the real DICOM peers (dcmtk and
//! the pydicom venv made by `scripts/install-peers.sh`) and writing the source objects.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "test helpers: a failure is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Command;

use venogram::PositionerGeometry;
use venogram::xa_writer::XaWriteSpec;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python interpreter of the peers venv; panics with the fix when it is missing.
pub fn peers_python() -> PathBuf {
    let venv = std::env::var_os("CSNAV_PEERS_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/csnav/peers-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "pydicom peer venv not found at {}: run scripts/install-peers.sh (the README's test command does)",
        venv.display()
    );
    python
}

/// Runs a peer tool, panicking with its output when it fails or is missing.
pub fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&std::ffi::OsStr]) -> String {
    let program = program.as_ref();
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}): run scripts/install-peers.sh (the README's test command does)", program.display())
    });
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The geometry and timing written into the conformance source objects: deliberately
/// non-round values so that a misread attribute shows.
pub fn source_spec(seed: u64) -> XaWriteSpec {
    XaWriteSpec {
        positioner: PositionerGeometry {
            positioner_primary_angle_deg: Some(32.5),
            positioner_secondary_angle_deg: Some(-12.25),
            distance_source_to_detector_mm: Some(1095.5),
            distance_source_to_patient_mm: Some(765.0),
            imager_pixel_spacing_mm: Some([0.154, 0.155]),
            estimated_radiographic_magnification_factor: Some(1.432),
            ..PositionerGeometry::default()
        },
        frame_time_ms: Some(33.33),
        cine_rate_hz: Some(30),
        r_wave_frame_indices: vec![1, 4],
        window: None,
        uid_seed: seed,
        monochrome1: false,
        study_uid_seed: None,
    }
}
