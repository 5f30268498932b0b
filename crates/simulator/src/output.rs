//! Writing a rendered run and its ground truth: the XA DICOM file (geometry, timing, R-wave
//! pointer, shared study UID), a JSON file of the 2D truth of every frame, a vessel-mask PNG
//! of the peak-opacification frame, and the patient's 3D truth as JSON.

use std::path::{Path, PathBuf};

use serde::Serialize;
use venogram::PositionerGeometry;
use venogram::xa_writer::{XaWriteSpec, write_xa_file};

use crate::patient::SyntheticPatient;
use crate::render::{FrameTruth, RenderedRun};

/// Why output could not be written.
#[derive(Debug)]
pub enum OutputError {
    /// A file could not be written.
    Io {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The DICOM writer failed.
    Dicom(venogram::xa_writer::XaWriteError),
    /// JSON or PNG encoding failed.
    Encode(String),
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "writing {} failed: {source}", path.display()),
            Self::Dicom(e) => write!(f, "{e}"),
            Self::Encode(why) => write!(f, "encoding failed: {why}"),
        }
    }
}

impl std::error::Error for OutputError {}

/// The 2D ground truth file of one view.
#[derive(Debug, Serialize)]
struct ViewTruth<'a> {
    view: String,
    /// Rows of the 3x4 projection matrix (patient LPS mm to pixels).
    image_from_patient: [[f64; 4]; 3],
    frame_times_ms: Vec<f64>,
    r_wave_frame_indices: &'a [u32],
    peak_frame: u32,
    frames: &'a [FrameTruth],
}

/// The files written for one view.
#[derive(Debug, Clone)]
pub struct WrittenView {
    /// The XA DICOM file.
    pub dicom: PathBuf,
    /// The 2D truth JSON.
    pub truth: PathBuf,
    /// The vessel mask PNG of the peak frame.
    pub mask: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_owned(), source }
}

/// The DICOM attributes of a rendered run.
#[must_use]
pub fn write_spec(run: &RenderedRun, patient: &SyntheticPatient) -> XaWriteSpec {
    let s = &run.settings;
    let ps = s.pixel_spacing_mm();
    XaWriteSpec {
        positioner: PositionerGeometry {
            positioner_primary_angle_deg: Some(s.view.primary_deg),
            positioner_secondary_angle_deg: Some(s.view.secondary_deg),
            distance_source_to_detector_mm: Some(s.distance_source_to_detector_mm),
            distance_source_to_patient_mm: Some(s.distance_source_to_patient_mm),
            imager_pixel_spacing_mm: Some([ps, ps]),
            pixel_spacing_mm: None,
            estimated_radiographic_magnification_factor: Some(
                s.distance_source_to_detector_mm / s.distance_source_to_patient_mm,
            ),
            positioner_motion: Some("STATIC".to_owned()),
        },
        frame_time_ms: Some(1000.0 / s.frame_rate_hz),
        cine_rate_hz: Some(s.frame_rate_hz.round() as u32),
        r_wave_frame_indices: run.r_wave_frame_indices.clone(),
        window: None,
        uid_seed: patient.seed.wrapping_mul(1000).wrapping_add(view_code(s.view)),
        study_uid_seed: Some(patient.seed),
        monochrome1: false,
    }
}

fn view_code(view: crate::view::ViewAngles) -> u64 {
    ((view.primary_deg + 180.0) * 10.0) as u64 * 2000 + ((view.secondary_deg + 90.0) * 10.0) as u64
}

