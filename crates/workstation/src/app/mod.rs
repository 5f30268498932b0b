//! The csnav workstation app (bevy): the 3D tree, the venogram views with live overlays, the
//! device and navigation panels. Domain work happens off the main thread in a *source* (the
//! scripted procedure, the simulator, a replayed recording, or the live links) that sends
//! [`AppMsg`]s through a channel; the app drains it once per frame and never waits on it.
//!
//! One plugin per concern: [`model::ModelPlugin`] (state, staleness, target selection; no
//! rendering, testable under `MinimalPlugins`), [`view3d::View3dPlugin`],
//! [`view2d::View2dPlugin`], [`panels::PanelsPlugin`], [`input::InputPlugin`] and, offscreen,
//! [`capture::CapturePlugin`].

#![allow(clippy::needless_pass_by_value, reason = "Bevy systems take their parameters (Res, Query) by value")]
#![allow(clippy::type_complexity, reason = "Bevy queries spell out their components and filters")]

pub mod bench;
pub mod capture;
pub mod colors;
pub mod input;
pub mod layout;
pub mod model;
pub mod panels;
pub mod review;
pub mod view2d;
pub mod view3d;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::app::{AppExit, ScheduleRunnerPlugin};
use bevy::prelude::*;
use bevy::window::{ExitCondition, WindowResolution};
use recording::record::Record;
use venogram::geometry::CArmProjection;

use crate::case_runs::LoadedRun;

/// What the app is for; shown in the header and deciding which panels lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Resource)]
pub enum Mode {
    /// Simulator mode (synthetic patient, simulated tracker and device).
    Simulator,
    /// The scripted demonstration procedure.
    Demo,
    /// Intraoperative display of the live tracker and device.
    Live,
    /// A recorded procedure played back.
    Replay,
    /// Pre-procedure review: segment, edit, choose targets, save a plan.
    Review,
    /// Simulator training: the trainee steers the wire and the lead (scored).
    Training,
}

impl Mode {
    /// The mode's name in the header.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Simulator => "SIMULATOR",
            Self::Demo => "DEMO (simulated)",
            Self::Live => "LIVE",
            Self::Replay => "REPLAY (not live)",
            Self::Review => "REVIEW",
            Self::Training => "TRAINING (synthetic patient)",
        }
    }
}

/// A link the app depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The OpenIGTLink tracker.
    Tracker,
    /// The pacing analyzer / device model.
    Device,
}

/// The state of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not used in this mode.
    NotUsed,
    /// Connecting.
    Connecting,
    /// Connected, data flowing.
    Connected,
    /// Was connected and is not: an alarm until it is back (with why, when known).
    Lost(String),
    /// Played back from a recording (never live).
    Recorded,
}

/// The triangle mesh of the LV epicardium, patient LPS mm.
#[derive(Debug, Clone, PartialEq)]
pub struct LvMesh {
    /// Vertex positions.
    pub positions_mm: Vec<[f32; 3]>,
    /// Triangles (indices into `positions_mm`).
    pub triangles: Vec<[u32; 3]>,
}

/// Everything a source tells the app.
#[derive(Debug, Clone)]
pub enum AppMsg {
    /// A recording record (3D tree, registration, target, tip, device event, EGM, result, note).
    Record(Record),
    /// A venogram run, decoded and segmented.
    Run(Arc<LoadedRun>, Option<CArmProjection>),
    /// A run's 2D tree replaced (review edits), by its run number.
    Tree2d(recording::record::Segmentation2d),
    /// The candidate targets replaced (review: targets added and removed).
    Targets(Vec<recording::record::TargetRecord>),
    /// The LV surface.
    Lv(Arc<LvMesh>),
    /// A link changed state.
    Link(LinkKind, LinkState),
    /// Nothing: a source that has nothing to say checks with it that the app is still there.
    Heartbeat,
    /// The procedure's current step, in words (also kept in the notes).
    Step(String),
    /// A status line that replaces the step without joining the notes (training instruments).
    Status(String),
    /// The source selects a target (the scripted procedure moving to its next site).
    Select(String),
    /// The source has finished (scripted procedures, replays).
    Finished,
    /// The source failed and stopped, with the reason.
    Failed(String),
}

/// What the user asks of the source.
#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
    /// Guide to this target (by name).
    SelectTarget(String),
    /// Save the plan (review mode).
    SavePlan,
    /// An edit of the plan (review mode).
    Review(crate::review::ReviewAction),
    /// A trainee's action (training mode).
    Train(training::session::Action),
    /// Exchange the lead for the next one on the scenario's shelf (training mode).
    NextLead,
}

/// The channel from the source, drained once per frame.
#[derive(Resource)]
pub struct Feed(pub Mutex<Receiver<AppMsg>>);

/// The channel back to the source (absent in tests).
#[derive(Resource, Clone)]
pub struct UiCommands(pub Sender<UiCommand>);

