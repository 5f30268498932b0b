//! The panels (`bevy_ui`): header with the mode, the research-software notice and the link
//! states (alarms in red); the branch list with measurements; the tip state; the device
//! panel with a live EGM strip, per-beat capture marks, the running step and the results;
//! and the ranked site table. Text sizes are chosen to read from across a cath lab.

use bevy::asset::RenderAssetUsages;
use bevy::camera::visibility::RenderLayers;
use bevy::mesh::PrimitiveTopology;
use bevy::prelude::*;
use device_link::protocol::Capture;

use super::colors;
use super::layout::{AppTarget, Layout, ScreenRect};
use super::model::{BEATS_KEPT, CaseState, DeviceState, SiteTable, Status, TipState};
use super::{AppOptions, LinkState, Mode};

/// Render layer of the EGM strip.
const EGM_LAYER: usize = 8;
/// Render layer of the UI camera (nothing else is on it).
const UI_LAYER: usize = 9;

/// Which panel a text block fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Component)]
pub enum PanelText {
    /// Mode and case (header, left).
    Title,
    /// Research-software notice (header, middle).
    Notice,
    /// Link states (header, right).
    Links,
    /// Captions under the venogram views (by slot).
    Caption(usize),
    /// 3D view caption (where the tree came from).
    Caption3d,
    /// Branch list.
    Branches,
    /// Tip state.
    Tips,
    /// Device panel.
    Device,
    /// Site table.
    Sites,
}

/// Placement of a panel (follows the layout).
#[derive(Debug, Clone, Copy, Component)]
struct Placed(fn(&Layout) -> ScreenRect);

/// A per-beat mark in the device panel (by position, oldest first).
#[derive(Component)]
struct BeatBox(usize);

/// The EGM strip's line.
#[derive(Component)]
struct EgmLine;

/// The EGM strip's camera.
#[derive(Component)]
struct EgmCamera;

/// The panels plugin.
pub struct PanelsPlugin;

impl Plugin for PanelsPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, setup)
            .add_systems(
                Update,
                (place, header, captions, branches, tips_panel, device_panel, sites_panel, egm_strip, beat_marks),
            )
            .add_systems(PostUpdate, span_fonts);
    }
}

/// A text block: where, which, font size, text colour, background.
type Block = (fn(&Layout) -> ScreenRect, PanelText, f32, Color, Color);

const BODY_PX: f32 = 17.0;
const TITLE_PX: f32 = 20.0;
const CAPTION_PX: f32 = 14.0;

fn text(size: f32, colour: Color) -> (Text, TextFont, TextColor) {
    (Text::new(""), TextFont::from_font_size(size), TextColor(colour))
}

