//! What a csnav session sends to its recording: one typed [`Record`] per thing that happened.
//! Every record but a cine frame is also stored whole, as JSON, in the `csnav.record`
//! component next to the Rerun archetypes that show it, so that a replay re-drives csnav's
//! own pipeline from exactly the numbers the live session had (f64, no rounding).

use device_link::protocol::{Command, DeviceError, EgmChunk, Event, Reply};
use device_link::ranking::{RankedSite, SiteRecord};
use serde::{Deserialize, Serialize};

/// Where a session's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// A live procedure (tracker, device and images from the cath lab).
    Live,
    /// The synthetic patient: nothing in the recording is from a person.
    Simulator,
}

/// Session metadata: the first record of every recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Software and version that made the recording, e.g. `csnav 0.1.0`.
    pub software: String,
    /// The recording format (`csnav.recording/1`).
    pub schema: String,
    /// Live or simulator.
    pub mode: SessionMode,
    /// The case, pseudonymised (see [`crate::pseudonym`]).
    pub case_pseudonym: String,
    /// The command that made the session, e.g. `sim-session`.
    pub command: String,
    /// Start of the session, ms since the Unix epoch.
    pub started_unix_ms: i64,
    /// The session's configuration (command-line settings), as given.
    pub config: serde_json::Value,
}

/// The pinhole camera of a C-arm view, for the 3D and 2D views to line up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewCamera {
    /// Intrinsic matrix `K` (pixels from view coordinates), row-major.
    pub intrinsics: [[f64; 3]; 3],
    /// Rotation whose rows are the image column axis, row axis and beam direction (patient LPS).
    pub view_from_patient_rotation: [[f64; 3]; 3],
    /// X-ray source position, patient mm.
    pub source_in_patient_mm: [f64; 3],
    /// Source to detector distance, mm (absent in recordings made before csnav kept it).
    #[serde(default)]
    pub distance_source_to_detector_mm: Option<f64>,
}

/// A venogram run (an XA cine): logged once, before its frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run number in the session (1-based), the entity `/world/runs/run{N}`.
    pub run: u32,
    /// Where it came from (file name), never a patient identifier.
    pub source: String,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub columns: u32,
    /// Frames in the run.
    pub frame_count: u32,
    /// Bits stored per pixel.
    pub bits_stored: u16,
    /// Time between frames, ms, when known.
    pub frame_time_ms: Option<f64>,
    /// C-arm primary angle (LAO positive), degrees, when known.
    pub primary_angle_deg: Option<f64>,
    /// C-arm secondary angle (cranial positive), degrees, when known.
    pub secondary_angle_deg: Option<f64>,
    /// The view's camera, when the geometry is known.
    pub camera: Option<ViewCamera>,
}

/// One 2D branch of a segmented tree (pixels, csnav convention: pixel centres at integers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch2d {
    /// Identifier in the tree.
    pub id: u32,
    /// Parent branch.
    pub parent: Option<u32>,
    /// Label abbreviation (CS, GCV, ..., `branch`).
    pub label: String,
    /// Centerline, `(x, y)` pixels, proximal to distal.
    pub points_px: Vec<[f64; 2]>,
    /// Radius at each point, pixels.
    pub radius_px: Vec<f64>,
}

/// A segmentation of one frame: the labelled tree (the mask travels as an image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segmentation2d {
    /// Run.
    pub run: u32,
    /// Frame segmented (0-based).
    pub frame: u32,
    /// Branches.
    pub branches: Vec<Branch2d>,
    /// Bifurcations, `(x, y)` pixels.
    pub bifurcations_px: Vec<[f64; 2]>,
    /// The root (ostium), `(x, y)` pixels.
    pub root_px: Option<[f64; 2]>,
    /// Why the tree is empty, when it is.
    pub empty_reason: Option<String>,
}

/// One 3D branch of the navigation tree (patient LPS mm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch3d {
    /// Parent branch index.
    pub parent: Option<usize>,
    /// Label abbreviation.
    pub label: String,
    /// Centerline, patient mm, proximal to distal.
    pub points_mm: Vec<[f64; 3]>,
    /// Radius at each point, mm.
    pub radius_mm: Vec<f64>,
}

