//! Two-view reconstruction against the simulator's ground truth: synthetic patients imaged in
//! LAO 30-40 and RAO 30 (some with cranial/caudal tilt, 512 and 1024; exact geometry), each view's true 2D tree of the same frame in, the 3D
//! tree out, compared with the patient's true 3D centerlines at that instant of the heartbeat;
//! then with segmentation-like noise (0.5 px) and the distal 15 % of the side branches missing in
//! the second view.
//! Bars (issue 9): centerline RMS under 1.0 mm, bifurcations under 1.5 mm, reprojection under
//! 1 px. Each figure is printed per case.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use nalgebra::{Point3, Vector3};
use simulator::SyntheticPatient;
use simulator::render::{FrameTruth, RenderSettings, render};
use simulator::rng::SimRng;
use venogram::CArmProjection;
use venogram::VeinLabel;
use venogram::reconstruct::refine::refine_second_view;
use venogram::reconstruct::{ReconstructParams, SeenIn, View, distance_to_polyline_mm, reconstruct};
use venogram::segment::BranchTree;

/// A view's true 2D tree of one frame, as segmentation would give it: each point but the
/// takeoff displaced by `noise_px` (Gaussian, per axis) and the distal `cut` share of every side
/// branch missing.
fn tree_of(truth: &FrameTruth, noise_px: f64, cut: f64, rng: &mut SimRng) -> BranchTree {
    let mut tree = truth.tree();
    for b in &mut tree.branches {
        if b.parent.is_some() {
            let keep = ((b.points.len() as f64 * (1.0 - cut)).ceil() as usize).max(2);
            b.points.truncate(keep);
            b.radius_px.truncate(keep);
        }
        for p in b.points.iter_mut().skip(1) {
            p[0] += rng.normal(0.0, noise_px);
            p[1] += rng.normal(0.0, noise_px);
        }
    }
    tree
}

/// A true branch's centerline at `t_ms` into the heartbeat (patient LPS, mm).
fn centerline_at(patient: &SyntheticPatient, truth: &simulator::venous_tree::Branch, t_ms: f64) -> Vec<Vector3<f64>> {
    truth.centerline_in_patient.iter().map(|p| patient.motion.displace(&patient.lv, p, t_ms).coords).collect()
}