#[allow(clippy::too_many_lines, reason = "the panel tree, spawned in one place")]
fn setup(
    mut commands: Commands,
    target: Option<Res<AppTarget>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut colours: ResMut<Assets<ColorMaterial>>,
    layout: Res<Layout>,
) {
    let ui_camera = commands
        .spawn((
            Camera2d,
            Camera { order: 20, clear_color: ClearColorConfig::None, ..default() },
            IsDefaultUiCamera,
            RenderLayers::layer(UI_LAYER),
        ))
        .id();
    let egm_camera = commands
        .spawn((
            Camera2d,
            Camera {
                viewport: Some(layout.egm.viewport()),
                order: 10,
                clear_color: ClearColorConfig::None,
                ..default()
            },
            RenderLayers::layer(EGM_LAYER),
            EgmCamera,
        ))
        .id();
    if let Some(t) = &target {
        commands.entity(ui_camera).insert(t.0.clone());
        commands.entity(egm_camera).insert(t.0.clone());
    }
    // The strip's background (cameras after the first must not clear: a clear is target-wide).
    commands.spawn((
        Mesh2d(meshes.add(Rectangle::new(8000.0, 8000.0))),
        MeshMaterial2d(colours.add(ColorMaterial::from(Color::srgb(0.02, 0.03, 0.02)))),
        Transform::from_xyz(0.0, 0.0, -1.0),
        RenderLayers::layer(EGM_LAYER),
    ));
    commands.spawn((
        Mesh2d(meshes.add(Mesh::new(PrimitiveTopology::LineStrip, RenderAssetUsages::default()))),
        MeshMaterial2d(colours.add(ColorMaterial::from(colors::GOOD))),
        Transform::default(),
        RenderLayers::layer(EGM_LAYER),
        EgmLine,
    ));
    let panel = |rect: fn(&Layout) -> ScreenRect, background: Color| {
        (
            Node { position_type: PositionType::Absolute, padding: UiRect::all(Val::Px(8.0)), ..default() },
            BackgroundColor(background),
            Placed(rect),
        )
    };
    let blocks: [Block; 8] = [
        (|l| ScreenRect { w: l.header.w * 0.32, ..l.header }, PanelText::Title, TITLE_PX, colors::TEXT, colors::PANEL),
        (
            |l| ScreenRect { x: l.header.w * 0.32, w: l.header.w * 0.38, ..l.header },
            PanelText::Notice,
            TITLE_PX,
            colors::WARN,
            colors::PANEL,
        ),
        (
            |l| ScreenRect { x: l.header.w * 0.7, w: l.header.w * 0.3, ..l.header },
            PanelText::Links,
            TITLE_PX,
            colors::TEXT,
            colors::PANEL,
        ),
        (|l| ScreenRect { h: 30.0, ..l.view3d }, PanelText::Caption3d, BODY_PX, colors::DIM, Color::NONE),
        (|l| l.branches, PanelText::Branches, BODY_PX, colors::TEXT, colors::PANEL),
        (|l| l.tips, PanelText::Tips, BODY_PX, colors::TEXT, colors::PANEL),
        (
            |l| ScreenRect {
                y: l.egm.y + l.egm.h + 28.0,
                h: l.device.h - (l.egm.y - l.device.y) - l.egm.h - 28.0,
                ..l.device
            },
            PanelText::Device,
            BODY_PX,
            colors::TEXT,
            colors::PANEL,
        ),
        (|l| l.sites, PanelText::Sites, BODY_PX, colors::TEXT, colors::PANEL),
    ];
    // The device panel's title strip above the EGM strip (the UI must not cover the strip).
    commands.spawn(panel(|l| ScreenRect { h: l.egm.y - l.device.y, ..l.device }, colors::PANEL)).with_children(|p| {
        p.spawn((
            Text::new("Device   LV tip EGM, 4 s, +-10 mV"),
            TextFont::from_font_size(BODY_PX),
            TextColor(colors::DIM),
        ));
    });
    for (rect, which, size, colour, background) in blocks {
        commands.spawn(panel(rect, background)).with_children(|p| {
            p.spawn((text(size, colour), which));
        });
    }
    for slot in 0..super::layout::VIEW_SLOTS {
        let rect: fn(&Layout) -> ScreenRect = if slot == 0 { |l| l.captions2d[0] } else { |l| l.captions2d[1] };
        commands.spawn(panel(rect, colors::PANEL)).with_children(|p| {
            p.spawn((text(CAPTION_PX, colors::TEXT), PanelText::Caption(slot)));
        });
    }
    // Per-beat capture marks, under the EGM strip.
    let beats: fn(&Layout) -> ScreenRect =
        |l| ScreenRect { x: l.egm.x, y: l.egm.y + l.egm.h + 4.0, w: l.egm.w, h: 20.0 };
    commands
        .spawn((
            Node {
                position_type: PositionType::Absolute,
                flex_direction: FlexDirection::Row,
                column_gap: Val::Px(4.0),
                ..default()
            },
            Placed(beats),
        ))
        .with_children(|row| {
            for k in 0..BEATS_KEPT {
                row.spawn((
                    Node { width: Val::Px(18.0), height: Val::Px(18.0), ..default() },
                    BackgroundColor(Color::NONE),
                    BeatBox(k),
                ));
            }
        });
}

