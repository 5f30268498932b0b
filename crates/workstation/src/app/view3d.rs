//! The 3D view: the CS tree as tubes coloured by label, the LV surface translucent, targets
//! coloured by their test result, tracked tips with a short trail and the guidance vector,
//! and an orbit camera with the standard C-arm views.
//!
//! World axes: patient LPS mm mapped to bevy's right-handed Y-up frame as
//! (x, y, z) = (L, S, A), so the AP view looks along -z with the patient's left on the right.

use bevy::asset::RenderAssetUsages;
use bevy::camera::visibility::RenderLayers;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use recording::record::Tree3d;

use super::colors;
use super::layout::{AppTarget, Layout};
use super::model::{CaseState, ModelChanged, SiteTable, TipState};

/// Bevy world position of a patient LPS point, mm.
#[must_use]
pub fn world_from_patient(p: [f64; 3]) -> Vec3 {
    Vec3::new(p[0] as f32, p[2] as f32, -p[1] as f32)
}

/// The orbit camera's state: it looks at `focus` from `distance_mm` away, from the direction
/// given by the C-arm angles (LAO positive, cranial positive).
#[derive(Debug, Clone, Copy, PartialEq, Component)]
pub struct Orbit {
    /// Point looked at (world).
    pub focus: Vec3,
    /// Distance from the focus, mm.
    pub distance_mm: f32,
    /// LAO (+) / RAO (-) angle, degrees.
    pub lao_deg: f32,
    /// Cranial (+) / caudal (-) angle, degrees.
    pub cranial_deg: f32,
}

impl Orbit {
    /// The camera transform.
    #[must_use]
    pub fn transform(&self) -> Transform {
        let (a, b) = (self.lao_deg.to_radians(), self.cranial_deg.to_radians());
        let dir = Vec3::new(a.sin() * b.cos(), b.sin(), a.cos() * b.cos());
        Transform::from_translation(self.focus + dir * self.distance_mm).looking_at(self.focus, Vec3::Y)
    }
}

/// A standard view's name and angles (LAO, cranial).
pub const STANDARD_VIEWS: [(&str, f32, f32); 3] = [("AP", 0.0, 0.0), ("LAO 35", 35.0, 0.0), ("RAO 30", -30.0, 0.0)];

/// Marks the 3D camera.
#[derive(Component)]
pub struct View3dCamera;

/// Marks what is built from the anatomy (rebuilt when its part changes).
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
enum AnatomyPart {
    /// A tube of the 3D tree.
    Tree,
    /// The LV surface.
    Lv,
}

/// Marks a target marker (by target index).
#[derive(Component)]
struct TargetMarker;

/// Marks a tip marker (by tool).
#[derive(Component)]
struct TipMarker(String);

/// The head light follows the camera.
#[derive(Component)]
struct HeadLight;

/// Materials shared by the markers.
#[derive(Resource)]
struct MarkerAssets {
    sphere: Handle<Mesh>,
    tip: Handle<StandardMaterial>,
    tip_stale: Handle<StandardMaterial>,
    target: Handle<StandardMaterial>,
    good: Handle<StandardMaterial>,
    ok: Handle<StandardMaterial>,
    bad: Handle<StandardMaterial>,
}

/// The 3D view plugin.
pub struct View3dPlugin;

impl Plugin for View3dPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, setup)
            .add_systems(Update, (rebuild_anatomy, update_targets, update_tips, draw_overlays, follow_layout))
            .add_systems(PostUpdate, apply_orbit);
    }
}

fn setup(
    mut commands: Commands,
    target: Option<Res<AppTarget>>,
    layout: Res<Layout>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let orbit = Orbit { focus: Vec3::ZERO, distance_mm: 190.0, lao_deg: 35.0, cranial_deg: 0.0 };
    let mut camera = commands.spawn((
        Camera3d::default(),
        Camera { viewport: Some(layout.view3d.viewport()), order: 0, ..default() },
        Tonemapping::None,
        orbit.transform(),
        orbit,
        View3dCamera,
        RenderLayers::layer(0),
    ));
    if let Some(t) = target {
        camera.insert(t.0.clone());
    }
    commands.spawn((DirectionalLight { illuminance: 9_000.0, ..default() }, Transform::default(), HeadLight));
    commands.insert_resource(GlobalAmbientLight { brightness: 350.0, ..default() });
    let unlit = |c: Color| StandardMaterial { base_color: c, emissive: c.to_linear() * 0.6, ..default() };
    commands.insert_resource(MarkerAssets {
        sphere: meshes.add(Sphere::new(1.0).mesh().uv(24, 16)),
        tip: materials.add(unlit(colors::TIP)),
        tip_stale: materials.add(unlit(colors::TIP_STALE)),
        target: materials.add(unlit(colors::TARGET)),
        good: materials.add(unlit(colors::GOOD)),
        ok: materials.add(unlit(colors::WARN)),
        bad: materials.add(unlit(colors::ALARM)),
    });
}

