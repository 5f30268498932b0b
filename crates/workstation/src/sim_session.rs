//! `csnav sim-session`: a scripted session on the synthetic patient, recorded like a live
//! one. The case's venogram runs are read, segmented and recorded with their C-arm cameras;
//! the 3D tree, the registration and the target are recorded; a tracked tip advances along
//! the tree to the target at the tracker's rate through csnav's navigation pipeline; and at
//! the target an in-process device model runs an LV capture-threshold test over the real
//! device link. It prints what it sent, so that a reader of the recording can check it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use device_link::client::DeviceClient;
use device_link::lead::LeadModel;
use device_link::log::Journal;
use device_link::procedures::{StepDownConfig, Stepped, ThresholdOutcome};
use device_link::protocol::{Command, Role};
use device_link::runner::{Run, Session};
use device_link::server::{ServerConfig, serve};
use nalgebra::Vector3;
use recording::record::{Record, TestResultRecord};
use recording::{RecordSender, SessionMode};
use serde::Serialize;
use simulator::rng::SimRng;

use crate::case_runs;
use crate::cli::SimSessionArgs;
use crate::nav_case::NavCase;
use crate::session_record::{self, TipPipeline};

/// Random stream of the simulated tracker's noise.
const TIP_STREAM: u64 = 0x7369_6d74;

/// What the session sent to its recording (printed as JSON for the tests).
#[derive(Debug, Default, Serialize)]
struct Sent {
    recording: Option<PathBuf>,
    runs: Vec<SentRun>,
    tree3d_branches: usize,
    targets: usize,
    tip_samples: u64,
    device_commands: u64,
    beats: u64,
    egm_samples: u64,
    capture_threshold_volts: Option<f64>,
}

#[derive(Debug, Serialize)]
struct SentRun {
    run: u32,
    source: String,
    frames: u32,
    segmented_frame: u32,
    tree_branches: usize,
}

/// Counts what a test session journals (and passes it on to the recording).
struct Counting {
    inner: Option<RecordSender>,
    commands: u64,
    beats: u64,
    egm_samples: u64,
}

impl Journal for Counting {
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<device_link::protocol::Reply, device_link::protocol::DeviceError>,
    ) {
        self.commands += 1;
        self.inner.command(t_ms, site, who, command, result);
    }

    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &device_link::protocol::Event) {
        match event {
            device_link::protocol::Event::Beat(_) => self.beats += 1,
            device_link::protocol::Event::Egm(e) => self.egm_samples += e.lv_tip_mv.len() as u64,
            _ => {}
        }
        self.inner.event(t_ms, site, event);
    }
}

/// Reads, segments and records one run; returns its projection and what was sent.
fn record_run(
    rec: Option<&RecordSender>,
    run: u32,
    path: &Path,
) -> anyhow::Result<(Option<venogram::geometry::CArmProjection>, SentRun)> {
    let loaded = case_runs::load_run(run, path)?;
    let sent = SentRun {
        run,
        source: loaded.info.source.clone(),
        frames: loaded.info.frame_count,
        segmented_frame: loaded.segmented_frame,
        tree_branches: loaded.tree.branches.len(),
    };
    if let Some(rec) = rec {
        case_runs::record_run(rec, &loaded);
    }
    Ok((loaded.projection, sent))
}

