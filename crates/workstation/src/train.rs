//! `csnav train` and `csnav scenarios`: simulator training on a scenario's synthetic patient.
//!
//! The scenario's patient is written as a case (3D truth, tracker fiducials, an occlusive
//! venogram in LAO 35 and RAO 30), its runs segmented and shown. The trainee's wire and lead
//! (`training::session`) are played by a simulated electromagnetic tracker that serves
//! OpenIGTLink on a loopback port (TRANSFORM of the `wire-tip` and `lead-tip` sensors in
//! tracker space, as a real tracker's server does); csnav connects to it as `csnav live`
//! does and every sample goes through the same navigation pipeline (registration, snap,
//! guidance, projection) into the app and the recording. The fluoroscopy pedal renders the
//! fluoroscopy view (one image a second while pressed, and the last image held on release).
//! When the case ends the debrief, the outcome and the script are written.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use navigation::igtl::{Body, DeviceName, Message, Timestamp, Transform};
use navigation::link::{Hub, LinkConfig, connect};
use recording::record::{Level, NoteRecord, RankingRecord, Record};
use recording::{RecordSender, SessionMode};
use simulator::view::ViewAngles;
use training::session::{Action, Feedback, Outcome, TrainingSession};
use training::trainee::{Goal, Step, drive};
use training::{Scenario, debrief};

use crate::app::{self, AppMsg, AppOptions, LinkKind, LinkState, Mode, UiCommand};
use crate::case_runs::{self, LoadedRun};
use crate::cli::{ScenariosArgs, TrainArgs, TraineeArg};
use crate::nav_case::NavCase;
use crate::session_record::{self, RecordArgs, TipPipeline};

/// The tracked sensors.
const TOOLS: [&str; 2] = ["wire-tip", "lead-tip"];
/// Tracker sample period in the interactive loop.
const TICK: Duration = Duration::from_millis(10);
/// Seconds between fluoroscopy images while the pedal is held.
const FLUORO_IMAGE_S: f64 = 1.0;
/// The first run number of fluoroscopy images (the venogram runs are 1 and 2).
const FIRST_FLUORO_RUN: u32 = 3;

