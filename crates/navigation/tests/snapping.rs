//! Snapping and guidance on the simulator's ground truth: a tip placed on a known branch at
//! a known arc length, with 0.5 mm RMS sensor noise (an electromagnetic tracker's static
//! accuracy), is reported on that branch within 1 mm of arc length, in 3D (patient space)
//! and in 2D (projected through a C-arm view, where arc lengths are in-plane). The noise is
//! random, so "within 1 mm" is checked as: every sample on the right branch, at least 99%
//! of samples within 1 mm, none beyond 1.5 mm, and the RMS error no larger than the noise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use nalgebra::{SVector, Vector2, Vector3};
use navigation::guidance::{DEFAULT_LOOK_AHEAD_MM, Target, guide};
use navigation::snap::Snapper;
use navigation::tree::{BranchInput, NavTree, NavTree2, NavTree3};
use simulator::SyntheticPatient;
use simulator::render::RenderSettings;
use venogram::geometry::CArmProjection;

mod common;
use common::Noise;

/// The simulator's tree with each centerline point mapped by `point` and each radius scaled
/// by `radius_scale`.
fn tree_of<const D: usize>(
    patient: &SyntheticPatient,
    point: impl Fn(&nalgebra::Point3<f64>) -> SVector<f64, D>,
    radius_scale: f64,
    mm_per_unit: f64,
) -> NavTree<D> {
    let inputs = patient
        .tree
        .branches
        .iter()
        .map(|b| BranchInput {
            parent: b.takeoff.map(|t| t.parent.0 as usize),
            label: b.label,
            points: b.centerline_in_patient.iter().map(&point).collect(),
            radius: b.radius_mm.iter().map(|r| r * radius_scale).collect(),
        })
        .collect();
    NavTree::new(inputs, mm_per_unit).unwrap()
}

fn tree3(patient: &SyntheticPatient) -> NavTree3 {
    tree_of(patient, |p| p.coords, 1.0, 1.0)
}

fn tree2(patient: &SyntheticPatient, projection: &CArmProjection, mm_per_px: f64) -> NavTree2 {
    tree_of(patient, |p| projection.project(p).unwrap().coords, 1.0 / mm_per_px, mm_per_px)
}

/// Test sites: per branch, points a quarter, half and three quarters along it (at least
/// 6 mm from its takeoff and 2 mm from its end), where no other branch's centerline passes
/// within `clear` tree units (in 2D, veins overlapping in projection cannot be told apart).
fn sites<const D: usize>(tree: &NavTree<D>, clear: f64) -> Vec<(usize, f64, SVector<f64, D>)> {
    let mut out = Vec::new();
    for (b, branch) in tree.branches.iter().enumerate() {
        let (s0, s1) = (branch.takeoff_arc_mm, branch.end_arc_mm());
        for f in [0.25, 0.5, 0.75] {
            let s = s0 + f * (s1 - s0);
            if s < s0 + 6.0 || s > s1 - 2.0 {
                continue;
            }
            let p = tree.point_at(b, s).unwrap();
            let crowded = tree.nearest_per_branch(&p, clear).iter().any(|n| n.branch != b && n.distance < clear);
            if !crowded {
                out.push((b, s, p));
            }
        }
    }
    out
}

/// The acceptance on arc-length errors (mm) of noisy samples.
fn check_arc_errors(errors: &[f64], min_samples: usize, what: &str) {
    let n = errors.len();
    let within = errors.iter().filter(|e| e.abs() <= 1.0).count() as f64 / n as f64;
    let worst = errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let rms = (errors.iter().map(|e| e * e).sum::<f64>() / n as f64).sqrt();
    println!("{what}: {n} samples, {:.1}% within 1 mm, RMS {rms:.3} mm, worst {worst:.2} mm", 100.0 * within);
    assert!(n >= min_samples, "{what}: only {n} samples");
    assert!(within >= 0.99, "{what}: {:.1}% within 1 mm", 100.0 * within);
    assert!(worst <= 1.5, "{what}: worst arc error {worst:.2} mm");
    assert!(rms <= 0.5, "{what}: RMS arc error {rms:.3} mm");
}

#[test]
fn tips_snap_to_their_branch_within_a_millimetre_in_3d() {
    let mut noise = Noise::new(11, 0.5);
    let mut errors = Vec::new();
    for seed in [3, 7, 11, 19] {
        let patient = SyntheticPatient::generate(seed);
        let tree = tree3(&patient);
        for (b, s, p) in sites(&tree, 3.0) {
            for _ in 0..20 {
                let tip = p + noise.vector();
                let snap = Snapper::default().snap(&tree, &tip).unwrap();
                assert_eq!(snap.branch, b, "seed {seed}: tip at {s:.1} mm on branch {b} snapped to {}", snap.branch);
                errors.push(snap.arc_mm - s);
                assert!(snap.off_centerline_mm < 2.0, "{}", snap.off_centerline_mm);
            }
        }
    }
    check_arc_errors(&errors, 400, "3D");
}

