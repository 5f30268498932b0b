//! `csnav listen`: the DICOM storage SCP on the command line (dicom-net), one line per event.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use dicom_net::{ScpEvent, StoreScp, StoreScpConfig};

use crate::cli::ListenArgs;

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
    println!(
        "listening on {address} as {} (store {}; allowed: {}) - research software, not a medical device",
        args.ae,
        args.store.display(),
        if args.allow.is_empty() { "any calling AE".to_owned() } else { args.allow.join(", ") }
    );
    let _ = std::io::stdout().flush();
    scp.serve(|event| {
        let text = line(&event);
        match event {
            ScpEvent::Rejected { .. } | ScpEvent::StoreFailed { .. } | ScpEvent::Ended { error: Some(_), .. } => {
                eprintln!("{text}");
            }
            _ => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    })
    .context("accepting connections")?;
    Ok(ExitCode::SUCCESS)
}