#[test]
fn exact_geometry_meets_the_accuracy_bars_on_synthetic_patients() {
    let (mut worst_rms, mut worst_bif, mut worst_reproj) = (0.0f64, 0.0f64, 0.0f64);
    for (seed, views, size, noise_px, cut) in [
        (3u64, ["LAO30", "RAO30"], 512u32, 0.0, 0.0),
        (7, ["LAO30", "RAO30"], 512, 0.0, 0.0),
        (11, ["LAO30", "RAO30"], 512, 0.0, 0.0),
        (19, ["LAO30", "RAO30"], 512, 0.0, 0.0),
        (7, ["LAO40", "RAO30"], 1024, 0.0, 0.0),
        (13, ["LAO35CRA10", "RAO30CAU10"], 512, 0.0, 0.0),
        (7, ["LAO30", "RAO30"], 512, 0.5, 0.15),
        (23, ["LAO40", "RAO30"], 1024, 0.5, 0.15),
    ] {
        let mut rng = SimRng::new(seed, 0x7265_636f);
        let patient = SyntheticPatient::generate(seed);
        let runs: Vec<_> = views
            .iter()
            .map(|v| render(&patient, &RenderSettings::typical(v.parse().unwrap(), size, 12, 1)).unwrap())
            .collect();
        // The second view misses the distal part of the side branches (`cut`).
        let (ta, tb) =
            (tree_of(&runs[0].truth[0], noise_px, 0.0, &mut rng), tree_of(&runs[1].truth[0], noise_px, cut, &mut rng));
        let t_ms = runs[0].truth[0].time_ms;
        let r = reconstruct(
            View { tree: &ta, projection: &runs[0].projection },
            View { tree: &tb, projection: &runs[1].projection },
            &ReconstructParams::default(),
        );
        assert!(!r.low_confidence, "seed {seed}: {:?}", r.warnings);
        let mut errors = Vec::new();
        let mut bifurcation_errors = Vec::new();
        for truth in &patient.tree.branches {
            let truth_now = centerline_at(&patient, truth, t_ms);
            let got =
                r.branches.iter().find(|b| b.view_ids[0] == Some(truth.id.0)).unwrap_or_else(|| {
                    panic!("seed {seed}: branch {} ({:?}) not reconstructed", truth.id.0, truth.label)
                });
            assert_eq!(got.seen_in, SeenIn::Both, "seed {seed}: {:?} seen in one view only", truth.label);
            assert_eq!(got.view_ids[1], Some(truth.id.0), "seed {seed}: {:?} matched to the wrong branch", truth.label);
            errors.extend(got.points_mm.iter().map(|p| distance_to_polyline_mm(&truth_now, &Vector3::from(*p))));
            for e in got.reprojection_rms_px.iter().flatten() {
                worst_reproj = worst_reproj.max(*e);
            }
            if truth.takeoff.is_some() && truth.label != VeinLabel::CoronarySinus {
                bifurcation_errors.push((Vector3::from(got.points_mm[0]) - truth_now[0]).norm());
            }
        }
        let rms = (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt();
        let bif = bifurcation_errors.iter().copied().fold(0.0, f64::max);
        println!(
            "seed {seed}, {views:?} at {size}, noise {noise_px} px, cut {cut}: {} branches, centerline RMS {rms:.3} mm, worst bifurcation {bif:.3} mm, separation {:.0} deg",
            r.branches.len(),
            r.view_separation_deg
        );
        worst_rms = worst_rms.max(rms);
        worst_bif = worst_bif.max(bif);
    }
    println!(
        "worst: centerline RMS {worst_rms:.3} mm, bifurcation {worst_bif:.3} mm, reprojection {worst_reproj:.3} px"
    );
    assert!(worst_rms < 1.0, "centerline RMS {worst_rms:.3} mm");
    assert!(worst_bif < 1.5, "bifurcation error {worst_bif:.3} mm");
    assert!(worst_reproj < 1.0, "reprojection {worst_reproj:.3} px");
}

#[test]
fn csnav_reconstruct_writes_the_tree_and_tubes_from_the_bundled_runs() {
    let dir = tempfile::tempdir().unwrap();
    let case = std::path::PathBuf::from(common::case());
    let out = common::csnav_command()
        .arg("reconstruct")
        .arg(case.join("lao30.dcm"))
        .arg(case.join("rao30.dcm"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    println!("{}", common::text(&out.stdout));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tree3d.json")).unwrap()).unwrap();
    assert_eq!(doc["schema"], "csnav.tree3d/1");
    assert_eq!(doc["frames_matched_by"], "cardiac phase", "the bundled runs carry R waves");
    assert_eq!(doc["sources"][0]["file"], "lao30.dcm");
    assert!((doc["view_separation_deg"].as_f64().unwrap() - 60.0).abs() < 0.5);
    let obj = std::fs::read_to_string(dir.path().join("tree3d.obj")).unwrap();
    assert!(obj.lines().filter(|l| l.starts_with("v ")).count() > 100);
    // Segmented trees (not ground truth): the coronary-sinus trunk, the largest vein, must be
    // found in both views and lie on the true 3D tree (within 3 mm: the frame is not at the
    // truth's end-diastole).
    let patient: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("patient.json")).unwrap()).unwrap();
    let truth: Vec<Vector3<f64>> = patient["tree"]["branches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["centerline_in_patient"].as_array().unwrap().iter())
        .map(|p| Vector3::new(p[0].as_f64().unwrap(), p[1].as_f64().unwrap(), p[2].as_f64().unwrap()))
        .collect();
    let trunk: Vec<&serde_json::Value> =
        doc["branches"].as_array().unwrap().iter().filter(|b| b["label"] == "CS" && b["seen_in"] == "both").collect();
    assert!(!trunk.is_empty(), "no CS seen in both views");
    for b in trunk {
        let mut d: Vec<f64> = b["points_mm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let q = Vector3::new(p[0].as_f64().unwrap(), p[1].as_f64().unwrap(), p[2].as_f64().unwrap());
                truth.iter().map(|t| (t - q).norm()).fold(f64::INFINITY, f64::min)
            })
            .collect();
        d.sort_by(f64::total_cmp);
        let median = d[d.len() / 2];
        println!("CS piece {}: median {median:.2} mm from the true tree", b["id"]);
        assert!(median < 3.0, "CS piece {} is {median:.2} mm from the true tree", b["id"]);
    }
    let bad = common::csnav(&["reconstruct", "/nonexistent/a.dcm", "/nonexistent/b.dcm", "--out", "/tmp/x"]);
    assert!(!bad.status.success() && common::text(&bad.stderr).contains("/nonexistent/a.dcm"));
}

/// The rendered view's geometry as a DICOM header that is off: angles by (`d_primary`,
/// `d_secondary`) degrees and the C-arm shifted by `shift_mm` (patient LPS).
fn off(settings: &RenderSettings, d_primary: f64, d_secondary: f64, shift_mm: [f64; 3]) -> CArmProjection {
    let ps = settings.pixel_spacing_mm();
    let nominal = CArmProjection::new(
        settings.view.primary_deg + d_primary,
        settings.view.secondary_deg + d_secondary,
        settings.distance_source_to_detector_mm,
        settings.distance_source_to_patient_mm,
        [ps, ps],
        settings.rows,
        settings.columns,
    )
    .unwrap();
    let source = Point3::from(nominal.source_in_patient.coords + Vector3::from(shift_mm));
    CArmProjection::from_pinhole(
        nominal.intrinsics,
        nominal.view_from_patient_rotation,
        source,
        nominal.distance_source_to_detector_mm,
    )
    .unwrap()
}

/// Angles off by up to 2 deg and the C-arm shifted by up to 10 mm across the baseline (the
/// LAO/RAO baseline runs left-right, x): a shift along the baseline moves no epipolar line and
/// two views cannot recover it (docs/reconstruction.md), so the shifts here are in y and z.
#[test]
fn refined_geometry_meets_the_bar_when_the_second_view_s_header_is_off() {
    for (seed, d_primary, d_secondary, shift_mm) in
        [(7u64, 1.8, -1.2, [0.0, 3.0, 8.0]), (19, -1.5, 2.0, [0.0, -6.0, -8.0]), (11, 2.0, 1.0, [0.0, 5.0, 6.0])]
    {
        let patient = SyntheticPatient::generate(seed);
        let settings: Vec<RenderSettings> =
            ["LAO30", "RAO30"].iter().map(|v| RenderSettings::typical(v.parse().unwrap(), 512, 12, 1)).collect();
        let runs: Vec<_> = settings.iter().map(|s| render(&patient, s).unwrap()).collect();
        let mut rng = SimRng::new(seed, 9);
        let (ta, tb) = (tree_of(&runs[0].truth[0], 0.3, 0.0, &mut rng), tree_of(&runs[1].truth[0], 0.3, 0.0, &mut rng));
        let t_ms = runs[0].truth[0].time_ms;
        let nominal = off(&settings[1], d_primary, d_secondary, shift_mm);
        let a = View { tree: &ta, projection: &runs[0].projection };
        let (refined, report) = refine_second_view(a, View { tree: &tb, projection: &nominal }).unwrap();
        let r = reconstruct(a, View { tree: &tb, projection: &refined }, &ReconstructParams::default());
        let mut errors = Vec::new();
        for truth in &patient.tree.branches {
            let truth_now = centerline_at(&patient, truth, t_ms);
            if let Some(got) =
                r.branches.iter().find(|b| b.view_ids[0] == Some(truth.id.0) && b.seen_in == SeenIn::Both)
            {
                errors.extend(got.points_mm.iter().map(|p| distance_to_polyline_mm(&truth_now, &Vector3::from(*p))));
            }
        }
        let rms = (errors.iter().map(|e| e * e).sum::<f64>() / errors.len().max(1) as f64).sqrt();
        println!(
            "seed {seed}: header off by ({d_primary}, {d_secondary}) deg and {shift_mm:?} mm; refinement rotated {:.2} deg, shifted {:?} mm, epipolar RMS {:.1} -> {:.2} px; centerline RMS {rms:.3} mm over {} points",
            report.rotation_deg,
            report.shift_mm.map(|v| (v * 10.0).round() / 10.0),
            report.epipolar_rms_before_px,
            report.epipolar_rms_after_px,
            errors.len()
        );
        assert!(errors.len() > 500, "seed {seed}: too little reconstructed in both views");
        assert!(rms < 2.0, "seed {seed}: centerline RMS {rms:.3} mm after refinement");
        assert!(report.rotation_deg > 0.5, "seed {seed}: the refinement reports the correction");
    }
}

/// A shift of the second C-arm along the baseline (10 mm here, with the angles off and a shift
/// across too) moves no epipolar line, so no two-view method can recover it: the result is the
/// true tree scaled about the first source by the header's baseline over the true one. The
/// refinement must say so (the direction and how far the tree moves per mm), the tree's shape
/// must still meet the bar, and the displacement must be the one reported.
#[test]
fn a_shift_along_the_baseline_is_reported_and_only_scales_the_tree() {
    for (seed, d_primary, d_secondary, along_mm, across_mm) in
        [(7u64, 1.5, -1.0, 10.0, [0.0, 3.0, -5.0]), (19, -2.0, 1.5, -10.0, [0.0, -4.0, 6.0])]
    {
        let patient = SyntheticPatient::generate(seed);
        let settings: Vec<RenderSettings> =
            ["LAO30", "RAO30"].iter().map(|v| RenderSettings::typical(v.parse().unwrap(), 512, 12, 1)).collect();
        let runs: Vec<_> = settings.iter().map(|s| render(&patient, s).unwrap()).collect();
        let first_source = runs[0].projection.source_in_patient.coords;
        let baseline = runs[1].projection.source_in_patient.coords - first_source;
        let along = baseline.normalize();
        let across = Vector3::from(across_mm) - along * along.dot(&Vector3::from(across_mm));
        let shift = along * along_mm + across;
        let mut rng = SimRng::new(seed, 10);
        let (ta, tb) = (tree_of(&runs[0].truth[0], 0.3, 0.0, &mut rng), tree_of(&runs[1].truth[0], 0.3, 0.0, &mut rng));
        let t_ms = runs[0].truth[0].time_ms;
        let nominal = off(&settings[1], d_primary, d_secondary, [shift.x, shift.y, shift.z]);
        let a = View { tree: &ta, projection: &runs[0].projection };
        let (refined, report) = refine_second_view(a, View { tree: &tb, projection: &nominal }).unwrap();
        assert!(Vector3::from(report.unobservable_direction).dot(&along) > 0.995, "seed {seed}: direction reported");
        let r = reconstruct(a, View { tree: &tb, projection: &refined }, &ReconstructParams::default());
        // The tree the two views cannot tell from the truth: scaled about the first source.
        let scale = (baseline.norm() + along_mm) / baseline.norm();
        let (mut absolute, mut shape, mut moved) = (Vec::new(), Vec::new(), Vec::new());
        for truth in &patient.tree.branches {
            let now = centerline_at(&patient, truth, t_ms);
            let scaled: Vec<Vector3<f64>> = now.iter().map(|p| first_source + (p - first_source) * scale).collect();
            moved.extend(now.iter().zip(&scaled).map(|(p, q)| (q - p).norm()));
            if let Some(got) =
                r.branches.iter().find(|b| b.view_ids[0] == Some(truth.id.0) && b.seen_in == SeenIn::Both)
            {
                for p in &got.points_mm {
                    absolute.push(distance_to_polyline_mm(&now, &Vector3::from(*p)));
                    shape.push(distance_to_polyline_mm(&scaled, &Vector3::from(*p)));
                }
            }
        }
        let rms = |v: &[f64]| (v.iter().map(|e| e * e).sum::<f64>() / v.len().max(1) as f64).sqrt();
        let mean_moved = moved.iter().sum::<f64>() / moved.len() as f64;
        let reported = report.depth_mm_per_unobserved_mm * along_mm.abs();
        println!(
            "seed {seed}: {along_mm} mm along the baseline, {:.1} mm across, angles ({d_primary}, {d_secondary}) deg off: \
             refinement rotated {:.2} deg, shifted {:?} mm; RMS against the truth {:.2} mm, against the truth scaled \
             about the first source {:.3} mm; the scaling moves the tree {mean_moved:.1} mm, reported {reported:.1} mm",
            across.norm(),
            report.rotation_deg,
            report.shift_mm.map(|v| (v * 10.0).round() / 10.0),
            rms(&absolute),
            rms(&shape)
        );
        assert!(shape.len() > 500, "seed {seed}: too little reconstructed in both views");
        assert!(rms(&shape) < 2.0, "seed {seed}: shape RMS {:.3} mm", rms(&shape));
        assert!(rms(&absolute) > 0.5 * mean_moved, "seed {seed}: the shift is invisible as the test assumes");
        assert!((reported - mean_moved).abs() < 0.15 * mean_moved, "seed {seed}: reported {reported:.1} mm");
    }
}

/// Branches one view misses (here every unnamed twig hidden in the second view) are kept from
/// the other view, hung from their parent at its 3D takeoff: the takeoff within 2 mm of the
/// truth and every point within its stated uncertainty.
#[test]
fn branches_seen_in_one_view_hang_from_their_parent_s_takeoff() {
    let mut hung = 0;
    for seed in [3u64, 7, 11, 19] {
        let patient = SyntheticPatient::generate(seed);
        let runs: Vec<_> = ["LAO30", "RAO30"]
            .iter()
            .map(|v| render(&patient, &RenderSettings::typical(v.parse().unwrap(), 512, 12, 1)).unwrap())
            .collect();
        let mut rng = SimRng::new(seed, 11);
        let (ta, mut tb) =
            (tree_of(&runs[0].truth[0], 0.3, 0.0, &mut rng), tree_of(&runs[1].truth[0], 0.3, 0.0, &mut rng));
        tb.branches.retain(|b| b.label != VeinLabel::Branch);
        let t_ms = runs[0].truth[0].time_ms;
        let r = reconstruct(
            View { tree: &ta, projection: &runs[0].projection },
            View { tree: &tb, projection: &runs[1].projection },
            &ReconstructParams::default(),
        );
        for got in r.branches.iter().filter(|b| b.seen_in == SeenIn::FirstOnly) {
            let truth = patient.tree.branches.iter().find(|t| Some(t.id.0) == got.view_ids[0]).unwrap();
            let now = centerline_at(&patient, truth, t_ms);
            assert!(got.parent.is_some(), "seed {seed}: twig {} not hung from its parent", truth.id.0);
            let takeoff = (Vector3::from(got.points_mm[0]) - now[0]).norm();
            let worst = got
                .points_mm
                .iter()
                .zip(&got.uncertainty_mm)
                .map(|(p, u)| distance_to_polyline_mm(&now, &Vector3::from(*p)) - u)
                .fold(f64::NEG_INFINITY, f64::max);
            println!(
                "seed {seed}: twig {} ({:.0} mm): takeoff {takeoff:.2} mm off, farthest point {:.1} mm off (uncertainty {:.1} mm)",
                truth.id.0,
                truth.length_mm(),
                got.points_mm.iter().map(|p| distance_to_polyline_mm(&now, &Vector3::from(*p))).fold(0.0, f64::max),
                got.uncertainty_mm.last().unwrap()
            );
            assert!(takeoff < 2.0, "seed {seed}: twig {} takeoff {takeoff:.2} mm off", truth.id.0);
            assert!(worst <= 0.5, "seed {seed}: twig {} has a point {worst:.2} mm past its uncertainty", truth.id.0);
            hung += 1;
        }
    }
    assert!(hung >= 8, "only {hung} twigs tried");
}

/// Trees that do not belong together (two different patients' runs) must not give a silent
/// wrong tree: the result is low-confidence with the reason.
#[test]
fn trees_of_different_patients_are_low_confidence() {
    for (seed_a, seed_b) in [(7u64, 19u64), (3, 11), (19, 23), (5, 13), (31, 2), (40, 41)] {
        let view = |seed: u64, v: &str| {
            let patient = SyntheticPatient::generate(seed);
            render(&patient, &RenderSettings::typical(v.parse().unwrap(), 512, 12, 1)).unwrap()
        };
        let (ra, rb) = (view(seed_a, "LAO30"), view(seed_b, "RAO30"));
        let (ta, tb) = (ra.truth[0].tree(), rb.truth[0].tree());
        let r = reconstruct(
            View { tree: &ta, projection: &ra.projection },
            View { tree: &tb, projection: &rb.projection },
            &ReconstructParams::default(),
        );
        let both = r.branches.iter().filter(|b| b.seen_in == SeenIn::Both).count();
        println!("patients {seed_a} and {seed_b}: {both} pairs matched; {:?}", r.warnings);
        assert!(r.low_confidence, "patients {seed_a} and {seed_b}: {both} pairs matched and not flagged");
        assert!(
            r.warnings.iter().any(|w| w.contains("could be matched") || w.contains("may not show the same veins")),
            "{:?}",
            r.warnings
        );
    }
}
