//! The scripted procedure on a synthetic case (`csnav demo`, `csnav sim`): the venogram runs
//! read and segmented, the 3D tree, three candidate sites on two branches, a tracked lead tip
//! driven along the tree at the tracker's rate through csnav's navigation pipeline, and at
//! each site the device tests over the real device link against the in-process device model
//! (impedance, R wave and QLV of every vector, then capture threshold and PNS of the two
//! vectors with the latest LV activation), and the ranking of the sites. Everything goes to the
//! app (as [`AppMsg`]s) and to the recording as it happens.
//!
//! After the script the tip stays parked and keeps streaming (a tracker does not go quiet
//! because the procedure paused); in simulator mode the source then follows the user's
//! target selection and drives the tip there.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use anyhow::Context as _;
use device_link::client::DeviceClient;
use device_link::lead::LeadModel;
use device_link::log::Journal;
use device_link::procedures::{StepDownConfig, Stepped, ThresholdOutcome};
use device_link::protocol::{Command, Event, Role};
use device_link::ranking::{RankingConfig, SiteRecord, rank_sites};
use device_link::runner::{Run, Session, VectorResult};
use device_link::server::{ServerConfig, serve};
use nalgebra::Vector3;
use navigation::guidance::Target;
use recording::RecordSender;
use recording::record::{Level, NoteRecord, RankingRecord, Record, TestResultRecord, TipRecord};
use simulator::rng::SimRng;
use venogram::labels::VeinLabel;

use crate::app::{AppMsg, LinkKind, LinkState, LvMesh, UiCommand};
use crate::case_runs;
use crate::nav_case::NavCase;
use crate::session_record::{self, TipPipeline};

/// The tracker's sample rate, Hz.
pub const TIP_RATE_HZ: f64 = 100.0;
/// The tracked tool's name.
pub const TOOL: &str = "lead-tip";
/// Random stream of the simulated tracker's noise.
const NOISE_STREAM: u64 = 0x6465_6d6f;

/// How the procedure runs.
#[derive(Debug, Clone)]
pub struct ProcedureConfig {
    /// The case folder.
    pub case: PathBuf,
    /// Tip speed when advancing or retracting, mm/s.
    pub speed_mm_s: f64,
    /// Tracker noise (RMS of the 3D displacement), mm.
    pub noise_mm: f64,
    /// Noise seed.
    pub seed: u64,
    /// Run the device tests (else only navigation).
    pub device_tests: bool,
    /// After the script, follow the user's target selection (simulator mode).
    pub interactive: bool,
}

/// What the procedure did, for the summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ProcedureSummary {
    /// Runs shown.
    pub runs: usize,
    /// Tip samples sent.
    pub tip_samples: u64,
    /// Sites tested.
    pub sites: Vec<String>,
    /// The ranking, best first.
    pub ranking: Vec<device_link::ranking::RankedSite>,
}

/// Sends to the app and the recording together.
#[derive(Clone)]
struct Out {
    app: Sender<AppMsg>,
    rec: Option<RecordSender>,
}

impl Out {
    /// Sends a record to both; false when the app has gone.
    fn record(&self, record: &Record) -> bool {
        if let Some(r) = &self.rec {
            r.send(record.clone());
        }
        self.app.send(AppMsg::Record(record.clone())).is_ok()
    }

    fn app(&self, msg: AppMsg) -> bool {
        self.app.send(msg).is_ok()
    }

    fn step(&self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("{text}");
        if let Some(r) = &self.rec {
            r.send(Record::Note(NoteRecord { topic: "procedure".into(), level: Level::Info, text: text.clone() }));
        }
        let _ = self.app.send(AppMsg::Step(text));
    }
}

/// The device session's journal: the recording and the app's device panel.
struct Journaled {
    out: Out,
}

