//! Records to Rerun archetypes (the writer thread's half of the recorder).
//!
//! Conventions: csnav pixels have their centres at integers, Rerun's at `+0.5`, so 2D
//! positions are shifted by half a pixel on the way in; 3D is patient LPS, mm.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use rerun::external::arrow::array::{ArrayRef, StringArray};
use rerun::external::arrow::buffer::Buffer;
use rerun::{AsComponents, RecordingStream};

use crate::entity;
use crate::record::{
    DeviceCommandRecord, DeviceEventRecord, FramePixels, FrameRecord, Level, MaskRecord, NoteRecord, RankingRecord,
    Record, RegistrationRecord, RunInfo, Segmentation2d, SessionInfo, SessionMode, Stored, TargetRecord,
    TestResultRecord, TipRecord, Tree3d,
};
use crate::recorder::{Envelope, KindCounts};
use device_link::ranking::SiteRecord;

/// Colour of a vein label (venogram's one palette).
fn label_color(label: &str) -> rerun::Color {
    let [r, g, b] = venogram::VeinLabel::rgb_of(label);
    rerun::Color::from_rgb(r, g, b)
}

fn text_level(level: Level) -> rerun::TextLogLevel {
    match level {
        Level::Info => rerun::TextLogLevel::from(rerun::TextLogLevel::INFO),
        Level::Warn => rerun::TextLogLevel::from(rerun::TextLogLevel::WARN),
        Level::Error => rerun::TextLogLevel::from(rerun::TextLogLevel::ERROR),
        Level::Critical => rerun::TextLogLevel::from(rerun::TextLogLevel::CRITICAL),
    }
}

/// Mean of a branch's radii (the line strip's one radius).
fn mean_radius(radii: &[f64]) -> f32 {
    (radii.iter().sum::<f64>() / radii.len().max(1) as f64) as f32
}

fn px(p: [f64; 2]) -> [f32; 2] {
    [(p[0] + 0.5) as f32, (p[1] + 0.5) as f32]
}

fn mm(p: [f64; 3]) -> [f32; 3] {
    [p[0] as f32, p[1] as f32, p[2] as f32]
}

/// The record as JSON in the `csnav.record` component.
fn stored(record: &Stored) -> Result<rerun::AnyValues, String> {
    let json = serde_json::to_string(record).map_err(|e| format!("encoding a record: {e}"))?;
    let array: ArrayRef = Arc::new(StringArray::from(vec![json]));
    Ok(rerun::AnyValues::default().with_component_from_data(entity::RECORD_COMPONENT, array))
}

/// The last navigation state logged per tool (branch label, stale), to log changes as text.
#[derive(Default)]
struct ToolState {
    branch: Option<String>,
    stale: bool,
}

/// Turns records into Rerun rows.
pub(crate) struct Writer {
    rec: RecordingStream,
    tools: HashMap<String, ToolState>,
}

type WriteResult = Result<(), String>;

impl Writer {
    pub fn new(rec: RecordingStream) -> Self {
        Self { rec, tools: HashMap::new() }
    }

    fn log(&self, path: &str, parts: &[&dyn AsComponents]) -> WriteResult {
        self.rec.log(path, &parts.to_vec()).map_err(|e| format!("logging {path}: {e}"))
    }

    fn log_static(&self, path: &str, parts: &[&dyn AsComponents]) -> WriteResult {
        self.rec.log_static(path, &parts.to_vec()).map_err(|e| format!("logging {path}: {e}"))
    }

    /// The session's metadata, static: a readable document and the record.
    pub fn session(&mut self, info: &SessionInfo) -> WriteResult {
        let mode = match info.mode {
            SessionMode::Live => "live procedure",
            SessionMode::Simulator => "**SIMULATOR**: synthetic patient, no patient data",
        };
        // csnav never reads patient names or IDs (venogram skips them), so none can be here.
        let patient = "- patient identifiers: none (csnav does not read them)\n";
        let doc = format!(
            "# csnav session\n\n> Research software, not a cleared medical device.\n\n- software: {}\n- mode: {mode}\n- \
             case: {}\n- command: {}\n- started: {} ms since the Unix epoch\n{patient}- configuration: `{}`\n",
            info.software, info.case_pseudonym, info.command, info.started_unix_ms, info.config
        );
        let document = rerun::TextDocument::from_markdown(doc);
        self.log_static(entity::SESSION, &[&document, &stored(&Stored::Session(info.clone()))?])?;
        self.log_static(entity::WORLD, &[&rerun::ViewCoordinates::LBU()])
    }

