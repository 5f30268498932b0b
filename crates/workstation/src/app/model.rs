//! The app's state, fed by the source's messages: the case (runs, 3D tree, LV, targets), the
//! tracked tips (with staleness judged on the app's clock, trails and guidance to the selected
//! target), the device (EGM, beats, the running test, results), the sites and their ranking,
//! and the links. No rendering here: the plugin runs under `MinimalPlugins` in tests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bevy::prelude::*;
use device_link::protocol::{Capture, Event, SafetyReason};
use device_link::ranking::{RankedSite, SiteRecord};
use nalgebra::Vector3;
use navigation::guidance::{DEFAULT_LOOK_AHEAD_MM, Target, guide};
use navigation::snap::Snap;
use navigation::tracking::DEFAULT_STALE_AFTER_MS;
use navigation::tree::NavTree3;
use recording::record::{Record, Segmentation2d, TargetRecord, TestResultRecord, TipRecord, Tree3d};
use venogram::geometry::CArmProjection;
use venogram::labels::VeinLabel;

use super::{AppMsg, Feed, LinkKind, LinkState, LvMesh};
use crate::case_runs::LoadedRun;

/// Trail length kept per tool, s.
pub const TRAIL_S: f64 = 2.0;
/// EGM history shown, s.
pub const EGM_WINDOW_S: f64 = 4.0;
/// Beats kept for the per-beat capture strip.
pub const BEATS_KEPT: usize = 16;

/// A venogram run as the app shows it.
#[derive(Debug, Clone)]
pub struct RunState {
    /// The run, decoded and segmented.
    pub run: Arc<LoadedRun>,
    /// Its projection (patient mm to image px), when known.
    pub projection: Option<CArmProjection>,
    /// The labelled 2D tree shown over it (the run's own, or as edited in review).
    pub tree: Segmentation2d,
}

/// The 3D tree as shown and navigated.
#[derive(Debug, Clone)]
pub struct TreeState {
    /// The recorded form (labels, points, radii, where it came from).
    pub record: Tree3d,
    /// The navigation tree (for guidance to a newly selected target).
    pub nav: Option<Arc<NavTree3>>,
}

/// The case on screen.
#[derive(Debug, Default, Resource)]
pub struct CaseState {
    /// Venogram runs, in order of arrival.
    pub runs: Vec<RunState>,
    /// The 3D tree.
    pub tree: Option<TreeState>,
    /// The LV surface.
    pub lv: Option<Arc<LvMesh>>,
    /// Candidate targets, in order of arrival.
    pub targets: Vec<TargetRecord>,
    /// The target guidance goes to (index into `targets`).
    pub selected: Option<usize>,
}

impl CaseState {
    /// The selected target.
    #[must_use]
    pub fn selected_target(&self) -> Option<&TargetRecord> {
        self.selected.and_then(|k| self.targets.get(k))
    }
}

/// Guidance from a tip to the selected target, computed in the app.
#[derive(Debug, Clone, PartialEq)]
pub struct TipGuidance {
    /// The target's name.
    pub target: String,
    /// Distance along the tree, mm.
    pub path_mm: f64,
    /// Straight-line distance, mm.
    pub straight_mm: f64,
    /// Direction to steer (unit, patient LPS), when the tip is not there yet.
    pub steer: Option<[f64; 3]>,
    /// The path along the tree, patient mm.
    pub path: Vec<[f64; 3]>,
}

/// One tracked tool.
#[derive(Debug, Clone)]
pub struct TipTrack {
    /// The latest sample.
    pub last: TipRecord,
    /// When it arrived, app seconds.
    pub received_s: f64,
    /// Stale: flagged by the source or older than the limit on the app's clock.
    pub stale: bool,
    /// Recent positions (app seconds, patient mm), oldest first.
    pub trail: VecDeque<(f64, [f64; 3])>,
    /// Guidance to the selected target.
    pub guidance: Option<TipGuidance>,
}

