//! The device model over real sockets on tokio's paused clock: beats in true beat time
//! without waiting for it, control held by one client, and every way a test can end badly
//! (stop, goodbye, dropped link, silent client, wrong version, malformed and oversized frames,
//! out-of-range output) leaving the device in safe pacing.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use std::time::Duration;

use device_link::client::{ClientError, DeviceClient};
use device_link::heart::electrodes_in_vein;
use device_link::lead::{LeadModel, Pole, Vector};
use device_link::protocol::{
    Capture, ClientFrame, Command, DeviceError, Event, PROTOCOL_NAME, PROTOCOL_VERSION, PacingMode, Program, Reply,
    Role, SafetyReason, ServerFrame, encode_frame,
};
use device_link::server::{ServerConfig, serve};
use simulator::SyntheticPatient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

async fn start() -> (String, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(serve(listener, SyntheticPatient::generate(7), ServerConfig::default(), None, shutdown));
    (addr, stop)
}

fn place() -> Command {
    let patient = SyntheticPatient::generate(7);
    let electrodes =
        electrodes_in_vein(&patient, venogram::VeinLabel::PosterolateralVein, 0.67, LeadModel::Quartet).unwrap();
    Command::PlaceLead { lead: LeadModel::Quartet, electrodes_in_patient_mm: electrodes, site: "PLV 2/3".into() }
}

const VECTOR: Vector = Vector { cathode: 0, anode: Pole::RvCoil };

fn lv(amplitude_volts: f64) -> Program {
    Program { mode: PacingMode::LvOnly, vector: Some(VECTOR), amplitude_volts, pulse_width_ms: 0.5, rate_bpm: 100.0 }
}

/// The next event matching `want`, within `within` of (paused) time.
async fn next_event(events: &mut mpsc::Receiver<Event>, within: Duration, want: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(within, async {
        loop {
            let e = events.recv().await.expect("event stream ended");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .expect("no matching event in time")
}

#[tokio::test(start_paused = true)]
async fn beats_come_in_beat_time_and_stop_is_safe() {
    let (addr, _stop) = start().await;
    let (client, mut events) = DeviceClient::connect(&addr, "test", Role::Control).await.unwrap();
    assert_eq!(client.role(), Role::Control);
    assert!(client.info().simulated);
    assert_eq!(client.request(place()).await.unwrap(), Reply::Ack);
    assert_eq!(client.request(Command::Program { program: lv(6.0) }).await.unwrap(), Reply::Ack);
    let mut times = Vec::new();
    while times.len() < 20 {
        if let Event::Beat(b) = next_event(
            &mut events,
            Duration::from_secs(5),
            |e| matches!(e, Event::Beat(b) if b.mode == PacingMode::LvOnly),
        )
        .await
        {
            assert_eq!(b.capture, Capture::Captured);
            times.push(b.t_ms);
        }
    }
    for w in times.windows(2) {
        assert!((w[1] - w[0] - 600.0).abs() < 1e-6, "100 bpm is 600 ms apart: {}", w[1] - w[0]);
    }
    let Reply::Impedance { ohm, .. } = client.request(Command::MeasureImpedance { vector: VECTOR }).await.unwrap()
    else {
        panic!()
    };
    assert!((200.0..2000.0).contains(&ohm));
    client.request(Command::Stop).await.unwrap();
    let safe = next_event(&mut events, Duration::from_secs(5), |e| matches!(e, Event::SafePacing { .. })).await;
    assert!(
        matches!(safe, Event::SafePacing { reason: SafetyReason::StopRequested, program } if program.mode == PacingMode::Vvi)
    );
    // Out of range: a typed error, the device stays safe.
    let err = client.request(Command::Program { program: lv(15.0) }).await.unwrap_err();
    assert!(matches!(err, ClientError::Device(DeviceError::OutOfRange { .. })), "{err}");
    let Reply::Status(status) = client.request(Command::Status).await.unwrap() else { panic!() };
    assert!(status.safe && status.lead == Some(LeadModel::Quartet) && status.site.as_deref() == Some("PLV 2/3"));
}

#[tokio::test(start_paused = true)]
async fn one_controller_observers_read_only_and_leaving_is_safe() {
    let (addr, _stop) = start().await;
    let (control, _events) = DeviceClient::connect(&addr, "control", Role::Control).await.unwrap();
    let second = DeviceClient::connect(&addr, "second", Role::Control).await.unwrap_err();
    assert_eq!(second, ClientError::Refused(DeviceError::ControlHeld));
    let (observer, mut watched) = DeviceClient::connect(&addr, "observer", Role::Observe).await.unwrap();
    assert!(matches!(observer.request(Command::Stop).await, Err(ClientError::Device(DeviceError::ReadOnly))));
    assert!(matches!(observer.request(Command::Status).await, Ok(Reply::Status(_))));
    control.request(place()).await.unwrap();
    control.request(Command::Program { program: lv(3.0) }).await.unwrap();
    next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::ProgramApplied { .. })).await;
    // The controller leaves (goodbye on drop): safe pacing at once, seen by the observer.
    drop(control);
    let e = next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::SafePacing { .. })).await;
    assert!(matches!(e, Event::SafePacing { reason: SafetyReason::ClientLeft, .. }), "{e:?}");
    // Control is free again.
    let (again, _) = DeviceClient::connect(&addr, "again", Role::Control).await.unwrap();
    assert_eq!(again.role(), Role::Control);
}

