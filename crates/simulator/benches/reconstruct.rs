//! Two-view reconstruction benchmark: synthetic patients in LAO 30 and RAO 30 at 512 and 1024,
//! as generated (11-18 branches) and topped up with twigs to 20 branches (the size),
//! each view's true 2D tree of the same frame (0.5 px noise), reconstructed with
//! `venogram::reconstruct`; median of 15 runs. Target (issue 9): a 20-branch tree from two
//! 1024x1024 views under 200 ms on 2 cores. Run with
//! `cargo bench -p simulator --bench reconstruct` (here, beside the simulator that makes its
//! inputs, so a release build needs no app dependencies).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: a failure is a failed run")]

use std::time::Instant;

use simulator::SyntheticPatient;
use simulator::render::{FrameTruth, RenderSettings, render};
use simulator::rng::SimRng;
use venogram::reconstruct::{ReconstructParams, View, reconstruct};
use venogram::segment::BranchTree;

/// The frame's true tree with 0.5 px of noise on every point but each branch's first.
fn tree_of(truth: &FrameTruth, rng: &mut SimRng) -> BranchTree {
    let mut tree = truth.tree();
    for b in &mut tree.branches {
        for p in b.points.iter_mut().skip(1) {
            p[0] += rng.normal(0.0, 0.5);
            p[1] += rng.normal(0.0, 0.5);
        }
    }
    tree
}

fn main() {
    println!("csnav two-view reconstruction benchmark (median of 15 runs)");
    println!("{:>6} {:>6} {:>9} {:>13} {:>10}", "size", "seed", "branches", "points (both)", "ms");
    for size in [512u32, 1024] {
        for (seed, top_up_to) in [(7u64, None), (19, None), (423, None), (7, Some(20)), (423, Some(20))] {
            let mut patient = SyntheticPatient::generate(seed);
            if let Some(n) = top_up_to {
                patient.tree.add_twigs_up_to(&patient.lv, n, &mut SimRng::new(seed, 77));
                assert_eq!(patient.tree.branches.len(), n, "seed {seed}: topped up");
            }
            let runs: Vec<_> = ["LAO30", "RAO30"]
                .iter()
                .map(|v| render(&patient, &RenderSettings::typical(v.parse().unwrap(), size, 12, 1)).unwrap())
                .collect();
            let mut rng = SimRng::new(seed, 1);
            let (ta, tb) = (tree_of(&runs[0].truth[0], &mut rng), tree_of(&runs[1].truth[0], &mut rng));
            let points: usize = ta.branches.iter().map(|b| b.points.len()).sum::<usize>()
                + tb.branches.iter().map(|b| b.points.len()).sum::<usize>();
            let mut times = Vec::new();
            let mut branches = 0;
            for _ in 0..15 {
                let t = Instant::now();
                let r = reconstruct(
                    View { tree: &ta, projection: &runs[0].projection },
                    View { tree: &tb, projection: &runs[1].projection },
                    &ReconstructParams::default(),
                );
                times.push(t.elapsed().as_secs_f64() * 1e3);
                branches = r.branches.len();
            }
            times.sort_by(f64::total_cmp);
            println!("{size:>6} {seed:>6} {branches:>9} {points:>13} {:>10.1}", times[times.len() / 2]);
        }
    }
}
