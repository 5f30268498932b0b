//! The entity tree and timelines of a csnav recording (docs/recording.md describes them for
//! readers of the files). Names given by users (tools, sites, targets) are made safe for an
//! entity path: anything but letters, digits, `-` and `_` becomes `_`.

/// Procedure wall time (timestamp, ns since the Unix epoch) of every row.
pub const WALL_TIME: &str = "wall_time";
/// The cine frame index (per run; the run is in the entity path).
pub const CINE_FRAME: &str = "cine_frame";
/// The component that holds each csnav record whole, as JSON (see [`crate::record::Stored`]).
pub const RECORD_COMPONENT: &str = "csnav.record";

/// Session metadata (static).
pub const SESSION: &str = "session";
/// Root of the spatial scene: patient LPS, mm.
pub const WORLD: &str = "world";
/// The 3D tree.
pub const TREE_3D: &str = "world/tree3d";
/// The registration fiducials and residuals.
pub const REGISTRATION: &str = "world/registration";
/// Log of navigation events (branch changes, stale tools, registration).
pub const NAVIGATION_LOG: &str = "navigation/log";
/// Device commands and results.
pub const DEVICE_LOG: &str = "device/log";
/// Device events (beats, programs, safe pacing).
pub const DEVICE_EVENTS: &str = "device/events";
/// Safety events (safe pacing, emergency, refused commands) with levels.
pub const DEVICE_SAFETY: &str = "device/safety";
/// Per-beat LV capture (1) or loss (0).
pub const BEAT_CAPTURE: &str = "device/beats/capture";
/// Per-beat delivered amplitude, volts.
pub const BEAT_AMPLITUDE: &str = "device/beats/amplitude_volts";
/// Test results at sites.
pub const DEVICE_RESULTS: &str = "device/results";
/// Everything measured at each site (the ranking's input).
pub const DEVICE_SITES: &str = "device/sites";
/// The candidate sites ranked (a table, replaced at each new ranking).
pub const DEVICE_RANKING: &str = "device/ranking";
/// Electrogram channels.
pub const EGM_CHANNELS: [&str; 3] = ["device/egm/lv_tip_mv", "device/egm/lv_ring_mv", "device/egm/ecg_mv"];
/// The recorder's own messages (dropped items).
pub const RECORDER_LOG: &str = "notes/recorder";

/// A user-given name made safe for one entity path part.
#[must_use]
pub fn safe_part(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() { "_".to_owned() } else { s }
}

/// A run's camera entity (`Transform3D` + `Pinhole`).
#[must_use]
pub fn run(run: u32) -> String {
    format!("world/runs/run{run}")
}

/// A run's image entity (its frames).
#[must_use]
pub fn run_image(run: u32) -> String {
    format!("world/runs/run{run}/image")
}

/// A run's segmentation mask.
#[must_use]
pub fn run_mask(run: u32) -> String {
    format!("world/runs/run{run}/image/mask")
}

/// A run's labelled 2D tree.
#[must_use]
pub fn run_tree(run: u32) -> String {
    format!("world/runs/run{run}/image/tree")
}

/// A run's tree nodes (bifurcations and root).
#[must_use]
pub fn run_nodes(run: u32) -> String {
    format!("world/runs/run{run}/image/tree/nodes")
}

/// A tool's tip projected into a run's image.
#[must_use]
pub fn run_tip(run: u32, tool: &str) -> String {
    format!("world/runs/run{run}/image/tips/{}", safe_part(tool))
}

/// A tool's tip in 3D (and its `csnav.record`).
#[must_use]
pub fn tip(tool: &str) -> String {
    format!("world/tips/{}", safe_part(tool))
}

/// The guidance arrow from a tool's tip.
#[must_use]
pub fn guidance(tool: &str) -> String {
    format!("world/tips/{}/guidance", safe_part(tool))
}

/// A target in 3D.
#[must_use]
pub fn target(name: &str) -> String {
    format!("world/targets/{}", safe_part(name))
}

/// A scalar of a tool (`arc_mm`, `off_vessel_mm`, `age_ms`, `path_to_target_mm`).
#[must_use]
pub fn tool_scalar(tool: &str, scalar: &str) -> String {
    format!("navigation/{}/{scalar}", safe_part(tool))
}

/// A threshold scalar of a site and vector (`capture_volts`, `phrenic_volts`).
#[must_use]
pub fn threshold(site: &str, vector: &str, which: &str) -> String {
    format!("device/thresholds/{}/{}/{which}", safe_part(site), safe_part(vector))
}

/// A note's topic log.
#[must_use]
pub fn notes(topic: &str) -> String {
    format!("notes/{}", safe_part(topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_become_single_safe_path_parts() {
        assert_eq!(safe_part("lateral mid/1"), "lateral_mid_1");
        assert_eq!(safe_part(""), "_");
        assert_eq!(target("PLV@0.5"), "world/targets/PLV_0_5");
        assert_eq!(threshold("PLV@0.5", "D1-M2", "capture_volts"), "device/thresholds/PLV_0_5/D1-M2/capture_volts");
    }
}
