//! `csnav replay` and `csnav record-info`: a recording read back. Replay re-drives the
//! navigation panel through csnav's own pipeline (the tree and registration rebuilt from the
//! recording, every tracker sample calibrated, registered, snapped and guided again, and
//! checked against what the live session showed) and the device panel (commands, results,
//! beats, safety events, test results), at real time, faster, or one event at a time, from
//! any point in the procedure.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nalgebra::{Point3, Vector3};
use navigation::guidance::Target;
use navigation::registration::{Registration, register_points};
use navigation::tree::{BranchInput, NavTree, NavTree3};
use recording::Stored;
use recording::record::{TipRecord, Tree3d};
use serde::Serialize;
use venogram::VeinLabel;

use crate::cli::{RecordInfoArgs, ReplayArgs};
use crate::session_record::{TipPipeline, matrix4};

/// A re-driven tip further than this from the recorded one is reported, mm.
const AGREE_MM: f64 = 1e-6;

pub(crate) fn tree_from(record: &Tree3d) -> anyhow::Result<NavTree3> {
    let inputs = record
        .branches
        .iter()
        .map(|b| {
            Ok(BranchInput {
                parent: b.parent,
                label: VeinLabel::from_abbreviation(&b.label)
                    .with_context(|| format!("the recorded tree has an unknown label {:?}", b.label))?,
                points: b.points_mm.iter().map(|p| Vector3::from(*p)).collect(),
                radius: b.radius_mm.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    NavTree::new(inputs, 1.0).context("rebuilding the recorded 3D tree")
}

/// The navigation state rebuilt from the recording.
struct Navigation {
    tree: Option<NavTree3>,
    registration: Option<Registration>,
    pipeline: TipPipeline,
}

/// One line of the replay (the `--json` form).
#[derive(Serialize)]
struct Line {
    t_s: f64,
    panel: &'static str,
    text: String,
}

/// What the replay found.
#[derive(Default, Serialize)]
struct Summary {
    tip_samples: u64,
    tips_differing: u64,
    tips_without_tree: u64,
    device_commands: u64,
    beats: u64,
    test_results: u64,
    notes: u64,
}

fn describe_tip(t: &TipRecord) -> String {
    let place = match &t.snap {
        Some(s) => format!("{:<6} arc {:>6.1} mm  off vessel {:>4.1} mm", s.label, s.arc_mm, s.off_vessel_mm),
        None => "off the tree".to_owned(),
    };
    let target =
        t.guidance.as_ref().map_or(String::new(), |g| format!("  -> {}: {:.1} mm along the tree", g.target, g.path_mm));
    let stale = if t.stale { format!("  STALE ({:.0} ms old)", t.age_ms) } else { String::new() };
    format!("{:<12} {place}{target}{stale}", t.tool)
}

/// A test result as the device panel shows it.
fn describe_result(r: &recording::record::TestResultRecord) -> String {
    let v = |x: Option<f64>| x.map_or_else(|| "none".to_owned(), |v| format!("{v:.2} V"));
    format!(
        "RESULT [{}] {} {}: capture {}, phrenic {}{}",
        r.site,
        r.test,
        r.vector.as_deref().unwrap_or("-"),
        v(r.capture_threshold_volts),
        v(r.phrenic_threshold_volts),
        if r.complete { "" } else { " (INCOMPLETE)" }
    )
}

/// A device event as the device panel shows it (none for programs and EGM).
fn describe_event(event: &device_link::protocol::Event) -> Option<String> {
    match event {
        device_link::protocol::Event::Beat(b) => Some(format!(
            "beat {}: {:.2} V {:.1} ms {:?}{}",
            b.index,
            b.amplitude_volts,
            b.pulse_width_ms,
            b.capture,
            if b.phrenic { " PHRENIC" } else { "" }
        )),
        device_link::protocol::Event::SafePacing { reason, .. } => Some(format!("SAFE PACING: {reason:?}")),
        device_link::protocol::Event::ProgramApplied { .. } | device_link::protocol::Event::Egm(_) => None,
    }
}

/// A ranked site's score or why it is not eligible.
pub(crate) fn describe_rank(r: &device_link::ranking::RankedSite) -> String {
    match r.score {
        Some(score) if r.eligible => {
            format!("score {score:.2}, best vector {}", r.best_vector.as_deref().unwrap_or("-"))
        }
        _ => format!("not eligible: {}", r.reasons.join("; ")),
    }
}

/// How a re-driven tip differs from the recorded one, if it does.
fn difference(recorded: &TipRecord, now: &TipRecord) -> Option<String> {
    let moved = Vector3::from(recorded.tip_in_patient_mm) - Vector3::from(now.tip_in_patient_mm);
    if moved.norm() > AGREE_MM {
        return Some(format!("tip {:.6} mm from the recorded position", moved.norm()));
    }
    match (&recorded.snap, &now.snap) {
        (Some(a), Some(b)) if a.branch != b.branch => Some(format!("snapped to {} (recorded {})", b.label, a.label)),
        (Some(a), Some(b)) if (a.arc_mm - b.arc_mm).abs() > AGREE_MM => {
            Some(format!("arc {:.3} mm (recorded {:.3} mm)", b.arc_mm, a.arc_mm))
        }
        (Some(_), None) => Some("off the tree (recorded on it)".to_owned()),
        (None, Some(b)) => Some(format!("on {} (recorded off the tree)", b.label)),
        _ => None,
    }
}

/// The replay's state: the rebuilt navigation and what was seen.
struct Replayer {
    nav: Navigation,
    summary: Summary,
    last_print: BTreeMap<String, f64>,
    min_interval_s: f64,
}

impl Replayer {
    /// Re-drives a tip sample; the line to show, if any (at the rate limit, and always when
    /// the result differs from the recording).
    fn tip(&mut self, recorded: &TipRecord, t_s: f64) -> Option<String> {
        self.summary.tip_samples += 1;
        let (Some(tree), Some(registration)) = (&self.nav.tree, &self.nav.registration) else {
            self.summary.tips_without_tree += 1;
            return None;
        };
        let matrix = matrix4(&recorded.tracker_from_sensor);
        self.nav.pipeline.calibration.tip_in_sensor_mm = Vector3::from(recorded.tip_in_sensor_mm);
        let now = self.nav.pipeline.process(
            tree,
            registration,
            &recorded.tool,
            recorded.t_ms,
            &matrix,
            recorded.stale,
            recorded.age_ms,
        );
        let differs = difference(recorded, &now);
        if differs.is_some() {
            self.summary.tips_differing += 1;
        }
        let last = self.last_print.entry(recorded.tool.clone()).or_insert(f64::NEG_INFINITY);
        if differs.is_none() && t_s - *last < self.min_interval_s {
            return None;
        }
        *last = t_s;
        let mut text = describe_tip(&now);
        if let Some(d) = differs {
            text.push_str("  DIFFERS FROM THE RECORDING: ");
            text.push_str(&d);
        }
        Some(text)
    }

    /// Re-drives one record; returns the panel lines it makes.
    fn lines(&mut self, record: &Stored, t_s: f64) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut lines: Vec<(&'static str, String)> = Vec::new();
        match record {
            Stored::Session(_) => {}
            Stored::Run(r) => lines.push((
                "venogram",
                format!("run {}: {} ({} frames, {}x{})", r.run, r.source, r.frame_count, r.columns, r.rows),
            )),
            Stored::Tree2d(t) => lines.push((
                "venogram",
                format!(
                    "run {} frame {}: tree of {} branches, {} bifurcations",
                    t.run,
                    t.frame,
                    t.branches.len(),
                    t.bifurcations_px.len()
                ),
            )),
            Stored::Tree3d(t) => {
                let tree = tree_from(t)?;
                lines.push(("navigation", format!("3D tree ({}): {} branches", t.source, t.branches.len())));
                self.nav.tree = Some(tree);
            }
            Stored::Registration(r) => {
                let tracker: Vec<Point3<f64>> = r.fiducials.iter().map(|f| Point3::from(f.in_tracker_mm)).collect();
                let patient: Vec<Point3<f64>> = r.fiducials.iter().map(|f| Point3::from(f.in_patient_mm)).collect();
                let registration =
                    register_points(&tracker, &patient).context("re-registering the recorded fiducials")?;
                let agree = (registration.fre_rms_mm - r.fre_rms_mm).abs() < 1e-9;
                lines.push((
                    "navigation",
                    format!(
                        "registration: {} fiducials, FRE {:.2} mm RMS{}",
                        r.fiducials.len(),
                        registration.fre_rms_mm,
                        if agree { String::new() } else { format!(" (recorded {:.2} mm: DIFFERS)", r.fre_rms_mm) }
                    ),
                ));
                self.nav.registration = Some(registration);
            }
            Stored::Target(t) => {
                self.nav.pipeline.target = Some(Target { name: t.name.clone(), branch: t.branch, arc_mm: t.arc_mm });
                lines.push((
                    "navigation",
                    format!("target \"{}\": {} at {:.1} mm from the ostium", t.name, t.label, t.arc_mm),
                ));
            }
            Stored::Tip(recorded) => {
                if let Some(text) = self.tip(recorded, t_s) {
                    lines.push(("navigation", text));
                }
            }
            Stored::DeviceCommand(c) => {
                self.summary.device_commands += 1;
                let result = match &c.result {
                    Ok(r) => serde_json::to_string(r)?,
                    Err(e) => format!("REFUSED: {e}"),
                };
                lines.push((
                    "device",
                    format!(
                        "[{}] {} -> {result}",
                        c.site.as_deref().unwrap_or("-"),
                        serde_json::to_string(&c.command)?
                    ),
                ));
            }
            Stored::DeviceEvent(e) => {
                if matches!(e.event, device_link::protocol::Event::Beat(_)) {
                    self.summary.beats += 1;
                }
                lines.extend(describe_event(&e.event).map(|text| ("device", text)));
            }
            Stored::TestResult(r) => {
                self.summary.test_results += 1;
                lines.push(("device", describe_result(r)));
            }
            Stored::Site(site) => lines.push((
                "device",
                format!(
                    "SITE [{}]: {} vectors tested{}",
                    site.site,
                    site.vectors.len(),
                    site.vein.as_ref().map_or_else(String::new, |v| format!(" in the {v}"))
                ),
            )),
            Stored::Ranking(ranking) => {
                for r in &ranking.sites {
                    lines.push(("device", format!("RANK {}. {}: {}", r.rank, r.site, describe_rank(r))));
                }
            }
            Stored::Note(n) => {
                self.summary.notes += 1;
                lines.push(("notes", format!("{:?} [{}] {}", n.level, n.topic, n.text)));
            }
        }
        Ok(lines)
    }
}

/// Says which recording is replayed (who made it, the case, simulator or not) and whether it
/// was cut short.
pub(crate) fn announce(file: &std::path::Path, contents: &recording::Contents) -> anyhow::Result<()> {
    let session = contents.session.as_ref().context("the recording has no session")?;
    eprintln!(
        "replaying {} ({}, `{}`, case {}){}",
        file.display(),
        session.software,
        session.command,
        session.case_pseudonym,
        if matches!(session.mode, recording::SessionMode::Simulator) { "; SIMULATOR session" } else { "" }
    );
    if !contents.finished {
        eprintln!("note: the recording was cut short (the session did not close it); replaying up to its last flush");
    }
    Ok(())
}

/// Runs `csnav replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        anyhow::bail!("--speed {} must be 0 (as fast as possible) or more", args.speed);
    }
    let contents = recording::read(&args.file)?;
    announce(&args.file, &contents)?;
    let t0 = contents.records.iter().map(|r| r.wall_ns).filter(|t| *t > 0).min().unwrap_or(0);
    let mut replayer = Replayer {
        nav: Navigation { tree: None, registration: None, pipeline: TipPipeline::new(None) },
        summary: Summary::default(),
        last_print: BTreeMap::new(),
        min_interval_s: if args.max_rate_hz > 0.0 { 1.0 / args.max_rate_hz } else { 0.0 },
    };
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut stdin = std::io::stdin().lock();
    for timed in &contents.records {
        let t_s = if timed.wall_ns > 0 { (timed.wall_ns - t0) as f64 / 1e9 } else { 0.0 };
        let shown = t_s >= args.seek_s;
        let lines = replayer.lines(&timed.record, t_s)?;
        if !shown || lines.is_empty() {
            continue;
        }
        if args.step {
            eprint!("[Enter: next] ");
            let mut buf = String::new();
            if stdin.read_line(&mut buf)? == 0 {
                break;
            }
        } else if args.speed > 0.0 {
            let due = Duration::from_secs_f64(((t_s - args.seek_s) / args.speed).max(0.0));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        for (panel, text) in lines {
            if args.json {
                serde_json::to_writer(&mut out, &Line { t_s, panel, text })?;
                writeln!(out)?;
            } else {
                writeln!(out, "{t_s:>9.3} s  {panel:<10} {text}")?;
            }
        }
        out.flush()?;
    }
    let summary = replayer.summary;
    eprintln!(
        "replayed {} tip samples ({} differ from the recording{}), {} device commands, {} beats, {} test results",
        summary.tip_samples,
        summary.tips_differing,
        if summary.tips_without_tree > 0 {
            format!("; {} before a tree and registration", summary.tips_without_tree)
        } else {
            String::new()
        },
        summary.device_commands,
        summary.beats,
        summary.test_results
    );
    if summary.tips_differing > 0 {
        eprintln!(
            "WARNING: this csnav computes {} tip positions differently from the recording's",
            summary.tips_differing
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The `record-info` summary.
#[derive(Serialize)]
struct Info {
    file: String,
    file_bytes: u64,
    software: String,
    mode: recording::SessionMode,
    simulator: bool,
    case: String,
    command: String,
    started_unix_ms: i64,
    duration_s: f64,
    finished: bool,
    trailing_bytes: u64,
    chunks: u64,
    frames_per_run: BTreeMap<u32, u64>,
    tip_samples_per_tool: BTreeMap<String, u64>,
    tree_branches_per_run: BTreeMap<u32, usize>,
    tree3d_branches: Option<usize>,
    targets: usize,
    device_commands: usize,
    beats: usize,
    egm_samples: BTreeMap<String, usize>,
    thresholds: Vec<(String, Option<String>, Option<f64>)>,
    notes: usize,
    entities: BTreeMap<String, u64>,
}

/// Runs `csnav record-info`.
pub fn info(args: &RecordInfoArgs) -> anyhow::Result<ExitCode> {
    let c = recording::read(&args.file)?;
    let s = c.session.as_ref().context("the recording has no session")?;
    let mut tips: BTreeMap<String, u64> = BTreeMap::new();
    let mut trees: BTreeMap<u32, usize> = BTreeMap::new();
    let (mut tree3d, mut targets, mut commands, mut beats, mut notes) = (None, 0, 0, 0, 0);
    let mut thresholds = Vec::new();
    for t in &c.records {
        match &t.record {
            Stored::Tip(tip) => *tips.entry(tip.tool.clone()).or_default() += 1,
            Stored::Tree2d(tree) => {
                trees.insert(tree.run, tree.branches.len());
            }
            Stored::Tree3d(tree) => tree3d = Some(tree.branches.len()),
            Stored::Target(_) => targets += 1,
            Stored::DeviceCommand(_) => commands += 1,
            Stored::DeviceEvent(e) if matches!(e.event, device_link::protocol::Event::Beat(_)) => beats += 1,
            Stored::TestResult(r) => thresholds.push((r.site.clone(), r.vector.clone(), r.capture_threshold_volts)),
            Stored::Note(_) => notes += 1,
            _ => {}
        }
    }
    let info = Info {
        file: args.file.display().to_string(),
        file_bytes: c.file_bytes,
        software: s.software.clone(),
        mode: s.mode,
        simulator: matches!(s.mode, recording::SessionMode::Simulator),
        case: s.case_pseudonym.clone(),
        command: s.command.clone(),
        started_unix_ms: s.started_unix_ms,
        duration_s: c.duration_s(),
        finished: c.finished,
        trailing_bytes: c.trailing_bytes,
        chunks: c.chunks,
        frames_per_run: c.frames.clone(),
        tip_samples_per_tool: tips,
        tree_branches_per_run: trees,
        tree3d_branches: tree3d,
        targets,
        device_commands: commands,
        beats,
        egm_samples: c.egm.iter().map(|(k, v)| (k.clone(), v.len())).collect(),
        thresholds,
        notes,
        entities: c.rows_per_entity.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("recording  {} ({:.1} MB, {} chunks)", info.file, info.file_bytes as f64 / 1e6, info.chunks);
    println!(
        "made by    {} `{}`{}",
        info.software,
        info.command,
        if info.simulator { "  [SIMULATOR: synthetic patient]" } else { "" }
    );
    println!("case       {} (pseudonym)", info.case);
    println!("duration   {:.1} s", info.duration_s);
    println!(
        "state      {}",
        if info.finished {
            "finished (closed by the recorder)".to_owned()
        } else {
            format!("CUT SHORT: readable up to its last flush ({} bytes after it)", info.trailing_bytes)
        }
    );
    for (run, frames) in &info.frames_per_run {
        println!(
            "run {run:<6} {frames} frames, tree of {} branches",
            info.tree_branches_per_run.get(run).copied().unwrap_or(0)
        );
    }
    if let Some(n) = info.tree3d_branches {
        println!("3D tree    {n} branches");
    }
    for (tool, n) in &info.tip_samples_per_tool {
        println!("tool       {tool}: {n} tip samples");
    }
    println!("device     {} commands, {} beats, {} targets", info.device_commands, info.beats, info.targets);
    for (channel, n) in &info.egm_samples {
        println!("EGM        {channel}: {n} samples");
    }
    for (site, vector, volts) in &info.thresholds {
        println!(
            "threshold  {site} {}: {}",
            vector.as_deref().unwrap_or("-"),
            volts.map_or_else(|| "none".to_owned(), |v| format!("{v:.2} V"))
        );
    }
    println!("entities   {}", info.entities.len());
    for (entity, rows) in &info.entities {
        println!("  {entity:<48} {rows:>8} rows");
    }
    Ok(ExitCode::SUCCESS)
}