/// The 3D tree navigation snaps to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree3d {
    /// Where it came from (`simulator truth`, `reconstruction`).
    pub source: String,
    /// Branches, parents before children.
    pub branches: Vec<Branch3d>,
}

/// A fiducial of the tracker registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fiducial {
    /// In tracker space, mm.
    pub in_tracker_mm: [f64; 3],
    /// In patient space, mm.
    pub in_patient_mm: [f64; 3],
}

/// The tracker-to-patient registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationRecord {
    /// The fiducial pairs it was computed from.
    pub fiducials: Vec<Fiducial>,
    /// Fiducial registration error, RMS mm.
    pub fre_rms_mm: f64,
    /// Residual at each fiducial, mm.
    pub residuals_mm: Vec<f64>,
    /// `patient_from_tracker`, row-major 4x4.
    pub patient_from_tracker: [[f64; 4]; 4],
}

/// A target site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// Its name.
    pub name: String,
    /// Branch index in the 3D tree.
    pub branch: usize,
    /// Label of that branch.
    pub label: String,
    /// Arc length from the ostium, mm.
    pub arc_mm: f64,
    /// Position, patient mm.
    pub position_mm: [f64; 3],
}

/// Where a tip snapped on the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapRecord {
    /// Branch index.
    pub branch: usize,
    /// Branch label.
    pub label: String,
    /// Arc length from the ostium, mm.
    pub arc_mm: f64,
    /// Distance outside the vessel wall, mm (0 inside).
    pub off_vessel_mm: f64,
}

/// Guidance from a tip to the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidanceRecord {
    /// Target name.
    pub target: String,
    /// Path along the tree, mm.
    pub path_mm: f64,
    /// Unit steering direction for the magnetic field, when there is one.
    pub steer_direction: Option<[f64; 3]>,
}

/// A tip sample and what csnav made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TipRecord {
    /// Tool name.
    pub tool: String,
    /// Session time the sample arrived, ms.
    pub t_ms: f64,
    /// The sensor pose as the tracker sent it, row-major 4x4 (tracker mm).
    pub tracker_from_sensor: [[f64; 4]; 4],
    /// The tip in sensor coordinates used (the tool calibration), mm.
    pub tip_in_sensor_mm: [f64; 3],
    /// The tip in patient space, mm.
    pub tip_in_patient_mm: [f64; 3],
    /// Whether the tool was stale (no fresh sample within the limit).
    pub stale: bool,
    /// Age of the sample when shown, ms.
    pub age_ms: f64,
    /// The snap, when on the tree.
    pub snap: Option<SnapRecord>,
    /// Guidance to the target, when there is one.
    pub guidance: Option<GuidanceRecord>,
    /// Projection of the tip into each run's image, `(run, [x, y])` pixels.
    pub projections_px: Vec<(u32, [f64; 2])>,
}

/// A device command and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCommandRecord {
    /// Session time, ms.
    pub t_ms: f64,
    /// Site name.
    pub site: Option<String>,
    /// Who sent it.
    pub who: String,
    /// The command.
    pub command: Command,
    /// Its result.
    pub result: Result<Reply, DeviceError>,
}

/// Something the device reported (beats, program changes, safe pacing). EGM travels apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEventRecord {
    /// Session time, ms.
    pub t_ms: f64,
    /// Site name.
    pub site: Option<String>,
    /// The event.
    pub event: Event,
}

/// The result of a test at a site (capture threshold, PNS, a sweep's vector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResultRecord {
    /// Site name.
    pub site: String,
    /// Test (`threshold`, `pw-threshold`, `pns`, `sweep`).
    pub test: String,
    /// Vector name, e.g. `D1-M2`.
    pub vector: Option<String>,
    /// The LV capture threshold found, volts (amplitude tests).
    pub capture_threshold_volts: Option<f64>,
    /// The phrenic threshold found, volts.
    pub phrenic_threshold_volts: Option<f64>,
    /// Whether the test ran to its end.
    pub complete: bool,
    /// The whole result as the command printed it.
    pub detail: serde_json::Value,
}

