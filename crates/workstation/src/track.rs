//! `csnav track`: live tip state from an OpenIGTLink tracker (or a recorded stream): each
//! tool's tip through the registration into patient space, snapped to the case's tree
//! (branch, arc length from the ostium, distance outside the vessel), with the path to the
//! target and the steering direction; stale tips flagged, never shown as current.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nalgebra::Point3;
use navigation::guidance::Target;
use navigation::igtl::Decoder;
use navigation::link::{Hub, LinkConfig, bind, connect, serve};
use navigation::tracking::{LatestSamples, ToolState};
use serde::Serialize;

use crate::cli::TrackArgs;
use crate::nav_case::NavCase;
use crate::session_record::{self, TipPipeline};
use recording::record::{Level, NoteRecord, Record};
use recording::{RecordSender, Recorder, SessionMode};

/// One printed update (the `--json` line).
#[derive(Debug, Serialize)]
struct TipUpdate<'a> {
    tool: &'a str,
    t_ms: f64,
    tip_in_patient_mm: [f64; 3],
    branch: Option<String>,
    arc_mm: Option<f64>,
    off_vessel_mm: Option<f64>,
    stale: bool,
    target: Option<TargetUpdate>,
}

/// Guidance to the target in an update.
#[derive(Debug, Serialize)]
struct TargetUpdate {
    name: String,
    path_mm: f64,
    field_dir: Option<[f64; 3]>,
}

/// What was last printed for a tool.
struct Printed {
    received_ms: f64,
    shown_at_ms: f64,
    stale: bool,
}

/// Turns tool states into printed updates.
struct TrackView {
    case: Arc<NavCase>,
    recording: Option<RecordSender>,
    /// Calibration, snap (per-tool hysteresis) and guidance: the recording's pipeline.
    pipeline: TipPipeline,
    printed: HashMap<String, Printed>,
    json: bool,
    min_interval_ms: f64,
    stale_after_ms: f64,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl TrackView {
    /// Prints what changed: new samples (at most at the rate limit) and stale transitions.
    fn show(&mut self, states: &[ToolState], now_ms: f64, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        for state in states {
            let tool = state.sample.tool.as_str();
            let changed = match self.printed.get(tool) {
                None => true,
                Some(p) if p.stale != state.stale => true,
                Some(p) => state.sample.received_ms > p.received_ms && now_ms - p.shown_at_ms >= self.min_interval_ms,
            };
            if !changed {
                continue;
            }
            let was_stale = self.printed.get(tool).map(|p| p.stale);
            if let Some(rec) = &self.recording
                && was_stale.is_some_and(|s| s != state.stale)
            {
                let text = if state.stale {
                    format!("{tool}: STALE (last sample {:.0} ms old)", state.age_ms)
                } else {
                    format!("{tool}: tracking again")
                };
                let level = if state.stale { Level::Warn } else { Level::Info };
                rec.send(Record::Note(NoteRecord { topic: "navigation".into(), level, text }));
            }
            self.printed.insert(
                tool.to_owned(),
                Printed { received_ms: state.sample.received_ms, shown_at_ms: now_ms, stale: state.stale },
            );
            let tip = self.pipeline.process(
                &self.case.tree,
                &self.case.registration,
                tool,
                now_ms,
                &state.sample.tracker_from_sensor,
                state.stale,
                state.age_ms,
            );
            let [x, y, z] = tip.tip_in_patient_mm;
            let update = TipUpdate {
                tool,
                t_ms: round3(now_ms),
                tip_in_patient_mm: [round3(x), round3(y), round3(z)],
                branch: tip.snap.as_ref().map(|s| s.label.clone()),
                arc_mm: tip.snap.as_ref().map(|s| round3(s.arc_mm)),
                off_vessel_mm: tip.snap.as_ref().map(|s| round3(s.off_vessel_mm)),
                stale: state.stale,
                target: tip.guidance.map(|g| TargetUpdate {
                    name: g.target,
                    path_mm: round3(g.path_mm),
                    field_dir: g.steer_direction.map(|d| d.map(round3)),
                }),
            };
            self.print(&update, state.age_ms, out)?;
        }
        Ok(())
    }

    fn print(&self, u: &TipUpdate<'_>, age_ms: f64, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        if self.json {
            serde_json::to_writer(&mut *out, u)?;
            writeln!(out)?;
        } else {
            let place = match (u.branch.as_deref(), u.arc_mm, u.off_vessel_mm) {
                (Some(b), Some(a), Some(o)) => format!("{b:<6} arc {a:>6.1} mm  off vessel {o:>4.1} mm"),
                _ => "off the tree".to_owned(),
            };
            let target = u
                .target
                .as_ref()
                .map_or(String::new(), |t| format!("  -> {}: {:.1} mm along the tree", t.name, t.path_mm));
            let stale = if u.stale { format!("  STALE ({age_ms:.0} ms old)") } else { String::new() };
            writeln!(out, "{:>9.0} ms  {:<12} {place}{target}{stale}", u.t_ms, u.tool)?;
        }
        out.flush()?;
        Ok(())
    }
}