/// The tracked tips, by tool name.
#[derive(Debug, Default, Resource)]
pub struct TipState {
    /// Tools.
    pub tools: BTreeMap<String, TipTrack>,
    /// Samples received in all (for the latency benchmark and the panel).
    pub samples: u64,
}

/// A tip is stale after this long without a sample, ms.
#[derive(Debug, Clone, Copy, Resource)]
pub struct StaleAfterMs(pub f64);

impl Default for StaleAfterMs {
    fn default() -> Self {
        Self(DEFAULT_STALE_AFTER_MS)
    }
}

/// One beat as the strip shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeatMark {
    /// Captured (LV), lost, or not paced.
    pub capture: Capture,
    /// Phrenic stimulation seen on this beat.
    pub phrenic: bool,
    /// Output, volts.
    pub amplitude_volts: f64,
}

/// The device as the panel shows it.
#[derive(Debug, Default, Resource)]
pub struct DeviceState {
    /// LV tip EGM, mV, newest last, at `egm_rate_hz`.
    pub egm_mv: VecDeque<f32>,
    /// Sample rate of `egm_mv`, Hz.
    pub egm_rate_hz: f64,
    /// Recent beats, newest last.
    pub beats: VecDeque<BeatMark>,
    /// The program being delivered, in words.
    pub program: String,
    /// Safety events, newest last (an alarm on screen).
    pub safety: Vec<String>,
    /// Completed tests, newest last.
    pub results: Vec<TestResultRecord>,
}

/// The sites tested and their ranking.
#[derive(Debug, Default, Resource)]
pub struct SiteTable {
    /// Everything measured per site, in order of testing.
    pub sites: Vec<SiteRecord>,
    /// The latest ranking, best first.
    pub ranking: Vec<RankedSite>,
}

/// Link states and the procedure's progress.
#[derive(Debug, Resource)]
pub struct Status {
    /// Tracker link.
    pub tracker: LinkState,
    /// Device link.
    pub device: LinkState,
    /// The current step, in words.
    pub step: String,
    /// Notes from the source, newest last.
    pub notes: VecDeque<String>,
    /// The source has finished.
    pub finished: bool,
    /// The source failed, with the reason.
    pub failed: Option<String>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            tracker: LinkState::NotUsed,
            device: LinkState::NotUsed,
            step: String::new(),
            notes: VecDeque::new(),
            finished: false,
            failed: None,
        }
    }
}

/// Something changed that views rebuild from.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
pub enum ModelChanged {
    /// A run arrived (its index in [`CaseState::runs`]).
    Run(usize),
    /// A run's 2D tree changed (its index).
    Tree2d(usize),
    /// The 3D tree changed.
    Anatomy,
    /// The LV surface changed.
    Lv,
    /// Targets or the selection changed.
    Targets,
    /// Sites or ranking changed.
    Sites,
}

/// The user selects a target by name.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
pub struct SelectTarget(pub String);

/// The app's clock for staleness, s (virtual time, so tests can step it).
fn now_s(time: &Time) -> f64 {
    time.elapsed_secs_f64()
}

/// The state plugin.
pub struct ModelPlugin;

impl Plugin for ModelPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<CaseState>()
            .init_resource::<TipState>()
            .init_resource::<StaleAfterMs>()
            .init_resource::<DeviceState>()
            .init_resource::<SiteTable>()
            .init_resource::<Status>()
            .add_message::<ModelChanged>()
            .add_message::<SelectTarget>()
            .add_systems(PreUpdate, drain_feed)
            .add_systems(Update, (select_target, judge_staleness).chain());
    }
}

/// Everything [`drain_feed`] writes.
#[derive(bevy::ecs::system::SystemParam)]
struct Model<'w> {
    case: ResMut<'w, CaseState>,
    tips: ResMut<'w, TipState>,
    device: ResMut<'w, DeviceState>,
    sites: ResMut<'w, SiteTable>,
    status: ResMut<'w, Status>,
    changed: MessageWriter<'w, ModelChanged>,
}

