//! `csnav live`: the intraoperative display. csnav connects to the tracker's OpenIGTLink
//! server (asking for tracking data, reconnecting with backoff) and to the device as an
//! observer (the analyzer is run from its own console or `csnav device`; csnav shows its
//! beats, electrograms and safety events), reads and segments the case's venogram runs, and
//! puts every tip sample through the navigation pipeline (registration, snap, guidance,
//! projection into each run) into the app and the recording as it arrives.
//!
//! A link that drops is an alarm in the header (`LOST`, with why) until it is back; the tips
//! turn stale on the app's clock when the samples stop, never shown as live.

use std::process::ExitCode;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use device_link::client::DeviceClient;
use device_link::protocol::Role;
use navigation::link::{Hub, LinkConfig, connect};
use recording::record::{Level, NoteRecord, Record};
use recording::{RecordSender, SessionMode};

use crate::app::{self, AppMsg, AppOptions, LinkKind, LinkState, Mode, UiCommand};
use crate::case_runs;
use crate::cli::LiveArgs;
use crate::nav_case::NavCase;
use crate::session_record::{self, TipPipeline};

/// Longest wait between reconnection attempts to the device.
const MAX_DEVICE_BACKOFF: Duration = Duration::from_secs(2);

/// Sends to the app and the recording together.
#[derive(Clone)]
struct Out {
    app: Sender<AppMsg>,
    rec: Option<RecordSender>,
}

impl Out {
    /// Sends a record to both; false when the app has gone.
    fn record(&self, record: Record) -> bool {
        if let Some(r) = &self.rec {
            r.send(record.clone());
        }
        self.app.send(AppMsg::Record(record)).is_ok()
    }

    /// A link's new state: to the app, and to the recording as a note (an alarm when lost).
    fn link(&self, kind: LinkKind, state: LinkState) {
        let (level, text) = match &state {
            LinkState::Lost(why) => (Level::Error, format!("{kind:?} link LOST: {why}")),
            other => (Level::Info, format!("{kind:?} link {other:?}")),
        };
        eprintln!("{text}");
        if let Some(r) = &self.rec {
            let topic = if kind == LinkKind::Tracker { "navigation" } else { "device" };
            r.send(Record::Note(NoteRecord { topic: topic.into(), level, text }));
        }
        let _ = self.app.send(AppMsg::Link(kind, state));
    }

    /// A note from the inbox ("inbox: " and `what`): on stderr, in the app's notes and in the
    /// recording.
    fn inbox_note(&self, level: Level, what: &str) {
        let text = format!("inbox: {what}");
        eprintln!("{text}");
        if let Some(r) = &self.rec {
            r.send(Record::Note(NoteRecord { topic: "inbox".into(), level, text: text.clone() }));
        }
        let _ = self.app.send(AppMsg::Step(text));
    }
}

/// Runs `csnav live`.
pub fn run(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    let headless = args.headless || !app::display_available();
    if headless && !args.headless {
        eprintln!("no display (DISPLAY is not set): rendering offscreen into {}", args.out.display());
    }
    if headless && args.duration_s.is_none() {
        anyhow::bail!("offscreen, --duration-s says when to take the screenshots");
    }
    if let Some(d) = args.duration_s
        && !(d.is_finite() && d > 0.0)
    {
        anyhow::bail!("--duration-s {d} must be positive");
    }
    let case = NavCase::load(&args.case)?;
    let mut targets = args.targets.iter().map(|spec| case.parse_target(spec)).collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(plan) = &args.plan {
        for t in crate::review::read_plan_targets(plan)? {
            // A target on an unnamed branch has no vein to find in the 3D tree.
            match case.parse_target(&t.spec()) {
                Ok(target) => targets.push(target),
                Err(e) => eprintln!("warning: the plan's target {:?} is not used: {e:#}", t.name),
            }
        }
    }
    let targets = if targets.is_empty() { case.default_target().into_iter().collect() } else { targets };
    let config = serde_json::json!({
        "tracker": args.tracker, "device": args.device, "targets": args.targets, "headless": headless,
    });
    // csnav's cases are synthetic until cases come from the PACS: the session says so.
    let recorder = session_record::open(&args.record, "live", &args.case, SessionMode::Simulator, config)?;
    let rec = recorder.as_ref().map(recording::Recorder::sender);
    eprintln!(
        "csnav live: tracker {}, device {} (research software, not a medical device)",
        args.tracker,
        args.device.as_deref().unwrap_or("none")
    );
    if headless {
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    }
    // Bound before the app opens, so a taken port is an error now, not a silent inbox later.
    let inbox = match &args.inbox {
        Some(address) => {
            let listener =
                std::net::TcpListener::bind(address).with_context(|| format!("opening the inbox on {address}"))?;
            listener.set_nonblocking(true).context("setting up the inbox")?;
            eprintln!("inbox listening on {}", listener.local_addr().context("reading the inbox address")?);
            Some(listener)
        }
        None => None,
    };
    let source_args = SourceArgs {
        inbox: Mutex::new(inbox),
        case: Arc::new(case),
        case_dir: args.case.clone(),
        targets,
        tracker: args.tracker.clone(),
        device: args.device.clone(),
        duration_s: args.duration_s,
    };
    let options = AppOptions {
        mode: Mode::Live,
        case_name: app::shown_name(&args.case),
        offscreen: headless,
        screenshots: (headless || args.screenshot).then(|| args.out.clone()),
        size_px: args.size,
        bench: None,
    };
    let outcome = app::run_with_source(options, "live", move |feed, commands| {
        source(&source_args, &Out { app: feed.clone(), rec }, commands)
    });
    // What was recorded stays recorded, whatever happened to the links.
    session_record::finish(recorder)?;
    let (exit, samples) = outcome?;
    println!("{samples} tip samples received");
    Ok(app::exit_code(&exit))
}

