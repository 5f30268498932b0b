//! `csnav bench-frames` runs end to end and reports what it measured (the numbers themselves are
//! for the README's table, not asserted here): frames timed, tip samples shown, a latency per
//! frame that showed a new sample, the adapter.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

#[test]
fn the_frame_benchmark_reports_frames_and_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.json");
    let out = common::csnav_command()
        .args(["bench-frames", "--case", &common::case(), "--seconds", "2", "--size", "640x360", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let stdout = common::text(&out.stdout);
    assert!(stdout.contains("tip sample to frame rendered"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(r["frames"].as_u64().unwrap() > 0, "{r}");
    assert!(r["tip_samples"].as_u64().unwrap() > 100, "4 tools at 100 Hz for 2 s: {r}");
    let latency = &r["latency_ms"];
    assert!(latency["count"].as_u64().unwrap() > 0, "{r}");
    let (p50, max) = (latency["p50"].as_f64().unwrap(), latency["max"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= max, "{r}");
    assert!(!r["adapter"].as_str().unwrap().is_empty());
    let bad = common::csnav(&["bench-frames", "--tools", "0"]);
    assert!(!bad.status.success() && common::text(&bad.stderr).contains("--tools must be 1-16"));
}
