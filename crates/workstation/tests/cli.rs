//! The `csnav` binary end to end: `test-pattern` writes a run, `info` summarises it in text
//! and JSON, bad files give a non-zero exit and a message naming the problem.

#![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::path::Path;
use std::process::{Command, Output};

fn csnav(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csnav")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pattern(dir: &Path, extra: &[&str]) -> String {
    let path = dir.join("run.dcm").display().to_string();
    let mut args = vec!["test-pattern", "--out", &path, "--rows", "64", "--columns", "80", "--frames", "13"];
    args.extend_from_slice(extra);
    let out = csnav(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    path
}

#[test]
fn help_says_what_it_is_and_that_it_is_research_software() {
    let out = csnav(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("left-ventricular lead"), "{help}");
    assert!(help.contains("not a cleared medical device"), "{help}");
    assert!(help.contains("info"), "{help}");
    let info_help = text(&csnav(&["info", "--help"]).stdout);
    assert!(info_help.contains("--primary-angle-deg") && info_help.contains("LAO positive"), "{info_help}");
}

#[test]
fn info_summarises_geometry_timing_and_ecg() {
    let dir = tempfile::tempdir().unwrap();
    let path = pattern(dir.path(), &[]);
    let out = csnav(&["info", &path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    for expected in [
        "Explicit VR Little Endian (1.2.840.10008.1.2.1) [lossless]",
        "X-Ray Angiographic Image Storage",
        "80 x 64 px, 13 frames, 12 bits stored in 16, MONOCHROME2",
        "LAO 30.0 (from file)",
        "SID 1100.0 mm (from file), SOD 780.0 mm (from file)",
        "15.00 frames/s",
        "R waves at frames 4 (1-based)",
        "defaulted         nothing",
    ] {
        assert!(summary.contains(expected), "missing {expected:?} in\n{summary}");
    }
}

#[test]
fn info_json_is_machine_readable_and_reports_manual_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = pattern(dir.path(), &["--monochrome1"]);
    let out = csnav(&["info", "--json", "--secondary-angle-deg", "-20", "--imager-pixel-spacing-mm", "0.15", &path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json[0];
    assert_eq!(report["frames"], 13);
    assert_eq!(report["transfer_syntax"]["uid"], "1.2.840.10008.1.2.1");
    assert_eq!(report["photometric_interpretation_in_file"], "MONOCHROME1");
    assert_eq!(report["geometry"]["secondary_angle_deg"]["value"], -20.0);
    assert_eq!(report["geometry"]["secondary_angle_deg"]["source"]["kind"], "manual");
    assert_eq!(report["geometry"]["imager_pixel_spacing_mm"]["value"][1], 0.15);
    assert_eq!(report["acquisition"]["timing"]["r_wave_frame_indices"], serde_json::json!([3]));
    assert_eq!(report["frame_times_ms"].as_array().unwrap().len(), 13);
    let p = report["image_from_patient"].as_array().unwrap();
    assert_eq!(p.len(), 3);
    // The isocentre projects to the image centre: column (80-1)/2.
    let (u, w) = (p[0][3].as_f64().unwrap(), p[2][3].as_f64().unwrap());
    assert!((u / w - 39.5).abs() < 1e-9, "{u}/{w}");
}

#[test]
fn info_reports_defaults_when_the_file_lacks_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let path = pattern(dir.path(), &["--omit-optional-geometry"]);
    let summary = text(&csnav(&["info", &path]).stdout);
    assert!(summary.contains("SID 1000.0 mm (DEFAULT, not in file), SOD 750.0 mm (DEFAULT, not in file)"), "{summary}");
    assert!(summary.contains("3.1250 x 3.1250 mm at detector (DEFAULT, not in file)"), "{summary}");
    assert!(
        summary.contains("defaulted         DistanceSourceToDetector, DistanceSourceToPatient, ImagerPixelSpacing"),
        "{summary}"
    );
    // Manual entries win over defaults and say so; configured defaults are used as given.
    let out = csnav(&["info", "--sod-mm", "700", "--default-sid-mm", "1200", &path]);
    let summary = text(&out.stdout);
    assert!(summary.contains("SID 1200.0 mm (DEFAULT, not in file), SOD 700.0 mm (entered by hand)"), "{summary}");
    // An impossible manual entry is reported, not silently used.
    let out = csnav(&["info", "--sod-mm", "2000", &path]);
    assert!(text(&out.stdout).contains("GEOMETRY INVALID"), "{}", text(&out.stdout));
}

#[test]
fn bad_files_fail_with_a_named_problem_and_others_still_print() {
    let dir = tempfile::tempdir().unwrap();
    let good = pattern(dir.path(), &[]);
    let empty = dir.path().join("empty.dcm");
    std::fs::write(&empty, b"").unwrap();
    let empty = empty.display().to_string();
    let out = csnav(&["info", &good, &empty, dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("empty.dcm is empty (0 bytes)"), "{stderr}");
    assert!(stderr.contains("is a directory, not a DICOM file"), "{stderr}");
    assert!(text(&out.stdout).contains("13 frames"), "the good file is still summarised");
    let out = csnav(&["info", "--json", &empty]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json[0]["error"].as_str().unwrap().contains("empty"));
}

#[test]
fn simulate_writes_runs_with_truth_that_info_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let out = csnav(&[
        "simulate",
        "--seed",
        "4",
        "--view",
        "AP",
        "--view",
        "RAO30CAU10",
        "--size",
        "96",
        "--frames",
        "3",
        "--out",
        &out_dir,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in ["ap.dcm", "ap.truth.json", "ap.mask.png", "rao30cau10.dcm", "patient.json"] {
        assert!(dir.path().join(name).exists(), "{name} missing");
    }
    let info = text(&csnav(&["info", &dir.path().join("rao30cau10.dcm").display().to_string()]).stdout);
    assert!(info.contains("RAO 30.0 (from file), CAU 10.0 (from file)"), "{info}");
    assert!(info.contains("96 x 96 px, 3 frames, 12 bits stored"), "{info}");
    let bad = csnav(&["simulate", "--view", "LAX30", "--out", &out_dir]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("cannot read view \"LAX30\""), "{}", text(&bad.stderr));
}

#[test]
fn segment_writes_the_tree_json_and_pictures_of_the_bundled_case() {
    let dir = tempfile::tempdir().unwrap();
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/cases/synthetic-seed7/lao30.dcm");
    let out_dir = dir.path().join("seg");
    let out = csnav(&["segment", case, "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("research software") && stdout.contains("best-opacified"), "{stdout}");
    for name in ["tree.json", "mask.png", "vesselness.png", "overlay.png"] {
        assert!(out_dir.join(name).is_file(), "{name} missing");
    }
    let tree: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("tree.json")).unwrap()).unwrap();
    assert_eq!(tree["schema"], "csnav.tree/1");
    assert_eq!(tree["source"]["rows"], 512);
    assert!(tree["source"]["sop_instance_uid"].is_string());
    assert!(tree["pixel_spacing_mm"].as_f64().unwrap() > 0.2);
    let nodes = tree["nodes"].as_array().unwrap();
    let branches = tree["branches"].as_array().unwrap();
    assert!(branches.len() >= 3, "{stdout}");
    assert_eq!(nodes.iter().filter(|n| n["kind"] == "root").count(), 1);
    let labels: Vec<&str> = branches.iter().map(|b| b["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"CS"), "{labels:?}");
    for b in branches {
        let points = b["points"].as_array().unwrap();
        assert_eq!(points.len(), b["radius_px"].as_array().unwrap().len());
        // Points run from the parent end: the first point is the `from` node.
        let from = nodes.iter().find(|n| n["id"] == b["from"]).unwrap();
        assert_eq!(points[0], from["xy"]);
        assert!(b["length_mm"].as_f64().unwrap() > 0.0);
        assert_eq!(b["parent"].is_null(), b["takeoff_angle_deg"].is_null());
    }
    // A frame chosen by hand that is out of range is an error naming the range.
    let out = csnav(&["segment", case, "--frame", "99", "--out", out_dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("frame 99 is out of range"), "{}", text(&out.stderr));
}

#[test]
fn segment_can_average_the_contrast_plateau_and_says_with_which_frames() {
    let dir = tempfile::tempdir().unwrap();
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/cases/synthetic-seed7/lao30.dcm");
    let out_dir = dir.path().join("seg");
    let out = csnav(&["segment", case, "--average-plateau", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // The bundled run's plateau holds neighbours of the best frame, and they line up.
    let line = stdout.lines().find(|l| l.starts_with("averaged")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("for the twig detector with frames") && line.contains("shift"), "{line}");
    let tree: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("tree.json")).unwrap()).unwrap();
    assert!(tree["branches"].as_array().unwrap().len() >= 3, "{stdout}");
    // Following the whole cine keeps each frame alone: asked to average, it says so.
    let out = csnav(&["segment", case, "--frame", "all", "--average-plateau", "--out", out_dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not to --frame all"), "{}", text(&out.stderr));
}

#[test]
fn segment_all_frames_follows_the_whole_cine() {
    let dir = tempfile::tempdir().unwrap();
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/cases/synthetic-seed7/rao30.dcm");
    let out_dir = dir.path().join("cine");
    let out = csnav(&["segment", case, "--frame", "all", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("cine.json")).unwrap()).unwrap();
    assert_eq!(doc["schema"], "csnav.cine/1");
    let frames = doc["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 24, "one entry per frame of the run");
    let best = doc["best_frame"].as_u64().unwrap() as usize;
    assert!(frames[best]["branches"].as_u64().unwrap() >= 3, "{frames:?}");
    assert!(frames[best]["empty_reason"].is_null());
    // Before the contrast arrives there is no tree, and the reason says so.
    let baseline = doc["baseline_frame"].as_u64().unwrap() as usize;
    assert!(frames[baseline]["empty_reason"].as_str().unwrap().contains("holds no contrast"), "{frames:?}");
    for f in frames {
        let tree = out_dir.join(f["tree"].as_str().unwrap());
        let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&tree).unwrap()).unwrap();
        assert_eq!(t["source"]["frame"], f["frame"]);
        assert!(tree.with_file_name("overlay.png").is_file() && tree.with_file_name("mask.png").is_file());
    }
}

#[test]
fn segment_refuses_an_rgb_image_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = pattern(dir.path(), &[]);
    let status = Command::new("dcmodify")
        .args(["-nb", "-m", "(0028,0002)=3", "-m", "(0028,0004)=RGB", &path])
        .status()
        .expect("dcmodify (dcmtk, installed by scripts/install-peers.sh)");
    assert!(status.success());
    let out = csnav(&["segment", &path, "--out", dir.path().join("seg").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Samples per Pixel") && err.contains("monochrome"), "{err}");
}
