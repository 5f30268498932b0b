//! Tracking benchmark: OpenIGTLink ingest rate and latency from the sender's write to the
//! tip state a consumer reads (the hub's latest samples), for 1, 8 and 32 tools at 100 and
//! 1000 Hz each, over loopback TCP on this machine; snapping time per tip on a 20-branch
//! tree; and pyigtl's own send/receive rate as the peer. Target (issue 5): p99 under 2 ms
//! at 1000 Hz with 8 tools on 2 cores; snapping under 20 us per tip.
//!
//! `cargo bench -p navigation --bench tracking` (release). The pyigtl row needs the peers
//! venv (`scripts/install-peers.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: a failure is a failed run")]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nalgebra::{Vector3, vector};
use navigation::igtl::{Body, DeviceName, Message, Timestamp, Transform};
use navigation::link::{Hub, LinkConfig, bind, serve};
use navigation::snap::Snapper;
use navigation::tree::{BranchInput, NavTree};
use venogram::VeinLabel;

/// Seconds per configuration.
const SECONDS: f64 = 2.0;

struct Row {
    tools: usize,
    rate_hz: f64,
    sent: u64,
    observed: u64,
    latencies_us: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs one configuration: a sender thread writes TRANSFORMs for `tools` tools at `rate_hz`
/// each, the time of each write (since `epoch`) in its time stamp; a consumer task wakes on
/// every hub update and measures, for each new sample it sees, the delay since the write.
fn run(tools: usize, rate_hz: f64) -> Row {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (hub, _inbox) = Hub::new(16);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(serve(listener, hub.clone(), LinkConfig::default(), shutdown));
        let epoch = Instant::now();
        let names: Vec<DeviceName> = (0..tools).map(|k| DeviceName::new(&format!("Tool{k:02}")).unwrap()).collect();
        let sender = std::thread::spawn(move || {
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            socket.set_nodelay(true).unwrap();
            let period = Duration::from_secs_f64(1.0 / rate_hz);
            let ticks = (SECONDS * rate_hz) as u64;
            let mut sent = 0u64;
            let mut buf = Vec::new();
            for tick in 0..ticks {
                let due = period * tick as u32;
                if let Some(wait) = due.checked_sub(epoch.elapsed()) {
                    std::thread::sleep(wait);
                }
                // One tracker frame: every tool's sample, written together.
                buf.clear();
                let now = epoch.elapsed().as_secs_f64();
                for name in &names {
                    let m = Message {
                        timestamp: Timestamp::from_secs_f64(now),
                        ..Message::new(name.clone(), Body::Transform(Transform::IDENTITY))
                    };
                    buf.extend_from_slice(&m.encode().unwrap());
                    sent += 1;
                }
                socket.write_all(&buf).unwrap();
            }
            sent
        });
        let mut updates = hub.subscribe();
        let mut latencies_us = Vec::new();
        let mut seen: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(SECONDS + 0.5);
        loop {
            tokio::select! {
                _ = updates.changed() => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
            let now = epoch.elapsed().as_secs_f64();
            let samples = hub.samples();
            for k in 0..tools {
                let name = format!("Tool{k:02}");
                if let Some(s) = samples.get(&name) {
                    let sent = s.sent.as_secs_f64();
                    if seen.get(&name).is_none_or(|last| sent > *last) {
                        seen.insert(name, sent);
                        latencies_us.push((now - sent) * 1e6);
                    }
                }
            }
        }
        let sent = sender.join().unwrap();
        let observed = hub.counters().messages;
        stop.send(true).unwrap();
        latencies_us.sort_by(f64::total_cmp);
        Row { tools, rate_hz, sent, observed, latencies_us }
    })
}

/// Mean time to snap one tip on a tree of 20 branches, microseconds.
fn snapping_us() -> (usize, f64) {
    // A trunk with 19 side branches, 1 mm spacing, like a CS tree with its tributaries.
    let mut inputs = vec![BranchInput {
        parent: None,
        label: VeinLabel::CoronarySinus,
        points: (0..=150).map(|i| vector![f64::from(i), 0.0, 0.0]).collect(),
        radius: vec![4.0; 151],
    }];
    for b in 0..19 {
        let x0 = 5.0 + 7.5 * f64::from(b);
        let dir = Vector3::new(0.3, (f64::from(b) * 0.7).cos(), (f64::from(b) * 0.7).sin()).normalize();
        inputs.push(BranchInput {
            parent: Some(0),
            label: VeinLabel::Branch,
            points: (0..=60).map(|i| vector![x0, 0.0, 0.0] + dir * f64::from(i)).collect(),
            radius: vec![1.5; 61],
        });
    }
    let tree = NavTree::new(inputs, 1.0).unwrap();
    let tips: Vec<Vector3<f64>> = (0..100_000)
        .map(|i| {
            let f = f64::from(i);
            vector![(f * 0.37) % 150.0, 20.0 * (f * 0.11).sin(), 20.0 * (f * 0.07).cos()]
        })
        .collect();
    let mut snapper = Snapper::default();
    let started = Instant::now();
    let mut hits = 0usize;
    for t in &tips {
        hits += usize::from(snapper.snap(&tree, t).is_some());
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / tips.len() as f64;
    assert!(hits > 0);
    (tree.branches.len(), us)
}

fn pyigtl_rate(tools: usize) -> Option<(f64, f64)> {
    let venv = std::env::var_os("CSNAV_PEERS_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/csnav/peers-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    if !python.exists() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/pyigtl_rate.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .arg(tools.to_string())
        .arg("2")
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["sent_per_s"].as_f64()?, v["received_latest_per_s"].as_f64()?))
}

fn main() {
    println!(
        "OpenIGTLink ingest over loopback TCP, {SECONDS} s per row (latency: sender's write to the tip state a consumer reads)"
    );
    println!(
        "{:>5} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "tools", "rate Hz", "msgs/s", "decoded/s", "p50 us", "p99 us", "max us", "seen %"
    );
    for tools in [1usize, 8, 32] {
        for rate_hz in [100.0, 1000.0] {
            let r = run(tools, rate_hz);
            let lat = &r.latencies_us;
            println!(
                "{:>5} {:>8.0} {:>10.0} {:>10.0} {:>9.0} {:>9.0} {:>9.0} {:>9.1}",
                r.tools,
                r.rate_hz,
                r.sent as f64 / SECONDS,
                r.observed as f64 / SECONDS,
                percentile(lat, 0.5),
                percentile(lat, 0.99),
                lat.last().copied().unwrap_or(f64::NAN),
                100.0 * lat.len() as f64 / r.sent.max(1) as f64
            );
        }
    }
    println!(
        "(seen %: samples a consumer woke for; the rest were superseded by a newer sample of the same tool, by design)"
    );
    let (branches, us) = snapping_us();
    println!("\nsnapping: {us:.2} us per tip on a {branches}-branch tree (target < 20 us)");
    match pyigtl_rate(8) {
        Some((sent, received)) => println!(
            "\npeer pyigtl 0.3.4 (one process, server -> client, 8 tools): sends {sent:.0} msgs/s, client drains {received:.0} latest-per-device msgs/s"
        ),
        None => println!("\npeer pyigtl: not measured (run scripts/install-peers.sh)"),
    }
}
