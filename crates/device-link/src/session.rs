//! Sans-IO session state machines of the device link, one per side, in the manner of
//! quinn-proto: no sockets and no clock of their own. Feed received bytes
//! (`handle_bytes(bytes, now_ms)`), tell them the time (`handle_timeout(now_ms)`), and take
//! out what to send (`poll_transmit`) and what happened (`poll_action` / `poll_event`);
//! `poll_timeout` says when they next need the time. The tokio drivers
//! ([`crate::server`], [`crate::client`]) are thin loops around them, and the tests drive two
//! of them against each other on virtual time.
//!
//! Rules: the first client frame must be `hello` with [`PROTOCOL_NAME`] and
//! [`PROTOCOL_VERSION`]; anything else is refused and the connection closed. Both sides send
//! a heartbeat every interval; a side that hears nothing for [`MISSED_HEARTBEATS`] intervals
//! declares the link lost. A malformed frame is answered with an error and skipped; an
//! oversized one closes the connection.

use std::collections::VecDeque;

use crate::protocol::{
    ClientFrame, Command, DeviceError, DeviceInfo, Event, FrameDecoder, PROTOCOL_NAME, PROTOCOL_VERSION, Reply, Role,
    SafetyReason, ServerFrame, encode_frame,
};

/// Intervals of silence after which the link is lost.
pub const MISSED_HEARTBEATS: u32 = 3;
/// Timers are due this much early: a driver's clock rounds the deadline it was given (to
/// whole nanoseconds), and a timer that wakes a hair before its deadline must not find
/// itself not yet due and sleep again for nothing, forever.
const TIMER_SLACK_MS: f64 = 1e-3;

/// Default heartbeat interval, ms.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 250;

/// Heartbeat bookkeeping shared by both sides: when we last heard the peer and last sent.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    interval_ms: f64,
    last_heard_ms: f64,
    last_sent_ms: f64,
    seq: u64,
}

/// What a timer found.
enum Due {
    /// Silent for too long: the link is lost, after this many ms of silence.
    Lost(f64),
    /// Time to send heartbeat `seq`.
    Heartbeat(u64),
    /// Nothing yet.
    Nothing,
}

impl Liveness {
    fn new(now_ms: f64, interval_ms: u64) -> Self {
        Self { interval_ms: interval_ms.max(1) as f64, last_heard_ms: now_ms, last_sent_ms: now_ms, seq: 0 }
    }

    /// What is due at `now_ms`; heartbeats only when `may_send`.
    fn due(&mut self, now_ms: f64, may_send: bool) -> Due {
        let now_ms = now_ms + TIMER_SLACK_MS;
        if now_ms - self.last_heard_ms >= f64::from(MISSED_HEARTBEATS) * self.interval_ms {
            return Due::Lost(now_ms - self.last_heard_ms);
        }
        if may_send && now_ms - self.last_sent_ms >= self.interval_ms {
            self.seq += 1;
            self.last_sent_ms = now_ms;
            return Due::Heartbeat(self.seq);
        }
        Due::Nothing
    }

    fn poll_timeout(&self) -> f64 {
        (self.last_sent_ms + self.interval_ms).min(self.last_heard_ms + f64::from(MISSED_HEARTBEATS) * self.interval_ms)
    }
}

/// What a server session asks of the device.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerAction {
    /// A client said hello; grant a role with [`ServerSession::accept`] or refuse.
    Hello {
        /// Its name.
        client: String,
        /// The role it asks for.
        role: Role,
    },
    /// A request to carry out; answer with [`ServerSession::respond`].
    Request {
        /// Its id.
        id: u64,
        /// What to do.
        command: Command,
    },
    /// The session ended; if it controlled the device, the device must go safe for `reason`.
    Ended {
        /// Why.
        reason: SafetyReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitingHello,
    AwaitingGrant,
    Established(Role),
    Closed,
}

/// One connection, device side.
#[derive(Debug)]
pub struct ServerSession {
    state: ServerState,
    decoder: FrameDecoder,
    transmit: VecDeque<Vec<u8>>,
    actions: VecDeque<ServerAction>,
    live: Liveness,
}

