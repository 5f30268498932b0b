//! The procedures against the device model on tokio's paused clock: at seeded sites every
//! vector's capture threshold is the model's true threshold within one step (widened by the
//! model's 2% beat-to-beat variation), PNS is found
//! exactly where the model has it, the margin check agrees with the truth, the sweep covers
//! every vector, and a test cut short is incomplete, never a threshold.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use device_link::client::DeviceClient;
use device_link::heart::{HeartModelParams, LeadSite, electrodes_in_vein};
use device_link::lead::{LeadModel, Pole, Vector};
use device_link::procedures::{PhrenicOutcome, StepDownConfig, Stepped, ThresholdOutcome};
use device_link::protocol::{Command, OutputLimits, Role};
use device_link::runner::{Run, Session, SweepSettings};
use device_link::server::{ServerConfig, serve};
use simulator::SyntheticPatient;
use tokio::sync::watch;
use venogram::VeinLabel;

async fn device(seed: u64) -> (String, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(serve(listener, SyntheticPatient::generate(seed), ServerConfig::default(), None, shutdown));
    (addr, stop)
}

/// The step of the amplitude table at `volts`.
fn step_at(limits: &OutputLimits, volts: f64) -> f64 {
    limits.amplitude_bands.iter().find(|b| volts <= b.to_volts + 1e-9).map_or(0.5, |b| b.step_volts)
}

#[tokio::test(start_paused = true)]
async fn sweeps_find_the_true_thresholds_and_phrenic_stimulation() {
    let mut checked = 0;
    let mut pns_seen = 0;
    for (seed, label, fraction, lead) in [
        (7, VeinLabel::PosterolateralVein, 0.67, LeadModel::Quartet),
        (3, VeinLabel::LateralMarginalVein, 0.6, LeadModel::AttainPerforma),
        (19, VeinLabel::PosterolateralVein, 0.8, LeadModel::AcuityX4),
    ] {
        let patient = SyntheticPatient::generate(seed);
        let electrodes = electrodes_in_vein(&patient, label, fraction, lead).expect("the seeded site exists");
        let truth = LeadSite::new(&patient, lead, electrodes, HeartModelParams::default());
        let jitter = HeartModelParams::default().threshold_jitter;
        let (addr, _stop) = device(seed).await;
        let (client, mut events) = DeviceClient::connect(&addr, "sweep", Role::Control).await.unwrap();
        let limits = client.info().limits.clone();
        let mut session = Session {
            client: &client,
            events: &mut events,
            journal: None,
            site: format!("{label:?}"),
            epoch: tokio::time::Instant::now(),
        };
        session
            .command(Command::PlaceLead { lead, electrodes_in_patient_mm: electrodes, site: "test".into() })
            .await
            .unwrap();
        let settings = SweepSettings::default();
        let mut progress = Vec::new();
        let results = session.sweep(lead, &settings, |done, total| progress.push((done, total))).await;
        assert_eq!(results.len(), lead.vectors().len(), "every vector of {lead:?}");
        assert_eq!(progress.last(), Some(&(lead.vectors().len(), lead.vectors().len())));
        for r in &results {
            let true_threshold = truth.capture_threshold_volts(r.vector, 0.5);
            let step = step_at(&limits, true_threshold);
            match r.threshold.complete().unwrap() {
                ThresholdOutcome::Threshold { value, at_floor: false } => {
                    // One step, widened by the model's beat-to-beat variation (3 sigma): near its
                    // threshold a beat captures or not by chance, as in a patient.
                    let tolerance = step + 3.0 * jitter * true_threshold + 1e-6;
                    assert!(
                        (value - true_threshold).abs() <= tolerance,
                        "seed {seed} {}: found {value} V, truth {true_threshold:.3} V",
                        r.name
                    );
                }
                ThresholdOutcome::NoCaptureAtStart { start } => {
                    assert!(true_threshold > start * 0.97, "{}: {true_threshold}", r.name);
                }
                other @ ThresholdOutcome::Threshold { .. } => {
                    panic!("{}: {other:?} (truth {true_threshold:.3})", r.name)
                }
            }
            let true_pns = truth.phrenic_threshold_volts(r.vector, 0.5);
            match r.phrenic.complete().unwrap() {
                PhrenicOutcome::NoneAtScreen { .. } => {
                    assert!(true_pns > 10.0 * 0.97, "seed {seed} {}: missed PNS at {true_pns:.2} V", r.name);
                }
                PhrenicOutcome::Threshold { volts } => {
                    pns_seen += 1;
                    let step = step_at(&limits, true_pns);
                    assert!(
                        (volts - true_pns).abs() <= step + 3.0 * jitter * true_pns + 1e-6,
                        "seed {seed} {}: PNS {volts} V, truth {true_pns:.2} V",
                        r.name
                    );
                    // The margin verdict agrees with the truth (away from the boundary).
                    if let (Some(ok), ThresholdOutcome::Threshold { .. }) =
                        (r.margin_ok, r.threshold.complete().unwrap())
                    {
                        let true_ratio = true_pns / true_threshold;
                        if (true_ratio - 2.0).abs() > 0.3 {
                            assert_eq!(ok, true_ratio >= 2.0, "{}: ratio {true_ratio:.2}", r.name);
                        }
                    }
                }
            }
            let m = r.measurements.unwrap();
            assert!((m.impedance_ohm / truth.impedance_ohm(r.vector) - 1.0).abs() < 0.05);
            checked += 1;
        }
    }
    assert_eq!(checked, 10 + 16 + 17, "every vector of the three leads");
    println!("{checked} vectors, PNS found on {pns_seen}");
}

#[tokio::test(start_paused = true)]
async fn a_test_cut_short_is_incomplete() {
    let (addr, _stop) = device(7).await;
    let patient = SyntheticPatient::generate(7);
    let electrodes = electrodes_in_vein(&patient, VeinLabel::PosterolateralVein, 0.67, LeadModel::Quartet).unwrap();
    let (client, mut events) = DeviceClient::connect(&addr, "test", Role::Control).await.unwrap();
    client
        .request(Command::PlaceLead {
            lead: LeadModel::Quartet,
            electrodes_in_patient_mm: electrodes,
            site: "PLV".into(),
        })
        .await
        .unwrap();
    // An observer hits emergency VVI? Observers cannot; a second controller cannot. The
    // device itself going safe (a fault that makes the lead move) ends the test: simulate it
    // by sending a stop from a task while the test runs.
    let vector = Vector { cathode: 0, anode: Pole::RvCoil };
    let mut session = Session {
        client: &client,
        events: &mut events,
        journal: None,
        site: "PLV".into(),
        epoch: tokio::time::Instant::now(),
    };
    let run = {
        let stopper = async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            client.request(Command::Stop).await.unwrap();
            std::future::pending::<()>().await;
        };
        tokio::select! {
            run = session.threshold(vector, Stepped::Amplitude { pulse_width_ms: 0.5 }, 5.0, StepDownConfig::default()) => run,
            () = stopper => unreachable!(),
        }
    };
    assert!(matches!(&run, Run::Incomplete { reason } if reason.contains("StopRequested")), "{run:?}");
    assert!(run.complete().is_none());
}