fn follow_layout(layout: Res<Layout>, mut cameras: Query<&mut Camera, With<View3dCamera>>) {
    if layout.is_changed() {
        for mut camera in &mut cameras {
            camera.viewport = Some(layout.view3d.viewport());
        }
    }
}

fn apply_orbit(
    mut cameras: Query<(&Orbit, &mut Transform), (With<View3dCamera>, Changed<Orbit>)>,
    mut lights: Query<&mut Transform, (With<HeadLight>, Without<View3dCamera>)>,
) {
    for (orbit, mut transform) in &mut cameras {
        *transform = orbit.transform();
        for mut light in &mut lights {
            *light = Transform::from_rotation(transform.rotation);
        }
    }
}

/// A tube along a polyline with a radius per point: rings of `sides` vertices carried along
/// by parallel transport (no twist at bends), capped at both ends.
#[must_use]
pub fn tube_mesh(points: &[Vec3], radii: &[f32], sides: usize) -> Option<Mesh> {
    if points.len() < 2 || radii.len() != points.len() || sides < 3 {
        return None;
    }
    let tangent = |k: usize| {
        let a = points[k.saturating_sub(1)];
        let b = points[(k + 1).min(points.len() - 1)];
        (b - a).normalize_or_zero()
    };
    let t0 = tangent(0);
    let helper = if t0.x.abs() < 0.9 { Vec3::X } else { Vec3::Y };
    let mut normal = t0.cross(helper).normalize_or_zero();
    let mut positions = Vec::with_capacity(points.len() * sides + 2);
    let mut normals = Vec::with_capacity(positions.capacity());
    let mut previous = t0;
    for (k, (p, r)) in points.iter().zip(radii).enumerate() {
        let t = tangent(k);
        // Parallel transport: rotate the frame by the rotation taking the old tangent to the new.
        if t != Vec3::ZERO && previous != Vec3::ZERO {
            normal = Quat::from_rotation_arc(previous, t) * normal;
            previous = t;
        }
        let binormal = t.cross(normal).normalize_or_zero();
        for s in 0..sides {
            let a = std::f32::consts::TAU * s as f32 / sides as f32;
            let n = normal * a.cos() + binormal * a.sin();
            positions.push((*p + n * r.max(0.05)).to_array());
            normals.push(n.to_array());
        }
    }
    let mut indices = Vec::with_capacity((points.len() - 1) * sides * 6 + sides * 6);
    for k in 0..points.len() - 1 {
        for s in 0..sides {
            let a = (k * sides + s) as u32;
            let b = (k * sides + (s + 1) % sides) as u32;
            let c = a + sides as u32;
            let d = b + sides as u32;
            indices.extend_from_slice(&[a, c, b, b, c, d]);
        }
    }
    // End caps (fans around a centre vertex).
    for (k, sign) in [(0usize, -1.0f32), (points.len() - 1, 1.0)] {
        let centre = positions.len() as u32;
        positions.push(points[k].to_array());
        normals.push((tangent(k) * sign).to_array());
        for s in 0..sides {
            let a = (k * sides + s) as u32;
            let b = (k * sides + (s + 1) % sides) as u32;
            if sign < 0.0 {
                indices.extend_from_slice(&[centre, b, a]);
            } else {
                indices.extend_from_slice(&[centre, a, b]);
            }
        }
    }
    let mut mesh = Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::default());
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
    mesh.insert_attribute(Mesh::ATTRIBUTE_NORMAL, normals);
    mesh.insert_indices(Indices::U32(indices));
    Some(mesh)
}

