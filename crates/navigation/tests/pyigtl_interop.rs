//! Interop with pyigtl (0.3.4, the OpenIGTLink peer installed by `scripts/install-peers.sh`)
//! in both directions: pyigtl server -> csnav client and csnav server -> pyigtl client,
//! TRANSFORM and STRING, header versions 1 and 2 with metadata.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nalgebra::Matrix4;
use navigation::igtl::{Body, DeviceName, HeaderVersion, Message, MetaEntry, Text, Timestamp, Transform};
use navigation::link::{Hub, LinkConfig, bind, connect, serve};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

mod common;
use common::{peers_python, until};

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/pyigtl_peer.py")
}

/// The matrix the peer script sends for `k`.
fn peer_matrix(k: f64) -> Matrix4<f64> {
    let (c, s) = (0.5f64.cos(), 0.5f64.sin());
    Matrix4::new(c, -s, 0.0, 10.0 * k, s, c, 0.0, -20.5, 0.0, 0.0, 1.0, 300.25, 0.0, 0.0, 0.0, 1.0)
}

fn close(a: &Matrix4<f64>, b: &Matrix4<f64>) -> bool {
    (a - b).abs().max() < 1e-5
}

fn spawn_peer(mode: &str, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(peers_python())
        .arg(peer_script())
        .arg(mode)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the pyigtl peer")
}

async fn peer_lines(child: &mut tokio::process::Child, n: usize) -> Vec<serde_json::Value> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    while out.len() < n {
        let line =
            tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("peer output").unwrap();
        let Some(line) = line else { break };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer printed {line:?}: {e}"));
        assert!(v.get("error").is_none(), "peer: {v}");
        out.push(v);
    }
    assert_eq!(out.len(), n, "peer output {out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyigtl_server_to_csnav_client() {
    let port = {
        let l = bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let mut peer = spawn_peer("server", port);
    let (hub, mut inbox) = Hub::new(16);
    let (stop, shutdown) = watch::channel(false);
    let client = tokio::spawn(connect(format!("127.0.0.1:{port}"), hub.clone(), LinkConfig::default(), shutdown));

    until("both transforms", || {
        hub.samples().get("GuidewireV1").is_some() && hub.samples().get("GuidewireV2").is_some()
    })
    .await;
    let (v1, v2) = {
        let s = hub.samples();
        (s.get("GuidewireV1").unwrap().clone(), s.get("GuidewireV2").unwrap().clone())
    };
    assert!(close(&v1.tracker_from_sensor, &peer_matrix(1.0)), "{}", v1.tracker_from_sensor);
    assert!(close(&v2.tracker_from_sensor, &peer_matrix(2.0)), "{}", v2.tracker_from_sensor);
    assert_eq!(v1.sent, Timestamp { seconds: 1, fraction: 0x8000_0000 });
    assert!((v2.sent.as_secs_f64() - 1_700_000_000.25).abs() < 1e-6);
    assert_eq!(v2.phase.map(|p| p.cardiac), Some(0.25), "v2 metadata carries the cardiac phase");

    let mut notes = Vec::new();
    while notes.len() < 2 {
        let (_, m) = tokio::time::timeout(Duration::from_secs(20), inbox.recv()).await.unwrap().unwrap();
        notes.push(m);
    }
    notes.sort_by(|a, b| a.device_name.cmp(&b.device_name));
    assert_eq!(notes[0].body, Body::Text(Text::new("hello from pyigtl")));
    assert_eq!(notes[0].version, HeaderVersion::V1);
    assert_eq!(notes[1].body, Body::Text(Text::new("hello again, v2")));
    assert_eq!(notes[1].version, HeaderVersion::V2);
    assert_eq!(notes[1].meta("Language"), Some("en"));

    // csnav answers on the same connection; pyigtl reads it.
    hub.send(&Message::new(
        DeviceName::new("Reply").unwrap(),
        Body::Transform(Transform::from_matrix(&peer_matrix(3.0))),
    ))
    .unwrap();
    let reply = peer_lines(&mut peer, 1).await;
    assert_eq!(reply[0]["device"], "Reply");
    assert_eq!(peer.wait().await.unwrap().code(), Some(0));
    stop.send(true).unwrap();
    client.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csnav_server_to_pyigtl_client() {
    let listener = bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hub, _inbox) = Hub::new(16);
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve(listener, hub.clone(), LinkConfig::default(), shutdown));
    let mut peer = spawn_peer("client", port);
    until("pyigtl to connect", || hub.counters().connected == 1).await;

    let v1 = Message {
        timestamp: Timestamp::from_secs_f64(1.5),
        ..Message::new(DeviceName::new("TargetV1").unwrap(), Body::Transform(Transform::from_matrix(&peer_matrix(4.0))))
    };
    let v2 = Message {
        version: HeaderVersion::V2,
        message_id: 9,
        metadata: vec![MetaEntry { key: "Site".into(), encoding: 3, value: "PLV mid".into() }],
        ..Message::new(DeviceName::new("TargetV2").unwrap(), Body::Transform(Transform::from_matrix(&peer_matrix(5.0))))
    };
    let s1 = Message::new(DeviceName::new("NoteV1").unwrap(), Body::Text(Text::new("capture at 0.8 V")));
    let s2 = Message {
        version: HeaderVersion::V2,
        metadata: vec![MetaEntry { key: "Level".into(), encoding: 3, value: "warning".into() }],
        ..Message::new(DeviceName::new("NoteV2").unwrap(), Body::Text(Text::new("phrenic stimulation at 6.0 V")))
    };
    for m in [&v1, &v2, &s1, &s2] {
        hub.send(m).unwrap();
    }
    let got = peer_lines(&mut peer, 4).await;
    let m = |v: &serde_json::Value| {
        let rows: Vec<Vec<f64>> = serde_json::from_value(v["matrix"].clone()).unwrap();
        Matrix4::from_fn(|r, c| rows[r][c])
    };
    assert_eq!(got[0]["device"], "TargetV1");
    assert_eq!(got[0]["header_version"], 1);
    assert!(close(&m(&got[0]), &peer_matrix(4.0)));
    assert!((got[0]["timestamp"].as_f64().unwrap() - 1.5).abs() < 1e-6);
    assert_eq!(got[1]["device"], "TargetV2");
    assert_eq!(got[1]["header_version"], 2);
    assert_eq!(got[1]["message_id"], 9);
    assert_eq!(got[1]["metadata"]["Site"], "PLV mid");
    assert!(close(&m(&got[1]), &peer_matrix(5.0)));
    assert_eq!(got[2]["string"], "capture at 0.8 V");
    assert_eq!(got[3]["string"], "phrenic stimulation at 6.0 V");
    assert_eq!(got[3]["metadata"]["Level"], "warning");

    // pyigtl's reply arrives as a tool sample.
    until("pyigtl's reply", || hub.samples().get("Reply").is_some()).await;
    assert!(close(&hub.samples().get("Reply").unwrap().tracker_from_sensor, &peer_matrix(3.0)));
    assert_eq!(peer.wait().await.unwrap().code(), Some(0));
    stop.send(true).unwrap();
    server.await.unwrap();
}
