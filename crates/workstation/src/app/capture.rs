//! Screenshots (`--headless`, or `--screenshot` in a window): offscreen, every camera draws
//! into one image; in a window, the window is captured. Once the source has finished and the
//! renderer has no pipeline left to compile (software Vulkan compiles them slowly: a fixed
//! early frame would be black), the screen is captured, checked not to be blank, and written
//! as PNG screenshots (whole screen and each view) with a `summary.json` saying where each
//! view and each tip landed on screen. Then the app exits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bevy::app::AppExit;
use bevy::asset::RenderAssetUsages;
use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::render_resource::{PipelineCache, TextureFormat, TextureUsages};
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::render::{Render, RenderApp, RenderSystems};
use serde::Serialize;

use super::AppOptions;
use super::layout::{AppTarget, ImageFit, Layout, ScreenRect};
use super::model::{CaseState, DeviceState, SiteTable, Status, TipState};

/// Pipelines still compiling in the render world, shared with the main world.
#[derive(Debug, Clone, Default, Resource)]
pub struct PipelinesPending(pub Arc<AtomicUsize>);

/// Frames in a row with nothing compiling before the capture.
const SETTLED_FRAMES: u32 = 20;
/// Captures tried before giving up on a blank image.
const MAX_ATTEMPTS: u32 = 30;

/// Where the capture stands.
#[derive(Debug, Default, Resource)]
struct CaptureState {
    settled_frames: u32,
    attempts: u32,
    in_flight: bool,
    captured: Arc<Mutex<Option<Image>>>,
    /// The offscreen image (none when the window is captured).
    image: Option<Handle<Image>>,
    out: PathBuf,
    frames: u64,
}

/// The offscreen render target: one image every camera draws into (no window needed).
#[derive(Debug, Clone, Resource)]
pub struct OffscreenImage(pub Handle<Image>);

/// Renders into an offscreen image instead of a window.
pub struct OffscreenPlugin;

impl Plugin for OffscreenPlugin {
    fn build(&self, app: &mut App) {
        let (w, h) = app.world().resource::<AppOptions>().size_px;
        let mut image = Image::new_target_texture(w, h, TextureFormat::Rgba8UnormSrgb, None);
        image.texture_descriptor.usage |= TextureUsages::COPY_SRC;
        image.asset_usage = RenderAssetUsages::RENDER_WORLD;
        let handle = app.world_mut().resource_mut::<Assets<Image>>().add(image);
        app.insert_resource(AppTarget(RenderTarget::Image(handle.clone().into())))
            .insert_resource(OffscreenImage(handle));
    }
}

/// Counts the pipelines still compiling (render world) into [`PipelinesPending`] (main world).
pub struct PipelinesPlugin;

impl Plugin for PipelinesPlugin {
    fn build(&self, app: &mut App) {
        let pending = PipelinesPending::default();
        app.insert_resource(pending.clone());
        if let Some(render) = app.get_sub_app_mut(RenderApp) {
            render.insert_resource(pending).add_systems(Render, count_pending.in_set(RenderSystems::Cleanup));
        }
    }
}

/// The screenshot plugin (after [`PipelinesPlugin`], and [`OffscreenPlugin`] when offscreen).
pub struct CapturePlugin;

impl Plugin for CapturePlugin {
    fn build(&self, app: &mut App) {
        let options = app.world().resource::<AppOptions>().clone();
        let image = app.world().get_resource::<OffscreenImage>().map(|i| i.0.clone());
        app.insert_resource(CaptureState {
            image,
            out: options.screenshots.clone().unwrap_or_else(|| PathBuf::from("demo")),
            ..default()
        })
        .add_systems(Last, capture);
    }
}

fn count_pending(cache: Res<PipelineCache>, pending: Res<PipelinesPending>) {
    pending.0.store(cache.waiting_pipelines().count(), Ordering::Relaxed);
}