/// The candidate sites ranked (a struct: the stored form is an internally tagged enum, which
/// cannot hold a bare list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingRecord {
    /// Best first.
    pub sites: Vec<RankedSite>,
}

/// Severity of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Information.
    Info,
    /// Something to look at.
    Warn,
    /// Something went wrong.
    Error,
    /// Patient safety.
    Critical,
}

/// A free text note (link state, a user action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    /// Where it belongs, e.g. `navigation` or `device`.
    pub topic: String,
    /// Severity.
    pub level: Level,
    /// The text.
    pub text: String,
}

/// A shared, reference-counted byte buffer (Arrow's): frames of one cine can be slices of it.
pub type FrameBuffer = rerun::external::arrow::buffer::Buffer;

/// Grey levels of one cine frame, owned (moved in, never copied by the recorder).
#[derive(Debug, Clone)]
pub enum FramePixels {
    /// 8-bit samples, row-major.
    U8(Vec<u8>),
    /// Up to 16-bit samples, row-major (bytes of the buffer are little-endian u16).
    U16(FrameBuffer),
}

impl FramePixels {
    /// 16-bit samples from a vector, without copying them.
    #[must_use]
    pub fn from_u16(samples: Vec<u16>) -> Self {
        Self::U16(FrameBuffer::from_vec(samples))
    }

    /// Number of pixels.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(b) => b.len() / 2,
        }
    }

    /// Whether there are no pixels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One frame of a run.
#[derive(Debug, Clone)]
pub struct FrameRecord {
    /// Run.
    pub run: u32,
    /// Frame index in the run (0-based), the `cine_frame` timeline.
    pub index: u32,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub columns: u32,
    /// Pixels.
    pub pixels: FramePixels,
}

/// A vessel mask of one frame (255 = vessel).
#[derive(Debug, Clone)]
pub struct MaskRecord {
    /// Run.
    pub run: u32,
    /// Frame.
    pub frame: u32,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub columns: u32,
    /// Mask samples, row-major.
    pub mask: Vec<u8>,
}

/// Everything a session records.
#[derive(Debug, Clone)]
pub enum Record {
    /// A venogram run's description and camera.
    Run(RunInfo),
    /// A cine frame.
    Frame(FrameRecord),
    /// A segmentation mask.
    Mask(MaskRecord),
    /// A segmented 2D tree.
    Tree2d(Segmentation2d),
    /// The 3D tree.
    Tree3d(Tree3d),
    /// The tracker registration.
    Registration(RegistrationRecord),
    /// A target site.
    Target(TargetRecord),
    /// A tip sample.
    Tip(Box<TipRecord>),
    /// A device command and its result.
    DeviceCommand(Box<DeviceCommandRecord>),
    /// A device event.
    DeviceEvent(Box<DeviceEventRecord>),
    /// Electrograms (the device's own stretch, one beat long).
    Egm(EgmChunk),
    /// A test's result.
    TestResult(Box<TestResultRecord>),
    /// Everything measured at a site (the input to the ranking).
    Site(Box<SiteRecord>),
    /// The candidate sites ranked, best first.
    Ranking(RankingRecord),
    /// A note.
    Note(NoteRecord),
}

/// The kinds of record, for counting what was sent and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// [`Record::Run`].
    Run,
    /// [`Record::Frame`].
    Frame,
    /// [`Record::Mask`].
    Mask,
    /// [`Record::Tree2d`].
    Tree2d,
    /// [`Record::Tree3d`].
    Tree3d,
    /// [`Record::Registration`].
    Registration,
    /// [`Record::Target`].
    Target,
    /// [`Record::Tip`].
    Tip,
    /// [`Record::DeviceCommand`].
    DeviceCommand,
    /// [`Record::DeviceEvent`].
    DeviceEvent,
    /// [`Record::Egm`].
    Egm,
    /// [`Record::TestResult`].
    TestResult,
    /// [`Record::Site`].
    Site,
    /// [`Record::Ranking`].
    Ranking,
    /// [`Record::Note`].
    Note,
}