/// The binary vessel mask of one frame: pixels within a vessel's projected radius where it
/// holds contrast (opacity above one half), at least the pixel the centerline passes through.
#[must_use]
pub fn vessel_mask(truth: &FrameTruth, rows: u32, columns: u32) -> Vec<u8> {
    let (w, h) = (columns as usize, rows as usize);
    let mut mask = vec![0u8; w * h];
    for b in &truth.branches {
        for i in 0..b.centerline_px.len().saturating_sub(1) {
            if b.opacity[i].min(b.opacity[i + 1]) <= 0.5 {
                continue;
            }
            let (a, c) = (b.centerline_px[i], b.centerline_px[i + 1]);
            if !(a[0].is_finite() && c[0].is_finite()) {
                continue;
            }
            let r = b.radius_px[i].max(b.radius_px[i + 1]).max(1.0);
            let (u0, u1) = ((a[0].min(c[0]) - r).floor().max(0.0), (a[0].max(c[0]) + r).ceil().min(w as f64 - 1.0));
            let (v0, v1) = ((a[1].min(c[1]) - r).floor().max(0.0), (a[1].max(c[1]) + r).ceil().min(h as f64 - 1.0));
            if u0 > u1 || v0 > v1 {
                continue;
            }
            let (dx, dy) = (c[0] - a[0], c[1] - a[1]);
            let len2 = dx * dx + dy * dy;
            for v in v0 as usize..=v1 as usize {
                for u in u0 as usize..=u1 as usize {
                    let (px, py) = (u as f64 - a[0], v as f64 - a[1]);
                    let t = if len2 > 1e-12 { ((px * dx + py * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                    let radius = (b.radius_px[i] + (b.radius_px[i + 1] - b.radius_px[i]) * t)
                        .max(std::f64::consts::FRAC_1_SQRT_2);
                    if (px - t * dx).hypot(py - t * dy) <= radius {
                        mask[v * w + u] = 255;
                    }
                }
            }
        }
    }
    mask
}

fn write_png(path: &Path, pixels: &[u8], columns: u32, rows: u32) -> Result<(), OutputError> {
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), columns, rows);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| OutputError::Encode(e.to_string()))?;
    writer.write_image_data(pixels).map_err(|e| OutputError::Encode(e.to_string()))?;
    writer.finish().map_err(|e| OutputError::Encode(e.to_string()))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), OutputError> {
    let text = serde_json::to_vec(value).map_err(|e| OutputError::Encode(e.to_string()))?;
    std::fs::write(path, text).map_err(io(path))
}

/// Writes `<name>.dcm`, `<name>.truth.json` and `<name>.mask.png` into `dir`.
pub fn write_view(
    run: &RenderedRun,
    patient: &SyntheticPatient,
    dir: &Path,
    name: &str,
) -> Result<WrittenView, OutputError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dicom = dir.join(format!("{name}.dcm"));
    write_xa_file(&dicom, &run.cine, &write_spec(run, patient)).map_err(OutputError::Dicom)?;
    let m = run.projection.image_from_patient;
    let truth = dir.join(format!("{name}.truth.json"));
    write_json(
        &truth,
        &ViewTruth {
            view: run.settings.view.to_string(),
            image_from_patient: std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)])),
            frame_times_ms: (0..run.settings.frames).map(|k| run.settings.frame_time_ms(k)).collect(),
            r_wave_frame_indices: &run.r_wave_frame_indices,
            peak_frame: run.peak_frame,
            frames: &run.truth,
        },
    )?;
    let mask = dir.join(format!("{name}.mask.png"));
    let peak = run.truth.get(run.peak_frame as usize).ok_or_else(|| OutputError::Encode("no peak frame".into()))?;
    write_png(
        &mask,
        &vessel_mask(peak, run.settings.rows, run.settings.columns),
        run.settings.columns,
        run.settings.rows,
    )?;
    Ok(WrittenView { dicom, truth, mask })
}

/// Writes the synthetic tracker (`tracker.json`: registration fiducials in patient and
/// tracker space, and the true `tracker_from_patient` the test sender uses) into `dir`.
pub fn write_tracker(tracker: &crate::tracker::SyntheticTracker, dir: &Path) -> Result<PathBuf, OutputError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("tracker.json");
    write_json(&path, tracker)?;
    Ok(path)
}

/// Writes the patient's 3D truth (`patient.json`: LV, tree, motion, physiology) into `dir`.
pub fn write_patient(patient: &SyntheticPatient, dir: &Path) -> Result<PathBuf, OutputError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("patient.json");
    write_json(&path, patient)?;
    Ok(path)
}