/// Runs `csnav sim-session`.
pub fn run(args: &SimSessionArgs) -> anyhow::Result<ExitCode> {
    if !(10.0..=1000.0).contains(&args.rate_hz) || args.speed_mm_s <= 0.0 || !(0.0..=5.0).contains(&args.noise_mm) {
        bail!("--rate-hz must be 10-1000, --speed-mm-s positive and --noise-mm 0-5");
    }
    let case = NavCase::load(&args.case)?;
    let target = match &args.target {
        Some(spec) => case.parse_target(spec)?,
        None => case.default_target().context("the case has no PLV or LMV to aim at; give --target")?,
    };
    let config = serde_json::json!({
        "target": target.name, "rate_hz": args.rate_hz, "speed_mm_s": args.speed_mm_s,
        "noise_mm": args.noise_mm, "seed": args.seed, "threshold_test": !args.no_device,
    });
    let recorder = session_record::open(&args.record, "sim-session", &args.case, SessionMode::Simulator, config)?;
    let rec = recorder.as_ref().map(recording::Recorder::sender);
    let send = |record: Record| {
        if let Some(r) = &rec {
            r.send(record);
        }
    };
    eprintln!(
        "simulated session on {} (synthetic patient; research software, not a medical device)",
        args.case.display()
    );
    let mut sent = Sent { recording: recorder.as_ref().map(|r| r.path().to_owned()), ..Sent::default() };

    // The venogram runs.
    let mut pipeline = TipPipeline::new(Some(target.clone()));
    for (k, path) in case_runs::run_files(&args.case)?.iter().enumerate() {
        let run = k as u32 + 1;
        let (projection, run_sent) = record_run(rec.as_ref(), run, path)?;
        eprintln!(
            "run {run} ({}): {} frames, frame {} segmented, {} branches",
            run_sent.source, run_sent.frames, run_sent.segmented_frame, run_sent.tree_branches
        );
        if let Some(p) = projection {
            pipeline.views.push((run, p));
        }
        sent.runs.push(run_sent);
    }

    // Navigation: tree, registration, target, and the tip advancing to the target.
    let tree = session_record::tree3d(&case, "simulator truth");
    sent.tree3d_branches = tree.branches.len();
    send(Record::Tree3d(tree));
    send(Record::Registration(session_record::registration(&case)));
    send(Record::Target(session_record::target(&case, &target)));
    sent.targets = 1;
    let last = advance_tip(&case, &target, args, &mut pipeline, rec.as_ref(), &mut sent);
    if let Some(tip) = &last {
        eprintln!(
            "tip at {} {:.1} mm from the ostium, {:.1} mm along the tree to \"{}\"",
            tip.snap.as_ref().map_or("-", |s| s.label.as_str()),
            tip.snap.as_ref().map_or(0.0, |s| s.arc_mm),
            tip.guidance.as_ref().map_or(0.0, |g| g.path_mm),
            target.name
        );
    }

    // The threshold test at the target, over the device link.
    if !args.no_device {
        let threshold = threshold_at_target(&case, &target, args, rec.clone())?;
        sent.device_commands = threshold.commands;
        sent.beats = threshold.beats;
        sent.egm_samples = threshold.egm_samples;
        sent.capture_threshold_volts = threshold.volts;
        send(Record::TestResult(Box::new(threshold.record)));
    }
    drop(rec);
    session_record::finish(recorder)?;
    if args.json {
        println!("{}", serde_json::to_string(&sent)?);
    } else {
        println!(
            "sent {} tip samples, {} frames in {} runs, {} device commands, {} beats; capture threshold {}",
            sent.tip_samples,
            sent.runs.iter().map(|r| r.frames).sum::<u32>(),
            sent.runs.len(),
            sent.device_commands,
            sent.beats,
            sent.capture_threshold_volts.map_or_else(|| "none".to_owned(), |v| format!("{v:.2} V"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The tip advancing along the tree to the target at the tracker's rate, in real time, each
/// sample through the navigation pipeline; returns the last.
fn advance_tip(
    case: &NavCase,
    target: &navigation::guidance::Target,
    args: &SimSessionArgs,
    pipeline: &mut TipPipeline,
    rec: Option<&RecordSender>,
    sent: &mut Sent,
) -> Option<recording::record::TipRecord> {
    let mut rng = SimRng::new(args.seed, TIP_STREAM);
    let sigma = args.noise_mm / 3f64.sqrt();
    let travel_s = target.arc_mm / args.speed_mm_s;
    let samples = (travel_s * args.rate_hz).ceil() as u64;
    eprintln!("tip advancing to \"{}\" at {} mm/s, {} Hz", target.name, args.speed_mm_s, args.rate_hz);
    let started = Instant::now();
    let mut last = None;
    for k in 0..=samples {
        let t = k as f64 / args.rate_hz;
        if let Some(wait) = Duration::from_secs_f64(t).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let s = (args.speed_mm_s * t).min(target.arc_mm);
        let noise = Vector3::new(rng.normal(0.0, sigma), rng.normal(0.0, sigma), rng.normal(0.0, sigma));
        let tracker_from_sensor = case.tracker_from_sensor_toward(target, s, noise).to_homogeneous();
        let tip =
            pipeline.process(&case.tree, &case.registration, &args.tool, t * 1e3, &tracker_from_sensor, false, 0.0);
        if let Some(r) = rec {
            r.send(Record::Tip(Box::new(tip.clone())));
        }
        sent.tip_samples += 1;
        last = Some(tip);
    }
    last
}

/// What the threshold test did.
struct ThresholdDone {
    record: TestResultRecord,
    volts: Option<f64>,
    commands: u64,
    beats: u64,
    egm_samples: u64,
}

fn threshold_at_target(
    case: &NavCase,
    target: &navigation::guidance::Target,
    args: &SimSessionArgs,
    rec: Option<RecordSender>,
) -> anyhow::Result<ThresholdDone> {
    let lead = LeadModel::Quartet;
    let electrodes = crate::device::electrodes_at(case, lead, target)?;
    let vector = lead.vectors()[0];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the device runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the device model")?;
        let addr = listener.local_addr()?.to_string();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let patient = simulator::SyntheticPatient::generate(case.seed);
        let server = tokio::spawn(serve(listener, patient, ServerConfig::default(), None, shutdown));
        let (client, mut events) = DeviceClient::connect(&addr, "csnav-sim", Role::Control).await?;
        let mut journal = Counting { inner: rec, commands: 0, beats: 0, egm_samples: 0 };
        let mut session = Session {
            client: &client,
            events: &mut events,
            journal: Some(&mut journal),
            site: target.name.clone(),
            epoch: tokio::time::Instant::now(),
        };
        session
            .command(Command::PlaceLead { lead, electrodes_in_patient_mm: electrodes, site: target.name.clone() })
            .await
            .map_err(|e| anyhow::anyhow!("placing the lead: {e}"))?;
        let config =
            StepDownConfig { beats_per_step: args.beats_per_step, coarse_step: Some(0.5), ..StepDownConfig::default() };
        let run = session.threshold(vector, Stepped::Amplitude { pulse_width_ms: 0.5 }, 5.0, config).await;
        drop(session);
        client.close().await;
        let _ = stop.send(true);
        let _ = server.await;
        let volts = match &run {
            Run::Complete { result: ThresholdOutcome::Threshold { value, .. } } => Some(*value),
            _ => None,
        };
        eprintln!(
            "capture threshold at \"{}\" ({}): {}",
            target.name,
            lead.vector_name(vector),
            volts.map_or_else(|| "none".to_owned(), |v| format!("{v:.2} V at 0.5 ms"))
        );
        let record = TestResultRecord {
            site: target.name.clone(),
            test: "threshold".into(),
            vector: Some(lead.vector_name(vector)),
            capture_threshold_volts: volts,
            phrenic_threshold_volts: None,
            complete: run.is_complete(),
            detail: serde_json::to_value(&run)?,
        };
        anyhow::Ok(ThresholdDone {
            record,
            volts,
            commands: journal.commands,
            beats: journal.beats,
            egm_samples: journal.egm_samples,
        })
    })
}
