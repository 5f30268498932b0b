//! The frame-time benchmark's instruments (`csnav bench-frames`). Once the runs are shown and
//! the renderer has compiled its pipelines, frames are timed for a while: the time between
//! frames (with pipelined rendering, the slower of the app's update and the render) and the
//! latency from a tip sample leaving the source to the render world finishing the frame that
//! shows it (command buffers submitted; the GPU's own completion and a display's scan-out
//! come on top). Then the table is printed, written as JSON, and the app exits.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bevy::app::AppExit;
use bevy::prelude::*;
use bevy::render::renderer::RenderAdapterInfo;
use bevy::render::{Extract, ExtractSchedule, Render, RenderApp, RenderSystems};
use serde::Serialize;

use super::AppOptions;
use super::capture::PipelinesPending;
use super::model::{CaseState, TipState};

/// Frames rendered after the pipelines are ready before timing starts.
const WARM_UP_FRAMES: u32 = 60;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The source's clock: tip samples carry their send time in ms since it.
    pub epoch: Instant,
    /// How long to time frames, s.
    pub seconds: f64,
    /// Runs expected before timing starts.
    pub runs: usize,
    /// Where the JSON report goes.
    pub report: PathBuf,
    /// The load, in words, for the report.
    pub load: String,
}

/// The newest tip sample's send time in the frame being built (main world), ms since the epoch.
#[derive(Debug, Default, Clone, Copy, Resource)]
struct NewestSample(Option<f64>);

/// The same, extracted into the render world with the frame.
#[derive(Debug, Default, Clone, Copy, Resource)]
struct FrameSample(Option<f64>);

/// Latencies measured in the render world, ms.
#[derive(Debug, Default, Clone, Resource)]
struct Latencies {
    epoch: Option<Instant>,
    measuring: Arc<std::sync::atomic::AtomicBool>,
    ms: Arc<Mutex<Vec<f64>>>,
    last_shown: Option<f64>,
}

/// Where the benchmark stands (main world).
#[derive(Resource)]
struct BenchState {
    options: BenchOptions,
    settled: u32,
    started: Option<Instant>,
    last_frame: Option<Instant>,
    frame_ms: Vec<f64>,
    samples_at_start: u64,
    last_samples: u64,
    latencies: Latencies,
}

/// The benchmark plugin.
pub struct BenchPlugin(pub BenchOptions);

impl Plugin for BenchPlugin {
    fn build(&self, app: &mut App) {
        let latencies = Latencies { epoch: Some(self.0.epoch), ..Latencies::default() };
        app.insert_resource(BenchState {
            options: self.0.clone(),
            settled: 0,
            started: None,
            last_frame: None,
            frame_ms: Vec::new(),
            samples_at_start: 0,
            last_samples: 0,
            latencies: latencies.clone(),
        })
        .init_resource::<NewestSample>()
        .add_systems(Last, (note_newest_sample, time_frame).chain());
        if let Some(render) = app.get_sub_app_mut(RenderApp) {
            render
                .insert_resource(latencies)
                .init_resource::<FrameSample>()
                .add_systems(ExtractSchedule, extract_sample)
                .add_systems(Render, measure_latency.in_set(RenderSystems::Cleanup));
        }
    }
}

/// The newest sample that arrived this frame (none when no sample came).
fn note_newest_sample(tips: Res<TipState>, mut state: ResMut<BenchState>, mut newest: ResMut<NewestSample>) {
    newest.0 = (tips.samples != state.last_samples)
        .then(|| tips.tools.values().map(|t| t.last.t_ms).fold(f64::NEG_INFINITY, f64::max))
        .filter(|t| t.is_finite());
    state.last_samples = tips.samples;
}

fn extract_sample(newest: Extract<Res<NewestSample>>, mut frame: ResMut<FrameSample>) {
    frame.0 = newest.0;
}

/// Runs after the frame's command buffers are submitted.
fn measure_latency(frame: Res<FrameSample>, mut latencies: ResMut<Latencies>) {
    let (Some(sent_ms), Some(epoch)) = (frame.0, latencies.epoch) else { return };
    if latencies.last_shown == Some(sent_ms) || !latencies.measuring.load(Ordering::Relaxed) {
        return;
    }
    latencies.last_shown = Some(sent_ms);
    let now_ms = epoch.elapsed().as_secs_f64() * 1e3;
    if let Ok(mut ms) = latencies.ms.lock() {
        ms.push(now_ms - sent_ms);
    }
}

