//! The whole pipeline, frame in, labelled tree out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use opencv::core::Mat;
use opencv::imgproc;
use opencv::prelude::*;
use rayon::prelude::*;

use super::SegmentError;
use super::balloon::{Balloon, find_balloon, radius_range_px};
use super::bridge::{BridgeInput, Bridged, LineBefore, bridge_orphan_lines};
use super::calibre::lumen_radii_of_all;
use super::crossing::resolve_crossings;
use super::enhance::{Enhanced, Scales, VesselnessMeasure, suppress_background, vesselness};
use super::frame_select::{FrameSelection, select_frame};
use super::graph::{GraphEdge, SkeletonGraph, polyline_length};
use super::groove::GrooveModel;
use super::hairpin::open_hairpins;
use super::image::{ImageF32, LevelImage, Mask, cv, levels_to_512};
use super::junction::{nearest_on_segment, place_junctions};
use super::label::{EdgeLabels, OrientedEdge, ViewPrior, apical_direction, direction, label_tree, median};
use super::line::{LineResponse, line_response_of_level, robust_spread, tracked_lines};
use super::overlap::follow_hidden_takeoffs;
use super::resolution::Binning;
use super::shift::{self, DenseStructures};
use super::skeleton::thin;
use super::temporal::{self, PlateauFrame};
use super::threshold::{BELOW, STRONG, WEAK, components, histogram_par, hysteresis_classes, otsu_par};
use super::tip::follow_tips;
use super::tree::{BranchTree, NodeKind, TreeBranch, TreeNode};
use crate::cine::{Cine, FrameView};
use crate::geometry::{CArmProjection, ResolvedGeometry};

/// How far above its noise floor (in noise levels) the thin-line response must be for a pixel
/// to count as a twig: at 5 the line detector finds veins of about one pixel radius three
/// noise sigma deep and almost no background (see [`super::line`](mod@super::line)).
const LINE_SIGMAS: f32 = 5.0;

/// How far above its noise floor (in noise levels) a pixel followed along a thin line from
/// one above [`LINE_SIGMAS`] must be ([`tracked_lines`]). Measured on the suite and held-out
/// sets A-C (with [`LINE_TRACK_MIN_PIECE_PX`] 6): recall +0.005-0.008, bifurcation F1 -0.015
/// to +0.022, labels within 0.004; at 2.5 labels fall on B and C (0.829 -> 0.825, seed 61 LAO
/// 0.92 -> 0.87), at 3.5 the gain halves.
const LINE_TRACK_SIGMAS: f32 = 3.0;

/// Fewest pixels (at the 512 level) of a followed piece that does not bridge two runs above
/// [`LINE_SIGMAS`]: shorter ones are hairs of noise on vessels' edges, which reshape the
/// skeleton where veins end in a blob (at 3 or 4, labels fell by up to 0.04 on a set).
const LINE_TRACK_MIN_PIECE_PX: usize = 6;

/// Smallest best-scale radius (px at a 512 matrix) of a vein that a followed twig may not
/// run into: the CS, GCV and the wider tributaries.
const TRACK_WIDE_RADIUS_PX: f64 = 4.0;

/// Smallest image side the pipeline accepts, pixels.
pub const MIN_SIDE_PX: u32 = 64;

/// Which frame of a run to segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameChoice {
    /// The best-opacified frame ([`select_frame`]).
    #[default]
    Auto,
    /// This frame (0-based).
    Index(u32),
}

/// Settings of a segmentation.
#[derive(Debug, Clone, Default)]
pub struct SegmentParams {
    /// Vesselness measure (Jerman by default).
    pub measure: VesselnessMeasure,
    /// Scales (default: [`Scales::for_matrix`]).
    pub scales: Option<Scales>,
    /// The user's seed at the CS ostium, pixels `(x, y)`; found automatically when `None`.
    pub seed_xy: Option<[f64; 2]>,
    /// Pixel spacing at the isocentre, mm, when known.
    pub pixel_spacing_mm: Option<f64>,
    /// The view's projection, when known (it orients the labels).
    pub projection: Option<CArmProjection>,
    /// Segment at the frame's own matrix instead of binning a 1024 (or larger) frame to the
    /// working resolution ([`resolution`](mod@super::resolution)): finer, and slower.
    pub full_resolution: bool,
    /// When segmenting one frame of a run ([`segment_run`]), average it with its registered
    /// neighbours on the contrast plateau ([`temporal`](mod@super::temporal)) for the
    /// thin-line (twig) detector: more twigs, and a tree that can change around them (see
    /// docs/segmentation.md).
    pub average_plateau: bool,
    /// A vessel mask (frame size, nonzero = vessel) to build the tree from in place of the
    /// thresholded one: a mask corrected by hand, or a reference mask to measure the
    /// centerline, graph and label stages on their own. The stages that remove what is not
    /// vein (catheters, leads, background) are skipped: the mask is taken as it is.
    pub vessel_mask: Option<Arc<Mask>>,
}

impl SegmentParams {
    /// Settings for a run read from DICOM: its projection (angles from the file, missing
    /// distances defaulted) orients the labels, and the pixel spacing at the isocentre is
    /// known only when the file (or `geometry`) gives the imager spacing.
    #[must_use]
    pub fn for_geometry(geometry: &ResolvedGeometry, seed_xy: Option<[f64; 2]>) -> Self {
        use crate::geometry::ValueSource;
        let projection = geometry.projection().ok();
        let angles_known = geometry.primary_angle_deg.source != ValueSource::Default;
        let pixel_spacing_mm = (geometry.imager_pixel_spacing_mm.source != ValueSource::Default)
            .then(|| {
                let ips = geometry.imager_pixel_spacing_mm.value;
                let magnification =
                    geometry.distance_source_to_detector_mm.value / geometry.distance_source_to_patient_mm.value;
                0.5 * (ips[0] + ips[1]) / magnification
            })
            .filter(|s| s.is_finite() && *s > 0.0);
        Self { seed_xy, pixel_spacing_mm, projection: projection.filter(|_| angles_known), ..Self::default() }
    }
}

/// What a removed structure was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedKind {
    /// Too faint for its width to hold contrast: guide catheter, rib or diaphragm edge.
    LowContrast,
    /// Present before the contrast arrived: a lead, wire or catheter.
    PresentBeforeContrast,
    /// Long, straight and uniform, running out of the image: a lead or wire.
    StraightToBorder,
}

/// A centerline removed as not being vein.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedStructure {
    /// Why it was removed.
    pub kind: RemovedKind,
    /// Its centerline, pixels `(x, y)`.
    pub points: Vec<[f64; 2]>,
}

/// Wall-clock time of each stage, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StageTimings {
    /// Background suppression (top-hat).
    pub background_ms: f64,
    /// Multi-scale vesselness.
    pub vesselness_ms: f64,
    /// Thresholds, mask, distance transform.
    pub threshold_ms: f64,
    /// Skeleton, graph, device removal, rooting.
    pub graph_ms: f64,
    /// Labels and measurements.
    pub label_ms: f64,
    /// Binning the frame to the working resolution and mapping the result back.
    pub resample_ms: f64,
    /// The whole frame.
    pub total_ms: f64,
}

/// The result of segmenting one frame.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// The frame segmented (0-based).
    pub frame: u32,
    /// How it was chosen, when chosen from the run's contrast curve.
    pub selection: Option<FrameSelection>,
    /// The labelled tree (empty with a reason when there is none).
    pub tree: BranchTree,
    /// The vessel mask of the tree.
    pub mask: Mask,
    /// Everything the thresholds kept, before devices and detached pieces were removed, at the
    /// working resolution ([`Segmentation::native_candidate_mask`] for the frame's pixels).
    pub candidate_mask: Mask,
    /// Enhancement images (top-hat, vesselness, radius of the best scale) at the working
    /// resolution ([`Segmentation::native_enhanced`] for the frame's pixels).
    pub enhanced: Enhanced,
    /// How the frame was binned to the working resolution the pipeline ran at.
    pub binning: Binning,
    /// Structures removed as not vein.
    pub removed: Vec<RemovedStructure>,
    /// The occlusion balloon the tree was rooted at, when found (not searched with a seed).
    pub balloon: Option<Balloon>,
    /// Time per stage.
    pub timings: StageTimings,
    /// The neighbouring frames averaged into this one for the thin-line detector
    /// ([`SegmentParams::average_plateau`]), shifts in the frame's pixels; empty when none were.
    pub averaged_with: Vec<PlateauFrame>,
}

impl Segmentation {
    /// The enhancement images in the frame's own pixels (brought up from the working
    /// resolution when the frame was binned).
    pub fn native_enhanced(&self) -> Result<Enhanced, SegmentError> {
        let (w, h) = (self.mask.width, self.mask.height);
        self.binning.enhanced_to_native(&self.enhanced, w, h)
    }

