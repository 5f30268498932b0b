//! `csnav segment`: the labelled CS branch tree of a venogram run, written as JSON and PNGs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use venogram::ResolvedGeometry;
use venogram::segment::overlay::{draw_overlay, to_gray8};
use venogram::segment::{
    FrameChoice, SegmentParams, Segmentation, TreeDocument, TreeSource, VesselnessMeasure, segment_run,
};

use crate::cli::{MeasureArg, SegmentArgs, SegmentationArgs};

/// Reads the run at `file` and the segmentation settings for it: the geometry (file, entries,
/// defaults), the ostium seed when given, the vesselness measure, the working resolution.
pub(crate) fn prepare(file: &Path, how: &SegmentationArgs) -> anyhow::Result<(venogram::XaRun, SegmentParams)> {
    let (geometry_args, seed_xy) = (&how.geometry, how.seed_xy.as_deref());
    let run = venogram::read_xa_file(file).with_context(|| format!("cannot read {}", file.display()))?;
    let cine = &run.cine;
    let (overrides, defaults) = crate::info::overrides(geometry_args)?;
    let geometry =
        ResolvedGeometry::resolve(&run.acquisition.positioner, cine.rows(), cine.columns(), &overrides, &defaults);
    let mut params = SegmentParams::for_geometry(&geometry, seed_xy.map(|s| [s[0], s[1]]));
    params.measure = match how.measure {
        MeasureArg::Jerman => VesselnessMeasure::Jerman { tau: 0.75 },
        MeasureArg::Frangi => VesselnessMeasure::Frangi { beta: 0.5 },
    };
    params.full_resolution = how.full_resolution;
    params.average_plateau = how.average_plateau;
    Ok((run, params))
}

/// Segments the run and writes tree.json, mask.png, vesselness.png and overlay.png.
pub fn run(args: &SegmentArgs) -> anyhow::Result<ExitCode> {
    let (run, params) = prepare(&args.file, &args.segmentation)?;
    let cine = &run.cine;
    let Some(choice) = args.frame.single() else {
        anyhow::ensure!(
            !params.average_plateau,
            "--average-plateau applies to one frame (auto or N), not to --frame all, which segments each frame alone to follow the cine"
        );
        return run_cine(args, &run, &params);
    };
    let result =
        segment_run(cine, choice, &params).with_context(|| format!("cannot segment {}", args.file.display()))?;
    write_frame(&args.out, &args.file, &run, &result, &params)?;
    let (w, h) = (cine.columns(), cine.rows());
    write_png(
        &args.out.join("vesselness.png"),
        &to_gray8(&result.native_enhanced()?.vesselness),
        w,
        h,
        png::ColorType::Grayscale,
    )?;

    println!("csnav segment: research software, not for clinical use");
    println!("file      {}", args.file.display());
    match &result.selection {
        Some(s) if matches!(choice, FrameChoice::Auto) => println!(
            "frame     {} (best-opacified of {}; baseline frame {}, contrast filling {})",
            result.frame,
            s.energy.len(),
            s.baseline_frame,
            if s.filling { "seen" } else { "NOT seen" }
        ),
        _ => println!("frame     {} (chosen by hand)", result.frame),
    }
    if params.average_plateau {
        let with: Vec<String> = result
            .averaged_with
            .iter()
            .map(|p| format!("{} (shift {:+},{:+} px)", p.frame, p.shift_px[0], p.shift_px[1]))
            .collect();
        if with.is_empty() {
            println!("averaged  no neighbour on the contrast plateau lined up: the frame alone");
        } else {
            println!("averaged  for the twig detector with frames {}", with.join(", "));
        }
    }
    match params.pixel_spacing_mm {
        Some(s) => println!("spacing   {s:.4} mm/px at the isocentre"),
        None => println!("spacing   unknown (no imager pixel spacing): lengths in pixels only"),
    }
    if let Some(reason) = &result.tree.empty_reason {
        println!("tree      EMPTY: {reason}");
    } else {
        println!(
            "tree      {} branches, {} nodes, {} structures removed as not vein",
            result.tree.branches.len(),
            result.tree.nodes.len(),
            result.removed.len()
        );
        println!(
            "{:>4} {:>6} {:>7} {:>9} {:>9} {:>9} {:>7} {:>8}",
            "id", "parent", "label", "length", "mean d", "min d", "tort.", "takeoff"
        );
        for b in &result.tree.branches {
            let mm = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}mm"));
            println!(
                "{:>4} {:>6} {:>7} {:>9} {:>9} {:>9} {:>7.2} {:>8}",
                b.id,
                b.parent.map_or("-".to_owned(), |p| p.to_string()),
                b.label.abbreviation(),
                b.length_mm.map_or(format!("{:.0}px", b.length_px), |v| format!("{v:.1}mm")),
                mm(b.mean_diameter_mm),
                mm(b.min_diameter_mm),
                b.tortuosity,
                b.takeoff_angle_deg.map_or("-".to_owned(), |a| format!("{a:.0}deg")),
            );
        }
    }
    let t = &result.timings;
    println!(
        "time      {:.1} ms (background {:.1}, vesselness {:.1}, threshold {:.1}, graph {:.1}, labels {:.1})",
        t.total_ms, t.background_ms, t.vesselness_ms, t.threshold_ms, t.graph_ms, t.label_ms
    );
    println!("wrote     {}/{{tree.json,mask.png,vesselness.png,overlay.png}}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// One frame's line in `cine.json`.
#[derive(serde::Serialize)]
struct CineFrame {
    frame: u32,
    branches: usize,
    empty_reason: Option<String>,
    time_ms: f64,
    tree: String,
}

/// `cine.json`: the per-frame mode's index.
#[derive(serde::Serialize)]
struct CineDocument<'a> {
    schema: &'static str,
    file: String,
    sop_instance_uid: Option<&'a str>,
    best_frame: u32,
    baseline_frame: u32,
    frames: Vec<CineFrame>,
}