impl ServerSession {
    /// A new connection at `now_ms`, with heartbeats every `interval_ms`.
    #[must_use]
    pub fn new(now_ms: f64, interval_ms: u64) -> Self {
        Self {
            state: ServerState::AwaitingHello,
            decoder: FrameDecoder::default(),
            transmit: VecDeque::new(),
            actions: VecDeque::new(),
            live: Liveness::new(now_ms, interval_ms),
        }
    }

    /// The role granted, once established.
    #[must_use]
    pub fn role(&self) -> Option<Role> {
        match self.state {
            ServerState::Established(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the connection should be closed (after sending what is queued).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == ServerState::Closed
    }

    fn send(&mut self, frame: &ServerFrame) {
        match encode_frame(frame) {
            Ok(bytes) => self.transmit.push_back(bytes),
            // Our own frames are bounded (an EGM chunk is a beat long); log and go on.
            Err(e) => tracing::error!("device link: cannot encode a frame: {e}"),
        }
    }

    fn close(&mut self, reason: SafetyReason) {
        if self.state != ServerState::Closed {
            self.state = ServerState::Closed;
            self.actions.push_back(ServerAction::Ended { reason });
        }
    }

    /// Feeds bytes received at `now_ms`.
    pub fn handle_bytes(&mut self, bytes: &[u8], now_ms: f64) {
        if self.state == ServerState::Closed {
            return;
        }
        self.live.last_heard_ms = now_ms;
        self.decoder.feed(bytes);
        loop {
            match self.decoder.next_frame::<ClientFrame>() {
                Ok(None) => break,
                Ok(Some(frame)) => self.on_frame(frame),
                Err((error, fatal)) => {
                    self.send(&ServerFrame::Error { error });
                    if fatal || self.state == ServerState::AwaitingHello {
                        self.close(SafetyReason::LinkDropped);
                    }
                }
            }
            if self.state == ServerState::Closed {
                break;
            }
        }
    }

    fn on_frame(&mut self, frame: ClientFrame) {
        match (self.state, frame) {
            (ServerState::AwaitingHello, ClientFrame::Hello { protocol, version, client, role }) => {
                if protocol != PROTOCOL_NAME {
                    self.send(&ServerFrame::Refused {
                        error: DeviceError::Protocol {
                            reason: format!("unknown protocol {protocol:?}, expected {PROTOCOL_NAME:?}"),
                        },
                    });
                    self.close(SafetyReason::LinkDropped);
                } else if version != PROTOCOL_VERSION {
                    self.send(&ServerFrame::Refused {
                        error: DeviceError::UnsupportedVersion { offered: version, supported: PROTOCOL_VERSION },
                    });
                    self.close(SafetyReason::LinkDropped);
                } else {
                    self.state = ServerState::AwaitingGrant;
                    self.actions.push_back(ServerAction::Hello { client, role });
                }
            }
            (ServerState::AwaitingHello | ServerState::AwaitingGrant, _) => {
                self.send(&ServerFrame::Refused {
                    error: DeviceError::Protocol { reason: "the first frame must be hello".into() },
                });
                self.close(SafetyReason::LinkDropped);
            }
            (ServerState::Established(role), ClientFrame::Request { id, command }) => {
                if role == Role::Observe && command != Command::Status {
                    self.send(&ServerFrame::Response { id, result: Err(DeviceError::ReadOnly) });
                } else {
                    self.actions.push_back(ServerAction::Request { id, command });
                }
            }
            // A heartbeat only refreshes `last_heard_ms`; nothing reaches a closed session.
            (ServerState::Established(_), ClientFrame::Heartbeat { .. }) | (ServerState::Closed, _) => {}
            (ServerState::Established(_), ClientFrame::Goodbye) => self.close(SafetyReason::ClientLeft),
            (ServerState::Established(_), ClientFrame::Hello { .. }) => {
                self.send(&ServerFrame::Error { error: DeviceError::Protocol { reason: "hello sent twice".into() } });
            }
        }
    }

    /// The device's answer to a hello: the role granted, or why not.
    pub fn accept(&mut self, granted: Result<Role, DeviceError>, device: DeviceInfo) {
        if self.state != ServerState::AwaitingGrant {
            return;
        }
        match granted {
            Ok(role) => {
                self.state = ServerState::Established(role);
                self.send(&ServerFrame::Welcome { version: PROTOCOL_VERSION, role, device });
            }
            Err(error) => {
                self.send(&ServerFrame::Refused { error });
                self.close(SafetyReason::LinkDropped);
            }
        }
    }

    /// The answer to request `id`.
    pub fn respond(&mut self, id: u64, result: Result<Reply, DeviceError>) {
        if matches!(self.state, ServerState::Established(_)) {
            self.send(&ServerFrame::Response { id, result });
        }
    }

    /// A device event for this client.
    pub fn event(&mut self, event: &Event) {
        if matches!(self.state, ServerState::Established(_)) {
            self.send(&ServerFrame::Event(event.clone()));
        }
    }

    /// The link is gone (socket closed or failed).
    pub fn link_lost(&mut self) {
        self.close(SafetyReason::LinkDropped);
    }

    /// Sends heartbeats and runs the watchdog.
    pub fn handle_timeout(&mut self, now_ms: f64) {
        if self.state == ServerState::Closed {
            return;
        }
        match self.live.due(now_ms, matches!(self.state, ServerState::Established(_))) {
            Due::Lost(_) => self.close(SafetyReason::HeartbeatMissed),
            Due::Heartbeat(seq) => self.send(&ServerFrame::Heartbeat { seq }),
            Due::Nothing => {}
        }
    }

    /// When [`Self::handle_timeout`] is next needed, ms.
    #[must_use]
    pub fn poll_timeout(&self) -> f64 {
        self.live.poll_timeout()
    }

    /// Bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// What the device must do.
    pub fn poll_action(&mut self) -> Option<ServerAction> {
        self.actions.pop_front()
    }
}

/// What a client session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The device accepted the handshake.
    Welcome {
        /// Role granted.
        role: Role,
        /// The device.
        device: DeviceInfo,
    },
    /// The device refused the handshake.
    Refused(DeviceError),
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// Its result.
        result: Result<Reply, DeviceError>,
    },
    /// A device event.
    Device(Event),
    /// The device reported an error about our frames.
    Error(DeviceError),
    /// The link is lost (silence, a bad stream, or the socket).
    Lost(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Hello,
    Ready,
    Closed,
}

/// One connection, client side.
#[derive(Debug)]
pub struct ClientSession {
    state: ClientState,
    decoder: FrameDecoder,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    next_id: u64,
    live: Liveness,
}

impl ClientSession {
    /// A session that says hello as `client` asking for `role`, at `now_ms`.
    #[must_use]
    pub fn new(client: &str, role: Role, now_ms: f64) -> Self {
        let mut s = Self {
            state: ClientState::Hello,
            decoder: FrameDecoder::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 1,
            live: Liveness::new(now_ms, DEFAULT_HEARTBEAT_INTERVAL_MS),
        };
        s.send(&ClientFrame::Hello {
            protocol: PROTOCOL_NAME.into(),
            version: PROTOCOL_VERSION,
            client: client.into(),
            role,
        });
        s
    }

