//! `csnav replay FILE.rrd` in the app: the recording read back with its cine frames and
//! played into the app as the session showed it (the runs with their segmented trees and
//! cameras, the 3D tree, targets, every tip sample, device events, electrograms, results,
//! sites and ranking), paced by the recorded wall time at 1x, faster, or as fast as possible,
//! from any point. Links show as *recorded*: nothing in a replay is live, and when the
//! recording ends its tips turn stale as they would in a live session that went quiet.
//!
//! The console replay (`--text`, `--json`, `--step`) re-drives every tip through csnav's
//! pipeline and checks it against the recording; the app shows the recorded tips.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use device_link::protocol::EgmChunk;
use nalgebra::{Matrix3, Point3};
use recording::Stored;
use recording::record::{Record, RunInfo, Segmentation2d};
use venogram::geometry::CArmProjection;

use crate::app::{self, AppMsg, AppOptions, LinkKind, LinkState, Mode};
use crate::case_runs::{LoadedRun, percentile_window};
use crate::cli::ReplayArgs;

/// Electrogram samples per message to the app (50 ms at 500 Hz).
const EGM_BATCH: usize = 25;

/// A message to the app at a recorded time.
struct Timed {
    wall_ns: i64,
    msg: AppMsg,
}

/// The run's projection from its recorded camera, when the camera and its distance are there.
fn projection_of(info: &RunInfo) -> Option<CArmProjection> {
    let camera = info.camera.as_ref()?;
    let m = |rows: &[[f64; 3]; 3]| Matrix3::from_fn(|r, c| rows[r][c]);
    CArmProjection::from_pinhole(
        m(&camera.intrinsics),
        m(&camera.view_from_patient_rotation),
        Point3::from(camera.source_in_patient_mm),
        camera.distance_source_to_detector_mm?,
    )
    .map_err(|e| tracing::warn!("run {}: the recorded camera is unusable ({e}); no 3D overlay", info.run))
    .ok()
}

/// A run rebuilt from its description, its tree and its frames' pixels.
fn rebuild_run(
    info: &RunInfo,
    tree: Option<&Segmentation2d>,
    frames: &[recording::RecordedFrame],
) -> anyhow::Result<LoadedRun> {
    let n = info.rows as usize * info.columns as usize;
    anyhow::ensure!(n > 0, "run {} is {}x{}: no pixels", info.run, info.columns, info.rows);
    let mut samples = Vec::with_capacity(frames.len() * n);
    for f in frames {
        if f.bytes.len() == n * 2 {
            samples.extend(f.bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])));
        } else if f.bytes.len() == n {
            samples.extend(f.bytes.iter().map(|b| u16::from(*b)));
        } else {
            anyhow::bail!(
                "run {} frame {} has {} bytes; a {}x{} frame has {n} or {}",
                info.run,
                f.index,
                f.bytes.len(),
                info.columns,
                info.rows,
                n * 2
            );
        }
    }
    let frame_count = (samples.len() / n) as u32;
    anyhow::ensure!(frame_count > 0, "run {} has no frames in the recording", info.run);
    let tree = tree.cloned().unwrap_or_else(|| Segmentation2d {
        run: info.run,
        frame: 0,
        branches: Vec::new(),
        bifurcations_px: Vec::new(),
        root_px: None,
        empty_reason: Some("no tree in the recording".into()),
    });
    let segmented_frame = tree.frame.min(frame_count - 1);
    let start = segmented_frame as usize * n;
    let window = percentile_window(&samples[start..start + n]);
    let info = RunInfo { frame_count, ..info.clone() };
    Ok(LoadedRun { projection: projection_of(&info), info, segmented_frame, tree, mask: None, samples, window })
}

/// Electrogram stretches rebuilt from the recorded LV tip samples (the strip shows that channel).
fn egm_messages(samples: &[recording::reader::EgmSample]) -> Vec<Timed> {
    let mut steps: Vec<i64> = samples.windows(2).map(|w| w[1].0 - w[0].0).filter(|d| *d > 0).collect();
    if steps.is_empty() {
        return Vec::new();
    }
    steps.sort_unstable();
    let rate_hz = 1e9 / steps[steps.len() / 2] as f64;
    samples
        .chunks(EGM_BATCH)
        .map(|batch| {
            let lv_tip_mv: Vec<f32> = batch.iter().map(|s| s.1 as f32).collect();
            let chunk = EgmChunk {
                t_ms: 0.0,
                sample_rate_hz: rate_hz,
                lv_ring_mv: vec![0.0; lv_tip_mv.len()],
                ecg_mv: vec![0.0; lv_tip_mv.len()],
                lv_tip_mv,
            };
            Timed { wall_ns: batch[batch.len() - 1].0, msg: AppMsg::Record(Record::Egm(chunk)) }
        })
        .collect()
}

