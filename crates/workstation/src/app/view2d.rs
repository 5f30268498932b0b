//! The venogram views, one per run: the cine played at its frame rate (or held on the
//! segmented reference frame), window/level on the GPU by [`WindowLevelMaterial`]
//! (`shaders/window_level.wgsl`), the labelled tree overlay, tips projected through the
//! run's C-arm geometry (stale tips drawn as lavender rings), every candidate target (the
//! selected one larger) and the path to it along the tree; a ring marks each tree's ostium.
//!
//! Each view has its own 2D camera on its own render layer; world units are image pixels
//! with the image centred on the origin ([`ImageFit::world_from_image`]).

use std::collections::HashMap;

use bevy::asset::{RenderAssetUsages, uuid_handle};
use bevy::camera::visibility::RenderLayers;
use bevy::camera::{Projection, ScalingMode};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::render_resource::{AsBindGroup, Extent3d, TextureDimension, TextureFormat};
use bevy::shader::ShaderRef;
use bevy::sprite_render::{Material2d, Material2dPlugin};
use nalgebra::Point3;

use super::colors;
use super::layout::{AppTarget, ImageFit, Layout};
use super::model::{CaseState, ModelChanged, TipState};

/// The window/level shader, embedded from `shaders/window_level.wgsl`.
const WINDOW_LEVEL_SHADER: Handle<Shader> = uuid_handle!("5f0b8f0e-2b7e-4d0c-9a51-6c1f3a7d2e11");

/// Window/level of a 16-bit frame on the GPU.
#[derive(Asset, TypePath, AsBindGroup, Debug, Clone)]
pub struct WindowLevelMaterial {
    /// x = centre, y = width (stored units), z = 1 to invert.
    #[uniform(0)]
    pub params: Vec4,
    /// The frame's stored samples (`R16Uint`).
    #[texture(1, sample_type = "u_int")]
    pub frame: Handle<Image>,
}

impl Material2d for WindowLevelMaterial {
    fn fragment_shader() -> ShaderRef {
        ShaderRef::Handle(WINDOW_LEVEL_SHADER)
    }
}

/// Render layer of the `slot`-th venogram view (the 3D view is layer 0).
#[must_use]
pub fn view_layer(slot: usize) -> usize {
    1 + slot
}

/// Overlay line width, screen px.
const LINE_PX: f32 = 2.0;
/// Tip marker radius, screen px.
const TIP_PX: f32 = 7.0;

/// Playback of each run's cine.
#[derive(Debug, Default, Resource)]
pub struct Cines {
    /// Per run: the frame shown.
    pub frame: Vec<u32>,
    /// Per run: time into the current frame, s.
    pub into_frame_s: Vec<f64>,
    /// Per run: (window centre, width), stored units.
    pub window: Vec<(f64, f64)>,
    /// Playing (else held on each run's segmented reference frame).
    pub playing: bool,
}

/// A view's camera (by run index).
#[derive(Component)]
pub struct ViewCamera(pub usize);

/// Every entity of one run's view (by run index), despawned when a newer run takes its slot.
#[derive(Component)]
struct RunEntity(usize);

/// A view's frame quad (by run index).
#[derive(Component)]
struct FrameQuad {
    run: usize,
    image: Handle<Image>,
    material: Handle<WindowLevelMaterial>,
    shown: Option<u32>,
}

/// The static overlay of a run (tree and ostium), by run index: rebuilt when its tree changes.
#[derive(Component)]
struct TreeOverlay(usize);

/// The venogram views plugin.
pub struct View2dPlugin;

impl Plugin for View2dPlugin {
    fn build(&self, app: &mut App) {
        if let Some(mut shaders) = app.world_mut().get_resource_mut::<Assets<Shader>>() {
            let shader =
                Shader::from_wgsl(include_str!("../../../../shaders/window_level.wgsl"), "shaders/window_level.wgsl");
            if let Err(e) = shaders.insert(WINDOW_LEVEL_SHADER.id(), shader) {
                error!("the window/level shader could not be registered: {e}");
            }
        }
        let playing = app.world().get_resource::<super::AppOptions>().is_none_or(|o| o.screenshots.is_none());
        app.add_plugins(Material2dPlugin::<WindowLevelMaterial>::default())
            .insert_resource(Cines { playing, ..default() })
            .add_systems(
                Update,
                (add_views, refresh_overlays, follow_layout, play_cines, show_frames, draw_live).chain(),
            );
    }
}