    fn send(&mut self, frame: &ClientFrame) {
        match encode_frame(frame) {
            Ok(bytes) => self.transmit.push_back(bytes),
            Err(e) => self.events.push_back(ClientEvent::Error(e)),
        }
    }

    fn lose(&mut self, why: String) {
        if self.state != ClientState::Closed {
            self.state = ClientState::Closed;
            self.events.push_back(ClientEvent::Lost(why));
        }
    }

    /// Whether the session is over.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed
    }

    /// Queues a request; returns its id (`None` when the session is not ready).
    pub fn request(&mut self, command: Command, now_ms: f64) -> Option<u64> {
        if self.state != ClientState::Ready {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ClientFrame::Request { id, command });
        self.live.last_sent_ms = now_ms;
        Some(id)
    }

    /// Says goodbye and closes.
    pub fn goodbye(&mut self) {
        if self.state == ClientState::Ready {
            self.send(&ClientFrame::Goodbye);
        }
        self.state = ClientState::Closed;
    }

    /// Feeds bytes received at `now_ms`.
    pub fn handle_bytes(&mut self, bytes: &[u8], now_ms: f64) {
        if self.state == ClientState::Closed {
            return;
        }
        self.live.last_heard_ms = now_ms;
        self.decoder.feed(bytes);
        loop {
            match self.decoder.next_frame::<ServerFrame>() {
                Ok(None) => break,
                Ok(Some(frame)) => self.on_frame(frame),
                Err((error, true)) => {
                    self.lose(format!("unreadable stream from the device: {error}"));
                    break;
                }
                Err((error, false)) => self.events.push_back(ClientEvent::Error(error)),
            }
        }
    }

