//! The OpenIGTLink link over real sockets: many peers at once, bad input on one connection
//! (garbage, a 4 GB body claim, a CRC mismatch, a stall mid-message) never disturbs the
//! others, the latest sample per tool is kept, and the client reconnects with backoff.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use std::time::Duration;

use navigation::igtl::{Body, DataType, DeviceName, FixedName, Message, StreamParams, Text, Transform};
use navigation::link::{Hub, LinkConfig, bind, connect, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

mod common;
use common::until;

fn transform(tool: &str, x: f32) -> Vec<u8> {
    let mut t = Transform::IDENTITY;
    t.0[9] = x;
    Message::new(DeviceName::new(tool).unwrap(), Body::Transform(t)).encode().unwrap()
}

fn config() -> LinkConfig {
    LinkConfig {
        stall_timeout: Duration::from_millis(300),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..LinkConfig::default()
    }
}

fn x_of(hub: &Hub, tool: &str) -> Option<f64> {
    hub.samples().get(tool).map(|s| s.tracker_from_sensor[(0, 3)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_are_dropped_and_good_ones_keep_working() {
    let listener = bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (hub, mut inbox) = Hub::new(8);
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve(listener, hub.clone(), config(), shutdown));

    let mut good = TcpStream::connect(addr).await.unwrap();
    good.write_all(&transform("Guidewire", 1.0)).await.unwrap();
    until("the first sample", || x_of(&hub, "Guidewire") == Some(1.0)).await;

    // Garbage: not OpenIGTLink.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0xAB; 200]).await.unwrap();
    // A header claiming a 4 GB body.
    let mut huge = TcpStream::connect(addr).await.unwrap();
    let mut h = transform("Huge", 0.0);
    h[42..50].copy_from_slice(&(4u64 << 30).to_be_bytes());
    huge.write_all(&h[..58]).await.unwrap();
    // A stall in the middle of a message.
    let mut staller = TcpStream::connect(addr).await.unwrap();
    staller.write_all(&transform("Stalled", 9.0)[..70]).await.unwrap();
    // A CRC mismatch, then a good message on the same connection.
    let mut corrupt = TcpStream::connect(addr).await.unwrap();
    let mut bad = transform("Lead", 3.0);
    bad[60] ^= 0x40;
    corrupt.write_all(&bad).await.unwrap();
    corrupt.write_all(&transform("Lead", 4.0)).await.unwrap();

    until("the dropped connections", || hub.counters().dropped_connections == 3).await;
    until("the lead's good sample", || x_of(&hub, "Lead") == Some(4.0)).await;
    assert_eq!(hub.counters().rejected, 1);
    assert_eq!(x_of(&hub, "Stalled"), None);
    // The dropped peers see their socket closed.
    let mut byte = [0u8; 1];
    assert_eq!(garbage.read(&mut byte).await.unwrap_or(0), 0);

    // The good peer still works, and a burst keeps only the latest sample.
    for k in 0..500 {
        good.write_all(&transform("Guidewire", k as f32)).await.unwrap();
    }
    until("the burst's last sample", || x_of(&hub, "Guidewire") == Some(499.0)).await;
    assert_eq!(hub.samples().tool_count(), 2);

    // A STRING goes to the inbox.
    good.write_all(&Message::new(DeviceName::new("Note").unwrap(), Body::Text(Text::new("hello"))).encode().unwrap())
        .await
        .unwrap();
    let (_, m) = tokio::time::timeout(Duration::from_secs(5), inbox.recv()).await.unwrap().unwrap();
    assert_eq!(m.body, Body::Text(Text::new("hello")));

    // The server sends to its peers.
    hub.send(&Message::new(DeviceName::new("Target").unwrap(), Body::Transform(Transform::IDENTITY))).unwrap();
    let mut got = vec![0u8; 106];
    tokio::time::timeout(Duration::from_secs(5), good.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(
        got,
        Message::new(DeviceName::new("Target").unwrap(), Body::Transform(Transform::IDENTITY)).encode().unwrap()
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_with_backoff() {
    // Reserve a port, close it, start the client against it, then open the server.
    let addr = {
        let l = bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let (client_hub, _inbox) = Hub::new(8);
    let (stop, shutdown) = watch::channel(false);
    // The client asks every server it reaches to start streaming tracking data.
    let start = Message::new(
        DeviceName::new("").unwrap(),
        Body::StartStream(
            DataType::TrackingData,
            Some(StreamParams { resolution_ms: 10, coordinate_name: FixedName::new("Patient").unwrap() }),
        ),
    );
    let client_config = LinkConfig { on_connect: vec![start.clone()], ..config() };
    let client = tokio::spawn(connect(addr.to_string(), client_hub.clone(), client_config, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(client_hub.counters().connected, 0);

    let (server_hub, mut server_inbox) = Hub::new(8);
    let (stop_server, server_shutdown) = watch::channel(false);
    let listener = bind(&addr.to_string()).await.unwrap();
    let server = tokio::spawn(serve(listener, server_hub.clone(), config(), server_shutdown));
    until("the client to connect", || server_hub.counters().connected == 1).await;
    let (_, request) = tokio::time::timeout(Duration::from_secs(5), server_inbox.recv()).await.unwrap().unwrap();
    assert_eq!(request, start);
    server_hub.send(&Message::new(DeviceName::new("Lead").unwrap(), Body::Transform(Transform::IDENTITY))).unwrap();
    until("the sample at the client", || client_hub.samples().get("Lead").is_some()).await;

    // The server goes away and comes back: the client finds it again.
    stop_server.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
    until("the client to notice", || client_hub.counters().connected == 0).await;
    let (again_hub, _again_inbox) = Hub::new(8);
    let (stop_again, again_shutdown) = watch::channel(false);
    let listener = bind(&addr.to_string()).await.unwrap();
    let again = tokio::spawn(serve(listener, again_hub.clone(), config(), again_shutdown));
    until("the client to reconnect", || again_hub.counters().connected == 1).await;

    stop_again.send(true).unwrap();
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), again).await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(5), client).await.unwrap().unwrap();
}