/// The centre of a tree's points (world), for the camera's focus.
fn tree_centre(tree: &Tree3d) -> Option<Vec3> {
    let points: Vec<Vec3> =
        tree.branches.iter().flat_map(|b| b.points_mm.iter().map(|p| world_from_patient(*p))).collect();
    if points.is_empty() {
        return None;
    }
    let (lo, hi) =
        points.iter().fold((Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    Some((lo + hi) / 2.0)
}

#[allow(clippy::too_many_arguments, reason = "a Bevy system's parameters")]
fn rebuild_anatomy(
    mut commands: Commands,
    mut changed: MessageReader<ModelChanged>,
    case: Res<CaseState>,
    parts: Query<(Entity, &AnatomyPart)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut cameras: Query<&mut Orbit, With<View3dCamera>>,
) {
    // Only what changed is rebuilt (a mesh dropped before its first upload makes bevy complain).
    let (mut tree_changed, mut lv_changed) = (false, false);
    for c in changed.read() {
        tree_changed |= *c == ModelChanged::Anatomy;
        lv_changed |= *c == ModelChanged::Lv;
    }
    for (e, part) in &parts {
        if (*part == AnatomyPart::Tree && tree_changed) || (*part == AnatomyPart::Lv && lv_changed) {
            commands.entity(e).despawn();
        }
    }
    if let Some(tree) = case.tree.as_ref().filter(|_| tree_changed) {
        for branch in &tree.record.branches {
            let points: Vec<Vec3> = branch.points_mm.iter().map(|p| world_from_patient(*p)).collect();
            let radii: Vec<f32> = branch.radius_mm.iter().map(|r| *r as f32).collect();
            let Some(mesh) = tube_mesh(&points, &radii, 12) else { continue };
            let colour = colors::label_color(&branch.label);
            commands.spawn((
                Mesh3d(meshes.add(mesh)),
                MeshMaterial3d(materials.add(StandardMaterial {
                    base_color: colour,
                    perceptual_roughness: 0.5,
                    ..default()
                })),
                Transform::default(),
                AnatomyPart::Tree,
            ));
        }
        if let Some(centre) = tree_centre(&tree.record) {
            for mut orbit in &mut cameras {
                orbit.focus = centre;
            }
        }
    }
    if let Some(lv) = case.lv.as_ref().filter(|_| lv_changed) {
        let positions: Vec<[f32; 3]> = lv
            .positions_mm
            .iter()
            .map(|p| world_from_patient([f64::from(p[0]), f64::from(p[1]), f64::from(p[2])]).to_array())
            .collect();
        let mut mesh = Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::default());
        mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
        mesh.insert_indices(Indices::U32(lv.triangles.iter().flatten().copied().collect()));
        mesh.compute_smooth_normals();
        commands.spawn((
            Mesh3d(meshes.add(mesh)),
            MeshMaterial3d(materials.add(StandardMaterial {
                base_color: Color::srgba(0.85, 0.35, 0.35, 0.16),
                alpha_mode: AlphaMode::Blend,
                double_sided: true,
                cull_mode: None,
                perceptual_roughness: 0.9,
                ..default()
            })),
            Transform::default(),
            AnatomyPart::Lv,
        ));
    }
}

/// The material of a target marker: ranked first (good), eligible (ok), not eligible (bad),
/// or not tested.
fn target_material<'a>(name: &str, sites: &SiteTable, assets: &'a MarkerAssets) -> &'a Handle<StandardMaterial> {
    match sites.ranking.iter().find(|r| r.site == name) {
        Some(r) if r.eligible && r.rank == 1 => &assets.good,
        Some(r) if r.eligible => &assets.ok,
        Some(_) => &assets.bad,
        None => &assets.target,
    }
}

fn update_targets(
    mut commands: Commands,
    mut changed: MessageReader<ModelChanged>,
    case: Res<CaseState>,
    sites: Res<SiteTable>,
    assets: Res<MarkerAssets>,
    markers: Query<Entity, With<TargetMarker>>,
) {
    if !changed.read().any(|c| matches!(c, ModelChanged::Targets | ModelChanged::Sites | ModelChanged::Anatomy)) {
        return;
    }
    for e in &markers {
        commands.entity(e).despawn();
    }
    for (k, t) in case.targets.iter().enumerate() {
        let scale = if case.selected == Some(k) { 3.2 } else { 2.4 };
        commands.spawn((
            Mesh3d(assets.sphere.clone()),
            MeshMaterial3d(target_material(&t.name, &sites, &assets).clone()),
            Transform::from_translation(world_from_patient(t.position_mm)).with_scale(Vec3::splat(scale)),
            TargetMarker,
        ));
    }
}

