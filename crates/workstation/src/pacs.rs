//! `csnav pacs`: echo, find, get (C-MOVE to csnav's own storage SCP) and send, against a PACS
//! or any DICOM node (dicom-net's SCU).

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dicom_net::scu::{self, MatchKey, Query, QueryLevel, ScuConfig};
use dicom_net::{ScpEvent, StoreScp, StoreScpConfig};

use crate::cli::{PacsArgs, PacsCommand, PacsFindArgs, PacsGetArgs, PacsSendArgs, PeerArgs};

/// Runs a `csnav pacs` operation.
pub fn run(args: &PacsArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PacsCommand::Echo(peer) => {
            let started = Instant::now();
            scu::echo(&config(peer), &peer.peer)?;
            println!("echo {}: success in {:.0} ms", peer.peer, started.elapsed().as_secs_f64() * 1000.0);
            Ok(ExitCode::SUCCESS)
        }
        PacsCommand::Find(find) => run_find(find),
        PacsCommand::Get(get) => run_get(get),
        PacsCommand::Send(send) => run_send(send),
    }
}

fn config(peer: &PeerArgs) -> ScuConfig {
    let mut c = ScuConfig::new(&peer.ae);
    c.timeout = Duration::from_secs(peer.timeout_s.max(1));
    c
}

fn run_find(args: &PacsFindArgs) -> anyhow::Result<ExitCode> {
    let mut query = Query::new(args.level);
    for (key, value) in [
        (MatchKey::PatientId, &args.patient_id),
        (MatchKey::PatientName, &args.patient_name),
        (MatchKey::StudyInstanceUid, &args.study_uid),
        (MatchKey::SeriesInstanceUid, &args.series_uid),
        (MatchKey::StudyDate, &args.study_date),
        (MatchKey::AccessionNumber, &args.accession),
        (MatchKey::Modality, &args.modality),
    ] {
        if let Some(v) = value {
            query = query.with(key, v);
        }
    }
    let matches = scu::find(&config(&args.peer), &args.peer.peer, &query)?;
    let rows: Vec<Vec<(&str, String)>> = matches.iter().map(|m| query.fields(m)).collect();
    if args.json {
        let json: Vec<serde_json::Map<String, serde_json::Value>> = rows
            .iter()
            .map(|r| r.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone()))).collect())
            .collect();
        println!("{}", serde_json::to_string_pretty(&json).context("encoding the matches")?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {} match(es) at {}", rows.len(), args.level.code().to_ascii_lowercase(), args.peer.peer);
    for (i, row) in rows.iter().enumerate() {
        println!("[{}]", i + 1);
        for (keyword, value) in row {
            println!("  {keyword:<32} {value}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_get(args: &PacsGetArgs) -> anyhow::Result<ExitCode> {
    let peer = &args.peer;
    let mut scp_config = StoreScpConfig::new(&peer.ae, &args.out, venogram::xa_writer::IMPLEMENTATION_CLASS_UID);
    // Only the PACS sends here while the retrieve runs.
    scp_config.allowed_calling_ae_titles = Some(vec![peer.peer.ae_title.clone()]);
    scp_config.idle_timeout = Duration::from_secs(peer.timeout_s.max(1));
    let scp = StoreScp::bind((args.bind.as_str(), args.port), scp_config)
        .with_context(|| format!("starting csnav's storage SCP on {}:{}", args.bind, args.port))?;
    let (events_tx, events) = mpsc::channel::<ScpEvent>();
    std::thread::Builder::new()
        .name("csnav-get-scp".into())
        .spawn(move || {
            let served = scp.serve(move |e| {
                let _ = events_tx.send(e);
            });
            if let Err(e) = served {
                tracing::error!("csnav's storage SCP stopped: {e}");
            }
        })
        .context("starting the storage SCP's thread")?;

    let mut query = Query::new(if args.series_uid.is_some() { QueryLevel::Series } else { QueryLevel::Study })
        .with(MatchKey::StudyInstanceUid, &args.study_uid);
    if let Some(series) = &args.series_uid {
        query = query.with(MatchKey::SeriesInstanceUid, series);
    }
    let started = Instant::now();
    let outcome = scu::move_to(&config(peer), &peer.peer, &query, &peer.ae, |subs| {
        if let (Some(done), Some(left)) = (subs.completed, subs.remaining) {
            eprintln!("retrieving: {done} received, {left} to come");
        }
    })?;
    // The PACS answers each C-STORE before its final C-MOVE response, so every instance is
    // in place; the events may still be on their way.
    let expected = usize::from(outcome.completed) + usize::from(outcome.warning);
    let mut stored = Vec::new();
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stored.len() < expected && Instant::now() < deadline {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(ScpEvent::Stored(s)) => stored.push(s),
            Ok(ScpEvent::StoreFailed { sop_instance_uid, status, reason, .. }) => failures
                .push(format!("{}: status 0x{status:04X}: {reason}", sop_instance_uid.unwrap_or_else(|| "?".into()))),
            Ok(ScpEvent::Rejected { peer, reason }) => {
                failures.push(format!("association from {peer} rejected: {reason}"));
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let bytes: u64 = stored.iter().map(|s| s.data_set_bytes).sum();
    let seconds = started.elapsed().as_secs_f64();
    for s in &stored {
        println!("received {} ({}, {} bytes)", s.path.display(), s.transfer_syntax_uid, s.data_set_bytes);
    }
    for f in &failures {
        eprintln!("failed {f}");
    }
    println!(
        "retrieved {} instance(s), {:.1} MB in {seconds:.2} s from {}; {} failed at the PACS",
        stored.len(),
        bytes as f64 / 1e6,
        peer.peer,
        outcome.failed
    );
    Ok(if outcome.failed > 0 || !failures.is_empty() || stored.len() < expected {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn run_send(args: &PacsSendArgs) -> anyhow::Result<ExitCode> {
    let outcomes = scu::store(&config(&args.peer), &args.peer.peer, &args.files)?;
    Ok(report_sent(&outcomes, &args.peer.peer))
}

/// Prints one line per file sent; failure when any was refused.
pub fn report_sent(outcomes: &[scu::StoreOutcome], peer: &scu::RemoteAe) -> ExitCode {
    let mut failed = 0;
    for o in outcomes {
        match &o.result {
            Ok(0) => println!("sent {} ({}) to {peer}", o.path.display(), o.sop_instance_uid),
            Ok(code) => println!("sent {} ({}) to {peer}: warning 0x{code:04X}", o.path.display(), o.sop_instance_uid),
            Err(reason) => {
                failed += 1;
                eprintln!("not sent {}: {reason}", o.path.display());
            }
        }
    }
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
