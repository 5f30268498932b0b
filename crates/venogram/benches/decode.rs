//! Decode throughput of csnav's XA ingest beside dcmtk and pydicom, on the same files, in one
//! run, printed as a table with ratios. Run by hand (`cargo bench -p venogram --bench decode`)
//! after `scripts/install-peers.sh`; not part of CI.
//!
//! Cases (from the foundation issue): a 60-frame 1024x1024 12-bit run in JPEG Lossless SV1
//! (the cardiac media profile's syntax) and a 96-frame 512x512 8-bit run in RLE Lossless.
//! csnav is timed reading the file and decoding every frame into memory; dcmtk's
//! `dcmdjpeg`/`dcmdrle` are timed as whole processes writing the decoded file to a temporary
//! directory (their only interface); pydicom is timed inside Python (`dcmread` + `pixel_array`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, reason = "a bench binary reports on stdout")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const REPEATS: usize = 5;

struct Case {
    name: &'static str,
    rows: u32,
    columns: u32,
    frames: u32,
    bits: u16,
    encoder: (&'static str, &'static [&'static str]),
    decoder: &'static str,
}

struct Row {
    case: &'static str,
    tool: String,
    frames_per_s: Option<f64>,
    note: String,
}

fn best_of<F: FnMut() -> bool>(mut f: F) -> Option<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..REPEATS {
        let start = Instant::now();
        if !f() {
            return None;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some(best)
}

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("CSNAV_PEERS_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/csnav/peers-venv"),
        PathBuf::from,
    );
    let p = venv.join("bin/python");
    p.exists().then_some(p)
}

fn make_input(case: &Case, dir: &Path) -> PathBuf {
    let cine =
        venogram::test_pattern::angiography_pattern(case.rows, case.columns, case.frames, case.bits, 11).unwrap();
    let native = dir.join(format!("{}-native.dcm", case.name));
    venogram::xa_writer::write_xa_file(&native, &cine, &venogram::xa_writer::XaWriteSpec::default()).unwrap();
    let encoded = dir.join(format!("{}.dcm", case.name));
    let status = Command::new(case.encoder.0).args(case.encoder.1).arg(&native).arg(&encoded).status();
    assert!(status.is_ok_and(|s| s.success()), "{} failed: run scripts/install-peers.sh", case.encoder.0);
    encoded
}

fn main() {
    let cases = [
        Case {
            name: "xa-1024x1024x60-12bit-jpeg-lossless-sv1",
            rows: 1024,
            columns: 1024,
            frames: 60,
            bits: 12,
            encoder: ("dcmcjpeg", &["+e1"]),
            decoder: "dcmdjpeg",
        },
        Case {
            name: "xa-512x512x96-8bit-rle",
            rows: 512,
            columns: 512,
            frames: 96,
            bits: 8,
            encoder: ("dcmcrle", &[]),
            decoder: "dcmdrle",
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut rows = Vec::new();
    for case in &cases {
        let input = make_input(case, dir.path());
        let size_mb = std::fs::metadata(&input).unwrap().len() as f64 / 1e6;
        let frames = f64::from(case.frames);

        let csnav = best_of(|| venogram::read_xa_file(&input).is_ok_and(|r| r.cine.frame_count() == case.frames));
        rows.push(Row {
            case: case.name,
            tool: "csnav (venogram::read_xa_file)".into(),
            frames_per_s: csnav.map(|s| frames / s),
            note: format!("{threads} threads, {size_mb:.1} MB file"),
        });

        let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let csnav_1 = single
            .install(|| best_of(|| venogram::read_xa_file(&input).is_ok_and(|r| r.cine.frame_count() == case.frames)));
        rows.push(Row {
            case: case.name,
            tool: "csnav, 1 thread".into(),
            frames_per_s: csnav_1.map(|s| frames / s),
            note: "same, rayon pool of one thread (per-core comparison with dcmtk)".into(),
        });

        let out = dir.path().join("decoded.dcm");
        let dcmtk = best_of(|| Command::new(case.decoder).arg(&input).arg(&out).status().is_ok_and(|s| s.success()));
        rows.push(Row {
            case: case.name,
            tool: case.decoder.into(),
            frames_per_s: dcmtk.map(|s| frames / s),
            note: "whole process, writes decoded file".into(),
        });

        let py = python().and_then(|python| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/pydicom_decode_bench.py");
            let output = Command::new(python).arg(script).arg(&input).arg(REPEATS.to_string()).output().ok()?;
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let json: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
            Some((json["best_s"].as_f64()?, json["plugin"].as_str().unwrap_or("").to_owned()))
        });
        rows.push(Row {
            case: case.name,
            tool: "pydicom (pixel_array)".into(),
            frames_per_s: py.as_ref().map(|(s, _)| frames / s),
            note: py
                .map_or_else(|| "not available: run scripts/install-peers.sh".into(), |(_, p)| format!("plugins: {p}")),
        });
    }

    println!("\nXA decode throughput, best of {REPEATS} (higher is better)\n");
    println!("| case | tool | frames/s | csnav / tool | note |");
    println!("|---|---|---:|---:|---|");
    for case in &cases {
        let ours = rows.iter().find(|r| r.case == case.name).and_then(|r| r.frames_per_s);
        for r in rows.iter().filter(|r| r.case == case.name) {
            let fps = r.frames_per_s.map_or("failed".into(), |f| format!("{f:.1}"));
            let ratio = match (ours, r.frames_per_s) {
                (Some(a), Some(b)) => format!("{:.2}x", a / b),
                _ => "-".into(),
            };
            println!("| {} | {} | {fps} | {ratio} | {} |", r.case, r.tool, r.note);
        }
    }
}
