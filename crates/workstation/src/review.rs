//! `csnav review --case DIR`: pre-procedure review of the venogram runs. Each run is segmented;
//! the physician corrects the tree (remove a branch with what is distal to it, add one traced
//! along the vessel, move the ostium seed and segment again, rename a label), picks candidate
//! targets, and saves a plan (`csnav.plan/1`, below) that `csnav live --plan` takes its targets
//! from. In the app the edits come from clicks ([`crate::app::review`]); `--actions FILE`
//! plays a list of them (for tests, teaching and scripted planning).
//!
//! A target is a vein and a fraction of its length in one view (`PLV@0.50`); where the case has
//! a 3D tree the same vein at that fraction is shown in 3D and projected into every view.
//!
//! The plan (`plan.json`):
//! `{"schema":"csnav.plan/1","case":NAME,"runs":[{"run","source","frame","seed_xy":[x,y]|null,
//! "edits":[text],"tree":{csnav.tree/1}}],"targets":[{"name","label","fraction","run","branch",
//! "xy":[x,y]}]}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use venogram::labels::VeinLabel;
use venogram::segment::edit::{self, EditError};
use venogram::segment::{BranchTree, Enhanced, FrameChoice, TreeDocument, TreeSource};

use crate::app::{self, AppMsg, AppOptions, LinkKind, LinkState, Mode, UiCommand};
use crate::case_runs;
use crate::cli::ReviewArgs;
use crate::nav_case::NavCase;
use crate::session_record;

/// The plan's schema.
pub const PLAN_SCHEMA: &str = "csnav.plan/1";

/// An edit of the plan, in image pixels of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ReviewAction {
    /// Remove the branch nearest `xy` with everything distal to it.
    Remove {
        /// Run number.
        run: u32,
        /// Image px.
        xy: [f64; 2],
    },
    /// Give the branch nearest `xy` this label (an abbreviation), or the next label when none.
    Rename {
        /// Run number.
        run: u32,
        /// Image px.
        xy: [f64; 2],
        /// The new label.
        label: Option<String>,
    },
    /// Add a branch from the tree point nearest `from_xy` along the vessel to `to_xy`.
    AddBranch {
        /// Run number.
        run: u32,
        /// Where it leaves the tree, image px.
        from_xy: [f64; 2],
        /// Where it ends, image px.
        to_xy: [f64; 2],
    },
    /// Put the ostium seed at `xy` and segment the run again (its edits are dropped).
    MoveSeed {
        /// Run number.
        run: u32,
        /// Image px.
        xy: [f64; 2],
    },
    /// Add a target on the branch nearest `xy`, or remove the target already there.
    Target {
        /// Run number.
        run: u32,
        /// Image px.
        xy: [f64; 2],
        /// Its name (default: `LABEL@FRACTION`).
        name: Option<String>,
    },
    /// Write the plan.
    Save,
}

impl ReviewAction {
    /// The run the action edits (none for saving).
    #[must_use]
    pub fn run(&self) -> Option<u32> {
        match self {
            Self::Remove { run, .. }
            | Self::Rename { run, .. }
            | Self::AddBranch { run, .. }
            | Self::MoveSeed { run, .. }
            | Self::Target { run, .. } => Some(*run),
            Self::Save => None,
        }
    }
}

/// A candidate target in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTarget {
    /// Its name.
    pub name: String,
    /// The vein (abbreviation).
    pub label: String,
    /// Where along the branch, 0 (takeoff) to 1 (distal end), in the run it was picked in.
    pub fraction: f64,
    /// The run it was picked in.
    pub run: u32,
    /// The 2D branch it is on.
    pub branch: u32,
    /// Where, image px.
    pub xy: [f64; 2],
}

impl PlanTarget {
    /// The target as `csnav live --target` takes it: `NAME=LABEL@FRACTION`.
    #[must_use]
    pub fn spec(&self) -> String {
        format!("{}={}@{:.3}", self.name, self.label, self.fraction)
    }
}

/// A run in the plan.
#[derive(Debug, Serialize)]
struct PlanRun<'a> {
    run: u32,
    source: &'a str,
    frame: u32,
    seed_xy: Option<[f64; 2]>,
    edits: &'a [String],
    tree: TreeDocument<'a>,
}

/// The plan as written.
#[derive(Debug, Serialize)]
struct PlanDocument<'a> {
    schema: &'static str,
    case: &'a str,
    runs: Vec<PlanRun<'a>>,
    targets: &'a [PlanTarget],
}

/// The plan as read back (targets only: what `csnav live` needs).
#[derive(Debug, Deserialize)]
struct PlanTargets {
    schema: String,
    targets: Vec<PlanTarget>,
}

