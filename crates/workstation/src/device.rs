//! `csnav device-model` (the pacing analyzer and heart model on a port) and `csnav device
//! threshold|pw-threshold|pns|sweep` (the tests at a site, against any device speaking the
//! device-link protocol). The lead's electrode positions come from the case's 3D tree: the tip
//! at the site, the body back along the vein toward the ostium, as the tracked lead lies.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use device_link::client::DeviceClient;
use device_link::lead::{LeadModel, Vector, electrodes_along};
use device_link::log::{CommandLog, Journal};
use device_link::procedures::{
    PhrenicOutcome, StepDownConfig, Stepped, ThresholdOutcome, margin_ok, strength_duration_fit,
};
use device_link::protocol::{Command, OutputLimits, Role};
use device_link::ranking::{RankingConfig, SiteRecord, rank_sites};
use device_link::runner::{Run, Session, SweepSettings};
use device_link::server::{ServerConfig, serve};
use navigation::guidance::Target;
use serde::Serialize;

use crate::cli::{DeviceArgs, DeviceModelArgs, DeviceTest};
use crate::nav_case::NavCase;
use crate::session_record;
use recording::record::{Record as RecordItem, TestResultRecord};
use recording::{Recorder, SessionMode};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("csnav-device")
        .enable_all()
        .build()
        .context("starting the network runtime")
}

