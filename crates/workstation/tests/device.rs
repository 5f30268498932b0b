//! `csnav device-model` and `csnav device` end to end in real beat time on the bundled case:
//! a threshold test reports the model's threshold, the log keeps every command, the device is
//! left in safe pacing, and bad requests fail with a clear message.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

mod common;
use common::{case, csnav, text};

/// Starts the device model on a free port; returns it and the address.
fn model(log: &str) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = common::csnav_command()
        .args(["device-model", "--case", &case(), "--listen", &addr, "--duration-s", "30", "--log", log])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("device model") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "device model exited");
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}

#[test]
fn a_threshold_test_at_a_site_reports_the_models_threshold_and_logs_everything() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("device.jsonl").display().to_string();
    let client_log = dir.path().join("client.jsonl").display().to_string();
    let (mut model, addr) = model(&log);
    // Start near the threshold so the test takes a few seconds of real beats.
    let out = csnav(&[
        "device",
        "threshold",
        "--device",
        &addr,
        "--case",
        &case(),
        "--site",
        "PLV@0.67",
        "--lead",
        "quartet",
        "--vector",
        "D1-RV coil",
        "--start-volts",
        "2.0",
        "--json",
        "--log",
        &client_log,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["test"], "threshold");
    assert_eq!(record["status"], "complete");
    assert_eq!(record["vector"], "D1-RV coil");
    // The model's own truth at that site (the library test checks every vector; here one).
    let found = record["result"]["value"].as_f64().unwrap();
    assert!((0.3..2.0).contains(&found), "{record}");
    // Both logs hold every command, the device's also the return to safe pacing.
    let device_lines = std::fs::read_to_string(&log).unwrap();
    let client_lines = std::fs::read_to_string(&client_log).unwrap();
    assert!(device_lines.lines().count() >= 5 && client_lines.lines().count() >= 5);
    for line in device_lines.lines().chain(client_lines.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["t_ms"].is_number() && v["wall_time_s"].is_number(), "{line}");
    }
    assert!(device_lines.contains("\"place_lead\"") && device_lines.contains("\"stop\""));
    assert!(device_lines.contains("client_left") || device_lines.contains("stop_requested"));
    model.kill().unwrap();
    model.wait().unwrap();
}

#[test]
fn bad_requests_fail_with_a_clear_message() {
    let out = csnav(&["device", "threshold", "--device", "127.0.0.1:9", "--case", &case(), "--site", "PLV@0.5"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot connect to the device"), "{}", text(&out.stderr));
    let out = csnav(&["device", "threshold", "--case", &case(), "--site", "PLV@0.5", "--vector", "D1-LV9"]);
    assert!(text(&out.stderr).contains("unknown vector"), "{}", text(&out.stderr));
    let out = csnav(&["device", "threshold", "--case", &case(), "--site", "XYZ@0.5"]);
    assert!(text(&out.stderr).contains("unknown vein"), "{}", text(&out.stderr));
    let out = csnav(&["device", "threshold", "--case", &case(), "--site", "PLV@0.5", "--lead", "unipolar"]);
    assert!(text(&out.stderr).contains("unknown lead"), "{}", text(&out.stderr));
    let out = csnav(&["device-model", "--case", &case(), "--max-volts", "25"]);
    assert!(text(&out.stderr).contains("outside 0.1-10"), "{}", text(&out.stderr));
}

#[test]
fn saved_sweeps_are_ranked_with_reasons() {
    use device_link::lead::{Pole, Vector};
    use device_link::procedures::{PhrenicOutcome, ThresholdOutcome};
    use device_link::ranking::SiteRecord;
    use device_link::runner::{Measurements, Run, VectorResult};
    let dir = tempfile::tempdir().unwrap();
    let vector = |threshold: f64, pns: Option<f64>, qlv_ms: f64| VectorResult {
        vector: Vector { cathode: 0, anode: Pole::RvCoil },
        name: "D1-RV coil".into(),
        measurements: Some(Measurements { impedance_ohm: 750.0, r_wave_mv: 9.0, qlv_ms, qrs_duration_ms: 160.0 }),
        threshold: Run::Complete { result: ThresholdOutcome::Threshold { value: threshold, at_floor: false } },
        phrenic: Run::Complete {
            result: pns.map_or(PhrenicOutcome::NoneAtScreen { screen_volts: 10.0 }, |volts| {
                PhrenicOutcome::Threshold { volts }
            }),
        },
        margin_ok: None,
    };
    let mut files = Vec::new();
    for (site, vein, apical, v) in [
        ("PLV@0.5", "PLV", false, vector(1.1, None, 120.0)),
        ("AIV@0.8", "AIV", true, vector(0.9, None, 70.0)),
        ("LMV@0.6", "LMV", false, vector(1.4, Some(2.0), 130.0)),
    ] {
        let record = SiteRecord {
            site: site.into(),
            vein: Some(vein.into()),
            arc_mm: Some(80.0),
            apical,
            scar: None,
            vectors: vec![v],
        };
        let path = dir.path().join(format!("{vein}.json"));
        std::fs::write(&path, serde_json::to_string(&record).unwrap()).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["device-rank", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = csnav(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sites: Vec<&str> = v["ranking"].as_array().unwrap().iter().map(|r| r["site"].as_str().unwrap()).collect();
    assert_eq!(sites, ["PLV@0.5", "AIV@0.8", "LMV@0.6"]);
    assert_eq!(v["ranking"][2]["eligible"], false);
    let mut plain = vec!["device-rank"];
    plain.extend(files.iter().map(String::as_str));
    let listing = text(&csnav(&plain).stdout);
    assert!(listing.starts_with("1. PLV@0.5 (score "), "{listing}");
    assert!(
        listing.contains("3. LMV@0.6 (not eligible): no vector passes the gates; D1-RV coil: PNS at 2.0 V"),
        "{listing}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let out = csnav(&["device-rank", bad.to_str().unwrap()]);
    assert!(text(&out.stderr).contains("is not a `csnav device sweep --json` record"), "{}", text(&out.stderr));
}

/// Ctrl-C during a test: the device goes to safe pacing, the result is INCOMPLETE (exit 3),
/// no threshold is printed.
#[test]
fn an_interrupted_test_is_incomplete_and_the_device_safe() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("device.jsonl").display().to_string();
    let (mut model, addr) = model(&log);
    let test = common::csnav_command()
        .args(["device", "threshold", "--device", &addr, "--case", &case(), "--site", "PLV@0.67", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = Command::new("kill").args(["-INT", &test.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = test.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["status"], "incomplete", "{record}");
    assert!(record["reason"].as_str().unwrap().contains("StopRequested"), "{record}");
    assert!(record.get("result").is_none());
    let device_lines = std::fs::read_to_string(&log).unwrap();
    assert!(device_lines.contains("\"stop\""));
    model.kill().unwrap();
    model.wait().unwrap();
}
