//! Recording a csnav session: the command-line options and the default file name, and the
//! conversions from csnav's navigation types to recording records (the tip pipeline that
//! turns a tracker sample into what the display shows is here, so that the live commands,
//! the simulated session and the replay compute it the same way).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use nalgebra::{Matrix4, Point3};
use navigation::guidance::{DEFAULT_LOOK_AHEAD_MM, Target, guide};
use navigation::registration::Registration;
use navigation::snap::Snapper;
use navigation::tool::ToolCalibration;
use navigation::tree::NavTree3;
use recording::record::{
    Branch3d, Fiducial, GuidanceRecord, RegistrationRecord, SnapRecord, TargetRecord, TipRecord, Tree3d,
};
use recording::{Recorder, RecorderConfig, SessionInfo, SessionMode};
use venogram::geometry::CArmProjection;

use crate::nav_case::NavCase;

/// Recording options of the live commands.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Record the session to this Rerun file (default: DIR/csnav-DATE-TIME-CASE-COMMAND.rrd
    /// under --record-dir).
    #[arg(long, value_name = "FILE", conflicts_with = "no_record")]
    pub record: Option<PathBuf>,
    /// Do not record the session.
    #[arg(long)]
    pub no_record: bool,
    /// Directory of the default recording files.
    #[arg(long, value_name = "DIR", env = "CSNAV_RECORD_DIR", default_value = "recordings")]
    pub record_dir: PathBuf,
}

/// `YYYYMMDD-HHMMSS` (UTC) of a time since the Unix epoch.
pub(crate) fn utc_stamp(unix_s: i64) -> String {
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Opens the session's recording unless `--no-record`; the case is named by its pseudonym.
pub fn open(
    args: &RecordArgs,
    command: &str,
    case_dir: &Path,
    mode: SessionMode,
    config: serde_json::Value,
) -> anyhow::Result<Option<Recorder>> {
    if args.no_record {
        return Ok(None);
    }
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let case_id = std::fs::canonicalize(case_dir).unwrap_or_else(|_| case_dir.to_owned());
    let case_pseudonym = recording::pseudonym::pseudonym(&case_id.to_string_lossy())
        .context("making the case's pseudonym (no key and no place to keep one)")?;
    let path = args.record.clone().unwrap_or_else(|| {
        args.record_dir.join(format!("csnav-{}-{case_pseudonym}-{command}.rrd", utc_stamp(started.as_secs() as i64)))
    });
    let info = SessionInfo {
        software: format!("csnav {}", env!("CARGO_PKG_VERSION")),
        schema: recording::SCHEMA.to_owned(),
        mode,
        case_pseudonym,
        command: command.to_owned(),
        started_unix_ms: started.as_millis() as i64,
        config,
    };
    let recorder = Recorder::create(&path, &info, RecorderConfig::default())?;
    eprintln!("recording to {}", path.display());
    Ok(Some(recorder))
}

/// Says what a finished recording holds (and what it lost).
pub fn finish(recorder: Option<Recorder>) -> anyhow::Result<()> {
    let Some(recorder) = recorder else { return Ok(()) };
    let stats = recorder.finish()?;
    eprintln!("recorded {} ({:.1} MB): {}", stats.path.display(), stats.file_bytes as f64 / 1e6, stats.sent.describe());
    if stats.dropped.total() > 0 {
        eprintln!("WARNING: the recorder could not keep up and dropped {}", stats.dropped.describe());
    }
    Ok(())
}

fn xyz(v: &nalgebra::Vector3<f64>) -> [f64; 3] {
    [v.x, v.y, v.z]
}

fn rows4(m: &Matrix4<f64>) -> [[f64; 4]; 4] {
    std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)]))
}

/// The case's 3D tree as a record.
pub fn tree3d(case: &NavCase, source: &str) -> Tree3d {
    Tree3d {
        source: source.to_owned(),
        branches: case
            .tree
            .branches
            .iter()
            .map(|b| Branch3d {
                parent: b.parent,
                label: b.label.abbreviation().to_owned(),
                points_mm: b.points.iter().map(xyz).collect(),
                radius_mm: b.radius.clone(),
            })
            .collect(),
    }
}

