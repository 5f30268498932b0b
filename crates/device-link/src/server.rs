//! The device model's tokio driver: one task owns the [`Analyzer`] and its beat clock, one
//! task per connection runs a [`ServerSession`]. One client at a time controls the device;
//! a second asking for control is refused (it may observe). When the controlling client's
//! link drops, its heartbeats stop or it leaves, the device returns to safe pacing at once.
//! Time is tokio's, so tests on a paused clock run a minute of beats in milliseconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use simulator::SyntheticPatient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::log::CommandLog;
use crate::ms_since;
use crate::protocol::{Command, DeviceError, DeviceInfo, Event, Reply, Role, SafetyReason};
use crate::session::{DEFAULT_HEARTBEAT_INTERVAL_MS, ServerAction, ServerSession};

/// How the device model runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The analyzer's configuration (limits, safe and emergency programs...).
    pub analyzer: AnalyzerConfig,
    /// Heartbeat interval, ms.
    pub heartbeat_interval_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { analyzer: AnalyzerConfig::default(), heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS }
    }
}

/// What connections ask of the device task.
enum DeviceMsg {
    Hello { conn: u64, client: String, role: Role, reply: oneshot::Sender<(Result<Role, DeviceError>, DeviceInfo)> },
    Request { conn: u64, id: u64, command: Command, reply: oneshot::Sender<Result<Reply, DeviceError>> },
    Ended { conn: u64, reason: SafetyReason },
}

/// Events broadcast to every connection.
const EVENT_CAPACITY: usize = 4096;