/// Runs `csnav track`.
pub fn run(args: &TrackArgs) -> anyhow::Result<ExitCode> {
    let case = NavCase::load(&args.case)?;
    let sites = args.targets.iter().map(|spec| case.parse_target(spec)).collect::<anyhow::Result<Vec<_>>>()?;
    for (k, site) in sites.iter().enumerate().skip(1) {
        eprintln!(
            "candidate site {}: \"{}\" on {} at {:.1} mm from the ostium",
            k + 1,
            site.name,
            case.tree.branches[site.branch].label,
            site.arc_mm
        );
    }
    let target = sites.into_iter().next().or_else(|| case.default_target());
    let reg = &case.registration;
    eprintln!(
        "registration: {} fiducials, FRE {:.2} mm RMS (worst {:.2} mm){}",
        reg.fiducial_count(),
        reg.fre_rms_mm,
        reg.residuals_mm.iter().copied().fold(0.0, f64::max),
        target.as_ref().map_or(String::new(), |t| {
            let at = case.tree.point_at(t.branch, t.arc_mm).map_or(Point3::origin(), Point3::from);
            format!("; predicted TRE at target \"{}\" {:.2} mm", t.name, reg.predicted_tre_mm(&at))
        })
    );
    // Live sessions record by default; a replayed capture only when a file is named.
    let recorder = if args.replay.is_some() && args.record.record.is_none() {
        None
    } else {
        let config = serde_json::json!({
            "listen": args.listen, "connect": args.connect, "replay": args.replay, "targets": args.targets,
            "stale_ms": args.stale_ms,
        });
        session_record::open(&args.record, "track", &args.case, SessionMode::Simulator, config)?
    };
    let rec = recorder.as_ref().map(Recorder::sender);
    if let Some(rec) = &rec {
        rec.send(Record::Tree3d(session_record::tree3d(&case, "simulator truth")));
        rec.send(Record::Registration(session_record::registration(&case)));
        if let Some(t) = &target {
            rec.send(Record::Target(session_record::target(&case, t)));
        }
    }
    let case = Arc::new(case);
    let view = TrackView {
        case,
        recording: rec,
        pipeline: TipPipeline::new(target),
        printed: HashMap::new(),
        json: args.json,
        min_interval_ms: if args.max_rate_hz > 0.0 { 1000.0 / args.max_rate_hz } else { 0.0 },
        stale_after_ms: args.stale_ms,
    };
    let code = match &args.replay {
        Some(file) => replay(file, args.speed, view),
        None => live(args, view),
    };
    // What was recorded stays recorded whatever happened to the session.
    session_record::finish(recorder)?;
    code
}

/// Records every sample (the display shows only the latest): through the same pipeline.
fn record_tap(case: Arc<NavCase>, target: Option<Target>, rec: RecordSender) -> navigation::link::SampleTap {
    let mut pipeline = TipPipeline::new(target);
    Box::new(move |sample| {
        rec.send(Record::Tip(Box::new(pipeline.process_sample(&case, sample))));
    })
}

/// A tool is stale strictly after its limit: checked this long after it.
const STALE_EPSILON_MS: f64 = 0.001;