/// The case's registration as a record.
pub fn registration(case: &NavCase) -> RegistrationRecord {
    let reg = &case.registration;
    RegistrationRecord {
        fiducials: case
            .tracker
            .fiducials
            .iter()
            .map(|f| Fiducial { in_tracker_mm: f.in_tracker_mm, in_patient_mm: f.in_patient_mm })
            .collect(),
        fre_rms_mm: reg.fre_rms_mm,
        residuals_mm: reg.residuals_mm.clone(),
        patient_from_tracker: rows4(&reg.patient_from_tracker.to_homogeneous()),
    }
}

/// A target as a record.
pub fn target(case: &NavCase, t: &Target) -> TargetRecord {
    let at = case.tree.point_at(t.branch, t.arc_mm).unwrap_or_default();
    TargetRecord {
        name: t.name.clone(),
        branch: t.branch,
        label: case.tree.branches[t.branch].label.abbreviation().to_owned(),
        arc_mm: t.arc_mm,
        position_mm: xyz(&at),
    }
}

/// Tracker sample to tip record: calibration, registration, snap (with per-tool hysteresis),
/// guidance to the target and projection into each run's image.
pub struct TipPipeline {
    /// The tool calibration.
    pub calibration: ToolCalibration,
    /// The target guidance goes to.
    pub target: Option<Target>,
    /// The views to project into: (run, projection).
    pub views: Vec<(u32, CArmProjection)>,
    snappers: HashMap<String, Snapper>,
}

impl TipPipeline {
    /// A pipeline with the default calibration and no views.
    pub fn new(target: Option<Target>) -> Self {
        Self { calibration: ToolCalibration::default(), target, views: Vec::new(), snappers: HashMap::new() }
    }

    /// One sample of `tool`.
    #[allow(clippy::too_many_arguments, reason = "a sample's fields, named at every call")]
    pub fn process(
        &mut self,
        tree: &NavTree3,
        registration: &Registration,
        tool: &str,
        t_ms: f64,
        tracker_from_sensor: &Matrix4<f64>,
        stale: bool,
        age_ms: f64,
    ) -> TipRecord {
        let tip: Point3<f64> = self.calibration.tip_in_patient(&registration.patient_from_tracker, tracker_from_sensor);
        let snap = self.snappers.entry(tool.to_owned()).or_default().snap(tree, &tip.coords);
        let guidance = match (&snap, &self.target) {
            (Some(s), Some(t)) => guide(tree, s, &tip.coords, t, DEFAULT_LOOK_AHEAD_MM).map(|g| GuidanceRecord {
                target: g.target.clone(),
                path_mm: g.path_mm,
                steer_direction: g.steer_direction.map(|d| xyz(&d)),
            }),
            _ => None,
        };
        TipRecord {
            tool: tool.to_owned(),
            t_ms,
            tracker_from_sensor: rows4(tracker_from_sensor),
            tip_in_sensor_mm: xyz(&self.calibration.tip_in_sensor_mm),
            tip_in_patient_mm: xyz(&tip.coords),
            stale,
            age_ms,
            snap: snap.map(|s| SnapRecord {
                branch: s.branch,
                label: s.label.abbreviation().to_owned(),
                arc_mm: s.arc_mm,
                off_vessel_mm: s.off_vessel_mm,
            }),
            guidance,
            projections_px: self
                .views
                .iter()
                .filter_map(|(run, p)| p.project(&tip).map(|xy| (*run, [xy.x, xy.y])))
                .collect(),
        }
    }
}

impl TipPipeline {
    /// A tracker sample as it arrived (live: not stale, no age) on the case's tree and
    /// registration.
    pub fn process_sample(&mut self, case: &NavCase, sample: &navigation::tracking::ToolSample) -> TipRecord {
        self.process(
            &case.tree,
            &case.registration,
            &sample.tool,
            sample.received_ms,
            &sample.tracker_from_sensor,
            false,
            0.0,
        )
    }
}

/// The recorded form of a tracker matrix, back to a matrix.
pub fn matrix4(rows: &[[f64; 4]; 4]) -> Matrix4<f64> {
    Matrix4::from_fn(|r, c| rows[r][c])
}

#[cfg(test)]
mod tests {
    use super::utc_stamp;

    #[test]
    fn utc_stamps_follow_the_civil_calendar() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_795_478_399), "20261123-235959");
    }
}
