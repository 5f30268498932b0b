//! A case's venogram runs read and segmented once, for every consumer: the recording (run
//! description, camera, mask, 2D tree, frames) and the app (frames, overlay, projection).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use recording::RecordSender;
use recording::record::{
    Branch2d, FrameBuffer, FramePixels, FrameRecord, MaskRecord, Record, RunInfo, Segmentation2d, ViewCamera,
};
use venogram::geometry::{CArmProjection, GeometryDefaults, GeometryOverrides};
use venogram::segment::{BranchTree, FrameChoice, NodeKind, SegmentParams, Segmentation, segment_run};
use venogram::{ResolvedGeometry, read_xa_file};

/// A venogram run read, decoded and segmented.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// The run's description and camera, as recorded.
    pub info: RunInfo,
    /// The C-arm projection (patient mm to image px), when the geometry resolves.
    pub projection: Option<CArmProjection>,
    /// The frame that was segmented.
    pub segmented_frame: u32,
    /// The labelled 2D tree (and its bifurcations), as recorded.
    pub tree: Segmentation2d,
    /// The segmentation mask of that frame (255 = vessel); absent for a run read back from a
    /// recording (the app does not draw it).
    pub mask: Option<Vec<u8>>,
    /// Every frame's samples, frame after frame (row-major, `rows * columns` each).
    pub samples: Vec<u16>,
    /// The display window (centre, width) in stored values: the file's first VOI window, or
    /// the 1st-99th percentile of the segmented frame.
    pub window: (f64, f64),
}

/// The case's XA runs (`*.dcm`), by name.
pub fn run_files(case: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(case)
        .with_context(|| format!("listing {}", case.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm")))
        .collect();
    files.sort();
    Ok(files)
}

fn rows3(m: &nalgebra::Matrix3<f64>) -> [[f64; 3]; 3] {
    std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)]))
}