/// Drains the source's channel (at most a bounded number of messages per frame, so a burst
/// never stalls a frame; the rest wait for the next).
fn drain_feed(feed: Option<Res<Feed>>, time: Res<Time>, mut model: Model) {
    const MAX_PER_FRAME: usize = 20_000;
    let Some(feed) = feed else { return };
    let Ok(rx) = feed.0.lock() else { return };
    let now = now_s(&time);
    for msg in rx.try_iter().take(MAX_PER_FRAME) {
        apply(&mut model, msg, now);
    }
}

fn apply(m: &mut Model, msg: AppMsg, now: f64) {
    match msg {
        AppMsg::Record(record) => apply_record(m, record, now),
        AppMsg::Run(run, projection) => {
            let tree = run.tree.clone();
            m.case.runs.push(RunState { run, projection, tree });
            let k = m.case.runs.len() - 1;
            m.changed.write(ModelChanged::Run(k));
        }
        AppMsg::Lv(lv) => {
            m.case.lv = Some(lv);
            m.changed.write(ModelChanged::Lv);
        }
        AppMsg::Link(kind, state) => {
            if let LinkState::Lost(why) = &state {
                push_note(&mut m.status.notes, format!("{kind:?} link LOST: {why}"));
            }
            match kind {
                LinkKind::Tracker => m.status.tracker = state,
                LinkKind::Device => m.status.device = state,
            }
        }
        AppMsg::Step(step) => {
            push_note(&mut m.status.notes, step.clone());
            m.status.step = step;
        }
        AppMsg::Status(line) => m.status.step = line,
        AppMsg::Tree2d(tree) => {
            if let Some(k) = m.case.runs.iter().position(|r| r.run.info.run == tree.run) {
                m.case.runs[k].tree = tree;
                m.changed.write(ModelChanged::Tree2d(k));
            }
        }
        AppMsg::Targets(targets) => {
            let selected = m.case.selected_target().map(|t| t.name.clone());
            m.case.selected = selected.and_then(|name| targets.iter().position(|t| t.name == name));
            if m.case.selected.is_none() && !targets.is_empty() {
                m.case.selected = Some(0);
            }
            m.case.targets = targets;
            m.changed.write(ModelChanged::Targets);
        }
        AppMsg::Finished => m.status.finished = true,
        AppMsg::Heartbeat => {}
        AppMsg::Select(name) => {
            if let Some(k) = m.case.targets.iter().position(|t| t.name == name) {
                m.case.selected = Some(k);
                m.changed.write(ModelChanged::Targets);
            }
        }
        AppMsg::Failed(why) => {
            push_note(&mut m.status.notes, format!("FAILED: {why}"));
            m.status.step = format!("FAILED: {why}");
            m.status.failed = Some(why);
            m.status.finished = true;
        }
    }
}

fn push_note(notes: &mut VecDeque<String>, note: String) {
    notes.push_back(note);
    while notes.len() > 8 {
        notes.pop_front();
    }
}