/// Ribbon mesh of a polyline (image px), `width` wide, in the view's world.
fn ribbon(fit: &ImageFit, points: &[[f64; 2]], width: f32) -> Option<Mesh> {
    if points.len() < 2 {
        return None;
    }
    let world: Vec<Vec2> = points.iter().map(|p| fit.world_from_image(*p)).collect();
    let mut positions = Vec::with_capacity(world.len() * 2);
    for k in 0..world.len() {
        let a = world[k.saturating_sub(1)];
        let b = world[(k + 1).min(world.len() - 1)];
        let t = (b - a).normalize_or_zero();
        let n = Vec2::new(-t.y, t.x) * (width / 2.0);
        positions.push([world[k].x + n.x, world[k].y + n.y, 0.0]);
        positions.push([world[k].x - n.x, world[k].y - n.y, 0.0]);
    }
    let mut indices = Vec::with_capacity((world.len() - 1) * 6);
    for k in 0..world.len() as u32 - 1 {
        let (a, b, c, d) = (2 * k, 2 * k + 1, 2 * k + 2, 2 * k + 3);
        indices.extend_from_slice(&[a, b, c, c, b, d]);
    }
    let mut mesh = Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::default());
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
    mesh.insert_indices(Indices::U32(indices));
    Some(mesh)
}

fn frame_bytes(samples: &[u16], n: usize, frame: u32) -> Option<Vec<u8>> {
    let start = frame as usize * n;
    let frame = samples.get(start..start + n)?;
    Some(frame.iter().flat_map(|v| v.to_le_bytes()).collect())
}

#[allow(clippy::too_many_arguments, reason = "a Bevy system's parameters")]
fn add_views(
    mut commands: Commands,
    mut changed: MessageReader<ModelChanged>,
    case: Res<CaseState>,
    layout: Res<Layout>,
    target: Option<Res<AppTarget>>,
    mut cines: ResMut<Cines>,
    mut images: ResMut<Assets<Image>>,
    mut wl: ResMut<Assets<WindowLevelMaterial>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut colours: ResMut<Assets<ColorMaterial>>,
    run_entities: Query<(Entity, &RunEntity)>,
) {
    for c in changed.read() {
        let ModelChanged::Run(k) = *c else { continue };
        let Some(state) = case.runs.get(k) else { continue };
        // A run received during the case takes the last slot from the run shown there.
        let slot = k.min(super::layout::VIEW_SLOTS - 1);
        for (e, owner) in &run_entities {
            if owner.0 != k && owner.0.min(super::layout::VIEW_SLOTS - 1) == slot {
                commands.entity(e).despawn();
            }
        }
        let run = &state.run;
        let (rows, columns) = (run.info.rows, run.info.columns);
        let fit = ImageFit::new(layout.slot(k), columns, rows);
        let layer = RenderLayers::layer(view_layer(k.min(super::layout::VIEW_SLOTS - 1)));
        let n = rows as usize * columns as usize;
        let bytes = frame_bytes(&run.samples, n, run.segmented_frame).unwrap_or_else(|| vec![0; n * 2]);
        let image = images.add(Image::new(
            Extent3d { width: columns, height: rows, depth_or_array_layers: 1 },
            TextureDimension::D2,
            bytes,
            TextureFormat::R16Uint,
            RenderAssetUsages::RENDER_WORLD | RenderAssetUsages::MAIN_WORLD,
        ));
        let material = wl.add(WindowLevelMaterial {
            params: Vec4::new(run.window.0 as f32, run.window.1 as f32, 0.0, 0.0),
            frame: image.clone(),
        });
        cines.frame.push(run.segmented_frame);
        cines.into_frame_s.push(0.0);
        cines.window.push(run.window);
        let mut camera = commands.spawn((
            Camera2d,
            Camera {
                viewport: Some(fit.viewport.viewport()),
                order: 1 + k as isize,
                // A clear clears the whole target, not the viewport: the 3D camera clears once.
                clear_color: ClearColorConfig::None,
                ..default()
            },
            Projection::Orthographic(OrthographicProjection {
                scaling_mode: ScalingMode::AutoMin { min_width: columns as f32, min_height: rows as f32 },
                ..OrthographicProjection::default_2d()
            }),
            layer.clone(),
            ViewCamera(k),
            RunEntity(k),
        ));
        if let Some(t) = &target {
            camera.insert(t.0.clone());
        }
        // The view's black background (the image's aspect rarely matches the viewport's).
        commands.spawn((
            Mesh2d(meshes.add(Rectangle::new(columns as f32 * 8.0, rows as f32 * 8.0))),
            MeshMaterial2d(colours.add(ColorMaterial::from(Color::BLACK))),
            Transform::from_xyz(0.0, 0.0, -1.0),
            layer.clone(),
            RunEntity(k),
        ));
        commands.spawn((
            Mesh2d(meshes.add(Rectangle::new(columns as f32, rows as f32))),
            MeshMaterial2d(material.clone()),
            Transform::default(),
            layer.clone(),
            FrameQuad { run: k, image, material, shown: Some(run.segmented_frame) },
            RunEntity(k),
        ));
        spawn_overlay(&mut commands, k, &fit, &layer, &state.tree, &mut meshes, &mut colours);
    }
}