#[test]
fn tips_snap_to_their_branch_within_a_millimetre_in_2d() {
    let mut noise = Noise::new(12, 0.5);
    let mut errors = Vec::new();
    for (seed, view) in [(3, "LAO30"), (7, "RAO30"), (11, "LAO30"), (19, "AP")] {
        let patient = SyntheticPatient::generate(seed);
        let settings = RenderSettings::typical(view.parse().unwrap(), 512, 12, 2);
        let projection = settings.projection().unwrap();
        let mm_per_px = settings.pixel_spacing_mm() / projection.magnification_at_isocenter();
        let t3 = tree3(&patient);
        let t2 = tree2(&patient, &projection, mm_per_px);
        // Sites well clear of other branches in the projection (4 mm at the isocentre).
        for (b, s2, _) in sites(&t2, 4.0 / mm_per_px) {
            // The same anatomical point in 3D: the tree point whose projection is p2.
            let branch = &t2.branches[b];
            let i = branch.arc_from_ostium_mm.partition_point(|a| *a <= s2).min(branch.points.len() - 1);
            let p3 = t3.branches[b].points[i];
            let s2_at_i = branch.arc_from_ostium_mm[i];
            for _ in 0..20 {
                let tip3 = p3 + noise.vector();
                let tip2: Vector2<f64> = projection.project(&tip3.into()).unwrap().coords;
                let snap = Snapper::default().snap(&t2, &tip2).unwrap();
                assert_eq!(snap.branch, b, "seed {seed} {view}: branch {b} at {s2:.1} mm snapped to {}", snap.branch);
                errors.push(snap.arc_mm - s2_at_i);
            }
        }
    }
    check_arc_errors(&errors, 300, "2D");
}

/// A tip sliding along a branch past a bifurcation with noise: the reported branch changes
/// once, not back and forth.
#[test]
fn the_branch_does_not_flicker_at_a_bifurcation() {
    let patient = SyntheticPatient::generate(7);
    let tree = tree3(&patient);
    let mcv = tree.branches.iter().position(|b| b.label == venogram::VeinLabel::MiddleCardiacVein).unwrap();
    let cs = tree.branches[mcv].parent.unwrap();
    let takeoff = tree.branches[mcv].takeoff_arc_mm;
    let mut noise = Noise::new(5, 0.5);
    let mut snapper = Snapper::default();
    let mut reported = Vec::new();
    // Along the CS up to the takeoff, then out along the MCV, 0.2 mm per sample.
    let path: Vec<Vector3<f64>> = (0..=100)
        .map(|k| tree.point_at(cs, takeoff - 10.0 + 0.1 * f64::from(k)).unwrap())
        .chain((0..=150).map(|k| tree.point_at(mcv, takeoff + 0.1 * f64::from(k)).unwrap()))
        .collect();
    for p in path {
        let tip = p + noise.vector();
        let b = snapper.snap(&tree, &tip).unwrap().branch;
        if reported.last() != Some(&b) {
            reported.push(b);
        }
    }
    assert_eq!(reported, vec![cs, mcv], "reported branches {reported:?}");
}