    /// Writes one record.
    pub fn write(&mut self, envelope: Envelope) -> WriteResult {
        self.rec.set_timestamp_nanos_since_epoch(entity::WALL_TIME, envelope.wall_ns);
        match envelope.record {
            Record::Frame(frame) => self.frame(frame),
            Record::Mask(mask) => self.mask(&mask),
            record => self.write_ref(&record, envelope.wall_ns),
        }
    }

    fn write_ref(&mut self, record: &Record, wall_ns: i64) -> WriteResult {
        match record {
            Record::Run(run) => self.run(run),
            Record::Frame(_) | Record::Mask(_) => Ok(()),
            Record::Tree2d(tree) => self.tree2d(tree),
            Record::Tree3d(tree) => self.tree3d(tree),
            Record::Registration(reg) => self.registration(reg),
            Record::Target(target) => self.target(target),
            Record::Tip(tip) => self.tip(tip),
            Record::DeviceCommand(command) => self.device_command(command),
            Record::DeviceEvent(event) => self.device_event(event, wall_ns),
            Record::Egm(egm) => self.egm(egm, wall_ns),
            Record::TestResult(result) => self.test_result(result),
            Record::Site(site) => self.site(site),
            Record::Ranking(ranking) => self.ranking(ranking),
            Record::Note(note) => self.note(note),
        }
    }

    fn run(&mut self, run: &RunInfo) -> WriteResult {
        let path = entity::run(run.run);
        let record = stored(&Stored::Run(run.clone()))?;
        match &run.camera {
            Some(camera) => {
                let k = camera.intrinsics;
                let r = camera.view_from_patient_rotation;
                // Rerun's pinhole camera looks down +Z with X right and Y down: the C-arm's
                // column axis, row axis and beam. Its pose in patient space is R^T at the source.
                let patient_from_view = rerun::datatypes::Mat3x3::from([
                    [r[0][0] as f32, r[1][0] as f32, r[2][0] as f32],
                    [r[0][1] as f32, r[1][1] as f32, r[2][1] as f32],
                    [r[0][2] as f32, r[1][2] as f32, r[2][2] as f32],
                ]);
                let transform =
                    rerun::Transform3D::from_translation_mat3x3(mm(camera.source_in_patient_mm), patient_from_view);
                let pinhole = rerun::Pinhole::from_focal_length_and_resolution(
                    [k[0][0] as f32, k[1][1] as f32],
                    [run.columns as f32, run.rows as f32],
                )
                .with_principal_point([(k[0][2] + 0.5) as f32, (k[1][2] + 0.5) as f32])
                .with_image_plane_distance(200.0);
                self.log_static(&path, &[&transform, &pinhole, &record])
            }
            None => self.log_static(&path, &[&record]),
        }
    }

    fn frame(&mut self, frame: FrameRecord) -> WriteResult {
        let size = [frame.columns, frame.rows];
        // The pixels are moved into the image: no copy on the way to the encoder.
        let image = match frame.pixels {
            FramePixels::U8(bytes) => rerun::Image::from_l8(Buffer::from_vec(bytes), size),
            FramePixels::U16(buffer) => rerun::Image::from_color_model_and_bytes(
                buffer,
                size,
                rerun::ColorModel::L,
                rerun::ChannelDatatype::U16,
            ),
        };
        self.rec.set_time_sequence(entity::CINE_FRAME, i64::from(frame.index));
        let logged = self.log(&entity::run_image(frame.run), &[&image]);
        self.rec.disable_timeline(entity::CINE_FRAME);
        logged
    }

    fn mask(&mut self, mask: &MaskRecord) -> WriteResult {
        let classes: Vec<u8> = mask.mask.iter().map(|v| u8::from(*v > 0)).collect();
        let image = rerun::SegmentationImage::new(
            Buffer::from_vec(classes),
            rerun::components::ImageFormat::segmentation([mask.columns, mask.rows], rerun::ChannelDatatype::U8),
        )
        .with_opacity(0.35);
        self.rec.set_time_sequence(entity::CINE_FRAME, i64::from(mask.frame));
        let logged = self.log(&entity::run_mask(mask.run), &[&image]);
        self.rec.disable_timeline(entity::CINE_FRAME);
        logged
    }

