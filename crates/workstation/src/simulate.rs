//! `csnav simulate`: a synthetic patient rendered in one or more views, with ground truth.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use simulator::SyntheticPatient;
use simulator::render::{RenderSettings, render};
use simulator::view::ViewAngles;

use crate::cli::SimulateArgs;

/// Renders every requested view and writes the files.
pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let views: Vec<ViewAngles> = args.views.iter().map(|v| v.parse()).collect::<Result<_, _>>()?;
    let patient = SyntheticPatient::generate(args.seed);
    let patient_file = simulator::output::write_patient(&patient, &args.out)?;
    let tracker = simulator::tracker::SyntheticTracker::generate(&patient);
    let tracker_file = simulator::output::write_tracker(&tracker, &args.out)?;
    println!(
        "synthetic patient {}: {} vein segments ({}), heart rate {:.0} bpm, QRS {:.0} ms -> {}",
        args.seed,
        patient.tree.branches.len(),
        patient
            .tree
            .branches
            .iter()
            .filter(|b| b.label != venogram::VeinLabel::Branch)
            .map(|b| b.label.abbreviation())
            .collect::<Vec<_>>()
            .join(" "),
        patient.motion.heart_rate_bpm,
        patient.physiology.activation.qrs_duration_ms,
        patient_file.display()
    );
    println!(
        "synthetic tracker: {} registration fiducials (localisation error {:.1} mm RMS) -> {}",
        tracker.fiducials.len(),
        tracker.fle_rms_mm,
        tracker_file.display()
    );
    for view in views {
        let settings = RenderSettings::typical(view, args.size, args.bits, args.frames);
        let started = Instant::now();
        let run = render(&patient, &settings).with_context(|| format!("rendering {view}"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let written = simulator::output::write_view(&run, &patient, &args.out, &view.to_string().to_ascii_lowercase())?;
        println!(
            "{view}: {} frames of {}x{} at {} bits in {ms:.0} ms ({:.1} ms/frame), peak opacification at frame {} -> {}, {}, {}",
            args.frames,
            args.size,
            args.size,
            args.bits,
            ms / f64::from(args.frames),
            run.peak_frame + 1,
            written.dicom.display(),
            written.truth.display(),
            written.mask.display()
        );
    }
    println!("synthetic data for research and testing: not a patient image");
    Ok(ExitCode::SUCCESS)
}