    /// The candidate mask in the frame's own pixels.
    #[must_use]
    pub fn native_candidate_mask(&self) -> Mask {
        self.binning.mask_to_native(&self.candidate_mask, self.mask.width, self.mask.height)
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn check_size(rows: u32, columns: u32) -> Result<(), SegmentError> {
    if rows < MIN_SIDE_PX || columns < MIN_SIDE_PX {
        return Err(SegmentError::ImageTooSmall { rows, columns, min: MIN_SIDE_PX });
    }
    Ok(())
}

/// Segments one frame of a run: the best-opacified one (`FrameChoice::Auto`) or the one asked
/// for. Frames before the contrast arrived serve to recognise devices.
pub fn segment_run(cine: &Cine, choice: FrameChoice, params: &SegmentParams) -> Result<Segmentation, SegmentError> {
    check_size(cine.rows(), cine.columns())?;
    let count = cine.frame_count();
    if let FrameChoice::Index(frame) = choice
        && frame >= count
    {
        return Err(SegmentError::FrameOutOfRange { frame, count });
    }
    let selection = if count > 1 || choice == FrameChoice::Auto { Some(select_frame(cine)?) } else { None };
    let index = match choice {
        FrameChoice::Index(i) => i,
        FrameChoice::Auto => selection.as_ref().map_or(0, |s| s.frame),
    };
    let reference = selection
        .as_ref()
        .filter(|s| s.filling && s.baseline_frame != index)
        .and_then(|s| cine.frame(s.baseline_frame))
        .map(|b| BaselineReference::new(&b, cine.format.max_stored_value(), params))
        .transpose()?;
    let mut result = segment_in_run(cine, index, selection.as_ref(), reference.as_ref(), params)?;
    result.selection = selection;
    Ok(result)
}

/// Segments every frame of a run (the per-frame mode, to follow a whole cine). The contrast
/// curve is computed once; its baseline frame serves every frame's device check; frames
/// without contrast get an empty tree with the reason. Frames run in parallel (rayon), each
/// alone ([`SegmentParams::average_plateau`] does not apply).
pub fn segment_cine(cine: &Cine, params: &SegmentParams) -> Result<Vec<Segmentation>, SegmentError> {
    use rayon::prelude::*;
    check_size(cine.rows(), cine.columns())?;
    // Following the cine is held to a frame's time budget: no plateau averaging.
    let params = &SegmentParams { average_plateau: false, ..params.clone() };
    let selection = select_frame(cine)?;
    let reference = cine
        .frame(selection.baseline_frame)
        .filter(|_| selection.filling)
        .map(|b| BaselineReference::new(&b, cine.format.max_stored_value(), params))
        .transpose()?;
    (0..cine.frame_count())
        .into_par_iter()
        .map(|index| {
            let own = reference.as_ref().filter(|_| index != selection.baseline_frame);
            let mut result = segment_in_run(cine, index, Some(&selection), own, params)?;
            result.selection = (index == selection.frame).then(|| selection.clone());
            Ok(result)
        })
        .collect()
}

/// Segments frame `index` of a run against the run's baseline `reference`; when the run
/// has several frames and `selection` says this one holds no contrast, the tree is empty
/// with the reason.
fn segment_in_run(
    cine: &Cine,
    index: u32,
    selection: Option<&FrameSelection>,
    reference: Option<&BaselineReference>,
    params: &SegmentParams,
) -> Result<Segmentation, SegmentError> {
    let count = cine.frame_count();
    let frame = cine.frame(index).ok_or(SegmentError::FrameOutOfRange { frame: index, count })?;
    let neighbours: Vec<(u32, FrameView<'_>)> = selection
        .filter(|_| params.average_plateau)
        .map(|s| plateau_neighbours(s, index))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|j| cine.frame(j).map(|f| (j, f)))
        .collect();
    let mut result = segment_prepared(&frame, &neighbours, cine.format.max_stored_value(), params, reference)?;
    result.frame = index;
    if let Some(reason) = selection.filter(|_| count > 1).and_then(|s| no_contrast_reason(s, index)) {
        result.tree = BranchTree::empty(reason);
        result.mask = Mask::empty(result.mask.width, result.mask.height);
    }
    Ok(result)
}

/// The frames within [`temporal::MAX_REACH_FRAMES`] of `index` on its contrast plateau: each
/// frame from it to them within `1 -` [`temporal::PLATEAU_ENERGY_FRACTION`] of its vessel
/// energy, either way.
fn plateau_neighbours(s: &FrameSelection, index: u32) -> Vec<u32> {
    let Some(&own) = s.energy.get(index as usize) else { return Vec::new() };
    let tolerance = (1.0 - temporal::PLATEAU_ENERGY_FRACTION) * own;
    let on_plateau = |j: u32| s.energy.get(j as usize).is_some_and(|e| (e - own).abs() <= tolerance);
    let mut out = Vec::new();
    for step in [-1i64, 1] {
        for d in 1..=i64::from(temporal::MAX_REACH_FRAMES) {
            let j = i64::from(index) + step * d;
            if j < 0 || !on_plateau(j as u32) {
                break;
            }
            out.push(j as u32);
        }
    }
    out
}

/// Why frame `index` has no tree, from the run's contrast curve: the run never fills, or
/// this frame is within the filling ratio of the least-opacified one. `None` when it holds
/// contrast.
fn no_contrast_reason(s: &FrameSelection, index: u32) -> Option<String> {
    let base = s.energy[s.baseline_frame as usize];
    let this = s.energy[index as usize];
    if !s.filling {
        Some(format!(
            "no contrast filling in the run: the vessel energy of its best frame ({:.3}) is not {:.0}% above that of frame {} ({base:.3})",
            s.energy[s.frame as usize],
            100.0 * (super::frame_select::FILLING_RATIO - 1.0),
            s.baseline_frame,
        ))
    } else if this < super::frame_select::FILLING_RATIO * base {
        Some(format!(
            "frame {index} holds no contrast: its vessel energy ({this:.3}) is within {:.0}% of the least-opacified frame {} ({base:.3}); the best frame is {}",
            100.0 * (super::frame_select::FILLING_RATIO - 1.0),
            s.baseline_frame,
            s.frame
        ))
    } else {
        None
    }
}

/// Noise of an image: 1.4826 x the median absolute difference between horizontally
/// adjacent pixels, divided by sqrt(2) (a robust estimate that ignores edges).
pub(crate) fn noise_sigma(a: &ImageF32) -> f32 {
    // Every third pair of every other row: over 10^5 differences on a 1024 frame, plenty for
    // a median, at a sixth of the cost of all of them.
    let mut diffs: Vec<f32> = a
        .data
        .chunks(a.width)
        .step_by(2)
        .flat_map(|row| row.windows(2).step_by(3).map(|w| (w[1] - w[0]).abs()))
        .collect();
    if diffs.is_empty() {
        return 0.0;
    }
    let mid = diffs.len() / 2;
    let (_, m, _) = diffs.select_nth_unstable_by(mid, f32::total_cmp);
    let median = *m;
    if median > 0.0 {
        return 1.4826 * median / std::f32::consts::SQRT_2;
    }
    // Coarsely quantised (8-bit) frames: most differences are 0 and the median says nothing;
    // the mean absolute difference of a Gaussian is sqrt(2/pi) sigma.
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    mean * (std::f32::consts::PI / 2.0).sqrt() / std::f32::consts::SQRT_2
}

/// Median contrast density (top-hat depth over the best scale's width) of the pixels with
/// vesselness >= `high`, from a histogram of log2 density in 1/32-octave bins (within about
/// 1%), built in parallel chunks; 0 when there are none.
fn median_density(v: &ImageF32, radius_px: &ImageF32, tophat: &ImageF32, high: f32) -> f32 {
    const BINS: usize = 1024;
    const LOG_MIN: f32 = -24.0;
    let bin = |d: f32| ((((d.max(1e-12)).log2() - LOG_MIN) * 32.0).max(0.0) as usize).min(BINS - 1);
    let hist = histogram_par(v.data.len(), BINS, |i| {
        (v.data[i] >= high).then(|| bin(tophat.data[i] / (2.0 * radius_px.data[i] + 1.0)))
    });
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let mut seen = 0;
    for (i, c) in hist.iter().enumerate() {
        seen += c;
        if 2 * seen > total {
            return 2f32.powf(LOG_MIN + (i as f32 + 0.5) / 32.0);
        }
    }
    0.0
}

/// Segments one frame. `baseline`, a frame of the same run before the contrast arrived,
/// lets devices be recognised by their presence there.
pub fn segment_frame(
    frame: &FrameView<'_>,
    max_value: u16,
    params: &SegmentParams,
    baseline: Option<&FrameView<'_>>,
) -> Result<Segmentation, SegmentError> {
    check_size(frame.rows, frame.columns)?;
    let reference = baseline.map(|b| BaselineReference::new(b, max_value, params)).transpose()?;
    segment_prepared(frame, &[], max_value, params, reference.as_ref())
}

/// Scales of the vesselness, the widest radius (px) and the matrix factor `k` (1 at 512).
fn frame_scales(params: &SegmentParams, w: usize, h: usize) -> (Scales, f32, f64) {
    let scales = params.scales.clone().unwrap_or_else(|| Scales::for_matrix(w));
    let r_max = scales.radii_px.last().copied().unwrap_or(12.0);
    (scales, r_max, w.max(h) as f64 / 512.0)
}

/// Pixel spacing at the isocentre, mm: the run's, or a nominal 0.18 mm at 512 for a frame of
/// matrix factor `k`.
fn mm_per_px(params: &SegmentParams, k: f64) -> f64 {
    params.pixel_spacing_mm.unwrap_or(0.18 / k)
}

/// Balloon radii to search, pixels (a wider range when the spacing is only nominal).
fn balloon_radii_px(params: &SegmentParams, k: f64) -> (f64, f64) {
    radius_range_px(mm_per_px(params, k), params.pixel_spacing_mm.is_some())
}

/// The attenuation of a frame at the working resolution, and the binning that gave it.
fn working_attenuation(frame: &FrameView<'_>, max_value: u16, params: &SegmentParams) -> (ImageF32, Binning) {
    let binning = Binning::for_frame(frame.columns as usize, frame.rows as usize, params.full_resolution);
    (binning.attenuation(frame, max_value), binning)
}

/// [`segment_frame`] with the baseline frame already reduced to its reference: the frame is
/// binned to the working resolution, segmented there, and the result mapped back.
fn segment_prepared(
    frame: &FrameView<'_>,
    neighbours: &[(u32, FrameView<'_>)],
    max_value: u16,
    params: &SegmentParams,
    baseline: Option<&BaselineReference>,
) -> Result<Segmentation, SegmentError> {
    check_size(frame.rows, frame.columns)?;
    let (w, h) = (frame.columns as usize, frame.rows as usize);
    if let Some([x, y]) = params.seed_xy
        && !(x >= -0.5 && y >= -0.5 && x < w as f64 - 0.5 && y < h as f64 - 0.5)
    {
        return Err(SegmentError::SeedOutsideImage { x, y, rows: frame.rows, columns: frame.columns });
    }
    if let Some(m) = &params.vessel_mask
        && (m.width != w || m.height != h)
    {
        return Err(SegmentError::MaskSize {
            mask_columns: m.width,
            mask_rows: m.height,
            columns: frame.columns,
            rows: frame.rows,
        });
    }
    let start = Instant::now();
    let (a, binning) = working_attenuation(frame, max_value, params);
    let working = binning.working_params(params);
    let (averaged, averaged_with) = if neighbours.is_empty() {
        (None, Vec::new())
    } else {
        let others: Vec<(u32, ImageF32)> =
            neighbours.iter().map(|(j, f)| (*j, working_attenuation(f, max_value, params).0)).collect();
        let (_, r_max, _) = frame_scales(&working, a.width, a.height);
        let (averaged, used) = temporal::average(&a, &others, r_max)?;
        (Some(averaged), used)
    };
    let binned_ms = ms(start);
    let result = segment_working(&a, averaged.as_ref(), &working, baseline.filter(|b| b.binning == binning))?;
    let t0 = Instant::now();
    let mut result = binning.to_native(result, w, h);
    let f = binning.factor() as i32;
    result.averaged_with = averaged_with
        .into_iter()
        .map(|p| PlateauFrame { shift_px: [p.shift_px[0] * f, p.shift_px[1] * f], ..p })
        .collect();
    result.timings.resample_ms = binned_ms + ms(t0);
    result.timings.total_ms = ms(start);
    Ok(result)
}

/// Segments the attenuation image `a` of a frame at the working resolution (`params` and
/// `baseline` in its pixels). `averaged`, the frame averaged with its neighbours on the
/// contrast plateau ([`temporal`]), feeds the thin-line detector only: averaged, the rib bands
/// come out solid and fuse with the veins crossing them, so the vesselness, the mask's gates
/// and the device tests stay on the frame itself.
#[allow(clippy::too_many_lines, reason = "the stages in order, each a call; splitting would only scatter them")]
fn segment_working(
    a: &ImageF32,
    averaged: Option<&ImageF32>,
    params: &SegmentParams,
    baseline: Option<&BaselineReference>,
) -> Result<Segmentation, SegmentError> {
    let (w, h) = (a.width, a.height);
    let start = Instant::now();
    let mut timings = StageTimings::default();
    let (scales, r_max, k) = frame_scales(params, w, h);

    let t0 = Instant::now();
    let tophat = suppress_background(a, r_max)?;
    timings.background_ms = ms(t0);
    let mm_per_px = mm_per_px(params, k);
    let balloon = if params.seed_xy.is_some() {
        None
    } else {
        let range = balloon_radii_px(params, k);
        match baseline.and_then(|b| b.balloon) {
            // The heart moves between the frames: follow the balloon from where it was.
            Some(before) => find_balloon(a, range, Some((before.center_xy, before.radius_px)))?.or(Some(before)),
            None => find_balloon(a, range, None)?,
        }
    };

    let t0 = Instant::now();
    let enhanced = vesselness(tophat, &scales, params.measure)?;
    let tophat = &enhanced.tophat;
    timings.vesselness_ms = ms(t0);

    let t0 = Instant::now();
    let empty = |reason: String, enhanced: Enhanced, timings: StageTimings| Segmentation {
        frame: 0,
        selection: None,
        tree: BranchTree::empty(reason),
        mask: Mask::empty(w, h),
        candidate_mask: Mask::empty(w, h),
        enhanced,
        removed: Vec::new(),
        balloon,
        timings,
        binning: Binning::NONE,
        averaged_with: Vec::new(),
    };
    let noise = noise_sigma(a);
    let depth_floor = 4.0 * noise;
    let v = &enhanced.vesselness;
    let high = otsu_par(&v.data, 0.05, 1.0).map(|t| t.max(0.3));
    let Some(high) = high else {
        timings.total_ms = ms(start);
        return Ok(empty("no vessel-like structure in the frame (the vesselness is flat)".into(), enhanced, timings));
    };
    let low = 0.5 * high;
    // Contrast density: the top-hat depth over the width of the best scale. Contrast-filled
    // veins of every calibre are dense; ribs, the diaphragm edge and the guide catheter are
    // wide for their depth (research note: ribs ~5x, catheter ~5x below the faintest twig).
    let density_floor = 0.35 * median_density(v, &enhanced.radius_px, tophat, high);
    // The top-hat at the 512 level, shared by the line detector and the present-before test.
    let levels = levels_to_512(k);
    let tophat_512 = tophat.pyramid_level(levels)?;
    // The twigs are what the averaged frame's lower noise brings out.
    let lines = match averaged {
        Some(avg) => {
            let t = suppress_background(avg, r_max)?;
            let t512 = t.pyramid_level(levels)?;
            line_response_of_level(&t512, levels)
        }
        None => line_response_of_level(&tophat_512, levels),
    };
    // Vesselness classed for hysteresis, with the depth and density gates in the same pass; a
    // thin line (see [`line`]) passes the gates and is weak at least.
    let line_floor = lines.threshold(LINE_SIGMAS);
    // The guide catheter leaves the balloon, and its walls are thin lines a few sigma deep.
    // Within the balloon's reach the average's lower noise would let them in, so the frame's
    // own floor holds there (the line response's noise scales with the image's); and no line
    // is followed below the seed level there.
    let balloon_zone = balloon.as_ref().map(|b| (b.center_xy, balloon_reach_px(b, k).powi(2)));
    let in_balloon_zone = |x: usize, y: usize| balloon_zone.is_some_and(|(c, r2)| d2([x as f64, y as f64], c) <= r2);
    let frame_floor = averaged.map(|avg| {
        let ratio = noise / noise_sigma(avg).max(f32::MIN_POSITIVE);
        lines.median + LINE_SIGMAS * lines.noise * ratio.max(1.0)
    });
    let tracked = tracked_lines(&lines, LINE_SIGMAS, LINE_TRACK_SIGMAS, LINE_TRACK_MIN_PIECE_PX)?;
    let tracked_at = |x: usize, y: usize| tracked[lines.response.index_of_pixel(x, y)];
    let mut classes = vec![BELOW; v.data.len()];
    classes.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, class) in row.iter_mut().enumerate() {
            let i = y * w + x;
            let (v, depth, radius) = (v.data[i], tophat.data[i], enhanced.radius_px.data[i]);
            let floor = match frame_floor {
                Some(floor) if in_balloon_zone(x, y) => floor,
                _ => line_floor,
            };
            let line = lines.at(x, y) > floor;
            *class = if !line && (depth < depth_floor || depth / (2.0 * radius + 1.0) < density_floor) {
                BELOW
            } else if v >= high && depth >= depth_floor {
                STRONG
            } else if v >= low || line {
                WEAK
            } else {
                BELOW
            };
        }
    });
    // Twigs followed along the line below the seed level (see [`tracked_lines`]); not into a
    // wide vein's border, where a twig's faded end lying against the CS or GCV in projection
    // would close a loop the tree then cuts in the wrong vein.
    let wide = Mask {
        width: w,
        height: h,
        data: classes
            .par_iter()
            .zip(&enhanced.radius_px.data)
            .map(|(c, r)| if *c == STRONG && f64::from(*r) >= TRACK_WIDE_RADIUS_PX * k { 255 } else { 0 })
            .collect(),
    };
    let near_wide = square_extreme(&wide.as_mat()?, (2.0 * k).round() as i32, imgproc::MORPH_DILATE, "wide veins")?;
    let near_wide = near_wide.data_typed::<u8>().map_err(cv("wide veins"))?;
    classes.par_chunks_mut(w).zip(near_wide.par_chunks(w)).enumerate().for_each(|(y, (row, wide_row))| {
        for (x, (class, near)) in row.iter_mut().zip(wide_row).enumerate() {
            if *class == BELOW && *near == 0 && tracked_at(x, y) && !in_balloon_zone(x, y) {
                *class = WEAK;
            }
        }
    });
    let mut mask = hysteresis_classes(&classes, w, h, (40.0 * k * k) as usize)?;
    // Twigs the line detector shows but loses at the takeoff, joined to their parents (see
    // [`bridge`](mod@super::bridge)).
    let orphans = Mask {
        width: w,
        height: h,
        data: (0..w * h)
            .into_par_iter()
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let line = lines.at(x, y) > line_floor || tracked_at(x, y);
                if mask.data[i] == 0 && classes[i] == WEAK && line && !in_balloon_zone(x, y) { 255 } else { 0 }
            })
            .collect(),
    };
    // One run's frames share a size; a baseline of another size is not followed (no shift,
    // no line before). Its measures and the frame's are all on the 512 level.
    let same_size = baseline.is_some_and(|b| {
        b.lines.response.image.width == lines.response.image.width
            && b.lines.response.image.height == lines.response.image.height
            && b.lines.response.levels == lines.response.levels
    });
    // The frame's thin structures above their local background and, against the baseline's,
    // the shift the heart moved them by: for the present-before tests.
    let frame_ridge = match baseline {
        Some(baseline) => {
            let local = local_ridge_of_level(&tophat_512, levels, k)?;
            let shift_px = shift::estimate(&baseline.dense.features, &local).filter(|_| same_size);
            Some((local, shift_px))
        }
        None => None,
    };
    let bridge_input = BridgeInput {
        tophat,
        lines: &lines,
        before: baseline.filter(|_| same_size).map(|b| LineBefore {
            lines: &b.lines,
            shift_px: frame_ridge.as_ref().and_then(|(_, s)| *s),
            reach_px: MOTION_ALLOWANCE_PX * k,
            aligned_reach_px: ALIGNED_ALLOWANCE_PX * k,
        }),
        k,
    };
    let bridged = match &params.vessel_mask {
        Some(given) => {
            mask.data.clone_from(&given.data);
            Bridged { joined: 0, gaps: Mask::empty(w, h) }
        }
        None => {
            bridge_orphan_lines(&mut mask, &orphans, &bridge_input, &|p| in_balloon_zone(p[0] as usize, p[1] as usize))?
        }
    };
    tracing::debug!(joined = bridged.joined, "orphaned lines joined at their takeoff");
    // A given mask is taken as it is.
    if params.vessel_mask.is_none() {
        let carved = carve_valleys(&mut mask, &tophat_512, levels, k)?;
        tracing::debug!(carved, "valleys between touching veins carved out of the mask");
    }
    let distance = distance_transform(&mask)?;
    timings.threshold_ms = ms(t0);

    let t0 = Instant::now();
    let skeleton = thin(&mask);
    let mut graph = SkeletonGraph::from_skeleton(&skeleton);
    let radius_at = |p: [f64; 2]| f64::from(distance.at_clamped(p[0], p[1])) - 0.5;
    let spur = |p: [f64; 2]| (6.0 * k).max(1.6 * radius_at(p));
    graph.remove_small_rings(SMALL_RING_PX * k, None);
    graph.prune_spurs(spur, None);
    // A side branch reaches well past its parent's wall; a bump in a wide vein's wall does not.
    let beyond_px = 6.0 * k;
    graph.prune_within_lumen(radius_at, beyond_px, None);
    trace_len(&graph, "skeleton+prune");

    // Not vein: too faint for its width (catheter, ribs, diaphragm edge). A given mask is
    // taken as it is.
    let vet = params.vessel_mask.is_none();
    let mut removed = Vec::new();
    let alive_before: Vec<bool> = graph.edges.iter().map(|e| e.alive).collect();
    let features: Vec<Option<(f64, f64)>> = graph
        .edges
        .iter()
        .map(|e| {
            e.alive.then(|| {
                let n = e.points.len() as f64;
                let depth = e.points.iter().map(|p| f64::from(tophat.at_clamped(p[0], p[1]))).sum::<f64>() / n;
                let radius = e.points.iter().map(|p| radius_at(*p).max(0.5)).sum::<f64>() / n;
                (depth, radius)
            })
        })
        .collect();
    let reference = weighted_median(
        graph.edges.iter().zip(&features).filter_map(|(e, f)| f.map(|(d, r)| (d / (2.0 * r + 1.0), e.length_px() * r))),
    );
    if let Some(reference) = reference.filter(|_| vet) {
        for (i, f) in features.iter().enumerate() {
            let Some((depth, radius)) = f else { continue };
            if depth / (2.0 * radius + 1.0) < 0.3 * reference {
                graph.edges[i].alive = false;
                removed
                    .push(RemovedStructure { kind: RemovedKind::LowContrast, points: graph.edges[i].points.clone() });
            }
        }
    }
    trace_len(&graph, "lowcontrast");
    let alive_before_devices: Vec<bool> = graph.edges.iter().map(|e| e.alive).collect();
    let mut gain_ratio = vec![None; graph.edges.len()];
    if vet && let (Some(baseline), Some((local, shift_px))) = (baseline, &frame_ridge) {
        let reach = (ALIGNED_ALLOWANCE_PX * k / f64::from(1u32 << local.levels)).round() as i32;
        let alignment = shift_px
            .map(|shift_px| Alignment::new(baseline, local, shift_px, reach, NEW_GAIN_SIGMAS * noise))
            .transpose()?;
        gain_ratio = remove_present_before(
            &mut graph,
            baseline,
            alignment.as_ref(),
            balloon.as_ref(),
            tophat,
            local,
            noise,
            k,
            &radius_at,
            &bridged.gaps,
            Some(&lines),
            &mut removed,
        );
    }
    trace_len(&graph, "present-before");
    if vet {
        remove_straight_to_border(&mut graph, w, h, k, &radius_at, &mut removed);
        trace_len(&graph, "border");
        remove_device_continuations(&mut graph, &alive_before_devices, &gain_ratio, k, &mut removed);
    }
    trace_len(&graph, "device continuations");
    for n in 0..graph.nodes.len() {
        if graph.nodes[n].alive && graph.degree(n) == 0 {
            graph.nodes[n].alive = false;
        }
    }
    // Where a removed structure touched what stays: a lead along a vein leaves stubs there.
    let contacts: HashSet<usize> = graph
        .edges
        .iter()
        .zip(&alive_before)
        .filter(|(e, before)| **before && !e.alive)
        .flat_map(|(e, _)| [e.a, e.b])
        .collect();
    graph.merge_degree_two(None);
    graph.prune_spurs(spur, None);
    let stub = |p: [f64; 2]| 12.0 * k + 2.0 * radius_at(p).max(0.0);
    graph.prune_contact_stubs(&contacts, stub, None);

    // Root: the seed, or the wide free end of the largest structure.
    let root = match params.seed_xy {
        Some(seed) => nearest_edge_point(&graph, seed, |_| true).map(|(e, p)| graph.split_at(e, p)),
        None => auto_root(&mut graph, &radius_at, balloon.as_ref()),
    };
    let Some(mut root) = root else {
        timings.graph_ms = ms(t0);
        timings.total_ms = ms(start);
        let mut out =
            empty("no vessel tree left after removing catheters, leads and background".into(), enhanced, timings);
        out.removed = removed;
        return Ok(out);
    };
    trace_len(&graph, "pre-bridge");
    // The balloon's own skeleton and the catheter inside it are pruned below; a long join
    // across the balloon would bring back the guide catheter leaving it (seed 47 RAO at 1024).
    let near_balloon = |p: [f64; 2], q: [f64; 2]| {
        balloon
            .as_ref()
            .is_some_and(|b| d2(b.center_xy, nearest_on_segment(b.center_xy, p, q)).sqrt() < balloon_reach_px(b, k))
    };
    let bridge_evidence = |p: [f64; 2], q: [f64; 2]| {
        mean_along(tophat, p, q) >= BRIDGE_EVIDENCE_DEPTH_FLOORS * depth_floor && !near_balloon(p, q)
    };
    // The short joins first, on a fine grid (most frames need several); then the few long
    // ones, whose wider grid costs more per pass.
    graph.bridge_gaps(root, BRIDGE_FREE_PX * k, BRIDGE_MIN_PIECE_PX * k, |_, _| true);
    graph.bridge_gaps(root, BRIDGE_MAX_PX * k, BRIDGE_MIN_PIECE_PX * k, bridge_evidence);
    graph.keep_component(root);
    trace_len(&graph, "keep_component");
    let crossings = resolve_crossings(&mut graph, root, &radius_at, k);
    tracing::debug!(crossings, "veins crossing in projection passed through");
    let mean_r =
        |e: &GraphEdge| e.points.iter().map(|p| radius_at(*p).max(0.5)).sum::<f64>() / e.points.len().max(1) as f64;
    graph.break_loops_at(root, |e| 1.0 / mean_r(e), |pts| loop_cut_index(pts, &radius_at, k));
    trace_len(&graph, "break_loops");
    graph.prune_spurs(spur, Some(root));
    graph.prune_within_lumen(radius_at, beyond_px, Some(root));
    if let Some(b) = &balloon {
        // The root splits the skeleton through the balloon's blob; the part on the far side
        // from the CS is the balloon itself and the guide catheter's tip inside it, ending
        // about where the disc ends (a vein joining at the ostium reaches well past it).
        // Thinning draws a blob as a small tree of stubs, which may hang off a junction near
        // the root rather than the root itself (seen end-on in RAO, where the balloon and the
        // filled CS overlap): they go too, a stub at a time.
        let reach = balloon_reach_px(b, k);
        let inside = |p: [f64; 2]| d2(p, b.center_xy) < reach * reach;
        while graph.prune_terminal_inside(inside, Some(root))
            + graph.prune_root_stubs(root, |e| e.points.iter().all(|p| inside(*p)))
            > 0
        {}
    }
    if let Some(b) = balloon.as_ref().filter(|_| params.seed_xy.is_none()) {
        root = through_balloon(&mut graph, root, b, k);
    }
    graph.merge_degree_two(Some(root));
    let junction_gap = |a: [f64; 2], b: [f64; 2]| radius_at(a).max(radius_at(b)).max(0.0) + 3.0 * k;
    graph.contract_junctions(junction_gap, Some(root));
    trace_len(&graph, "final");
    let (mut edges, mut roots) = orient(&graph, root, &radius_at);
    if let Some(b) = &balloon {
        calibre_under_balloon(&mut edges, &roots, b);
    }
    let hairpins = open_hairpins(&mut edges, &mut roots, k);
    tracing::debug!(hairpins, "folds reopened");
    place_junctions(&mut edges, k, &radius_at);
    let hidden = follow_hidden_takeoffs(&mut edges, tophat, k);
    tracing::debug!(hidden, "side branches followed back over their parent's lumen");
    // The walks stay off the balloon and off what was removed as a lead or wire running out of
    // the image. Not off what was removed as present before the contrast: besides leads, that
    // is the ragged pieces a rib's edge leaves, which a vein's end often crosses; a walk that
    // would run along a lead is refused by its density instead ([`follow_tips`]).
    let devices: Vec<[f64; 2]> = removed
        .iter()
        .filter(|s| s.kind == RemovedKind::StraightToBorder)
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let at_balloon =
        |p: [f64; 2]| balloon.as_ref().is_some_and(|b| d2(p, b.center_xy) < balloon_reach_px(b, k).powi(2));
    let keep_out = |p: [f64; 2], r: f64| {
        let reach = r + DEVICE_CLEARANCE_PX * k;
        at_balloon(p) || devices.iter().any(|q| d2(p, *q) < reach * reach)
    };
    // Only where the mask is the detection's own: a mask given (corrected by hand) is the
    // veins' extent.
    let tips = if vet { follow_tips(&mut edges, tophat, k, &keep_out, &at_balloon) } else { 0 };
    tracing::debug!(tips, "vein ends followed on past the mask");
    timings.graph_ms = ms(t0);

    let t0 = Instant::now();
    let view = ViewPrior {
        apical: params.projection.as_ref().and_then(apical_direction),
        groove: params.projection.as_ref().and_then(GrooveModel::project),
    };
    let labels = label_tree(&edges, &roots, mm_per_px, &view);
    // The mask kept is the tree's, as far as the mask's own radii reach.
    let tree_only = tree_mask(&mask, &edges)?;
    // The calibre the tree reports is the lumen's, read across each vein (the labels above
    // weigh the mask's radii, which rank the veins alike).
    let lines: Vec<(&[[f64; 2]], &[f64])> = edges.iter().map(|e| (&e.points[..], &e.radius_px[..])).collect();
    let lumen = lumen_radii_of_all(&lines, tophat);
    for (e, radius_px) in edges.iter_mut().zip(lumen) {
        e.radius_px = radius_px;
    }
    let tree = build_tree(&edges, &labels, params.pixel_spacing_mm);
    timings.label_ms = ms(t0);
    timings.total_ms = ms(start);
    Ok(Segmentation {
        frame: 0,
        selection: None,
        tree,
        mask: tree_only,
        candidate_mask: mask,
        enhanced,
        removed,
        balloon,
        timings,
        binning: Binning::NONE,
        averaged_with: Vec::new(),
    })
}