    fn tree2d(&mut self, tree: &Segmentation2d) -> WriteResult {
        let strips: Vec<Vec<[f32; 2]>> =
            tree.branches.iter().map(|b| b.points_px.iter().map(|p| px(*p)).collect()).collect();
        let radii: Vec<f32> = tree.branches.iter().map(|b| mean_radius(&b.radius_px)).collect();
        let labels: Vec<String> = tree.branches.iter().map(|b| b.label.clone()).collect();
        let colors: Vec<rerun::Color> = tree.branches.iter().map(|b| label_color(&b.label)).collect();
        let lines = rerun::LineStrips2D::new(strips)
            .with_radii(radii)
            .with_labels(labels)
            .with_colors(colors)
            .with_show_labels(true)
            .with_draw_order(10.0);
        self.rec.set_time_sequence(entity::CINE_FRAME, i64::from(tree.frame));
        let mut nodes: Vec<[f32; 2]> = tree.bifurcations_px.iter().map(|p| px(*p)).collect();
        let mut node_labels = vec!["bifurcation".to_owned(); nodes.len()];
        if let Some(root) = tree.root_px {
            nodes.push(px(root));
            node_labels.push("ostium".to_owned());
        }
        let points = rerun::Points2D::new(nodes).with_labels(node_labels).with_radii([3.0f32]).with_draw_order(11.0);
        let logged = self
            .log(&entity::run_tree(tree.run), &[&lines, &stored(&Stored::Tree2d(tree.clone()))?])
            .and_then(|()| self.log(&entity::run_nodes(tree.run), &[&points]));
        self.rec.disable_timeline(entity::CINE_FRAME);
        logged
    }

    fn tree3d(&mut self, tree: &Tree3d) -> WriteResult {
        let strips: Vec<Vec<[f32; 3]>> =
            tree.branches.iter().map(|b| b.points_mm.iter().map(|p| mm(*p)).collect()).collect();
        let radii: Vec<f32> = tree.branches.iter().map(|b| mean_radius(&b.radius_mm)).collect();
        let lines = rerun::LineStrips3D::new(strips)
            .with_radii(radii)
            .with_labels(tree.branches.iter().map(|b| b.label.clone()))
            .with_colors(tree.branches.iter().map(|b| label_color(&b.label)));
        self.log(entity::TREE_3D, &[&lines, &stored(&Stored::Tree3d(tree.clone()))?])
    }

    fn registration(&mut self, reg: &RegistrationRecord) -> WriteResult {
        let points = rerun::Points3D::new(reg.fiducials.iter().map(|f| mm(f.in_patient_mm)))
            .with_labels(reg.residuals_mm.iter().map(|r| format!("residual {r:.2} mm")))
            .with_radii([1.5f32]);
        self.log(entity::REGISTRATION, &[&points, &stored(&Stored::Registration(reg.clone()))?])?;
        let worst = reg.residuals_mm.iter().copied().fold(0.0, f64::max);
        let text = rerun::TextLog::new(format!(
            "registration: {} fiducials, FRE {:.2} mm RMS (worst {worst:.2} mm)",
            reg.fiducials.len(),
            reg.fre_rms_mm
        ))
        .with_level(rerun::TextLogLevel::INFO);
        self.log(entity::NAVIGATION_LOG, &[&text])
    }

    fn target(&mut self, target: &TargetRecord) -> WriteResult {
        let point = rerun::Points3D::new([mm(target.position_mm)])
            .with_labels([format!("target {} ({} {:.0} mm)", target.name, target.label, target.arc_mm)])
            .with_radii([2.5f32])
            .with_colors([rerun::Color::from_rgb(0, 255, 128)]);
        self.log(&entity::target(&target.name), &[&point, &stored(&Stored::Target(target.clone()))?])
    }