/// Replays a recorded OpenIGTLink stream (the bytes as sent), paced by its time stamps.
fn replay(file: &Path, speed: f64, mut view: TrackView) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading the recorded stream {}", file.display()))?;
    let mut decoder = Decoder::default();
    decoder.feed(&bytes);
    let mut samples = LatestSamples::default();
    let mut tap = view.recording.clone().map(|rec| record_tap(view.case.clone(), view.pipeline.target.clone(), rec));
    let mut first: Option<f64> = None;
    let mut last_ms = 0.0;
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let message = match decoder.next_message() {
            Ok(None) => break,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(rejected))) => {
                tracing::warn!("recorded stream: {rejected}");
                continue;
            }
            Err(e) => {
                anyhow::bail!(
                    "recorded stream {} cannot be read past byte {}: {e}",
                    file.display(),
                    bytes.len() - decoder.buffered()
                )
            }
        };
        let stamp = message.timestamp.as_secs_f64() * 1e3;
        let t_ms = if message.timestamp.seconds == 0 && message.timestamp.fraction == 0 {
            last_ms
        } else {
            stamp - *first.get_or_insert(stamp)
        };
        let pace = |at_ms: f64| {
            if speed > 0.0 {
                let due = Duration::from_secs_f64((at_ms / speed / 1e3).max(0.0));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        };
        // Tools that go quiet during the gap turn stale when their limit passes, not when
        // the next message lands.
        let mut shown_ms = last_ms;
        while let Some(due) = samples.next_stale_ms(shown_ms, view.stale_after_ms).filter(|d| *d < t_ms) {
            let at = due + STALE_EPSILON_MS;
            pace(at);
            let states = samples.states(at, view.stale_after_ms);
            view.show(&states, at, &mut out)?;
            shown_ms = at;
        }
        pace(t_ms);
        match tap.as_mut() {
            Some(tap) => samples.ingest_with(&message, t_ms, |s| tap(s)),
            None => samples.ingest(&message, t_ms),
        };
        let states = samples.states(t_ms, view.stale_after_ms);
        view.show(&states, t_ms, &mut out)?;
        last_ms = t_ms;
    }
    if decoder.buffered() > 0 {
        tracing::warn!("recorded stream ends {} bytes into a message", decoder.buffered());
    }
    eprintln!("replayed {} samples of {} tools", samples.received, samples.tool_count());
    Ok(ExitCode::SUCCESS)
}

/// Serves OpenIGTLink and prints updates until Ctrl-C or the duration.
fn live(args: &TrackArgs, mut view: TrackView) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("csnav-track")
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    runtime.block_on(async move {
        let (hub, mut inbox) = Hub::new(64);
        if let Some(rec) = view.recording.clone() {
            hub.set_sample_tap(record_tap(view.case.clone(), view.pipeline.target.clone(), rec));
        }
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let server = if let Some(tracker) = &args.connect {
            eprintln!("connecting to the OpenIGTLink tracker at {tracker} (research software, not a medical device)");
            tokio::spawn(connect(tracker.clone(), hub.clone(), LinkConfig::tracking_client(), shutdown))
        } else {
            let listener = bind(&args.listen).await?;
            let addr = listener.local_addr().context("reading the bound address")?;
            eprintln!("listening for OpenIGTLink on {addr} (research software, not a medical device)");
            tokio::spawn(serve(listener, hub.clone(), LinkConfig::default(), shutdown))
        };
        let mut updates = hub.subscribe();
        let mut tick = tokio::time::interval(Duration::from_secs_f64((view.stale_after_ms / 4.0).max(5.0) / 1e3));
        let deadline = args.duration_s.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until_deadline);
        let stdout = std::io::stdout();
        loop {
            tokio::select! {
                _ = updates.changed() => {}
                _ = tick.tick() => {}
                Some((peer, message)) = inbox.recv() => {
                    tracing::info!(%peer, "{} from {}", message.body.type_name(), message.device_name);
                }
                () = &mut until_deadline => break,
                _ = tokio::signal::ctrl_c() => break,
            }
            let now = hub.now_ms();
            let states = hub.samples().states(now, view.stale_after_ms);
            view.show(&states, now, &mut stdout.lock())?;
        }
        let _ = stop.send(true);
        let _ = server.await;
        let c = hub.counters();
        eprintln!(
            "tracking ended: {} messages, {} rejected, {} connections dropped for bad input",
            c.messages, c.rejected, c.dropped_connections
        );
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
