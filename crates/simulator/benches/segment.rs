//! Segmentation benchmark: each stage and the whole pipeline on the best-opacified frame of
//! synthetic venograms at 512x512 and 1024x1024 (binned to the 512 working matrix, and at its
//! own matrix), release build, all cores. Target: the whole
//! pipeline under 40 ms on a 1024 frame, so a 15-30 frame/s cine can be followed live. A
//! second table gives the cost of averaging the best frame's contrast plateau (off by
//! default, and never in the per-frame mode).
//! Run with `cargo bench -p simulator --bench segment` (it lives with the simulator, which
//! makes its frames, so that its release build leaves out the app's bevy and rerun).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: a failure is a failed run")]

use std::time::Instant;

use simulator::SyntheticPatient;
use simulator::render::{RenderSettings, render};
use venogram::segment::enhance::{Scales, VesselnessMeasure, suppress_background, vesselness};
use venogram::segment::resolution::Binning;
use venogram::segment::{FrameChoice, SegmentParams, StageTimings, segment_frame, segment_run, select_frame};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // As the csnav binary does: keep freed frame buffers (see venogram::segment::memory).
    let retained = venogram::segment::memory::retain_freed_buffers();
    let repeats = 15;
    println!("csnav segmentation benchmark ({} threads), median of {repeats} runs, ms", rayon::current_num_threads());
    println!(
        "{:>10} {:>7} {:>9} {:>11} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>12}",
        "size",
        "select",
        "resample",
        "background",
        "vessel J",
        "vessel F",
        "thresh",
        "graph",
        "labels",
        "pipeline",
        "per cine fr."
    );
    for (size, full_resolution) in [(512u32, false), (1024, false), (1024, true)] {
        let patient = SyntheticPatient::generate(7);
        let settings = RenderSettings::typical("LAO30".parse().unwrap(), size, 12, 14);
        let run = render(&patient, &settings).unwrap();
        let max = run.cine.format.max_stored_value();
        let params =
            SegmentParams { projection: Some(run.projection.clone()), full_resolution, ..SegmentParams::default() };
        let t = Instant::now();
        let selection = select_frame(&run.cine).unwrap();
        let select_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(run.cine.frame_count());
        let frame = run.cine.frame(selection.frame).unwrap();
        let baseline = run.cine.frame(selection.baseline_frame).unwrap();
        let mut stages: Vec<StageTimings> = Vec::new();
        let mut frangi = Vec::new();
        for _ in 0..repeats {
            stages.push(segment_frame(&frame, max, &params, Some(&baseline)).unwrap().timings);
            let binning = Binning::for_frame(size as usize, size as usize, full_resolution);
            let a = binning.attenuation(&frame, max);
            let scales = Scales::for_matrix(a.width);
            let tophat = suppress_background(&a, *scales.radii_px.last().unwrap()).unwrap();
            let t = Instant::now();
            vesselness(tophat, &scales, VesselnessMeasure::Frangi { beta: 0.5 }).unwrap();
            frangi.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let m = |f: fn(&StageTimings) -> f64| median(stages.iter().map(f).collect());
        println!(
            "{:>10} {:>7.1} {:>9.1} {:>11.1} {:>10.1} {:>10.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>12}",
            if full_resolution { format!("{size} full") } else { format!("{size}") },
            select_ms,
            m(|t| t.resample_ms),
            m(|t| t.background_ms),
            m(|t| t.vesselness_ms),
            median(frangi),
            m(|t| t.threshold_ms),
            m(|t| t.graph_ms),
            m(|t| t.label_ms),
            m(|t| t.total_ms),
            format!("{:.1}", m(|t| t.total_ms) + select_ms),
        );
    }
    println!(
        "select: contrast-curve cost per frame of the run; resample: binning a 1024 frame to the 512 working matrix and\n\
         mapping the result back (\"full\": segmented at its own matrix); pipeline: one frame, Jerman, with the baseline\n\
         frame's device check."
    );
    plateau_averaging(repeats);
    println!("allocator keeps freed frame buffers: {retained}");
}

/// The cost of `SegmentParams::average_plateau`: the whole run's best frame (contrast curve,
/// baseline, frame) segmented alone and averaged with its plateau, and the difference.
fn plateau_averaging(repeats: usize) {
    println!("best frame of a run (segment_run: curve, baseline and frame), median of {repeats} runs, ms");
    println!("{:>10} {:>8} {:>10} {:>12} {:>11}", "size", "alone", "averaged", "neighbours", "averaging");
    for size in [512u32, 1024] {
        let patient = SyntheticPatient::generate(7);
        let settings = RenderSettings::typical("LAO30".parse().unwrap(), size, 12, 14);
        let run = render(&patient, &settings).unwrap();
        let time = |average_plateau: bool| {
            let params =
                SegmentParams { projection: Some(run.projection.clone()), average_plateau, ..SegmentParams::default() };
            let mut neighbours = 0;
            let ms = median(
                (0..repeats)
                    .map(|_| {
                        let t = Instant::now();
                        neighbours = segment_run(&run.cine, FrameChoice::Auto, &params).unwrap().averaged_with.len();
                        t.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect(),
            );
            (ms, neighbours)
        };
        let ((alone, _), (averaged, neighbours)) = (time(false), time(true));
        println!("{size:>10} {alone:>8.1} {averaged:>10.1} {neighbours:>12} {:>11.1}", averaged - alone);
    }
}
