//! Command-line interface: what each subcommand does, in terms a clinician-engineer uses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// csnav: guidance workstation for implanting the left-ventricular lead of a CRT device.
///
/// Reads coronary-sinus venograms (X-ray angiography DICOM), and, as it grows, segments the
/// venous tree, tracks guidewire and lead tips and runs pacing tests at candidate sites.
/// RESEARCH SOFTWARE: not a cleared medical device; never use it to make clinical decisions.
#[derive(Debug, Parser)]
#[command(name = "csnav", version, about, long_about)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: a scripted procedure on the bundled synthetic case, end to end (segment
    /// both runs, track a lead tip along two branches, threshold, PNS and vector tests at three
    /// sites, rank them, record to .rrd). With a display it opens the app; without one (or with
    /// --headless) it renders the same screen offscreen and writes screenshots (PNG) of the 3D
    /// and 2D views and the site table, the recording and a summary into --out.
    Demo(DemoArgs),
    /// Simulator mode in the app: the bundled case with a simulated tracker and device model
    /// in process; after the scripted tests, Tab selects a site and the tip is driven there.
    Sim(DemoArgs),
    /// Training: place an LV lead in a scenario's synthetic patient. Steer the guidewire and
    /// the lead from the keyboard (the app), or play a scripted trainee or a script; the tips
    /// stream over OpenIGTLink through csnav's navigation pipeline; fluoroscopy, dose and
    /// contrast are counted; the site is scored against the best site the anatomy offers and
    /// a debrief (debrief.html), the outcome (outcome.json), the script played (script.json)
    /// and the recording (session.rrd) are written to --out.
    Train(TrainArgs),
    /// List the training scenarios in a folder (default: the bundled library) and validate
    /// each: a bad file is reported with its line and field, and the exit status is 2.
    Scenarios(ScenariosArgs),
    /// Summarise X-ray angiography (XA) runs: image size, frames, bit depth, transfer syntax,
    /// C-arm geometry (LAO/RAO, CRA/CAU, distances, pixel spacing), timing and ECG pointers,
    /// and which geometry values were defaulted because the file lacks them.
    ///
    /// Every frame is decoded, so a file that prints here is a file csnav can display.
    /// Patient identifiers are never printed.
    Info(InfoArgs),
    /// Generate a synthetic patient (LV, coronary venous tree, motion, physiology) and render
    /// occlusive CS venogram runs of it as XA DICOM, with ground truth: per view a 2D truth
    /// JSON (centerlines, radii, labels, bifurcations per frame) and a vessel-mask PNG of the
    /// peak-opacification frame, plus the 3D truth (patient.json). Not a patient image.
    Simulate(SimulateArgs),
    /// Segment the coronary-sinus venous tree of a venogram run: pick the best-opacified frame
    /// (or the one given), enhance and segment the vessels, remove catheters, leads and wires,
    /// and write the labelled branch tree (tree.json, schema csnav.tree/1) with the vessel
    /// mask, the vesselness and an overlay picture (PNG).
    Segment(SegmentArgs),
    /// Write a synthetic XA test-pattern run (uncompressed DICOM) for conformance tests,
    /// benchmarks and demonstrations. Not a patient image.
    TestPattern(TestPatternArgs),
    /// Follow tracked guidewire and lead tips: receive OpenIGTLink (TRANSFORM, TDATA,
    /// POSITION) from a tracker, register tracker space to the patient with the case's
    /// fiducials, snap each tip to the case's branch tree and print, per update, the branch,
    /// the arc length from the ostium, the distance outside the vessel and the path to the
    /// target with the steering (magnetic field) direction. Tips older than --stale-ms are
    /// flagged STALE. `--replay FILE` drives the same from a recorded stream.
    Track(TrackArgs),
    /// Test sender: play a tip advancing along the case's ground-truth centerline to a target
    /// over OpenIGTLink, with sensor noise, a rate of 10-1000 Hz and dropouts, to a running
    /// `csnav track` and/or into a file for `csnav track --replay`.
    SendTips(SendTipsArgs),
    /// Run the device model: a pacing system analyzer attached to the case's synthetic patient,
    /// serving the device-link protocol (docs/device-link-protocol.md). Safe pacing whenever the
    /// controlling client stops, leaves, drops or falls silent. Not a medical device.
    DeviceModel(DeviceModelArgs),
    /// Run an LV lead test at a site against a device: `threshold` (step-down amplitude),
    /// `pw-threshold` (step-down pulse width, then amplitude, with a strength-duration fit),
    /// `pns` (capture threshold, phrenic screen and threshold, margin check) or `sweep`
    /// (every vector of the lead, with a time estimate and progress). A test cut short is
    /// reported INCOMPLETE (exit status 3), never as a threshold.
    Device(DeviceArgs),
    /// Rank candidate sites from their `csnav device sweep --json` records: hard gates
    /// (threshold, PNS margin, impedance), then a score from QLV/QRSd, threshold, R wave,
    /// apical position and the lateral wall, with the reason for every rank.
    DeviceRank(DeviceRankArgs),
    /// A scripted session on the synthetic patient, recorded like a live one: the case's
    /// venogram runs read, segmented and recorded with their cameras; a tracked tip advancing
    /// along the tree to the target; a capture-threshold test there over the device link.
    SimSession(SimSessionArgs),
    /// The intraoperative display: follow the tracker (OpenIGTLink, csnav connects and asks
    /// for tracking data) and the device (as an observer) on the case's venogram runs and 3D
    /// tree; lost links are alarms, tips turn stale when their samples stop. Records the
    /// session.
    Live(LiveArgs),
    /// Reconstruct the coronary-sinus tree in 3D from two venogram runs (different angulations):
    /// both segmented at the same cardiac phase, branches matched across the views, centerlines
    /// triangulated; writes tree3d.json (schema csnav.tree3d/1) and tree3d.obj (tubes).
    Reconstruct(ReconstructArgs),
    /// DICOM storage SCP: receive runs from the angiography system. Answers C-ECHO and stores
    /// every C-STORE'd X-ray angiography or secondary-capture instance into --store as
    /// its SOP Instance UID + .dcm, byte for byte as sent (behind a file meta group), atomically (a
    /// file appears complete or not at all). Only the calling AE titles given with --allow may
    /// associate (any, when none are given). Runs until stopped; one line per event on stdout.
    Listen(ListenArgs),
    /// Talk to a PACS (or any DICOM node): `echo` (C-ECHO), `find` (C-FIND at patient, study,
    /// series or image level), `get` (C-MOVE of a study or series to csnav, which receives it
    /// on its own storage SCP for the duration) and `send` (C-STORE of files, each in its own
    /// transfer syntax).
    Pacs(PacsArgs),
    /// Export a run's segmentation for the PACS: the labelled overlay as a Secondary Capture
    /// image and the branch measurements as a Comprehensive SR, both in the run's study and
    /// referencing the segmented frame; optionally sent (C-STORE) with --send.
    Export(ExportArgs),
    /// Pre-procedure review in the app: each venogram run segmented; correct the tree (X remove
    /// a branch, A add one along the vessel, O move the ostium seed, L rename), pick candidate
    /// targets (T) and save a plan (S) for `csnav live --plan`. `--actions FILE` plays a list of
    /// edits; offscreen (`--headless` or no display) the screenshots follow them.
    Review(ReviewArgs),
    /// Benchmark the app: frame times and the latency from a tip sample to the frame that
    /// shows it, offscreen on the bundled case with tips at the tracker's rate, the device
    /// streaming and both runs playing; prints a table and writes it as JSON.
    BenchFrames(BenchFramesArgs),
    /// Replay a recording (`.rrd`) in the app (runs, trees, tips, device panel, sites) with a
    /// display or with --headless; as text otherwise (or with --text, --json, --step): the
    /// navigation panel re-driven through csnav's pipeline and checked against what was shown,
    /// the device panel, at 1x, faster, or stepwise.
    Replay(ReplayArgs),
    /// Summarise a recording: who made it, duration, whether it was closed or cut short,
    /// frames, tip samples, device commands, thresholds, and rows per entity.
    RecordInfo(RecordInfoArgs),
}