/// How near a device removed from the tree (px at a 512 matrix, beyond the vein's radius) a
/// vein's end may be followed on ([`follow_tips`]).
const DEVICE_CLEARANCE_PX: f64 = 3.0;

/// How far above its noise floor (in noise levels) the gap between two touching veins must
/// show for it to be carved out of the mask ([`carve_valleys`]).
const VALLEY_SIGMAS: f32 = 5.0;

/// Least depth of a carved valley, as a fraction of the shallower side's depth above the
/// background (the valley's depth plus what is left at its floor). Measured on the suite and
/// held-out sets: at 0.25 recall +0.002-0.005 and precision +0.004-0.005 on every set; at 0.15
/// a wide vein's own noise is carved and a lead piece (45 px) enters a suite tree; at 0.4
/// only the clearest gaps go and nothing changes.
const VALLEY_FRACTION: f32 = 0.25;

/// Fewest pixels (at a 512 matrix; `k^2` times more at the working matrix) of a carved valley: shorter ones are noise in a wide
/// vein's lumen, whose quantum noise is higher than the background's (fewer photons).
const VALLEY_MIN_PX: usize = 8;

/// Carves out of `mask` the thin bright gaps that separate two veins lying side by side in
/// projection (the LMV and ALV running together in RAO, the limbs of the GCV's fold): the
/// line detector run on the negated top-hat at the 512 level, `levels` below the frame. A
/// single vein's profile across is concave, so no valley shows inside it; two touching veins
/// show one between them, which the hysteresis fills and thinning would draw as one
/// centerline between the two. `k` is the working matrix factor. Returns how many pixels
/// were carved.
fn carve_valleys(mask: &mut Mask, tophat_512: &ImageF32, levels: u32, k: f64) -> Result<usize, SegmentError> {
    let negated = ImageF32 {
        width: tophat_512.width,
        height: tophat_512.height,
        data: tophat_512.data.par_iter().map(|v| -v).collect(),
    };
    let gaps = line_response_of_level(&negated, levels);
    let floor = gaps.threshold(VALLEY_SIGMAS);
    let w = mask.width;
    let valley = Mask {
        width: w,
        height: mask.height,
        data: (0..mask.data.len())
            .into_par_iter()
            .map(|i| {
                if mask.data[i] == 0 {
                    return 0;
                }
                let (x, y) = (i % w, i / w);
                let gap = gaps.at(x, y);
                let depth = tophat_512.data[gaps.response.index_of_pixel(x, y)].max(0.0);
                if gap > floor && gap > VALLEY_FRACTION * (depth + gap) { 255 } else { 0 }
            })
            .collect(),
    };
    let comps = components(&valley)?;
    let mut size = vec![0usize; comps.count + 1];
    for l in &comps.labels {
        size[*l as usize] += 1;
    }
    let mut carved = 0;
    for (m, l) in mask.data.iter_mut().zip(&comps.labels) {
        if *l > 0 && size[*l as usize] as f64 >= VALLEY_MIN_PX as f64 * k * k {
            *m = 0;
            carved += 1;
        }
    }
    Ok(carved)
}

/// The point of a live edge accepted by `keep` nearest `target`: `(edge, point)`.
fn nearest_edge_point(
    graph: &SkeletonGraph,
    target: [f64; 2],
    keep: impl Fn(&GraphEdge) -> bool,
) -> Option<(usize, [f64; 2])> {
    graph
        .edges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.alive && keep(e))
        .flat_map(|(i, e)| e.points.iter().map(move |p| (i, *p)))
        .min_by(|x, y| d2(x.1, target).total_cmp(&d2(y.1, target)))
}

fn d2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Points every pixel (at most) along the straight segment from `p` to `q`, both ends
/// included (at least those two).
fn points_along(p: [f64; 2], q: [f64; 2]) -> impl Iterator<Item = [f64; 2]> {
    let n = (d2(p, q).sqrt().ceil() as usize).max(1);
    (0..=n).map(move |i| {
        let t = i as f64 / n as f64;
        [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
    })
}

/// Mean of `image` along the straight segment from `p` to `q`, sampled every pixel.
fn mean_along(image: &ImageF32, p: [f64; 2], q: [f64; 2]) -> f32 {
    let (sum, n) = points_along(p, q).fold((0.0f32, 0usize), |(sum, n), a| (sum + image.at_clamped(a[0], a[1]), n + 1));
    sum / n as f32
}

/// Euclidean distance of every mask pixel to the nearest background pixel.
fn distance_transform(mask: &Mask) -> Result<ImageF32, SegmentError> {
    let src = mask.as_mat()?;
    let mut dst = Mat::default();
    // The 5x5 chamfer mask (Borgefors): within 2% of the exact Euclidean distance, about a
    // third of the time of DIST_MASK_PRECISE on a 1024 frame; radii need no more.
    imgproc::distance_transform(&src, &mut dst, imgproc::DIST_L2, imgproc::DIST_MASK_5, opencv::core::CV_32F)
        .map_err(cv("distance transform"))?;
    ImageF32::from_mat(&dst)
}

/// Median of `(value, weight)` pairs by weight.
fn weighted_median(items: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let mut v: Vec<(f64, f64)> = items.filter(|(x, w)| x.is_finite() && *w > 0.0).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|x| x.1).sum();
    let mut acc = 0.0;
    for (x, wgt) in &v {
        acc += wgt;
        if acc >= 0.5 * total {
            return Some(*x);
        }
    }
    None
}