/// Whether an image is blank (one colour almost everywhere: nothing was drawn).
fn blank(rgba: &[u8]) -> bool {
    let Some(first) = rgba.get(..3) else { return true };
    let differing = rgba.chunks_exact(4).filter(|p| p[..3].iter().zip(first).any(|(a, b)| a.abs_diff(*b) > 8)).count();
    differing * 100 < rgba.len() / 4
}

/// What the summary reports, read from the model.
#[derive(bevy::ecs::system::SystemParam)]
struct Shown<'w> {
    status: Res<'w, Status>,
    case: Res<'w, CaseState>,
    tips: Res<'w, TipState>,
    sites: Res<'w, SiteTable>,
    device: Res<'w, DeviceState>,
    layout: Res<'w, Layout>,
}

fn capture(
    mut commands: Commands,
    mut state: ResMut<CaptureState>,
    pending: Res<PipelinesPending>,
    shown: Shown,
    mut exit: MessageWriter<AppExit>,
) {
    let (status, case) = (&shown.status, &shown.case);
    state.frames += 1;
    if let Some(image) = state.captured.lock().ok().and_then(|mut c| c.take()) {
        state.in_flight = false;
        let size = image.size();
        let Some(data) = image.data.as_deref() else { return };
        // A window's swapchain is often BGRA; the screenshots are RGBA.
        let rgba: std::borrow::Cow<[u8]> = match image.texture_descriptor.format {
            TextureFormat::Bgra8Unorm | TextureFormat::Bgra8UnormSrgb => {
                std::borrow::Cow::Owned(data.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect())
            }
            _ => std::borrow::Cow::Borrowed(data),
        };
        let rgba = rgba.as_ref();
        if blank(rgba) && state.attempts < MAX_ATTEMPTS {
            info!("capture {} is blank (pipelines still compiling?); trying again", state.attempts);
            state.settled_frames = 0;
            return;
        }
        match write_outputs(&state.out, rgba, size, &shown, state.frames) {
            Ok(()) => {
                eprintln!("screenshots written to {}", state.out.display());
                exit.write(AppExit::Success);
            }
            Err(e) => {
                eprintln!("error: writing the screenshots: {e:#}");
                exit.write(AppExit::error());
            }
        }
        return;
    }
    if let Some(why) = &status.failed {
        eprintln!("error: the procedure failed: {why}");
        exit.write(AppExit::error());
        return;
    }
    let ready = status.finished && !case.runs.is_empty() && pending.0.load(Ordering::Relaxed) == 0;
    state.settled_frames = if ready { state.settled_frames + 1 } else { 0 };
    if state.in_flight || state.settled_frames < SETTLED_FRAMES {
        return;
    }
    state.attempts += 1;
    state.in_flight = true;
    let slot = state.captured.clone();
    let screenshot = match &state.image {
        Some(image) => Screenshot::image(image.clone()),
        None => Screenshot::primary_window(),
    };
    commands.spawn(screenshot).observe(move |captured: On<ScreenshotCaptured>| {
        if let Ok(mut s) = slot.lock() {
            *s = Some(captured.image.clone());
        }
    });
}

/// A view's placement and its last tip, for the summary.
#[derive(Debug, Serialize)]
struct ViewSummary {
    run: u32,
    source: String,
    screenshot: String,
    fit: ImageFit,
    shown_frame: u32,
    tips: Vec<TipOnScreen>,
}

#[derive(Debug, Serialize)]
struct TipOnScreen {
    tool: String,
    stale: bool,
    /// Where the navigation pipeline projected the tip, image px.
    projection_px: Option<[f64; 2]>,
    /// That position on the screenshot, px.
    screen_px: Option<[f32; 2]>,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    size_px: [u32; 2],
    frames_rendered: u64,
    layout: &'a Layout,
    views: Vec<ViewSummary>,
    screenshots: Vec<String>,
    ranking: &'a [device_link::ranking::RankedSite],
    /// The header's link lines, as shown.
    links: [String; 2],
    /// Tip samples the app received.
    tip_samples: u64,
    /// EGM samples in the strip.
    egm_samples: usize,
    /// Safety alarms in the device panel.
    safety_alarms: &'a [String],
    /// The step line.
    step: &'a str,
}