impl Journal for Journaled {
    fn command(
        &mut self,
        t_ms: f64,
        site: Option<&str>,
        who: &str,
        command: &Command,
        result: &Result<device_link::protocol::Reply, device_link::protocol::DeviceError>,
    ) {
        self.out.rec.command(t_ms, site, who, command, result);
    }

    fn event(&mut self, t_ms: f64, site: Option<&str>, event: &Event) {
        self.out.record(&Record::device_event(t_ms, site, event));
    }
}

/// The LV epicardium of the synthetic patient as a triangle mesh.
#[must_use]
pub fn lv_mesh(patient: &simulator::SyntheticPatient) -> LvMesh {
    const RINGS: usize = 24;
    const SECTORS: usize = 48;
    let mut positions_mm = Vec::with_capacity((RINGS + 1) * SECTORS);
    for r in 0..=RINGS {
        let depth = r as f64 / RINGS as f64;
        for s in 0..SECTORS {
            let angle_rad = std::f64::consts::TAU * s as f64 / SECTORS as f64;
            let p = patient.lv.point(simulator::heart::SurfaceCoord { depth, angle_rad }, 0.0);
            positions_mm.push([p.x as f32, p.y as f32, p.z as f32]);
        }
    }
    let mut triangles = Vec::with_capacity(RINGS * SECTORS * 2);
    for r in 0..RINGS {
        for s in 0..SECTORS {
            let a = (r * SECTORS + s) as u32;
            let b = (r * SECTORS + (s + 1) % SECTORS) as u32;
            let (c, d) = (a + SECTORS as u32, b + SECTORS as u32);
            triangles.push([a, c, b]);
            triangles.push([b, c, d]);
        }
    }
    LvMesh { positions_mm, triangles }
}

/// The three candidate sites: middle and distal third of the preferred lateral branch, and
/// the middle of a second branch (the other lateral vein, else the middle cardiac vein).
fn candidate_sites(case: &NavCase) -> anyhow::Result<Vec<Target>> {
    let first = case.default_target().context("the case has no PLV or LMV to aim at")?;
    let first_label = case.tree.branches[first.branch].label;
    let site = |branch: usize, fraction: f64| {
        let b = &case.tree.branches[branch];
        let label = b.label.abbreviation();
        Target {
            name: format!("{label}@{fraction:.2}"),
            branch,
            arc_mm: b.takeoff_arc_mm + fraction * (b.end_arc_mm() - b.takeoff_arc_mm),
        }
    };
    let second = [
        VeinLabel::LateralMarginalVein,
        VeinLabel::PosterolateralVein,
        VeinLabel::MiddleCardiacVein,
        VeinLabel::AnteriorInterventricularVein,
    ]
    .into_iter()
    .filter(|l| *l != first_label)
    .find_map(|l| case.branch_labelled(l))
    .context("the case has only one side branch")?;
    Ok(vec![site(first.branch, 0.5), site(first.branch, 0.8), site(second, 0.6)])
}

/// The arc (from the ostium) where the paths to `a` and `b` part.
fn parting_arc_mm(case: &NavCase, a: &Target, b: &Target) -> f64 {
    let (up, down) = (case.tree.lineage(a.branch), case.tree.lineage(b.branch));
    let common = up.iter().zip(&down).take_while(|(x, y)| x == y).count();
    let takeoff = |lineage: &[usize], s: f64| lineage.get(common).map_or(s, |k| case.tree.branches[*k].takeoff_arc_mm);
    takeoff(&up, a.arc_mm).min(takeoff(&down, b.arc_mm))
}

/// The simulated tracker: a tip moving along the tree, sampled at [`TIP_RATE_HZ`] in real
/// time through the navigation pipeline.
struct TipDriver {
    case: Arc<NavCase>,
    pipeline: TipPipeline,
    rng: SimRng,
    sigma_mm: f64,
    toward: Target,
    arc_mm: f64,
    t0: tokio::time::Instant,
    next: tokio::time::Instant,
    samples: u64,
    last: Option<TipRecord>,
}

