//! Recording and replay end to end: a scripted simulator session recorded, read back by
//! csnav (`record-info`, `replay`) and by Rerun's own Python SDK and `rerun rrd verify`; a
//! session killed with SIGKILL leaves a readable recording up to its last flush; and bad
//! files get clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{case, csnav, text};
use serde_json::Value;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(bytes)))
}

/// Runs the scripted session into `path` and returns what it says it sent.
fn scripted_session(path: &str) -> Value {
    let out = csnav(&["sim-session", "--case", &case(), "--record", path, "--json", "--speed-mm-s", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    json(&out.stdout)
}

#[test]
fn a_scripted_session_is_recorded_and_read_back_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.rrd").display().to_string();
    let sent = scripted_session(&file);
    assert!(sent["tip_samples"].as_u64().unwrap() > 100);
    assert!(sent["capture_threshold_volts"].as_f64().is_some(), "{sent}");

    // csnav's own reader.
    let out = csnav(&["record-info", &file, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = json(&out.stdout);
    assert_eq!(info["simulator"], true);
    assert_eq!(info["finished"], true);
    assert!(info["case"].as_str().unwrap().starts_with("case-"));
    assert!(!text(&out.stdout).contains("synthetic-seed7"), "the case directory leaked into the recording");
    assert_eq!(info["tip_samples_per_tool"]["Guidewire"], sent["tip_samples"]);
    for run in sent["runs"].as_array().unwrap() {
        let n = run["run"].to_string();
        assert_eq!(info["frames_per_run"][&n], run["frames"]);
        assert_eq!(info["tree_branches_per_run"][&n], run["tree_branches"]);
    }
    assert_eq!(info["tree3d_branches"], sent["tree3d_branches"]);
    assert_eq!(info["device_commands"], sent["device_commands"]);
    assert_eq!(info["beats"], sent["beats"]);
    assert_eq!(info["egm_samples"]["lv_tip_mv"], sent["egm_samples"]);
    assert_eq!(info["thresholds"][0][2], sent["capture_threshold_volts"]);

    // Replay re-drives every tip through the pipeline and finds what the session showed.
    let out = csnav(&["replay", &file, "--speed", "0", "--json", "--max-rate-hz", "0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("replayed {} tip samples (0 differ", sent["tip_samples"])), "{stderr}");
    let lines: Vec<Value> = text(&out.stdout).lines().map(|l| json(l.as_bytes())).collect();
    let tips = lines
        .iter()
        .filter(|l| l["panel"] == "navigation" && l["text"].as_str().unwrap().starts_with("Guidewire"))
        .count();
    assert_eq!(tips as u64, sent["tip_samples"].as_u64().unwrap());
    let last_tip = lines.iter().rev().find(|l| l["text"].as_str().unwrap().starts_with("Guidewire")).unwrap();
    assert!(last_tip["text"].as_str().unwrap().contains("PLV"), "{last_tip}");
    assert!(lines.iter().any(|l| l["panel"] == "device" && l["text"].as_str().unwrap().starts_with("RESULT")));
    let times: Vec<f64> = lines.iter().map(|l| l["t_s"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "replay out of order");

    // Seek: nothing before the seek point is shown, and the state (snap hysteresis) is rebuilt.
    let seek = times[times.len() / 2];
    let out = csnav(&["replay", &file, "--speed", "0", "--json", "--seek-s", &seek.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().all(|l| json(l.as_bytes())["t_s"].as_f64().unwrap() >= seek));
    assert!(text(&out.stderr).contains("(0 differ"));

    // Rerun's own Python SDK reads the same numbers, and its CLI verifies the file.
    let peer = common::rerun_peer();
    let out = std::process::Command::new(&peer.python).arg(&peer.reader).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let read = json(&out.stdout);
    assert_eq!(read["has_footer"], true, "{read}");
    assert_eq!(read["tip_samples"], sent["tip_samples"], "{read}");
    for run in sent["runs"].as_array().unwrap() {
        let n = run["run"].to_string();
        assert_eq!(read["frames_per_run"][&n], run["frames"], "{read}");
        assert_eq!(read["tree_branches_per_run"][&n], run["tree_branches"], "{read}");
    }
    assert_eq!(read["tree3d_branches"], sent["tree3d_branches"], "{read}");
    assert_eq!(read["beats"], sent["beats"], "{read}");
    assert_eq!(read["egm_samples"], sent["egm_samples"], "{read}");
    assert_eq!(read["session_mode"], "simulator");
    let thresholds: Vec<f64> = read["thresholds"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect();
    assert_eq!(thresholds, vec![sent["capture_threshold_volts"].as_f64().unwrap()], "{read}");
    // CI=1: the CLI records no usage analytics. Its exit status alone passes empty files.
    let out = std::process::Command::new(&peer.rerun).args(["rrd", "verify", &file]).env("CI", "1").output().unwrap();
    assert!(
        out.status.success() && text(&out.stderr).contains("1 file verified without error"),
        "rerun rrd verify: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn a_killed_session_leaves_a_readable_recording_up_to_its_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killed.rrd").display().to_string();
    // A slow tip: the session is still sending tips when it is killed.
    let mut child = common::csnav_command()
        .args(["sim-session", "--case", &case(), "--record", &file, "--speed-mm-s", "5", "--no-device"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("tip advancing") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the session ended early");
    }
    let tips_started = Instant::now();
    std::thread::sleep(Duration::from_millis(3500));
    let sending_for_s = tips_started.elapsed().as_secs_f64();
    // SIGKILL: no destructor, no footer, no final flush.
    child.kill().unwrap();
    child.wait().unwrap();

    let out = csnav(&["record-info", &file, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = json(&out.stdout);
    assert_eq!(info["finished"], false, "{info}");
    // Everything before the last flush (at most 1 s before the kill) is there: the frames,
    // the trees, and the tip samples of all but the last second or so (100 Hz).
    assert_eq!(info["frames_per_run"]["1"], 24);
    assert_eq!(info["frames_per_run"]["2"], 24);
    assert_eq!(info["tree3d_branches"], 12);
    let tips = info["tip_samples_per_tool"]["Guidewire"].as_f64().unwrap();
    let lower = (sending_for_s - 1.0 - 0.5) * 100.0;
    assert!(tips >= lower && tips <= sending_for_s * 100.0 + 2.0, "{tips} tip samples after {sending_for_s:.2} s");
    let out = csnav(&["record-info", &file]);
    assert!(text(&out.stdout).contains("CUT SHORT"), "{}", text(&out.stdout));
    let out = csnav(&["replay", &file, "--speed", "0", "--text"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cut short"), "{}", text(&out.stderr));
}

#[test]
fn bad_recordings_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.rrd");
    let out = csnav(&[
        "sim-session",
        "--case",
        &case(),
        "--record",
        good.to_str().unwrap(),
        "--no-device",
        "--speed-mm-s",
        "400",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.display().to_string()
    };

    // Not an .rrd at all.
    let not_rrd = write("notes.rrd", b"this is a text file, not a recording\n");
    for command in ["replay", "record-info"] {
        let out = csnav(&[command, &not_rrd]);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("is not a Rerun recording"), "{}", text(&out.stderr));
    }
    let empty = write("empty.rrd", b"");
    assert!(text(&csnav(&["replay", &empty]).stderr).contains("the file is empty"));
    assert!(
        text(&csnav(&["replay", &dir.path().join("missing.rrd").display().to_string()]).stderr).contains("cannot open")
    );

    // Written by a Rerun version before 0.23 (the stream header's version bytes, after "RRF2").
    assert_eq!(&bytes[..4], b"RRF2", "the stream header moved");
    let mut old = bytes.clone();
    old[4..8].copy_from_slice(&[0, 20, 0, 0]);
    let old = write("old.rrd", &old);
    let out = csnav(&["replay", &old]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unsupported Rerun version"), "{}", text(&out.stderr));

    // Cut inside a message: read up to the cut, and the damage named.
    let cut = write("cut.rrd", &bytes[..bytes.len() * 2 / 3]);
    let out = csnav(&["record-info", &cut]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("CUT SHORT"), "{}", text(&out.stdout));
    // Cut inside the session's first message: nothing csnav can use.
    let stub = write("stub.rrd", &bytes[..40]);
    let out = csnav(&["replay", &stub]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stub.rrd"), "{}", text(&out.stderr));

    // A bad speed is refused before anything is read.
    let out = csnav(&["replay", good.to_str().unwrap(), "--speed=-1"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--speed"));
}
