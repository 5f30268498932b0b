//! Keyboard and mouse: orbit (left drag), pan (right drag) and zoom (wheel) of the 3D view;
//! standard views (1 AP, 2 LAO 35, 3 RAO 30; arrows orbit by 5 degrees); cine play/hold on
//! the reference frame (space); window (`[` `]`) and level (`-` `=`) of the venogram views;
//! next target (Tab); save the plan (S, review mode). Training mode steers: W/Q wire
//! advance/retract, E/D lead advance/retract, A/Z rotate the wire tip, F (held) the
//! fluoroscopy pedal, C a contrast injection, T test the site, L the next lead on the shelf,
//! Enter leave the lead and end the case.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::prelude::*;

use super::layout::Layout;
use super::model::{CaseState, SelectTarget};
use super::view2d::Cines;
use super::view3d::{Orbit, STANDARD_VIEWS, View3dCamera};
use super::{Mode, UiCommand, UiCommands};

/// The input plugin.
pub struct InputPlugin;

impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, (camera_keys, camera_mouse, cine_keys, target_keys, training_keys));
    }
}

fn camera_keys(keys: Option<Res<ButtonInput<KeyCode>>>, mut orbits: Query<&mut Orbit, With<View3dCamera>>) {
    let Some(keys) = keys else { return };
    for mut orbit in &mut orbits {
        for (key, view) in [(KeyCode::Digit1, 0), (KeyCode::Digit2, 1), (KeyCode::Digit3, 2)] {
            if keys.just_pressed(key) {
                let (_, lao, cranial) = STANDARD_VIEWS[view];
                orbit.lao_deg = lao;
                orbit.cranial_deg = cranial;
            }
        }
        let step = 5.0;
        if keys.just_pressed(KeyCode::ArrowLeft) {
            orbit.lao_deg -= step;
        }
        if keys.just_pressed(KeyCode::ArrowRight) {
            orbit.lao_deg += step;
        }
        if keys.just_pressed(KeyCode::ArrowUp) {
            orbit.cranial_deg = (orbit.cranial_deg + step).min(89.0);
        }
        if keys.just_pressed(KeyCode::ArrowDown) {
            orbit.cranial_deg = (orbit.cranial_deg - step).max(-89.0);
        }
    }
}

/// The cursor in physical px, when over the window.
fn cursor_px(windows: &Query<&Window>) -> Option<Vec2> {
    let window = windows.iter().next()?;
    window.cursor_position().map(|p| p * window.scale_factor())
}

fn camera_mouse(
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    motion: Option<Res<AccumulatedMouseMotion>>,
    scroll: Option<Res<AccumulatedMouseScroll>>,
    windows: Query<&Window>,
    layout: Res<Layout>,
    mut orbits: Query<&mut Orbit, With<View3dCamera>>,
) {
    let (Some(buttons), Some(motion), Some(scroll)) = (buttons, motion, scroll) else { return };
    let Some(cursor) = cursor_px(&windows) else { return };
    let r = layout.view3d;
    if cursor.x < r.x || cursor.y < r.y || cursor.x > r.x + r.w || cursor.y > r.y + r.h {
        return;
    }
    for mut orbit in &mut orbits {
        if buttons.pressed(MouseButton::Left) && motion.delta != Vec2::ZERO {
            orbit.lao_deg -= motion.delta.x * 0.3;
            orbit.cranial_deg = (orbit.cranial_deg + motion.delta.y * 0.3).clamp(-89.0, 89.0);
        }
        if buttons.pressed(MouseButton::Right) && motion.delta != Vec2::ZERO {
            let t = orbit.transform();
            let per_px = orbit.distance_mm / r.h.max(1.0);
            orbit.focus += (-t.right() * motion.delta.x + t.up() * motion.delta.y) * per_px;
        }
        if scroll.delta.y != 0.0 {
            orbit.distance_mm = (orbit.distance_mm * (1.0 - 0.1 * scroll.delta.y.signum())).clamp(40.0, 1500.0);
        }
    }
}

fn cine_keys(keys: Option<Res<ButtonInput<KeyCode>>>, mut cines: ResMut<Cines>) {
    let Some(keys) = keys else { return };
    if keys.just_pressed(KeyCode::Space) {
        cines.playing = !cines.playing;
    }
    let mut scale_width = None;
    let mut shift_level = None;
    if keys.just_pressed(KeyCode::BracketLeft) {
        scale_width = Some(0.9);
    }
    if keys.just_pressed(KeyCode::BracketRight) {
        scale_width = Some(1.1);
    }
    if keys.just_pressed(KeyCode::Minus) {
        shift_level = Some(-0.05);
    }
    if keys.just_pressed(KeyCode::Equal) {
        shift_level = Some(0.05);
    }
    if scale_width.is_some() || shift_level.is_some() {
        for w in &mut cines.window {
            w.0 += shift_level.unwrap_or(0.0) * w.1;
            w.1 = (w.1 * scale_width.unwrap_or(1.0)).max(1.0);
        }
    }
}

