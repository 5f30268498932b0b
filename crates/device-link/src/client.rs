//! The client's tokio driver: a task owns the socket and a [`ClientSession`], keeps the
//! heartbeats going, matches responses to requests, and hands device events to the caller.
//! Dropping the [`DeviceClient`] (or a crash of the process) ends the link, and the device
//! goes to safe pacing on its own.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::ms_since;
use crate::protocol::{Command, DeviceError, DeviceInfo, Event, Reply, Role};
use crate::session::{ClientEvent, ClientSession};

/// Why a request or the link failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The device answered with an error.
    #[error("the device refused: {0}")]
    Device(DeviceError),
    /// The device refused the connection.
    #[error("the device refused the connection: {0}")]
    Refused(DeviceError),
    /// The link is gone.
    #[error("link to the device lost: {0}")]
    Lost(String),
    /// Could not connect.
    #[error("cannot connect to the device at {addr}: {reason}")]
    Connect {
        /// Address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from the device within {0:?}")]
    Timeout(Duration),
}

/// A connected client.
#[derive(Debug)]
pub struct DeviceClient {
    requests: mpsc::Sender<(Command, oneshot::Sender<Result<Reply, ClientError>>)>,
    info: DeviceInfo,
    role: Role,
    timeout: Duration,
    task: tokio::task::JoinHandle<()>,
}

/// Device events handed to the caller (bounded; a caller that falls this far behind loses
/// the oldest and is told by a log line).
const EVENT_CAPACITY: usize = 8192;

impl DeviceClient {
    /// Connects to the device at `addr` as `name` asking for `role`; returns the client and
    /// the stream of device events.
    pub async fn connect(addr: &str, name: &str, role: Role) -> Result<(Self, mpsc::Receiver<Event>), ClientError> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect { addr: addr.to_owned(), reason: e.to_string() })?;
        let _ = stream.set_nodelay(true);
        let epoch = Instant::now();
        let mut session = ClientSession::new(name, role, 0.0);
        let mut buf = vec![0u8; 64 * 1024];
        // Handshake, bounded in time.
        let handshake = async {
            loop {
                while let Some(bytes) = session.poll_transmit() {
                    stream.write_all(&bytes).await.map_err(|e| ClientError::Lost(e.to_string()))?;
                }
                match session.poll_event() {
                    Some(ClientEvent::Welcome { role, device }) => return Ok((role, device)),
                    Some(ClientEvent::Refused(e)) => return Err(ClientError::Refused(e)),
                    Some(ClientEvent::Lost(why)) => return Err(ClientError::Lost(why)),
                    Some(_) => continue,
                    None => {}
                }
                let n = stream.read(&mut buf).await.map_err(|e| ClientError::Lost(e.to_string()))?;
                if n == 0 {
                    return Err(ClientError::Lost("the device closed the connection during the handshake".into()));
                }
                session.handle_bytes(&buf[..n], ms_since(epoch));
            }
        };
        let (role, info) = tokio::time::timeout(Duration::from_secs(5), handshake)
            .await
            .map_err(|_| ClientError::Timeout(Duration::from_secs(5)))??;
        let (requests, rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(EVENT_CAPACITY);
        let task = tokio::spawn(drive(stream, session, epoch, rx, events_tx));
        Ok((Self { requests, info, role, timeout: Duration::from_secs(5), task }, events))
    }

    /// What the device said about itself.
    #[must_use]
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The role granted.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Says goodbye (the device goes to safe pacing if this client controlled it) and waits
    /// until the link task has sent it.
    pub async fn close(self) {
        let Self { requests, task, .. } = self;
        drop(requests);
        let _ = task.await;
    }

    /// Sends a command and waits for its answer.
    pub async fn request(&self, command: Command) -> Result<Reply, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send((command, tx)).await.map_err(|_| ClientError::Lost("the link task ended".into()))?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Lost("the link task ended".into())),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }
}

/// The link task.
async fn drive(
    mut stream: TcpStream,
    mut session: ClientSession,
    epoch: Instant,
    mut requests: mpsc::Receiver<(Command, oneshot::Sender<Result<Reply, ClientError>>)>,
    events: mpsc::Sender<Event>,
) {
    let mut pending: HashMap<u64, oneshot::Sender<Result<Reply, ClientError>>> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut lost: Option<String> = None;
    loop {
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Response { id, result } => {
                    if let Some(tx) = pending.remove(&id) {
                        let _ = tx.send(result.map_err(ClientError::Device));
                    }
                }
                ClientEvent::Device(e) => {
                    if events.try_send(e).is_err() {
                        tracing::warn!("device link: event reader behind, an event was dropped");
                    }
                }
                ClientEvent::Error(e) => tracing::warn!("device link: the device reports {e}"),
                ClientEvent::Lost(why) => lost = Some(why),
                ClientEvent::Welcome { .. } | ClientEvent::Refused(_) => {}
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            if let Err(e) = stream.write_all(&bytes).await {
                session.link_lost(&e.to_string());
            }
        }
        if let Some(why) = lost.take().or_else(|| session.is_closed().then(|| "closed".to_owned())) {
            for (_, tx) in pending.drain() {
                let _ = tx.send(Err(ClientError::Lost(why.clone())));
            }
            return;
        }
        let timeout = epoch + Duration::from_secs_f64(session.poll_timeout().max(0.0) / 1e3);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => session.link_lost("the device closed the connection"),
                Err(e) => session.link_lost(&e.to_string()),
                Ok(n) => session.handle_bytes(&buf[..n], ms_since(epoch)),
            },
            request = requests.recv() => {
                // `None`: the client was dropped; say goodbye so the device goes safe at once.
                let Some((command, tx)) = request else {
                    session.goodbye();
                    while let Some(bytes) = session.poll_transmit() {
                        let _ = stream.write_all(&bytes).await;
                    }
                    return;
                };
                match session.request(command, ms_since(epoch)) {
                    Some(id) => {
                        pending.insert(id, tx);
                    }
                    None => {
                        let _ = tx.send(Err(ClientError::Lost("the session is closed".into())));
                    }
                }
            }
            () = tokio::time::sleep_until(timeout) => session.handle_timeout(ms_since(epoch)),
        }
    }
}