/// The patient's seed from the case's `patient.json`.
fn case_seed(case: &std::path::Path) -> anyhow::Result<u64> {
    #[derive(serde::Deserialize)]
    struct Seed {
        seed: u64,
    }
    let path = case.join("patient.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str::<Seed>(&text).with_context(|| format!("reading the seed of {}", path.display()))?.seed)
}

/// Runs `csnav device-model`.
pub fn run_model(args: &DeviceModelArgs) -> anyhow::Result<ExitCode> {
    let seed = match (&args.case, args.seed) {
        (Some(case), _) => case_seed(case)?,
        (None, Some(seed)) => seed,
        (None, None) => bail!("give --case DIR (its synthetic patient) or --seed N"),
    };
    let mut config = ServerConfig::default();
    if !(500.0..=1000.0).contains(&args.egm_hz) {
        bail!("--egm-hz {} is outside 500-1000 Hz", args.egm_hz);
    }
    config.analyzer.egm_rate_hz = args.egm_hz;
    if let Some(max) = args.max_volts {
        let top = OutputLimits::default().amplitudes_volts().last().copied().unwrap_or(10.0);
        if !(0.1..=top).contains(&max) {
            bail!("--max-volts {max} is outside 0.1-{top} V");
        }
        config.analyzer.limits.max_amplitude_volts = max;
        config.analyzer.safe_program.amplitude_volts = config.analyzer.safe_program.amplitude_volts.min(max);
        config.analyzer.emergency_program.amplitude_volts = config.analyzer.emergency_program.amplitude_volts.min(max);
    }
    let log = match &args.log {
        Some(path) => {
            Some(CommandLog::open(path).with_context(|| format!("opening the command log {}", path.display()))?)
        }
        None => None,
    };
    let patient = simulator::SyntheticPatient::generate(seed);
    runtime()?.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        eprintln!(
            "device model (synthetic patient {seed}, max {:.1} V) on {}; research software, not a medical device",
            config.analyzer.limits.max_amplitude_volts,
            listener.local_addr()?
        );
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve(listener, patient, config, log, shutdown));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async {
                match args.duration_s {
                    Some(s) => tokio::time::sleep(std::time::Duration::from_secs_f64(s)).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let _ = stop.send(true);
        let _ = server.await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The electrode positions of `lead` with its tip at `site` (VEIN@FRACTION) in the case.
pub(crate) fn electrodes_at(case: &NavCase, lead: LeadModel, target: &Target) -> anyhow::Result<[[f64; 3]; 4]> {
    // Back from the tip toward the ostium, 1 mm at a time.
    let path: Vec<[f64; 3]> = (0..=target.arc_mm.floor() as usize)
        .map(|k| {
            let p = case.point_toward(target.branch, target.arc_mm - k as f64);
            [p.x, p.y, p.z]
        })
        .collect();
    electrodes_along(lead, &path)
        .with_context(|| format!("the {lead:?} is longer than the vein path from {} to the ostium", target.name))
}

/// A vector by its name (`D1-RV coil`, `LV2-LV3`) or index in the lead's list.
fn parse_vector(lead: LeadModel, spec: &str) -> anyhow::Result<Vector> {
    let vectors = lead.vectors();
    if let Ok(k) = spec.trim().parse::<usize>() {
        return vectors.get(k).copied().with_context(|| format!("vector index {k} is outside 0-{}", vectors.len() - 1));
    }
    let norm = |s: &str| s.to_ascii_lowercase().replace([' ', '_'], "");
    vectors.into_iter().find(|v| norm(&lead.vector_name(*v)) == norm(spec)).with_context(|| {
        let names: Vec<String> = lead.vectors().into_iter().map(|v| lead.vector_name(v)).collect();
        format!("unknown vector {spec:?} for the {lead:?}: one of {}", names.join(", "))
    })
}

/// The record `--json` prints.
#[derive(Serialize)]
struct Record<'a, T: Serialize> {
    test: &'a str,
    site: &'a str,
    lead: LeadModel,
    vector: Option<String>,
    #[serde(flatten)]
    result: T,
}

/// Result of `pw-threshold`.
#[derive(Serialize)]
struct PwResult {
    pulse_width: Run<ThresholdOutcome>,
    amplitude: Run<ThresholdOutcome>,
    rheobase_volts: Option<f64>,
    chronaxie_ms: Option<f64>,
}

/// Result of `pns`.
#[derive(Serialize)]
struct PnsResult {
    capture: Run<ThresholdOutcome>,
    phrenic: Run<PhrenicOutcome>,
    margin_ok: Option<bool>,
}

/// What a test prints, and whether it ran to its end.
struct Outcome {
    json: serde_json::Value,
    text: String,
    complete: bool,
    /// The thresholds found, for the recording.
    results: Vec<TestResultRecord>,
}

impl Outcome {
    fn new<T: Serialize>(
        args: &DeviceArgs,
        test: &str,
        vector: Option<String>,
        result: T,
        text: String,
        complete: bool,
    ) -> anyhow::Result<Self> {
        let json = serde_json::to_value(Record { test, site: &args.site, lead: args.lead, vector, result })?;
        Ok(Self { json, text, complete, results: Vec::new() })
    }

    /// Adds a result for the recording.
    fn with_result(
        mut self,
        args: &DeviceArgs,
        vector: String,
        capture: Option<&Run<ThresholdOutcome>>,
        phrenic: Option<&Run<PhrenicOutcome>>,
        complete: bool,
    ) -> Self {
        let test = self.json.get("test").and_then(serde_json::Value::as_str).unwrap_or("test").to_owned();
        self.results.push(TestResultRecord {
            site: args.site.clone(),
            test,
            vector: Some(vector),
            capture_threshold_volts: capture.and_then(capture_volts),
            phrenic_threshold_volts: phrenic.and_then(phrenic_volts),
            complete,
            detail: self.json.clone(),
        });
        self
    }
}

/// The capture threshold of a complete amplitude test, volts.
fn capture_volts(run: &Run<ThresholdOutcome>) -> Option<f64> {
    match run.complete() {
        Some(ThresholdOutcome::Threshold { value, .. }) => Some(*value),
        _ => None,
    }
}

/// The phrenic threshold of a complete phrenic test, volts.
fn phrenic_volts(run: &Run<PhrenicOutcome>) -> Option<f64> {
    match run.complete() {
        Some(PhrenicOutcome::Threshold { volts }) => Some(*volts),
        _ => None,
    }
}

/// Runs `csnav device TEST`.
pub fn run_test(args: &DeviceArgs) -> anyhow::Result<ExitCode> {
    let case = NavCase::load(&args.case)?;
    let lead = args.lead;
    // The site, named by itself: "PLV@0.67".
    let target = case.parse_target(&format!("{0}={0}", args.site))?;
    let electrodes = electrodes_at(&case, lead, &target)?;
    let vector = args.vector.as_deref().map(|v| parse_vector(lead, v)).transpose()?.unwrap_or(lead.vectors()[0]);
    let position = site_position(&case, &target, electrodes[0]);
    let log = match &args.log {
        Some(path) => {
            Some(CommandLog::open(path).with_context(|| format!("opening the command log {}", path.display()))?)
        }
        None => None,
    };
    let config = serde_json::json!({
        "test": format!("{:?}", args.test), "device": args.device, "site": args.site, "lead": args.lead,
        "vector": args.vector, "start_volts": args.start_volts, "pulse_width_ms": args.pulse_width_ms,
        "beats_per_step": args.beats_per_step,
    });
    let recorder = session_record::open(&args.record, "device", &args.case, SessionMode::Simulator, config)?;
    let rec = recorder.as_ref().map(Recorder::sender);
    if let Some(rec) = &rec {
        rec.send(RecordItem::Target(session_record::target(&case, &target)));
    }
    let mut journal = (log, rec.clone());
    let code = runtime()?.block_on(async {
        let (client, mut events) = DeviceClient::connect(&args.device, "csnav", Role::Control).await?;
        let mut session = Session {
            client: &client,
            events: &mut events,
            journal: Some(&mut journal as &mut dyn Journal),
            site: args.site.clone(),
            epoch: tokio::time::Instant::now(),
        };
        session
            .command(Command::PlaceLead { lead, electrodes_in_patient_mm: electrodes, site: args.site.clone() })
            .await
            .map_err(|e| anyhow::anyhow!("placing the lead: {e}"))?;
        let step_down = StepDownConfig {
            beats_per_step: args.beats_per_step,
            coarse_step: args.coarse_volts,
            ..StepDownConfig::default()
        };
        let outcome = {
            let test = async {
                match args.test {
                    DeviceTest::Threshold => threshold_test(&mut session, args, vector, step_down).await,
                    DeviceTest::PwThreshold => pw_test(&mut session, args, vector, step_down).await,
                    DeviceTest::Pns => pns_test(&mut session, args, vector, step_down).await,
                    DeviceTest::Sweep => sweep_test(&mut session, args, step_down, position).await,
                }
            };
            tokio::pin!(test);
            // Ctrl-C stops the test: the device goes to safe pacing at once and the result is
            // reported incomplete.
            tokio::select! {
                outcome = &mut test => outcome?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("stopping the test: safe pacing");
                    client.request(Command::Stop).await?;
                    test.await?
                }
            }
        };
        drop(session);
        client.close().await;
        if args.json {
            println!("{}", outcome.json);
        } else {
            println!("{}", outcome.text);
        }
        if let Some(rec) = &rec {
            for result in &outcome.results {
                rec.send(RecordItem::TestResult(Box::new(result.clone())));
            }
        }
        anyhow::Ok(if outcome.complete { ExitCode::SUCCESS } else { ExitCode::from(3) })
    });
    // Whatever happened, what was measured is in the recording.
    drop(rec);
    session_record::finish(recorder)?;
    code
}

/// The amplitude threshold at the command line's pulse width and start.
async fn amplitude_threshold(
    session: &mut Session<'_>,
    args: &DeviceArgs,
    vector: Vector,
    step_down: StepDownConfig,
) -> Run<ThresholdOutcome> {
    session
        .threshold(vector, Stepped::Amplitude { pulse_width_ms: args.pulse_width_ms }, args.start_volts, step_down)
        .await
}

async fn threshold_test(
    session: &mut Session<'_>,
    args: &DeviceArgs,
    vector: Vector,
    step_down: StepDownConfig,
) -> anyhow::Result<Outcome> {
    let name = args.lead.vector_name(vector);
    let run = amplitude_threshold(session, args, vector, step_down).await;
    let text = match &run {
        Run::Complete { result: ThresholdOutcome::Threshold { value, at_floor } } => format!(
            "{name}: capture threshold {value:.1} V at {:.1} ms{}",
            args.pulse_width_ms,
            if *at_floor { " (or lower: still capturing at the table's floor)" } else { "" }
        ),
        Run::Complete { result: ThresholdOutcome::NoCaptureAtStart { start } } => {
            format!("{name}: no capture at {start:.1} V")
        }
        Run::Incomplete { reason } => format!("{name}: INCOMPLETE ({reason}): no threshold"),
    };
    let complete = run.is_complete();
    Ok(Outcome::new(args, "threshold", Some(name.clone()), &run, text, complete)?.with_result(
        args,
        name,
        Some(&run),
        None,
        complete,
    ))
}

async fn pw_test(
    session: &mut Session<'_>,
    args: &DeviceArgs,
    vector: Vector,
    step_down: StepDownConfig,
) -> anyhow::Result<Outcome> {
    let name = args.lead.vector_name(vector);
    let amplitude = args.amplitude_volts;
    let pw = session.threshold(vector, Stepped::PulseWidth { amplitude_volts: amplitude }, 1.5, step_down).await;
    let amp = amplitude_threshold(session, args, vector, step_down).await;
    let fit = match (amp.complete(), pw.complete()) {
        (
            Some(ThresholdOutcome::Threshold { value: v, at_floor: false }),
            Some(ThresholdOutcome::Threshold { value: d, at_floor: false }),
        ) => strength_duration_fit(*v, args.pulse_width_ms, *d, amplitude),
        _ => None,
    };
    let text = format!(
        "{name}: pulse-width threshold {} at {amplitude:.1} V; amplitude threshold {} at {:.1} ms; {}",
        describe(&pw, "ms"),
        describe(&amp, "V"),
        args.pulse_width_ms,
        fit.map_or("no strength-duration fit".to_owned(), |(r, c)| format!(
            "Weiss fit: rheobase {r:.2} V, chronaxie {c:.2} ms"
        ))
    );
    let complete = pw.is_complete() && amp.is_complete();
    let capture = amp.clone();
    let result =
        PwResult { pulse_width: pw, amplitude: amp, rheobase_volts: fit.map(|f| f.0), chronaxie_ms: fit.map(|f| f.1) };
    Ok(Outcome::new(args, "pw_threshold", Some(name.clone()), result, text, complete)?.with_result(
        args,
        name,
        Some(&capture),
        None,
        complete,
    ))
}

fn describe_phrenic(run: &Run<PhrenicOutcome>) -> String {
    match run {
        Run::Complete { result: PhrenicOutcome::NoneAtScreen { screen_volts } } => {
            format!("none at {screen_volts:.1} V")
        }
        Run::Complete { result: PhrenicOutcome::Threshold { volts } } => format!("stimulated down to {volts:.1} V"),
        Run::Incomplete { reason } => format!("INCOMPLETE ({reason})"),
    }
}

async fn pns_test(
    session: &mut Session<'_>,
    args: &DeviceArgs,
    vector: Vector,
    step_down: StepDownConfig,
) -> anyhow::Result<Outcome> {
    let name = args.lead.vector_name(vector);
    let capture = amplitude_threshold(session, args, vector, step_down).await;
    let pns = session.phrenic(vector, args.pns_screen_volts, args.pulse_width_ms, args.beats_per_step).await;
    let margin = match (capture.complete(), pns.complete()) {
        (Some(ThresholdOutcome::Threshold { value, .. }), Some(p)) => Some(margin_ok(*value, p, args.pns_margin)),
        _ => None,
    };
    let text = format!(
        "{name}: capture {}; phrenic {}; margin {}",
        describe(&capture, "V"),
        describe_phrenic(&pns),
        match margin {
            Some(true) => format!("OK (at least {:.1}x)", args.pns_margin),
            Some(false) => format!("NOT MET (under {:.1}x)", args.pns_margin),
            None => "unknown".to_owned(),
        }
    );
    let complete = capture.is_complete() && pns.is_complete();
    let outcome = Outcome::new(
        args,
        "pns",
        Some(name.clone()),
        PnsResult { capture: capture.clone(), phrenic: pns.clone(), margin_ok: margin },
        text,
        complete,
    )?;
    Ok(outcome.with_result(args, name, Some(&capture), Some(&pns), complete))
}

/// Where a site is, for its record: vein, arc length, apical or not.
pub(crate) struct SitePosition {
    pub(crate) vein: String,
    pub(crate) arc_mm: f64,
    pub(crate) apical: bool,
}

/// The site's vein and arc from the case's tree, apical from the case's LV (the tip in the
/// apical third of the base-to-apex length).
pub(crate) fn site_position(case: &NavCase, target: &Target, tip: [f64; 3]) -> SitePosition {
    let patient = simulator::SyntheticPatient::generate(case.seed);
    let depth = patient.lv.coord_of(&nalgebra::Point3::from(tip)).depth;
    SitePosition {
        vein: case.tree.branches[target.branch].label.abbreviation().to_owned(),
        arc_mm: target.arc_mm,
        apical: depth > 2.0 / 3.0,
    }
}

async fn sweep_test(
    session: &mut Session<'_>,
    args: &DeviceArgs,
    step_down: StepDownConfig,
    position: SitePosition,
) -> anyhow::Result<Outcome> {
    use std::fmt::Write as _;
    let lead = args.lead;
    let settings = SweepSettings {
        start_volts: args.start_volts,
        pulse_width_ms: args.pulse_width_ms,
        step_down: StepDownConfig { coarse_step: args.coarse_volts.or(Some(0.5)), ..step_down },
        pns_screen_volts: args.pns_screen_volts,
        pns_margin: args.pns_margin,
    };
    eprintln!(
        "sweeping {} vectors of the {lead:?}: about {:.0} s",
        lead.vectors().len(),
        settings.estimate_ms(lead) / 1000.0
    );
    let results = session.sweep(lead, &settings, |done, total| eprintln!("  {done}/{total} vectors done")).await;
    let mut text = String::new();
    for r in &results {
        let margin = match r.margin_ok {
            Some(true) => "ok",
            Some(false) => "NOT MET",
            None => "-",
        };
        let measured = r.measurements.map_or(String::new(), |m| {
            format!(
                "{:.0} ohm, R {:.1} mV, QLV {:.0} ms ({:.2} QRS)",
                m.impedance_ohm,
                m.r_wave_mv,
                m.qlv_ms,
                m.qlv_ms / m.qrs_duration_ms
            )
        });
        let _ = writeln!(
            text,
            "{:<12} capture {:<22} PNS {:<24} margin {margin:<8} {measured}",
            r.name,
            describe(&r.threshold, "V"),
            describe_phrenic(&r.phrenic)
        );
    }
    let complete = results.len() == lead.vectors().len()
        && results.iter().all(|r| r.threshold.is_complete() && r.phrenic.is_complete());
    let per_vector: Vec<(String, Run<ThresholdOutcome>, Run<PhrenicOutcome>)> =
        results.iter().map(|r| (r.name.clone(), r.threshold.clone(), r.phrenic.clone())).collect();
    let record = SiteRecord {
        site: args.site.clone(),
        vein: Some(position.vein),
        arc_mm: Some(position.arc_mm),
        apical: position.apical,
        scar: None,
        vectors: results,
    };
    let mut outcome = Outcome::new(args, "sweep", None, record, text.trim_end().to_owned(), complete)?;
    for (name, capture, phrenic) in per_vector {
        let done = capture.is_complete() && phrenic.is_complete();
        outcome = outcome.with_result(args, name, Some(&capture), Some(&phrenic), done);
    }
    Ok(outcome)
}

fn describe(run: &Run<ThresholdOutcome>, unit: &str) -> String {
    match run {
        Run::Complete { result: ThresholdOutcome::Threshold { value, at_floor: false } } => {
            format!("{value:.1} {unit}")
        }
        Run::Complete { result: ThresholdOutcome::Threshold { value, at_floor: true } } => {
            format!("<= {value:.1} {unit}")
        }
        Run::Complete { result: ThresholdOutcome::NoCaptureAtStart { start } } => format!("none at {start:.1} {unit}"),
        Run::Incomplete { reason } => format!("INCOMPLETE ({reason})"),
    }
}

/// Runs `csnav device-rank`: ranks the sites of saved sweep records.
pub fn run_rank(args: &crate::cli::DeviceRankArgs) -> anyhow::Result<ExitCode> {
    let mut records = Vec::new();
    for path in &args.sweeps {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let record: SiteRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a `csnav device sweep --json` record", path.display()))?;
        records.push(record);
    }
    let config = RankingConfig {
        max_threshold_volts: args.max_threshold_volts,
        pns_margin: args.pns_margin,
        ..RankingConfig::default()
    };
    let ranked = rank_sites(&records, &config);
    if args.json {
        println!("{}", serde_json::to_string(&serde_json::json!({ "config": config, "ranking": ranked }))?);
    } else {
        for r in &ranked {
            let score = r.score.map_or("not eligible".to_owned(), |s| format!("score {s:.2}"));
            println!("{}. {} ({score}): {}", r.rank, r.site, r.reasons.join("; "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