/// Arguments of `csnav sim-session`.
#[derive(Debug, Args)]
pub struct SimSessionArgs {
    /// Case directory: patient.json, tracker.json and the venogram runs (*.dcm).
    #[arg(long, value_name = "DIR")]
    pub case: PathBuf,
    /// Target site, NAME=VEIN@FRACTION (default: the middle of the PLV, else of the LMV).
    #[arg(long, value_name = "NAME=VEIN@FRACTION")]
    pub target: Option<String>,
    /// Tool name.
    #[arg(long, default_value = "Guidewire")]
    pub tool: String,
    /// Tracker rate, Hz.
    #[arg(long, default_value_t = 100.0)]
    pub rate_hz: f64,
    /// Speed of the tip along the tree, mm/s.
    #[arg(long, default_value_t = 40.0)]
    pub speed_mm_s: f64,
    /// Tracker noise, mm RMS (3D).
    #[arg(long, default_value_t = 0.3)]
    pub noise_mm: f64,
    /// Seed of the tracker noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Beats per step of the threshold test.
    #[arg(long, default_value_t = 2)]
    pub beats_per_step: u32,
    /// Skip the threshold test.
    #[arg(long)]
    pub no_device: bool,
    /// Print what was sent as JSON.
    #[arg(long)]
    pub json: bool,
    /// Recording options.
    #[command(flatten)]
    pub record: crate::session_record::RecordArgs,
}

