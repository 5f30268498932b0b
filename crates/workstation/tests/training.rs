//! `csnav train` end to end: a scripted trainee on a bundled scenario, its tips streamed over
//! OpenIGTLink through the navigation pipeline and recorded, scored, debriefed; the script it
//! played replays to the same outcome; parking at the apex scores low with the reason; bad
//! scenario files are refused with the line and the field; `csnav scenarios` validates the
//! library.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};

use common::{csnav, text};
use serde_json::Value;

fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/scenarios").join(name).display().to_string()
}

/// `csnav train SCENARIO ARGS... --out OUT` for a bundled scenario.
fn train(scenario_file: &str, args: &[&str], out: &Path) -> std::process::Output {
    train_file(&scenario(scenario_file), args, out)
}

/// `csnav train FILE ARGS... --out OUT`.
fn train_file(file: &str, args: &[&str], out: &Path) -> std::process::Output {
    let mut all = vec!["train".to_owned(), file.to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(["--out".to_owned(), out.display().to_string()]);
    csnav(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

fn outcome(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("outcome.json")).unwrap()).unwrap()
}

#[test]
fn an_optimal_trainee_is_scored_debriefed_recorded_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let out = train("03-tortuous-posterolateral.toml", &["--trainee", "optimal", "--no-app"], &first);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = outcome(&first);
    let score = o["outcome"]["score"]["total"].as_f64().unwrap();
    assert!(score >= 95.0, "{o:#}");
    assert_eq!(o["outcome"]["site"]["vein"], "PosterolateralVein");
    assert_eq!(o["outcome"]["site"]["branch"], o["outcome"]["best"]["branch"]);
    let script: Vec<Value> = serde_json::from_slice(&std::fs::read(first.join("script.json")).unwrap()).unwrap();
    assert!(script.len() > 50 && script.iter().any(|s| s["action"] == "rotate"), "{} steps", script.len());
    // Both tips, every step, came through the OpenIGTLink link and the navigation pipeline.
    let samples = o["tip_samples_through_pipeline"].as_u64().unwrap();
    assert_eq!(samples, 2 * script.len() as u64, "{o:#}");

    // The recording: tips per tool, the venogram runs and the fluoroscopy images, the notes.
    let info = csnav(&["record-info", first.join("session.rrd").to_str().unwrap(), "--json"]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["command"], "train");
    assert_eq!(info["tip_samples_per_tool"]["wire-tip"].as_u64().unwrap(), samples / 2);
    assert_eq!(info["tip_samples_per_tool"]["lead-tip"].as_u64().unwrap(), samples / 2);
    assert_eq!(info["frames_per_run"]["1"], 20);
    assert!(info["frames_per_run"].as_object().unwrap().len() >= 3, "no fluoroscopy images: {info:#}");
    assert!(info["entities"]["notes/training"].as_u64().unwrap() >= 5, "{info:#}");
    assert_eq!(info["entities"]["device/ranking"], 1);

    // The debrief: score, comparison, reasons and the four plots.
    let html = std::fs::read_to_string(first.join("debrief.html")).unwrap();
    for id in [
        "id=\"total\"",
        "id=\"comparison\"",
        "id=\"plot-map\"",
        "id=\"plot-score\"",
        "id=\"plot-along\"",
        "id=\"plot-timeline\"",
        "id=\"mark-you\"",
        "id=\"mark-best\"",
        "not a cleared medical device",
    ] {
        assert!(html.contains(id), "debrief lacks {id}");
    }

    // The script replays to the same outcome.
    let second = dir.path().join("second");
    let script = first.join("script.json");
    let out = train(
        "03-tortuous-posterolateral.toml",
        &["--script", script.to_str().unwrap(), "--no-app", "--no-record"],
        &second,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(outcome(&second)["outcome"], o["outcome"]);
}

#[test]
fn the_app_shows_the_case_the_tips_and_the_fluoroscopy_and_ends_with_the_score() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(
        "07-small-calibre.toml",
        &["--trainee", "optimal", "--headless", "--size", "1280x720", "--no-record"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert!(summary["step"].as_str().unwrap().contains("case finished: 100 of 100 points"), "{summary:#}");
    let o = outcome(dir.path());
    assert_eq!(summary["tip_samples"], o["tip_samples_through_pipeline"]);
    assert_eq!(summary["ranking"][0]["site"].as_str().unwrap(), format!("best: {}", "PLV 36% (Quartet 4.0 Fr)"));
    assert_eq!(summary["links"][0], "Tracker: connected");
    // The newest fluoroscopy image holds the last view, with both tips projected into it.
    let views = summary["views"].as_array().unwrap();
    let fluoro =
        views.iter().find(|v| v["source"].as_str().unwrap().starts_with("fluoro-")).expect("a fluoroscopy view");
    let tools: Vec<&str> = fluoro["tips"].as_array().unwrap().iter().map(|t| t["tool"].as_str().unwrap()).collect();
    assert!(tools.contains(&"lead-tip") && tools.contains(&"wire-tip"), "{fluoro:#}");
    let shot = common::shot::Shot::read(&dir.path().join(fluoro["screenshot"].as_str().unwrap()));
    let mean = shot.rgb.iter().map(|v| f64::from(*v)).sum::<f64>() / shot.rgb.len() as f64;
    let spread = (shot.rgb.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / shot.rgb.len() as f64).sqrt();
    assert!(spread > 10.0, "the fluoroscopy view is blank (spread {spread:.1})");
}

#[test]
fn parking_at_the_apex_scores_low_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = train("06-apical-trap.toml", &["--trainee", "apex", "--no-app", "--no-record"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("- apical position"), "{stdout}");
    let o = outcome(dir.path());
    assert!(o["outcome"]["score"]["total"].as_f64().unwrap() < 75.0, "{o:#}");
    assert_eq!(o["outcome"]["site"]["apical"], true);
    let html = std::fs::read_to_string(dir.path().join("debrief.html")).unwrap();
    assert!(html.contains("apical position"), "the debrief gives the reason");
}

#[test]
fn bad_scenarios_and_scripts_are_refused_with_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(scenario("01-easy-lateral.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    // `csnav train` on a changed copy of the scenario: whether it failed, and its stderr.
    let refused = |text: String| {
        std::fs::write(&bad, text).unwrap();
        let args = ["--no-app", "--trainee", "optimal"];
        let out = train_file(bad.to_str().unwrap(), &args, dir.path());
        (!out.status.success(), common::text(&out.stderr))
    };
    let (failed, stderr) = refused(good.replace("qrs_duration_ms = 165", "qrs_duration_ms = 90"));
    let line = good.lines().position(|l| l.starts_with("qrs_duration_ms")).unwrap() + 1;
    assert!(
        failed
            && stderr
                .contains(&format!("bad.toml:{line}:19: field `physiology.qrs_duration_ms`: 90 is outside 120-220")),
        "{stderr}"
    );
    let (failed, stderr) = refused(good.replace("seed = 26", "seed = -1"));
    assert!(failed && stderr.contains("bad.toml:10:8: field `patient.seed`: invalid value"), "{stderr}");

    let script = dir.path().join("script.json");
    std::fs::write(&script, r#"[{"t_s": 1.0, "action": "advance_wire", "mm": 5}, {"t_s": 0.5, "action": "inject"}]"#)
        .unwrap();
    let out = train("01-easy-lateral.toml", &["--script", script.to_str().unwrap(), "--no-app"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("the script's times must not decrease"), "{}", text(&out.stderr));

    // The library validates; a folder with the bad file does not.
    let out = csnav(&[
        "scenarios",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/scenarios").to_str().unwrap(),
        "--solve",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("8 scenarios, 0 with errors"), "{}", text(&out.stdout));
    std::fs::write(&bad, good.replace("model = \"attain_performa\"", "model = \"attain\"")).unwrap();
    let out = csnav(&["scenarios", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown variant `attain`"), "{}", text(&out.stderr));
}