/// Per-frame mode: every frame's tree, mask and overlay under DIR/frames/NNNN/, and
/// DIR/cine.json listing them.
fn run_cine(args: &SegmentArgs, run: &venogram::XaRun, params: &SegmentParams) -> anyhow::Result<ExitCode> {
    let cine = &run.cine;
    let started = std::time::Instant::now();
    let results = venogram::segment::segment_cine(cine, params)
        .with_context(|| format!("cannot segment {}", args.file.display()))?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut frames = Vec::new();
    for result in &results {
        let rel = format!("frames/{:04}", result.frame);
        write_frame(&args.out.join(&rel), &args.file, run, result, params)?;
        frames.push(CineFrame {
            frame: result.frame,
            branches: result.tree.branches.len(),
            empty_reason: result.tree.empty_reason.clone(),
            time_ms: result.timings.total_ms,
            tree: format!("{rel}/tree.json"),
        });
    }
    let selection = results.iter().find_map(|r| r.selection.as_ref());
    let doc = CineDocument {
        schema: "csnav.cine/1",
        file: args.file.display().to_string(),
        sop_instance_uid: run.acquisition.identity.sop_instance_uid.as_deref(),
        best_frame: selection.map_or(0, |s| s.frame),
        baseline_frame: selection.map_or(0, |s| s.baseline_frame),
        frames,
    };
    write(&args.out.join("cine.json"), &serde_json::to_vec_pretty(&doc).context("cannot encode cine.json")?)?;
    println!("csnav segment: research software, not for clinical use");
    println!("file      {}", args.file.display());
    println!(
        "frames    {} segmented in {wall_ms:.0} ms ({:.1} ms per frame, all cores)",
        results.len(),
        wall_ms / results.len().max(1) as f64
    );
    println!("{:>5} {:>9} {:>9}  note", "frame", "branches", "time ms");
    for f in &doc.frames {
        println!(
            "{:>5} {:>9} {:>9.1}  {}",
            f.frame,
            f.branches,
            f.time_ms,
            match (&f.empty_reason, f.frame == doc.best_frame) {
                (Some(reason), _) => reason.as_str(),
                (None, true) => "best-opacified",
                (None, false) => "",
            }
        );
    }
    println!("wrote     {}/cine.json and frames/NNNN/{{tree.json,mask.png,overlay.png}}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes one frame's `tree.json`, `mask.png` and `overlay.png` (of the run read from `file`)
/// into `dir` (created).
pub(crate) fn write_frame(
    dir: &Path,
    file: &Path,
    run: &venogram::XaRun,
    result: &Segmentation,
    params: &SegmentParams,
) -> anyhow::Result<()> {
    let cine = &run.cine;
    let (w, h) = (cine.columns(), cine.rows());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let source = TreeSource {
        file: file.display().to_string(),
        sop_instance_uid: run.acquisition.identity.sop_instance_uid.clone(),
        frame: result.frame,
        rows: h,
        columns: w,
    };
    let doc = TreeDocument::new(&result.tree, &source, params.pixel_spacing_mm);
    write(&dir.join("tree.json"), &serde_json::to_vec_pretty(&doc).context("cannot encode tree.json")?)?;
    write_png(&dir.join("mask.png"), &result.mask.data, w, h, png::ColorType::Grayscale)?;
    let frame = cine.frame(result.frame).context("segmented frame vanished")?;
    let overlay = draw_overlay(&frame, &result.tree, &result.removed)?;
    write_png(&dir.join("overlay.png"), &overlay.data, w, h, png::ColorType::Rgb)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn write_png(path: &Path, pixels: &[u8], w: u32, h: u32, colour: png::ColorType) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_image_data(pixels).with_context(|| format!("cannot write {}", path.display()))?;
    writer.finish().with_context(|| format!("cannot write {}", path.display()))
}