/// What the frame before the contrast looked like, reduced once per run for
/// [`remove_present_before`]: its top-hat smoothed to a pixel's scale and, for thin
/// structures, what stood above its local background ([`local_ridge_of_level`]), each the
/// largest value within an allowance for the heart having moved in between.
#[derive(Debug, Clone)]
struct BaselineReference {
    /// With the allowance for all the motion ([`MOTION_ALLOWANCE_PX`]): for a frame whose
    /// shift is not found.
    unaligned: Allowance,
    /// With the allowance for what a shift leaves ([`ALIGNED_ALLOWANCE_PX`]).
    aligned: Allowance,
    /// The occlusion balloon, found before the contrast could compete with it.
    balloon: Option<Balloon>,
    /// Its dense thin structures (on its [`local_ridge_of_level`]), to follow them to where
    /// breathing moved them ([`shift`](mod@super::shift)).
    dense: DenseStructures,
    /// The binning the reference was made at (it is in that working resolution's pixels).
    binning: Binning,
    /// Its thin-line response, to tell a line that was there before from a twig
    /// ([`bridge`](mod@super::bridge)).
    lines: LineResponse,
}

/// Where the baseline's moving structures went in a frame: the shift, and where a dense
/// structure of the baseline moved away (the frame shows it again, shifted).
struct Alignment {
    /// Frame position minus baseline position of the moving structures, frame px.
    shift_px: [f64; 2],
    /// The dense baseline structures that moved away, on the 512 level.
    moved_away: Mask,
    /// Pyramid levels between the frame and `moved_away`.
    levels: u32,
    /// The allowance for what the shift leaves, px of that level.
    reach: i32,
}

impl Alignment {
    /// The alignment of a frame whose ridge is `now` (on the baseline's 512 level) with the
    /// baseline `reference` at `shift_px`; `reach` is the allowance for what the shift leaves
    /// (level px) and `margin` the loss a structure may show and still be the same, in ridge
    /// units.
    ///
    /// A dense baseline structure stayed where the frame still shows it in place and not
    /// shifted, and moved where it shows shifted and not in place. Where it shows both (a
    /// structure running along the shift, or a vein now lying on a lead's earlier course),
    /// the structure's neighbourhood decides: the dense pixels within
    /// [`COHERENCE_HALF_PX`] that stayed against those that moved, over
    /// [`COHERENCE_ROUNDS`] rounds.
    fn new(
        reference: &BaselineReference,
        now: &LevelImage,
        shift_px: [f64; 2],
        reach: i32,
        margin: f32,
    ) -> Result<Self, SegmentError> {
        let now_max = ImageF32::from_mat(&square_extreme(
            &now.image.as_mat()?,
            reach,
            imgproc::MORPH_DILATE,
            "motion allowance",
        )?)?;
        let scale = f64::from(1u32 << now.levels);
        let (dx, dy) = ((shift_px[0] / scale).round() as i64, (shift_px[1] / scale).round() as i64);
        let dense = &reference.dense.ridge.image;
        let (w, h) = (dense.width, dense.height);
        // The vote counts pixels per cell of COHERENCE_CELL_PX (a coarse grid keeps the rounds
        // cheap); the level is the one nearest a 512 matrix, its matrix factor its width's.
        let cell = COHERENCE_CELL_PX;
        let (cw, ch) = (w.div_ceil(cell), h.div_ceil(cell));
        let half = (COHERENCE_HALF_PX * w as f64 / 512.0 / cell as f64).round() as i32;
        let cell_of = |i: usize| (i / w / cell) * cw + (i % w) / cell;
        let (mut cells_moved, mut cells_stayed) = (ImageF32::zeros(cw, ch), ImageF32::zeros(cw, ch));
        // Per dense pixel: shows in place, shows shifted.
        let (mut moved, mut both) = (Mask::empty(w, h), Vec::new());
        for (i, &before) in dense.data.iter().enumerate() {
            if before <= 0.0 {
                continue;
            }
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            let (u, v) = (x + dx, y + dy);
            let shifted = u >= 0
                && v >= 0
                && (u as usize) < w
                && (v as usize) < h
                && now_max.data[v as usize * w + u as usize] >= before - margin;
            let in_place = now_max.data[i] >= before - margin;
            match (in_place, shifted) {
                (true, true) => both.push(i),
                (false, true) => {
                    moved.data[i] = 255;
                    cells_moved.data[cell_of(i)] += 1.0;
                }
                (true, false) => cells_stayed.data[cell_of(i)] += 1.0,
                (false, false) => {}
            }
        }
        // Decided pixels vote in the next round, so a decision spreads along a structure a
        // neighbourhood at a time.
        let mut undecided = both;
        for _ in 0..COHERENCE_ROUNDS {
            let votes_moved = box_sum(&cells_moved, half)?;
            let votes_stayed = box_sum(&cells_stayed, half)?;
            let before = undecided.len();
            undecided.retain(|&i| {
                let c = cell_of(i);
                // Counts of pixels, exact in f32.
                match votes_moved.data[c].total_cmp(&votes_stayed.data[c]) {
                    std::cmp::Ordering::Greater => {
                        moved.data[i] = 255;
                        cells_moved.data[c] += 1.0;
                    }
                    std::cmp::Ordering::Less => cells_stayed.data[c] += 1.0,
                    std::cmp::Ordering::Equal => return true,
                }
                false
            });
            if undecided.is_empty() || undecided.len() == before {
                break;
            }
        }
        Ok(Self { shift_px, moved_away: moved, levels: now.levels, reach })
    }

    /// The baseline followed to the frame: `then_at(p)` is a baseline measure at frame
    /// position `p`. What was at `p - shift` moved here; what was at `p` stays unless it is
    /// a dense structure that moved away.
    fn then(&self, p: [f64; 2], then_at: impl Fn([f64; 2]) -> f32) -> f32 {
        let [sx, sy] = self.shift_px;
        let moved_here = then_at([p[0] - sx, p[1] - sy]);
        if self.moved_away_near(p) { moved_here } else { moved_here.max(then_at(p)) }
    }

    /// Whether a dense baseline structure that moved away lies within the allowance of frame
    /// position `p` (looked up at the few points tested rather than dilating the map).
    fn moved_away_near(&self, p: [f64; 2]) -> bool {
        let m = &self.moved_away;
        let scale = f64::from(1u32 << self.levels);
        let (cx, cy) = (((p[0] + 0.5) / scale - 0.5).round() as i64, ((p[1] + 0.5) / scale - 0.5).round() as i64);
        let r = i64::from(self.reach);
        (cy - r..=cy + r).any(|y| {
            y >= 0
                && (y as usize) < m.height
                && (cx - r..=cx + r).any(|x| x >= 0 && (x as usize) < m.width && m.get(x as usize, y as usize))
        })
    }
}

impl BaselineReference {
    fn new(baseline: &FrameView<'_>, max_value: u16, params: &SegmentParams) -> Result<Self, SegmentError> {
        let (a, binning) = working_attenuation(baseline, max_value, params);
        let params = &binning.working_params(params);
        let (_, r_max, k) = frame_scales(params, a.width, a.height);
        let balloon = find_balloon(&a, balloon_radii_px(params, k), None)?;
        let before = suppress_background(&a, r_max)?;
        let smoothed = smooth_pixel_scale(&before, k, "baseline smoothing")?;
        let levels = levels_to_512(k);
        let before_512 = before.pyramid_level(levels)?;
        let local = local_ridge_of_level(before_512.as_ref(), levels, k)?;
        let lines = line_response_of_level(&before_512, levels);
        Ok(Self {
            lines,
            unaligned: Allowance::new(&smoothed, &local, MOTION_ALLOWANCE_PX * k)?,
            aligned: Allowance::new(&smoothed, &local, ALIGNED_ALLOWANCE_PX * k)?,
            balloon,
            dense: shift::dense_structures(&local),
            binning,
        })
    }
}

/// The baseline's measures, each the largest value within a motion allowance.
#[derive(Debug, Clone)]
struct Allowance {
    /// The top-hat smoothed to a pixel's scale.
    attenuation_max: ImageF32,
    /// What stood above its local background ([`local_ridge_of_level`]).
    ridge_max: LevelImage,
    /// The median of `ridge_max`: what the allowance's largest value makes of noise alone.
    ridge_floor: f32,
    /// The median of `attenuation_max`, likewise.
    attenuation_floor: f32,
}

impl Allowance {
    /// The largest of `smoothed` (frame size) and `ridge` (on its level) within `reach_px`
    /// frame pixels.
    fn new(smoothed: &Mat, ridge: &LevelImage, reach_px: f64) -> Result<Self, SegmentError> {
        let ridge_max = ImageF32::from_mat(&square_extreme(
            &ridge.image.as_mat()?,
            (reach_px / f64::from(1u32 << ridge.levels)).round() as i32,
            imgproc::MORPH_DILATE,
            "motion allowance",
        )?)?;
        let (ridge_floor, _) = robust_spread(&ridge_max.data);
        let attenuation_max = ImageF32::from_mat(&square_extreme(
            smoothed,
            reach_px.round() as i32,
            imgproc::MORPH_DILATE,
            "motion allowance",
        )?)?;
        let (attenuation_floor, _) = robust_spread(&attenuation_max.data);
        Ok(Self {
            attenuation_max,
            ridge_max: LevelImage { image: ridge_max, levels: ridge.levels },
            ridge_floor,
            attenuation_floor,
        })
    }
}

/// An edge that gained less than this fraction of what it shows since the baseline was
/// (mostly) there before the contrast. Edges are measured above the noise floors of both
/// frames, which lifts a dense device's ratio by about 0.05 (0.45 before; at 0.45 the guide
/// catheter leaving the balloon in seed 107 RAO came in at 0.46).
const GAINED_MOST: f32 = 0.50;

/// A thin edge that gained less than this fraction of what it shows since the baseline, with
/// at least [`GAINED_LITTLE_MIN_OLD`] of its points not new, was there before the contrast: a
/// lead the heart moved by about its own width gains a few sigma at many points but a fifth
/// of its depth overall (seed 71 RAO), while a twig gains most of it. 0.25 before the
/// noise floors were taken off (which lift a lead's ratio by about 0.05: at 0.25 that lead
/// came in at 0.26).
const GAINED_LITTLE: f32 = 0.30;

/// The fraction of a thin edge's points that must be not new for [`GAINED_LITTLE`] to apply
/// (0.15 to 0.3 give the same trees).
const GAINED_LITTLE_MIN_OLD: f64 = 0.3;

/// Widest mean radius (px at a 512 matrix) of an edge reaching the balloon that
/// [`remove_present_before`] takes for the guide catheter when it did not gain most of its
/// depth: the catheter's radius is about 3.5 px at a 512 matrix, blurred a little wider; the
/// CS there is 10-13 px, and the MCV (4-7 px) gained its depth. Measured on the held-out
/// sets: binned from 1024 the catheter measures 3.6-4.8 px; 4.5 takes it in seeds 23, 31, 61
/// and 67 RAO and changes nothing at 512; 5 also takes seed 53 RAO's (4.8 px) but costs
/// 0.006 of bifurcation F1 at 1024.
const CATHETER_MAX_RADIUS_PX: f64 = 4.5;

/// Length (px at a 512 matrix) of the part outside the balloon's disc that an edge lying
/// mostly within it needs for [`remove_present_before`] to judge it.
const BALLOON_EDGE_JUDGED_PX: f64 = 15.0;

/// What a point must gain since the baseline, in noise sigma, to be new (and what a
/// structure may lose and still be the same).
const NEW_GAIN_SIGMAS: f32 = 2.5;

/// How far the heart may have moved a structure between the baseline and the frame, px at
/// a 512 matrix, when the frame's shift is not known.
const MOTION_ALLOWANCE_PX: f64 = 4.0;

/// The same once the frame's shift is followed ([`shift`](mod@super::shift)): what the
/// heart's own deformation leaves.
const ALIGNED_ALLOWANCE_PX: f64 = 2.0;

/// Half side, px at a 512 matrix, of the neighbourhood that decides whether a dense
/// baseline structure that shows both in place and shifted stayed or moved.
const COHERENCE_HALF_PX: f64 = 24.0;

/// Side of the cells the vote counts pixels in, px of the 512 level.
const COHERENCE_CELL_PX: usize = 4;

/// Rounds of that vote, each reaching one neighbourhood further along a structure: a vein
/// may lie along a lead's earlier course for a few centimetres.
const COHERENCE_ROUNDS: usize = 6;

/// Largest bend, degrees, between a removed device and an edge that runs on from it.
const DEVICE_CONTINUATION_MAX_DEG: f64 = 25.0;

/// Largest mean radius (px at a 512 matrix) of an edge that [`remove_present_before`] measures
/// against its local background rather than the top-hat's.
const THIN_EDGE_RADIUS_PX: f64 = 3.0;

/// Longest ring (px at a 512 matrix) in the skeleton that is a hole in the mask, not two
/// vessels: a hole of about 4 px across (noise within a vessel's lumen).
const SMALL_RING_PX: f64 = 14.0;

/// Longest gap (px at a 512 matrix) bridged between the tree and a piece cut off from it
/// without asking the image: a vessel crossing a denser structure or fading for a few pixels.
const BRIDGE_FREE_PX: f64 = 10.0;

/// Shortest piece (centerline px at a 512 matrix) that is joined back to the tree. Measured
/// on the suite: 18 px raises recall by 0.001 with F1 the same, 12 px by 0.002 with
/// bifurcation F1 0.005 lower.
const BRIDGE_MIN_PIECE_PX: f64 = 25.0;

/// Longest gap (px at a 512 matrix) bridged at all; a join longer than
/// [`BRIDGE_FREE_PX`] needs the image to show contrast along it
/// ([`BRIDGE_EVIDENCE_DEPTH_FLOORS`]). A vein can be cut off for longer than that where it
/// fades or a removal takes a stretch of it (seed 97 RAO: the whole MCV, about 100 px, cut
/// off 17-18 px from the CS near the balloon, was lost; recall 0.60 -> 0.89). A join
/// passing within the balloon's reach is never long: the balloon's own skeleton and the
/// catheter tip inside it are pruned on purpose, and a long join across them brings back
/// the guide catheter leaving the balloon (seed 47 RAO at 1024, 44 px).
/// Measured on the suite and held-out sets A-C at 512: 30 px raises recall by 0.001-0.021
/// (set C 0.842 -> 0.861) with precision and bifurcation F1 within 0.003; 20 px gains about
/// half of that. On set A at 1024 it gains nothing and joins a 28 px piece of a lead that
/// runs into the MCV (seed 29 RAO: precision 0.902 -> 0.874; neither the join's direction
/// nor the piece's length tells it from the vein pieces joined elsewhere, 28-115 px).
const BRIDGE_MAX_PX: f64 = 30.0;