/// What the source needs.
struct SourceArgs {
    /// The inbox's socket, taken by the source when it starts.
    inbox: Mutex<Option<std::net::TcpListener>>,
    case: Arc<NavCase>,
    case_dir: std::path::PathBuf,
    targets: Vec<navigation::guidance::Target>,
    tracker: String,
    device: Option<String>,
    duration_s: Option<f64>,
}

/// The live source: runs until the app goes away; returns the tip samples received.
fn source(args: &SourceArgs, out: &Out, commands: &Receiver<UiCommand>) -> anyhow::Result<u64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("csnav-live")
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    runtime.block_on(live(args, out, commands))
}

async fn live(args: &SourceArgs, out: &Out, commands: &Receiver<UiCommand>) -> anyhow::Result<u64> {
    out.link(LinkKind::Tracker, LinkState::Connecting);
    out.link(LinkKind::Device, if args.device.is_some() { LinkState::Connecting } else { LinkState::NotUsed });
    let case = &args.case;
    let patient = simulator::SyntheticPatient::generate(case.seed);
    let _ = out.app.send(AppMsg::Lv(Arc::new(crate::procedure::lv_mesh(&patient))));
    let mut pipeline = TipPipeline::new(args.targets.first().cloned());
    pipeline.views = case_runs::load_case_runs(
        &args.case_dir,
        out.rec.as_ref(),
        |step| {
            let _ = out.app.send(AppMsg::Step(step));
        },
        |run| {
            let projection = run.projection.clone();
            let _ = out.app.send(AppMsg::Run(run, projection));
        },
    )?;
    out.record(Record::Tree3d(session_record::tree3d(case, "simulator truth (not reconstructed)")));
    out.record(Record::Registration(session_record::registration(case)));
    for t in &args.targets {
        out.record(Record::Target(session_record::target(case, t)));
    }
    let _ = out.app.send(AppMsg::Step("following the tracker".into()));

    // The tracker: every sample through the pipeline, to the app and the recording.
    let (hub, _inbox) = Hub::new(64);
    let pipeline = Arc::new(Mutex::new(pipeline));
    let samples = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (case, pipeline, out, samples) = (case.clone(), pipeline.clone(), out.clone(), samples.clone());
        hub.set_sample_tap(Box::new(move |sample| {
            let tip = match pipeline.lock() {
                Ok(mut p) => p.process_sample(&case, sample),
                Err(_) => return,
            };
            samples.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.record(Record::Tip(Box::new(tip)));
        }));
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let inbox = args.inbox.lock().ok().and_then(|mut l| l.take());
    if let Some(listener) = inbox {
        let listener = tokio::net::TcpListener::from_std(listener).context("setting up the inbox")?;
        // The case's runs are numbered from 1 in file order; announced ones follow.
        let first_run = case_runs::run_files(&args.case_dir)?.len() as u32 + 1;
        let next_run = Arc::new(std::sync::atomic::AtomicU32::new(first_run));
        tokio::spawn(serve_inbox(listener, out.clone(), pipeline.clone(), next_run, shutdown.clone()));
    }
    let config = LinkConfig::tracking_client();
    let tracker = tokio::spawn(connect(args.tracker.clone(), hub.clone(), config, shutdown.clone()));
    let device = args.device.clone().map(|addr| tokio::spawn(follow_device(addr, out.clone(), shutdown.clone())));

    // Watch the tracker link and the user's selection until the app goes away.
    let epoch = tokio::time::Instant::now();
    let mut tracker_state = LinkState::Connecting;
    let mut was_connected = false;
    let mut finished = false;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let connected = hub.counters().connected > 0;
        let state = match (connected, was_connected) {
            (true, _) => LinkState::Connected,
            (false, true) => LinkState::Lost("the tracker closed the connection".into()),
            (false, false) => LinkState::Connecting,
        };
        was_connected |= connected;
        if state != tracker_state {
            out.link(LinkKind::Tracker, state.clone());
            tracker_state = state;
        }
        while let Ok(command) = commands.try_recv() {
            if let UiCommand::SelectTarget(name) = command
                && let Some(t) = args.targets.iter().find(|t| t.name == name)
                && let Ok(mut p) = pipeline.lock()
            {
                p.target = Some(t.clone());
            }
        }
        if !finished && args.duration_s.is_some_and(|d| epoch.elapsed().as_secs_f64() >= d) {
            // Offscreen: the screenshots are taken now, while the links still run.
            finished = true;
            let _ = out.app.send(AppMsg::Finished);
        }
        // The app is gone when the channel is closed.
        if out.app.send(AppMsg::Heartbeat).is_err() {
            break;
        }
    }
    let _ = stop.send(true);
    let _ = tracker.await;
    if let Some(device) = device {
        let _ = device.await;
    }
    Ok(samples.load(std::sync::atomic::Ordering::Relaxed))
}