/// Keeps every panel where the layout puts it (layout px are physical; UI px are logical).
fn place(
    layout: Res<Layout>,
    windows: Query<&Window>,
    mut nodes: Query<(&Placed, &mut Node)>,
    mut egm: Query<&mut Camera, With<EgmCamera>>,
) {
    if !layout.is_changed() {
        return;
    }
    let scale = windows.iter().next().map_or(1.0, Window::scale_factor);
    for (placed, mut node) in &mut nodes {
        let r = (placed.0)(&layout);
        node.left = Val::Px(r.x / scale);
        node.top = Val::Px(r.y / scale);
        node.width = Val::Px(r.w / scale);
        node.height = Val::Px(r.h / scale);
    }
    for mut camera in &mut egm {
        camera.viewport = Some(layout.egm.viewport());
    }
}

/// New lines take their block's font (a span has its own, 20 px by default).
fn span_fonts(
    mut spans: Query<(&ChildOf, &mut TextFont), Added<TextSpan>>,
    blocks: Query<&TextFont, Without<TextSpan>>,
) {
    for (parent, mut font) in &mut spans {
        if let Ok(block) = blocks.get(parent.parent()) {
            *font = block.clone();
        }
    }
}

/// Replaces a text block's lines (each line its own span and colour).
fn set_lines(commands: &mut Commands, entity: Entity, lines: Vec<(String, Color)>) {
    commands.entity(entity).despawn_related::<Children>().with_children(|t| {
        for (k, (line, colour)) in lines.into_iter().enumerate() {
            let line = if k == 0 { line } else { format!("\n{line}") };
            t.spawn((TextSpan::new(line), TextColor(colour)));
        }
    });
}

/// A link's line in the header and its colour.
pub(crate) fn link_line(name: &str, state: &LinkState) -> (String, Color) {
    match state {
        LinkState::NotUsed => (format!("{name}: not used"), colors::DIM),
        LinkState::Connecting => (format!("{name}: connecting"), colors::WARN),
        LinkState::Connected => (format!("{name}: connected"), colors::GOOD),
        // Why goes to the notes: the header keeps to one line.
        LinkState::Lost(_) => (format!("!! {name}: LOST"), colors::ALARM),
        LinkState::Recorded => (format!("{name}: recorded"), colors::DIM),
    }
}

fn header(
    mut commands: Commands,
    options: Option<Res<AppOptions>>,
    mode: Option<Res<Mode>>,
    tool: Option<Res<super::review::ReviewTool>>,
    status: Res<Status>,
    blocks: Query<(Entity, &PanelText)>,
    mut done: Local<bool>,
) {
    if *done && !status.is_changed() {
        return;
    }
    *done = true;
    for (e, which) in &blocks {
        match which {
            PanelText::Title => {
                let mode = mode.as_deref().map_or("", |m| m.title());
                let case = options.as_deref().map_or("", |o| o.case_name.as_str());
                let tool = tool.as_deref().map_or(String::new(), |t| format!("  [{}]", t.name()));
                set_lines(&mut commands, e, vec![(format!("csnav  {mode}  {case}{tool}"), colors::TEXT)]);
            }
            PanelText::Notice => set_lines(
                &mut commands,
                e,
                vec![("RESEARCH SOFTWARE - NOT A CLEARED MEDICAL DEVICE".into(), colors::WARN)],
            ),
            PanelText::Links => {
                let (t, tc) = link_line("Tracker", &status.tracker);
                let (d, dc) = link_line("Device", &status.device);
                commands.entity(e).despawn_related::<Children>().with_children(|p| {
                    p.spawn((TextSpan::new(t), TextColor(tc)));
                    p.spawn((TextSpan::new("   "), TextColor(colors::DIM)));
                    p.spawn((TextSpan::new(d), TextColor(dc)));
                });
            }
            _ => {}
        }
    }
}