/// Arguments of `csnav replay`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools, reason = "independent command-line switches")]
pub struct ReplayArgs {
    /// The recording.
    pub file: PathBuf,
    /// Speed: 1 = real time, 10 = ten times faster, 0 = as fast as possible.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// One event at a time: Enter shows the next.
    #[arg(long, conflicts_with = "speed")]
    pub step: bool,
    /// Start this many seconds into the procedure (earlier events rebuild the state silently).
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub seek_s: f64,
    /// Most tip lines printed per tool and second (0 = every sample; differences always).
    #[arg(long, default_value_t = 10.0, value_name = "HZ")]
    pub max_rate_hz: f64,
    /// One JSON object per line (console replay).
    #[arg(long)]
    pub json: bool,
    /// Replay as text on the console even when a display is available.
    #[arg(long)]
    pub text: bool,
    /// Render the app offscreen and write screenshots and a summary into --out at the end.
    #[arg(long, conflicts_with_all = ["text", "json", "step"])]
    pub headless: bool,
    /// In the window: take the screenshots at the end of the recording, then close.
    #[arg(long, conflicts_with_all = ["text", "json", "step"])]
    pub screenshot: bool,
    /// Where --headless and --screenshot write the screenshots and summary.
    #[arg(long, value_name = "DIR", default_value = "replay")]
    pub out: PathBuf,
    /// Screen size of the app, `WIDTHxHEIGHT` px.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
}

/// Arguments of `csnav reconstruct`.
#[derive(Debug, Args)]
pub struct ReconstructArgs {
    /// The first run (its best-opacified frame is used).
    pub first: PathBuf,
    /// The second run (the frame at the same cardiac phase).
    pub second: PathBuf,
    /// Where tree3d.json and tree3d.obj go.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Use the DICOM geometry as it is (no refinement from the trees).
    #[arg(long)]
    pub no_refine: bool,
}

/// Arguments of `csnav listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// This node's AE title (peers must call it).
    #[arg(long, default_value = "CSNAV")]
    pub ae: String,
    /// TCP port (0: any free port, printed on the first line).
    #[arg(long, default_value_t = 11112)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Where received instances are stored.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// A calling AE title allowed to associate (repeat for several; none given: any).
    #[arg(long = "allow", value_name = "AE")]
    pub allow: Vec<String>,
    /// Associations served at once.
    #[arg(long, default_value_t = 32)]
    pub max_associations: usize,
    /// Seconds a peer may stay silent before its association is dropped.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_s: u64,
    /// Segment every X-ray angiography run received (best-opacified frame), into
    /// STORE/segmented/<SOP Instance UID>/ (tree.json, mask.png, overlay.png).
    #[arg(long)]
    pub segment: bool,
    /// With --segment: announce each segmented run to a running app (`csnav live --inbox`)
    /// at this address (host:port), one JSON line per run.
    #[arg(long, value_name = "HOST:PORT", requires = "segment")]
    pub announce: Option<String>,
    /// Geometry entered by hand and defaults for runs that lack it (with --segment).
    #[command(flatten)]
    pub geometry: GeometryArgs,
}

/// The remote node and how csnav calls it.
#[derive(Debug, Args, Clone)]
pub struct PeerArgs {
    /// The remote node: AE@host:port (e.g. ORTHANC@127.0.0.1:4242).
    #[arg(long, value_name = "AE@HOST:PORT")]
    pub peer: dicom_net::scu::RemoteAe,
    /// csnav's calling AE title.
    #[arg(long, default_value = "CSNAV")]
    pub ae: String,
    /// Connection and answer timeout, seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
}

/// Arguments of `csnav pacs`.
#[derive(Debug, Args)]
pub struct PacsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PacsCommand,
}

/// The `csnav pacs` operations.
#[derive(Debug, Subcommand)]
pub enum PacsCommand {
    /// C-ECHO: is the node there and does it accept csnav?
    Echo(PeerArgs),
    /// C-FIND: list patients, studies, series or images matching the keys (wildcards * and ?
    /// in names and IDs, date ranges as YYYYMMDD-YYYYMMDD).
    Find(PacsFindArgs),
    /// C-MOVE a study or series to csnav: a storage SCP on --port receives it into --out
    /// (the PACS must know csnav's AE title with this host and port).
    Get(PacsGetArgs),
    /// C-STORE files to the node, each in the transfer syntax it is stored in.
    Send(PacsSendArgs),
}

