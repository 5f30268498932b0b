//! `csnav test-pattern`: writes a synthetic XA run with a cardiac-like geometry.

use std::process::ExitCode;

use anyhow::Context as _;
use venogram::PositionerGeometry;
use venogram::xa_writer::{XaWriteSpec, write_xa_file};

use crate::cli::TestPatternArgs;

/// Writes the pattern and says where.
pub fn run(args: &TestPatternArgs) -> anyhow::Result<ExitCode> {
    let cine = venogram::test_pattern::angiography_pattern(
        u32::from(args.rows),
        u32::from(args.columns),
        u32::from(args.frames),
        args.bits_stored,
        args.seed,
    )
    .context("test pattern size")?;
    let frames = u32::from(args.frames);
    let optional = |v: f64| (!args.omit_optional_geometry).then_some(v);
    let spec = XaWriteSpec {
        positioner: PositionerGeometry {
            positioner_primary_angle_deg: Some(30.0),
            positioner_secondary_angle_deg: Some(0.0),
            distance_source_to_detector_mm: optional(1100.0),
            distance_source_to_patient_mm: optional(780.0),
            imager_pixel_spacing_mm: optional(0.2).map(|s| [s, s]),
            estimated_radiographic_magnification_factor: optional(1100.0 / 780.0),
            ..PositionerGeometry::default()
        },
        frame_time_ms: Some(66.67),
        cine_rate_hz: Some(15),
        // R waves roughly every 12 frames (75 bpm at 15 frames/s).
        r_wave_frame_indices: (0..frames).filter(|f| f % 12 == 3).collect(),
        window: None,
        uid_seed: args.seed,
        monochrome1: args.monochrome1,
        study_uid_seed: None,
    };
    write_xa_file(&args.out, &cine, &spec).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {}: {} frames of {}x{}, {} bits stored (synthetic test pattern, explicit VR little endian)",
        args.out.display(),
        args.frames,
        args.columns,
        args.rows,
        args.bits_stored
    );
    Ok(ExitCode::SUCCESS)
}
