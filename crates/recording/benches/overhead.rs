//! Overhead of recording a simulated session (issue 7's benchmark): a 512x512 cine at 15 fps
//! (the bundled case's frames, cycled), 4 tracked tips at 100 Hz and EGM at 1 kHz, for
//! `--minutes` of procedure time played `--speed` times faster than real time. The same
//! session is generated twice, without and with the recorder; the difference in process CPU
//! time, over the procedure's duration, is the recorder's CPU share at real time.
//!
//! `cargo bench -p recording --bench overhead [-- --minutes 10 --speed 5]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use device_link::protocol::EgmChunk;
use recording::record::{FramePixels, FrameRecord, Record, RunInfo, SnapRecord, TipRecord};
use recording::{Recorder, RecorderConfig, SessionInfo, SessionMode};

/// Process CPU time (user + system), seconds, from /proc (clock ticks of 10 ms).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One event of the session, at its procedure time.
enum Event {
    Frame(u32),
    Tip(usize, u64),
    Egm(u64),
}

fn tip(tool: usize, k: u64) -> TipRecord {
    let t = k as f64 / 100.0;
    let p = [10.0 * t.sin() + tool as f64, 5.0 * t.cos(), 0.1 * t];
    TipRecord {
        tool: format!("tool{tool}"),
        t_ms: t * 1e3,
        tracker_from_sensor: [
            [1.0, 0.0, 0.0, p[0]],
            [0.0, 1.0, 0.0, p[1]],
            [0.0, 0.0, 1.0, p[2]],
            [0.0, 0.0, 0.0, 1.0],
        ],
        tip_in_sensor_mm: [0.0; 3],
        tip_in_patient_mm: p,
        stale: false,
        age_ms: 3.0,
        snap: Some(SnapRecord { branch: 4, label: "PLV".into(), arc_mm: 50.0 + t, off_vessel_mm: 0.0 }),
        guidance: None,
        projections_px: vec![(1, [200.0 + p[0], 300.0 + p[1]]), (2, [250.0 - p[0], 280.0 + p[1]])],
    }
}

/// Plays the session; with `recorder`, records it. Returns the wall time it took.
fn play(minutes: f64, speed: f64, frames: &[Vec<u16>], recorder: Option<&Recorder>) -> Duration {
    let duration_ms = (minutes * 60_000.0) as u64;
    let start_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
    let started = Instant::now();
    // Events in time order, ms by ms.
    let mut next_frame_ms = 0.0;
    let mut frame = 0u32;
    for ms in 0..duration_ms {
        let mut events = Vec::new();
        while next_frame_ms <= ms as f64 {
            events.push(Event::Frame(frame));
            frame += 1;
            next_frame_ms += 1000.0 / 15.0;
        }
        if ms % 10 == 0 {
            events.extend((0..4).map(|t| Event::Tip(t, ms / 10)));
        }
        if ms % 1000 == 999 {
            events.push(Event::Egm(ms / 1000));
        }
        if events.is_empty() {
            continue;
        }
        if let Some(wait) = Duration::from_secs_f64(ms as f64 / 1e3 / speed).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let wall_ns = start_ns + ms as i64 * 1_000_000;
        for e in events {
            // The live code's work: make the record (a frame is a fresh buffer, as from a grabber).
            let record = match e {
                Event::Frame(i) => Record::Frame(FrameRecord {
                    run: 1,
                    index: i,
                    rows: 512,
                    columns: 512,
                    pixels: FramePixels::from_u16(frames[i as usize % frames.len()].clone()),
                }),
                Event::Tip(t, k) => Record::Tip(Box::new(tip(t, k))),
                Event::Egm(s) => {
                    let wave = |phase: f64| -> Vec<f32> {
                        (0..1000).map(|i| ((s * 1000 + i) as f64 * 0.0063 + phase).sin() as f32).collect()
                    };
                    Record::Egm(EgmChunk {
                        t_ms: s as f64 * 1000.0,
                        sample_rate_hz: 1000.0,
                        lv_tip_mv: wave(0.0),
                        lv_ring_mv: wave(1.0),
                        ecg_mv: wave(2.0),
                    })
                }
            };
            match recorder {
                Some(r) => {
                    r.sender().send_at(wall_ns, record);
                }
                None => drop(std::hint::black_box(record)),
            }
        }
    }
    started.elapsed()
}

fn main() {
    let minutes = arg("--minutes", 10.0);
    let speed = arg("--speed", 5.0);
    let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/cases/synthetic-seed7/lao30.dcm");
    let run = venogram::read_xa_file(&case).expect("the bundled case");
    assert_eq!((run.cine.rows(), run.cine.columns()), (512, 512), "the bench expects 512x512 frames");
    let frames: Vec<Vec<u16>> = run.cine.frames().map(|f| f.samples.to_vec()).collect();
    println!(
        "recording overhead: {minutes} min simulated session (512x512 cine 15 fps, 4 tips 100 Hz, EGM 1 kHz), played at {speed}x"
    );

    let cpu0 = cpu_s();
    let wall_base = play(minutes, speed, &frames, None);
    let cpu_base = cpu_s() - cpu0;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.rrd");
    let info = SessionInfo {
        software: "csnav bench".into(),
        schema: recording::SCHEMA.into(),
        mode: SessionMode::Simulator,
        case_pseudonym: "case-bench".into(),
        command: "bench".into(),
        started_unix_ms: 0,
        config: serde_json::json!({}),
    };
    let cpu1 = cpu_s();
    let recorder = Recorder::create(&path, &info, RecorderConfig::default()).unwrap();
    recorder.send(Record::Run(RunInfo {
        run: 1,
        source: "lao30.dcm".into(),
        rows: 512,
        columns: 512,
        frame_count: 0,
        bits_stored: 12,
        frame_time_ms: Some(66.7),
        primary_angle_deg: None,
        secondary_angle_deg: None,
        camera: None,
    }));
    let wall_rec = play(minutes, speed, &frames, Some(&recorder));
    let finishing = Instant::now();
    let stats = recorder.finish().unwrap();
    let finish_s = finishing.elapsed().as_secs_f64();
    let cpu_rec = cpu_s() - cpu1;

    let procedure_s = minutes * 60.0;
    let overhead_cpu = cpu_rec - cpu_base;
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| procedure time | {procedure_s:.0} s (played in {:.1} s; without recording {:.1} s) |",
        wall_rec.as_secs_f64(),
        wall_base.as_secs_f64()
    );
    println!("| CPU, session without recording | {cpu_base:.1} s |");
    println!("| CPU, session with recording | {cpu_rec:.1} s (closing the file {finish_s:.1} s) |");
    println!("| recorder CPU share at real time | {:.1} % of one core |", 100.0 * overhead_cpu / procedure_s);
    println!("| items recorded | {} |", stats.sent.describe());
    println!(
        "| items dropped | {} |",
        if stats.dropped.total() == 0 { "none".to_owned() } else { stats.dropped.describe() }
    );
    println!("| flushes | {} |", stats.flushes);
    println!(
        "| file size | {:.1} MB, {:.1} MB per minute |",
        stats.file_bytes as f64 / 1e6,
        stats.file_bytes as f64 / 1e6 / minutes
    );
}