fn apply_record(m: &mut Model, record: Record, now: f64) {
    match record {
        Record::Tree3d(tree) => {
            let nav = crate::replay::tree_from(&tree).ok().map(Arc::new);
            m.case.tree = Some(TreeState { record: tree, nav });
            m.changed.write(ModelChanged::Anatomy);
        }
        Record::Target(target) => {
            if let Some(k) = m.case.targets.iter().position(|t| t.name == target.name) {
                m.case.targets[k] = target;
            } else {
                m.case.targets.push(target);
                if m.case.selected.is_none() {
                    m.case.selected = Some(m.case.targets.len() - 1);
                }
            }
            m.changed.write(ModelChanged::Targets);
        }
        Record::Tip(tip) => ingest_tip(&m.case, &mut m.tips, *tip, now),
        Record::DeviceEvent(e) => match e.event {
            Event::Beat(beat) => {
                m.device.beats.push_back(BeatMark {
                    capture: beat.capture,
                    phrenic: beat.phrenic,
                    amplitude_volts: beat.amplitude_volts,
                });
                while m.device.beats.len() > BEATS_KEPT {
                    m.device.beats.pop_front();
                }
            }
            Event::Egm(chunk) => ingest_egm(&mut m.device, &chunk),
            Event::ProgramApplied { program } => {
                m.device.program = format!(
                    "{:?} {:.1} V {:.1} ms {:.0} bpm",
                    program.mode, program.amplitude_volts, program.pulse_width_ms, program.rate_bpm
                );
            }
            Event::SafePacing { reason, program } => {
                m.device.program =
                    format!("safe pacing {:?} {:.1} V ({reason:?})", program.mode, program.amplitude_volts);
                // A test's own stop is routine; anything else (link dropped, heartbeat missed,
                // lead moved, emergency) is an alarm.
                if !matches!(reason, SafetyReason::StopRequested | SafetyReason::ClientLeft) {
                    m.device.safety.push(format!("safe pacing: {reason:?}"));
                }
            }
        },
        Record::Egm(chunk) => ingest_egm(&mut m.device, &chunk),
        Record::TestResult(result) => m.device.results.push(*result),
        Record::Site(site) => {
            let site = *site;
            match m.sites.sites.iter_mut().find(|s| s.site == site.site) {
                Some(existing) => *existing = site,
                None => m.sites.sites.push(site),
            }
            m.changed.write(ModelChanged::Sites);
        }
        Record::Ranking(ranking) => {
            m.sites.ranking = ranking.sites;
            m.changed.write(ModelChanged::Sites);
        }
        Record::Note(note) => push_note(&mut m.status.notes, note.text),
        Record::Run(_)
        | Record::Frame(_)
        | Record::Mask(_)
        | Record::Tree2d(_)
        | Record::Registration(_)
        | Record::DeviceCommand(_) => {}
    }
}

fn ingest_egm(device: &mut DeviceState, chunk: &device_link::protocol::EgmChunk) {
    if chunk.sample_rate_hz <= 0.0 {
        return;
    }
    if (device.egm_rate_hz - chunk.sample_rate_hz).abs() > 1e-9 {
        device.egm_mv.clear();
        device.egm_rate_hz = chunk.sample_rate_hz;
    }
    device.egm_mv.extend(chunk.lv_tip_mv.iter().copied());
    let keep = (EGM_WINDOW_S * chunk.sample_rate_hz) as usize;
    while device.egm_mv.len() > keep {
        device.egm_mv.pop_front();
    }
}

/// Guidance from the tip's snap to `target` on `tree`.
fn guidance_for(tree: &NavTree3, tip: &TipRecord, target: &TargetRecord) -> Option<TipGuidance> {
    let snap = tip.snap.as_ref()?;
    let label = VeinLabel::from_abbreviation(&snap.label)?;
    let point = tree.point_at(snap.branch, snap.arc_mm)?;
    let at = Vector3::from(tip.tip_in_patient_mm);
    let snap = Snap {
        branch: snap.branch,
        label,
        arc_mm: snap.arc_mm,
        off_centerline_mm: (at - point).norm(),
        off_vessel_mm: snap.off_vessel_mm,
        inside_lumen: snap.off_vessel_mm <= 0.0,
        point,
    };
    let goal = Target { name: target.name.clone(), branch: target.branch, arc_mm: target.arc_mm };
    let g = guide(tree, &snap, &at, &goal, DEFAULT_LOOK_AHEAD_MM)?;
    Some(TipGuidance {
        target: g.target,
        path_mm: g.path_mm,
        straight_mm: g.straight_mm,
        steer: g.steer_direction.map(|d| [d.x, d.y, d.z]),
        path: g.path.iter().map(|p| [p.x, p.y, p.z]).collect(),
    })
}