/// A raw client: handshake by hand, then whatever the test does.
async fn raw_control(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let hello = ClientFrame::Hello {
        protocol: PROTOCOL_NAME.into(),
        version: PROTOCOL_VERSION,
        client: "raw".into(),
        role: Role::Control,
    };
    s.write_all(&encode_frame(&hello).unwrap()).await.unwrap();
    let welcome = read_frame(&mut s).await.unwrap();
    assert!(matches!(welcome, ServerFrame::Welcome { .. }), "{welcome:?}");
    for (id, command) in [(1, place()), (2, Command::Program { program: lv(4.0) })] {
        s.write_all(&encode_frame(&ClientFrame::Request { id, command }).unwrap()).await.unwrap();
    }
    s
}

async fn read_frame(s: &mut TcpStream) -> Option<ServerFrame> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(serde_json::from_slice(&body).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_dropped_link_or_a_silent_client_returns_the_device_to_safe_pacing() {
    let (addr, _stop) = start().await;
    let (_observer, mut watched) = DeviceClient::connect(&addr, "observer", Role::Observe).await.unwrap();
    // Dropped mid-test.
    let s = raw_control(&addr).await;
    next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::ProgramApplied { .. })).await;
    drop(s);
    let e = next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::SafePacing { .. })).await;
    assert!(matches!(e, Event::SafePacing { reason: SafetyReason::LinkDropped, .. }), "{e:?}");
    // Silent mid-test: heartbeats stop, the socket stays open.
    let _silent = raw_control(&addr).await;
    let started = tokio::time::Instant::now();
    next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::ProgramApplied { .. })).await;
    let e = next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::SafePacing { .. })).await;
    assert!(matches!(e, Event::SafePacing { reason: SafetyReason::HeartbeatMissed, .. }), "{e:?}");
    assert!(started.elapsed() <= Duration::from_millis(800), "declared after {:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn wrong_versions_and_bad_frames_get_the_documented_answers() {
    let (addr, _stop) = start().await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let hello =
        ClientFrame::Hello { protocol: PROTOCOL_NAME.into(), version: 2, client: "future".into(), role: Role::Control };
    s.write_all(&encode_frame(&hello).unwrap()).await.unwrap();
    assert_eq!(
        read_frame(&mut s).await,
        Some(ServerFrame::Refused { error: DeviceError::UnsupportedVersion { offered: 2, supported: 1 } })
    );
    assert_eq!(read_frame(&mut s).await, None, "closed after refusing");

    let mut s = raw_control(&addr).await;
    let mut bad = vec![0, 0, 0, 4];
    bad.extend_from_slice(b"oops");
    s.write_all(&bad).await.unwrap();
    // Events and heartbeats may come first; the error arrives and the link stays up.
    while !matches!(read_frame(&mut s).await.unwrap(), ServerFrame::Error { error: DeviceError::Malformed { .. } }) {}
    // Oversized: the connection closes and the device is safe.
    let (_observer, mut watched) = DeviceClient::connect(&addr, "observer", Role::Observe).await.unwrap();
    s.write_all(&[0x40, 0, 0, 0]).await.unwrap();
    let e = next_event(&mut watched, Duration::from_secs(5), |e| matches!(e, Event::SafePacing { .. })).await;
    assert!(matches!(e, Event::SafePacing { reason: SafetyReason::LinkDropped, .. }), "{e:?}");
}

/// Injected faults show over the link: a fracture reads over 2500 ohm and loses capture; an
/// insulation breach reads low; clearing the fault restores capture.
#[tokio::test(start_paused = true)]
async fn injected_faults_show_their_patterns() {
    use device_link::heart::Fault;
    let (addr, _stop) = start().await;
    let (client, mut events) = DeviceClient::connect(&addr, "faults", Role::Control).await.unwrap();
    client.request(place()).await.unwrap();
    let impedance = |reply: Reply| match reply {
        Reply::Impedance { ohm, .. } => ohm,
        other => panic!("{other:?}"),
    };
    let normal = impedance(client.request(Command::MeasureImpedance { vector: VECTOR }).await.unwrap());
    client.request(Command::InjectFault { fault: Some(Fault::Fracture) }).await.unwrap();
    assert!(impedance(client.request(Command::MeasureImpedance { vector: VECTOR }).await.unwrap()) > 2500.0);
    client
        .request(Command::Program { program: Program { mode: PacingMode::LvWithRvBackup, ..lv(6.0) } })
        .await
        .unwrap();
    let lost = next_event(
        &mut events,
        Duration::from_secs(5),
        |e| matches!(e, Event::Beat(b) if b.mode == PacingMode::LvWithRvBackup),
    )
    .await;
    assert!(
        matches!(lost, Event::Beat(b) if b.capture == Capture::Lost && b.rv_paced),
        "a fractured lead loses capture; the RV backs up"
    );
    client.request(Command::InjectFault { fault: Some(Fault::InsulationBreach) }).await.unwrap();
    let low = impedance(client.request(Command::MeasureImpedance { vector: VECTOR }).await.unwrap());
    assert!(low < 260.0 && low < normal, "{low} vs {normal}");
    client.request(Command::InjectFault { fault: None }).await.unwrap();
    let ok = next_event(
        &mut events,
        Duration::from_secs(5),
        |e| matches!(e, Event::Beat(b) if b.capture == Capture::Captured),
    )
    .await;
    assert!(matches!(ok, Event::Beat(_)));
}