/// Reads a plan's targets.
pub fn read_plan_targets(path: &Path) -> anyhow::Result<Vec<PlanTarget>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the plan {}", path.display()))?;
    let plan: PlanTargets =
        serde_json::from_str(&text).with_context(|| format!("{} is not a csnav plan", path.display()))?;
    anyhow::ensure!(
        plan.schema == PLAN_SCHEMA,
        "{} is a plan of schema {:?}; this csnav reads {PLAN_SCHEMA:?}",
        path.display(),
        plan.schema
    );
    Ok(plan.targets)
}

/// One run under review.
struct RunUnderReview {
    run: u32,
    path: PathBuf,
    source: String,
    frame: u32,
    rows: u32,
    columns: u32,
    seed_xy: Option<[f64; 2]>,
    spacing_mm: Option<f64>,
    tree: BranchTree,
    enhanced: Enhanced,
    edits: Vec<String>,
}

/// Everything under review.
struct Review {
    case_name: String,
    case: Option<NavCase>,
    runs: Vec<RunUnderReview>,
    targets: Vec<PlanTarget>,
    plan: PathBuf,
}

/// The next label in the legend's order.
fn next_label(label: VeinLabel) -> VeinLabel {
    let k = VeinLabel::ALL.iter().position(|l| *l == label).unwrap_or(0);
    VeinLabel::ALL[(k + 1) % VeinLabel::ALL.len()]
}

/// Fraction of a polyline's length at point `index`.
fn fraction_at(points: &[[f64; 2]], index: usize) -> f64 {
    let step = |w: &[[f64; 2]]| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
    let total: f64 = points.windows(2).map(step).sum();
    let upto: f64 = points[..=index.min(points.len().saturating_sub(1))].windows(2).map(step).sum();
    if total > 1e-9 { (upto / total).clamp(0.0, 1.0) } else { 0.0 }
}

impl Review {
    fn run_mut(&mut self, run: u32) -> anyhow::Result<&mut RunUnderReview> {
        self.runs.iter_mut().find(|r| r.run == run).with_context(|| format!("there is no run {run}"))
    }

    /// Applies one action; returns what it did, in words.
    fn apply(&mut self, action: &ReviewAction) -> anyhow::Result<String> {
        match action {
            ReviewAction::Remove { run, xy } => {
                let r = self.run_mut(*run)?;
                let id = picked(&r.tree, *xy)?;
                let label = r.tree.branch(id).map_or("", |b| b.label.abbreviation());
                let removed = edit::remove_branch(&mut r.tree, id)?;
                let text = format!("run {run}: removed {label} branch {id} ({} branches)", removed.len());
                r.edits.push(text.clone());
                let gone: Vec<u32> = removed;
                self.targets.retain(|t| !(t.run == *run && gone.contains(&t.branch)));
                Ok(text)
            }
            ReviewAction::Rename { run, xy, label } => {
                let r = self.run_mut(*run)?;
                let id = picked(&r.tree, *xy)?;
                let old = r.tree.branch(id).map_or(VeinLabel::Branch, |b| b.label);
                let new = match label {
                    Some(l) => VeinLabel::from_abbreviation(l)
                        .with_context(|| format!("unknown label {l:?}: CS, GCV, AIV, MCV, PLV, LMV, ALV or branch"))?,
                    None => next_label(old),
                };
                edit::rename_branch(&mut r.tree, id, new)?;
                let text = format!("run {run}: branch {id} renamed {} -> {}", old.abbreviation(), new.abbreviation());
                r.edits.push(text.clone());
                for t in self.targets.iter_mut().filter(|t| t.run == *run && t.branch == id) {
                    new.abbreviation().clone_into(&mut t.label);
                }
                Ok(text)
            }
            ReviewAction::AddBranch { run, from_xy, to_xy } => {
                let r = self.run_mut(*run)?;
                let id = edit::add_branch(&mut r.tree, &r.enhanced, *from_xy, *to_xy, r.spacing_mm)?;
                let length = r.tree.branch(id).map_or(0.0, |b| b.length_px);
                let text =
                    format!("run {run}: added branch {id} ({length:.0} px) to ({:.0}, {:.0})", to_xy[0], to_xy[1]);
                r.edits.push(text.clone());
                Ok(text)
            }
            ReviewAction::MoveSeed { run, xy } => {
                let r = self.run_mut(*run)?;
                let (_, seg, _) = case_runs::segment_file(r.run, &r.path, Some(*xy), FrameChoice::Index(r.frame))?;
                r.seed_xy = Some(*xy);
                r.enhanced = seg.native_enhanced()?;
                r.tree = seg.tree;
                let text = format!(
                    "run {run}: seed at ({:.0}, {:.0}), segmented again: {} branches (earlier edits of this run dropped)",
                    xy[0],
                    xy[1],
                    r.tree.branches.len()
                );
                r.edits.clear();
                r.edits.push(text.clone());
                self.targets.retain(|t| t.run != *run);
                Ok(text)
            }
            ReviewAction::Target { run, xy, name } => {
                if let Some(k) =
                    self.targets.iter().position(|t| t.run == *run && (t.xy[0] - xy[0]).hypot(t.xy[1] - xy[1]) <= 8.0)
                {
                    let gone = self.targets.remove(k);
                    return Ok(format!("target {} removed", gone.name));
                }
                let r = self.run_mut(*run)?;
                let (id, index, _) = edit::nearest_branch(&r.tree, *xy)
                    .filter(|(_, _, d)| *d <= edit::PICK_RADIUS_PX)
                    .context("no branch within reach of the click")?;
                let b = r.tree.branch(id).context("the branch has gone")?;
                let fraction = fraction_at(&b.points, index);
                let label = b.label.abbreviation().to_owned();
                let target = PlanTarget {
                    name: name.clone().unwrap_or_else(|| format!("{label}@{fraction:.2}")),
                    label,
                    fraction,
                    run: *run,
                    branch: id,
                    xy: b.points[index],
                };
                let text = format!("target {} on branch {id}", target.name);
                self.targets.push(target);
                Ok(text)
            }
            ReviewAction::Save => {
                self.save()?;
                Ok(format!("plan saved to {}", self.plan.display()))
            }
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let sources: Vec<TreeSource> = self
            .runs
            .iter()
            .map(|r| TreeSource {
                file: r.source.clone(),
                sop_instance_uid: None,
                frame: r.frame,
                rows: r.rows,
                columns: r.columns,
            })
            .collect();
        let runs = self
            .runs
            .iter()
            .zip(&sources)
            .map(|(r, source)| PlanRun {
                run: r.run,
                source: &r.source,
                frame: r.frame,
                seed_xy: r.seed_xy,
                edits: &r.edits,
                tree: TreeDocument::new(&r.tree, source, r.spacing_mm),
            })
            .collect();
        let plan = PlanDocument { schema: PLAN_SCHEMA, case: &self.case_name, runs, targets: &self.targets };
        if let Some(dir) = self.plan.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&self.plan, serde_json::to_string_pretty(&plan)?)
            .with_context(|| format!("writing the plan {}", self.plan.display()))
    }