fn crop_png(path: &Path, rgba: &[u8], width: u32, rect: ScreenRect) -> anyhow::Result<()> {
    let r = rect.snapped();
    let height = (rgba.len() / 4) as u32 / width.max(1);
    let (x0, y0) = (r.x as u32, r.y as u32);
    let (w, h) = ((r.w as u32).min(width.saturating_sub(x0)), (r.h as u32).min(height.saturating_sub(y0)));
    anyhow::ensure!(w > 0 && h > 0, "the region {r:?} is outside the {width}x{height} screen");
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for y in y0..y0 + h {
        let row = (y * width + x0) as usize * 4;
        for px in rgba[row..row + w as usize * 4].chunks_exact(4) {
            rgb.extend_from_slice(&px[..3]);
        }
    }
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(())
}

fn write_outputs(out: &Path, rgba: &[u8], size: UVec2, shown: &Shown, frames: u64) -> anyhow::Result<()> {
    let (layout, case, tips) = (&*shown.layout, &*shown.case, &*shown.tips);
    std::fs::create_dir_all(out)?;
    let full = ScreenRect { x: 0.0, y: 0.0, w: size.x as f32, h: size.y as f32 };
    let mut shots = vec![("screen.png".to_owned(), full), ("view3d.png".to_owned(), layout.view3d)];
    shots.push(("sites.png".to_owned(), layout.sites));
    shots.push(("device.png".to_owned(), layout.device));
    let mut views = Vec::new();
    for (k, state) in case.runs.iter().enumerate() {
        if !super::layout::is_shown(k, case.runs.len()) {
            continue;
        }
        let info = &state.run.info;
        let fit = ImageFit::new(layout.slot(k), info.columns, info.rows);
        let stem = Path::new(&info.source)
            .file_stem()
            .map_or_else(|| format!("run{}", info.run), |s| s.to_string_lossy().into_owned());
        let name = format!("view-{stem}.png");
        shots.push((name.clone(), fit.viewport));
        let tips = tips
            .tools
            .iter()
            .map(|(tool, track)| {
                let projection_px =
                    track.last.projections_px.iter().find(|(run, _)| *run == info.run).map(|(_, xy)| *xy);
                TipOnScreen {
                    tool: tool.clone(),
                    stale: track.stale,
                    projection_px,
                    screen_px: projection_px.map(|xy| fit.screen_from_image(xy)),
                }
            })
            .collect();
        views.push(ViewSummary {
            run: info.run,
            source: info.source.clone(),
            screenshot: name,
            fit,
            shown_frame: state.run.segmented_frame,
            tips,
        });
    }
    for (name, rect) in &shots {
        crop_png(&out.join(name), rgba, size.x, *rect)?;
    }
    let summary = Summary {
        size_px: [size.x, size.y],
        frames_rendered: frames,
        layout,
        views,
        screenshots: shots.into_iter().map(|(n, _)| n).collect(),
        ranking: &shown.sites.ranking,
        links: [
            super::panels::link_line("Tracker", &shown.status.tracker).0,
            super::panels::link_line("Device", &shown.status.device).0,
        ],
        tip_samples: tips.samples,
        egm_samples: shown.device.egm_mv.len(),
        safety_alarms: &shown.device.safety,
        step: &shown.status.step,
    };
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::blank;

    #[test]
    fn a_uniform_image_is_blank_and_a_drawn_one_is_not() {
        let mut rgba = vec![0u8; 100 * 100 * 4];
        assert!(blank(&rgba));
        for px in rgba.chunks_exact_mut(4).take(500) {
            px[0] = 200;
        }
        assert!(!blank(&rgba));
    }
}
