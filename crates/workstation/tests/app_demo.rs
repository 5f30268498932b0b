//! The app rendered offscreen: `csnav demo --headless` on the bundled case (software Vulkan
//! from Mesa's lavapipe where there is no GPU; `scripts/test.sh` installs it). The screenshots
//! must not be blank, the live tip marker's colour must be where the navigation pipeline
//! projected the tip, and the tree overlay must cover the ground-truth centerline. The demo's
//! recording then replays in the app, offscreen and in a window under Xvfb (`--screenshot`),
//! with its tips where they were recorded, drawn stale.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use common::shot::{STALE_RING_PX, Shot, TIP_COLOUR, TIP_STALE_COLOUR, label_colours, screen_from_image};

use std::path::Path;

use serde_json::Value;

#[test]
fn demo_renders_offscreen_with_the_tip_and_tree_where_they_belong() {
    let out = tempfile::tempdir().unwrap();
    let result = common::csnav_command()
        .args(["demo", "--headless", "--case", &common::case(), "--out"])
        .arg(out.path())
        .args(["--speed-mm-s", "60", "--size", "1600x900"])
        .output()
        .unwrap();
    let stderr = common::text(&result.stderr);
    assert!(result.status.success(), "csnav demo failed:\n{stderr}\n{}", common::text(&result.stdout));
    let stdout = common::text(&result.stdout);
    println!("{stdout}");
    for name in [
        "screen.png",
        "view3d.png",
        "sites.png",
        "device.png",
        "view-lao30.png",
        "view-rao30.png",
        "summary.json",
        "session.rrd",
    ] {
        assert!(out.path().join(name).is_file(), "{name} missing; stderr:\n{stderr}");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["ranking"].as_array().unwrap().len(), 3, "three sites ranked: {summary}");
    for name in ["screen.png", "view3d.png", "view-lao30.png", "view-rao30.png", "sites.png"] {
        let shot = Shot::read(&out.path().join(name));
        let colours = shot.distinct_colours();
        println!("{name}: {}x{}, {colours} distinct colours", shot.width, shot.height);
        assert!(colours > 12, "{name} looks blank ({colours} colours)");
    }

    let screen = Shot::read(&out.path().join("screen.png"));
    let labels = label_colours();
    let views = summary["views"].as_array().unwrap();
    assert_eq!(views.len(), 2);
    for view in views {
        let source = view["source"].as_str().unwrap();
        // The tip marker where the navigation pipeline projected the tip.
        let tip = &view["tips"][0];
        assert_eq!(tip["stale"], false, "{source}: the parked tip is streaming, not stale");
        let xy = [tip["projection_px"][0].as_f64().unwrap(), tip["projection_px"][1].as_f64().unwrap()];
        let [sx, sy] = screen_from_image(&view["fit"], xy);
        assert!(screen.near(sx, sy, 3, &[TIP_COLOUR], 40), "{source}: no tip colour within 3 px of ({sx:.1}, {sy:.1})");

        // The tree overlay over the ground-truth centerline of the frame shown.
        let stem = source.trim_end_matches(".dcm");
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(&common::case()).join(format!("{stem}.truth.json"))).unwrap(),
        )
        .unwrap();
        let frame = view["shown_frame"].as_u64().unwrap() as usize;
        let (mut covered, mut total) = (0usize, 0usize);
        for branch in truth["frames"][frame]["branches"].as_array().unwrap() {
            let points = branch["centerline_px"].as_array().unwrap();
            let opacity = branch["opacity"].as_array().unwrap();
            for (p, o) in points.iter().zip(opacity) {
                if o.as_f64().unwrap() < 0.3 {
                    continue;
                }
                let [sx, sy] = screen_from_image(&view["fit"], [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()]);
                total += 1;
                // 2 image px of centreline tolerance at this scale, plus the line's half width.
                let radius = (2.0 * view["fit"]["scale"].as_f64().unwrap()).ceil() as i64 + 1;
                if screen.near(sx, sy, radius, &labels, 30) {
                    covered += 1;
                }
            }
        }
        let fraction = covered as f64 / total.max(1) as f64;
        println!(
            "{source}: overlay covers {covered}/{total} ground-truth centerline points ({:.0} %)",
            100.0 * fraction
        );
        assert!(total > 50, "{source}: too few truth points ({total})");
        assert!(
            fraction >= 0.75,
            "{source}: the tree overlay covers only {:.0} % of the ground-truth centerline",
            100.0 * fraction
        );
    }

    replay_offscreen(out.path(), &summary);
    replay_in_a_window(out.path());
}