fn captions(
    mut commands: Commands,
    case: Res<CaseState>,
    cines: Res<super::view2d::Cines>,
    blocks: Query<(Entity, &PanelText)>,
    mut shown: Local<Vec<String>>,
) {
    if !case.is_changed() && !cines.is_changed() {
        return;
    }
    shown.resize(super::layout::VIEW_SLOTS + 1, String::new());
    for (e, which) in &blocks {
        let line = match which {
            PanelText::Caption(slot) => {
                let k = super::layout::run_in_slot(*slot, case.runs.len());
                k.and_then(|k| case.runs.get(k)).map_or_else(
                    || "no run".to_owned(),
                    |r| {
                        let i = &r.run.info;
                        let angle = |a: Option<f64>, pos: &str, neg: &str| {
                            a.map_or(String::new(), |a| format!("{} {:.0}", if a >= 0.0 { pos } else { neg }, a.abs()))
                        };
                        let frame = k.and_then(|k| cines.frame.get(k)).copied().unwrap_or(0);
                        let window = k.and_then(|k| cines.window.get(k)).copied().unwrap_or((0.0, 0.0));
                        format!(
                            "{}  {} {}  {}/{}{}  W{:.0} L{:.0}",
                            i.source,
                            angle(i.primary_angle_deg, "LAO", "RAO"),
                            angle(i.secondary_angle_deg, "CRA", "CAU"),
                            frame + 1,
                            i.frame_count,
                            if cines.playing { "" } else { " ref" },
                            window.1,
                            window.0
                        )
                    },
                )
            }
            PanelText::Caption3d => case.tree.as_ref().map_or_else(
                || "3D: no tree yet".to_owned(),
                |t| format!("3D: {}  [1] AP [2] LAO [3] RAO", t.record.source),
            ),
            _ => continue,
        };
        let slot = match which {
            PanelText::Caption(s) => *s,
            _ => super::layout::VIEW_SLOTS,
        };
        if shown[slot] != line {
            shown[slot].clone_from(&line);
            set_lines(&mut commands, e, vec![(line, colors::DIM)]);
        }
    }
}

fn polyline_mm(points: &[[f64; 3]]) -> f64 {
    points
        .windows(2)
        .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2) + (w[1][2] - w[0][2]).powi(2)).sqrt())
        .sum()
}

fn branches(
    mut commands: Commands,
    case: Res<CaseState>,
    mode: Option<Res<Mode>>,
    blocks: Query<(Entity, &PanelText)>,
) {
    if !case.is_changed() {
        return;
    }
    let Some((e, _)) = blocks.iter().find(|(_, w)| **w == PanelText::Branches) else { return };
    let mut lines = vec![("Branch  length  diam".to_owned(), colors::DIM)];
    let reviewing = mode.is_some_and(|m| *m == Mode::Review);
    match (&case.tree, reviewing) {
        (Some(tree), false) => {
            for b in &tree.record.branches {
                let mean_d = 2.0 * b.radius_mm.iter().sum::<f64>() / b.radius_mm.len().max(1) as f64;
                lines.push((
                    format!("{:<6} {:>4.0} mm {:>4.1} mm", b.label, polyline_mm(&b.points_mm), mean_d),
                    colors::label_color(&b.label),
                ));
            }
        }
        // The 2D trees (as edited, in review): lengths in image px.
        _ => {
            for run in &case.runs {
                lines.push((format!("run {} ({}): px", run.run.info.run, run.run.info.source), colors::DIM));
                for b in &run.tree.branches {
                    let len: f64 = b
                        .points_px
                        .windows(2)
                        .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt())
                        .sum();
                    let mean_d = 2.0 * b.radius_px.iter().sum::<f64>() / b.radius_px.len().max(1) as f64;
                    lines.push((
                        format!("{:>2} {:<6} {:>5.0} {:>4.1}", b.id, b.label, len, mean_d),
                        colors::label_color(&b.label),
                    ));
                }
            }
        }
    }
    set_lines(&mut commands, e, lines);
}