fn ingest_tip(case: &CaseState, tips: &mut TipState, tip: TipRecord, now: f64) {
    tips.samples += 1;
    let guidance = match (case.tree.as_ref().and_then(|t| t.nav.as_deref()), case.selected_target()) {
        (Some(tree), Some(target)) => guidance_for(tree, &tip, target),
        _ => None,
    };
    let position = tip.tip_in_patient_mm;
    let stale = tip.stale;
    let track = tips.tools.entry(tip.tool.clone()).or_insert_with(|| TipTrack {
        last: tip.clone(),
        received_s: now,
        stale,
        trail: VecDeque::new(),
        guidance: None,
    });
    track.last = tip;
    track.received_s = now;
    track.stale = stale;
    track.guidance = guidance;
    if !stale {
        track.trail.push_back((now, position));
    }
    while track.trail.front().is_some_and(|(t, _)| now - t > TRAIL_S) {
        track.trail.pop_front();
    }
}

/// Flags tips with no sample within the limit on the app's clock; the source's own flag
/// (the tracker said so) stands too.
fn judge_staleness(time: Res<Time>, limit: Res<StaleAfterMs>, mut tips: ResMut<TipState>) {
    let now = now_s(&time);
    for track in tips.tools.values_mut() {
        let stale = track.last.stale || (now - track.received_s) * 1e3 > limit.0;
        if track.stale != stale {
            track.stale = stale;
        }
    }
}