/// Guidance from a tip in the MCV to a target in the lateral wall: the path runs back to the
/// CS and out along the target's lineage, its length equals the arc-length arithmetic, and
/// the steering direction points back toward the CS first.
#[test]
fn guidance_follows_the_tree_to_the_target() {
    let patient = SyntheticPatient::generate(3);
    let tree = tree3(&patient);
    let mcv = tree.branches.iter().position(|b| b.label == venogram::VeinLabel::MiddleCardiacVein).unwrap();
    let lateral = tree
        .branches
        .iter()
        .position(|b| {
            matches!(b.label, venogram::VeinLabel::PosterolateralVein | venogram::VeinLabel::LateralMarginalVein)
        })
        .unwrap();
    let target_arc = 0.5 * (tree.branches[lateral].takeoff_arc_mm + tree.branches[lateral].end_arc_mm());
    let target = Target { name: "lateral mid".into(), branch: lateral, arc_mm: target_arc };
    let tip_arc = tree.branches[mcv].takeoff_arc_mm + 20.0;
    let tip = tree.point_at(mcv, tip_arc).unwrap();
    let snap = Snapper::default().snap(&tree, &tip).unwrap();
    let g = guide(&tree, &snap, &tip, &target, DEFAULT_LOOK_AHEAD_MM).unwrap();
    // Expected: back down the MCV to its takeoff, along the trunk to the lateral vein's
    // takeoff (its lineage may pass the CS into the GCV), out to the target.
    let lineage = tree.lineage(lateral);
    let mut expected = 20.0;
    let mut at = tree.branches[mcv].takeoff_arc_mm;
    for w in lineage.windows(2) {
        let leave = tree.branches[w[1]].takeoff_arc_mm;
        expected += (leave - at).abs();
        at = tree.branches[w[1]].arc_from_ostium_mm[0];
    }
    expected += target_arc - at;
    assert!((g.path_mm - expected).abs() < 0.5, "path {:.2} mm, expected {expected:.2}", g.path_mm);
    assert_eq!(g.path_branches.first(), Some(&mcv));
    assert_eq!(g.path_branches.last(), Some(&lateral));
    assert!(g.straight_mm < g.path_mm);
    // The steering direction points back along the MCV, toward its takeoff.
    let back = (tree.point_at(mcv, tip_arc - DEFAULT_LOOK_AHEAD_MM).unwrap() - tip).normalize();
    assert!(g.steer_direction.unwrap().dot(&back) > 0.9);
    // A tip on the target's own branch, before it: straight along the branch.
    let before = tree.point_at(lateral, target_arc - 15.0).unwrap();
    let snap = Snapper::default().snap(&tree, &before).unwrap();
    let g = guide(&tree, &snap, &before, &target, DEFAULT_LOOK_AHEAD_MM).unwrap();
    assert!((g.path_mm - 15.0).abs() < 0.2, "{}", g.path_mm);
    assert_eq!(g.path_branches, vec![lateral]);
}

/// ECG gating: a tip moving with the heart, sampled in a later beat than the cine, drawn on
/// the frame of the same cardiac phase lands on its vein in that frame (to within the phase
/// step between frames), a fraction of the excursion an ungated overlay would show.
#[test]
fn the_gated_frame_puts_a_moving_tip_on_its_vein() {
    use navigation::gating::Phase;
    use navigation::overlay::ViewTimeline;
    let mut patient = SyntheticPatient::generate(7);
    patient.motion.respiratory_amplitude_mm = 0.0; // a breath hold, as during the venogram
    patient.motion.radial_contraction = 0.12;
    let settings = RenderSettings::typical("LAO30".parse().unwrap(), 512, 12, 45);
    let projection = settings.projection().unwrap();
    let frame_times: Vec<f64> = (0..45).map(|k| settings.frame_time_ms(k)).collect();
    let duration = settings.frame_time_ms(45);
    let view = ViewTimeline::from_ecg(projection.clone(), &frame_times, &patient.motion.r_wave_times_ms(duration));
    let plv = patient.tree.branches.iter().find(|b| b.label == venogram::VeinLabel::PosterolateralVein).unwrap();
    let at_ed = plv.centerline_in_patient[plv.centerline_in_patient.len() / 2];
    let mut worst_gated = 0.0f64;
    for k in 0..40 {
        // Ten seconds later, at 40 moments through a beat.
        let t = 10_000.0 + patient.motion.rr_interval_ms() * f64::from(k) / 40.0;
        let tip = patient.motion.displace(&patient.lv, &at_ed, t);
        let phase = Phase { cardiac: patient.motion.cardiac_phase(t), respiratory: None };
        let on = view.place(&tip, Some(&phase)).unwrap();
        let frame = on.frame.unwrap();
        // The vein point in that frame, projected.
        let vein = projection.project(&patient.motion.displace(&patient.lv, &at_ed, frame_times[frame])).unwrap();
        let gated_px = (vein.x - on.xy_px[0]).hypot(vein.y - on.xy_px[1]);
        worst_gated = worst_gated.max(gated_px);
        assert!(gated_px < 2.0, "moment {k}: the gated frame is {gated_px:.2} px off");
    }
    println!("gated: worst {worst_gated:.2} px");
    // Without gating the error would reach the full excursion.
    let excursion = {
        let a = projection.project(&patient.motion.displace(&patient.lv, &at_ed, 10_000.0 - 1e-3)).unwrap();
        let systole = patient.motion.first_r_wave_ms + 0.35 * patient.motion.rr_interval_ms();
        let b = projection.project(&patient.motion.displace(&patient.lv, &at_ed, systole)).unwrap();
        (a - b).norm()
    };
    assert!(excursion > 3.0 * worst_gated.max(0.5), "excursion {excursion:.2} px vs gated {worst_gated:.2} px");
}