    /// The targets as the app shows them: those whose vein the case's 3D tree has.
    fn target_records(&self) -> Vec<recording::record::TargetRecord> {
        let Some(case) = &self.case else { return Vec::new() };
        self.targets
            .iter()
            .filter_map(|t| case.parse_target(&t.spec()).ok())
            .map(|t| session_record::target(case, &t))
            .collect()
    }
}

/// The branch picked by a click.
fn picked(tree: &BranchTree, xy: [f64; 2]) -> anyhow::Result<u32> {
    match edit::nearest_branch(tree, xy) {
        Some((id, _, d)) if d <= edit::PICK_RADIUS_PX => Ok(id),
        Some((_, _, d)) => Err(EditError::OffTree { x: xy[0], y: xy[1], distance_px: d }.into()),
        None => anyhow::bail!("the tree is empty"),
    }
}

/// Runs `csnav review`.
pub fn run(args: &ReviewArgs) -> anyhow::Result<ExitCode> {
    let headless = args.headless || !app::display_available();
    if headless && !args.headless {
        eprintln!("no display (DISPLAY is not set): rendering offscreen into {}", args.out.display());
    }
    let actions: Vec<ReviewAction> = match &args.actions {
        Some(path) => serde_json::from_str(
            &std::fs::read_to_string(path).with_context(|| format!("reading the actions {}", path.display()))?,
        )
        .with_context(|| format!("{} is not a list of review actions", path.display()))?,
        None => Vec::new(),
    };
    let files = case_runs::run_files(&args.case)?;
    anyhow::ensure!(!files.is_empty(), "{} has no venogram runs (*.dcm)", args.case.display());
    let plan = args.plan.clone().unwrap_or_else(|| args.out.join("plan.json"));
    let case_name = app::shown_name(&args.case);
    let source_args = (args.case.clone(), files, case_name.clone(), plan, actions);
    let options = AppOptions {
        mode: Mode::Review,
        case_name,
        offscreen: headless,
        screenshots: (headless || args.screenshot).then(|| args.out.clone()),
        size_px: args.size,
        bench: None,
    };
    let (exit, summary) =
        app::run_with_source(options, "review", move |feed, commands| source(source_args, feed, commands))?;
    for line in summary {
        println!("{line}");
    }
    Ok(app::exit_code(&exit))
}

type SourceArgs = (PathBuf, Vec<PathBuf>, String, PathBuf, Vec<ReviewAction>);

