//! The tokio driver around the sans-IO codec: an OpenIGTLink server (many peers, loopback
//! unless configured) and a client that reconnects with exponential backoff. Tool samples
//! go into one shared [`LatestSamples`] (latest per tool, never a growing queue); other
//! messages (STRING, STATUS, queries) go to a bounded inbox that drops, and counts, what a
//! slow reader has not taken; outgoing messages are broadcast to every peer through a
//! bounded channel that drops the oldest for a peer that lags.
//!
//! Bad input never takes the process down: a message with a bad CRC or malformed content is
//! logged and skipped; a stream that is not OpenIGTLink, a header claiming a body over the
//! limit, or a peer that stalls mid-message closes that one connection with the reason
//! logged, and every other connection goes on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};

use crate::igtl::{
    Body, DEFAULT_MAX_BODY_BYTES, DataType, Decoder, DeviceName, FixedName, IgtlError, Message, StreamParams,
};
use crate::tracking::{LatestSamples, ToolSample};

/// Settings of a link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Largest body accepted, bytes.
    pub max_body_bytes: u64,
    /// Whether CRCs are checked on receive.
    pub check_crc: bool,
    /// A peer silent this long in the middle of a message is dropped.
    pub stall_timeout: Duration,
    /// First reconnect delay of the client; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
    /// Messages sent first on every (re)connection, e.g. `STT_TDATA` asking a tracker
    /// that waits for it to start streaming.
    pub on_connect: Vec<Message>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            check_crc: true,
            stall_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            on_connect: Vec::new(),
        }
    }
}

impl LinkConfig {
    /// A client of a tracker's server that asks it for tracking data (`STT_TDATA`, every
    /// sample, default coordinates) on every (re)connection, as PLUS and trackers' own servers
    /// expect.
    #[must_use]
    pub fn tracking_client() -> Self {
        let start = Message::new(
            DeviceName::default(),
            Body::StartStream(
                DataType::TrackingData,
                Some(StreamParams { resolution_ms: 0, coordinate_name: FixedName::default() }),
            ),
        );
        Self { on_connect: vec![start], ..Self::default() }
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Socket error.
    #[error("socket error with {peer}: {source}")]
    Io {
        /// The peer.
        peer: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The stream cannot be read further.
    #[error("dropped {peer}: {source}")]
    Protocol {
        /// The peer.
        peer: SocketAddr,
        /// What was wrong.
        source: IgtlError,
    },
    /// The peer stopped sending in the middle of a message.
    #[error("dropped {peer}: stalled for {stalled_ms} ms in the middle of a message ({buffered} bytes buffered)")]
    Stalled {
        /// The peer.
        peer: SocketAddr,
        /// How long it was silent.
        stalled_ms: u128,
        /// Bytes of the partial message.
        buffered: usize,
    },
    /// Could not bind or connect.
    #[error("cannot {what} {addr}: {source}")]
    Setup {
        /// "bind to" or "connect to".
        what: &'static str,
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Counters of a hub, for the status panel and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Messages decoded.
    pub messages: u64,
    /// Messages rejected (bad CRC, malformed content).
    pub rejected: u64,
    /// Connections dropped for bad input or a stall.
    pub dropped_connections: u64,
    /// Non-tracking messages dropped because the inbox was full.
    pub inbox_dropped: u64,
    /// Outgoing messages a lagging peer missed.
    pub outgoing_dropped: u64,
    /// Peers connected now.
    pub connected: u64,
}

/// What a server or client shares with the rest of the application.
#[derive(Debug, Clone)]
pub struct Hub {
    samples: Arc<Mutex<LatestSamples>>,
    counters: Arc<Mutex<LinkCounters>>,
    updated: watch::Sender<u64>,
    outgoing: broadcast::Sender<Arc<Vec<u8>>>,
    inbox: mpsc::Sender<(SocketAddr, Message)>,
    epoch: Instant,
    tap: Arc<TapSlot>,
}

/// Called with every tool sample as it arrives (on the network task: keep it short and
/// never block, e.g. hand the sample to a recorder's bounded queue).
pub type SampleTap = Box<dyn FnMut(&ToolSample) + Send>;

/// Where the hub keeps its tap.
#[derive(Default)]
struct TapSlot(Mutex<Option<SampleTap>>);

impl std::fmt::Debug for TapSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TapSlot")
    }
}

/// Capacity of the outgoing broadcast, messages per peer.
const OUTGOING_CAPACITY: usize = 256;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug elsewhere; the data (latest samples,
    // counters) stays meaningful, so go on with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// A hub and the receiving end of its inbox (non-tracking messages, `inbox_capacity`).
    #[must_use]
    pub fn new(inbox_capacity: usize) -> (Self, mpsc::Receiver<(SocketAddr, Message)>) {
        let (inbox, rx) = mpsc::channel(inbox_capacity.max(1));
        let (outgoing, _) = broadcast::channel(OUTGOING_CAPACITY);
        let hub = Self {
            samples: Arc::new(Mutex::new(LatestSamples::default())),
            counters: Arc::new(Mutex::new(LinkCounters::default())),
            updated: watch::Sender::new(0),
            outgoing,
            inbox,
            epoch: Instant::now(),
            tap: Arc::new(TapSlot::default()),
        };
        (hub, rx)
    }

    /// Milliseconds since the hub was made (the clock of sample ages).
    #[must_use]
    pub fn now_ms(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1e3
    }

    /// The latest samples (locked while the guard lives: keep it short).
    pub fn samples(&self) -> MutexGuard<'_, LatestSamples> {
        lock(&self.samples)
    }