/// Arguments of `csnav pacs find`.
#[derive(Debug, Args)]
pub struct PacsFindArgs {
    /// The remote node.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Query level: patient, study, series or image.
    #[arg(long, default_value = "study")]
    pub level: dicom_net::scu::QueryLevel,
    /// Patient ID to match.
    #[arg(long)]
    pub patient_id: Option<String>,
    /// Patient's name to match (DICOM PN, e.g. DOE^J*).
    #[arg(long)]
    pub patient_name: Option<String>,
    /// Study Instance UID (needed below the study level).
    #[arg(long)]
    pub study_uid: Option<String>,
    /// Series Instance UID (needed at the image level).
    #[arg(long)]
    pub series_uid: Option<String>,
    /// Study date or range (YYYYMMDD, YYYYMMDD-YYYYMMDD).
    #[arg(long)]
    pub study_date: Option<String>,
    /// Accession number.
    #[arg(long)]
    pub accession: Option<String>,
    /// Modality of the series (series level), or among the study's (study level), e.g. XA.
    #[arg(long)]
    pub modality: Option<String>,
    /// Print the matches as JSON (keyword: value) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `csnav pacs get`.
#[derive(Debug, Args)]
pub struct PacsGetArgs {
    /// The remote node.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// The study to retrieve.
    #[arg(long)]
    pub study_uid: String,
    /// Only this series of the study.
    #[arg(long)]
    pub series_uid: Option<String>,
    /// Where the instances are stored (as SOP Instance UID + .dcm).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Port of csnav's storage SCP while it receives (the PACS's entry for csnav's AE).
    #[arg(long, default_value_t = 11113)]
    pub port: u16,
    /// Address the storage SCP listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
}

/// Arguments of `csnav pacs send`.
#[derive(Debug, Args)]
pub struct PacsSendArgs {
    /// The remote node.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// DICOM files to send.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `csnav export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The XA run (DICOM) that was segmented.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Frame to segment: a 0-based number or `auto` for the best-opacified frame.
    #[arg(long, default_value = "auto", value_name = "N|auto")]
    pub frame: FrameArg,
    /// How the run is segmented.
    #[command(flatten)]
    pub segmentation: SegmentationArgs,
    /// Output folder: overlay-sc.dcm and report-sr.dcm.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Send both to this node (AE@host:port) once written.
    #[arg(long, value_name = "AE@HOST:PORT")]
    pub send: Option<dicom_net::scu::RemoteAe>,
    /// csnav's calling AE title when sending.
    #[arg(long, default_value = "CSNAV")]
    pub ae: String,
}

/// How a run is segmented: the ostium seed, the vesselness measure and the geometry entered.
#[derive(Debug, Args)]
pub struct SegmentationArgs {
    /// The CS ostium, pixels X,Y (column, row), when the automatic choice is wrong.
    #[arg(long, value_name = "X,Y", value_delimiter = ',', num_args = 2, allow_hyphen_values = true)]
    pub seed_xy: Option<Vec<f64>>,
    /// Vesselness measure.
    #[arg(long, value_enum, default_value_t = MeasureArg::Jerman)]
    pub measure: MeasureArg,
    /// Segment a 1024 (or larger) frame at its own matrix instead of binned 2x2 to the 512
    /// working matrix (finer, about twice the time).
    #[arg(long)]
    pub full_resolution: bool,
    /// Average the frame with its neighbours on the contrast plateau, each moved onto it, for
    /// the twig detector: more twigs, slower, and a tree that can change around them (see
    /// docs/segmentation.md). One frame only, not with `--frame all`.
    #[arg(long)]
    pub average_plateau: bool,
    /// Geometry entered by hand, overriding the file.
    #[command(flatten)]
    pub geometry: GeometryArgs,
}

/// Arguments of `csnav review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The case folder (venogram runs; a 3D tree when it has one).
    #[arg(long, value_name = "DIR", default_value = "assets/cases/synthetic-seed7")]
    pub case: PathBuf,
    /// Edits to play first (JSON list of actions, see docs/app.md).
    #[arg(long, value_name = "FILE")]
    pub actions: Option<PathBuf>,
    /// Where the plan is saved (default OUT/plan.json).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Render offscreen and write screenshots after the actions even when a display is available.
    #[arg(long)]
    pub headless: bool,
    /// In the window: take the screenshots after the actions, then close.
    #[arg(long)]
    pub screenshot: bool,
    /// Where the screenshots, the summary and (by default) the plan go.
    #[arg(long, value_name = "DIR", default_value = "review")]
    pub out: PathBuf,
    /// Screen size, `WIDTHxHEIGHT` px.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
}