fn tips_panel(
    mut commands: Commands,
    tips: Res<TipState>,
    time: Res<Time>,
    case: Res<CaseState>,
    status: Res<Status>,
    blocks: Query<(Entity, &PanelText)>,
) {
    let Some((e, _)) = blocks.iter().find(|(_, w)| **w == PanelText::Tips) else { return };
    if !tips.is_changed()
        && !case.is_changed()
        && !status.is_changed()
        && time.elapsed_secs() % 0.25 > time.delta_secs()
    {
        return;
    }
    let now = time.elapsed_secs_f64();
    let mut lines =
        vec![(format!("Tips   target: {}", case.selected_target().map_or("none", |t| t.name.as_str())), colors::DIM)];
    if let LinkState::Lost(why) = &status.tracker {
        lines.push((format!("TRACKER LOST: {why}"), colors::ALARM));
    }
    if tips.tools.is_empty() {
        lines.push(("no tracked tool".into(), colors::DIM));
    }
    for (tool, track) in &tips.tools {
        let age_ms = (now - track.received_s) * 1e3 + track.last.age_ms;
        let state = if track.stale { "STALE" } else { "live" };
        lines.push((
            format!("{tool}  {state}  age {age_ms:.0} ms"),
            if track.stale { colors::WARN } else { colors::TIP },
        ));
        match &track.last.snap {
            Some(s) => lines.push((
                format!("  {} {:.1} mm from ostium, {:.1} mm off vessel", s.label, s.arc_mm, s.off_vessel_mm.max(0.0)),
                colors::label_color(&s.label),
            )),
            None => lines.push(("  not on the tree".into(), colors::WARN)),
        }
        if let Some(g) = &track.guidance {
            let arrived = g.path_mm <= navigation::guidance::ARRIVED_WITHIN_MM;
            lines.push((
                if arrived {
                    format!("  AT {} ({:.1} mm)", g.target, g.path_mm)
                } else {
                    format!("  to {}: {:.1} mm along tree ({:.1} straight)", g.target, g.path_mm, g.straight_mm)
                },
                if arrived { colors::GOOD } else { colors::TEXT },
            ));
        }
    }
    set_lines(&mut commands, e, lines);
}

fn device_panel(
    mut commands: Commands,
    device: Res<DeviceState>,
    status: Res<Status>,
    blocks: Query<(Entity, &PanelText)>,
) {
    if !device.is_changed() && !status.is_changed() {
        return;
    }
    let Some((e, _)) = blocks.iter().find(|(_, w)| **w == PanelText::Device) else { return };
    let mut lines = vec![(
        format!("Device  {}", if device.program.is_empty() { "-" } else { device.program.as_str() }),
        colors::DIM,
    )];
    if let LinkState::Lost(why) = &status.device {
        lines.push((format!("DEVICE LOST: {why}"), colors::ALARM));
    }
    if !status.step.is_empty() {
        lines.push((format!("Step: {}", status.step), colors::TEXT));
    }
    for alarm in device.safety.iter().rev().take(2) {
        lines.push((format!("ALARM {alarm}"), colors::ALARM));
    }
    for r in device.results.iter().rev().take(5) {
        let what = match (r.capture_threshold_volts, r.phrenic_threshold_volts) {
            (Some(c), Some(p)) => format!("capture {c:.1} V, PNS {p:.1} V"),
            (Some(c), None) => format!("capture {c:.1} V"),
            (None, Some(p)) => format!("PNS {p:.1} V"),
            (None, None) if r.complete => "no threshold".to_owned(),
            (None, None) => "INCOMPLETE".to_owned(),
        };
        lines.push((
            format!("{} {} {}: {what}", r.site, r.test, r.vector.as_deref().unwrap_or("")),
            if r.complete { colors::TEXT } else { colors::WARN },
        ));
    }
    set_lines(&mut commands, e, lines);
}

fn sites_panel(
    mut commands: Commands,
    sites: Res<SiteTable>,
    blocks: Query<(Entity, &PanelText)>,
    mut first: Local<bool>,
) {
    if *first && !sites.is_changed() {
        return;
    }
    *first = true;
    let Some((e, _)) = blocks.iter().find(|(_, w)| **w == PanelText::Sites) else { return };
    let mut lines = vec![("Rank  site  vein  vector  score".to_owned(), colors::DIM)];
    if sites.ranking.is_empty() {
        for s in &sites.sites {
            lines.push((format!("{}  tested, not ranked yet", s.site), colors::DIM));
        }
        if sites.sites.is_empty() {
            lines.push(("no site tested".into(), colors::DIM));
        }
    }
    for r in &sites.ranking {
        let site = sites.sites.iter().find(|s| s.site == r.site);
        let vein = site.and_then(|s| s.vein.clone()).unwrap_or_default();
        let colour = match (r.eligible, r.rank) {
            (true, 1) => colors::GOOD,
            (true, _) => colors::TEXT,
            (false, _) => colors::ALARM,
        };
        let score = r.score.map_or_else(|| "not eligible".to_owned(), |s| format!("{s:.2}"));
        lines.push((
            format!("{}. {}  {vein}  {}  {score}", r.rank, r.site, r.best_vector.as_deref().unwrap_or("-")),
            colour,
        ));
        if !r.eligible
            && let Some(reason) = r.reasons.first()
        {
            lines.push((format!("   {reason}"), colors::DIM));
        }
        // The vectors paced there: threshold, PNS, impedance, QLV.
        for v in site.map_or(&[][..], |s| s.vectors.as_slice()) {
            lines.push((format!("   {}", vector_line(v)), colors::DIM));
        }
    }
    set_lines(&mut commands, e, lines);
}

