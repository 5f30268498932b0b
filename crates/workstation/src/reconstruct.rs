//! `csnav reconstruct RUN1.dcm RUN2.dcm --out DIR`: the coronary-sinus tree in 3D from two
//! venogram runs. Each run is segmented (the first on its best-opacified frame, the second on
//! the frame at the same cardiac phase when both runs carry R waves, else the same frame
//! index), the second view's geometry is refined from the two trees (`--no-refine` skips it),
//! the trees are reconstructed (`venogram::reconstruct`), and DIR gets `tree3d.json`
//! (schema `csnav.tree3d/1`: branches in patient LPS mm with per-point uncertainty, radii, the
//! reprojection error per view, where each was seen, warnings) and `tree3d.obj` (the tubes).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use nalgebra::Vector3;
use serde::Serialize;
use venogram::reconstruct::refine::{Refinement, refine_second_view};
use venogram::reconstruct::{
    ReconstructParams, Tree3dReconstruction, View, phase_matched_frame, reconstruct, tubes_obj,
};
use venogram::segment::FrameChoice;

use crate::case_runs;
use crate::cli::ReconstructArgs;

/// The schema of `tree3d.json`.
pub const TREE3D_SCHEMA: &str = "csnav.tree3d/1";

/// Where a view came from.
#[derive(Debug, Serialize)]
struct Source {
    file: String,
    frame: u32,
    primary_angle_deg: Option<f64>,
    secondary_angle_deg: Option<f64>,
}

/// `tree3d.json`.
#[derive(Debug, Serialize)]
struct Document<'a> {
    schema: &'static str,
    sources: [Source; 2],
    /// How the second run's frame was chosen: `cardiac phase` (R waves) or `frame index`.
    frames_matched_by: &'static str,
    /// How the second view's geometry was corrected (absent when not refined).
    refinement: Option<&'a Refinement>,
    #[serde(flatten)]
    tree: &'a Tree3dReconstruction,
}

fn source(run: &case_runs::LoadedRun) -> Source {
    Source {
        file: run.info.source.clone(),
        frame: run.segmented_frame,
        primary_angle_deg: run.info.primary_angle_deg,
        secondary_angle_deg: run.info.secondary_angle_deg,
    }
}

/// Runs `csnav reconstruct`.
pub fn run(args: &ReconstructArgs) -> anyhow::Result<ExitCode> {
    // Each run read once: its R waves choose the frames, then it is segmented.
    let read = |path: &Path| venogram::read_xa_file(path).with_context(|| format!("reading {}", path.display()));
    let (first, second) = (read(&args.first)?, read(&args.second)?);
    let (timing_a, timing_b) = (first.acquisition.timing.clone(), second.acquisition.timing.clone());
    let frames_b = second.cine.frame_count();
    let (loaded_a, seg_a, _) = case_runs::segment_xa(1, &args.first, first, None, FrameChoice::Auto)?;
    let (frame_b, matched_by) = match phase_matched_frame(&timing_a, seg_a.frame, &timing_b, frames_b) {
        Some(k) => (k, "cardiac phase"),
        None => (seg_a.frame.min(frames_b.saturating_sub(1)), "frame index"),
    };
    let (loaded_b, seg_b, _) = case_runs::segment_xa(2, &args.second, second, None, FrameChoice::Index(frame_b))?;
    let (pa, pb) = (
        loaded_a.projection.as_ref().with_context(|| format!("{}: no usable C-arm geometry", args.first.display()))?,
        loaded_b.projection.as_ref().with_context(|| format!("{}: no usable C-arm geometry", args.second.display()))?,
    );
    let view_a = View { tree: &seg_a.tree, projection: pa };
    let mut notes = Vec::new();
    // The second view's geometry refined from the two trees, unless asked not to.
    let refined = if args.no_refine {
        None
    } else {
        match refine_second_view(view_a, View { tree: &seg_b.tree, projection: pb }) {
            Ok(r) => Some(r),
            Err(e) => {
                notes.push(format!("geometry not refined ({e}); the DICOM geometry is used"));
                None
            }
        }
    };
    let mut tree = reconstruct(
        view_a,
        View { tree: &seg_b.tree, projection: refined.as_ref().map_or(pb, |r| &r.0) },
        &ReconstructParams::default(),
    );
    if let Some((_, r)) = &refined {
        tree.warnings.push(format!(
            "geometry refined: second view rotated {:.2} deg about the isocentre and shifted {:.1} mm across the baseline \
             (epipolar RMS {:.1} -> {:.2} px)",
            r.rotation_deg,
            Vector3::from(r.shift_mm).norm(),
            r.epipolar_rms_before_px,
            r.epipolar_rms_after_px
        ));
    }
    if let Some((_, r)) = &refined {
        let d = r.unobservable_direction;
        tree.warnings.push(format!(
            "a shift of the second C-arm along the baseline (LPS direction {:.2} {:.2} {:.2}: an isocentre error or a \
             table move between the runs) cannot be seen from two views: each mm of it moves the tree {:.2} mm along \
             the first view's rays; the DICOM geometry is trusted in that direction",
            d[0], d[1], d[2], r.depth_mm_per_unobserved_mm
        ));
    }
    tree.warnings.extend(notes);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let document = Document {
        schema: TREE3D_SCHEMA,
        sources: [source(&loaded_a), source(&loaded_b)],
        frames_matched_by: matched_by,
        refinement: refined.as_ref().map(|r| &r.1),
        tree: &tree,
    };
    let json = args.out.join("tree3d.json");
    std::fs::write(&json, serde_json::to_string_pretty(&document)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let obj = args.out.join("tree3d.obj");
    std::fs::write(&obj, tubes_obj(&tree, 12)).with_context(|| format!("writing {}", obj.display()))?;
    let both = tree.branches.iter().filter(|b| b.seen_in == venogram::reconstruct::SeenIn::Both).count();
    println!(
        "{} branches ({both} in both views), views {:.0} deg apart, frames {} and {} ({matched_by}){}",
        tree.branches.len(),
        tree.view_separation_deg,
        loaded_a.segmented_frame,
        loaded_b.segmented_frame,
        if tree.low_confidence { "; LOW CONFIDENCE" } else { "" }
    );
    for w in &tree.warnings {
        eprintln!("warning: {w}");
    }
    println!("wrote {} and {}", json.display(), obj.display());
    Ok(ExitCode::SUCCESS)
}