/// Arguments of `csnav bench-frames`.
#[derive(Debug, Args)]
pub struct BenchFramesArgs {
    /// The case folder.
    #[arg(long, value_name = "DIR", default_value = "assets/cases/synthetic-seed7")]
    pub case: PathBuf,
    /// Seconds of frames timed (after the pipelines are compiled and 60 frames more).
    #[arg(long, default_value_t = 20.0, value_name = "S")]
    pub seconds: f64,
    /// Screen size, `WIDTHxHEIGHT` px.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Tracked tools.
    #[arg(long, default_value_t = 4)]
    pub tools: usize,
    /// Samples per second per tool.
    #[arg(long, default_value_t = 100.0, value_name = "HZ")]
    pub rate_hz: f64,
    /// Without the device model's beats and electrograms.
    #[arg(long)]
    pub no_device: bool,
    /// Where the JSON report goes.
    #[arg(long, value_name = "FILE", default_value = "bench-frames.json")]
    pub report: PathBuf,
}

/// Arguments of `csnav live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The tracker's OpenIGTLink server.
    #[arg(long, default_value = "127.0.0.1:18944", value_name = "HOST:PORT")]
    pub tracker: String,
    /// The device (pacing analyzer, e.g. a running `csnav device-model`), followed as an observer.
    #[arg(long, value_name = "HOST:PORT")]
    pub device: Option<String>,
    /// Listen here for runs announced by `csnav listen --segment --announce` (new venograms
    /// from the angiography system): each is read, segmented, shown and recorded as it comes.
    #[arg(long, value_name = "HOST:PORT")]
    pub inbox: Option<String>,
    /// The case folder (venogram runs, 3D tree, tracker fiducials).
    #[arg(long, value_name = "DIR")]
    pub case: PathBuf,
    /// Candidate site, NAME=VEIN@FRACTION of the vein's length; repeat for several; guidance
    /// goes to the first (default: the plan's targets, else the middle of the PLV or LMV).
    #[arg(long = "target", value_name = "NAME=VEIN@FRACTION")]
    pub targets: Vec<String>,
    /// A plan saved by `csnav review`: its targets (after any --target).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Render offscreen (screenshots after --duration-s) even when a display is available.
    #[arg(long)]
    pub headless: bool,
    /// In the window: take the screenshots after --duration-s, then close.
    #[arg(long, requires = "duration_s")]
    pub screenshot: bool,
    /// When to take the screenshots, seconds after the start (the links keep running until then).
    #[arg(long, value_name = "S")]
    pub duration_s: Option<f64>,
    /// Where the screenshots and the summary go.
    #[arg(long, value_name = "DIR", default_value = "live")]
    pub out: PathBuf,
    /// Screen size, `WIDTHxHEIGHT` px.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Recording options (live sessions record by default).
    #[command(flatten)]
    pub record: crate::session_record::RecordArgs,
}

/// Arguments of `csnav demo` and `csnav sim`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The case folder (venogram runs, simulator truth, tracker fiducials).
    #[arg(long, value_name = "DIR", default_value = "assets/cases/synthetic-seed7")]
    pub case: PathBuf,
    /// Render offscreen and write screenshots even when a display is available.
    #[arg(long)]
    pub headless: bool,
    /// In the window: take the screenshots when the procedure has finished, then close.
    #[arg(long)]
    pub screenshot: bool,
    /// Where the screenshots, the summary and (by default) the recording go.
    #[arg(long, value_name = "DIR", default_value = "demo")]
    pub out: PathBuf,
    /// Screen size, `WIDTHxHEIGHT` px.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Tip speed along the veins, mm/s.
    #[arg(long, default_value_t = 25.0)]
    pub speed_mm_s: f64,
    /// Tracker noise (RMS, 3D), mm.
    #[arg(long, default_value_t = 0.3)]
    pub noise_mm: f64,
    /// Noise seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Navigation only: no device tests.
    #[arg(long)]
    pub no_device: bool,
    /// Recording (default for the demo: OUT/session.rrd).
    #[command(flatten)]
    pub record: crate::session_record::RecordArgs,
}

/// A scripted trainee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraineeArg {
    /// To the best usable site, by the shortest competent route.
    Optimal,
    /// To the most apical site the loaded lead holds at (the apical trap).
    Apex,
    /// To the most scarred site the lead holds at.
    Scar,
}

/// `csnav train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The scenario file (`assets/scenarios/*.toml`).
    pub scenario: PathBuf,
    /// Where the case, the debrief, the outcome and the recording go.
    #[arg(long, value_name = "DIR", default_value = "training")]
    pub out: PathBuf,
    /// Play a scripted trainee instead of the keyboard.
    #[arg(long, value_enum, conflicts_with = "script")]
    pub trainee: Option<TraineeArg>,
    /// Play a script (a JSON list of `{"t_s", "action", ...}`, as script.json is written).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Play the trainee or the script without the app (fast, no window).
    #[arg(long)]
    pub no_app: bool,
    /// Render offscreen and write screenshots when the case ends.
    #[arg(long)]
    pub headless: bool,
    /// In the window: take the screenshots when the case has ended, then close.
    #[arg(long)]
    pub screenshot: bool,
    /// Screen size, `WIDTHxHEIGHT` px.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// The fluoroscopy view (AP, LAO<deg>, RAO<deg>, with CRA/CAU).
    #[arg(long, default_value = "LAO35")]
    pub fluoro_view: String,
    /// Fluoroscopy image size, px.
    #[arg(long, default_value_t = 384)]
    pub fluoro_size: u32,
    /// Frames of each venogram run rendered for the case.
    #[arg(long, default_value_t = 20)]
    pub venogram_frames: u32,
    /// Recording (default: OUT/session.rrd).
    #[command(flatten)]
    pub record: crate::session_record::RecordArgs,
}

