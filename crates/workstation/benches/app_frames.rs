//! The app's frame-time benchmark (`csnav bench-frames`): 4 tips at 100 Hz, the device model
//! streaming and both runs playing on the bundled case, offscreen at 1920x1080; prints the
//! frame-time and tip-to-frame latency table. Target on a GPU: 60 frames/s with the 99th
//! percentile frame under 20 ms. Run with `cargo bench -p workstation --bench app_frames`
//! (extra arguments go to `csnav bench-frames`, e.g. `-- --seconds 30 --size 2560x1440`).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/cases/synthetic-seed7");
    let report = std::env::temp_dir().join("csnav-bench-frames.json");
    // `cargo bench` passes `--bench`; the rest are ours.
    let extra: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let status = Command::new(env!("CARGO_BIN_EXE_csnav"))
        .args(["bench-frames", "--case", case, "--report"])
        .arg(&report)
        .args(&extra)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("csnav bench-frames failed: {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cannot run csnav bench-frames: {e}");
            ExitCode::FAILURE
        }
    }
}
