//! Device-link benchmark on loopback, real clock: command round trip (request to response)
//! while the device paces, event latency (a beat's scheduled time on the device clock to its
//! arrival at the client, which includes the beat timer's own lateness) and beat-interval
//! jitter, with the controlling client issuing commands back to back as load and an observer
//! also subscribed. Targets (issue 6): p99 round trip under 1 ms, beat jitter under 1 ms at
//! 100 bpm. `cargo bench -p device-link --bench link`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: a failure is a failed run")]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use device_link::client::DeviceClient;
use device_link::heart::electrodes_in_vein;
use device_link::lead::{LeadModel, Pole, Vector};
use device_link::protocol::{Command, Event, PacingMode, Program, Role};
use device_link::server::{ServerConfig, serve};
use simulator::SyntheticPatient;

fn unix_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let seconds = 30.0;
    let rate_bpm = 100.0;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(serve(listener, SyntheticPatient::generate(7), ServerConfig::default(), None, shutdown));
        let (client, mut events) = DeviceClient::connect(&addr, "bench", Role::Control).await.unwrap();
        let (_observer, mut watched) = DeviceClient::connect(&addr, "observer", Role::Observe).await.unwrap();
        let origin = client.info().clock_origin_unix_ms;
        let patient = SyntheticPatient::generate(7);
        let electrodes =
            electrodes_in_vein(&patient, venogram::VeinLabel::PosterolateralVein, 0.67, LeadModel::Quartet).unwrap();
        client
            .request(Command::PlaceLead {
                lead: LeadModel::Quartet,
                electrodes_in_patient_mm: electrodes,
                site: "bench".into(),
            })
            .await
            .unwrap();
        let vector = Vector { cathode: 0, anode: Pole::RvCoil };
        let program = Program {
            mode: PacingMode::LvWithRvBackup,
            vector: Some(vector),
            amplitude_volts: 3.0,
            pulse_width_ms: 0.5,
            rate_bpm,
        };
        client.request(Command::Program { program }).await.unwrap();
        // Observer drains in the background.
        tokio::spawn(async move { while watched.recv().await.is_some() {} });
        // Beats: latency and arrival times.
        let collector = tokio::spawn(async move {
            let (mut latency, mut arrivals) = (Vec::new(), Vec::new());
            let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
                if let Event::Beat(b) = e
                    && b.mode == PacingMode::LvWithRvBackup
                {
                    let now = unix_ms();
                    latency.push(now - (origin + b.t_ms));
                    arrivals.push(now);
                }
            }
            (latency, arrivals)
        });
        // Load and round trips: commands back to back for the whole run.
        let mut round_trips = Vec::new();
        let started = Instant::now();
        let mut k = 0u64;
        while started.elapsed().as_secs_f64() < seconds {
            let command = if k.is_multiple_of(2) { Command::Status } else { Command::MeasureImpedance { vector } };
            let t = Instant::now();
            client.request(command).await.unwrap();
            round_trips.push(t.elapsed().as_secs_f64() * 1e6);
            k += 1;
        }
        let (mut latency, arrivals) = collector.await.unwrap();
        let rr = 60_000.0 / rate_bpm;
        let mut jitter: Vec<f64> = arrivals.windows(2).map(|w| (w[1] - w[0] - rr).abs() * 1e3).collect();
        round_trips.sort_by(f64::total_cmp);
        for v in &mut latency {
            *v *= 1e3;
        }
        latency.sort_by(f64::total_cmp);
        jitter.sort_by(f64::total_cmp);
        println!(
            "device link on loopback, {seconds} s at {rate_bpm} bpm with an observer and back-to-back commands as load"
        );
        println!("{:<34} {:>8} {:>9} {:>9} {:>9}", "measure", "count", "p50 us", "p99 us", "max us");
        for (name, v) in [
            ("command round trip", &round_trips),
            ("event latency (beat to client)", &latency),
            ("beat interval jitter", &jitter),
        ] {
            println!(
                "{name:<34} {:>8} {:>9.0} {:>9.0} {:>9.0}",
                v.len(),
                percentile(v, 0.5),
                percentile(v, 0.99),
                v[v.len() - 1]
            );
        }
        println!("(targets: round trip p99 < 1000 us, beat jitter < 1000 us)");
    });
}