/// The 1st and 99th percentiles of a frame, as a window (centre, width).
pub(crate) fn percentile_window(frame: &[u16]) -> (f64, f64) {
    let mut sorted = frame.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| f64::from(sorted.get(((sorted.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0));
    let (lo, hi) = (at(0.01), at(0.99));
    (f64::midpoint(lo, hi), (hi - lo).max(1.0))
}

/// Reads, segments and (when recording) records every run of the case in turn, saying so
/// through `step` before each and handing each to `shown` when it is ready; returns the views
/// (run number, projection) a tip pipeline projects into.
pub fn load_case_runs(
    case: &Path,
    rec: Option<&RecordSender>,
    step: impl Fn(String),
    mut shown: impl FnMut(std::sync::Arc<LoadedRun>),
) -> anyhow::Result<Vec<(u32, CArmProjection)>> {
    let mut views = Vec::new();
    for (k, path) in run_files(case)?.iter().enumerate() {
        step(format!("segmenting {}", path.display()));
        let run = load_run(k as u32 + 1, path)?;
        if let Some(r) = rec {
            record_run(r, &run);
        }
        if let Some(p) = &run.projection {
            views.push((run.info.run, p.clone()));
        }
        shown(std::sync::Arc::new(run));
    }
    Ok(views)
}

/// Reads and segments the run at `path`, numbered `run` (1-based).
pub fn load_run(run: u32, path: &Path) -> anyhow::Result<LoadedRun> {
    Ok(segment_file(run, path, None, FrameChoice::Auto)?.0)
}

/// The recorded form of a segmented tree.
#[must_use]
pub fn segmentation2d(run: u32, frame: u32, tree: &BranchTree) -> Segmentation2d {
    Segmentation2d {
        run,
        frame,
        branches: tree
            .branches
            .iter()
            .map(|b| Branch2d {
                id: b.id,
                parent: b.parent,
                label: b.label.abbreviation().to_owned(),
                points_px: b.points.clone(),
                radius_px: b.radius_px.clone(),
            })
            .collect(),
        bifurcations_px: tree.nodes.iter().filter(|n| n.kind == NodeKind::Bifurcation).map(|n| n.xy).collect(),
        root_px: tree.root().map(|n| n.xy),
        empty_reason: tree.empty_reason.clone(),
    }
}

/// Reads and segments the run at `path` (numbered `run`) from `seed_xy` when given (else from
/// the ostium found automatically) on the frame chosen; returns the run as shown, the whole
/// segmentation (tree, enhancement images) and the segmentation's settings.
pub fn segment_file(
    run: u32,
    path: &Path,
    seed_xy: Option<[f64; 2]>,
    frame: FrameChoice,
) -> anyhow::Result<(LoadedRun, Segmentation, SegmentParams)> {
    let xa = read_xa_file(path).with_context(|| format!("reading {}", path.display()))?;
    segment_xa(run, path, xa, seed_xy, frame)
}

/// [`segment_file`] for a run already read from `path` (for a caller that needed its
/// acquisition facts first, e.g. its R waves).
pub fn segment_xa(
    run: u32,
    path: &Path,
    xa: venogram::XaRun,
    seed_xy: Option<[f64; 2]>,
    frame: FrameChoice,
) -> anyhow::Result<(LoadedRun, Segmentation, SegmentParams)> {
    let cine = &xa.cine;
    let geometry = ResolvedGeometry::resolve(
        &xa.acquisition.positioner,
        cine.rows(),
        cine.columns(),
        &GeometryOverrides::default(),
        &GeometryDefaults::default(),
    );
    let projection = geometry.projection().ok();
    let params = SegmentParams::for_geometry(&geometry, seed_xy);
    let seg = segment_run(cine, frame, &params).with_context(|| format!("segmenting {}", path.display()))?;
    let source = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (rows, columns, frame_count) = (cine.rows(), cine.columns(), cine.frame_count());
    let info = RunInfo {
        run,
        source,
        rows,
        columns,
        frame_count,
        bits_stored: cine.format.bits_stored,
        frame_time_ms: xa.acquisition.timing.frame_time_ms,
        primary_angle_deg: Some(geometry.primary_angle_deg.value),
        secondary_angle_deg: Some(geometry.secondary_angle_deg.value),
        camera: projection.as_ref().map(view_camera),
    };
    let tree = segmentation2d(run, seg.frame, &seg.tree);
    // The file's window is in modality units: back to stored values for the shader.
    let rescale = cine.rescale.map_or((1.0, 0.0), |r| (r.slope, r.intercept));
    let file_window = cine
        .windows
        .first()
        .filter(|_| rescale.0.abs() > 1e-12)
        .map(|w| ((w.center - rescale.1) / rescale.0, (w.width / rescale.0).abs()));
    let mask = Some(seg.mask.data.clone());
    let segmented_frame = seg.frame;
    let samples = xa.cine.into_samples();
    let n = rows as usize * columns as usize;
    let start = segmented_frame as usize * n;
    let window = file_window
        .filter(|w| w.1 > 0.0)
        .unwrap_or_else(|| percentile_window(samples.get(start..start + n).unwrap_or(&[])));
    Ok((LoadedRun { info, projection, segmented_frame, tree, mask, samples, window }, seg, params))
}

/// The recorded camera of a C-arm projection.
#[must_use]
pub fn view_camera(p: &CArmProjection) -> ViewCamera {
    ViewCamera {
        intrinsics: rows3(&p.intrinsics),
        view_from_patient_rotation: rows3(&p.view_from_patient_rotation),
        source_in_patient_mm: [p.source_in_patient.x, p.source_in_patient.y, p.source_in_patient.z],
        distance_source_to_detector_mm: Some(p.distance_source_to_detector_mm),
    }
}

/// Records a loaded run: its description and camera, mask, 2D tree and every frame (the
/// frames share one buffer with no copy beyond the one handed to the recorder).
pub fn record_run(rec: &RecordSender, run: &LoadedRun) {
    let info = &run.info;
    let (rows, columns) = (info.rows, info.columns);
    rec.send(Record::Run(info.clone()));
    if let Some(mask) = &run.mask {
        rec.send(Record::Mask(MaskRecord {
            run: info.run,
            frame: run.segmented_frame,
            rows,
            columns,
            mask: mask.clone(),
        }));
    }
    rec.send(Record::Tree2d(run.tree.clone()));
    let n = rows as usize * columns as usize;
    let buffer = FrameBuffer::from_vec(run.samples.clone());
    for index in 0..info.frame_count {
        let start = index as usize * n * 2;
        let pixels = FramePixels::U16(buffer.slice_with_length(start, n * 2));
        // A run of stored frames is recorded at once: pace it so the queue never overflows.
        while !rec.send(Record::Frame(FrameRecord { run: info.run, index, rows, columns, pixels: pixels.clone() })) {
            if rec.dropped().total() > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