/// The labelled tree of run `k` and a ring at its ostium (the root, or the user's seed).
fn spawn_overlay(
    commands: &mut Commands,
    k: usize,
    fit: &ImageFit,
    layer: &RenderLayers,
    tree: &recording::record::Segmentation2d,
    meshes: &mut Assets<Mesh>,
    colours: &mut Assets<ColorMaterial>,
) {
    let px = 1.0 / fit.scale.max(1e-3);
    for branch in &tree.branches {
        let Some(mesh) = ribbon(fit, &branch.points_px, LINE_PX * px) else { continue };
        commands.spawn((
            Mesh2d(meshes.add(mesh)),
            MeshMaterial2d(colours.add(ColorMaterial::from(colors::label_color(&branch.label)))),
            Transform::from_xyz(0.0, 0.0, 1.0),
            layer.clone(),
            TreeOverlay(k),
            RunEntity(k),
        ));
    }
    if let Some(root) = tree.root_px {
        let at = fit.world_from_image(root);
        commands.spawn((
            Mesh2d(meshes.add(Annulus::new(5.0 * px, 7.0 * px))),
            MeshMaterial2d(colours.add(ColorMaterial::from(colors::TEXT))),
            Transform::from_xyz(at.x, at.y, 1.2),
            layer.clone(),
            TreeOverlay(k),
            RunEntity(k),
        ));
    }
}

/// Rebuilds the overlay of a run whose tree changed (review edits).
fn refresh_overlays(
    mut commands: Commands,
    mut changed: MessageReader<ModelChanged>,
    case: Res<CaseState>,
    layout: Res<Layout>,
    old: Query<(Entity, &TreeOverlay)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut colours: ResMut<Assets<ColorMaterial>>,
) {
    for c in changed.read() {
        let ModelChanged::Tree2d(k) = *c else { continue };
        let Some(state) = case.runs.get(k) else { continue };
        if !super::layout::is_shown(k, case.runs.len()) {
            continue;
        }
        for (e, overlay) in &old {
            if overlay.0 == k {
                commands.entity(e).despawn();
            }
        }
        let fit = ImageFit::new(layout.slot(k), state.run.info.columns, state.run.info.rows);
        let layer = RenderLayers::layer(view_layer(k.min(super::layout::VIEW_SLOTS - 1)));
        spawn_overlay(&mut commands, k, &fit, &layer, &state.tree, &mut meshes, &mut colours);
    }
}

fn follow_layout(layout: Res<Layout>, case: Res<CaseState>, mut cameras: Query<(&ViewCamera, &mut Camera)>) {
    if !layout.is_changed() {
        return;
    }
    for (view, mut camera) in &mut cameras {
        if let Some(run) = case.runs.get(view.0) {
            let fit = ImageFit::new(layout.slot(view.0), run.run.info.columns, run.run.info.rows);
            camera.viewport = Some(fit.viewport.viewport());
        }
    }
}