impl RecordKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 15] = [
        Self::Run,
        Self::Frame,
        Self::Mask,
        Self::Tree2d,
        Self::Tree3d,
        Self::Registration,
        Self::Target,
        Self::Tip,
        Self::DeviceCommand,
        Self::DeviceEvent,
        Self::Egm,
        Self::TestResult,
        Self::Site,
        Self::Ranking,
        Self::Note,
    ];

    /// Its name in messages (`tip samples`, `cine frames`...).
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Run => "run descriptions",
            Self::Frame => "cine frames",
            Self::Mask => "segmentation masks",
            Self::Tree2d => "2D trees",
            Self::Tree3d => "3D trees",
            Self::Registration => "registrations",
            Self::Target => "targets",
            Self::Tip => "tip samples",
            Self::DeviceCommand => "device commands",
            Self::DeviceEvent => "device events",
            Self::Egm => "EGM stretches",
            Self::TestResult => "test results",
            Self::Site => "site records",
            Self::Ranking => "site rankings",
            Self::Note => "notes",
        }
    }

    /// Index into [`Self::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Record {
    /// A device event as recorded: an EGM stretch as [`Record::Egm`], anything else as
    /// [`Record::DeviceEvent`].
    #[must_use]
    pub fn device_event(t_ms: f64, site: Option<&str>, event: &Event) -> Self {
        match event {
            Event::Egm(chunk) => Self::Egm(chunk.clone()),
            other => Self::DeviceEvent(Box::new(DeviceEventRecord {
                t_ms,
                site: site.map(str::to_owned),
                event: other.clone(),
            })),
        }
    }

    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Run(_) => RecordKind::Run,
            Self::Frame(_) => RecordKind::Frame,
            Self::Mask(_) => RecordKind::Mask,
            Self::Tree2d(_) => RecordKind::Tree2d,
            Self::Tree3d(_) => RecordKind::Tree3d,
            Self::Registration(_) => RecordKind::Registration,
            Self::Target(_) => RecordKind::Target,
            Self::Tip(_) => RecordKind::Tip,
            Self::DeviceCommand(_) => RecordKind::DeviceCommand,
            Self::DeviceEvent(_) => RecordKind::DeviceEvent,
            Self::Egm(_) => RecordKind::Egm,
            Self::TestResult(_) => RecordKind::TestResult,
            Self::Site(_) => RecordKind::Site,
            Self::Ranking(_) => RecordKind::Ranking,
            Self::Note(_) => RecordKind::Note,
        }
    }
}

/// The records a replay reads back (everything but pixels and EGM samples), as stored in the
/// `csnav.record` component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Stored {
    /// Session metadata.
    Session(SessionInfo),
    /// A run.
    Run(RunInfo),
    /// A 2D tree.
    Tree2d(Segmentation2d),
    /// The 3D tree.
    Tree3d(Tree3d),
    /// The registration.
    Registration(RegistrationRecord),
    /// A target.
    Target(TargetRecord),
    /// A tip sample.
    Tip(TipRecord),
    /// A device command.
    DeviceCommand(DeviceCommandRecord),
    /// A device event.
    DeviceEvent(DeviceEventRecord),
    /// A test result.
    TestResult(TestResultRecord),
    /// Everything measured at a site.
    Site(SiteRecord),
    /// The sites ranked.
    Ranking(RankingRecord),
    /// A note.
    Note(NoteRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_and_ranking_records_round_trip_in_the_stored_form() {
        let site = SiteRecord {
            site: "PLV@0.50".into(),
            vein: Some("PLV".into()),
            arc_mm: Some(61.5),
            apical: false,
            scar: None,
            vectors: Vec::new(),
        };
        let ranked = RankedSite {
            rank: 1,
            site: "PLV@0.50".into(),
            eligible: true,
            best_vector: Some("D1-M2".into()),
            score: Some(0.71),
            reasons: vec!["QLV/QRSd 0.7".into()],
        };
        for stored in [
            Stored::Site(site),
            Stored::Ranking(RankingRecord { sites: vec![ranked] }),
            Stored::Note(NoteRecord { topic: "device".into(), level: Level::Error, text: "Device link LOST".into() }),
        ] {
            let json = serde_json::to_string(&stored).unwrap();
            assert_eq!(serde_json::from_str::<Stored>(&json).unwrap(), stored, "{json}");
        }
    }
}