/// One tested vector, compact: name, capture threshold, phrenic threshold (or none at the
/// screen output), impedance (Z, ohm) and QLV (ms).
fn vector_line(v: &device_link::runner::VectorResult) -> String {
    use device_link::procedures::{PhrenicOutcome, ThresholdOutcome};
    use device_link::runner::Run;
    let threshold = match &v.threshold {
        Run::Complete { result: ThresholdOutcome::Threshold { value, at_floor: false } } => format!("{value:.1}V"),
        Run::Complete { result: ThresholdOutcome::Threshold { value, at_floor: true } } => format!("<={value:.1}V"),
        Run::Complete { result: ThresholdOutcome::NoCaptureAtStart { start } } => format!(">{start:.0}V"),
        Run::Incomplete { .. } => "thr ?".to_owned(),
    };
    let phrenic = match &v.phrenic {
        Run::Complete { result: PhrenicOutcome::Threshold { volts } } => format!("PNS {volts:.1}V"),
        Run::Complete { result: PhrenicOutcome::NoneAtScreen { .. } } => "no PNS".to_owned(),
        Run::Incomplete { .. } => "PNS ?".to_owned(),
    };
    let measured = v
        .measurements
        .map_or_else(|| "Z ? QLV ?".to_owned(), |m| format!("Z{:.0} QLV{:.0}", m.impedance_ohm, m.qlv_ms));
    format!("{:<10} {threshold} {phrenic} {measured}", v.name)
}

fn egm_strip(
    device: Res<DeviceState>,
    layout: Res<Layout>,
    lines: Query<&Mesh2d, With<EgmLine>>,
    mut meshes: ResMut<Assets<Mesh>>,
) {
    if !device.is_changed() && !layout.is_changed() {
        return;
    }
    let (w, h) = (layout.egm.w, layout.egm.h);
    let n = (super::model::EGM_WINDOW_S * device.egm_rate_hz) as usize;
    let positions: Vec<[f32; 3]> = device
        .egm_mv
        .iter()
        .enumerate()
        .map(|(k, mv)| {
            // Oldest at the left; +-10 mV fills the strip.
            let x = -w / 2.0 + w * (k + n.saturating_sub(device.egm_mv.len())) as f32 / n.max(1) as f32;
            [x, (mv / 10.0).clamp(-1.0, 1.0) * h * 0.45, 0.0]
        })
        .collect();
    for mesh in &lines {
        if let Some(mut m) = meshes.get_mut(&mesh.0) {
            m.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions.clone());
        }
    }
}

fn beat_marks(device: Res<DeviceState>, mut boxes: Query<(&BeatBox, &mut BackgroundColor)>) {
    if !device.is_changed() {
        return;
    }
    let offset = BEATS_KEPT - device.beats.len().min(BEATS_KEPT);
    for (b, mut colour) in &mut boxes {
        let beat = b.0.checked_sub(offset).and_then(|k| device.beats.get(k));
        colour.0 = match beat {
            None => Color::NONE,
            Some(m) if m.phrenic => colors::ALARM,
            Some(m) => match m.capture {
                Capture::Captured => colors::GOOD,
                Capture::Lost => colors::WARN,
                Capture::NotPaced => colors::DIM,
            },
        };
    }
}