impl TipDriver {
    /// One sample where the tip is now; false when the app has gone.
    fn sample(&mut self, out: &Out) -> bool {
        let noise = Vector3::new(
            self.rng.normal(0.0, self.sigma_mm),
            self.rng.normal(0.0, self.sigma_mm),
            self.rng.normal(0.0, self.sigma_mm),
        );
        let tracker_from_sensor =
            self.case.tracker_from_sensor_toward(&self.toward, self.arc_mm, noise).to_homogeneous();
        let t_ms = self.t0.elapsed().as_secs_f64() * 1e3;
        let tip = self.pipeline.process(
            &self.case.tree,
            &self.case.registration,
            TOOL,
            t_ms,
            &tracker_from_sensor,
            false,
            0.0,
        );
        self.samples += 1;
        self.last = Some(tip.clone());
        out.record(&Record::Tip(Box::new(tip)))
    }

    /// Waits for the next sample time.
    async fn tick(&mut self) {
        self.next += Duration::from_secs_f64(1.0 / TIP_RATE_HZ);
        tokio::time::sleep_until(self.next).await;
    }

    /// Drives the tip to `goal`: back along its current path to where the paths part, then
    /// on toward `goal`; false when the app has gone.
    async fn drive_to(&mut self, out: &Out, goal: &Target, speed_mm_s: f64) -> bool {
        let from = self.toward.clone();
        let parting = parting_arc_mm(&self.case, &from, goal);
        if parting < self.arc_mm - 1e-6 {
            out.step(format!("retracting to {parting:.0} mm from the ostium"));
            if !self.go(out, &from, parting, speed_mm_s).await {
                return false;
            }
        }
        out.step(format!("advancing to {}", goal.name));
        out.app(AppMsg::Select(goal.name.clone()));
        self.go(out, goal, goal.arc_mm, speed_mm_s).await
    }

    /// Moves the tip along the path to `toward` until it is `to_arc_mm` from the ostium.
    async fn go(&mut self, out: &Out, toward: &Target, to_arc_mm: f64, speed_mm_s: f64) -> bool {
        self.toward = toward.clone();
        let step = speed_mm_s / TIP_RATE_HZ;
        loop {
            let left = to_arc_mm - self.arc_mm;
            self.arc_mm += left.clamp(-step, step);
            if !self.sample(out) {
                return false;
            }
            if left.abs() <= step {
                return true;
            }
            self.tick().await;
        }
    }
}

/// Runs the procedure until the app goes away; returns what it did.
pub fn run(
    config: &ProcedureConfig,
    app: Sender<AppMsg>,
    commands: &Receiver<UiCommand>,
    rec: Option<RecordSender>,
) -> anyhow::Result<ProcedureSummary> {
    let out = Out { app, rec };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the procedure's runtime")?;
    runtime.block_on(procedure(config, &out, commands))
}