/// The session's recording replayed in the app offscreen: the same runs and ranking, links
/// shown as recorded, and the tip where it was last recorded, drawn stale.
fn replay_offscreen(out: &Path, summary: &Value) {
    let replayed = tempfile::tempdir().unwrap();
    let result = common::csnav_command()
        .arg("replay")
        .arg(out.join("session.rrd"))
        .args(["--headless", "--speed", "0", "--size", "1600x900", "--out"])
        .arg(replayed.path())
        .output()
        .unwrap();
    let stderr = common::text(&result.stderr);
    assert!(result.status.success(), "csnav replay --headless failed:\n{stderr}");
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(replayed.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(again["ranking"], summary["ranking"], "the replay shows the recorded ranking");
    assert_eq!(again["links"], serde_json::json!(["Tracker: recorded", "Device: recorded"]));
    assert!(again["egm_samples"].as_u64().unwrap() > 100, "the EGM strip is replayed: {}", again["egm_samples"]);
    let screen = Shot::read(&replayed.path().join("screen.png"));
    let views = again["views"].as_array().unwrap();
    assert_eq!(views.len(), 2);
    for (view, live) in views.iter().zip(summary["views"].as_array().unwrap()) {
        let source = view["source"].as_str().unwrap();
        assert_eq!(view["source"], live["source"]);
        let tip = &view["tips"][0];
        assert_eq!(tip["stale"], true, "{source}: after the recording's end the tip is stale");
        let xy = [tip["projection_px"][0].as_f64().unwrap(), tip["projection_px"][1].as_f64().unwrap()];
        let [sx, sy] = screen_from_image(&view["fit"], xy);
        assert!(
            screen.near(sx, sy, STALE_RING_PX, &[TIP_STALE_COLOUR], 20),
            "{source}: no stale-tip colour within 3 px of ({sx:.1}, {sy:.1}) in the replay"
        );
        assert!(!screen.near(sx, sy, 3, &[TIP_COLOUR], 40), "{source}: a replayed tip is drawn live");
    }
}

/// The same replay in a real window (X11 under Xvfb, swapchain and all), captured from the
/// window: the same screen.
fn replay_in_a_window(out: &Path) {
    let display = Xvfb::start();
    let windowed = tempfile::tempdir().unwrap();
    let result = common::csnav_command()
        .env("DISPLAY", &display.name)
        .arg("replay")
        .arg(out.join("session.rrd"))
        .args(["--screenshot", "--speed", "0", "--size", "1600x900", "--out"])
        .arg(windowed.path())
        .output()
        .unwrap();
    let stderr = common::text(&result.stderr);
    assert!(result.status.success(), "csnav replay in a window failed:\n{stderr}");
    let in_window: Value =
        serde_json::from_str(&std::fs::read_to_string(windowed.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(in_window["size_px"], serde_json::json!([1600, 900]), "the window's own size");
    let screen = Shot::read(&windowed.path().join("screen.png"));
    assert!(screen.distinct_colours() > 12, "the window capture looks blank");
    for view in in_window["views"].as_array().unwrap() {
        let tip = &view["tips"][0];
        let xy = [tip["projection_px"][0].as_f64().unwrap(), tip["projection_px"][1].as_f64().unwrap()];
        let [sx, sy] = screen_from_image(&view["fit"], xy);
        assert!(
            screen.near(sx, sy, STALE_RING_PX, &[TIP_STALE_COLOUR], 20),
            "{}: no stale tip within 3 px of ({sx:.1}, {sy:.1}) in the window",
            view["source"]
        );
    }
}

/// A virtual X server for the windowed test (`xvfb`, installed by scripts/test.sh).
struct Xvfb {
    child: std::process::Child,
    name: String,
}

impl Xvfb {
    fn start() -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb is needed for the windowed rendering test (scripts/test.sh installs xvfb)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let number: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb did not say its display: {line:?}"));
        Self { child, name: format!(":{number}") }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_rejects_a_bad_size_and_a_missing_case() {
    let bad = common::csnav(&["demo", "--headless", "--size", "10x10"]);
    assert!(!bad.status.success());
    assert!(common::text(&bad.stderr).contains("320-7680"), "{}", common::text(&bad.stderr));
    let out = tempfile::tempdir().unwrap();
    let missing = common::csnav_command()
        .args(["demo", "--headless", "--no-record", "--case", "/nonexistent/case", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = common::text(&missing.stderr);
    assert!(stderr.contains("/nonexistent/case"), "the error should name the case: {stderr}");
}