    /// The counters now.
    #[must_use]
    pub fn counters(&self) -> LinkCounters {
        *lock(&self.counters)
    }

    /// A receiver that changes whenever a sample, a message or a connection event arrives.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.updated.subscribe()
    }

    /// Sees every tool sample as it arrives (the display only reads the latest).
    pub fn set_sample_tap(&self, tap: SampleTap) {
        *lock(&self.tap.0) = Some(tap);
    }

    /// Sends a message to every connected peer (dropped for a peer that lags far behind).
    pub fn send(&self, message: &Message) -> Result<(), IgtlError> {
        let bytes = Arc::new(message.encode()?);
        // No receiver (no peer connected) is not an error: there is no one to tell.
        let _ = self.outgoing.send(bytes);
        Ok(())
    }

    fn deliver(&self, peer: SocketAddr, message: Message) {
        let now = self.now_ms();
        let mut tap = lock(&self.tap.0);
        let tools = match tap.as_mut() {
            Some(tap) => lock(&self.samples).ingest_with(&message, now, |s| tap(s)),
            None => lock(&self.samples).ingest(&message, now),
        };
        drop(tap);
        let mut c = lock(&self.counters);
        c.messages += 1;
        if tools == 0 && self.inbox.try_send((peer, message)).is_err() {
            c.inbox_dropped += 1;
        }
        drop(c);
        self.updated.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Serves one connection until the peer leaves, the stream goes bad or `shutdown` is set.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    hub: Hub,
    config: LinkConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    // Latency over throughput: tips are small and must not wait for Nagle.
    stream.set_nodelay(true).map_err(|source| LinkError::Io { peer, source })?;
    for message in &config.on_connect {
        let bytes = message.encode().map_err(|source| LinkError::Protocol { peer, source })?;
        stream.write_all(&bytes).await.map_err(|source| LinkError::Io { peer, source })?;
    }
    let mut decoder = Decoder::new(config.max_body_bytes, config.check_crc);
    let mut outgoing = hub.outgoing.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_byte = Instant::now();
    loop {
        let partial = decoder.buffered() > 0;
        let stall = async {
            if partial {
                tokio::time::sleep(config.stall_timeout.saturating_sub(last_byte.elapsed())).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            read = stream.read(&mut buf) => {
                let n = read.map_err(|source| LinkError::Io { peer, source })?;
                if n == 0 {
                    return Ok(());
                }
                last_byte = Instant::now();
                decoder.feed(&buf[..n]);
                loop {
                    match decoder.next_message() {
                        Ok(None) => break,
                        Ok(Some(Ok(message))) => hub.deliver(peer, message),
                        Ok(Some(Err(rejected))) => {
                            lock(&hub.counters).rejected += 1;
                            tracing::warn!(%peer, "OpenIGTLink {rejected}");
                        }
                        Err(source) => return Err(LinkError::Protocol { peer, source }),
                    }
                }
            }
            out = outgoing.recv() => match out {
                Ok(bytes) => stream.write_all(&bytes).await.map_err(|source| LinkError::Io { peer, source })?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    lock(&hub.counters).outgoing_dropped += n;
                    tracing::warn!(%peer, "peer lagging: {n} outgoing messages dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            () = stall => {
                return Err(LinkError::Stalled { peer, stalled_ms: last_byte.elapsed().as_millis(), buffered: decoder.buffered() });
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Runs one connection with counting and logging of how it ended.
async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Hub,
    config: LinkConfig,
    shutdown: watch::Receiver<bool>,
) {
    lock(&hub.counters).connected += 1;
    tracing::info!(%peer, "OpenIGTLink peer connected");
    let result = serve_connection(stream, peer, hub.clone(), config, shutdown).await;
    let mut c = lock(&hub.counters);
    c.connected = c.connected.saturating_sub(1);
    match result {
        Ok(()) => tracing::info!(%peer, "OpenIGTLink peer disconnected"),
        Err(e) => {
            c.dropped_connections += 1;
            tracing::warn!("OpenIGTLink {e}");
        }
    }
    drop(c);
    hub.updated.send_modify(|v| *v = v.wrapping_add(1));
}

/// Binds an OpenIGTLink server (use a loopback address unless the tracker is on another
/// machine; `127.0.0.1:0` picks a free port).
pub async fn bind(addr: &str) -> Result<TcpListener, LinkError> {
    TcpListener::bind(addr).await.map_err(|source| LinkError::Setup { what: "bind to", addr: addr.to_owned(), source })
}

/// Accepts peers on `listener` until `shutdown` is set; each peer is served on its own task.
pub async fn serve(listener: TcpListener, hub: Hub, config: LinkConfig, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (hub, config, shutdown) = (hub.clone(), config.clone(), shutdown.clone());
                    tokio::spawn(run_connection(stream, peer, hub, config, shutdown));
                }
                Err(e) => {
                    tracing::warn!("OpenIGTLink accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Connects to an OpenIGTLink server and keeps reconnecting (backoff doubling from
/// `min_backoff` to `max_backoff`, reset by a connection that lasted) until `shutdown`.
pub async fn connect(addr: String, hub: Hub, config: LinkConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = config.min_backoff;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match TcpStream::connect(&addr).await {
            Ok(stream) => {
                let peer = stream.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                let started = Instant::now();
                run_connection(stream, peer, hub.clone(), config.clone(), shutdown.clone()).await;
                if started.elapsed() > config.max_backoff {
                    backoff = config.min_backoff;
                }
            }
            Err(e) => tracing::debug!("OpenIGTLink connect to {addr} failed: {e}; retrying in {backoff:?}"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}