/// Segments the runs, plays the scripted actions, then follows the user's until the app goes.
fn source(args: SourceArgs, app: &Sender<AppMsg>, commands: &Receiver<UiCommand>) -> anyhow::Result<Vec<String>> {
    let (case_dir, files, case_name, plan, actions) = args;
    let send = |msg: AppMsg| app.send(msg).is_ok();
    send(AppMsg::Link(LinkKind::Tracker, LinkState::NotUsed));
    send(AppMsg::Link(LinkKind::Device, LinkState::NotUsed));
    // The 3D tree where the case has one (synthetic cases: the simulator's, marked so).
    let case = NavCase::load(&case_dir).ok();
    if let Some(case) = &case {
        let patient = simulator::SyntheticPatient::generate(case.seed);
        send(AppMsg::Lv(Arc::new(crate::procedure::lv_mesh(&patient))));
        send(AppMsg::Record(recording::record::Record::Tree3d(session_record::tree3d(
            case,
            "simulator truth (not reconstructed)",
        ))));
    }
    let mut review = Review { case_name, case, runs: Vec::new(), targets: Vec::new(), plan };
    for (k, path) in files.iter().enumerate() {
        send(AppMsg::Step(format!("segmenting {}", path.display())));
        let (loaded, seg, params) = case_runs::segment_file(k as u32 + 1, path, None, FrameChoice::Auto)?;
        let enhanced = seg.native_enhanced()?;
        review.runs.push(RunUnderReview {
            run: loaded.info.run,
            path: path.clone(),
            source: loaded.info.source.clone(),
            frame: seg.frame,
            rows: loaded.info.rows,
            columns: loaded.info.columns,
            seed_xy: None,
            spacing_mm: params.pixel_spacing_mm,
            tree: seg.tree,
            enhanced,
            edits: Vec::new(),
        });
        let projection = loaded.projection.clone();
        send(AppMsg::Run(Arc::new(loaded), projection));
    }
    let mut log = Vec::new();
    let mut act = |review: &mut Review, action: &ReviewAction| {
        let (text, touched) = match review.apply(action) {
            Ok(text) => (text, true),
            Err(e) => (format!("not done: {e:#}"), false),
        };
        eprintln!("{text}");
        log.push(text.clone());
        if touched {
            // The edited run's tree and the targets (an edit can remove targets).
            for r in review.runs.iter().filter(|r| action.run() == Some(r.run)) {
                send(AppMsg::Tree2d(case_runs::segmentation2d(r.run, r.frame, &r.tree)));
            }
            send(AppMsg::Targets(review.target_records()));
        }
        send(AppMsg::Step(text));
    };
    for action in &actions {
        act(&mut review, action);
    }
    send(AppMsg::Step(if actions.is_empty() {
        "review: X remove, L rename, A add branch, O seed, T target, S save".to_owned()
    } else {
        format!("{} scripted actions done", actions.len())
    }));
    send(AppMsg::Finished);
    loop {
        match commands.recv_timeout(Duration::from_millis(100)) {
            Ok(UiCommand::Review(action)) => act(&mut review, &action),
            Ok(UiCommand::SavePlan) => act(&mut review, &ReviewAction::Save),
            Ok(UiCommand::SelectTarget(_) | UiCommand::Train(_) | UiCommand::NextLead)
            | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if !send(AppMsg::Heartbeat) {
            break;
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_from_json() {
        let json = r#"[{"action":"remove","run":1,"xy":[10,20]},
            {"action":"rename","run":2,"xy":[1,2],"label":"LMV"},
            {"action":"add_branch","run":1,"from_xy":[0,0],"to_xy":[5,5]},
            {"action":"move_seed","run":1,"xy":[3,4]},
            {"action":"target","run":1,"xy":[3,4],"name":"lateral"},
            {"action":"save"}]"#;
        let actions: Vec<ReviewAction> = serde_json::from_str(json).unwrap();
        assert_eq!(actions.len(), 6);
        assert_eq!(actions[1], ReviewAction::Rename { run: 2, xy: [1.0, 2.0], label: Some("LMV".into()) });
        assert_eq!(actions[5], ReviewAction::Save);
    }

    #[test]
    fn labels_cycle_and_fractions_run_along_the_branch() {
        assert_eq!(next_label(VeinLabel::CoronarySinus), VeinLabel::GreatCardiacVein);
        assert_eq!(next_label(VeinLabel::Branch), VeinLabel::CoronarySinus);
        let points = [[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [6.0, 18.0]];
        assert!((fraction_at(&points, 0)).abs() < 1e-12);
        assert!((fraction_at(&points, 1) - 0.25).abs() < 1e-12);
        assert!((fraction_at(&points, 3) - 1.0).abs() < 1e-12);
        let t =
            PlanTarget { name: "lat".into(), label: "PLV".into(), fraction: 0.5, run: 1, branch: 3, xy: [0.0, 0.0] };
        assert_eq!(t.spec(), "lat=PLV@0.500");
    }
}