#[allow(clippy::too_many_lines, reason = "the script, step by step")]
async fn procedure(
    config: &ProcedureConfig,
    out: &Out,
    commands: &Receiver<UiCommand>,
) -> anyhow::Result<ProcedureSummary> {
    let mut summary = ProcedureSummary::default();
    out.app(AppMsg::Link(LinkKind::Tracker, LinkState::Connecting));
    out.app(AppMsg::Link(
        LinkKind::Device,
        if config.device_tests { LinkState::Connecting } else { LinkState::NotUsed },
    ));
    let case = Arc::new(NavCase::load(&config.case)?);
    let patient = simulator::SyntheticPatient::generate(case.seed);
    out.app(AppMsg::Lv(Arc::new(lv_mesh(&patient))));

    // The venogram runs, segmented.
    let sites = candidate_sites(&case)?;
    let mut pipeline = TipPipeline::new(Some(sites[0].clone()));
    pipeline.views = case_runs::load_case_runs(
        &config.case,
        out.rec.as_ref(),
        |step| out.step(step),
        |run| {
            let projection = run.projection.clone();
            out.app(AppMsg::Run(run, projection));
            summary.runs += 1;
        },
    )?;
    out.record(&Record::Tree3d(session_record::tree3d(&case, "simulator truth (not reconstructed)")));
    out.record(&Record::Registration(session_record::registration(&case)));
    for site in &sites {
        out.record(&Record::Target(session_record::target(&case, site)));
    }

    // The tracker starts streaming at the ostium.
    let sigma_mm = config.noise_mm / 3f64.sqrt();
    let now = tokio::time::Instant::now();
    let mut tip = TipDriver {
        case: case.clone(),
        pipeline,
        rng: SimRng::new(config.seed, NOISE_STREAM),
        sigma_mm,
        toward: sites[0].clone(),
        arc_mm: 0.0,
        t0: now,
        next: now,
        samples: 0,
        last: None,
    };
    out.app(AppMsg::Link(LinkKind::Tracker, LinkState::Connected));

    // The device model, in process, over the real device link.
    let device = if config.device_tests {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the device model")?;
        let addr = listener.local_addr()?.to_string();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve(listener, patient.clone(), ServerConfig::default(), None, shutdown));
        let (client, events) = DeviceClient::connect(&addr, "csnav-demo", Role::Control).await?;
        out.app(AppMsg::Link(LinkKind::Device, LinkState::Connected));
        Some((client, events, stop, server))
    } else {
        None
    };
    let mut device = device;
    let mut records: Vec<SiteRecord> = Vec::new();
    for site in &sites {
        if !tip.drive_to(out, site, config.speed_mm_s).await {
            return Ok(finish(summary, tip.samples));
        }
        let Some((client, events, _, _)) = device.as_mut() else { continue };
        let tested = {
            let mut journal = Journaled { out: out.clone() };
            let session =
                Session { client, events, journal: Some(&mut journal), site: site.name.clone(), epoch: tip.t0 };
            // The tip keeps streaming while the device tests run.
            let streaming = stream_parked(&mut tip, out);
            let testing = test_site(session, &case, site, out);
            tokio::pin!(testing);
            tokio::select! {
                tested = &mut testing => tested,
                () = streaming => return Ok(finish(summary, tip.samples)),
            }
        };
        let record = tested?;
        summary.sites.push(record.site.clone());
        records.push(record.clone());
        out.record(&Record::Site(Box::new(record)));
        out.record(&Record::Ranking(RankingRecord { sites: rank_sites(&records, &RankingConfig::default()) }));
    }
    let ranking = rank_sites(&records, &RankingConfig::default());
    for r in &ranking {
        let text = format!(
            "rank {}: {} {}",
            r.rank,
            r.site,
            r.score.map_or_else(
                || format!("not eligible ({})", r.reasons.join("; ")),
                |s| format!("score {s:.2}, {}", r.best_vector.as_deref().unwrap_or("-"))
            )
        );
        out.step(text);
    }
    summary.ranking = ranking;
    if let Some((client, _, stop, server)) = device.take() {
        client.close().await;
        let _ = stop.send(true);
        let _ = server.await;
        out.app(AppMsg::Link(LinkKind::Device, LinkState::NotUsed));
    }
    out.step("procedure complete; tip parked");
    out.app(AppMsg::Finished);

    // Parked (and, in simulator mode, following the selection) until the app goes away.
    loop {
        if let Ok(UiCommand::SelectTarget(name)) = commands.try_recv()
            && config.interactive
            && let Some(goal) = sites.iter().find(|s| s.name == name)
            && !tip.drive_to(out, goal, config.speed_mm_s).await
        {
            break;
        }
        if !tip.sample(out) {
            break;
        }
        tip.tick().await;
    }
    Ok(finish(summary, tip.samples))
}

fn finish(mut summary: ProcedureSummary, samples: u64) -> ProcedureSummary {
    summary.tip_samples = samples;
    summary
}