/// Applies a target selection: guidance of every tip is recomputed at once (not at the next
/// sample), and the source is told.
fn select_target(
    mut requests: MessageReader<SelectTarget>,
    mut case: ResMut<CaseState>,
    mut tips: ResMut<TipState>,
    mut changed: MessageWriter<ModelChanged>,
    commands: Option<Res<super::UiCommands>>,
) {
    let Some(SelectTarget(name)) = requests.read().last().cloned() else { return };
    let Some(k) = case.targets.iter().position(|t| t.name == name) else {
        warn!("no target named {name:?}");
        return;
    };
    case.selected = Some(k);
    changed.write(ModelChanged::Targets);
    if let (Some(tree), Some(target)) = (case.tree.as_ref().and_then(|t| t.nav.clone()), case.targets.get(k)) {
        for track in tips.tools.values_mut() {
            track.guidance = guidance_for(&tree, &track.last, target);
        }
    }
    if let Some(tx) = commands {
        // The source may have finished; the selection still holds on screen.
        let _ = tx.0.send(super::UiCommand::SelectTarget(name));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::{Sender, channel};
    use std::time::Duration;

    use bevy::time::TimeUpdateStrategy;
    use device_link::ranking::{RankedSite, SiteRecord};
    use recording::record::{Branch3d, RankingRecord, SnapRecord, TargetRecord, TestResultRecord, TipRecord, Tree3d};

    use super::*;

    /// The model under `MinimalPlugins` with a feed and a manual clock of `step_ms` per update.
    fn app(step_ms: u64) -> (App, Sender<AppMsg>) {
        let (tx, rx) = channel();
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(ModelPlugin)
            .insert_resource(Feed(Mutex::new(rx)))
            .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(step_ms)));
        app.update();
        (app, tx)
    }

    fn tip(at: [f64; 3], snap: Option<(usize, &str, f64)>) -> TipRecord {
        TipRecord {
            tool: "lead-tip".into(),
            t_ms: 0.0,
            tracker_from_sensor: [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
            tip_in_sensor_mm: [0.0; 3],
            tip_in_patient_mm: at,
            stale: false,
            age_ms: 0.0,
            snap: snap.map(|(branch, label, arc_mm)| SnapRecord {
                branch,
                label: label.into(),
                arc_mm,
                off_vessel_mm: 0.0,
            }),
            guidance: None,
            projections_px: Vec::new(),
        }
    }

    /// A CS along +x (0-100 mm) and a PLV leaving it at x = 40 along +y (60 mm).
    fn tree() -> Tree3d {
        let line = |from: [f64; 3], dir: [f64; 3], n: usize| -> Vec<[f64; 3]> {
            (0..=n)
                .map(|k| [from[0] + dir[0] * k as f64, from[1] + dir[1] * k as f64, from[2] + dir[2] * k as f64])
                .collect()
        };
        let cs = line([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], 100);
        let plv = line([40.0, 0.0, 0.0], [0.0, 1.0, 0.0], 60);
        Tree3d {
            source: "test".into(),
            branches: vec![
                Branch3d { parent: None, label: "CS".into(), radius_mm: vec![3.0; cs.len()], points_mm: cs },
                Branch3d { parent: Some(0), label: "PLV".into(), radius_mm: vec![1.5; plv.len()], points_mm: plv },
            ],
        }
    }

    fn target(name: &str, branch: usize, label: &str, arc_mm: f64, at: [f64; 3]) -> TargetRecord {
        TargetRecord { name: name.into(), branch, label: label.into(), arc_mm, position_mm: at }
    }

    #[test]
    fn a_lost_link_is_an_alarm_with_its_reason_until_it_is_back() {
        let (mut app, tx) = app(50);
        tx.send(AppMsg::Link(LinkKind::Device, LinkState::Connected)).unwrap();
        app.update();
        assert_eq!(app.world().resource::<Status>().device, LinkState::Connected);
        tx.send(AppMsg::Link(LinkKind::Device, LinkState::Lost("the device link dropped".into()))).unwrap();
        app.update();
        let status = app.world().resource::<Status>();
        assert_eq!(status.device, LinkState::Lost("the device link dropped".into()));
        assert!(
            status.notes.iter().any(|n| n.contains("Device link LOST: the device link dropped")),
            "{:?}",
            status.notes
        );
        assert_eq!(status.tracker, LinkState::NotUsed, "the other link is untouched");
        tx.send(AppMsg::Link(LinkKind::Device, LinkState::Connected)).unwrap();
        app.update();
        assert_eq!(app.world().resource::<Status>().device, LinkState::Connected);
    }

    #[test]
    fn review_replaces_the_targets_and_keeps_the_selection_by_name() {
        let (mut app, tx) = app(50);
        tx.send(AppMsg::Record(Record::Tree3d(tree()))).unwrap();
        tx.send(AppMsg::Targets(vec![
            target("a", 0, "CS", 10.0, [10.0, 0.0, 0.0]),
            target("b", 1, "PLV", 60.0, [40.0, 20.0, 0.0]),
        ]))
        .unwrap();
        app.update();
        app.world_mut().write_message(SelectTarget("b".into()));
        app.update();
        assert_eq!(app.world().resource::<CaseState>().selected_target().unwrap().name, "b");
        // "a" removed in review: "b" stays selected at its new index.
        tx.send(AppMsg::Targets(vec![target("b", 1, "PLV", 60.0, [40.0, 20.0, 0.0])])).unwrap();
        app.update();
        let case = app.world().resource::<CaseState>();
        assert_eq!((case.targets.len(), case.selected), (1, Some(0)));
        tx.send(AppMsg::Targets(Vec::new())).unwrap();
        app.update();
        assert_eq!(app.world().resource::<CaseState>().selected, None);
    }

    #[test]
    fn a_tip_goes_stale_after_the_limit_and_live_again_with_a_sample() {
        let (mut app, tx) = app(50);
        tx.send(AppMsg::Record(Record::Tip(Box::new(tip([1.0, 2.0, 3.0], None))))).unwrap();
        app.update();
        let state = app.world().resource::<TipState>();
        assert!(!state.tools["lead-tip"].stale, "fresh sample flagged stale");
        // 50 ms per update: after 4 updates the sample is 200 ms old (the limit), after 5 older.
        for _ in 0..3 {
            app.update();
        }
        assert!(!app.world().resource::<TipState>().tools["lead-tip"].stale, "stale before the limit");
        app.update();
        app.update();
        assert!(app.world().resource::<TipState>().tools["lead-tip"].stale, "not stale after 250 ms without a sample");
        tx.send(AppMsg::Record(Record::Tip(Box::new(tip([1.0, 2.0, 3.0], None))))).unwrap();
        app.update();
        assert!(!app.world().resource::<TipState>().tools["lead-tip"].stale, "a new sample did not clear stale");
        // The source's own flag (the tracker said so) is shown at once.
        let mut flagged = tip([1.0, 2.0, 3.0], None);
        flagged.stale = true;
        tx.send(AppMsg::Record(Record::Tip(Box::new(flagged)))).unwrap();
        app.update();
        assert!(app.world().resource::<TipState>().tools["lead-tip"].stale);
    }

    #[test]
    fn a_threshold_result_lands_in_the_device_panel_and_the_site_table() {
        let (mut app, tx) = app(10);
        let result = TestResultRecord {
            site: "PLV@0.50".into(),
            test: "threshold".into(),
            vector: Some("D1-RV coil".into()),
            capture_threshold_volts: Some(1.3),
            phrenic_threshold_volts: None,
            complete: true,
            detail: serde_json::Value::Null,
        };
        tx.send(AppMsg::Record(Record::TestResult(Box::new(result.clone())))).unwrap();
        let site = SiteRecord {
            site: "PLV@0.50".into(),
            vein: Some("PLV".into()),
            arc_mm: Some(80.0),
            apical: false,
            scar: None,
            vectors: Vec::new(),
        };
        tx.send(AppMsg::Record(Record::Site(Box::new(site.clone())))).unwrap();
        let ranked = RankedSite {
            rank: 1,
            site: "PLV@0.50".into(),
            eligible: true,
            best_vector: Some("D1-RV coil".into()),
            score: Some(0.8),
            reasons: vec!["threshold 1.3 V".into()],
        };
        tx.send(AppMsg::Record(Record::Ranking(RankingRecord { sites: vec![ranked.clone()] }))).unwrap();
        app.update();
        assert_eq!(app.world().resource::<DeviceState>().results, vec![result]);
        let table = app.world().resource::<SiteTable>();
        assert_eq!(table.sites, vec![site.clone()]);
        assert_eq!(table.ranking, vec![ranked]);
        // The same site measured again replaces its row.
        let mut again = site;
        again.arc_mm = Some(81.0);
        tx.send(AppMsg::Record(Record::Site(Box::new(again.clone())))).unwrap();
        app.update();
        assert_eq!(app.world().resource::<SiteTable>().sites, vec![again]);
    }

    #[test]
    fn selecting_a_target_updates_guidance_at_once() {
        let (mut app, tx) = app(10);
        tx.send(AppMsg::Record(Record::Tree3d(tree()))).unwrap();
        tx.send(AppMsg::Record(Record::Target(target("CS distal", 0, "CS", 90.0, [90.0, 0.0, 0.0])))).unwrap();
        tx.send(AppMsg::Record(Record::Target(target("PLV mid", 1, "PLV", 70.0, [40.0, 30.0, 0.0])))).unwrap();
        // Tip on the CS at 20 mm.
        tx.send(AppMsg::Record(Record::Tip(Box::new(tip([20.0, 0.0, 0.0], Some((0, "CS", 20.0))))))).unwrap();
        app.update();
        let g = app.world().resource::<TipState>().tools["lead-tip"]
            .guidance
            .clone()
            .expect("guidance to the first target");
        assert_eq!(g.target, "CS distal");
        assert!((g.path_mm - 70.0).abs() < 1.0, "path {}", g.path_mm);
        app.world_mut().write_message(SelectTarget("PLV mid".into()));
        app.update();
        let case = app.world().resource::<CaseState>();
        assert_eq!(case.selected_target().map(|t| t.name.as_str()), Some("PLV mid"));
        let g =
            app.world().resource::<TipState>().tools["lead-tip"].guidance.clone().expect("guidance to the new target");
        assert_eq!(g.target, "PLV mid");
        // 20 mm along the CS to the takeoff at 40, then 30 mm up the PLV.
        assert!((g.path_mm - 50.0).abs() < 1.0, "path {}", g.path_mm);
        let steer = g.steer.expect("a steer direction");
        assert!(steer[0] > 0.9, "steer {steer:?} should point along the CS toward the takeoff");
        // An unknown name changes nothing.
        app.world_mut().write_message(SelectTarget("nowhere".into()));
        app.update();
        assert_eq!(app.world().resource::<CaseState>().selected_target().map(|t| t.name.as_str()), Some("PLV mid"));
    }
}
