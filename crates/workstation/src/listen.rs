//! `csnav listen`: the DICOM storage SCP on the command line (dicom-net), one line per event;
//! with `--segment`, every X-ray angiography run received is segmented straight away (one run
//! at a time, on a worker of its own, so receiving never waits) and, with `--announce`,
//! announced to a running app.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dicom_net::{ScpEvent, StoreScp, StoreScpConfig, StoredInstance, sop_class};
use venogram::segment::{FrameChoice, segment_run};

use crate::cli::{GeometryArgs, ListenArgs, MeasureArg, SegmentationArgs};
use crate::inbox::{self, Announcement};

/// Prints one line on stdout, flushed (the listener's events are read line by line).
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Segments one stored run into `store/segmented/<SOP Instance UID>/`; the announcement of it.
fn segment_stored(stored: &StoredInstance, store: &Path, geometry: &GeometryArgs) -> anyhow::Result<Announcement> {
    let how = SegmentationArgs {
        seed_xy: None,
        measure: MeasureArg::Jerman,
        full_resolution: false,
        average_plateau: false,
        geometry: geometry.clone(),
    };
    let (run, params) = crate::segment::prepare(&stored.path, &how)?;
    let result = segment_run(&run.cine, FrameChoice::Auto, &params)
        .with_context(|| format!("cannot segment {}", stored.path.display()))?;
    let dir = store.join("segmented").join(&stored.sop_instance_uid);
    crate::segment::write_frame(&dir, &stored.path, &run, &result, &params)?;
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    Ok(Announcement {
        schema: inbox::SCHEMA.into(),
        file: absolute(&stored.path),
        sop_instance_uid: stored.sop_instance_uid.clone(),
        calling_ae_title: stored.calling_ae_title.clone(),
        segmentation: absolute(&dir),
        branches: result.tree.branches.len(),
    })
}

/// The segmentation worker: runs in arrival order, each segmented, written, announced.
fn segmentation_worker(
    runs: &mpsc::Receiver<StoredInstance>,
    store: &Path,
    geometry: &GeometryArgs,
    announce: Option<&str>,
) {
    for stored in runs {
        let started = Instant::now();
        match segment_stored(&stored, store, geometry) {
            Ok(a) => {
                say(&format!(
                    "segmented {}: {} branches in {:.0} ms -> {}",
                    a.sop_instance_uid,
                    a.branches,
                    started.elapsed().as_secs_f64() * 1000.0,
                    a.segmentation.display()
                ));
                if let Some(address) = announce {
                    match inbox::announce(address, &a) {
                        Ok(()) => say(&format!("announced {} to {address}", a.sop_instance_uid)),
                        Err(e) => eprintln!("announce {} to {address} failed: {e:#}", a.sop_instance_uid),
                    }
                }
            }
            Err(e) => eprintln!("segmentation of {} failed: {e:#}", stored.path.display()),
        }
    }
}

/// One event as a line: what happened, to what, from whom.
fn line(event: &ScpEvent) -> String {
    match event {
        ScpEvent::Associated { peer, calling_ae_title } => format!("associated {calling_ae_title} from {peer}"),
        ScpEvent::Rejected { peer, reason } => format!("rejected {peer}: {reason}"),
        ScpEvent::Echo { calling_ae_title } => format!("echo from {calling_ae_title}"),
        ScpEvent::Stored(s) => format!(
            "stored {} ({} bytes, SOP class {}, transfer syntax {}) from {}",
            s.path.display(),
            s.data_set_bytes,
            s.sop_class_uid,
            s.transfer_syntax_uid,
            s.calling_ae_title
        ),
        ScpEvent::StoreFailed { calling_ae_title, sop_instance_uid, status, reason } => format!(
            "store failed (status 0x{status:04X}) for {} from {calling_ae_title}: {reason}",
            sop_instance_uid.as_deref().unwrap_or("?")
        ),
        ScpEvent::Ended { calling_ae_title, error: None } => format!("released {calling_ae_title}"),
        ScpEvent::Ended { calling_ae_title, error: Some(e) } => format!("dropped {calling_ae_title}: {e}"),
    }
}

/// Runs `csnav listen` until the process is stopped.
pub fn run(args: &ListenArgs) -> anyhow::Result<ExitCode> {
    let mut config = StoreScpConfig::new(&args.ae, &args.store, venogram::xa_writer::IMPLEMENTATION_CLASS_UID);
    config.allowed_calling_ae_titles = (!args.allow.is_empty()).then(|| args.allow.clone());
    config.max_associations = args.max_associations.max(1);
    config.idle_timeout = Duration::from_secs(args.idle_timeout_s.max(1));
    let scp = StoreScp::bind((args.bind.as_str(), args.port), config)
        .with_context(|| format!("starting the storage SCP on {}:{}", args.bind, args.port))?;
    let address = scp.local_addr().context("reading the bound address")?;
    say(&format!(
        "listening on {address} as {} (store {}; allowed: {}{}) - research software, not a medical device",
        args.ae,
        args.store.display(),
        if args.allow.is_empty() { "any calling AE".to_owned() } else { args.allow.join(", ") },
        if args.segment { "; segmenting XA runs" } else { "" }
    ));
    let to_segment = if args.segment {
        let (tx, rx) = mpsc::channel::<StoredInstance>();
        let (store, geometry, announce) = (args.store.clone(), args.geometry.clone(), args.announce.clone());
        std::thread::Builder::new()
            .name("csnav-listen-segment".into())
            .spawn(move || segmentation_worker(&rx, &store, &geometry, announce.as_deref()))
            .context("starting the segmentation worker")?;
        Some(tx)
    } else {
        None
    };
    scp.serve(move |event| {
        let text = line(&event);
        match event {
            ScpEvent::Rejected { .. } | ScpEvent::StoreFailed { .. } | ScpEvent::Ended { error: Some(_), .. } => {
                eprintln!("{text}");
            }
            ScpEvent::Stored(stored) => {
                say(&text);
                let is_run =
                    [sop_class::XA, sop_class::ENHANCED_XA, sop_class::XRF].contains(&stored.sop_class_uid.as_str());
                if is_run && let Some(tx) = &to_segment {
                    let _ = tx.send(stored);
                }
            }
            _ => say(&text),
        }
    })
    .context("accepting connections")?;
    Ok(ExitCode::SUCCESS)
}
