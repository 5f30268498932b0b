//! `csnav export`: a run segmented and its results written for the PACS (the labelled overlay
//! as a Secondary Capture image, the measurements as a Comprehensive SR), optionally sent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use venogram::export::{ExportSource, ExportStamp, measurement_report, secondary_capture};
use venogram::segment::overlay::draw_overlay;
use venogram::segment::segment_run;

use crate::cli::ExportArgs;

/// The two files an export writes.
pub struct Exported {
    /// The overlay, Secondary Capture.
    pub overlay: PathBuf,
    /// The measurements, Comprehensive SR.
    pub report: PathBuf,
    /// Branches reported.
    pub branches: usize,
    /// The frame segmented (0-based).
    pub frame: u32,
}

/// The stamp of an export made now: UTC date and time, and a UID seed from the clock, the
/// process and the source instance (two exports never share UIDs).
fn stamp_now(source_uid: &str) -> ExportStamp {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let utc = crate::session_record::utc_stamp(now.as_secs() as i64);
    let (date, time) = utc.split_once('-').unwrap_or((utc.as_str(), "000000"));
    // FNV-1a over the source UID, mixed with the clock and the process id.
    let uid_hash =
        source_uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let uid_seed = uid_hash ^ (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40);
    ExportStamp { date: date.to_owned(), time: time.to_owned(), uid_seed }
}

/// Segments `args.file` and writes `overlay-sc.dcm` and `report-sr.dcm` into `args.out`.
pub fn export(args: &ExportArgs) -> anyhow::Result<Exported> {
    let (run, params) = crate::segment::prepare(&args.file, &args.segmentation)?;
    let Some(choice) = args.frame.single() else {
        anyhow::bail!("export works on one frame: give a frame number or auto");
    };
    let result =
        segment_run(&run.cine, choice, &params).with_context(|| format!("cannot segment {}", args.file.display()))?;
    if let Some(reason) = &result.tree.empty_reason {
        anyhow::bail!("nothing to export: the tree of frame {} is empty ({reason})", result.frame);
    }
    let frame = run.cine.frame(result.frame).context("the segmented frame vanished")?;
    let overlay = draw_overlay(&frame, &result.tree, &result.removed)?;
    let source = ExportSource::read(&args.file, result.frame)?;
    let stamp = stamp_now(&source.sop_instance_uid);
    let sc = secondary_capture(&source, &overlay, &stamp)?;
    let sr = measurement_report(&source, &result.tree.branches, &stamp)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let overlay_path = args.out.join("overlay-sc.dcm");
    let report_path = args.out.join("report-sr.dcm");
    for (object, path) in [(&sc, &overlay_path), (&sr, &report_path)] {
        let mut bytes = Vec::new();
        object.write_all(&mut bytes).with_context(|| format!("cannot encode {}", path.display()))?;
        venogram::xa_writer::write_file_atomically(path, &bytes)?;
    }
    Ok(Exported {
        overlay: overlay_path,
        report: report_path,
        branches: result.tree.branches.len(),
        frame: result.frame,
    })
}

/// Runs `csnav export`.
pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let exported = export(args)?;
    println!("csnav export: research software, not for clinical use");
    println!(
        "wrote {} (Secondary Capture, frame {} overlay) and {} (Comprehensive SR, {} branches)",
        exported.overlay.display(),
        exported.frame,
        exported.report.display(),
        exported.branches
    );
    let Some(peer) = &args.send else { return Ok(ExitCode::SUCCESS) };
    let config = dicom_net::scu::ScuConfig::new(&args.ae);
    let outcomes = dicom_net::scu::store(&config, peer, &[exported.overlay, exported.report])?;
    Ok(crate::pacs::report_sent(&outcomes, peer))
}