/// Runs `csnav scenarios`: lists and validates a folder of scenarios.
pub fn scenarios(args: &ScenariosArgs) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .with_context(|| format!("listing {}", args.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut bad = 0;
    for file in &files {
        match Scenario::read(file) {
            Ok(s) => {
                let solved = if args.solve {
                    match TrainingSession::new(s.clone()) {
                        Ok(session) => format!("  best site {}", session.best_site().eval.name()),
                        Err(e) => {
                            bad += 1;
                            format!("  UNSOLVABLE: {e}")
                        }
                    }
                } else {
                    String::new()
                };
                println!("{:<28} {:<13} {}{solved}", s.id(), format!("{:?}", s.source.difficulty), s.source.title);
            }
            Err(e) => {
                bad += 1;
                eprintln!("{e}");
            }
        }
    }
    println!("{} scenarios, {bad} with errors", files.len());
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// Sends to the app (when there is one) and the recording.
#[derive(Clone)]
struct Out {
    app: Option<Sender<AppMsg>>,
    rec: Option<RecordSender>,
}

impl Out {
    /// A record to both; false when the app has gone.
    fn record(&self, record: Record) -> bool {
        if let Some(r) = &self.rec {
            r.send(record.clone());
        }
        self.app.as_ref().is_none_or(|a| a.send(AppMsg::Record(record)).is_ok())
    }

    fn app(&self, msg: AppMsg) -> bool {
        self.app.as_ref().is_none_or(|a| a.send(msg).is_ok())
    }

    /// The trainee's feedback: stderr, the app's notes and the recording.
    fn feedback(&self, f: &Feedback) {
        let level = match f.level {
            training::session::Level::Info => Level::Info,
            training::session::Level::Warning => Level::Warn,
            training::session::Level::Error => Level::Error,
        };
        let text = format!("[{:6.1} s] {}", f.t_s, f.text);
        eprintln!("{text}");
        if let Some(r) = &self.rec {
            r.send(Record::Note(NoteRecord { topic: "training".into(), level, text: text.clone() }));
        }
        self.app(AppMsg::Step(text));
    }
}

/// Runs `csnav train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::read(&args.scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
    let fluoro_view: ViewAngles = args.fluoro_view.parse()?;
    if !(128..=1024).contains(&args.fluoro_size) || !(2..=60).contains(&args.venogram_frames) {
        bail!("--fluoro-size must be 128-1024 px and --venogram-frames 2-60");
    }
    let session = TrainingSession::new(scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
    let script = match (&args.script, args.trainee) {
        (Some(path), _) => Some(read_script(path)?),
        (None, Some(kind)) => Some(trainee_script(&session, kind)?),
        (None, None) => None,
    };
    if args.no_app && script.is_none() {
        bail!("--no-app plays a trainee or a script: give --trainee or --script");
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let case_dir = args.out.join("case");
    write_case(&session, &case_dir, args.venogram_frames)?;
    let record = RecordArgs {
        record: args.record.record.clone().or_else(|| (!args.record.no_record).then(|| args.out.join("session.rrd"))),
        ..args.record.clone()
    };
    let settings = serde_json::json!({
        "scenario": session.scenario().id(), "fluoro_view": args.fluoro_view,
        "trainee": args.trainee.map(|t| format!("{t:?}")), "script": args.script,
    });
    let recorder = session_record::open(&record, "train", &case_dir, SessionMode::Simulator, settings)?;
    let rec = recorder.as_ref().map(recording::Recorder::sender);
    eprintln!(
        "csnav train: {} ({}) on a synthetic patient (research software, not a medical device)",
        session.scenario().source.title,
        session.scenario().id()
    );
    let config =
        TrainConfig { case_dir, out_dir: args.out.clone(), fluoro_view, fluoro_size: args.fluoro_size, script };
    let outcome = if args.no_app {
        let out = Out { app: None, rec };
        train(session, &config, &out, None)
    } else {
        let headless = args.headless || !app::display_available();
        if headless && !args.headless {
            eprintln!("no display (DISPLAY is not set): rendering offscreen into {}", args.out.display());
        }
        if headless && config.script.is_none() {
            bail!("offscreen, a trainee or a script plays the case: give --trainee or --script (or --no-app)");
        }
        let options = AppOptions {
            mode: Mode::Training,
            case_name: session.scenario().id().to_owned(),
            offscreen: headless,
            screenshots: (headless || args.screenshot).then(|| args.out.clone()),
            size_px: args.size,
            bench: None,
        };
        let outcome = app::run_with_source(options, "training", move |feed, commands| {
            train(session, &config, &Out { app: Some(feed.clone()), rec }, Some(commands))
        });
        // What was recorded stays recorded, whatever happened to the app.
        session_record::finish(recorder)?;
        let (exit, outcome) = outcome?;
        print_outcome(&outcome, &args.out);
        return Ok(app::exit_code(&exit));
    };
    session_record::finish(recorder)?;
    let outcome = outcome?;
    print_outcome(&outcome, &args.out);
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(outcome: &Outcome, out: &Path) {
    println!("score {:.1} of {:.0}", outcome.score.total, outcome.score.max_points);
    for p in &outcome.score.parts {
        println!("  {:<13} {:>5.1} / {:>3.0}  {}", p.name, p.points, p.max_points, p.detail);
    }
    for r in &outcome.score.site_reasons {
        println!("  - {r}");
    }
    println!("debrief: {}", out.join("debrief.html").display());
}

/// The script of a scripted trainee, played on a copy of the session.
fn trainee_script(session: &TrainingSession, kind: TraineeArg) -> anyhow::Result<Vec<Step>> {
    let mut copy = session.clone();
    let goal = match kind {
        TraineeArg::Optimal => Goal::best(&copy),
        TraineeArg::Apex => Goal::apex(&copy).context("no apical site holds the lead in this scenario")?,
        TraineeArg::Scar => Goal::scar(&copy).context("no scarred site holds the lead in this scenario")?,
    };
    Ok(drive(&mut copy, goal))
}

fn read_script(path: &Path) -> anyhow::Result<Vec<Step>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the script {}", path.display()))?;
    let steps: Vec<Step> =
        serde_json::from_str(&text).with_context(|| format!("parsing the script {}", path.display()))?;
    if let Some(bad) = steps.windows(2).find(|w| w[1].t_s < w[0].t_s || !w[1].t_s.is_finite()) {
        bail!("{}: the script's times must not decrease (t_s {} after {})", path.display(), bad[1].t_s, bad[0].t_s);
    }
    Ok(steps)
}

/// Writes the scenario's patient as a case: 3D truth, tracker fiducials, LAO and RAO runs.
fn write_case(session: &TrainingSession, dir: &Path, frames: u32) -> anyhow::Result<()> {
    let patient = session.patient();
    simulator::output::write_patient(patient, dir)?;
    simulator::output::write_tracker(&simulator::tracker::SyntheticTracker::generate(patient), dir)?;
    for view in ["LAO35", "RAO30"] {
        let angles: ViewAngles = view.parse()?;
        let settings = simulator::render::RenderSettings::typical(angles, 512, 12, frames);
        let run = simulator::render::render(patient, &settings).with_context(|| format!("rendering {view}"))?;
        simulator::output::write_view(&run, patient, dir, &view.to_ascii_lowercase())?;
    }
    Ok(())
}

/// What the training loop needs besides the session.
struct TrainConfig {
    case_dir: PathBuf,
    out_dir: PathBuf,
    fluoro_view: ViewAngles,
    fluoro_size: u32,
    script: Option<Vec<Step>>,
}

/// The simulated tracker's side: the socket it serves and the clock of its timestamps.
struct Tracker {
    socket: TcpStream,
    unix_t0_s: f64,
    sent: u64,
}

impl Tracker {
    /// Sends both sensors' poses at session time `t_s`.
    fn send(&mut self, case: &NavCase, session: &TrainingSession, t_s: f64) -> anyhow::Result<()> {
        let c = session.catheter();
        let poses = [(c.wire_tip(), c.direction_at(c.wire_s_mm())), (c.lead_tip(), c.direction_at(c.lead_s_mm()))];
        let mut bytes = Vec::new();
        for (tool, (tip, direction)) in TOOLS.iter().zip(poses) {
            let rotation =
                UnitQuaternion::rotation_between(&Vector3::z(), &direction).unwrap_or_else(UnitQuaternion::identity);
            let patient_from_sensor = Isometry3::from_parts(Translation3::from(tip.coords), rotation);
            let tracker_from_sensor = case.tracker.tracker_from_patient * patient_from_sensor;
            let message = Message {
                timestamp: Timestamp::from_secs_f64(self.unix_t0_s + t_s),
                ..Message::new(
                    DeviceName::new(tool)?,
                    Body::Transform(Transform::from_matrix(&tracker_from_sensor.to_homogeneous())),
                )
            };
            bytes.extend(message.encode()?);
        }
        self.socket.write_all(&bytes).context("the training tracker's stream")?;
        self.sent += TOOLS.len() as u64;
        Ok(())
    }
}

/// The training loop: the case shown, the tracker served and followed, the trainee's actions
/// (a script or the app's keys) applied, fluoroscopy rendered, and the outcome written.
fn train(
    mut session: TrainingSession,
    config: &TrainConfig,
    out: &Out,
    commands: Option<&Receiver<UiCommand>>,
) -> anyhow::Result<Outcome> {
    let case = Arc::new(NavCase::load(&config.case_dir)?);
    let pipeline = show_case(&session, &case, config, out)?;

    // The simulated tracker serves on loopback; csnav follows it like a live tracker.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("opening the training tracker")?;
    let address = listener.local_addr().context("reading the training tracker's address")?.to_string();
    let received = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("csnav-train")
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let hub = {
        let _guard = runtime.enter();
        let (hub, _inbox) = Hub::new(64);
        let pipeline = Arc::new(Mutex::new(pipeline));
        let (case, out, received) = (case.clone(), out.clone(), received.clone());
        hub.set_sample_tap(Box::new(move |sample| {
            let tip = match pipeline.lock() {
                Ok(mut p) => p.process_sample(&case, sample),
                Err(_) => return,
            };
            received.fetch_add(1, Ordering::Relaxed);
            out.record(Record::Tip(Box::new(tip)));
        }));
        hub
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let follower = runtime.spawn(connect(address.clone(), hub.clone(), LinkConfig::tracking_client(), shutdown));
    out.app(AppMsg::Link(LinkKind::Tracker, LinkState::Connecting));
    out.app(AppMsg::Link(LinkKind::Device, LinkState::NotUsed));
    let (socket, _) = listener.accept().context("waiting for csnav to connect to the training tracker")?;
    socket.set_nodelay(true).context("setting up the training tracker")?;
    out.app(AppMsg::Link(LinkKind::Tracker, LinkState::Connected));
    let unix_t0_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1.0e9, |d| d.as_secs_f64());
    let mut tracker = Tracker { socket, unix_t0_s, sent: 0 };
    let mut fluoro = Fluoro { next_run: FIRST_FLUORO_RUN, last_image_s: None, was_on: false };
    let mut played = Played::default();

    let outcome = match &config.script {
        Some(script) => {
            for step in script {
                let pace = if out.app.is_some() { Some(Duration::from_millis(5)) } else { None };
                apply(&mut session, *step, out, &mut played);
                tracker.send(&case, &session, step.t_s)?;
                fluoro.update(&session, config, out, step.t_s)?;
                if let Some(pace) = pace {
                    std::thread::sleep(pace);
                }
                if !out.app(AppMsg::Heartbeat) {
                    break;
                }
            }
            let end = session.now_s();
            finish(&mut session, end, out, &mut played)
        }
        None => interactive(&mut session, config, out, commands, &mut tracker, &mut fluoro, &case, &mut played)?,
    };
    // Every sample sent is through the pipeline before the outcome is written.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < tracker.sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let through = received.load(Ordering::Relaxed);
    if through < tracker.sent {
        eprintln!("warning: {} of {} tracker samples did not come through", tracker.sent - through, tracker.sent);
    }
    drop(tracker);
    let _ = stop.send(true);
    let _ = runtime.block_on(follower);
    write_outcome(&session, &outcome, &played.steps, through, &config.out_dir)?;
    out.record(Record::Note(NoteRecord {
        topic: "training".into(),
        level: Level::Info,
        text: format!(
            "score {:.1} of {:.0}; site {}; best site {}",
            outcome.score.total,
            outcome.score.max_points,
            outcome.site.as_ref().map_or("none".into(), training::site::SiteEval::name),
            outcome.best.name()
        ),
    }));
    out.record(Record::Ranking(ranking_record(&outcome)));
    out.app(AppMsg::Finished);
    // With the app: keep it company until it closes (it shows the outcome).
    if out.app.is_some() {
        while out.app(AppMsg::Heartbeat) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(outcome)
}

/// The case to the app and the recording (LV, venogram runs segmented, 3D tree,
/// registration, the scenario's opening); returns the navigation pipeline with the runs' views.
fn show_case(
    session: &TrainingSession,
    case: &NavCase,
    config: &TrainConfig,
    out: &Out,
) -> anyhow::Result<TipPipeline> {
    let _ = out.app(AppMsg::Lv(Arc::new(crate::procedure::lv_mesh(session.patient()))));
    let mut pipeline = TipPipeline::new(None);
    pipeline.views = case_runs::load_case_runs(
        &config.case_dir,
        out.rec.as_ref(),
        |step| {
            let _ = out.app(AppMsg::Step(step));
        },
        |run| {
            let projection = run.projection.clone();
            let _ = out.app(AppMsg::Run(run, projection));
        },
    )?;
    out.record(Record::Tree3d(session_record::tree3d(case, "scenario patient (simulator truth)")));
    out.record(Record::Registration(session_record::registration(case)));
    for f in session.log() {
        out.feedback(f);
    }
    Ok(pipeline)
}

/// What the trainee did, and the last feedback shown.
#[derive(Default)]
struct Played {
    steps: Vec<Step>,
    last_feedback: Option<(String, f64)>,
}

/// Seconds within which the same feedback is not repeated (a held key repeats its action
/// every frame).
const REPEAT_FEEDBACK_S: f64 = 2.0;

fn apply(session: &mut TrainingSession, step: Step, out: &Out, played: &mut Played) {
    played.steps.push(step);
    for f in session.apply(step.t_s, step.action) {
        let repeated =
            played.last_feedback.as_ref().is_some_and(|(text, t)| *text == f.text && f.t_s - t < REPEAT_FEEDBACK_S);
        if !repeated {
            out.feedback(&f);
            played.last_feedback = Some((f.text.clone(), f.t_s));
        }
    }
}

fn finish(session: &mut TrainingSession, t_s: f64, out: &Out, played: &mut Played) -> Outcome {
    if let Some(o) = session.outcome() {
        return o.clone();
    }
    apply(session, Step { t_s, action: Action::Finish }, out, played);
    session.finish(t_s)
}

/// The keyboard: the app's actions applied at wall-clock session time until the case ends
/// (Enter) or the app closes.
#[allow(clippy::too_many_arguments)]
fn interactive(
    session: &mut TrainingSession,
    config: &TrainConfig,
    out: &Out,
    commands: Option<&Receiver<UiCommand>>,
    tracker: &mut Tracker,
    fluoro: &mut Fluoro,
    case: &NavCase,
    played: &mut Played,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut shown_status = String::new();
    loop {
        let t_s = started.elapsed().as_secs_f64();
        session.tick(t_s);
        for command in commands.into_iter().flat_map(Receiver::try_iter) {
            match command {
                UiCommand::Train(action) => apply(session, Step { t_s, action }, out, played),
                UiCommand::NextLead => {
                    let shelf = &session.scenario().leads;
                    let now = session.catheter().lead();
                    let k = shelf.iter().position(|l| *l == now).map_or(0, |k| (k + 1) % shelf.len());
                    let model = shelf[k].model;
                    apply(session, Step { t_s, action: Action::ChangeLead { model } }, out, played);
                }
                _ => {}
            }
        }
        if let Some(o) = session.outcome() {
            return Ok(o.clone());
        }
        tracker.send(case, session, t_s)?;
        fluoro.update(session, config, out, t_s)?;
        let status = status_line(session);
        if status != shown_status {
            out.app(AppMsg::Status(status.clone()));
            shown_status = status;
        }
        if !out.app(AppMsg::Heartbeat) {
            // The app closed: the case ends where the lead is.
            return Ok(finish(session, t_s, out, played));
        }
        std::thread::sleep(TICK);
    }
}

/// The trainee's instruments in one line: lead, roll, the next takeoff, fluoro and contrast.
fn status_line(session: &TrainingSession) -> String {
    let c = session.catheter();
    let e = session.exposure();
    let ahead = c.takeoffs_ahead(15.0);
    let next = ahead.first().map_or(String::new(), |t| {
        format!("; {} in {:.0} mm at roll {:+.0} deg", t.vein.abbreviation(), t.distance_mm, t.roll_deg)
    });
    format!(
        "{} in the {} | wire roll {:+.0} deg{next} | fluoro {:.0} s, {:.1} mGy, {} injections",
        c.lead().name(),
        c.lead_place().vein.abbreviation(),
        c.roll_deg(),
        e.fluoro_s,
        e.air_kerma_mgy,
        e.injections
    )
}

/// The fluoroscopy images: one a second while the pedal is held, and the last image on release.
struct Fluoro {
    next_run: u32,
    last_image_s: Option<f64>,
    was_on: bool,
}

impl Fluoro {
    fn update(&mut self, session: &TrainingSession, config: &TrainConfig, out: &Out, t_s: f64) -> anyhow::Result<()> {
        let on = session.fluoro_on();
        let due = on && self.last_image_s.is_none_or(|last| t_s - last >= FLUORO_IMAGE_S);
        let released = self.was_on && !on;
        self.was_on = on;
        if !(due || released) {
            return Ok(());
        }
        self.last_image_s = Some(t_s);
        let rendered = training::fluoro::frame(
            session.patient(),
            session.catheter(),
            config.fluoro_view,
            config.fluoro_size,
            session.since_injection_s(),
            u64::from(self.next_run),
        )
        .context("rendering the fluoroscopy image")?;
        let run = self.next_run;
        self.next_run += 1;
        let loaded = fluoro_run(run, &rendered, t_s);
        if let Some(r) = &out.rec {
            case_runs::record_run(r, &loaded);
        }
        let projection = loaded.projection.clone();
        out.app(AppMsg::Run(Arc::new(loaded), projection));
        Ok(())
    }
}

/// A fluoroscopy image as a run the app shows (the newest in the last view) and records.
fn fluoro_run(run: u32, rendered: &simulator::render::RenderedRun, t_s: f64) -> LoadedRun {
    let cine = &rendered.cine;
    let (rows, columns) = (cine.rows(), cine.columns());
    let samples = cine.samples().to_vec();
    let settings = &rendered.settings;
    let info = recording::record::RunInfo {
        run,
        source: format!("fluoro-{t_s:.1}s"),
        rows,
        columns,
        frame_count: 1,
        bits_stored: settings.bits_stored,
        frame_time_ms: None,
        primary_angle_deg: Some(settings.view.primary_deg),
        secondary_angle_deg: Some(settings.view.secondary_deg),
        camera: Some(case_runs::view_camera(&rendered.projection)),
    };
    let tree = recording::record::Segmentation2d {
        run,
        frame: 0,
        branches: Vec::new(),
        bifurcations_px: Vec::new(),
        root_px: None,
        empty_reason: Some("fluoroscopy image (not segmented)".into()),
    };
    let window = case_runs::percentile_window(&samples);
    LoadedRun {
        info,
        projection: Some(rendered.projection.clone()),
        segmented_frame: 0,
        tree,
        mask: None,
        samples,
        window,
    }
}

/// The trainee's site and the best site as a two-line ranking (the app's site table).
fn ranking_record(outcome: &Outcome) -> RankingRecord {
    let row = |rank: usize, who: &str, s: &training::site::SiteEval| device_link::ranking::RankedSite {
        rank,
        site: format!("{who}: {}", s.name()),
        eligible: s.eligible,
        best_vector: s.vector.clone(),
        score: s.value,
        reasons: s.reasons.clone(),
    };
    let mut sites = vec![row(1, "best", &outcome.best)];
    if let Some(s) = &outcome.site {
        sites.push(row(2, "yours", s));
    }
    RankingRecord { sites }
}

/// Writes debrief.html, outcome.json and script.json.
fn write_outcome(
    session: &TrainingSession,
    outcome: &Outcome,
    played: &[Step],
    tip_samples: u64,
    dir: &Path,
) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write("debrief.html", debrief::html(session, outcome).as_bytes())?;
    let json = serde_json::json!({
        "schema": "csnav.training-outcome/1",
        "scenario": session.scenario().id(),
        "outcome": outcome,
        "tip_samples_through_pipeline": tip_samples,
        "tests": session.tests(),
        "log": session.log(),
    });
    write("outcome.json", serde_json::to_string_pretty(&json)?.as_bytes())?;
    write("script.json", serde_json::to_string_pretty(played)?.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    /// The keyboard loop as the app drives it: actions arrive as commands at wall-clock time,
    /// the tips cross the OpenIGTLink link, the pedal renders images, Enter ends the case.
    #[test]
    fn the_keyboard_loop_applies_the_apps_actions_and_ends_the_case_on_enter() {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/scenarios/01-easy-lateral.toml");
        let session = TrainingSession::new(Scenario::read(&file).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let case_dir = dir.path().join("case");
        write_case(&session, &case_dir, 3).unwrap();
        let config = TrainConfig {
            case_dir,
            out_dir: dir.path().to_path_buf(),
            fluoro_view: "LAO35".parse().unwrap(),
            fluoro_size: 128,
            script: None,
        };
        let (app_tx, app_rx) = channel();
        let (command_tx, command_rx) = channel();
        let source = std::thread::spawn(move || {
            train(session, &config, &Out { app: Some(app_tx), rec: None }, Some(&command_rx)).unwrap()
        });
        // The app: wait for the tracker link, then the trainee's keys.
        let mut fluoro_runs = 0;
        let mut tips = 0;
        let mut drain = |until: &dyn Fn(&AppMsg) -> bool| {
            let deadline = Instant::now() + Duration::from_mins(1);
            while Instant::now() < deadline {
                let Ok(msg) = app_rx.recv_timeout(Duration::from_secs(1)) else { continue };
                match &msg {
                    AppMsg::Run(run, _) if run.info.source.starts_with("fluoro-") => fluoro_runs += 1,
                    AppMsg::Record(Record::Tip(_)) => tips += 1,
                    _ => {}
                }
                if until(&msg) {
                    return;
                }
            }
            panic!("the source did not answer in time");
        };
        drain(&|m| matches!(m, AppMsg::Link(LinkKind::Tracker, LinkState::Connected)));
        let send = |action: Action| command_tx.send(UiCommand::Train(action)).unwrap();
        send(Action::Fluoro { on: true });
        for _ in 0..30 {
            send(Action::AdvanceWire { mm: 1.0 });
        }
        send(Action::AdvanceLead { mm: 20.0 });
        std::thread::sleep(Duration::from_millis(300));
        send(Action::Fluoro { on: false });
        send(Action::Inject);
        send(Action::TestSite);
        send(Action::Finish);
        drain(&|m| matches!(m, AppMsg::Finished));
        drop(app_rx);
        let outcome = source.join().unwrap();
        assert!(outcome.conduct.exposure.fluoro_s > 0.2, "{:?}", outcome.conduct);
        assert_eq!(outcome.conduct.exposure.injections, 1);
        // The lead left 20 mm in, short of any side branch: the site is scored, and low.
        assert!(outcome.score.total < 80.0, "{:#?}", outcome.score);
        assert!(fluoro_runs >= 1, "no fluoroscopy image");
        assert!(tips >= 2, "no tip samples reached the app");
        let script: Vec<Step> =
            serde_json::from_slice(&std::fs::read(dir.path().join("script.json")).unwrap()).unwrap();
        assert_eq!(script.len(), 36);
        assert!(dir.path().join("debrief.html").exists());
    }
}