fn target_keys(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    case: Res<CaseState>,
    mut select: MessageWriter<SelectTarget>,
    commands: Option<Res<UiCommands>>,
) {
    let Some(keys) = keys else { return };
    if keys.just_pressed(KeyCode::Tab) && !case.targets.is_empty() {
        let next = case.selected.map_or(0, |k| (k + 1) % case.targets.len());
        select.write(SelectTarget(case.targets[next].name.clone()));
    }
    if keys.just_pressed(KeyCode::KeyS)
        && let Some(tx) = commands
    {
        let _ = tx.0.send(UiCommand::SavePlan);
    }
}

/// Wire speed while its key is held, mm/s.
const WIRE_MM_PER_S: f32 = 10.0;
/// Lead speed while its key is held, mm/s.
const LEAD_MM_PER_S: f32 = 5.0;
/// Wire-tip rotation while its key is held, degrees/s.
const ROTATE_DEG_PER_S: f32 = 90.0;

fn training_keys(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    mode: Option<Res<Mode>>,
    time: Res<Time>,
    commands: Option<Res<UiCommands>>,
) {
    use training::session::Action;
    let (Some(keys), Some(mode), Some(tx)) = (keys, mode, commands) else { return };
    if *mode != Mode::Training {
        return;
    }
    let dt = time.delta_secs();
    let send = |action: Action| {
        let _ = tx.0.send(UiCommand::Train(action));
    };
    let held = [
        (KeyCode::KeyW, Action::AdvanceWire { mm: f64::from(WIRE_MM_PER_S * dt) }),
        (KeyCode::KeyQ, Action::RetractWire { mm: f64::from(WIRE_MM_PER_S * dt) }),
        (KeyCode::KeyE, Action::AdvanceLead { mm: f64::from(LEAD_MM_PER_S * dt) }),
        (KeyCode::KeyD, Action::RetractLead { mm: f64::from(LEAD_MM_PER_S * dt) }),
        (KeyCode::KeyA, Action::Rotate { deg: -f64::from(ROTATE_DEG_PER_S * dt) }),
        (KeyCode::KeyZ, Action::Rotate { deg: f64::from(ROTATE_DEG_PER_S * dt) }),
    ];
    for (key, action) in held {
        if keys.pressed(key) {
            send(action);
        }
    }
    if keys.just_pressed(KeyCode::KeyF) {
        send(Action::Fluoro { on: true });
    }
    if keys.just_released(KeyCode::KeyF) {
        send(Action::Fluoro { on: false });
    }
    for (key, action) in
        [(KeyCode::KeyC, Action::Inject), (KeyCode::KeyT, Action::TestSite), (KeyCode::Enter, Action::Finish)]
    {
        if keys.just_pressed(key) {
            send(action);
        }
    }
    if keys.just_pressed(KeyCode::KeyL) {
        let _ = tx.0.send(UiCommand::NextLead);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use bevy::time::TimeUpdateStrategy;
    use training::session::Action;

    use super::*;

    #[test]
    fn training_keys_become_the_trainees_actions_at_their_rates() {
        let (tx, rx) = channel();
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(Mode::Training)
            .insert_resource(UiCommands(tx))
            .insert_resource(ButtonInput::<KeyCode>::default())
            .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(100)))
            .add_systems(Update, training_keys);
        app.update();
        app.update();
        let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
        keys.press(KeyCode::KeyW);
        keys.press(KeyCode::KeyF);
        keys.press(KeyCode::KeyC);
        app.update();
        let actions: Vec<UiCommand> = rx.try_iter().collect();
        let wire = actions.iter().find_map(|a| match a {
            UiCommand::Train(Action::AdvanceWire { mm }) => Some(*mm),
            _ => None,
        });
        // 10 mm/s for the 100 ms frame.
        assert!((wire.expect("wire advanced") - 1.0).abs() < 1e-3, "{actions:?}");
        assert!(actions.contains(&UiCommand::Train(Action::Fluoro { on: true })), "{actions:?}");
        assert!(actions.contains(&UiCommand::Train(Action::Inject)), "{actions:?}");
        // Releasing the pedal stops fluoroscopy; other modes send nothing.
        let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
        keys.clear();
        keys.release(KeyCode::KeyF);
        keys.release(KeyCode::KeyW);
        app.update();
        let actions: Vec<UiCommand> = rx.try_iter().collect();
        assert_eq!(actions, [UiCommand::Train(Action::Fluoro { on: false })]);
        app.insert_resource(Mode::Live);
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyW);
        app.update();
        assert_eq!(rx.try_iter().count(), 0);
    }
}