/// Distribution of a sample, ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Distribution {
    /// How many.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// The distribution of `values` (nearest-rank percentiles); `None` when empty.
    #[must_use]
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Self { count: v.len(), p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: v[v.len() - 1] })
    }
}

/// The benchmark's report.
#[derive(Debug, Serialize)]
struct Report {
    adapter: String,
    backend: String,
    size_px: [u32; 2],
    load: String,
    seconds: f64,
    frames: usize,
    fps: f64,
    frame_ms: Option<Distribution>,
    tip_samples: u64,
    latency_ms: Option<Distribution>,
}

#[allow(clippy::too_many_arguments, reason = "a Bevy system's parameters")]
fn time_frame(
    mut state: ResMut<BenchState>,
    pending: Res<PipelinesPending>,
    case: Res<CaseState>,
    tips: Res<TipState>,
    options: Res<AppOptions>,
    adapter: Option<Res<RenderAdapterInfo>>,
    mut exit: MessageWriter<AppExit>,
) {
    let now = Instant::now();
    let Some(started) = state.started else {
        let ready = case.runs.len() >= state.options.runs && pending.0.load(Ordering::Relaxed) == 0;
        state.settled = if ready { state.settled + 1 } else { 0 };
        if state.settled >= WARM_UP_FRAMES {
            state.started = Some(now);
            state.last_frame = Some(now);
            state.samples_at_start = tips.samples;
            state.latencies.measuring.store(true, Ordering::Relaxed);
        }
        return;
    };
    if let Some(last) = state.last_frame.replace(now) {
        state.frame_ms.push((now - last).as_secs_f64() * 1e3);
    }
    let elapsed_s = (now - started).as_secs_f64();
    if elapsed_s < state.options.seconds {
        return;
    }
    state.latencies.measuring.store(false, Ordering::Relaxed);
    let latency = state.latencies.ms.lock().map(|v| v.clone()).unwrap_or_default();
    let (adapter_name, backend) = adapter
        .map_or_else(|| ("unknown".to_owned(), "unknown".to_owned()), |a| (a.name.clone(), format!("{:?}", a.backend)));
    let report = Report {
        adapter: adapter_name,
        backend,
        size_px: [options.size_px.0, options.size_px.1],
        load: state.options.load.clone(),
        seconds: elapsed_s,
        frames: state.frame_ms.len(),
        fps: state.frame_ms.len() as f64 / elapsed_s,
        frame_ms: Distribution::of(&state.frame_ms),
        tip_samples: tips.samples - state.samples_at_start,
        latency_ms: Distribution::of(&latency),
    };
    print_report(&report);
    let written = serde_json::to_string_pretty(&report)
        .map_err(anyhow::Error::from)
        .and_then(|json| std::fs::write(&state.options.report, json).map_err(anyhow::Error::from));
    match written {
        Ok(()) => {
            println!("report written to {}", state.options.report.display());
            exit.write(AppExit::Success);
        }
        Err(e) => {
            eprintln!("error: writing {}: {e:#}", state.options.report.display());
            exit.write(AppExit::error());
        }
    }
}

fn print_report(r: &Report) {
    println!("csnav frame-time benchmark: {} ({}), {}x{}, offscreen", r.adapter, r.backend, r.size_px[0], r.size_px[1]);
    println!("load: {}", r.load);
    println!("{:<34} {:>8} {:>8} {:>8} {:>8} {:>8}", "", "count", "p50", "p95", "p99", "max");
    let row = |name: &str, d: &Option<Distribution>| match d {
        Some(d) => {
            println!("{name:<34} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}", d.count, d.p50, d.p95, d.p99, d.max);
        }
        None => println!("{name:<34} {:>8}", 0),
    };
    row("frame time, ms", &r.frame_ms);
    row("tip sample to frame rendered, ms", &r.latency_ms);
    println!("{:.1} frames/s over {:.1} s; {} tip samples shown", r.fps, r.seconds, r.tip_samples);
}

#[cfg(test)]
mod tests {
    use super::Distribution;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Distribution::of(&values).unwrap();
        assert_eq!((d.count, d.p50, d.p95, d.p99, d.max), (100, 50.0, 95.0, 99.0, 100.0));
        let one = Distribution::of(&[7.0, f64::NAN]).unwrap();
        assert_eq!((one.count, one.p50, one.p99), (1, 7.0, 7.0));
        assert!(Distribution::of(&[]).is_none());
    }
}
