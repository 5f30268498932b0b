//! Review mode's tools (`csnav review`): a click in a venogram view acts with the current
//! tool, the source makes the edit and sends the tree back. Keys: X remove a branch (and what
//! is distal to it), L rename (each click moves the branch to the next label), A add a branch
//! (click where it leaves the tree, then where it ends; Esc cancels), O move the ostium seed
//! (segments the run again), T add or remove a candidate target, S save the plan.

use bevy::prelude::*;

use super::layout::{ImageFit, Layout};
use super::model::{CaseState, Status};
use super::{UiCommand, UiCommands};
use crate::review::ReviewAction;

/// The tool a click uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Resource)]
pub enum ReviewTool {
    /// Remove the clicked branch and everything distal to it.
    #[default]
    Remove,
    /// Give the clicked branch the next label.
    Rename,
    /// Add a branch: first click on the tree, second where it ends.
    Add,
    /// Move the ostium seed to the click and segment again.
    Seed,
    /// Add a target at the click, or remove the one there.
    Target,
}

impl ReviewTool {
    /// The tool's name, for the header.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Remove => "remove",
            Self::Rename => "rename",
            Self::Add => "add branch",
            Self::Seed => "seed",
            Self::Target => "target",
        }
    }

    /// What a click does with the tool, for the step line.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Remove => "X: a click removes the branch and what is distal to it",
            Self::Rename => "L: a click gives the branch the next label",
            Self::Add => "A: click where the branch leaves the tree, then where it ends (Esc cancels)",
            Self::Seed => "O: a click moves the ostium seed and segments the run again",
            Self::Target => "T: a click puts a target on the branch, or removes the one there",
        }
    }
}

/// The first click of a branch being added: (run, image px).
#[derive(Debug, Default, Resource)]
struct PendingAdd(Option<(u32, [f64; 2])>);

/// The review tools plugin.
pub struct ReviewPlugin;

impl Plugin for ReviewPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ReviewTool>()
            .init_resource::<PendingAdd>()
            .add_systems(Update, (tool_keys, clicks).chain());
    }
}

fn send(commands: Option<&UiCommands>, action: ReviewAction) {
    if let Some(tx) = commands {
        // The source may have stopped; nothing to do then.
        let _ = tx.0.send(UiCommand::Review(action));
    }
}

fn tool_keys(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    mut tool: ResMut<ReviewTool>,
    mut pending: ResMut<PendingAdd>,
    mut status: ResMut<Status>,
) {
    let Some(keys) = keys else { return };
    for (key, t) in [
        (KeyCode::KeyX, ReviewTool::Remove),
        (KeyCode::KeyL, ReviewTool::Rename),
        (KeyCode::KeyA, ReviewTool::Add),
        (KeyCode::KeyO, ReviewTool::Seed),
        (KeyCode::KeyT, ReviewTool::Target),
    ] {
        if keys.just_pressed(key) {
            *tool = t;
            pending.0 = None;
            t.describe().clone_into(&mut status.step);
        }
    }
    if keys.just_pressed(KeyCode::Escape) && pending.0.take().is_some() {
        status.step = "branch cancelled".into();
    }
    // S (save) is the input plugin's: `UiCommand::SavePlan`.
}

/// The venogram view under the cursor and the image pixel there: (run number, image px).
fn picked(case: &CaseState, layout: &Layout, cursor: Vec2) -> Option<(u32, [f64; 2])> {
    case.runs.iter().enumerate().find_map(|(k, state)| {
        let info = &state.run.info;
        let fit = ImageFit::new(layout.slot(k), info.columns, info.rows);
        fit.image_from_screen([cursor.x, cursor.y]).map(|xy| (info.run, xy))
    })
}

#[allow(clippy::too_many_arguments, reason = "a Bevy system's parameters")]
fn clicks(
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    windows: Query<&Window>,
    layout: Res<Layout>,
    case: Res<CaseState>,
    tool: Res<ReviewTool>,
    mut pending: ResMut<PendingAdd>,
    mut status: ResMut<Status>,
    commands: Option<Res<UiCommands>>,
) {
    let Some(buttons) = buttons else { return };
    if !buttons.just_pressed(MouseButton::Left) {
        return;
    }
    let Some(window) = windows.iter().next() else { return };
    let Some(cursor) = window.cursor_position().map(|p| p * window.scale_factor()) else { return };
    let Some((run, xy)) = picked(&case, &layout, cursor) else { return };
    let action = match *tool {
        ReviewTool::Remove => ReviewAction::Remove { run, xy },
        ReviewTool::Rename => ReviewAction::Rename { run, xy, label: None },
        ReviewTool::Seed => ReviewAction::MoveSeed { run, xy },
        ReviewTool::Target => ReviewAction::Target { run, xy, name: None },
        ReviewTool::Add => match pending.0.take() {
            Some((first_run, from_xy)) if first_run == run => ReviewAction::AddBranch { run, from_xy, to_xy: xy },
            _ => {
                pending.0 = Some((run, xy));
                status.step = format!("new branch from ({:.0}, {:.0}): click where it ends", xy[0], xy[1]);
                return;
            }
        },
    };
    send(commands.as_deref(), action);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use recording::record::{RunInfo, Segmentation2d};

    use super::*;
    use crate::app::model::RunState;
    use crate::case_runs::LoadedRun;

    fn run(number: u32) -> RunState {
        let tree = Segmentation2d {
            run: number,
            frame: 0,
            branches: Vec::new(),
            bifurcations_px: Vec::new(),
            root_px: None,
            empty_reason: None,
        };
        let info = RunInfo {
            run: number,
            source: format!("run{number}.dcm"),
            rows: 512,
            columns: 512,
            frame_count: 1,
            bits_stored: 12,
            frame_time_ms: None,
            primary_angle_deg: None,
            secondary_angle_deg: None,
            camera: None,
        };
        let loaded = LoadedRun {
            info,
            projection: None,
            segmented_frame: 0,
            tree: tree.clone(),
            mask: None,
            samples: vec![0; 512 * 512],
            window: (2048.0, 4096.0),
        };
        RunState { run: Arc::new(loaded), projection: None, tree }
    }

    #[test]
    fn a_click_picks_the_view_under_it_and_the_image_pixel() {
        let layout = Layout::for_size(1920.0, 1080.0);
        let case = CaseState { runs: vec![run(1), run(2)], ..CaseState::default() };
        for (k, number) in [(0, 1), (1, 2)] {
            let fit = ImageFit::new(layout.slot(k), 512, 512);
            let [sx, sy] = fit.screen_from_image([100.0, 300.0]);
            let (picked_run, xy) = picked(&case, &layout, Vec2::new(sx, sy)).unwrap();
            assert_eq!(picked_run, number);
            assert!((xy[0] - 100.0).abs() < 0.05 && (xy[1] - 300.0).abs() < 0.05, "{xy:?}");
        }
        let r = layout.view3d;
        assert_eq!(
            picked(&case, &layout, Vec2::new(r.x + r.w / 2.0, r.y + r.h / 2.0)),
            None,
            "the 3D view picks nothing"
        );
    }
}
