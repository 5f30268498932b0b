//! `csnav info`: a readable (or JSON) summary of XA runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;
use venogram::acquisition::FrameTimeSource;
use venogram::{GeometryDefaults, GeometryOverrides, ResolvedGeometry, ValueSource, XaRun};

use crate::cli::{GeometryArgs, InfoArgs};

/// What `info --json` prints for one file.
#[derive(Debug, Serialize)]
struct InfoReport {
    file: PathBuf,
    #[serde(flatten)]
    run: XaRun,
    sop_class: String,
    rows: u32,
    columns: u32,
    frames: u32,
    bits_allocated: u16,
    bits_stored: u16,
    photometric_interpretation_in_file: &'static str,
    lossless_transfer_syntax: bool,
    rescale: Option<venogram::Rescale>,
    windows: Vec<venogram::VoiWindow>,
    lossy_compression: Option<venogram::LossyCompression>,
    pixel_intensity_relationship: Option<String>,
    geometry: ResolvedGeometry,
    defaulted: Vec<&'static str>,
    /// Rows of the 3x4 projection matrix, `None` when the geometry is impossible.
    image_from_patient: Option<[[f64; 4]; 3]>,
    geometry_error: Option<String>,
    frame_times_ms: Option<Vec<f64>>,
    frame_time_source: Option<FrameTimeSource>,
    decode_ms: f64,
}

/// A file that failed, for `--json`.
#[derive(Debug, Serialize)]
struct InfoFailure {
    file: PathBuf,
    error: String,
}

pub(crate) fn overrides(g: &GeometryArgs) -> anyhow::Result<(GeometryOverrides, GeometryDefaults)> {
    let spacing = match g.imager_pixel_spacing_mm.as_deref() {
        None => None,
        Some([s]) => Some([*s, *s]),
        Some([r, c]) => Some([*r, *c]),
        Some(other) => anyhow::bail!("--imager-pixel-spacing-mm takes 1 or 2 values, got {}", other.len()),
    };
    Ok((
        GeometryOverrides {
            primary_angle_deg: g.primary_angle_deg,
            secondary_angle_deg: g.secondary_angle_deg,
            distance_source_to_detector_mm: g.sid_mm,
            distance_source_to_patient_mm: g.sod_mm,
            imager_pixel_spacing_mm: spacing,
        },
        GeometryDefaults {
            angle_deg: 0.0,
            distance_source_to_detector_mm: g.default_sid_mm,
            distance_source_to_patient_mm: g.default_sod_mm,
            detector_field_mm: g.default_detector_field_mm,
        },
    ))
}

fn report(
    path: &Path,
    overrides: &GeometryOverrides,
    defaults: &GeometryDefaults,
) -> Result<InfoReport, venogram::IngestError> {
    let started = Instant::now();
    let run = venogram::read_xa_file(path)?;
    let decode_ms = started.elapsed().as_secs_f64() * 1000.0;
    let cine = &run.cine;
    let geometry =
        ResolvedGeometry::resolve(&run.acquisition.positioner, cine.rows(), cine.columns(), overrides, defaults);
    let (image_from_patient, geometry_error) = match geometry.projection() {
        Ok(p) => {
            let m = p.image_from_patient;
            (Some(std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)]))), None)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let timing = run.acquisition.timing.frame_times_ms(cine.frame_count());
    Ok(InfoReport {
        file: path.to_owned(),
        sop_class: run.sop_class_description(),
        rows: cine.rows(),
        columns: cine.columns(),
        frames: cine.frame_count(),
        bits_allocated: cine.format.bits_allocated,
        bits_stored: cine.format.bits_stored,
        photometric_interpretation_in_file: cine.format.photometric_in_file.as_dicom(),
        lossless_transfer_syntax: run.transfer_syntax.is_lossless(),
        rescale: cine.rescale,
        windows: cine.windows.clone(),
        lossy_compression: cine.lossy_compression.clone(),
        pixel_intensity_relationship: cine.pixel_intensity_relationship.clone(),
        defaulted: geometry.defaulted(),
        geometry,
        image_from_patient,
        geometry_error,
        frame_time_source: timing.as_ref().map(|t| t.1),
        frame_times_ms: timing.map(|t| t.0),
        decode_ms,
        run,
    })
}

