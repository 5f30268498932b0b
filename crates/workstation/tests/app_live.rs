//! `csnav live` rendered offscreen against real peers over the network: the tracker
//! (`csnav send-tips --serve`, an OpenIGTLink server as a tracker's own is) and the device
//! model (`csnav device-model`). Connected, the tip is live where the pipeline projects it and
//! the EGM strip fills; when both peers go away, both links are alarms and the tip is stale,
//! and the recording says so.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use common::shot::{STALE_RING_PX, Shot, TIP_COLOUR, TIP_STALE_COLOUR, screen_from_image};
use serde_json::Value;

fn free_addr() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

/// A child that is killed when the test ends, however it ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a peer and waits for `ready` on its stderr (the rest of it is drained).
fn start(args: &[&str], ready: &str) -> Peer {
    let mut child = common::csnav_command().args(args).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains(ready) {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{args:?} exited before {ready:?}");
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Peer(child)
}

fn device_model(addr: &str) -> Peer {
    start(&["device-model", "--case", &common::case(), "--listen", addr, "--duration-s", "300"], "device model")
}

fn tracker(addr: &str) -> Peer {
    start(
        &[
            "send-tips",
            "--serve",
            addr,
            "--case",
            &common::case(),
            "--tool",
            "lead-tip",
            "--rate-hz",
            "100",
            "--speed-mm-s",
            "40",
            "--hold-s",
            "300",
        ],
        "serving OpenIGTLink",
    )
}

fn live(tracker: &str, device: &str, out: &Path, duration_s: &str, record: &Path) -> std::process::Command {
    let mut command = common::csnav_command();
    command
        .args(["live", "--headless", "--case", &common::case(), "--tracker", tracker, "--device", device])
        .args(["--duration-s", duration_s, "--size", "1280x720", "--out"])
        .arg(out)
        .arg("--record")
        .arg(record);
    command
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn live_follows_the_tracker_and_device_and_raises_alarms_when_they_drop() {
    let dir = tempfile::tempdir().unwrap();

    // Both peers up: everything live.
    let (tracker_addr, device_addr) = (free_addr(), free_addr());
    let _device = device_model(&device_addr);
    let _tracker = tracker(&tracker_addr);
    let out = dir.path().join("connected");
    let result = live(&tracker_addr, &device_addr, &out, "4", &dir.path().join("connected.rrd")).output().unwrap();
    let stderr = common::text(&result.stderr);
    assert!(result.status.success(), "csnav live failed:\n{stderr}");
    let s = summary(&out);
    println!("connected: links {}, {} tip samples, {} EGM samples", s["links"], s["tip_samples"], s["egm_samples"]);
    assert_eq!(s["links"], serde_json::json!(["Tracker: connected", "Device: connected"]), "{stderr}");
    assert!(s["tip_samples"].as_u64().unwrap() > 100, "{}", s["tip_samples"]);
    assert!(s["egm_samples"].as_u64().unwrap() > 100, "the EGM strip fills from the device: {}", s["egm_samples"]);
    let screen = Shot::read(&out.join("screen.png"));
    let views = s["views"].as_array().unwrap();
    assert_eq!(views.len(), 2);
    for view in views {
        let tip = &view["tips"][0];
        assert_eq!(tip["stale"], false, "{}: the tracker is streaming", view["source"]);
        let xy = [tip["projection_px"][0].as_f64().unwrap(), tip["projection_px"][1].as_f64().unwrap()];
        let [sx, sy] = screen_from_image(&view["fit"], xy);
        assert!(screen.near(sx, sy, 3, &[TIP_COLOUR], 40), "{}: no live tip at ({sx:.1}, {sy:.1})", view["source"]);
    }

    // Both peers go away a few seconds in: alarms, and the tip turns stale.
    let (tracker_addr, device_addr) = (free_addr(), free_addr());
    let mut device = device_model(&device_addr);
    let out = dir.path().join("dropped");
    let record = dir.path().join("dropped.rrd");
    let mut command = live(&tracker_addr, &device_addr, &out, "6", &record);
    let mut tracker = start(
        &[
            "send-tips",
            "--serve",
            &tracker_addr,
            "--case",
            &common::case(),
            "--tool",
            "lead-tip",
            "--speed-mm-s",
            "40",
            "--hold-s",
            "300",
        ],
        "serving OpenIGTLink",
    );
    let mut app = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Once both links are up (the runs are segmented first), drop both peers.
    let mut stderr = BufReader::new(app.stderr.take().unwrap());
    let (mut log, mut line) = (String::new(), String::new());
    while !(log.contains("Tracker link Connected") && log.contains("Device link Connected")) {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "csnav live ended before both links were up:\n{log}");
        log.push_str(&line);
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let _ = tracker.0.kill();
    let _ = device.0.kill();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    log.push_str(&rest);
    let status = app.wait().unwrap();
    assert!(status.success(), "csnav live failed:\n{log}");
    let s = summary(&out);
    println!("dropped: links {}, step {}", s["links"], s["step"]);
    let links = s["links"].as_array().unwrap();
    assert!(links[0].as_str().unwrap().starts_with("!! Tracker: LOST"), "{links:?}");
    assert!(links[1].as_str().unwrap().starts_with("!! Device: LOST"), "{links:?}");
    let screen = Shot::read(&out.join("screen.png"));
    for view in s["views"].as_array().unwrap() {
        let tip = &view["tips"][0];
        assert_eq!(tip["stale"], true, "{}: the tracker has gone: the tip must be stale", view["source"]);
        let xy = [tip["projection_px"][0].as_f64().unwrap(), tip["projection_px"][1].as_f64().unwrap()];
        let [sx, sy] = screen_from_image(&view["fit"], xy);
        assert!(screen.near(sx, sy, STALE_RING_PX, &[TIP_STALE_COLOUR], 20), "{}: no stale tip drawn", view["source"]);
        assert!(!screen.near(sx, sy, 3, &[TIP_COLOUR], 40), "{}: a stale tip drawn live", view["source"]);
    }
    // The recording keeps the alarms.
    let replay = common::csnav(&["replay", record.to_str().unwrap(), "--text", "--speed", "0"]);
    let text = common::text(&replay.stdout);
    assert!(replay.status.success(), "{}", common::text(&replay.stderr));
    assert!(text.contains("Tracker link LOST"), "the recording has no tracker alarm:\n{text}");
    assert!(text.contains("Device link LOST"), "the recording has no device alarm:\n{text}");
}

#[test]
fn a_run_received_from_the_angiography_system_appears_in_the_live_app() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker_addr, device_addr, inbox) = (free_addr(), free_addr(), free_addr());
    let _device = device_model(&device_addr);
    let _tracker = tracker(&tracker_addr);
    let out = dir.path().join("inbox");
    let record = dir.path().join("inbox.rrd");
    let mut app = live(&tracker_addr, &device_addr, &out, "15", &record)
        .args(["--inbox", &inbox])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(app.stderr.take().unwrap());
    let (mut log, mut line) = (String::new(), String::new());
    while !log.contains("Tracker link Connected") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "csnav live ended early:\n{log}");
        log.push_str(&line);
    }
    // The storage SCP segments what arrives and announces it to the app's inbox.
    let store = dir.path().join("store");
    let port = common::free_port().to_string();
    let mut listen = Peer(
        common::csnav_command()
            .args(["listen", "--port", &port, "--bind", "127.0.0.1", "--segment", "--announce", &inbox, "--store"])
            .arg(&store)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut listen_out = BufReader::new(listen.0.stdout.take().unwrap());
    let mut first = String::new();
    listen_out.read_line(&mut first).unwrap();
    assert!(first.starts_with("listening on"), "{first}");
    std::thread::spawn(move || std::io::copy(&mut listen_out, &mut std::io::sink()));
    // A new run: the bundled RAO run with new UIDs, as the angiography system would send it.
    let run = dir.path().join("new-run.dcm");
    std::fs::copy(Path::new(&common::case()).join("rao30.dcm"), &run).unwrap();
    common::dicom::run(std::process::Command::new("dcmodify").args(["-nb", "-gse", "-gin"]).arg(&run));
    common::dicom::run(
        std::process::Command::new("storescu").args(["-xs", "-aec", "CSNAV", "127.0.0.1", &port]).arg(&run),
    );
    while !log.contains("inbox: run 3") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "csnav live ended before the announced run came in:\n{log}");
        log.push_str(&line);
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    log.push_str(&rest);
    assert!(app.wait().unwrap().success(), "csnav live failed:\n{log}");
    drop(listen);
    // On screen: the first run and, in the second slot, the new one with the tip projected.
    let s = summary(&out);
    let views = s["views"].as_array().unwrap();
    assert_eq!(views.len(), 2, "{views:?}");
    assert_eq!(views[0]["run"], 1);
    assert_eq!(views[1]["run"], 3, "the new run takes the second view");
    let stored_name = format!("{}.dcm", common::dicom::sop_instance_uid(&run));
    assert_eq!(views[1]["source"], stored_name.as_str(), "the run as stored by the listener");
    assert!(views[1]["tips"][0]["projection_px"].is_array(), "tips are projected into the new run: {}", views[1]);
    // The recording has it for replay.
    let info = common::csnav(&["record-info", record.to_str().unwrap()]);
    let text = common::text(&info.stdout);
    assert!(info.status.success(), "{}", common::text(&info.stderr));
    let run3 = text.lines().find(|l| l.starts_with("run 3")).unwrap_or_else(|| panic!("no run 3 recorded:\n{text}"));
    assert!(run3.contains("24 frames"), "the new run is recorded with its frames: {run3}");
}