    fn tip(&mut self, tip: &TipRecord) -> WriteResult {
        let label = match &tip.snap {
            Some(s) => format!("{} {} {:.1} mm", tip.tool, s.label, s.arc_mm),
            None => format!("{} off the tree", tip.tool),
        };
        let color = if tip.stale { rerun::Color::from_rgb(128, 128, 128) } else { rerun::Color::from_rgb(255, 255, 0) };
        let point = rerun::Points3D::new([mm(tip.tip_in_patient_mm)])
            .with_labels([label.clone()])
            .with_radii([1.2f32])
            .with_colors([color]);
        self.log(&entity::tip(&tip.tool), &[&point, &stored(&Stored::Tip(tip.clone()))?])?;
        for (run, xy) in &tip.projections_px {
            let p = rerun::Points2D::new([px(*xy)])
                .with_labels([tip.tool.clone()])
                .with_radii([4.0f32])
                .with_colors([color])
                .with_draw_order(20.0);
            self.log(&entity::run_tip(*run, &tip.tool), &[&p])?;
        }
        self.log(&entity::tool_scalar(&tip.tool, "age_ms"), &[&rerun::Scalars::single(tip.age_ms)])?;
        if let Some(snap) = &tip.snap {
            self.log(&entity::tool_scalar(&tip.tool, "arc_mm"), &[&rerun::Scalars::single(snap.arc_mm)])?;
            self.log(&entity::tool_scalar(&tip.tool, "off_vessel_mm"), &[&rerun::Scalars::single(snap.off_vessel_mm)])?;
        }
        if let Some(g) = &tip.guidance {
            self.log(&entity::tool_scalar(&tip.tool, "path_to_target_mm"), &[&rerun::Scalars::single(g.path_mm)])?;
            if let Some(d) = g.steer_direction {
                let arrow =
                    rerun::Arrows3D::from_vectors([[(d[0] * 15.0) as f32, (d[1] * 15.0) as f32, (d[2] * 15.0) as f32]])
                        .with_origins([mm(tip.tip_in_patient_mm)])
                        .with_labels([format!("field toward {}", g.target)]);
                self.log(&entity::guidance(&tip.tool), &[&arrow])?;
            }
        }
        // Branch changes and stale transitions as text, for the audit trail.
        let state = self.tools.entry(tip.tool.clone()).or_default();
        let branch = tip.snap.as_ref().map(|s| s.label.clone());
        let mut lines = Vec::new();
        if state.stale != tip.stale {
            lines.push((
                if tip.stale { text_level(Level::Warn) } else { text_level(Level::Info) },
                if tip.stale {
                    format!("{}: STALE (last sample {:.0} ms old)", tip.tool, tip.age_ms)
                } else {
                    format!("{}: tracking again", tip.tool)
                },
            ));
        }
        if state.branch != branch {
            lines.push((text_level(Level::Info), format!("{}: now {label}", tip.tool)));
        }
        state.stale = tip.stale;
        state.branch = branch;
        for (level, text) in lines {
            self.log(entity::NAVIGATION_LOG, &[&rerun::TextLog::new(text).with_level(level)])?;
        }
        Ok(())
    }

    fn device_command(&mut self, c: &DeviceCommandRecord) -> WriteResult {
        let command = serde_json::to_string(&c.command).unwrap_or_default();
        let (level, result) = match &c.result {
            Ok(reply) => (text_level(Level::Info), serde_json::to_string(reply).unwrap_or_default()),
            Err(e) => (text_level(Level::Warn), format!("refused: {e}")),
        };
        let site = c.site.as_deref().unwrap_or("-");
        let text = rerun::TextLog::new(format!("[{site}] {}: {command} -> {result}", c.who)).with_level(level);
        self.log(entity::DEVICE_LOG, &[&text, &stored(&Stored::DeviceCommand(c.clone()))?])
    }

    fn device_event(&mut self, e: &DeviceEventRecord, wall_ns: i64) -> WriteResult {
        use device_link::protocol::Event;
        match &e.event {
            // Electrograms are columns of scalars, not JSON.
            Event::Egm(chunk) => return self.egm(chunk, wall_ns),
            Event::Beat(beat) => {
                let captured = matches!(beat.capture, device_link::protocol::Capture::Captured);
                self.log(entity::BEAT_CAPTURE, &[&rerun::Scalars::single(f64::from(u8::from(captured)))])?;
                self.log(entity::BEAT_AMPLITUDE, &[&rerun::Scalars::single(beat.amplitude_volts)])?;
            }
            Event::SafePacing { reason, .. } => {
                let text = rerun::TextLog::new(format!("device went to safe pacing: {reason:?}"))
                    .with_level(rerun::TextLogLevel::WARN);
                self.log(entity::DEVICE_SAFETY, &[&text])?;
            }
            Event::ProgramApplied { program } => {
                let text = rerun::TextLog::new(format!(
                    "program applied: {}",
                    serde_json::to_string(program).unwrap_or_default()
                ))
                .with_level(rerun::TextLogLevel::from(rerun::TextLogLevel::DEBUG));
                self.log(entity::DEVICE_LOG, &[&text])?;
            }
        }
        self.log(entity::DEVICE_EVENTS, &[&stored(&Stored::DeviceEvent(e.clone()))?])
    }