/// Runs the device model on `listener` until `shutdown` is set.
pub async fn serve(
    listener: TcpListener,
    patient: SyntheticPatient,
    config: ServerConfig,
    log: Option<CommandLog>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (to_device, from_connections) = mpsc::channel::<DeviceMsg>(256);
    let (events, _) = broadcast::channel::<Arc<Event>>(EVENT_CAPACITY);
    let device =
        tokio::spawn(run_device(patient, config.clone(), from_connections, events.clone(), log, shutdown.clone()));
    let mut next_conn = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_conn += 1;
                    let conn = Connection {
                        id: next_conn,
                        peer,
                        to_device: to_device.clone(),
                        events: events.subscribe(),
                        interval_ms: config.heartbeat_interval_ms,
                        shutdown: shutdown.clone(),
                    };
                    tokio::spawn(conn.run(stream));
                }
                Err(e) => {
                    tracing::warn!("device model: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(to_device);
    let _ = device.await;
}

/// The device task: the analyzer, its beats, control and safety.
async fn run_device(
    patient: SyntheticPatient,
    config: ServerConfig,
    mut requests: mpsc::Receiver<DeviceMsg>,
    events: broadcast::Sender<Arc<Event>>,
    mut log: Option<CommandLog>,
    mut shutdown: watch::Receiver<bool>,
) {
    let epoch = Instant::now();
    let mut analyzer = Analyzer::new(patient, config.analyzer, 0.0);
    let mut info = analyzer.info(config.heartbeat_interval_ms);
    info.clock_origin_unix_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let mut controller: Option<u64> = None;
    let mut site: Option<String> = None;
    let publish = |e: Event| {
        // No subscriber (no client) is fine: the beats go on regardless.
        let _ = events.send(Arc::new(e));
    };
    loop {
        let due = epoch + Duration::from_secs_f64(analyzer.next_beat_ms().max(0.0) / 1e3);
        tokio::select! {
            () = tokio::time::sleep_until(due) => {
                let out = analyzer.beat();
                publish(Event::Beat(out.beat));
                publish(Event::Egm(out.egm));
            }
            msg = requests.recv() => {
                let Some(msg) = msg else { break };
                let now = ms_since(epoch);
                match msg {
                    DeviceMsg::Hello { conn, client, role, reply } => {
                        let granted = match role {
                            Role::Control if controller.is_some() => Err(DeviceError::ControlHeld),
                            Role::Control => {
                                controller = Some(conn);
                                Ok(Role::Control)
                            }
                            Role::Observe => Ok(Role::Observe),
                        };
                        tracing::info!("device model: {client} asks to {role:?}: {granted:?}");
                        let _ = reply.send((granted, info.clone()));
                    }
                    DeviceMsg::Request { conn, id, command, reply } => {
                        let (result, caused) = if controller == Some(conn) || command == Command::Status {
                            analyzer.command(&command, now)
                        } else {
                            (Err(DeviceError::ReadOnly), Vec::new())
                        };
                        if let Command::PlaceLead { site: name, .. } = &command && result.is_ok() {
                            site = Some(name.clone());
                        }
                        if let Some(log) = log.as_mut() {
                            log.record(now, site.as_deref(), &format!("conn {conn} request {id}"), &command, &result);
                        }
                        for e in caused {
                            publish(e);
                        }
                        let _ = reply.send(result);
                    }
                    DeviceMsg::Ended { conn, reason } => {
                        if controller == Some(conn) {
                            controller = None;
                            let event = analyzer.go_safe(reason);
                            tracing::warn!("device model: controlling client gone ({reason:?}); safe pacing");
                            if let Some(log) = log.as_mut() {
                                log.safety(now, site.as_deref(), &event);
                            }
                            publish(event);
                        }
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// One client connection.
struct Connection {
    id: u64,
    peer: SocketAddr,
    to_device: mpsc::Sender<DeviceMsg>,
    events: broadcast::Receiver<Arc<Event>>,
    interval_ms: u64,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, mut stream: TcpStream) {
        let epoch = Instant::now();
        let _ = stream.set_nodelay(true);
        let mut session = ServerSession::new(0.0, self.interval_ms);
        let mut buf = vec![0u8; 16 * 1024];
        let mut ended_sent = false;
        loop {
            // Carry out what the session asks of the device.
            while let Some(action) = session.poll_action() {
                match action {
                    ServerAction::Hello { client, role } => {
                        let (reply, rx) = oneshot::channel();
                        if self.to_device.send(DeviceMsg::Hello { conn: self.id, client, role, reply }).await.is_err() {
                            return;
                        }
                        let Ok((granted, info)) = rx.await else { return };
                        session.accept(granted, info);
                    }
                    ServerAction::Request { id, command } => {
                        let (reply, rx) = oneshot::channel();
                        if self.to_device.send(DeviceMsg::Request { conn: self.id, id, command, reply }).await.is_err()
                        {
                            return;
                        }
                        let result =
                            rx.await.unwrap_or(Err(DeviceError::Protocol { reason: "the device stopped".into() }));
                        session.respond(id, result);
                    }
                    ServerAction::Ended { reason } => {
                        ended_sent = true;
                        let _ = self.to_device.send(DeviceMsg::Ended { conn: self.id, reason }).await;
                    }
                }
            }
            while let Some(bytes) = session.poll_transmit() {
                if stream.write_all(&bytes).await.is_err() {
                    session.link_lost();
                    break;
                }
            }
            if session.is_closed() {
                if !ended_sent {
                    continue; // deliver the Ended action first
                }
                tracing::info!("device model: connection {} from {} closed", self.id, self.peer);
                return;
            }
            let timeout = epoch + Duration::from_secs_f64(session.poll_timeout().max(0.0) / 1e3);
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => session.link_lost(),
                    Ok(n) => session.handle_bytes(&buf[..n], ms_since(epoch)),
                },
                event = self.events.recv() => match event {
                    Ok(e) => session.event(&e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("device model: connection {} lagged, {n} events dropped", self.id);
                    }
                    Err(broadcast::error::RecvError::Closed) => session.link_lost(),
                },
                () = tokio::time::sleep_until(timeout) => session.handle_timeout(ms_since(epoch)),
                _ = self.shutdown.changed() => session.link_lost(),
            }
        }
    }
}