fn play_cines(time: Res<Time>, case: Res<CaseState>, mut cines: ResMut<Cines>) {
    let dt = time.delta_secs_f64();
    let playing = cines.playing;
    for (k, state) in case.runs.iter().enumerate() {
        let info = &state.run.info;
        if k >= cines.frame.len() {
            break;
        }
        if !playing {
            cines.frame[k] = state.run.segmented_frame;
            cines.into_frame_s[k] = 0.0;
            continue;
        }
        let frame_s = info.frame_time_ms.filter(|t| *t > 0.0).unwrap_or(66.7) / 1e3;
        cines.into_frame_s[k] += dt;
        while cines.into_frame_s[k] >= frame_s {
            cines.into_frame_s[k] -= frame_s;
            cines.frame[k] = (cines.frame[k] + 1) % info.frame_count.max(1);
        }
    }
}

fn show_frames(
    case: Res<CaseState>,
    cines: Res<Cines>,
    mut quads: Query<&mut FrameQuad>,
    mut images: ResMut<Assets<Image>>,
    mut wl: ResMut<Assets<WindowLevelMaterial>>,
) {
    for mut quad in &mut quads {
        let (Some(state), Some(&frame)) = (case.runs.get(quad.run), cines.frame.get(quad.run)) else { continue };
        if quad.shown != Some(frame) {
            let run = &state.run;
            let n = run.info.rows as usize * run.info.columns as usize;
            if let (Some(bytes), Some(mut image)) = (frame_bytes(&run.samples, n, frame), images.get_mut(&quad.image)) {
                image.data = Some(bytes);
                quad.shown = Some(frame);
            }
        }
        if cines.is_changed()
            && let (Some(window), Some(mut material)) = (cines.window.get(quad.run), wl.get_mut(&quad.material))
        {
            let params = Vec4::new(window.0 as f32, window.1 as f32, material.params.z, 0.0);
            if material.params != params {
                material.params = params;
            }
        }
    }
}

/// What a live marker shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Marker {
    /// A candidate target (index in the case's targets).
    Target(usize),
    /// A tool's tip.
    Tip(String),
    /// The guidance path of a tool.
    Path(String),
}

/// A live marker of a view (kept from frame to frame: moved, recoloured, hidden).
#[derive(Component)]
struct LiveOverlay {
    view: usize,
    marker: Marker,
}

/// Unit meshes and colours of the live markers, made once.
struct LiveAssets {
    dot: Handle<Mesh>,
    tip_ring: Handle<Mesh>,
    target_ring: Handle<Mesh>,
    selected_ring: Handle<Mesh>,
    tip_live: Handle<ColorMaterial>,
    tip_stale: Handle<ColorMaterial>,
    target: Handle<ColorMaterial>,
    path: Handle<ColorMaterial>,
}

impl LiveAssets {
    fn new(meshes: &mut Assets<Mesh>, colours: &mut Assets<ColorMaterial>) -> Self {
        Self {
            dot: meshes.add(Circle::new(1.0)),
            tip_ring: meshes.add(Annulus::new((TIP_PX - 2.5) / TIP_PX, 1.0)),
            target_ring: meshes.add(Annulus::new(4.0 / 6.0, 1.0)),
            selected_ring: meshes.add(Annulus::new(7.0 / 10.0, 1.0)),
            tip_live: colours.add(ColorMaterial::from(colors::TIP)),
            tip_stale: colours.add(ColorMaterial::from(colors::TIP_STALE)),
            target: colours.add(ColorMaterial::from(colors::TARGET)),
            path: colours.add(ColorMaterial::from(colors::GUIDANCE.with_alpha(0.85))),
        }
    }
}

/// The mesh of a marker this frame: one of the shared unit meshes, or its own (a path).
enum MarkerMesh {
    /// A shared unit mesh, scaled by the transform.
    Shared(Handle<Mesh>),
    /// Its own geometry, written into the marker's own mesh asset.
    Own(Mesh),
}

/// How a marker is drawn this frame.
struct Shown {
    mesh: MarkerMesh,
    material: Handle<ColorMaterial>,
    transform: Transform,
}