    /// Electrograms as scalar columns; the last sample is placed at the time the stretch
    /// arrived, the others before it at the sample rate.
    fn egm(&mut self, egm: &device_link::protocol::EgmChunk, wall_ns: i64) -> WriteResult {
        let n = egm.lv_tip_mv.len();
        if n == 0 || egm.sample_rate_hz.is_nan() || egm.sample_rate_hz <= 0.0 {
            return Ok(());
        }
        let step_ns = 1e9 / egm.sample_rate_hz;
        let times: Vec<i64> = (0..n).map(|i| wall_ns - ((n - 1 - i) as f64 * step_ns) as i64).collect();
        for (path, samples) in entity::EGM_CHANNELS.iter().zip([&egm.lv_tip_mv, &egm.lv_ring_mv, &egm.ecg_mv]) {
            if samples.len() != n {
                return Err(format!("EGM channel {path} has {} samples, the LV tip {n}", samples.len()));
            }
            let time = rerun::log::TimeColumn::new_timestamp_nanos_since_epoch(entity::WALL_TIME, times.clone());
            let values = rerun::Scalars::new(samples.iter().map(|v| f64::from(*v)))
                .columns_of_unit_batches()
                .map_err(|e| format!("EGM columns: {e}"))?;
            self.rec.send_columns(*path, [time], values).map_err(|e| format!("logging {path}: {e}"))?;
        }
        Ok(())
    }

    fn test_result(&mut self, r: &TestResultRecord) -> WriteResult {
        let vector = r.vector.as_deref().unwrap_or("-");
        let describe = |v: Option<f64>| v.map_or_else(|| "none".to_owned(), |v| format!("{v:.2} V"));
        let text = rerun::TextLog::new(format!(
            "[{}] {} {vector}: capture {}, phrenic {}{}",
            r.site,
            r.test,
            describe(r.capture_threshold_volts),
            describe(r.phrenic_threshold_volts),
            if r.complete { "" } else { " (INCOMPLETE)" }
        ))
        .with_level(if r.complete { text_level(Level::Info) } else { text_level(Level::Warn) });
        self.log(entity::DEVICE_RESULTS, &[&text, &stored(&Stored::TestResult(r.clone()))?])?;
        if let Some(v) = r.capture_threshold_volts {
            self.log(&entity::threshold(&r.site, vector, "capture_volts"), &[&rerun::Scalars::single(v)])?;
        }
        if let Some(v) = r.phrenic_threshold_volts {
            self.log(&entity::threshold(&r.site, vector, "phrenic_volts"), &[&rerun::Scalars::single(v)])?;
        }
        Ok(())
    }

    fn site(&mut self, site: &SiteRecord) -> WriteResult {
        let text = rerun::TextLog::new(format!(
            "[{}] {} vectors tested{}",
            site.site,
            site.vectors.len(),
            site.vein.as_ref().map_or_else(String::new, |v| format!(" in the {v}"))
        ))
        .with_level(text_level(Level::Info));
        self.log(entity::DEVICE_SITES, &[&text, &stored(&Stored::Site(site.clone()))?])
    }

    fn ranking(&mut self, ranking: &RankingRecord) -> WriteResult {
        let mut table = String::from(
            "# Candidate sites\n\n| rank | site | score | best vector | eligible | reasons |\n|---|---|---|---|---|---|\n",
        );
        for r in &ranking.sites {
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} | {} |",
                r.rank,
                r.site,
                r.score.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}")),
                r.best_vector.as_deref().unwrap_or("-"),
                if r.eligible { "yes" } else { "no" },
                r.reasons.join("; ")
            );
        }
        let document = rerun::TextDocument::from_markdown(table);
        self.log(entity::DEVICE_RANKING, &[&document, &stored(&Stored::Ranking(ranking.clone()))?])
    }

    fn note(&mut self, note: &NoteRecord) -> WriteResult {
        let text = rerun::TextLog::new(note.text.clone()).with_level(text_level(note.level));
        self.log(&entity::notes(&note.topic), &[&text, &stored(&Stored::Note(note.clone()))?])
    }

    /// Says in the recording what was dropped since the last report.
    pub fn dropped(&mut self, wall_ns: i64, counts: &KindCounts) {
        self.rec.set_timestamp_nanos_since_epoch(entity::WALL_TIME, wall_ns);
        let text = format!("recorder queue full: dropped {}", counts.describe());
        tracing::warn!("{text}");
        let note = NoteRecord { topic: "recorder".into(), level: Level::Warn, text };
        if let Err(e) = self.note(&note) {
            tracing::error!("recording: {e}");
        }
    }

    /// Pushes everything logged so far to the file.
    pub fn flush(&mut self) -> WriteResult {
        self.rec.flush_blocking().map_err(|e| format!("flushing: {e}"))
    }

    /// Ends the stream (writes the footer).
    pub fn close(self) -> WriteResult {
        self.rec.flush_blocking().map_err(|e| format!("flushing: {e}"))?;
        self.rec.disconnect();
        Ok(())
    }
}