/// The inbox: accepts announcers (`csnav listen --announce`) until shutdown.
async fn serve_inbox(
    listener: tokio::net::TcpListener,
    out: Out,
    pipeline: Arc<Mutex<TipPipeline>>,
    next_run: Arc<std::sync::atomic::AtomicU32>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(inbox_connection(stream, peer, out.clone(), pipeline.clone(), next_run.clone()));
                }
                Err(e) => out.inbox_note(Level::Warn, &format!("accepting a connection failed: {e}")),
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// One announcer: each line an announcement; a bad line is reported and ends the connection.
async fn inbox_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    out: Out,
    pipeline: Arc<Mutex<TipPipeline>>,
    next_run: Arc<std::sync::atomic::AtomicU32>,
) {
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = (crate::inbox::MAX_LINE_BYTES + 1) as u64;
        let read = tokio::io::AsyncReadExt::take(&mut lines, limit).read_until(b'\n', &mut line).await;
        match read {
            Ok(0) => return,
            Ok(n) if n > crate::inbox::MAX_LINE_BYTES => {
                out.inbox_note(
                    Level::Warn,
                    &format!("{peer} sent a line over {} bytes; closed", crate::inbox::MAX_LINE_BYTES),
                );
                return;
            }
            Ok(_) => {}
            Err(e) => {
                out.inbox_note(Level::Warn, &format!("{peer}: {e}"));
                return;
            }
        }
        let announcement = match crate::inbox::parse(&String::from_utf8_lossy(&line)) {
            Ok(a) => a,
            Err(e) => {
                out.inbox_note(Level::Warn, &format!("{peer}: {e}; closed"));
                return;
            }
        };
        let run = next_run.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (file, rec) = (announcement.file.clone(), out.rec.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = case_runs::load_run(run, &file)?;
            if let Some(r) = &rec {
                case_runs::record_run(r, &loaded);
            }
            anyhow::Ok(loaded)
        })
        .await;
        match loaded {
            Ok(Ok(loaded)) => {
                let projection = loaded.projection.clone();
                if let (Some(p), Ok(mut pipeline)) = (&projection, pipeline.lock()) {
                    pipeline.views.push((run, p.clone()));
                }
                let branches = loaded.tree.branches.len();
                let _ = out.app.send(AppMsg::Run(Arc::new(loaded), projection));
                out.inbox_note(
                    Level::Info,
                    &format!(
                        "run {run} from {} ({}) received: {branches} branches",
                        announcement.calling_ae_title,
                        announcement.file.display()
                    ),
                );
            }
            Ok(Err(e)) => out.inbox_note(Level::Warn, &format!("{}: {e:#}", announcement.file.display())),
            Err(e) => {
                out.inbox_note(Level::Error, &format!("reading {} failed: {e}", announcement.file.display()));
            }
        }
    }
}

/// Follows the device as an observer: events to the app and the recording; reconnects with
/// backoff; a dropped link is an alarm until it is back.
async fn follow_device(addr: String, out: Out, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let epoch = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut shown = LinkState::Connecting;
    let mut show = |state: LinkState| {
        if state != shown {
            out.link(LinkKind::Device, state.clone());
            shown = state;
        }
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        match DeviceClient::connect(&addr, "csnav-live", Role::Observe).await {
            Ok((client, mut events)) => {
                backoff = Duration::from_millis(100);
                show(LinkState::Connected);
                loop {
                    tokio::select! {
                        event = events.recv() => match event {
                            Some(event) => {
                                let t_ms = epoch.elapsed().as_secs_f64() * 1e3;
                                if !out.record(Record::device_event(t_ms, None, &event)) {
                                    return;
                                }
                            }
                            None => break,
                        },
                        _ = shutdown.changed() => {
                            client.close().await;
                            return;
                        }
                    }
                }
                drop(client);
                show(LinkState::Lost("the device link dropped; reconnecting".into()));
            }
            // Connecting (never connected) or still lost: the header says so already.
            Err(e) => tracing::debug!("device {addr}: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_DEVICE_BACKOFF);
    }
}