/// Streams the parked tip until the app goes away (never returns otherwise).
async fn stream_parked(tip: &mut TipDriver, out: &Out) {
    loop {
        if !tip.sample(out) {
            return;
        }
        tip.tick().await;
    }
}

/// The device tests at one site.
async fn test_site(mut session: Session<'_>, case: &NavCase, site: &Target, out: &Out) -> anyhow::Result<SiteRecord> {
    let lead = LeadModel::Quartet;
    let electrodes = crate::device::electrodes_at(case, lead, site)?;
    session
        .command(Command::PlaceLead { lead, electrodes_in_patient_mm: electrodes, site: site.name.clone() })
        .await
        .map_err(|e| anyhow::anyhow!("placing the lead at {}: {e}", site.name))?;
    out.step(format!("{}: measuring impedance, R wave and QLV of {} vectors", site.name, lead.vectors().len()));
    let mut measured = Vec::new();
    for vector in lead.vectors() {
        measured.push((vector, session.measure(vector).await.ok()));
    }
    // The two vectors with the latest LV activation (QLV) get the pacing tests.
    let mut order: Vec<usize> = (0..measured.len()).collect();
    order.sort_by(|a, b| {
        let q = |k: usize| measured[k].1.map_or(f64::MIN, |m| m.qlv_ms);
        q(*b).total_cmp(&q(*a))
    });
    let step_down = StepDownConfig {
        beats_per_step: 2,
        losses_for_loss: 2,
        rate_bpm: 120.0,
        coarse_step: Some(1.0),
        ..StepDownConfig::default()
    };
    let mut vectors = Vec::new();
    for &k in order.iter().take(2) {
        let (vector, measurements) = measured[k];
        let name = lead.vector_name(vector);
        out.step(format!("{}: capture threshold, {name}", site.name));
        let threshold = session.threshold(vector, Stepped::Amplitude { pulse_width_ms: 0.5 }, 4.0, step_down).await;
        let capture = match &threshold {
            Run::Complete { result: ThresholdOutcome::Threshold { value, .. } } => Some(*value),
            _ => None,
        };
        record_result(out, site, "threshold", &name, capture, None, threshold.is_complete(), &threshold);
        out.step(format!("{}: phrenic screen, {name}", site.name));
        let phrenic = session.phrenic(vector, 8.0, 0.5, 2).await;
        let pns = match &phrenic {
            Run::Complete { result: device_link::procedures::PhrenicOutcome::Threshold { volts } } => Some(*volts),
            _ => None,
        };
        record_result(out, site, "phrenic", &name, None, pns, phrenic.is_complete(), &phrenic);
        let margin_ok = match (threshold.complete(), phrenic.complete()) {
            (Some(ThresholdOutcome::Threshold { value, .. }), Some(p)) => {
                Some(device_link::procedures::margin_ok(*value, p, 2.0))
            }
            _ => None,
        };
        vectors.push(VectorResult { vector, name, measurements, threshold, phrenic, margin_ok });
    }
    let position = crate::device::site_position(case, site, case.point_toward(site.branch, site.arc_mm).into());
    Ok(SiteRecord {
        site: site.name.clone(),
        vein: Some(position.vein),
        arc_mm: Some(position.arc_mm),
        apical: position.apical,
        scar: None,
        vectors,
    })
}

#[allow(clippy::too_many_arguments, reason = "a result's fields, named at every call")]
fn record_result<T: serde::Serialize>(
    out: &Out,
    site: &Target,
    test: &str,
    vector: &str,
    capture: Option<f64>,
    phrenic: Option<f64>,
    complete: bool,
    detail: &T,
) {
    let record = TestResultRecord {
        site: site.name.clone(),
        test: test.to_owned(),
        vector: Some(vector.to_owned()),
        capture_threshold_volts: capture,
        phrenic_threshold_volts: phrenic,
        complete,
        detail: serde_json::to_value(detail).unwrap_or(serde_json::Value::Null),
    };
    out.record(&Record::TestResult(Box::new(record)));
}
