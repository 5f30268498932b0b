//! A case as navigation needs it: the 3D branch tree (the simulator's `patient.json`, or
//! later the 3D reconstruction), the tracker registration from `tracker.json`'s fiducials,
//! and the target sites named on the command line.

use std::path::Path;

use anyhow::{Context as _, bail};
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use navigation::guidance::Target;
use navigation::registration::{Registration, register_points};
use navigation::tree::{BranchInput, NavTree, NavTree3};
use serde::Deserialize;
use simulator::tracker::SyntheticTracker;
use venogram::VeinLabel;

/// The tree part of `patient.json`.
#[derive(Deserialize)]
struct PatientFile {
    seed: u64,
    tree: TreeFile,
}

#[derive(Deserialize)]
struct TreeFile {
    branches: Vec<BranchFile>,
}

#[derive(Deserialize)]
struct TakeoffFile {
    parent: usize,
}

#[derive(Deserialize)]
struct BranchFile {
    label: VeinLabel,
    takeoff: Option<TakeoffFile>,
    centerline_in_patient: Vec<[f64; 3]>,
    radius_mm: Vec<f64>,
}

/// What `csnav track` and `csnav send-tips` read from a case directory.
pub struct NavCase {
    /// The synthetic patient's seed (its LV and physiology follow from it).
    pub seed: u64,
    /// The 3D tree, patient space.
    pub tree: NavTree3,
    /// The synthetic tracker (fiducials; its truth is used only by the test sender).
    pub tracker: SyntheticTracker,
    /// Tracker-to-patient registration from the fiducials.
    pub registration: Registration,
}

impl NavCase {
    /// Loads `patient.json` and `tracker.json` from `dir` and registers the tracker.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let patient_path = dir.join("patient.json");
        let text = std::fs::read_to_string(&patient_path)
            .with_context(|| format!("reading the case's 3D tree {}", patient_path.display()))?;
        let patient: PatientFile =
            serde_json::from_str(&text).with_context(|| format!("parsing the tree of {}", patient_path.display()))?;
        let inputs = patient
            .tree
            .branches
            .into_iter()
            .map(|b| BranchInput {
                parent: b.takeoff.map(|t| t.parent),
                label: b.label,
                points: b.centerline_in_patient.into_iter().map(Vector3::from).collect(),
                radius: b.radius_mm,
            })
            .collect();
        let tree =
            NavTree::new(inputs, 1.0).with_context(|| format!("building the tree of {}", patient_path.display()))?;
        let tracker_path = dir.join("tracker.json");
        let text = std::fs::read_to_string(&tracker_path)
            .with_context(|| format!("reading the tracker registration {}", tracker_path.display()))?;
        let tracker: SyntheticTracker =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", tracker_path.display()))?;
        let in_tracker: Vec<Point3<f64>> = tracker.fiducials.iter().map(|f| Point3::from(f.in_tracker_mm)).collect();
        let in_patient: Vec<Point3<f64>> = tracker.fiducials.iter().map(|f| Point3::from(f.in_patient_mm)).collect();
        let registration = register_points(&in_tracker, &in_patient)
            .with_context(|| format!("registering the tracker from {}", tracker_path.display()))?;
        Ok(Self { seed: patient.seed, tree, tracker, registration })
    }

    /// The centerline point at `arc_mm` from the ostium on the way to `branch`: on the
    /// deepest branch of its lineage that has begun by then.
    pub fn point_toward(&self, branch: usize, arc_mm: f64) -> Vector3<f64> {
        let lineage = self.tree.lineage(branch);
        let on = lineage
            .iter()
            .rev()
            .find(|b| self.tree.branches[**b].arc_from_ostium_mm[0] <= arc_mm)
            .copied()
            .unwrap_or(lineage[0]);
        self.tree.point_at(on, arc_mm).unwrap_or_else(Vector3::zeros)
    }

    /// The synthetic tracker's reading of a sensor at `arc_mm` on the way to `target`, pointing
    /// along the centerline, displaced by `noise_mm` (patient space): what the test sender and
    /// the simulated session play.
    pub fn tracker_from_sensor_toward(&self, target: &Target, arc_mm: f64, noise_mm: Vector3<f64>) -> Isometry3<f64> {
        let at = |s: f64| self.point_toward(target.branch, s);
        let tangent = at((arc_mm + 1.0).min(target.arc_mm)) - at((arc_mm - 1.0).max(0.0));
        let rotation =
            UnitQuaternion::rotation_between(&Vector3::z(), &tangent).unwrap_or_else(UnitQuaternion::identity);
        let patient_from_sensor = Isometry3::from_parts(Translation3::from(at(arc_mm) + noise_mm), rotation);
        self.tracker.tracker_from_patient * patient_from_sensor
    }

    /// The first branch with `label`.
    pub fn branch_labelled(&self, label: VeinLabel) -> Option<usize> {
        self.tree.branches.iter().position(|b| b.label == label)
    }

    /// A target from `NAME=LABEL@FRACTION` (fraction of the branch's length, 0-1), e.g.
    /// `"lateral mid=PLV@0.5"`.
    pub fn parse_target(&self, spec: &str) -> anyhow::Result<Target> {
        let (name, rest) =
            spec.split_once('=').context("a target is NAME=LABEL@FRACTION, e.g. \"lateral mid=PLV@0.5\"")?;
        let (label, fraction) =
            rest.split_once('@').context("a target is NAME=LABEL@FRACTION, e.g. \"lateral mid=PLV@0.5\"")?;
        let label = parse_label(label)?;
        let fraction: f64 =
            fraction.trim().parse().with_context(|| format!("target fraction {fraction:?} is not a number"))?;
        if !(0.0..=1.0).contains(&fraction) {
            bail!("target fraction {fraction} is outside 0-1");
        }
        let branch =
            self.branch_labelled(label).with_context(|| format!("the case has no {} branch", label.abbreviation()))?;
        let b = &self.tree.branches[branch];
        Ok(Target {
            name: name.trim().to_owned(),
            branch,
            arc_mm: b.takeoff_arc_mm + fraction * (b.end_arc_mm() - b.takeoff_arc_mm),
        })
    }

    /// The default target: the middle of the posterolateral vein, else the lateral marginal
    /// vein (the sites CRT guidelines prefer), else none.
    pub fn default_target(&self) -> Option<Target> {
        [VeinLabel::PosterolateralVein, VeinLabel::LateralMarginalVein].iter().find_map(|label| {
            let branch = self.branch_labelled(*label)?;
            let b = &self.tree.branches[branch];
            Some(Target {
                name: format!("{} mid", label.abbreviation()),
                branch,
                arc_mm: 0.5 * (b.takeoff_arc_mm + b.end_arc_mm()),
            })
        })
    }
}

/// A named vein from its abbreviation (CS, GCV, AIV, MCV, PLV, LMV, ALV).
fn parse_label(s: &str) -> anyhow::Result<VeinLabel> {
    VeinLabel::from_abbreviation(s)
        .filter(|l| *l != VeinLabel::Branch)
        .with_context(|| format!("unknown vein {s:?}: use CS, GCV, AIV, MCV, PLV, LMV or ALV"))
}