/// Tips, every target and the selected target's path, projected into each view. The marker
/// entities and their unit meshes are kept: each frame moves, recolours, hides or (for a new
/// tool or target) adds them; only a path's own mesh is rewritten when it is shown.
#[allow(clippy::too_many_arguments, reason = "a Bevy system's parameters")]
fn draw_live(
    mut commands: Commands,
    case: Res<CaseState>,
    tips: Res<TipState>,
    layout: Res<Layout>,
    mut markers: Query<(
        &LiveOverlay,
        &mut Mesh2d,
        &mut MeshMaterial2d<ColorMaterial>,
        &mut Transform,
        &mut Visibility,
    )>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut colours: ResMut<Assets<ColorMaterial>>,
    mut assets: Local<Option<LiveAssets>>,
) {
    let assets = assets.get_or_insert_with(|| LiveAssets::new(&mut meshes, &mut colours));
    let mut wanted: HashMap<(usize, Marker), Shown> = HashMap::new();
    for (k, state) in case.runs.iter().enumerate() {
        let Some(projection) = &state.projection else { continue };
        if !super::layout::is_shown(k, case.runs.len()) {
            continue;
        }
        let info = &state.run.info;
        let fit = ImageFit::new(layout.slot(k), info.columns, info.rows);
        let px = 1.0 / fit.scale.max(1e-3);
        let project = |p: [f64; 3]| projection.project(&Point3::from(p)).map(|xy| [xy.x, xy.y]);
        let at = |xy: [f64; 2], z: f32, radius: f32| {
            let w = fit.world_from_image(xy);
            Transform::from_xyz(w.x, w.y, z).with_scale(Vec3::new(radius, radius, 1.0))
        };
        for (t, target) in case.targets.iter().enumerate() {
            let Some(xy) = project(target.position_mm) else { continue };
            let (mesh, radius) = if case.selected == Some(t) {
                (&assets.selected_ring, 10.0 * px)
            } else {
                (&assets.target_ring, 6.0 * px)
            };
            let shown = Shown {
                mesh: MarkerMesh::Shared(mesh.clone()),
                material: assets.target.clone(),
                transform: at(xy, 2.0, radius),
            };
            wanted.insert((k, Marker::Target(t)), shown);
        }
        for (tool, track) in &tips.tools {
            if !track.stale
                && let Some(g) = &track.guidance
            {
                let path: Vec<[f64; 2]> = g.path.iter().filter_map(|p| project(*p)).collect();
                if let Some(mesh) = ribbon(&fit, &path, 2.0 * px) {
                    let shown = Shown {
                        mesh: MarkerMesh::Own(mesh),
                        material: assets.path.clone(),
                        transform: Transform::from_xyz(0.0, 0.0, 1.5),
                    };
                    wanted.insert((k, Marker::Path(tool.clone())), shown);
                }
            }
            let Some(xy) = project(track.last.tip_in_patient_mm) else { continue };
            let (mesh, material) =
                if track.stale { (&assets.tip_ring, &assets.tip_stale) } else { (&assets.dot, &assets.tip_live) };
            let shown = Shown {
                mesh: MarkerMesh::Shared(mesh.clone()),
                material: material.clone(),
                transform: at(xy, 3.0, TIP_PX * px),
            };
            wanted.insert((k, Marker::Tip(tool.clone())), shown);
        }
    }
    // Update the markers there are; hide those not wanted this frame.
    for (overlay, mut mesh, mut material, mut transform, mut visibility) in &mut markers {
        let Some(shown) = wanted.remove(&(overlay.view, overlay.marker.clone())) else {
            visibility.set_if_neq(Visibility::Hidden);
            continue;
        };
        match shown.mesh {
            MarkerMesh::Shared(handle) => {
                if mesh.0 != handle {
                    mesh.0 = handle;
                }
            }
            MarkerMesh::Own(geometry) => {
                // In place: the path keeps its asset.
                let geometry = match meshes.get_mut(&mesh.0) {
                    Some(mut own) => {
                        *own = geometry;
                        None
                    }
                    None => Some(geometry),
                };
                if let Some(geometry) = geometry {
                    mesh.0 = meshes.add(geometry);
                }
            }
        }
        if material.0 != shown.material {
            material.0 = shown.material;
        }
        transform.set_if_neq(shown.transform);
        visibility.set_if_neq(Visibility::Inherited);
    }
    // Add markers for new tools, targets and paths.
    for ((view, marker), shown) in wanted {
        let mesh = match shown.mesh {
            MarkerMesh::Shared(handle) => handle,
            MarkerMesh::Own(geometry) => meshes.add(geometry),
        };
        commands.spawn((
            Mesh2d(mesh),
            MeshMaterial2d(shown.material),
            shown.transform,
            RenderLayers::layer(view_layer(view.min(super::layout::VIEW_SLOTS - 1))),
            LiveOverlay { view, marker },
        ));
    }
}