/// A stored record as the app takes it (runs and trees go ahead of time as whole runs).
fn message_of(stored: &Stored) -> Vec<AppMsg> {
    let record = match stored {
        Stored::Session(_) | Stored::Run(_) | Stored::Tree2d(_) => return Vec::new(),
        Stored::Tree3d(t) => Record::Tree3d(t.clone()),
        Stored::Registration(r) => Record::Registration(r.clone()),
        Stored::Target(t) => Record::Target(t.clone()),
        Stored::Tip(t) => Record::Tip(Box::new(t.clone())),
        Stored::DeviceCommand(c) => Record::DeviceCommand(Box::new(c.clone())),
        Stored::DeviceEvent(e) => Record::DeviceEvent(Box::new(e.clone())),
        Stored::TestResult(r) => Record::TestResult(Box::new(r.clone())),
        Stored::Site(s) => Record::Site(Box::new(s.clone())),
        Stored::Ranking(r) => Record::Ranking(r.clone()),
        Stored::Note(n) if n.topic == "procedure" => {
            return vec![AppMsg::Step(n.text.clone()), AppMsg::Record(Record::Note(n.clone()))];
        }
        Stored::Note(n) => Record::Note(n.clone()),
    };
    vec![AppMsg::Record(record)]
}

/// What is played: the runs up front, then everything else in recorded time order.
struct Playlist {
    runs: Vec<Arc<LoadedRun>>,
    timeline: Vec<Timed>,
    t0_ns: i64,
    tip_samples: usize,
}

fn playlist(file: &Path) -> anyhow::Result<Playlist> {
    let contents = recording::read_with_frames(file)?;
    crate::replay::announce(file, &contents)?;
    let mut trees: BTreeMap<u32, &Segmentation2d> = BTreeMap::new();
    let mut infos: Vec<&RunInfo> = Vec::new();
    for t in &contents.records {
        match &t.record {
            Stored::Run(info) => infos.push(info),
            Stored::Tree2d(tree) => {
                trees.entry(tree.run).or_insert(tree);
            }
            _ => {}
        }
    }
    infos.sort_by_key(|i| i.run);
    let mut runs = Vec::new();
    for info in infos {
        let frames = contents.frame_pixels.get(&info.run).map_or(&[][..], Vec::as_slice);
        match rebuild_run(info, trees.get(&info.run).copied(), frames) {
            Ok(run) => runs.push(Arc::new(run)),
            Err(e) => eprintln!("warning: run {} ({}) is not shown: {e:#}", info.run, info.source),
        }
    }
    let mut timeline: Vec<Timed> = Vec::new();
    let mut tip_samples = 0;
    for t in &contents.records {
        tip_samples += usize::from(matches!(t.record, Stored::Tip(_)));
        timeline.extend(message_of(&t.record).into_iter().map(|msg| Timed { wall_ns: t.wall_ns, msg }));
    }
    if let Some(samples) = contents.egm.get("lv_tip_mv") {
        timeline.extend(egm_messages(samples));
    }
    // Stable: records keep their file order at equal times.
    timeline.sort_by_key(|t| t.wall_ns);
    let t0_ns = contents.time_range_ns.map_or(0, |r| r.0);
    Ok(Playlist { runs, timeline, t0_ns, tip_samples })
}