/// `csnav scenarios`.
#[derive(Debug, Args)]
pub struct ScenariosArgs {
    /// The folder of scenario files.
    #[arg(default_value = "assets/scenarios")]
    pub dir: PathBuf,
    /// Also check each is solvable (builds the patient and searches for the best site).
    #[arg(long)]
    pub solve: bool,
}

/// `WIDTHxHEIGHT` to a size (each 320-7680 px).
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("size {s:?} is not WIDTHxHEIGHT"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| (320..=7680).contains(v))
            .ok_or_else(|| format!("size {s:?}: each side must be 320-7680 px"))
    };
    Ok((parse(w)?, parse(h)?))
}

/// Arguments of `csnav record-info`.
#[derive(Debug, Args)]
pub struct RecordInfoArgs {
    /// The recording.
    pub file: PathBuf,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `csnav device-rank`.
#[derive(Debug, Args)]
pub struct DeviceRankArgs {
    /// Sweep records, one file per site.
    #[arg(required = true, value_name = "FILE")]
    pub sweeps: Vec<PathBuf>,
    /// Highest acceptable capture threshold at 0.5 ms, volts.
    #[arg(long, default_value_t = 2.5, value_name = "V")]
    pub max_threshold_volts: f64,
    /// Required PNS/capture threshold ratio.
    #[arg(long, default_value_t = 2.0)]
    pub pns_margin: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `csnav device-model`.
#[derive(Debug, Args)]
pub struct DeviceModelArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:18950", value_name = "HOST:PORT")]
    pub listen: String,
    /// Case directory whose synthetic patient (patient.json's seed) the model simulates.
    #[arg(long, value_name = "DIR")]
    pub case: Option<PathBuf>,
    /// Or the synthetic patient's seed.
    #[arg(long, conflicts_with = "case")]
    pub seed: Option<u64>,
    /// The most the analyzer will ever deliver, volts (at most the table's 10 V).
    #[arg(long, value_name = "V")]
    pub max_volts: Option<f64>,
    /// Append every command, result and safety event to this JSON-lines log.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Electrogram samples per second, 500-1000.
    #[arg(long, default_value_t = 500.0, value_name = "HZ")]
    pub egm_hz: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "S")]
    pub duration_s: Option<f64>,
}

/// The LV tests of `csnav device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceTest {
    /// Capture threshold, step-down amplitude at a fixed pulse width.
    Threshold,
    /// Pulse-width threshold at a fixed amplitude, the amplitude threshold, and the Weiss fit.
    PwThreshold,
    /// Capture threshold, phrenic screen and threshold, and the margin check.
    Pns,
    /// Every vector of the lead.
    Sweep,
}

/// A lead model by name.
fn parse_lead(s: &str) -> Result<device_link::lead::LeadModel, String> {
    use device_link::lead::LeadModel;
    match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
        "attainperforma" | "performa" => Ok(LeadModel::AttainPerforma),
        "quartet" => Ok(LeadModel::Quartet),
        "acuityx4" | "x4" => Ok(LeadModel::AcuityX4),
        _ => Err(format!("unknown lead {s:?}: performa, quartet or acuity-x4")),
    }
}

