//! `csnav send-tips`: the test sender. Plays a tracked tip advancing along the case's
//! ground-truth centerline from the ostium to a target, as an electromagnetic tracker would
//! send it over OpenIGTLink (TRANSFORM of the sensor in tracker space, through the synthetic
//! tracker's true placement), with sensor noise, a configurable rate and dropouts; to a
//! running `csnav track` (or, serving as a tracker's own server does, to `csnav live`), to a
//! file for `csnav track --replay`, or both.

use std::io::Write as _;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use nalgebra::Vector3;
use navigation::igtl::{Body, DeviceName, HeaderVersion, Message, MetaEntry, Timestamp, Transform};
use simulator::rng::SimRng;

use crate::cli::SendTipsArgs;
use crate::nav_case::NavCase;

/// Random stream of the sender's noise and dropouts.
const SENDER_STREAM: u64 = 0x7365_6e64;

/// Runs `csnav send-tips`.
pub fn run(args: &SendTipsArgs) -> anyhow::Result<ExitCode> {
    if !(10.0..=1000.0).contains(&args.rate_hz) {
        bail!("--rate-hz {} is outside 10-1000 Hz", args.rate_hz);
    }
    if !(0.0..=5.0).contains(&args.noise_mm) || !(0.0..1.0).contains(&args.dropout) || args.speed_mm_s <= 0.0 {
        bail!("--noise-mm must be 0-5, --dropout 0-1 (exclusive) and --speed-mm-s positive");
    }
    if args.to.is_none() && args.serve.is_none() && args.capture.is_none() {
        bail!("nothing to send to: give --to HOST:PORT, --serve HOST:PORT, --capture FILE, or both");
    }
    let case = NavCase::load(&args.case)?;
    let target = match &args.target {
        Some(spec) => case.parse_target(spec)?,
        None => case.default_target().context("the case has no PLV or LMV to aim at; give --target")?,
    };
    let tool = DeviceName::new(&args.tool)?;
    let mut socket = match (&args.to, &args.serve) {
        (Some(addr), _) => {
            let s =
                TcpStream::connect(addr).with_context(|| format!("connecting to the OpenIGTLink receiver {addr}"))?;
            s.set_nodelay(true)?;
            Some(s)
        }
        (None, Some(addr)) => {
            // As a tracker's own server does (PLUS): wait for the receiver to connect. What
            // it sends (a request for tracking data) needs no answer but the stream itself.
            let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            eprintln!("serving OpenIGTLink on {}; waiting for a receiver", listener.local_addr()?);
            let (s, peer) = listener.accept().context("accepting the OpenIGTLink receiver")?;
            eprintln!("receiver {peer} connected");
            s.set_nodelay(true)?;
            Some(s)
        }
        (None, None) => None,
    };
    let mut capture = match &args.capture {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut rng = SimRng::new(args.seed, SENDER_STREAM);
    let sigma = args.noise_mm / 3f64.sqrt();
    let travel_s = target.arc_mm / args.speed_mm_s;
    let samples = ((travel_s + args.hold_s) * args.rate_hz).ceil() as u64;
    let t0 = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1.0e9, |d| d.as_secs_f64());
    let started = Instant::now();
    let (mut sent, mut dropped) = (0u64, 0u64);
    let mut dropout_until_s = -1.0;
    for k in 0..=samples {
        let t = k as f64 / args.rate_hz;
        if socket.is_some()
            && let Some(wait) = Duration::from_secs_f64(t).checked_sub(started.elapsed())
        {
            std::thread::sleep(wait);
        }
        if t < dropout_until_s {
            dropped += 1;
            continue;
        }
        if rng.chance(args.dropout) {
            // The sensor drops out (occluded field, distortion) for 50-500 ms.
            dropout_until_s = t + rng.range(0.05, 0.5);
            dropped += 1;
            continue;
        }
        let s = (args.speed_mm_s * t).min(target.arc_mm);
        let noise = Vector3::new(rng.normal(0.0, sigma), rng.normal(0.0, sigma), rng.normal(0.0, sigma));
        let tracker_from_sensor = case.tracker_from_sensor_toward(&target, s, noise);
        let mut message = Message {
            timestamp: Timestamp::from_secs_f64(t0 + t),
            ..Message::new(tool.clone(), Body::Transform(Transform::from_matrix(&tracker_from_sensor.to_homogeneous())))
        };
        if args.header_v2 {
            message.version = HeaderVersion::V2;
            message.message_id = k as u32;
            message.metadata = vec![MetaEntry { key: "ArcFromOstiumMm".into(), encoding: 3, value: format!("{s:.3}") }];
        }
        let bytes = message.encode()?;
        if let Some(socket) = socket.as_mut() {
            socket.write_all(&bytes).context("sending to the OpenIGTLink receiver")?;
        }
        if let Some(file) = capture.as_mut() {
            file.write_all(&bytes).context("writing the capture")?;
        }
        sent += 1;
    }
    if let Some(mut file) = capture {
        file.flush().context("writing the capture")?;
    }
    println!(
        "sent {sent} samples of {} toward \"{}\" ({:.1} mm from the ostium) at {} Hz, {dropped} lost to dropouts",
        args.tool, target.name, target.arc_mm, args.rate_hz
    );
    Ok(ExitCode::SUCCESS)
}
