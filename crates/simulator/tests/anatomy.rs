//! Anatomy of synthetic patients over many seeds: the tree is connected, radii are positive
//! and taper, labels that must be unique are, calibres and lengths fall in the published
//! ranges, every vessel lies on the epicardium, and a seed always gives the same patient.

#![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use proptest::prelude::*;
use simulator::SyntheticPatient;
use simulator::heart::WallSegment;
use venogram::VeinLabel;

fn check_patient(seed: u64) -> Result<(), TestCaseError> {
    let p = SyntheticPatient::generate(seed);
    let tree = &p.tree;
    prop_assert!(tree.branches[0].label == VeinLabel::CoronarySinus && tree.branches[0].takeoff.is_none());
    for (i, b) in tree.branches.iter().enumerate() {
        prop_assert_eq!(b.id.0 as usize, i);
        prop_assert_eq!(b.centerline_in_patient.len(), b.radius_mm.len());
        prop_assert!(b.centerline_in_patient.len() >= 2, "seed {seed}: {} too short", b.label);
        prop_assert!(b.radius_mm.iter().all(|r| *r > 0.2), "seed {seed}: {} radius not positive", b.label);
        prop_assert!(b.radius_mm.windows(2).all(|w| w[1] <= w[0] + 1e-12), "seed {seed}: {} widens", b.label);
        // Samples about 1 mm apart.
        for w in b.centerline_in_patient.windows(2) {
            let step = (w[1] - w[0]).norm();
            prop_assert!((0.5..1.5).contains(&step), "seed {seed}: {} step {step}", b.label);
        }
        // On the epicardium: the centerline one radius outside the surface (within 0.6 mm),
        // except where the branch is still leaving its parent's lumen.
        let parent_radius = b.takeoff.map_or(0.0, |t| tree.get(t.parent).unwrap().radius_mm[t.index]);
        let start = b.centerline_in_patient[0];
        for (q, r) in
            b.centerline_in_patient.iter().zip(&b.radius_mm).filter(|(q, _)| (*q - start).norm() > parent_radius + 1.5)
        {
            let off = p.lv.outward_distance_mm(q) - r;
            prop_assert!(off.abs() < 0.6, "seed {seed}: {} {off} mm off the surface", b.label);
        }
        if i > 0 {
            let t = b.takeoff.unwrap();
            prop_assert!(t.parent.0 < b.id.0, "parents come first");
            let parent = tree.get(t.parent).unwrap();
            prop_assert_eq!(b.centerline_in_patient[0], parent.centerline_in_patient[t.index]);
            prop_assert!(b.radius_mm[0] <= parent.radius_mm[t.index] + 1e-12, "seed {seed}: child wider than parent");
        }
    }
    for label in [
        VeinLabel::CoronarySinus,
        VeinLabel::GreatCardiacVein,
        VeinLabel::AnteriorInterventricularVein,
        VeinLabel::MiddleCardiacVein,
    ] {
        prop_assert_eq!(tree.branches.iter().filter(|b| b.label == label).count(), 1, "seed {}: one {}", seed, label);
    }
    let targets: Vec<_> = tree.branches.iter().filter(|b| b.label.is_lv_lead_target()).collect();
    prop_assert!((1..=4).contains(&targets.len()), "seed {seed}: {} tributaries", targets.len());
    let cs = tree.find(VeinLabel::CoronarySinus).unwrap();
    prop_assert!((24.0..=40.0).contains(&cs.length_mm()), "seed {seed}: CS {} mm", cs.length_mm());
    prop_assert!((4.0..=5.4).contains(&cs.radius_mm[0]), "seed {seed}: ostium radius {}", cs.radius_mm[0]);
    for t in &targets {
        prop_assert!((0.75..=2.0).contains(&t.radius_mm[0]), "seed {seed}: {} radius {}", t.label, t.radius_mm[0]);
        prop_assert!(t.length_mm() > 30.0, "seed {seed}: {} only {} mm", t.label, t.length_mm());
        // Tributaries run down the free wall toward the apex.
        let end = p.lv.coord_of(t.centerline_in_patient.last().unwrap());
        prop_assert!(end.depth > 0.45, "seed {seed}: {} ends at depth {}", t.label, end.depth);
        prop_assert!(end.wall() != WallSegment::Septal, "seed {seed}: {} on the septum", t.label);
    }
    let mcv_start = p.lv.coord_of(&tree.find(VeinLabel::MiddleCardiacVein).unwrap().centerline_in_patient[5]);
    prop_assert!(matches!(mcv_start.wall(), WallSegment::Posterior | WallSegment::Septal), "seed {seed}: MCV");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn anatomy_holds_for_any_seed(seed in any::<u64>()) {
        check_patient(seed)?;
    }
}

#[test]
fn anatomy_holds_for_the_first_seeds() {
    for seed in 0..100 {
        check_patient(seed).unwrap();
    }
}

#[test]
fn same_seed_same_patient_and_different_seeds_differ() {
    let a = serde_json::to_string(&SyntheticPatient::generate(42)).unwrap();
    let b = serde_json::to_string(&SyntheticPatient::generate(42)).unwrap();
    let c = serde_json::to_string(&SyntheticPatient::generate(43)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn tributary_prevalence_is_close_to_published() {
    let n = 400u32;
    let mut plv = 0u32;
    let mut counts = [0u32; 5];
    for seed in 0..u64::from(n) {
        let p = SyntheticPatient::generate(seed);
        plv += u32::from(p.tree.find(VeinLabel::PosterolateralVein).is_some());
        counts[p.tree.branches.iter().filter(|b| b.label.is_lv_lead_target()).count()] += 1;
    }
    let plv_rate = f64::from(plv) / f64::from(n);
    assert!((0.64..0.80).contains(&plv_rate), "PLV present in {plv_rate} (published 72%)");
    let single = f64::from(counts[1]) / f64::from(n);
    assert!((0.15..0.40).contains(&single), "one tributary in {single} (published 28%)");
}