fn update_tips(
    mut commands: Commands,
    tips: Res<TipState>,
    assets: Res<MarkerAssets>,
    mut markers: Query<(Entity, &TipMarker, &mut Transform, &mut MeshMaterial3d<StandardMaterial>)>,
) {
    let mut seen = std::collections::BTreeSet::new();
    for (entity, marker, mut transform, mut material) in &mut markers {
        let Some(track) = tips.tools.get(&marker.0) else {
            commands.entity(entity).despawn();
            continue;
        };
        seen.insert(marker.0.clone());
        transform.translation = world_from_patient(track.last.tip_in_patient_mm);
        let want = if track.stale { &assets.tip_stale } else { &assets.tip };
        if material.0 != *want {
            material.0 = want.clone();
        }
    }
    for (tool, track) in &tips.tools {
        if !seen.contains(tool) {
            commands.spawn((
                Mesh3d(assets.sphere.clone()),
                MeshMaterial3d(assets.tip.clone()),
                Transform::from_translation(world_from_patient(track.last.tip_in_patient_mm))
                    .with_scale(Vec3::splat(2.0)),
                TipMarker(tool.clone()),
            ));
        }
    }
}

/// Trails, guidance paths and steer vectors (immediate-mode lines, redrawn every frame).
fn draw_overlays(mut gizmos: Gizmos, tips: Res<TipState>) {
    for track in tips.tools.values() {
        let trail: Vec<Vec3> = track.trail.iter().map(|(_, p)| world_from_patient(*p)).collect();
        if trail.len() > 1 {
            gizmos.linestrip(trail, colors::TIP.with_alpha(0.8));
        }
        if track.stale {
            continue;
        }
        if let Some(g) = &track.guidance {
            let path: Vec<Vec3> = g.path.iter().map(|p| world_from_patient(*p)).collect();
            if path.len() > 1 {
                gizmos.linestrip(path, colors::GUIDANCE.with_alpha(0.7));
            }
            if let Some(steer) = g.steer {
                let from = world_from_patient(track.last.tip_in_patient_mm);
                let dir = Vec3::new(steer[0] as f32, steer[2] as f32, -steer[1] as f32);
                gizmos.arrow(from, from + dir * 15.0, colors::GUIDANCE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tube_rings_sit_at_the_radius_around_the_centerline() {
        let points = [Vec3::ZERO, Vec3::new(10.0, 0.0, 0.0), Vec3::new(20.0, 5.0, 0.0)];
        let radii = [1.0, 2.0, 1.5];
        let mesh = tube_mesh(&points, &radii, 8).expect("a tube");
        let Some(bevy::mesh::VertexAttributeValues::Float32x3(positions)) = mesh.attribute(Mesh::ATTRIBUTE_POSITION)
        else {
            panic!("positions")
        };
        assert_eq!(positions.len(), 3 * 8 + 2);
        for (k, p) in points.iter().enumerate() {
            for v in &positions[k * 8..(k + 1) * 8] {
                let d = Vec3::from_array(*v).distance(*p);
                assert!((d - radii[k]).abs() < 1e-4, "ring {k}: {d} vs {}", radii[k]);
            }
        }
        assert!(tube_mesh(&points[..1], &radii[..1], 8).is_none());
    }

    #[test]
    fn patient_axes_map_to_a_right_handed_y_up_world() {
        let l = world_from_patient([1.0, 0.0, 0.0]);
        let p = world_from_patient([0.0, 1.0, 0.0]);
        let s = world_from_patient([0.0, 0.0, 1.0]);
        assert_eq!(s, Vec3::Y);
        // L x S = A (anterior, -P), and the world is right-handed.
        assert!((l.cross(s) - (-p)).length() < 1e-6);
        // AP view: the camera sits anterior (+z) of the focus.
        let ap = Orbit { focus: Vec3::ZERO, distance_mm: 100.0, lao_deg: 0.0, cranial_deg: 0.0 }.transform();
        assert!((ap.translation - Vec3::new(0.0, 0.0, 100.0)).length() < 1e-3);
        // LAO: the camera moves toward the patient's left.
        let lao = Orbit { focus: Vec3::ZERO, distance_mm: 100.0, lao_deg: 30.0, cranial_deg: 0.0 }.transform();
        assert!(lao.translation.x > 0.0);
    }
}