/// Mean top-hat depth along a join longer than [`BRIDGE_FREE_PX`], in depth floors (4 noise
/// sigma each), for it to be bridged: a vein's gap still holds contrast, background between
/// two structures does not. Measured: at 0.5 or 1 floor a lead piece on held-out set A joins
/// a tree (worst device 23 -> 30 px, precision -0.003); at 2 floors the joins that gain
/// recall stay and that one goes.
const BRIDGE_EVIDENCE_DEPTH_FLOORS: f32 = 2.0;

/// How far past the balloon's disc (px at a 512 matrix) a free end from the root may reach
/// and still be the balloon's own skeleton or the catheter tip inside it, not a vein.
const BALLOON_STUB_BEYOND_PX: f64 = 10.0;

/// How far from the balloon's centre its own skeleton and the catheter tip inside it can
/// reach, px: its disc and [`BALLOON_STUB_BEYOND_PX`] past it.
fn balloon_reach_px(b: &Balloon, k: f64) -> f64 {
    b.radius_px + BALLOON_STUB_BEYOND_PX * k
}

/// Half side of the window whose minimum is the local background of [`local_ridge`], px at a
/// 512 matrix: wider than the thinnest veins and leads, narrow enough to follow the heart's
/// and ribs' shading.
const LOCAL_BACKGROUND_HALF_PX: f64 = 5.0;

/// What stands above its local background: `smoothed` minus its minimum over a square of
/// half side [`LOCAL_BACKGROUND_HALF_PX`]. The top-hat keeps everything narrower than the
/// widest vein, so broad shading passes it; a thin vein or lead is measured against what
/// lies beside it.
fn local_ridge(smoothed: &Mat, k: f64) -> Result<Mat, SegmentError> {
    let half = (LOCAL_BACKGROUND_HALF_PX * k).round() as i32;
    let floor = square_extreme(smoothed, half, imgproc::MORPH_ERODE, "local background")?;
    let mut out = Mat::default();
    opencv::core::subtract(smoothed, &floor, &mut out, &opencv::core::no_array(), -1)
        .map_err(cv("local background"))?;
    Ok(out)
}

/// The smallest (`MORPH_ERODE`) or largest (`MORPH_DILATE`) value of `img` within a square
/// of half side `half` px, borders replicated (OpenCV's morphology, separable for a
/// rectangle); `step` names the caller's step in errors.
fn square_extreme(
    img: &impl opencv::core::ToInputArray,
    half: i32,
    op: i32,
    step: &'static str,
) -> Result<Mat, SegmentError> {
    let square = imgproc::get_structuring_element(
        imgproc::MORPH_RECT,
        opencv::core::Size::new(2 * half + 1, 2 * half + 1),
        opencv::core::Point::new(-1, -1),
    )
    .map_err(cv(step))?;
    let mut out = Mat::default();
    imgproc::morphology_ex(
        img,
        &mut out,
        op,
        &square,
        opencv::core::Point::new(-1, -1),
        1,
        opencv::core::BORDER_REPLICATE,
        imgproc::morphology_default_border_value().map_err(cv(step))?,
    )
    .map_err(cv(step))?;
    Ok(out)
}

/// [`local_ridge`] of a top-hat smoothed to a 512 frame's pixel, computed on `level`, the
/// top-hat of a frame of matrix factor `k` reduced `levels` times to the level nearest a 512
/// matrix (a quarter of the work at 1024, and the same window in millimetres).
fn local_ridge_of_level(level: &ImageF32, levels: u32, k: f64) -> Result<LevelImage, SegmentError> {
    let k_level = k / f64::from(1u32 << levels);
    let pre = f64::from(super::enhance::pyramid_sigma(levels));
    let extra = (k_level * k_level - pre * pre).max(0.0).sqrt();
    let smoothed = smooth_pixel_scale(level, extra.max(0.3), "local background smoothing")?;
    Ok(LevelImage { image: ImageF32::from_mat(&local_ridge(&smoothed, k_level)?)?, levels })
}

/// Where to cut an edge that closes a loop (`points` from one node to the other): near its
/// clearly thinner end, else in the middle. A loop closes where a vein's end touches
/// another vein in projection, and a vein tapers towards its end, so an edge clearly
/// thinner at one end (by [`LOOP_CUT_TAPER_RATIO`], each end's third measured past the
/// junction's own lumen) is cut a couple of pixels from that end: the vein stays whole and
/// joined where it leaves its parent, and the stub left at the other vein is a spur.
fn loop_cut_index(points: &[[f64; 2]], radius_at: &impl Fn([f64; 2]) -> f64, k: f64) -> usize {
    let n = points.len();
    let third = (n / 3).max(1);
    let clear = |p: [f64; 2]| ((radius_at(p).max(0.0) + 2.0 * k).ceil() as usize).min(n);
    let mean = |range: std::ops::Range<usize>| {
        let len = range.len();
        if len == 0 { f64::INFINITY } else { range.map(|i| radius_at(points[i])).sum::<f64>() / len as f64 }
    };
    let head_from = clear(points[0]);
    let head = mean(head_from..third.max(head_from));
    let tail_to = n - clear(points[n - 1]);
    let tail = mean((n - third).min(tail_to)..tail_to);
    let stub = (2.0 * k).ceil() as usize + 1;
    if head * LOOP_CUT_TAPER_RATIO < tail {
        stub.min(n - 1)
    } else if tail * LOOP_CUT_TAPER_RATIO < head {
        n.saturating_sub(stub).max(1)
    } else {
        n / 2
    }
}

/// How much thinner one end of a loop's edge must be than the other to be taken for a
/// vein's end (measured on the simulator's venograms: 1.0 cuts real takeoffs where the
/// radius is noise, 1.6 leaves most loops cut in the middle).
const LOOP_CUT_TAPER_RATIO: f64 = 1.3;

/// The sum of `img` over a square of half side `half` px around each pixel (zero outside).
pub(crate) fn box_sum(img: &ImageF32, half: i32) -> Result<ImageF32, SegmentError> {
    let side = 2 * half + 1;
    let mut out = Mat::default();
    imgproc::box_filter(
        &img.as_mat()?,
        &mut out,
        -1,
        opencv::core::Size::new(side, side),
        opencv::core::Point::new(-1, -1),
        false,
        opencv::core::BORDER_CONSTANT,
    )
    .map_err(cv("box sum"))?;
    ImageF32::from_mat(&out)
}

/// `img` smoothed by a Gaussian of `sigma` pixels.
fn smooth_pixel_scale(img: &ImageF32, sigma: f64, what: &'static str) -> Result<Mat, SegmentError> {
    let src = img.as_mat()?;
    let mut dst = Mat::default();
    imgproc::gaussian_blur(&src, &mut dst, opencv::core::Size::new(0, 0), sigma, sigma, opencv::core::BORDER_REPLICATE)
        .map_err(cv(what))?;
    Ok(dst)
}

/// A normalised Gaussian window (out to 3 sigma) for smoothing an image at single points.
struct GaussianWindow {
    reach: isize,
    weights: Vec<f32>,
}

impl GaussianWindow {
    fn new(sigma: f64) -> Self {
        let reach = (3.0 * sigma).ceil().max(1.0) as isize;
        let side = (2 * reach + 1) as usize;
        let mut weights = Vec::with_capacity(side * side);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                weights.push((-((dx * dx + dy * dy) as f64) / (2.0 * sigma * sigma)).exp() as f32);
            }
        }
        Self { reach, weights }
    }

    /// The Gaussian-weighted mean of `img` around the pixel nearest `(x, y)` (borders
    /// replicated, as in the baseline's smoothing).
    fn smoothed_at(&self, img: &ImageF32, x: f64, y: f64) -> f32 {
        let (w, h) = (img.width as isize, img.height as isize);
        let (cx, cy) = ((x.round() as isize).clamp(0, w - 1), (y.round() as isize).clamp(0, h - 1));
        let (mut sum, mut total) = (0.0f32, 0.0f32);
        let mut k = 0;
        for dy in -self.reach..=self.reach {
            let yy = (cy + dy).clamp(0, h - 1) as usize;
            for dx in -self.reach..=self.reach {
                let xx = (cx + dx).clamp(0, w - 1) as usize;
                sum += self.weights[k] * img.data[yy * img.width + xx];
                total += self.weights[k];
                k += 1;
            }
        }
        sum / total
    }
}

/// Widest edge (mean radius, px at a 512 matrix) whose course is looked for in the baseline's
/// line response ([`course_fraction`]): the twigs, and the wires and lead edges the line
/// detector sees; a lead's body is wider than the detector's side lines and shows little.
const NEW_COURSE_MAX_RADIUS_PX: f64 = 1.5;

/// Least fraction of an edge's points on a line of its own course in the frame for it to be
/// judged by its course: a twig is a line; a rib's edge is a step the line detector ignores.
const NEW_COURSE_MIN_NOW: f64 = 0.5;

/// Largest fraction of an edge's points with a line of its own course in the baseline for
/// the edge to be new whatever else was there before.
const NEW_COURSE_MAX_FRACTION: f64 = 0.3;

/// Fraction of `points` (every other one) near which the line response `lines` shows a line
/// `sigmas` above its floor running the way the edge runs there (within one orientation
/// step), within `reach_px` of the point or of where the shift `shift_px` brings it from.
fn course_fraction(
    lines: &LineResponse,
    points: &[[f64; 2]],
    shift_px: Option<[f64; 2]>,
    reach_px: f64,
    sigmas: f32,
) -> f64 {
    let n = super::line::ORIENTATIONS;
    let floor = lines.threshold(sigmas);
    let (w, h) =
        (lines.response.image.width << lines.response.levels, lines.response.image.height << lines.response.levels);
    let step = 1usize << lines.response.levels;
    let reach = reach_px.round() as i64;
    let (mut found, mut count) = (0usize, 0usize);
    for i in (0..points.len()).step_by(2) {
        let (a, b) = (points[i.saturating_sub(2)], points[(i + 2).min(points.len() - 1)]);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        if dx.hypot(dy) < 1e-9 {
            continue;
        }
        let theta = dy.atan2(dx).rem_euclid(std::f64::consts::PI);
        let o = (theta / (std::f64::consts::PI / n as f64)).round() as usize % n;
        let p = points[i];
        let centres = [Some(p), shift_px.map(|s| [p[0] - s[0], p[1] - s[1]])];
        let hit = centres.iter().flatten().any(|c| {
            let (cx, cy) = (c[0].round() as i64, c[1].round() as i64);
            (cy - reach..=cy + reach).step_by(step).any(|y| {
                (cx - reach..=cx + reach).step_by(step).any(|x| {
                    if x < 0 || y < 0 || x as usize >= w || y as usize >= h {
                        return false;
                    }
                    let q = lines.response.index_of_pixel(x as usize, y as usize);
                    let d = usize::from(lines.orientation[q]).abs_diff(o);
                    lines.response.image.data[q] > floor && d.min(n - d) <= 1
                })
            })
        });
        found += usize::from(hit);
        count += 1;
    }
    if count == 0 { 1.0 } else { found as f64 / count as f64 }
}

/// Removes edges that were already there before the contrast arrived. Contrast adds
/// attenuation where a vein is; a lead, wire or catheter attenuates as much before as now.
/// So a point is *new* when the top-hat now (smoothed to a pixel's scale) exceeds the
/// baseline's [`BaselineReference`] by a few noise sigma; an edge with 70% of its points not
/// new is removed unless, over the whole edge, it gained at least 45% of what it shows now
/// (a twig only a few sigma deep cannot gain a few sigma at every point, but gains most of
/// its depth on average; a lead that moved a little gains a fraction). The gain, not only
/// the ratio, is tested so that a vein crossing a rib (rib before, rib plus vein now) stays
/// vein. A thin edge (mean radius up to [`THIN_EDGE_RADIUS_PX`]) is measured above its
/// local background in both frames ([`local_ridge_of_level`]): the broad shading the top-hat keeps
/// would otherwise swamp a faint twig's gain; `local` is that measure of this frame. A thin
/// edge is also removed when it gained under [`GAINED_LITTLE`] of its depth with a third of
/// its points not new (a lead the heart moved); and an edge up to
/// [`CATHETER_MAX_RADIUS_PX`] that reaches the balloon goes when it did not gain most of its
/// depth (the guide catheter leaving the balloon). What lies within the balloon's disc is not
/// judged. A thin line (up to [`NEW_COURSE_MAX_RADIUS_PX`]) that is a line of its own course
/// in the frame's line response `lines_now` and had none of that course nearby in the
/// baseline's is new whatever else was there (a twig crossing a rib's edge or passing a
/// wire); the catheter rule still holds for it.
#[allow(clippy::too_many_arguments, reason = "the frame's measures and settings, named at the one call")]
fn remove_present_before(
    graph: &mut SkeletonGraph,
    reference: &BaselineReference,
    alignment: Option<&Alignment>,
    balloon: Option<&Balloon>,
    tophat: &ImageF32,
    local: &LevelImage,
    noise: f32,
    k: f64,
    radius_at: &impl Fn([f64; 2]) -> f64,
    bridged_gaps: &Mask,
    lines_now: Option<&LineResponse>,
    removed: &mut Vec<RemovedStructure>,
) -> Vec<Option<f32>> {
    let mut ratios = vec![None; graph.edges.len()];
    // The frame smoothed like the baseline (Gaussian of sigma k), but only at the edges'
    // points, which are a few percent of the frame.
    let kernel = GaussianWindow::new(k);
    let allowance = if alignment.is_some() { &reference.aligned } else { &reference.unaligned };
    let before = &allowance.attenuation_max;
    let min_gain = NEW_GAIN_SIGMAS * noise;
    // Each measure is taken above what background alone makes of it, its median over the
    // image: the frame's ridge at a point stands above its local minimum even on background,
    // and the baseline's largest ridge within the allowance more so (likewise the largest
    // smoothed top-hat against the top-hat at a point, for wider edges). Uncorrected, a faint
    // twig's gain is mostly that difference of noise, and it reads as present before.
    let thin_floors = (robust_spread(&local.image.data).0, allowance.ridge_floor);
    let wide_floors = (robust_spread(&tophat.data).0, allowance.attenuation_floor);
    for (index, e) in graph.edges.iter_mut().enumerate() {
        if !e.alive || e.points.is_empty() {
            continue;
        }
        // At the balloon the occluded CS, the balloon and the veins joining at the ostium
        // overlap, and the balloon was there before: the tree is rooted there ([`auto_root`]),
        // so what lies within the disc that found the balloon is not judged by this test (the
        // MCV's first millimetres would go, and the MCV with them). An edge lying mostly
        // within it is judged on the part outside, when that is long enough to judge: the
        // guide catheter leaves the balloon on its way out of the CS.
        let mut judged: &[[f64; 2]] = &e.points;
        let outside: Vec<[f64; 2]>;
        let mut at_balloon = false;
        if let Some(b) = balloon {
            let within = |p: [f64; 2], r: f64| d2(p, b.center_xy) <= r * r;
            let inside = e.points.iter().filter(|p| within(**p, b.radius_px)).count();
            if 2 * inside >= e.points.len() {
                outside = e.points.iter().filter(|p| !within(**p, b.radius_px)).copied().collect();
                if (outside.len() as f64) < BALLOON_EDGE_JUDGED_PX * k {
                    continue;
                }
                judged = &outside;
            }
            let reach = balloon_reach_px(b, k);
            at_balloon = e.points.iter().any(|p| within(*p, reach));
        }
        // A gap the bridging filled is judged by the line it joined: next to the parent it
        // carries the parent's new contrast.
        let in_gap = |p: &[f64; 2]| {
            let (x, y) = (p[0].round().max(0.0) as usize, p[1].round().max(0.0) as usize);
            x < bridged_gaps.width && y < bridged_gaps.height && bridged_gaps.get(x, y)
        };
        let unbridged: Vec<[f64; 2]>;
        if judged.iter().any(in_gap) {
            unbridged = judged.iter().filter(|p| !in_gap(p)).copied().collect();
            if !unbridged.is_empty() {
                judged = &unbridged;
            }
        }
        let mean_r = judged.iter().map(|p| radius_at(*p)).sum::<f64>() / judged.len() as f64;
        let thin = mean_r <= THIN_EDGE_RADIUS_PX * k;
        let (now_floor, then_floor) = if thin { thin_floors } else { wide_floors };
        // Every other point: neighbouring skeleton pixels see nearly the same window.
        let (mut old, mut count, mut now_sum, mut gain_sum) = (0usize, 0usize, 0.0f32, 0.0f32);
        for p in judged.iter().step_by(2) {
            let then_at = |q: [f64; 2]| {
                if thin { allowance.ridge_max.at_frame(q[0], q[1]) } else { before.at_clamped(q[0], q[1]) }
            };
            let now =
                if thin { local.at_frame(p[0], p[1]) } else { kernel.smoothed_at(tophat, p[0], p[1]) } - now_floor;
            let then = match alignment {
                Some(a) => a.then(*p, then_at),
                None => then_at(*p),
            };
            let then = (then - then_floor).max(0.0);
            let gain = now - then;
            old += usize::from(gain < min_gain);
            count += 1;
            now_sum += now;
            gain_sum += gain;
        }
        // A faint twig gains less than a few sigma at each point but, on average, most of
        // what it shows; a lead moved a little gains a fraction of it.
        let gained_most = gain_sum >= GAINED_MOST * now_sum;
        // Only thin edges run on from a lead: the catheter runs on into the CS.
        ratios[index] = (thin && now_sum > 0.0).then(|| gain_sum / now_sum);
        // A thin edge that gained only a small part of its depth is a lead or catheter the
        // heart moved, even where the move left it a few sigma "new" at most of its points.
        let gained_little =
            thin && gain_sum < GAINED_LITTLE * now_sum && old as f64 >= GAINED_LITTLE_MIN_OLD * count as f64;
        // At the balloon the catheter leaves it; the veins there (the CS, the MCV) are wider
        // or gained most of their depth.
        let catheter = mean_r <= CATHETER_MAX_RADIUS_PX * k && at_balloon && !gained_most;
        let present_before = (old as f64 >= 0.7 * count as f64 && !gained_most) || gained_little;
        // A twig crossing a rib's edge or running past a wire shows that structure's ridge
        // within the allowance; a thin structure that was there before shows a line of its
        // own course there. Read only for an edge that would otherwise go.
        let new_course = || {
            let reach_px = if alignment.is_some() { ALIGNED_ALLOWANCE_PX } else { MOTION_ALLOWANCE_PX } * k;
            lines_now.is_some_and(|now| {
                mean_r <= NEW_COURSE_MAX_RADIUS_PX * k
                    && course_fraction(now, judged, None, k, LINE_SIGMAS) >= NEW_COURSE_MIN_NOW
                    && course_fraction(
                        &reference.lines,
                        judged,
                        alignment.map(|a| a.shift_px),
                        reach_px,
                        LINE_TRACK_SIGMAS,
                    ) < NEW_COURSE_MAX_FRACTION
            })
        };
        if present_before && !new_course() || catheter {
            e.alive = false;
            removed.push(RemovedStructure { kind: RemovedKind::PresentBeforeContrast, points: e.points.clone() });
        }
    }
    ratios
}