/// Plays the timeline into the app, paced; stops early when the app has gone.
fn play(list: Playlist, speed: f64, seek_s: f64, tx: &Sender<AppMsg>) {
    let send = |msg: AppMsg| tx.send(msg).is_ok();
    let _ = send(AppMsg::Link(LinkKind::Tracker, LinkState::Recorded));
    let _ = send(AppMsg::Link(LinkKind::Device, LinkState::Recorded));
    for run in list.runs {
        let projection = run.projection.clone();
        if !send(AppMsg::Run(run, projection)) {
            return;
        }
    }
    let started = Instant::now();
    for timed in list.timeline {
        let t_s = (timed.wall_ns - list.t0_ns).max(0) as f64 / 1e9;
        if speed > 0.0 && t_s > seek_s {
            let due = Duration::from_secs_f64((t_s - seek_s) / speed);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if !send(timed.msg) {
            return;
        }
    }
    let _ = send(AppMsg::Step("end of the recording".into()));
    let _ = send(AppMsg::Finished);
}

/// Runs `csnav replay` in the app (windowed, or offscreen with `--headless`).
pub fn run(args: &ReplayArgs, headless: bool) -> anyhow::Result<ExitCode> {
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        anyhow::bail!("--speed {} must be 0 (as fast as possible) or more", args.speed);
    }
    let list = playlist(&args.file)?;
    let runs = list.runs.len();
    let (events, tips) = (list.timeline.len(), list.tip_samples);
    if headless {
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    }
    let (speed, seek_s) = (args.speed, args.seek_s);
    let options = AppOptions {
        mode: Mode::Replay,
        case_name: app::shown_name(&args.file),
        offscreen: headless,
        screenshots: (headless || args.screenshot).then(|| args.out.clone()),
        size_px: args.size,
        bench: None,
    };
    let (exit, ()) = app::run_with_source(options, "replay", move |feed, _| {
        play(list, speed, seek_s, feed);
        Ok(())
    })?;
    println!("replayed {runs} runs, {tips} tip samples, {events} events");
    Ok(app::exit_code(&exit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use recording::RecordedFrame;

    fn info(rows: u32, columns: u32) -> RunInfo {
        RunInfo {
            run: 1,
            source: "run.dcm".into(),
            rows,
            columns,
            frame_count: 9,
            bits_stored: 12,
            frame_time_ms: Some(66.7),
            primary_angle_deg: None,
            secondary_angle_deg: None,
            camera: None,
        }
    }

    #[test]
    fn a_run_is_rebuilt_from_16_and_8_bit_frames_and_bad_sizes_are_named() {
        let sixteen: Vec<u8> = (0u16..6).flat_map(|v| (v * 1000).to_le_bytes()).collect();
        let frames = [
            RecordedFrame { index: 0, wall_ns: 1, bytes: sixteen.clone() },
            RecordedFrame { index: 1, wall_ns: 2, bytes: sixteen },
        ];
        let run = rebuild_run(&info(2, 3), None, &frames).unwrap();
        assert_eq!(run.info.frame_count, 2, "the frame count is what the recording holds");
        assert_eq!(&run.samples[..6], &[0, 1000, 2000, 3000, 4000, 5000]);
        assert!(run.tree.branches.is_empty() && run.tree.empty_reason.is_some());
        let eight = [RecordedFrame { index: 0, wall_ns: 1, bytes: vec![7; 6] }];
        assert_eq!(rebuild_run(&info(2, 3), None, &eight).unwrap().samples, vec![7; 6]);
        let bad = [RecordedFrame { index: 4, wall_ns: 1, bytes: vec![0; 5] }];
        let e = rebuild_run(&info(2, 3), None, &bad).unwrap_err().to_string();
        assert!(e.contains("frame 4 has 5 bytes"), "{e}");
        assert!(rebuild_run(&info(2, 3), None, &[]).is_err(), "a run with no frames is not shown");
    }

    #[test]
    fn electrograms_are_batched_at_their_recorded_rate() {
        let samples: Vec<(i64, f64)> = (0..100).map(|k| (1_000_000_000 + k * 2_000_000, k as f64)).collect();
        let messages = egm_messages(&samples);
        assert_eq!(messages.len(), 4);
        let AppMsg::Record(Record::Egm(chunk)) = &messages[1].msg else { panic!("not an EGM message") };
        assert!((chunk.sample_rate_hz - 500.0).abs() < 1e-9, "{}", chunk.sample_rate_hz);
        assert_eq!(chunk.lv_tip_mv.len(), EGM_BATCH);
        assert!((chunk.lv_tip_mv[0] - 25.0).abs() < 1e-6);
        assert_eq!(messages[1].wall_ns, samples[49].0, "a batch is due when its last sample was");
        assert!(egm_messages(&samples[..1]).is_empty());
    }
}