/// Summarises each file; exits non-zero if any could not be read.
pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let (overrides, defaults) = overrides(&args.geometry)?;
    let mut failed = 0usize;
    let mut json = Vec::new();
    for (i, path) in args.files.iter().enumerate() {
        match report(path, &overrides, &defaults) {
            Ok(r) => {
                if args.json {
                    json.push(serde_json::to_value(&r)?);
                } else {
                    if i > 0 {
                        println!();
                    }
                    print!("{}", render(&r));
                }
            }
            Err(e) => {
                failed += 1;
                tracing::debug!(?e, "ingest failed");
                if args.json {
                    json.push(serde_json::to_value(InfoFailure { file: path.clone(), error: e.to_string() })?);
                } else {
                    eprintln!("csnav: {}: {e}", path.display());
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn source(s: &ValueSource) -> String {
    match s {
        ValueSource::Dicom => "from file".into(),
        ValueSource::Derived(how) => format!("derived: {how}"),
        ValueSource::Manual => "entered by hand".into(),
        ValueSource::Default => "DEFAULT, not in file".into(),
    }
}

fn angle_name(deg: f64, positive: &str, negative: &str) -> String {
    if deg.abs() < 0.05 {
        format!("{positive}/{negative} 0.0")
    } else if deg > 0.0 {
        format!("{positive} {deg:.1}")
    } else {
        format!("{negative} {:.1}", -deg)
    }
}

fn megabytes(bytes: usize) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The text form of one report.
fn render(r: &InfoReport) -> String {
    let mut s = String::new();
    let g = &r.geometry;
    let _ = writeln!(s, "{}", r.file.display());
    let _ = writeln!(
        s,
        "  transfer syntax   {} [{}]",
        r.run.transfer_syntax,
        if r.lossless_transfer_syntax { "lossless" } else { "lossy" }
    );
    let _ = writeln!(s, "  SOP class         {}", r.sop_class);
    let _ = writeln!(
        s,
        "  image             {} x {} px, {} frame{}, {} bits stored in {}, {}{}",
        r.columns,
        r.rows,
        r.frames,
        if r.frames == 1 { "" } else { "s" },
        r.bits_stored,
        r.bits_allocated,
        r.photometric_interpretation_in_file,
        if r.photometric_interpretation_in_file == "MONOCHROME1" { " (inverted to MONOCHROME2)" } else { "" }
    );
    let decoded = r.rows as usize * r.columns as usize * r.frames as usize * 2;
    let _ = writeln!(
        s,
        "  size              {:.2} MB encoded, {:.2} MB decoded; all frames decoded in {:.1} ms",
        megabytes(r.run.encoded_size_bytes),
        megabytes(decoded),
        r.decode_ms
    );
    let _ = writeln!(
        s,
        "  angulation        {} ({}), {} ({})",
        angle_name(g.primary_angle_deg.value, "LAO", "RAO"),
        source(&g.primary_angle_deg.source),
        angle_name(g.secondary_angle_deg.value, "CRA", "CAU"),
        source(&g.secondary_angle_deg.source)
    );
    let _ = writeln!(
        s,
        "  distances         SID {:.1} mm ({}), SOD {:.1} mm ({})",
        g.distance_source_to_detector_mm.value,
        source(&g.distance_source_to_detector_mm.source),
        g.distance_source_to_patient_mm.value,
        source(&g.distance_source_to_patient_mm.source)
    );
    let [ps_row, ps_col] = g.imager_pixel_spacing_mm.value;
    let magnification = g.distance_source_to_detector_mm.value / g.distance_source_to_patient_mm.value;
    let _ = writeln!(
        s,
        "  pixel spacing     {ps_row:.4} x {ps_col:.4} mm at detector ({}); {:.4} mm at isocentre (magnification {magnification:.3})",
        source(&g.imager_pixel_spacing_mm.source),
        ps_col / magnification
    );
    if let Some(e) = &r.geometry_error {
        let _ = writeln!(s, "  GEOMETRY INVALID  {e}");
    }
    render_timing_and_values(&mut s, r);
    let _ = writeln!(
        s,
        "  defaulted         {}",
        if r.defaulted.is_empty() { "nothing".to_owned() } else { r.defaulted.join(", ") }
    );
    for w in &r.run.warnings {
        let _ = writeln!(s, "  warning           {w}");
    }
    s
}

/// Timing, ECG pointers, lossy compression, rescale and VOI windows.
fn render_timing_and_values(s: &mut String, r: &InfoReport) {
    let timing = &r.run.acquisition.timing;
    match (&r.frame_times_ms, r.frame_time_source) {
        (Some(times), Some(src)) => {
            let duration = times.last().copied().unwrap_or(0.0);
            let rate = if times.len() > 1 { 1000.0 * (times.len() - 1) as f64 / duration.max(1e-9) } else { 0.0 };
            let _ =
                writeln!(s, "  timing            {rate:.2} frames/s over {:.2} s (from {src:?})", duration / 1000.0);
        }
        _ => {
            let _ = writeln!(s, "  timing            none in file (no Frame Time, Frame Time Vector or Cine Rate)");
        }
    }
    if timing.r_wave_frame_indices.is_empty() {
        let _ = writeln!(s, "  ECG               no R Wave Pointer");
    } else {
        let frames: Vec<String> = timing.r_wave_frame_indices.iter().map(|i| (i + 1).to_string()).collect();
        let _ = writeln!(s, "  ECG               R waves at frames {} (1-based)", frames.join(", "));
    }
    if let Some(hr) = timing.heart_rate_bpm {
        let _ = writeln!(s, "  heart rate        {hr:.0} bpm");
    }
    if let Some(lossy) = &r.lossy_compression {
        let ratios: Vec<String> = lossy.ratios.iter().map(|x| format!("{x}:1")).collect();
        let _ = writeln!(
            s,
            "  LOSSY             pixels were lossy compressed{}{}",
            if ratios.is_empty() { String::new() } else { format!(", ratio {}", ratios.join(" then ")) },
            if lossy.methods.is_empty() { String::new() } else { format!(" ({})", lossy.methods.join(", ")) }
        );
    }
    if let Some(rescale) = r.rescale {
        let _ = writeln!(s, "  rescale           slope {} intercept {}", rescale.slope, rescale.intercept);
    }
    for w in &r.windows {
        let _ = writeln!(
            s,
            "  VOI window        center {} width {}{}",
            w.center,
            w.width,
            w.explanation.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
}