    fn on_frame(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Welcome { role, device, .. } if self.state == ClientState::Hello => {
                self.live.interval_ms = device.heartbeat_interval_ms.max(1) as f64;
                self.state = ClientState::Ready;
                self.events.push_back(ClientEvent::Welcome { role, device });
            }
            ServerFrame::Refused { error } => {
                self.events.push_back(ClientEvent::Refused(error));
                self.state = ClientState::Closed;
            }
            ServerFrame::Response { id, result } => self.events.push_back(ClientEvent::Response { id, result }),
            ServerFrame::Event(e) => self.events.push_back(ClientEvent::Device(e)),
            ServerFrame::Error { error } => self.events.push_back(ClientEvent::Error(error)),
            ServerFrame::Heartbeat { .. } | ServerFrame::Welcome { .. } => {}
        }
    }

    /// The socket is gone.
    pub fn link_lost(&mut self, why: &str) {
        self.lose(why.to_owned());
    }

    /// Sends heartbeats and runs the watchdog.
    pub fn handle_timeout(&mut self, now_ms: f64) {
        if self.state == ClientState::Closed {
            return;
        }
        match self.live.due(now_ms, self.state == ClientState::Ready) {
            Due::Lost(silent_ms) => self.lose(format!("the device was silent for {silent_ms:.0} ms")),
            Due::Heartbeat(seq) => self.send(&ClientFrame::Heartbeat { seq }),
            Due::Nothing => {}
        }
    }

    /// When [`Self::handle_timeout`] is next needed, ms.
    #[must_use]
    pub fn poll_timeout(&self) -> f64 {
        self.live.poll_timeout()
    }

    /// Bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// What happened.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::AnalyzerConfig;
    use crate::protocol::OutputLimits;

    fn info() -> DeviceInfo {
        let c = AnalyzerConfig::default();
        DeviceInfo {
            model: "test".into(),
            simulated: true,
            limits: OutputLimits::default(),
            safe_program: c.safe_program,
            heartbeat_interval_ms: 100,
            egm_rate_hz: 500.0,
            clock_origin_unix_ms: 0.0,
        }
    }

    /// Moves every queued byte between the two sides at `now`.
    fn pump(c: &mut ClientSession, s: &mut ServerSession, now: f64) {
        loop {
            let mut moved = false;
            while let Some(b) = c.poll_transmit() {
                s.handle_bytes(&b, now);
                moved = true;
            }
            while let Some(b) = s.poll_transmit() {
                c.handle_bytes(&b, now);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    fn connected(role: Role) -> (ClientSession, ServerSession) {
        let mut c = ClientSession::new("test", role, 0.0);
        let mut s = ServerSession::new(0.0, 100);
        pump(&mut c, &mut s, 0.0);
        assert_eq!(s.poll_action(), Some(ServerAction::Hello { client: "test".into(), role }));
        s.accept(Ok(role), info());
        pump(&mut c, &mut s, 0.0);
        assert!(matches!(c.poll_event(), Some(ClientEvent::Welcome { role: r, .. }) if r == role));
        (c, s)
    }

    #[test]
    fn handshake_requests_and_heartbeats_on_virtual_time() {
        let (mut c, mut s) = connected(Role::Control);
        let id = c.request(Command::Stop, 0.0).unwrap();
        pump(&mut c, &mut s, 1.0);
        assert_eq!(s.poll_action(), Some(ServerAction::Request { id, command: Command::Stop }));
        s.respond(id, Ok(Reply::Ack));
        pump(&mut c, &mut s, 1.0);
        assert_eq!(c.poll_event(), Some(ClientEvent::Response { id, result: Ok(Reply::Ack) }));
        // Ten seconds of heartbeats, both sides alive.
        let mut now = 0.0;
        while now < 10_000.0 {
            now = c.poll_timeout().min(s.poll_timeout());
            c.handle_timeout(now);
            s.handle_timeout(now);
            pump(&mut c, &mut s, now);
        }
        assert!(!c.is_closed() && !s.is_closed());
        assert_eq!(s.poll_action(), None);
        // The client goes silent: after three intervals the device ends the session.
        let silent_from = now;
        while !s.is_closed() {
            now = s.poll_timeout();
            s.handle_timeout(now);
            while s.poll_transmit().is_some() {}
        }
        assert!(now - silent_from <= 300.0 + 1e-9, "declared after {} ms", now - silent_from);
        assert_eq!(s.poll_action(), Some(ServerAction::Ended { reason: SafetyReason::HeartbeatMissed }));
    }

    #[test]
    fn wrong_versions_strangers_and_early_requests_are_refused() {
        let mut s = ServerSession::new(0.0, 100);
        let hello = encode_frame(&ClientFrame::Hello {
            protocol: PROTOCOL_NAME.into(),
            version: 99,
            client: "x".into(),
            role: Role::Control,
        })
        .unwrap();
        s.handle_bytes(&hello, 0.0);
        let reply: ServerFrame = serde_json::from_slice(&s.poll_transmit().unwrap()[4..]).unwrap();
        assert_eq!(
            reply,
            ServerFrame::Refused { error: DeviceError::UnsupportedVersion { offered: 99, supported: 1 } }
        );
        assert!(s.is_closed());

        let mut s = ServerSession::new(0.0, 100);
        s.handle_bytes(&encode_frame(&ClientFrame::Request { id: 1, command: Command::Stop }).unwrap(), 0.0);
        assert!(s.is_closed());
        assert_eq!(s.poll_action(), Some(ServerAction::Ended { reason: SafetyReason::LinkDropped }));

        let mut s = ServerSession::new(0.0, 100);
        s.handle_bytes(b"GET / HTTP/1.1\r\n\r\n", 0.0);
        assert!(s.is_closed(), "an HTTP request is an oversized frame or malformed hello");
    }

    #[test]
    fn observers_are_read_only_and_bad_frames_are_answered() {
        let (mut c, mut s) = connected(Role::Observe);
        let id = c.request(Command::Stop, 0.0).unwrap();
        pump(&mut c, &mut s, 0.0);
        assert_eq!(s.poll_action(), None, "an observer's command never reaches the device");
        assert_eq!(c.poll_event(), Some(ClientEvent::Response { id, result: Err(DeviceError::ReadOnly) }));
        let id = c.request(Command::Status, 0.0).unwrap();
        pump(&mut c, &mut s, 0.0);
        assert_eq!(s.poll_action(), Some(ServerAction::Request { id, command: Command::Status }));
        // Malformed JSON: answered, the session goes on.
        let mut bad = vec![0, 0, 0, 3];
        bad.extend_from_slice(b"{x]");
        s.handle_bytes(&bad, 0.0);
        assert!(!s.is_closed());
        pump(&mut c, &mut s, 0.0);
        assert!(matches!(c.poll_event(), Some(ClientEvent::Error(DeviceError::Malformed { .. }))));
        // Oversized: closed.
        s.handle_bytes(&[0x7f, 0xff, 0xff, 0xff], 0.0);
        assert!(s.is_closed());
        assert_eq!(s.poll_action(), Some(ServerAction::Ended { reason: SafetyReason::LinkDropped }));
    }
}