/// Arguments of `csnav device`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Which test.
    #[arg(value_enum)]
    pub test: DeviceTest,
    /// The device (e.g. a running `csnav device-model`).
    #[arg(long, default_value = "127.0.0.1:18950", value_name = "HOST:PORT")]
    pub device: String,
    /// Case directory (patient.json: the 3D tree the lead lies in).
    #[arg(long, value_name = "DIR")]
    pub case: PathBuf,
    /// Where the lead tip is: VEIN@FRACTION of the vein's length, e.g. PLV@0.67.
    #[arg(long, value_name = "VEIN@FRACTION")]
    pub site: String,
    /// The lead: performa, quartet or acuity-x4.
    #[arg(long, default_value = "quartet", value_parser = parse_lead)]
    pub lead: device_link::lead::LeadModel,
    /// The vector, by name (e.g. "D1-RV coil") or index (default: the first).
    #[arg(long)]
    pub vector: Option<String>,
    /// Amplitude test start, volts.
    #[arg(long, default_value_t = 5.0, value_name = "V")]
    pub start_volts: f64,
    /// Pulse width of amplitude tests, ms.
    #[arg(long, default_value_t = 0.5, value_name = "MS")]
    pub pulse_width_ms: f64,
    /// Amplitude of the pulse-width test, volts.
    #[arg(long, default_value_t = 2.0, value_name = "V")]
    pub amplitude_volts: f64,
    /// Beats per step (loss is declared on 2 of 3, or 2 of the beats given).
    #[arg(long, default_value_t = 3)]
    pub beats_per_step: u32,
    /// Coarse step before the fine steps, volts (sweeps default to 0.5).
    #[arg(long, value_name = "V")]
    pub coarse_volts: Option<f64>,
    /// Phrenic screen output, volts.
    #[arg(long, default_value_t = 10.0, value_name = "V")]
    pub pns_screen_volts: f64,
    /// Required PNS/capture threshold ratio.
    #[arg(long, default_value_t = 2.0)]
    pub pns_margin: f64,
    /// Append every command and result to this JSON-lines log.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Print the result record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Recording options (on by default).
    #[command(flatten)]
    pub record: crate::session_record::RecordArgs,
}

/// Arguments of `csnav track`.
#[derive(Debug, Args)]
pub struct TrackArgs {
    /// Address to receive OpenIGTLink on (loopback unless the tracker is on another machine).
    #[arg(long, default_value = "127.0.0.1:18944", value_name = "HOST:PORT")]
    pub listen: String,
    /// Connect to a tracker that serves OpenIGTLink (PLUS, a tracker's own server) instead of
    /// listening; asks it for tracking data (`STT_TDATA`) and reconnects with backoff.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "replay")]
    pub connect: Option<String>,
    /// Case directory: patient.json (the 3D tree) and tracker.json (registration fiducials).
    #[arg(long, value_name = "DIR")]
    pub case: PathBuf,
    /// Replay a recorded OpenIGTLink stream (the bytes as sent) instead of listening.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Replay speed (1 = real time, 0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Candidate site, NAME=VEIN@FRACTION of the vein's length, e.g. "lateral mid=PLV@0.5";
    /// repeat for several; guidance goes to the first (default: the middle of the PLV, else
    /// of the LMV).
    #[arg(long = "target", value_name = "NAME=VEIN@FRACTION")]
    pub targets: Vec<String>,
    /// A tip older than this is stale, ms.
    #[arg(long, default_value_t = 200.0, value_name = "MS")]
    pub stale_ms: f64,
    /// Most updates printed per tool and second (0 = every sample).
    #[arg(long, default_value_t = 20.0, value_name = "HZ")]
    pub max_rate_hz: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "S")]
    pub duration_s: Option<f64>,
    /// Print one JSON object per update instead of text.
    #[arg(long)]
    pub json: bool,
    /// Recording options (live sessions record by default; a replayed stream only with --record).
    #[command(flatten)]
    pub record: crate::session_record::RecordArgs,
}

/// Arguments of `csnav send-tips`.
#[derive(Debug, Args)]
pub struct SendTipsArgs {
    /// Serve on this address instead (as a tracker's own server does): wait for one receiver,
    /// e.g. `csnav live --tracker`, then stream to it.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "to")]
    pub serve: Option<String>,
    /// OpenIGTLink receiver to send to (e.g. a running `csnav track`).
    #[arg(long, value_name = "HOST:PORT")]
    pub to: Option<String>,
    /// Also (or only) write the stream to this file, for `csnav track --replay`.
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Case directory (patient.json, tracker.json).
    #[arg(long, value_name = "DIR")]
    pub case: PathBuf,
    /// Tool name (the OpenIGTLink device name).
    #[arg(long, default_value = "Guidewire")]
    pub tool: String,
    /// Where the tip goes, NAME=VEIN@FRACTION (default: the middle of the PLV, else LMV).
    #[arg(long, value_name = "NAME=VEIN@FRACTION")]
    pub target: Option<String>,
    /// Samples per second, 10-1000.
    #[arg(long, default_value_t = 100.0, value_name = "HZ")]
    pub rate_hz: f64,
    /// Sensor noise, RMS mm (3D).
    #[arg(long, default_value_t = 0.5, value_name = "MM")]
    pub noise_mm: f64,
    /// Chance per sample that the sensor drops out for 50-500 ms.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub dropout: f64,
    /// Advance speed along the vein, mm/s.
    #[arg(long, default_value_t = 20.0, value_name = "MM_S")]
    pub speed_mm_s: f64,
    /// Seconds to hold at the target before stopping.
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    pub hold_s: f64,
    /// Seed of the noise and dropouts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Send header version 2 with the true arc length as metadata (`ArcFromOstiumMm`).
    #[arg(long)]
    pub header_v2: bool,
}

