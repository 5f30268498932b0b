//! `csnav send-tips` and `csnav track` end to end on the bundled case: a tip played along
//! the ground-truth centerline to the PLV arrives there, through a recorded stream and live
//! over OpenIGTLink; dropouts are flagged stale; bad input gives a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

mod common;
use common::{case, csnav, text};

/// The JSON updates, each checked for the documented keys.
fn updates(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["arc_mm", "branch", "off_vessel_mm", "stale", "t_ms", "target", "tip_in_patient_mm", "tool"]
            );
            v
        })
        .collect()
}

/// The tip ends on the PLV at the target, the branch never flickers back, and the path
/// along the tree shrinks to nothing.
fn check_arrival(updates: &[serde_json::Value]) {
    assert!(updates.len() > 20, "{} updates", updates.len());
    let fresh: Vec<&serde_json::Value> = updates.iter().filter(|u| u["stale"] == false).collect();
    let last = fresh.last().unwrap();
    assert_eq!(last["branch"], "PLV", "{last}");
    assert!(last["target"]["path_mm"].as_f64().unwrap() < 1.5, "{last}");
    assert_eq!(last["target"]["name"], "PLV mid");
    let mut branches: Vec<&str> = fresh.iter().filter_map(|u| u["branch"].as_str()).collect();
    branches.dedup();
    assert!(branches.len() <= 3 && branches[0] == "CS", "branch sequence {branches:?}");
    // Early on, the steering direction is a unit vector.
    let dir: Vec<f64> = serde_json::from_value(fresh[5]["target"]["field_dir"].clone()).unwrap();
    assert!((dir.iter().map(|v| v * v).sum::<f64>().sqrt() - 1.0).abs() < 1e-2);
}

#[test]
fn a_recorded_stream_replays_to_the_target_with_dropouts_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("tips.igtl").display().to_string();
    let out = csnav(&[
        "send-tips",
        "--case",
        &case(),
        "--capture",
        &capture,
        "--rate-hz",
        "200",
        "--dropout",
        "0.02",
        "--seed",
        "3",
        "--speed-mm-s",
        "40",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("lost to dropouts"));
    let out =
        csnav(&["track", "--case", &case(), "--replay", &capture, "--speed", "0", "--json", "--max-rate-hz", "0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("FRE"), "{}", text(&out.stderr));
    let u = updates(&text(&out.stdout));
    check_arrival(&u);
    // Every gap in the samples longer than the 200 ms limit shows a stale update inside it,
    // and no stale update appears without such a gap.
    let t = |u: &serde_json::Value| u["t_ms"].as_f64().unwrap();
    let fresh: Vec<f64> = u.iter().filter(|u| u["stale"] == false).map(t).collect();
    let stale: Vec<f64> = u.iter().filter(|u| u["stale"] == true).map(t).collect();
    let gaps: Vec<(f64, f64)> = fresh.windows(2).filter(|w| w[1] - w[0] > 200.0).map(|w| (w[0], w[1])).collect();
    assert!(!gaps.is_empty(), "the dropouts left no gap over 200 ms");
    for (a, b) in &gaps {
        assert!(stale.iter().any(|s| s > a && s <= b), "no stale update in the gap {a}-{b} ms");
    }
    for s in &stale {
        assert!(gaps.iter().any(|(a, b)| s > a && s <= b), "stale update at {s} ms outside every gap");
    }
}

#[test]
fn live_tips_over_openigtlink_reach_the_target() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut track = common::csnav_command()
        .args(["track", "--case", &case(), "--listen", &listen, "--json", "--max-rate-hz", "50", "--duration-s", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the listening line.
    let mut stderr = BufReader::new(track.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "track exited before listening");
    }
    let out = csnav(&[
        "send-tips",
        "--case",
        &case(),
        "--to",
        &listen,
        "--rate-hz",
        "250",
        "--speed-mm-s",
        "40",
        "--hold-s",
        "0.5",
        "--header-v2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let output = track.wait_with_output().unwrap();
    assert!(output.status.success());
    check_arrival(&updates(&text(&output.stdout)));
}

#[test]
fn bad_input_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.igtl");
    std::fs::write(&garbage, b"this is not an OpenIGTLink stream, just text long enough for a header.....").unwrap();
    let out = csnav(&["track", "--case", &case(), "--replay", &garbage.display().to_string(), "--speed", "0"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("header version"), "{}", text(&out.stderr));
    let out = csnav(&["track", "--case", dir.path().to_str().unwrap(), "--replay", "x"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("patient.json"), "{}", text(&out.stderr));
    let out = csnav(&["send-tips", "--case", &case(), "--capture", "x", "--rate-hz", "5000"]);
    assert!(text(&out.stderr).contains("outside 10-1000 Hz"), "{}", text(&out.stderr));
    let out = csnav(&["track", "--case", &case(), "--replay", "x", "--target", "nowhere=XYZ@0.5"]);
    assert!(text(&out.stderr).contains("unknown vein"), "{}", text(&out.stderr));
}