/// How the app was started.
#[derive(Debug, Clone, Resource)]
pub struct AppOptions {
    /// The mode.
    pub mode: Mode,
    /// The case's name (pseudonymised where it came from a recording).
    pub case_name: String,
    /// Render into an offscreen image instead of a window (needs no display).
    pub offscreen: bool,
    /// Once the source has finished and the renderer is ready, write screenshots and a
    /// summary into this folder, then exit (always given offscreen).
    pub screenshots: Option<PathBuf>,
    /// Window (or offscreen image) size, physical px.
    pub size_px: (u32, u32),
    /// Measure frame times and tip latency, print them and exit (`csnav bench-frames`).
    pub bench: Option<bench::BenchOptions>,
}

/// Runs the app until the window closes (or, offscreen, until the screenshots are written).
pub fn run(options: AppOptions, feed: Receiver<AppMsg>, commands: Sender<UiCommand>) -> AppExit {
    let mut app = App::new();
    let (w, h) = options.size_px;
    let plugins = DefaultPlugins.build().disable::<bevy::log::LogPlugin>();
    if options.offscreen {
        app.add_plugins(
            plugins
                .set(WindowPlugin {
                    primary_window: None,
                    exit_condition: ExitCondition::DontExit,
                    close_when_requested: false,
                    ..default()
                })
                .disable::<bevy::winit::WinitPlugin>(),
        )
        .add_plugins(ScheduleRunnerPlugin::run_loop(Duration::from_millis(2)));
    } else {
        app.add_plugins(plugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: format!("csnav: {} (research software, not a medical device)", options.mode.title()),
                resolution: WindowResolution::new(w, h),
                ..default()
            }),
            ..default()
        }));
    }
    app.insert_resource(ClearColor(colors::BACKGROUND))
        .insert_resource(Feed(Mutex::new(feed)))
        .insert_resource(UiCommands(commands))
        .insert_resource(options.mode)
        .insert_resource(options.clone())
        .add_plugins((
            model::ModelPlugin,
            layout::LayoutPlugin,
            view3d::View3dPlugin,
            view2d::View2dPlugin,
            panels::PanelsPlugin,
            input::InputPlugin,
            capture::PipelinesPlugin,
        ));
    app.add_systems(PostUpdate, no_msaa_in_software);
    if options.mode == Mode::Review {
        app.add_plugins(review::ReviewPlugin);
    }
    if options.offscreen {
        app.add_plugins(capture::OffscreenPlugin);
    }
    if options.screenshots.is_some() {
        app.add_plugins(capture::CapturePlugin);
    }
    if let Some(bench) = &options.bench {
        app.add_plugins(bench::BenchPlugin(bench.clone()));
    }
    app.run()
}

/// On a software renderer (no GPU: Mesa's lavapipe), every camera renders without MSAA: four
/// samples per pixel on a CPU rasteriser cost more than the whole rest of a frame.
fn no_msaa_in_software(
    mut commands: Commands,
    adapter: Option<Res<bevy::render::renderer::RenderAdapterInfo>>,
    cameras: Query<Entity, Added<Camera>>,
) {
    let Some(adapter) = adapter else { return };
    // wgpu's DeviceType is not re-exported by bevy; its Debug name is stable API text.
    if format!("{:?}", adapter.device_type) != "Cpu" {
        return;
    }
    for camera in &cameras {
        commands.entity(camera).insert(Msaa::Off);
    }
}

/// The name a case (or recording) is shown under: its folder's or file's name.
#[must_use]
pub fn shown_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Runs `source` on its own thread as the app's source (an error it returns reaches the app as
/// [`AppMsg::Failed`], which an offscreen app stops on) and the app on this thread until it
/// closes; returns how the app ended and what the source returned.
pub fn run_with_source<T: Send + 'static>(
    options: AppOptions,
    thread: &str,
    source: impl FnOnce(&Sender<AppMsg>, &Receiver<UiCommand>) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<(AppExit, T)> {
    use anyhow::Context as _;
    let (feed_tx, feed_rx) = std::sync::mpsc::channel();
    let (command_tx, command_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(thread.to_owned())
        .spawn(move || {
            let result = source(&feed_tx, &command_rx);
            if let Err(e) = &result {
                let _ = feed_tx.send(AppMsg::Failed(format!("{e:#}")));
            }
            result
        })
        .with_context(|| format!("starting the {thread} thread"))?;
    let exit = run(options, feed_rx, command_tx);
    let value = match handle.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("the {thread} thread panicked"),
    };
    Ok((exit, value))
}

/// The process's exit status for how the app ended.
#[must_use]
pub fn exit_code(exit: &AppExit) -> std::process::ExitCode {
    match exit {
        AppExit::Success => std::process::ExitCode::SUCCESS,
        AppExit::Error(_) => std::process::ExitCode::FAILURE,
    }
}

/// Whether a display is available for a window (X11).
#[must_use]
pub fn display_available() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
}