/// Arguments of `csnav info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// DICOM files to summarise (one XA run each).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON (an array, one object per file) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Geometry entered by hand, overriding the file.
    #[command(flatten)]
    pub geometry: GeometryArgs,
}

/// Manual geometry entries and the defaults used when a run lacks an attribute.
#[derive(Debug, Args, Clone)]
pub struct GeometryArgs {
    /// Positioner primary angle in degrees, LAO positive, RAO negative (overrides the file).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    pub primary_angle_deg: Option<f64>,
    /// Positioner secondary angle in degrees, cranial positive, caudal negative (overrides the file).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    pub secondary_angle_deg: Option<f64>,
    /// Distance source to detector (SID) in mm (overrides the file).
    #[arg(long, value_name = "MM")]
    pub sid_mm: Option<f64>,
    /// Distance source to isocentre (SOD) in mm (overrides the file).
    #[arg(long, value_name = "MM")]
    pub sod_mm: Option<f64>,
    /// Imager pixel spacing at the detector in mm, one value or ROW,COLUMN (overrides the file).
    #[arg(long, value_name = "MM[,MM]", value_delimiter = ',')]
    pub imager_pixel_spacing_mm: Option<Vec<f64>>,
    /// SID used when the file has none and none is entered, mm.
    #[arg(long, value_name = "MM", default_value_t = 1000.0)]
    pub default_sid_mm: f64,
    /// SOD used when the file has none and none is entered, mm.
    #[arg(long, value_name = "MM", default_value_t = 750.0)]
    pub default_sod_mm: f64,
    /// Detector field width used to default the imager pixel spacing, mm.
    #[arg(long, value_name = "MM", default_value_t = 250.0)]
    pub default_detector_field_mm: f64,
}

/// Arguments of `csnav test-pattern`.
#[derive(Debug, Args)]
pub struct TestPatternArgs {
    /// Output DICOM file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Rows (image height, pixels).
    #[arg(long, default_value_t = 512)]
    pub rows: u16,
    /// Columns (image width, pixels).
    #[arg(long, default_value_t = 512)]
    pub columns: u16,
    /// Number of frames.
    #[arg(long, default_value_t = 30)]
    pub frames: u16,
    /// Bits stored per sample (8 gives 8-bit containers; 9-16 give 16-bit).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub bits_stored: u16,
    /// Seed of the pattern and of the UIDs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the samples as MONOCHROME1 (inverted) instead of MONOCHROME2.
    #[arg(long)]
    pub monochrome1: bool,
    /// Leave out the optional (type 3) geometry: distances, imager pixel spacing and
    /// magnification, as many real XA files do.
    #[arg(long)]
    pub omit_optional_geometry: bool,
}

/// Arguments of `csnav simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Seed of the synthetic patient: the same seed gives the same patient and the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A C-arm view to render, e.g. LAO30, RAO30, AP, LAO40CRA10 (repeat for several views).
    #[arg(long = "view", value_name = "VIEW", default_values_t = ["LAO30".to_owned(), "RAO30".to_owned()])]
    pub views: Vec<String>,
    /// Image matrix (rows = columns), pixels.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..=2048))]
    pub size: u32,
    /// Bits stored per sample.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(8..=16))]
    pub bits: u16,
    /// Frames per run (15 frames/s).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub frames: u32,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Which frame `csnav segment` works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameArg {
    /// The best-opacified frame.
    Auto,
    /// A 0-based frame index.
    Index(u32),
    /// Every frame (per-frame mode).
    All,
}

impl FrameArg {
    /// The one frame to segment; `None` for every frame.
    #[must_use]
    pub fn single(self) -> Option<venogram::segment::FrameChoice> {
        match self {
            Self::Auto => Some(venogram::segment::FrameChoice::Auto),
            Self::Index(i) => Some(venogram::segment::FrameChoice::Index(i)),
            Self::All => None,
        }
    }
}

impl std::str::FromStr for FrameArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        s.parse::<u32>()
            .map(Self::Index)
            .map_err(|_| format!("'{s}' is neither 'auto', 'all' nor a 0-based frame number"))
    }
}

/// Which vesselness measure `csnav segment` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MeasureArg {
    /// Jerman et al. 2016 (uniform response across calibres and at bifurcations).
    Jerman,
    /// Frangi et al. 1998.
    Frangi,
}

/// Arguments of `csnav segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The XA run (DICOM).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Frame to segment: a 0-based number, `auto` for the best-opacified frame, or `all` for
    /// every frame (per-frame mode: DIR/frames/NNNN/ per frame and DIR/cine.json).
    #[arg(long, default_value = "auto", value_name = "N|auto")]
    pub frame: FrameArg,
    /// How the run is segmented.
    #[command(flatten)]
    pub segmentation: SegmentationArgs,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
