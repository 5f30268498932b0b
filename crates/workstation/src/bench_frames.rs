//! `csnav bench-frames`: the app's frame-time and tip-latency benchmark on the bundled case.
//! The load is what the implanter's screen carries at its busiest: both venogram runs playing
//! at their frame rate, the 3D tree and LV, several tracked tips at the tracker's rate (each
//! through the whole navigation pipeline, moving along its own branch), and the device model
//! streaming beats and electrograms over the real device link. Offscreen: it needs no display,
//! and frames are not held to a display's refresh (the numbers are the work per frame).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use device_link::client::DeviceClient;
use device_link::protocol::Role;
use device_link::server::{ServerConfig, serve};
use nalgebra::Vector3;
use navigation::guidance::Target;
use recording::record::Record;

use crate::app::{self, AppMsg, AppOptions, LinkKind, LinkState, Mode};
use crate::case_runs;
use crate::cli::BenchFramesArgs;
use crate::nav_case::NavCase;
use crate::session_record::{self, TipPipeline};

/// Tip speed along its branch, mm/s.
const TIP_SPEED_MM_S: f64 = 20.0;

/// Runs `csnav bench-frames`.
pub fn run(args: &BenchFramesArgs) -> anyhow::Result<ExitCode> {
    if !(1..=16).contains(&args.tools) || !(10.0..=1000.0).contains(&args.rate_hz) {
        anyhow::bail!("--tools must be 1-16 and --rate-hz 10-1000");
    }
    if !(args.seconds.is_finite() && args.seconds >= 1.0) {
        anyhow::bail!("--seconds {} must be at least 1", args.seconds);
    }
    let case = Arc::new(NavCase::load(&args.case)?);
    let runs = case_runs::run_files(&args.case)?.len();
    let epoch = Instant::now();
    let load = format!(
        "{} tips at {} Hz, {}{runs} cine runs playing",
        args.tools,
        args.rate_hz,
        if args.no_device { "" } else { "device model beats and EGM over the device link, " }
    );
    let source_args = (case.clone(), args.case.clone(), args.tools, args.rate_hz, !args.no_device);
    let options = AppOptions {
        mode: Mode::Simulator,
        case_name: app::shown_name(&args.case),
        offscreen: true,
        screenshots: None,
        size_px: args.size,
        bench: Some(app::bench::BenchOptions { epoch, seconds: args.seconds, runs, report: args.report.clone(), load }),
    };
    let (exit, ()) = app::run_with_source(options, "bench-source", move |feed, _| source(&source_args, epoch, feed))?;
    Ok(app::exit_code(&exit))
}

/// A target at 80 % of each side branch, round robin over the tools.
fn tool_targets(case: &NavCase, tools: usize) -> Vec<Target> {
    let branches: Vec<usize> =
        (0..case.tree.branches.len()).filter(|k| case.tree.branches[*k].parent.is_some()).collect();
    let branches = if branches.is_empty() { vec![0] } else { branches };
    (0..tools)
        .map(|k| {
            let b = &case.tree.branches[branches[k % branches.len()]];
            Target {
                name: format!("tool{}-{}", k + 1, b.label.abbreviation()),
                branch: branches[k % branches.len()],
                arc_mm: b.takeoff_arc_mm + 0.8 * (b.end_arc_mm() - b.takeoff_arc_mm),
            }
        })
        .collect()
}

type SourceArgs = (Arc<NavCase>, PathBuf, usize, f64, bool);

fn source(args: &SourceArgs, epoch: Instant, app: &Sender<AppMsg>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the source's runtime")?;
    runtime.block_on(feed(args, epoch, app))
}

async fn feed(args: &SourceArgs, epoch: Instant, app: &Sender<AppMsg>) -> anyhow::Result<()> {
    let (case, case_dir, tools, rate_hz, device) = args;
    let send = |msg: AppMsg| app.send(msg).is_ok();
    let patient = simulator::SyntheticPatient::generate(case.seed);
    send(AppMsg::Lv(Arc::new(crate::procedure::lv_mesh(&patient))));
    let targets = tool_targets(case, *tools);
    let mut pipeline = TipPipeline::new(targets.first().cloned());
    pipeline.views = case_runs::load_case_runs(
        case_dir,
        None,
        |_| {},
        |run| {
            let projection = run.projection.clone();
            send(AppMsg::Run(run, projection));
        },
    )?;
    send(AppMsg::Record(Record::Tree3d(session_record::tree3d(case, "simulator truth (not reconstructed)"))));
    for t in &targets {
        send(AppMsg::Record(Record::Target(session_record::target(case, t))));
    }
    send(AppMsg::Link(LinkKind::Tracker, LinkState::Connected));

    // The device model in process, followed as an observer: its beats and EGM to the app.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut device_tasks = None;
    if *device {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the device model")?;
        let addr = listener.local_addr()?.to_string();
        let server = tokio::spawn(serve(listener, patient.clone(), ServerConfig::default(), None, shutdown));
        let (client, mut events) = DeviceClient::connect(&addr, "csnav-bench", Role::Observe).await?;
        send(AppMsg::Link(LinkKind::Device, LinkState::Connected));
        let app = app.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let t_ms = epoch.elapsed().as_secs_f64() * 1e3;
                if app.send(AppMsg::Record(Record::device_event(t_ms, None, &event))).is_err() {
                    break;
                }
            }
            client.close().await;
        });
        device_tasks = Some((server, forward));
    }

    // The tips: each back and forth along its branch, at the tracker's rate.
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let mut next = tokio::time::Instant::now();
    'stream: loop {
        let t_s = epoch.elapsed().as_secs_f64();
        for (k, target) in targets.iter().enumerate() {
            // A triangle wave between the ostium and the target, each tool at its own phase.
            let span = target.arc_mm.max(1.0);
            let travelled = TIP_SPEED_MM_S * t_s + span * k as f64 / targets.len() as f64;
            let phase = travelled.rem_euclid(2.0 * span);
            let arc_mm = if phase <= span { phase } else { 2.0 * span - phase };
            let tracker_from_sensor =
                case.tracker_from_sensor_toward(target, arc_mm, Vector3::zeros()).to_homogeneous();
            let t_ms = epoch.elapsed().as_secs_f64() * 1e3;
            let tip = pipeline.process(
                &case.tree,
                &case.registration,
                &format!("tool{}", k + 1),
                t_ms,
                &tracker_from_sensor,
                false,
                0.0,
            );
            if !send(AppMsg::Record(Record::Tip(Box::new(tip)))) {
                break 'stream;
            }
        }
        next += period;
        tokio::time::sleep_until(next).await;
    }
    let _ = stop.send(true);
    if let Some((server, forward)) = device_tasks {
        forward.abort();
        let _ = server.await;
    }
    Ok(())
}