/// Removes what runs on smoothly from a removed device and did not gain most of what it
/// shows since the baseline ([`GAINED_MOST`] of it, by `gain_ratio` per thin edge): the rest of
/// the lead or catheter, where the heart moved it too far for the point-by-point test (a
/// dense lead displaced a little gains several noise sigma at many points, yet a small
/// fraction of its depth). A vein leaving a lead's course, or crossing it, does not run on
/// from it; one running on from it gained most of what it shows. Repeated along the device.
fn remove_device_continuations(
    graph: &mut SkeletonGraph,
    alive_before: &[bool],
    gain_ratio: &[Option<f32>],
    k: f64,
    removed: &mut Vec<RemovedStructure>,
) {
    let reach = 10.0 * k;
    let min_cos = DEVICE_CONTINUATION_MAX_DEG.to_radians().cos();
    let mut device: Vec<bool> = graph.edges.iter().zip(alive_before).map(|(e, before)| *before && !e.alive).collect();
    // Unit direction of edge `e` leaving node `n` along the edge.
    let leaving = |e: &GraphEdge, n: usize| -> Option<[f64; 2]> {
        if e.a == n {
            direction(&e.points, true, reach)
        } else {
            direction(&e.points, false, reach).map(|d| [-d[0], -d[1]])
        }
    };
    loop {
        let mut changed = false;
        for i in 0..graph.edges.len() {
            let e = &graph.edges[i];
            if !e.alive || gain_ratio.get(i).copied().flatten().is_none_or(|r| r >= GAINED_MOST) {
                continue;
            }
            let continues = [e.a, e.b].iter().any(|&n| {
                let Some(out) = leaving(e, n) else { return false };
                graph.attached(n).iter().any(|&j| {
                    device[j]
                        && leaving(&graph.edges[j], n)
                            .is_some_and(|into| -(into[0] * out[0] + into[1] * out[1]) >= min_cos)
                })
            });
            if continues {
                graph.edges[i].alive = false;
                device[i] = true;
                removed.push(RemovedStructure {
                    kind: RemovedKind::PresentBeforeContrast,
                    points: graph.edges[i].points.clone(),
                });
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Removes terminal edges that run straight, with an even calibre, into the image border:
/// leads and wires leave the field of view, veins taper and end inside it.
fn remove_straight_to_border(
    graph: &mut SkeletonGraph,
    w: usize,
    h: usize,
    k: f64,
    radius_at: &impl Fn([f64; 2]) -> f64,
    removed: &mut Vec<RemovedStructure>,
) {
    let margin = 4.0 * k;
    let near_border = |p: [f64; 2]| {
        p[0] < margin || p[1] < margin || p[0] > w as f64 - 1.0 - margin || p[1] > h as f64 - 1.0 - margin
    };
    for i in 0..graph.edges.len() {
        let e = &graph.edges[i];
        if !e.alive {
            continue;
        }
        let (Some(first), Some(last)) = (e.points.first(), e.points.last()) else { continue };
        if !(near_border(*first) || near_border(*last)) {
            continue;
        }
        let length = e.length_px();
        let chord = (last[0] - first[0]).hypot(last[1] - first[1]);
        let radii: Vec<f64> = e.points.iter().map(|p| radius_at(*p)).collect();
        let mean = radii.iter().sum::<f64>() / radii.len() as f64;
        let spread = (radii.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / radii.len() as f64).sqrt();
        if length > 60.0 * k && chord > 0.9 * length && spread < 0.35 * mean.max(1.0) {
            graph.edges[i].alive = false;
            removed
                .push(RemovedStructure { kind: RemovedKind::StraightToBorder, points: graph.edges[i].points.clone() });
        }
    }
}

/// The CS ostium, found without a seed: the tree point nearest the occlusion balloon when
/// one was found (on a structure with at least a fifth of the most vessel, within three
/// balloon radii); otherwise the free end whose edge is widest near it, on the structure
/// with the most vessel (length x calibre).
fn auto_root(
    graph: &mut SkeletonGraph,
    radius_at: &impl Fn([f64; 2]) -> f64,
    balloon: Option<&Balloon>,
) -> Option<usize> {
    // Component weight per node.
    let n = graph.nodes.len();
    let mut component = vec![usize::MAX; n];
    let mut weights = Vec::new();
    for s in 0..n {
        if !graph.nodes[s].alive || component[s] != usize::MAX {
            continue;
        }
        let id = weights.len();
        let mut weight = 0.0;
        let mut stack = vec![s];
        component[s] = id;
        let mut seen_edges = HashSet::new();
        while let Some(u) = stack.pop() {
            for e in graph.incident(u) {
                if seen_edges.insert(e) {
                    let edge = &graph.edges[e];
                    weight += edge.points.iter().map(|p| radius_at(*p).max(0.5)).sum::<f64>();
                }
                let v = graph.edges[e].other(u);
                if component[v] == usize::MAX {
                    component[v] = id;
                    stack.push(v);
                }
            }
        }
        weights.push(weight);
    }
    let best = weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)?;
    if let Some(balloon) = balloon {
        // The tree point nearest the balloon, on a structure of some size.
        let sizeable = |c: usize| weights[c] >= 0.2 * weights[best];
        let nearest =
            nearest_edge_point(graph, balloon.center_xy, |e| component[e.a] != usize::MAX && sizeable(component[e.a]));
        if let Some((edge, point)) = nearest
            && d2(point, balloon.center_xy).sqrt() <= 3.0 * balloon.radius_px
        {
            // Contrast fills the CS from the balloon's tip on, and the MCV joins about there:
            // the root is the tree point nearest the balloon, with the CS and the MCV (when
            // it joins that close) as its children.
            return Some(graph.split_at(edge, point));
        }
    }
    let ends: Vec<usize> =
        (0..n).filter(|&u| graph.nodes[u].alive && component[u] == best && graph.degree(u) == 1).collect();
    let score = |u: usize| {
        let e = &graph.edges[graph.incident(u)[0]];
        let near: Vec<f64> = e.points_from(u).iter().take(40).map(|p| radius_at(*p)).collect();
        near.iter().sum::<f64>() / near.len().max(1) as f64
    };
    ends.into_iter()
        .max_by(|a, b| score(*a).total_cmp(&score(*b)))
        .or_else(|| (0..n).find(|u| graph.nodes[*u].alive && component[*u] == best))
}

/// The CS's course through the occlusion balloon: the tree leaves the balloon at `root`
/// (the tree point nearest it), but the CS runs on inside it to the ostium, and the veins
/// leaving at the balloon's tip (the MCV, often) leave the CS there, not at the ostium. A
/// straight edge from the balloon's centre to `root` makes that point the junction it is;
/// its new end at the centre is returned as the root. Nothing is added when `root` lies
/// beyond the balloon's reach (the tree starts elsewhere) or at its centre.
fn through_balloon(graph: &mut SkeletonGraph, root: usize, b: &Balloon, k: f64) -> usize {
    let from = graph.nodes[root].xy;
    let length = d2(from, b.center_xy).sqrt();
    if length > balloon_reach_px(b, k) || length < 2.0 * k {
        return root;
    }
    let ostium = graph.add_node(b.center_xy);
    graph.add_edge(ostium, root, points_along(b.center_xy, from).collect());
    ostium
}

/// Under the balloon the mask's distance transform measures the balloon, not the CS: the
/// root edges' points within the balloon's disc (and a few pixels past it, where the blob
/// still widens the mask) take the calibre of the first point beyond, on the edge itself or
/// on its widest child.
fn calibre_under_balloon(edges: &mut [OrientedEdge], roots: &[usize], b: &Balloon) {
    let reach = b.radius_px + 4.0;
    let beyond = |e: &OrientedEdge| e.points.iter().position(|p| d2(*p, b.center_xy) >= reach * reach);
    for &r in roots {
        let calibre = match beyond(&edges[r]) {
            Some(i) => Some(edges[r].radius_px[i]),
            None => edges[r]
                .children
                .iter()
                .filter_map(|&c| beyond(&edges[c]).map(|i| edges[c].radius_px[i]))
                .max_by(f64::total_cmp),
        };
        let Some(calibre) = calibre else { continue };
        let e = &mut edges[r];
        for (p, radius) in e.points.iter().zip(e.radius_px.iter_mut()) {
            if d2(*p, b.center_xy) < reach * reach {
                *radius = calibre;
            }
        }
    }
}

/// Orients the tree from `root`: every edge with its points proximal to distal.
fn orient(graph: &SkeletonGraph, root: usize, radius_at: &impl Fn([f64; 2]) -> f64) -> (Vec<OrientedEdge>, Vec<usize>) {
    let mut edges: Vec<OrientedEdge> = Vec::new();
    let mut graph_edge_of: Vec<usize> = Vec::new();
    let mut roots = Vec::new();
    let mut visited_nodes = HashSet::new();
    visited_nodes.insert(root);
    let mut queue = std::collections::VecDeque::new();
    queue.push_back((root, None::<usize>));
    let mut used = HashSet::new();
    while let Some((u, parent)) = queue.pop_front() {
        for e in graph.incident(u) {
            if !used.insert(e) {
                continue;
            }
            let edge = &graph.edges[e];
            let v = edge.other(u);
            let points = edge.points_from(u);
            let radius_px = points.iter().map(|p| radius_at(*p).max(0.5)).collect();
            let id = edges.len();
            edges.push(OrientedEdge { parent, children: Vec::new(), points, radius_px });
            graph_edge_of.push(e);
            match parent {
                Some(p) => edges[p].children.push(id),
                None => roots.push(id),
            }
            if visited_nodes.insert(v) {
                queue.push_back((v, Some(id)));
            }
        }
    }
    (edges, roots)
}

/// Assembles the typed tree with ids, node kinds and measurements. An edge with several
/// label runs becomes one branch per run, joined at transition nodes.
fn build_tree(edges: &[OrientedEdge], labels: &[EdgeLabels], spacing_mm: Option<f64>) -> BranchTree {
    if edges.is_empty() {
        return BranchTree::empty("the vessel tree has no branch long enough to keep");
    }
    let mut nodes: Vec<TreeNode> = Vec::new();
    let root_xy = edges.iter().find(|e| e.parent.is_none()).map_or([0.0, 0.0], |e| e.points[0]);
    nodes.push(TreeNode { id: 0, kind: NodeKind::Root, xy: root_xy });
    // Edges are in breadth-first order: parents come first.
    let mut last_branch_of_edge = vec![0u32; edges.len()];
    let mut to_node_of_edge = vec![0u32; edges.len()];
    let mut branches: Vec<TreeBranch> = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        let mut runs: Vec<(usize, super::super::labels::VeinLabel)> =
            labels[i].iter().copied().filter(|(start, _)| *start + 1 < e.points.len()).collect();
        if runs.is_empty() {
            runs.push((0, labels[i].first().map_or(super::super::labels::VeinLabel::Branch, |r| r.1)));
        }
        runs[0].0 = 0;
        let mut parent = e.parent.map(|p| last_branch_of_edge[p]);
        let mut from = e.parent.map_or(0, |p| to_node_of_edge[p]);
        for (r, &(start, label)) in runs.iter().enumerate() {
            let end = runs.get(r + 1).map_or(e.points.len() - 1, |next| next.0);
            let last_run = r + 1 == runs.len();
            let kind = match (last_run, e.children.is_empty()) {
                (false, _) => NodeKind::Transition,
                (true, true) => NodeKind::End,
                (true, false) => NodeKind::Bifurcation,
            };
            let to = nodes.len() as u32;
            nodes.push(TreeNode { id: to, kind, xy: e.points[end] });
            let id = branches.len() as u32;
            branches.push(measure_branch(
                id,
                parent,
                label,
                from,
                to,
                &e.points[start..=end],
                &e.radius_px[start..=end],
                spacing_mm,
            ));
            parent = Some(id);
            from = to;
        }
        last_branch_of_edge[i] = parent.unwrap_or(0);
        to_node_of_edge[i] = from;
    }
    // Takeoff angles against the parent's axis at the junction.
    for i in 0..branches.len() {
        let Some(p) = branches[i].parent else { continue };
        let angle = takeoff_angle_deg(&branches, &branches[p as usize], &branches[i]);
        branches[i].takeoff_angle_deg = angle;
    }
    BranchTree { nodes, branches, empty_reason: None }
}

/// Angle between the parent's axis at the junction (pointing downstream) and the child's
/// first direction, degrees (0 = straight on), each axis measured outside the bifurcation's
/// core, as quantitative angiography measures bifurcation angles: from where the vessel is
/// clear of the parent's lumen at the junction (its radius plus [`TAKEOFF_CLEAR_PX`] from the
/// junction), over three of the child's mean radii (at least 10 px). The parent's axis is
/// the mean of its course arriving and of its continuation leaving (the widest other child
/// among `branches`), either alone where the other is too short (the CS at the ostium), the
/// course arriving where the two part by more than 45 degrees.
/// Inside the core the skeletons bend towards each other, and in projection a child leaving
/// a wide vein runs within its lumen first.
pub(crate) fn takeoff_angle_deg(branches: &[TreeBranch], parent: &TreeBranch, child: &TreeBranch) -> Option<f64> {
    let junction = *parent.points.last()?;
    let near: Vec<f64> = parent.radius_px.iter().rev().take(5).copied().collect();
    let clear = median(near).unwrap_or(0.0) + TAKEOFF_CLEAR_PX;
    let out = |p: &[f64; 2]| (p[0] - junction[0]).hypot(p[1] - junction[1]) > clear;
    let mean_radius = |b: &TreeBranch| b.radius_px.iter().sum::<f64>() / b.radius_px.len().max(1) as f64;
    let reach = (3.0 * mean_radius(child)).max(10.0);
    // The parent arriving up to its last point clear of the core; its continuation and the
    // child from their first.
    let arriving = parent.points.iter().rposition(out).and_then(|i| direction(&parent.points[..=i], false, reach));
    let leaving = branches
        .iter()
        .filter(|b| b.parent == Some(parent.id) && b.id != child.id)
        .max_by(|a, b| mean_radius(a).total_cmp(&mean_radius(b)))
        .and_then(|c| c.points.iter().position(out).and_then(|i| direction(&c.points[i..], true, reach)));
    let axis = match (arriving, leaving) {
        // Where the parent bends sharply at the junction (a vein folding back in projection)
        // the mean says nothing; the course arriving stands.
        (Some(a), Some(b)) if a[0] * b[0] + a[1] * b[1] >= TAKEOFF_STRAIGHT_MIN_COS => {
            let (x, y) = (a[0] + b[0], a[1] + b[1]);
            let n = x.hypot(y);
            [x / n, y / n]
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => direction(&parent.points, false, reach)?,
    };
    let first = child.points.iter().position(out).filter(|i| child.points.len() - i >= 2).unwrap_or(0);
    direction(&child.points[first..], true, reach)
        .map(|b| (axis[0] * b[0] + axis[1] * b[1]).clamp(-1.0, 1.0).acos().to_degrees())
}

/// Least cosine between the parent's course arriving at a junction and leaving it for their
/// mean to be its axis there (45 degrees).
const TAKEOFF_STRAIGHT_MIN_COS: f64 = 0.7;

/// Margin beyond the parent's radius at a junction past which a takeoff angle's axes are
/// measured, px.
const TAKEOFF_CLEAR_PX: f64 = 2.0;

/// One branch with its measurements (the takeoff angle is filled in by the caller).
#[allow(clippy::too_many_arguments, reason = "the fields of a branch, named at each call")]
pub(crate) fn measure_branch(
    id: u32,
    parent: Option<u32>,
    label: super::super::labels::VeinLabel,
    from: u32,
    to: u32,
    points: &[[f64; 2]],
    radius_px: &[f64],
    spacing_mm: Option<f64>,
) -> TreeBranch {
    let length_px = polyline_length(points);
    let chord = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (b[0] - a[0]).hypot(b[1] - a[1]),
        _ => 0.0,
    };
    let mean_r = radius_px.iter().sum::<f64>() / radius_px.len().max(1) as f64;
    let min_r = radius_px.iter().copied().fold(f64::INFINITY, f64::min);
    TreeBranch {
        id,
        parent,
        label,
        from,
        to,
        points: points.to_vec(),
        radius_px: radius_px.to_vec(),
        length_px,
        length_mm: spacing_mm.map(|s| length_px * s),
        mean_diameter_mm: spacing_mm.map(|s| 2.0 * mean_r * s),
        min_diameter_mm: spacing_mm.map(|s| 2.0 * min_r * s),
        tortuosity: if chord > 1e-9 { (length_px / chord).max(1.0) } else { 1.0 },
        takeoff_angle_deg: None,
    }
}

/// The vessel mask restricted to the tree: mask pixels within reach of a kept centerline.
fn tree_mask(mask: &Mask, edges: &[OrientedEdge]) -> Result<Mask, SegmentError> {
    let mut region = Mat::zeros(mask.height as i32, mask.width as i32, opencv::core::CV_8U)
        .map_err(cv("tree mask"))?
        .to_mat()
        .map_err(cv("tree mask"))?;
    for e in edges {
        for (p, r) in e.points.iter().zip(&e.radius_px) {
            imgproc::circle(
                &mut region,
                opencv::core::Point::new(p[0].round() as i32, p[1].round() as i32),
                (r * 1.5 + 2.0).ceil() as i32,
                opencv::core::Scalar::all(255.0),
                -1,
                imgproc::LINE_8,
                0,
            )
            .map_err(cv("tree mask"))?;
        }
    }
    let region = region.data_typed::<u8>().map_err(cv("tree mask"))?;
    let data = mask.data.iter().zip(region).map(|(m, r)| if *r != 0 { *m } else { 0 }).collect();
    Ok(Mask { width: mask.width, height: mask.height, data })
}

/// Logs the centerline length left after a stage (debug level).
fn trace_len(g: &SkeletonGraph, stage: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let length_px: f64 = g.edges.iter().filter(|e| e.alive).map(GraphEdge::length_px).sum();
        tracing::debug!(stage, length_px, "centerline left");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_is_on_a_line_of_its_own_course_only_where_one_runs_its_way() {
        // A thin vertical line (radius about 1 px, 0.3 deep) on faint noise.
        let n = 96;
        let mut state = 7u32;
        let data = (0..n * n)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5) * 0.02;
                let x = (i % n) as f64;
                (0.3 * (1.0 - ((x - 48.0) / 1.5).powi(2)).max(0.0) + noise) as f32
            })
            .collect();
        let lines = line_response_of_level(&ImageF32 { width: n, height: n, data }, 0);
        let along: Vec<[f64; 2]> = (10..86).map(|y| [48.0, f64::from(y)]).collect();
        let across: Vec<[f64; 2]> = (10..86).map(|x| [f64::from(x), 48.0]).collect();
        let beside: Vec<[f64; 2]> = (10..86).map(|y| [56.0, f64::from(y)]).collect();
        assert!(course_fraction(&lines, &along, None, 0.0, 5.0) > 0.9);
        assert!(course_fraction(&lines, &across, None, 2.0, 3.0) < 0.1, "a line of another course");
        assert!(course_fraction(&lines, &beside, None, 2.0, 3.0) < 0.1, "out of reach");
        assert!(course_fraction(&lines, &beside, None, 8.0, 3.0) > 0.9, "within reach");
        assert!(course_fraction(&lines, &beside, Some([8.0, 0.0]), 0.0, 3.0) > 0.9, "where the shift brings it from");
    }

    /// A 128 x 128 top-hat with projected cylinders (`2 sqrt(r^2 - d^2)` deep, blurred) running down
    /// the image at the columns and radii given, a little deterministic noise on it, and the
    /// mask of everything deeper than 0.2.
    fn cylinders(veins: &[(f64, f64)]) -> (ImageF32, Mask) {
        let n = 128;
        let mut data = vec![0.0f32; n * n];
        let mut state = 12345u32;
        for (i, v) in data.iter_mut().enumerate() {
            let x = (i % n) as f64;
            // Blurred over three columns, as the image is.
            let at =
                |x: f64| -> f64 { veins.iter().map(|(c, r)| 2.0 * (r * r - (x - c).powi(2)).max(0.0).sqrt()).sum() };
            let depth = (at(x - 1.0) + at(x) + at(x + 1.0)) / 3.0;
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5;
            *v = (0.1 * depth + 0.02 * noise) as f32;
        }
        let mask = Mask { width: n, height: n, data: data.iter().map(|v| if *v > 0.2 { 255 } else { 0 }).collect() };
        (ImageF32 { width: n, height: n, data }, mask)
    }

    fn runs_across(mask: &Mask, y: usize) -> usize {
        let row = &mask.data[y * mask.width..(y + 1) * mask.width];
        row.windows(2).filter(|w| w[0] == 0 && w[1] != 0).count() + usize::from(row[0] != 0)
    }

    #[test]
    fn two_veins_touching_in_projection_are_parted_and_one_wide_vein_is_not() {
        // A vein of radius 4 px against one of 2.5 px, 6.5 px apart: their lumens touch.
        let (tophat, mut mask) = cylinders(&[(60.0, 4.0), (66.5, 2.5)]);
        assert_eq!(runs_across(&mask, 64), 1, "the mask joins them");
        assert!(carve_valleys(&mut mask, &tophat, 0, 1.0).unwrap() > 0);
        assert!((8..120).all(|y| runs_across(&mask, y) == 2), "parted all along");
        let (tophat, mut mask) = cylinders(&[(64.0, 10.0)]);
        let before = mask.clone();
        assert_eq!(carve_valleys(&mut mask, &tophat, 0, 1.0).unwrap(), 0);
        assert_eq!(mask.data, before.data);
    }

    #[test]
    fn the_cs_runs_on_through_the_balloon_and_the_vein_leaving_at_its_tip_is_a_side_branch() {
        // The tree leaves the balloon (centre (100, 100), radius 12) at (112, 100): the CS runs
        // on to the right, the MCV leaves downward there.
        let mut graph = SkeletonGraph::default();
        let tip = graph.add_node([112.0, 100.0]);
        let cs_end = graph.add_node([200.0, 100.0]);
        let mcv_end = graph.add_node([112.0, 180.0]);
        graph.add_edge(tip, cs_end, (112..=200).map(|x| [f64::from(x), 100.0]).collect());
        graph.add_edge(tip, mcv_end, (100..=180).map(|y| [112.0, f64::from(y)]).collect());
        let balloon = Balloon { center_xy: [100.0, 100.0], radius_px: 12.0, strength: 1.0 };
        let root = through_balloon(&mut graph, tip, &balloon, 1.0);
        assert_ne!(root, tip);
        assert!(d2(graph.nodes[root].xy, [100.0, 100.0]) < 1e-18);
        assert_eq!((graph.degree(root), graph.degree(tip)), (1, 3));
        // Under the balloon the CS keeps the calibre it shows past it (the blob widens the
        // mask a little beyond the disc).
        let radius_at = |p: [f64; 2]| if (p[0] - 100.0).hypot(p[1] - 100.0) < 15.0 { 12.0 } else { 5.0 };
        let (mut edges, roots) = orient(&graph, root, &radius_at);
        calibre_under_balloon(&mut edges, &roots, &balloon);
        assert_eq!(roots.len(), 1);
        assert!(edges[roots[0]].radius_px.iter().all(|r| (*r - 5.0).abs() < 1e-12), "{:?}", edges[roots[0]].radius_px);
        assert_eq!(edges[roots[0]].children.len(), 2);
        // A tree that starts away from the balloon (beyond its reach) is left as it is.
        let far = graph.add_node([300.0, 300.0]);
        assert_eq!(through_balloon(&mut graph, far, &balloon, 1.0), far);
    }

    #[test]
    fn the_plateau_is_the_neighbours_near_the_frames_energy_up_to_the_first_that_falls() {
        let selection = |energy: Vec<f64>| FrameSelection { frame: 5, baseline_frame: 0, energy, filling: true };
        //                              0    1    2    3     4     5    6     7     8
        let s = selection(vec![0.3, 0.4, 0.6, 0.96, 0.97, 1.0, 0.99, 0.80, 0.99]);
        // Frame 7 falls off the plateau, so 8 is not reached; 3 and 4 are within two frames.
        let mut n = plateau_neighbours(&s, 5);
        n.sort_unstable();
        assert_eq!(n, vec![3, 4, 6]);
        // Relative to the frame's own energy, either way (a frame chosen by hand while the
        // contrast fills has no plateau); at the run's ends; outside the run, none.
        assert_eq!(plateau_neighbours(&s, 8), Vec::<u32>::new());
        assert_eq!(plateau_neighbours(&s, 1), Vec::<u32>::new());
        assert_eq!(plateau_neighbours(&s, 3), vec![4, 5]);
        assert_eq!(plateau_neighbours(&s, 42), Vec::<u32>::new());
    }

    fn line(from: [f64; 2], to: [f64; 2]) -> Vec<[f64; 2]> {
        let n = (from[0] - to[0]).hypot(from[1] - to[1]).ceil().max(1.0) as usize;
        (0..=n)
            .map(|i| {
                let t = i as f64 / n as f64;
                [from[0] + t * (to[0] - from[0]), from[1] + t * (to[1] - from[1])]
            })
            .collect()
    }

    /// What runs on smoothly from a removed lead and did not gain most of what it shows goes
    /// with it, along the lead; a vein leaving the lead's course at an angle, and one running
    /// on from it that gained most of what it shows, stay.
    #[test]
    fn the_rest_of_a_removed_lead_goes_and_veins_touching_it_stay() {
        let mut graph = SkeletonGraph::default();
        let xy = [[0.0, 100.0], [100.0, 100.0], [200.0, 100.0], [100.0, 180.0], [300.0, 100.0], [290.0, 135.0]];
        let n: Vec<usize> = xy.iter().map(|p| graph.add_node(*p)).collect();
        let lead_removed = graph.add_edge(n[0], n[1], line(xy[0], xy[1]));
        let lead_rest = graph.add_edge(n[1], n[2], line(xy[1], xy[2]));
        let vein_across = graph.add_edge(n[1], n[3], line(xy[1], xy[3]));
        let vein_on = graph.add_edge(n[2], n[4], line(xy[2], xy[4]));
        let lead_tip = graph.add_edge(n[2], n[5], line(xy[2], xy[5]));
        let alive_before = vec![true; graph.edges.len()];
        graph.edges[lead_removed].alive = false;
        let mut ratio = vec![Some(0.2_f32); graph.edges.len()];
        ratio[vein_on] = Some(0.9);
        let mut removed = Vec::new();
        remove_device_continuations(&mut graph, &alive_before, &ratio, 1.0, &mut removed);
        assert!(!graph.edges[lead_rest].alive, "the lead running on from the removed part");
        assert!(!graph.edges[lead_tip].alive, "the lead's tip, bending 21 degrees further on");
        assert!(graph.edges[vein_across].alive, "a vein leaving the lead at a right angle");
        assert!(graph.edges[vein_on].alive, "a vein running on from the lead that gained most of it");
        assert_eq!(removed.len(), 2);
    }

    /// A ridge map (level 0, 160 x 160) with unit-deep lines three pixels wide.
    fn ridge_map(lines: &[([f64; 2], [f64; 2])]) -> ImageF32 {
        let mut img = ImageF32::zeros(160, 160);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = 0.002 * ((i * 7919 % 13) as f32 / 13.0);
        }
        for (a, b) in lines {
            for p in line(*a, *b) {
                for d in -1..=1 {
                    let (x, y) = (p[0].round() as usize, (p[1].round() as i64 + d) as usize);
                    if x < 160 && y < 160 {
                        img.data[y * 160 + x] = 1.0;
                    }
                }
            }
        }
        img
    }

    /// Sets a horizontal line three pixels wide, centred on row `y`, over columns `xs` of a
    /// [`ridge_map`] to `depth`.
    fn paint_line(img: &mut ImageF32, xs: std::ops::RangeInclusive<usize>, y: usize, depth: f32) {
        for x in xs {
            for row in y - 1..=y + 1 {
                img.data[row * img.width + x] = depth;
            }
        }
    }

    /// The baseline of [`ridge_map`]s: a lead along y = 60 and a sternal wire along x = 140.
    fn baseline_with_lead_and_wire() -> BaselineReference {
        let before = ridge_map(&[([0.0, 60.0], [130.0, 60.0]), ([140.0, 0.0], [140.0, 159.0])]);
        let level = LevelImage { image: before.clone(), levels: 0 };
        let smoothed = before.as_mat().unwrap().try_clone().unwrap();
        BaselineReference {
            unaligned: Allowance::new(&smoothed, &level, MOTION_ALLOWANCE_PX).unwrap(),
            aligned: Allowance::new(&smoothed, &level, ALIGNED_ALLOWANCE_PX).unwrap(),
            balloon: None,
            dense: shift::dense_structures(&level),
            binning: Binning::NONE,
            lines: line_response_of_level(&before, 0),
        }
    }

    /// A loop's edge tapering from 3 px to 1.5 px is cut a few pixels from its thin end
    /// (either way round); one of even calibre, or tapering less than the ratio, in the middle.
    #[test]
    fn a_loop_is_cut_at_the_thin_end_of_a_tapering_vein() {
        let points = line([0.0, 50.0], [60.0, 50.0]);
        let n = points.len();
        let tapering = |p: [f64; 2]| 3.0 - 1.5 * p[0] / 60.0;
        let cut = loop_cut_index(&points, &tapering, 1.0);
        assert!(cut >= n - 5 && cut < n, "cut at {cut} of {n}");
        let reversed: Vec<[f64; 2]> = points.iter().rev().copied().collect();
        let cut = loop_cut_index(&reversed, &tapering, 1.0);
        assert!(cut > 0 && cut <= 4, "cut at {cut} of {n}");
        assert_eq!(loop_cut_index(&points, &|_: [f64; 2]| 2.0, 1.0), n / 2);
        let slight = |p: [f64; 2]| 2.2 - 0.4 * p[0] / 60.0;
        assert_eq!(loop_cut_index(&points, &slight, 1.0), n / 2);
    }

    /// Breathing moved the lead 8 px up; a vein now runs for 70 px where the lead was. With
    /// the shift followed, the vein is new and the lead and the (static) wire are old; a
    /// motion allowance alone calls the vein old and the lead new.
    #[test]
    fn a_vein_on_a_leads_earlier_course_is_new_once_the_shift_is_followed() {
        let reference = baseline_with_lead_and_wire();
        let now = LevelImage {
            image: ridge_map(&[
                ([0.0, 52.0], [130.0, 52.0]),
                ([140.0, 0.0], [140.0, 159.0]),
                ([30.0, 60.0], [100.0, 60.0]),
            ]),
            levels: 0,
        };
        let shift_px = shift::estimate(&reference.dense.features, &now).expect("the lead's shift");
        // Within the lines' width (a 3 px line fits three shifts equally well).
        assert!(shift_px[0] == 0.0 && (shift_px[1] + 8.0).abs() <= 1.0, "{shift_px:?}");
        let margin = 0.1;
        let reach = ALIGNED_ALLOWANCE_PX.round() as i32;
        let alignment = Alignment::new(&reference, &now, shift_px, reach, margin).unwrap();
        let aligned = |p: [f64; 2]| alignment.then(p, |q| reference.aligned.ridge_max.at_frame(q[0], q[1]));
        let unaligned = |p: [f64; 2]| reference.unaligned.ridge_max.at_frame(p[0], p[1]);
        for x in [35.0, 65.0, 95.0] {
            assert!(aligned([x, 60.0]) < margin, "the vein at x = {x} is new: {}", aligned([x, 60.0]));
            assert!(unaligned([x, 60.0]) > 0.9, "without the shift it looks old");
        }
        for x in [10.0, 65.0, 120.0] {
            assert!(aligned([x, 52.0]) > 0.9, "the moved lead at x = {x} is old");
            assert!(unaligned([x, 52.0]) < margin, "without the shift it looks new");
        }
        for y in [20.0, 100.0] {
            assert!(aligned([140.0, y]) > 0.9, "the wire stayed");
        }
    }

    /// What lies within the balloon was there before the contrast (the balloon) and stays for
    /// the root; the same edge elsewhere goes.
    #[test]
    fn what_lies_within_the_balloon_is_not_judged_present_before() {
        let reference = baseline_with_lead_and_wire();
        let now = reference.dense.ridge.clone();
        let tophat = now.image.clone();
        let balloon = Balloon { center_xy: [60.0, 60.0], radius_px: 12.0, strength: 1.0 };
        for (inside, expect_alive) in [(Some(&balloon), true), (None, false)] {
            let mut graph = SkeletonGraph::default();
            let (a, b) = (graph.add_node([52.0, 60.0]), graph.add_node([68.0, 60.0]));
            let e = graph.add_edge(a, b, line([52.0, 60.0], [68.0, 60.0]));
            let mut removed = Vec::new();
            let radius = |_: [f64; 2]| 1.5;
            remove_present_before(
                &mut graph,
                &reference,
                None,
                inside,
                &tophat,
                &now,
                0.01,
                1.0,
                &radius,
                &Mask::empty(1, 1),
                None,
                &mut removed,
            );
            assert_eq!(graph.edges[e].alive, expect_alive, "balloon {inside:?}");
        }
    }

    /// Runs [`remove_present_before`] on one edge along `from`-`to` of the frame `now` (a
    /// ridge map), with the lead-and-wire baseline and `balloon`; whether the edge stays.
    fn edge_stays(now: &LevelImage, from: [f64; 2], to: [f64; 2], balloon: Option<&Balloon>) -> bool {
        let reference = baseline_with_lead_and_wire();
        let mut graph = SkeletonGraph::default();
        let (a, b) = (graph.add_node(from), graph.add_node(to));
        let e = graph.add_edge(a, b, line(from, to));
        let mut removed = Vec::new();
        let tophat = now.image.clone();
        remove_present_before(
            &mut graph,
            &reference,
            None,
            balloon,
            &tophat,
            now,
            0.01,
            1.0,
            &|_: [f64; 2]| 1.5,
            &Mask::empty(1, 1),
            None,
            &mut removed,
        );
        graph.edges[e].alive
    }

    /// An edge lying mostly within the balloon's disc is judged on its part outside: the
    /// guide catheter leaving the balloon along its old course goes, a vein leaving it where
    /// nothing was before stays, and an edge with too little outside is not judged.
    #[test]
    fn an_edge_mostly_within_the_balloon_is_judged_on_its_part_outside() {
        let mut now = baseline_with_lead_and_wire().dense.ridge;
        paint_line(&mut now.image, 10..=50, 100, 1.0);
        let on_lead = Balloon { center_xy: [20.0, 60.0], radius_px: 12.0, strength: 1.0 };
        assert!(!edge_stays(&now, [10.0, 60.0], [50.0, 60.0], Some(&on_lead)), "the catheter's course");
        let on_vein = Balloon { center_xy: [20.0, 100.0], radius_px: 12.0, strength: 1.0 };
        assert!(edge_stays(&now, [10.0, 100.0], [50.0, 100.0], Some(&on_vein)), "a new vein");
        assert!(edge_stays(&now, [10.0, 60.0], [38.0, 60.0], Some(&on_lead)), "6 px outside: not judged");
    }

    /// At the balloon a thin edge that did not gain most of its depth is the catheter, though
    /// every point of it is new (it is denser now); the same edge away from the balloon stays.
    #[test]
    fn a_thin_edge_at_the_balloon_that_gained_under_half_its_depth_goes() {
        let mut now = baseline_with_lead_and_wire().dense.ridge;
        paint_line(&mut now.image, 40..=100, 60, 1.7);
        let balloon = Balloon { center_xy: [30.0, 60.0], radius_px: 12.0, strength: 1.0 };
        assert!(!edge_stays(&now, [42.0, 60.0], [98.0, 60.0], Some(&balloon)));
        assert!(edge_stays(&now, [42.0, 60.0], [98.0, 60.0], None));
    }

    /// A lead the heart moved shows a little deeper over half its length (new there by many
    /// noise sigma) and as deep as before over the rest: it gained a tenth of its depth and
    /// goes, though only half its points are old. A twig where nothing was before stays.
    #[test]
    fn a_thin_edge_that_gained_little_of_its_depth_goes() {
        let reference = baseline_with_lead_and_wire();
        let mut now = reference.dense.ridge.clone();
        // The lead along y = 60: 1.2 deep over x < 60 (it was 1.0), and a twig along y = 100.
        paint_line(&mut now.image, 0..=59, 60, 1.2);
        paint_line(&mut now.image, 20..=99, 100, 0.5);
        let tophat = now.image.clone();
        let mut graph = SkeletonGraph::default();
        let (a, b) = (graph.add_node([10.0, 60.0]), graph.add_node([110.0, 60.0]));
        let lead = graph.add_edge(a, b, line([10.0, 60.0], [110.0, 60.0]));
        let (c, d) = (graph.add_node([25.0, 100.0]), graph.add_node([95.0, 100.0]));
        let twig = graph.add_edge(c, d, line([25.0, 100.0], [95.0, 100.0]));
        let mut removed = Vec::new();
        let ratios = remove_present_before(
            &mut graph,
            &reference,
            None,
            None,
            &tophat,
            &now,
            0.01,
            1.0,
            &|_: [f64; 2]| 1.5,
            &Mask::empty(1, 1),
            None,
            &mut removed,
        );
        let lead_ratio = ratios[lead].expect("a thin edge has a gain ratio");
        assert!(lead_ratio < GAINED_LITTLE, "the lead gained {lead_ratio:.2} of its depth");
        assert!(!graph.edges[lead].alive, "the moved lead goes");
        assert!(graph.edges[twig].alive, "the twig stays (gained {:?})", ratios[twig]);
        assert_eq!(removed.len(), 1);
    }

    /// A static structure that the shift maps onto itself in part (a wire loop as tall as
    /// the shift is long) stays old all round.
    #[test]
    fn a_static_wire_loop_stays_old_under_the_shift() {
        let mut reference = baseline_with_lead_and_wire();
        // Add a 30 x 12 px loop, static, to the baseline and the frame.
        let corners = [[60.0, 110.0], [90.0, 110.0], [90.0, 122.0], [60.0, 122.0], [60.0, 110.0]];
        let loop_lines: Vec<([f64; 2], [f64; 2])> = corners.windows(2).map(|w| (w[0], w[1])).collect();
        let mut lines = vec![([0.0, 60.0], [130.0, 60.0]), ([140.0, 0.0], [140.0, 159.0])];
        lines.extend(&loop_lines);
        let before = ridge_map(&lines);
        let level = LevelImage { image: before.clone(), levels: 0 };
        let smoothed = before.as_mat().unwrap().try_clone().unwrap();
        reference.aligned = Allowance::new(&smoothed, &level, ALIGNED_ALLOWANCE_PX).unwrap();
        reference.dense = shift::dense_structures(&level);
        let mut now_lines = vec![([0.0, 52.0], [130.0, 52.0]), ([140.0, 0.0], [140.0, 159.0])];
        now_lines.extend(&loop_lines);
        let now = LevelImage { image: ridge_map(&now_lines), levels: 0 };
        let alignment = Alignment::new(&reference, &now, [0.0, -8.0], 2, 0.1).unwrap();
        let aligned = |p: [f64; 2]| alignment.then(p, |q| reference.aligned.ridge_max.at_frame(q[0], q[1]));
        for p in [[75.0, 110.0], [75.0, 122.0], [60.0, 116.0], [90.0, 116.0]] {
            assert!(aligned(p) > 0.9, "the loop at {p:?}: {}", aligned(p));
        }
    }

    fn branch(id: u32, parent: Option<u32>, points: &[[f64; 2]], radius_px: f64) -> TreeBranch {
        let radius_px = vec![radius_px; points.len()];
        measure_branch(id, parent, crate::labels::VeinLabel::Branch, 0, 0, points, &radius_px, None)
    }

    #[test]
    fn a_takeoff_angle_is_read_outside_the_bifurcations_core() {
        // A wide vein (radius 8) running right, a side branch leaving at 60 degrees whose
        // skeleton bends onto the vein's axis within its lumen, and the vein going on.
        let parent = branch(0, None, &(0..=100).map(|x| [f64::from(x), 100.0]).collect::<Vec<_>>(), 8.0);
        let on = branch(1, Some(0), &(100..=200).map(|x| [f64::from(x), 100.0]).collect::<Vec<_>>(), 8.0);
        let (c, s) = (60f64.to_radians().cos(), 60f64.to_radians().sin());
        let side_points: Vec<[f64; 2]> = (0..=60)
            .map(|t| {
                let t = f64::from(t);
                // Along the vein for the first 6 px (the skeleton inside the lumen), then out.
                if t < 6.0 { [100.0 + t, 100.0] } else { [106.0 + (t - 6.0) * c, 100.0 - (t - 6.0) * s] }
            })
            .collect();
        let side = branch(2, Some(0), &side_points, 2.0);
        let all = [parent.clone(), on.clone(), side.clone()];
        let angle = takeoff_angle_deg(&all, &parent, &side).unwrap();
        assert!((angle - 60.0).abs() < 5.0, "{angle}");
        // The vein straight on reads straight on.
        assert!(takeoff_angle_deg(&all, &parent, &on).unwrap() < 1.0);
        // A parent that is too short to give its course (the CS at the ostium) gives way to
        // its continuation.
        let stub = branch(0, None, &(96..=100).map(|x| [f64::from(x), 100.0]).collect::<Vec<_>>(), 8.0);
        let all = [stub.clone(), on, side.clone()];
        let angle = takeoff_angle_deg(&all, &stub, &side).unwrap();
        assert!((angle - 60.0).abs() < 5.0, "{angle}");
    }
}
