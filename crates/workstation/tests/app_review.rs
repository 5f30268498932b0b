//! `csnav review` offscreen with scripted edits on the bundled case: a side branch is removed,
//! traced again along its vessel from where it left its parent to its end, given its label
//! back, and a target is put on it; the saved plan must hold the edits, a branch that follows
//! the removed centerline, and the target; the screenshots show the edited tree.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use std::path::Path;

use common::shot::{Shot, label_colours, screen_from_image};
use serde_json::{Value, json};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn points(branch: &Value) -> Vec<[f64; 2]> {
    branch["points"].as_array().unwrap().iter().map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()]).collect()
}

fn distance_to(polyline: &[[f64; 2]], p: [f64; 2]) -> f64 {
    polyline.iter().map(|q| (q[0] - p[0]).hypot(q[1] - p[1])).fold(f64::INFINITY, f64::min)
}

#[test]
fn review_edits_a_branch_and_saves_a_plan_with_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let run_file = Path::new(&common::case()).join("lao30.dcm");
    // The tree review starts from, as `csnav segment` writes it (the same segmentation).
    let seg = common::csnav_command()
        .arg("segment")
        .arg(&run_file)
        .arg("--out")
        .arg(dir.path().join("seg"))
        .output()
        .unwrap();
    assert!(seg.status.success(), "{}", common::text(&seg.stderr));
    let tree = read_json(&dir.path().join("seg/tree.json"));
    // The longest named side branch that has no branches of its own.
    let branches = tree["branches"].as_array().unwrap();
    let leaf = |b: &&Value| !branches.iter().any(|c| c["parent"] == b["id"]);
    let side = branches
        .iter()
        .filter(|b| {
            !b["parent"].is_null() && leaf(b) && !["CS", "GCV", "branch"].contains(&b["label"].as_str().unwrap())
        })
        .max_by(|a, b| points(a).len().cmp(&points(b).len()))
        .expect("a named side branch");
    let label = side["label"].as_str().unwrap().to_owned();
    let centerline = points(side);
    assert!(centerline.len() > 30, "{label} is too short to test with");
    let (start, end, mid) = (centerline[0], centerline[centerline.len() - 1], centerline[centerline.len() / 2]);
    println!("editing the {label}: {} points from {start:?} to {end:?}", centerline.len());

    let actions = json!([
        {"action": "remove", "run": 1, "xy": mid},
        {"action": "add_branch", "run": 1, "from_xy": start, "to_xy": end},
        {"action": "rename", "run": 1, "xy": mid, "label": label},
        {"action": "target", "run": 1, "xy": mid, "name": "lateral"},
        {"action": "save"}
    ]);
    let actions_file = dir.path().join("actions.json");
    std::fs::write(&actions_file, actions.to_string()).unwrap();
    let out = dir.path().join("review");
    let result = common::csnav_command()
        .args(["review", "--headless", "--case", &common::case(), "--size", "1600x900", "--actions"])
        .arg(&actions_file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = common::text(&result.stdout);
    assert!(result.status.success(), "csnav review failed:\n{}\n{stdout}", common::text(&result.stderr));
    println!("{stdout}");
    assert!(!stdout.contains("not done"), "every action was made:\n{stdout}");

    let plan = read_json(&out.join("plan.json"));
    assert_eq!(plan["schema"], "csnav.plan/1");
    let run = &plan["runs"][0];
    let edits: Vec<&str> = run["edits"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert!(edits[0].contains("removed") && edits[1].contains("added") && edits[2].contains("renamed"), "{edits:?}");
    // The traced branch (the one renamed at the middle of the removed one) follows the
    // removed centerline.
    let traced = run["tree"]["branches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["label"] == label.as_str())
        .min_by(|a, b| distance_to(&points(a), mid).total_cmp(&distance_to(&points(b), mid)))
        .expect("the renamed branch");
    let traced_points = points(traced);
    let close = centerline.iter().filter(|p| distance_to(&traced_points, **p) <= 3.0).count();
    let fraction = close as f64 / centerline.len() as f64;
    println!("the traced {label} is within 3 px of {:.0} % of the removed centerline", 100.0 * fraction);
    assert!(fraction >= 0.9, "the traced branch strays from the vessel ({:.0} % within 3 px)", 100.0 * fraction);
    // The target on it, near the middle.
    let target = &plan["targets"][0];
    assert_eq!(target["name"], "lateral");
    assert_eq!(target["label"], label.as_str());
    let f = target["fraction"].as_f64().unwrap();
    assert!((0.3..=0.7).contains(&f), "target fraction {f}");

    // The screenshots show the edited tree: the label's colour along the traced branch.
    let summary = read_json(&out.join("summary.json"));
    let view = &summary["views"][0];
    assert_eq!(view["source"], "lao30.dcm");
    let screen = Shot::read(&out.join("screen.png"));
    let colour = label_colours()[venogram::VeinLabel::ALL.iter().position(|l| l.abbreviation() == label).unwrap()];
    let shown = traced_points
        .iter()
        .filter(|p| {
            let [sx, sy] = screen_from_image(&view["fit"], **p);
            screen.near(sx, sy, 2, &[colour], 30)
        })
        .count();
    assert!(shown * 10 >= traced_points.len() * 8, "the edited branch is drawn: {shown}/{}", traced_points.len());
}

#[test]
fn review_refuses_bad_actions_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"action":"explode","run":1}]"#).unwrap();
    let out = common::csnav(&["review", "--headless", "--case", &common::case(), "--actions", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = common::text(&out.stderr);
    assert!(stderr.contains("not a list of review actions"), "{stderr}");
}
