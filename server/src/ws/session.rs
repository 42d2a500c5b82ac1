//! One socket's life: welcome, the read / answer / write loop, heartbeat, and a clean close.
//!
//! The loop waits on four things only (shutdown, the outbox, the socket, one timer), and the
//! work that takes longer (writing a batch, pinging, the closing handshake) runs in short-lived
//! boxed futures. What an idle connection keeps in memory is therefore just this small waiting
//! state, not the largest thing it ever did.

use crate::{
    config::Config,
    hub::{Hub, HubError, JoinRequest, Membership},
    limits::{Bucket, IpLimits, RetryAfter, quota},
    moderation::{
        Moderation,
        filters::{self, Refusal},
        flood::{Flood, Verdict},
    },
    outbox::{CloseReason, ConnHandle, Outbox, Ready},
    state::AppState,
};
use app::protocol::{ClientMsg, ErrorCode, Limits, PROTOCOL_VERSION, ServerMsg, close};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use std::{net::IpAddr, pin::pin, sync::Arc, time::Duration};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Most frames written before one flush; keeps one busy room from starving a socket's reads.
const MAX_BATCH: usize = 64;
/// A write that cannot finish in this long means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Joins cost this many message tokens: a join is heavier (and noisier) than a message.
const JOIN_COST: u32 = 3;

const GOING_AWAY: CloseReason = CloseReason::fixed(close::GOING_AWAY, "server shutting down");
const SLOW: CloseReason = CloseReason::fixed(close::SLOW, "too slow to keep up");
/// Recorded on the outbox when the peer went away by itself.
const GONE: CloseReason = CloseReason::fixed(1000, "gone");

pub struct Session {
    hub: Arc<Hub>,
    ip_limits: Arc<IpLimits>,
    moderation: Arc<Moderation>,
    config: Arc<Config>,
    tracker: TaskTracker,
    ip: IpAddr,
    /// The keyed hash of `ip`: what moderators see, and what reports are filed under.
    ip_hash: Arc<str>,
    /// The moderator session the upgrade request carried (checked again on every use).
    moderator: Option<String>,
    handle: ConnHandle,
    membership: Option<Membership>,
    /// The tab session the membership was joined with.
    tab: Box<str>,
    watching: bool,
    watching_console: bool,
    bad_frames: u32,
    messages: Bucket,
    frames: Bucket,
    flood: Flood,
    /// Messages this connection reported already, by room and number (each counts once).
    reported: Vec<(Arc<str>, u64)>,
}

/// Who is on the other end, as the upgrade found out.
pub struct Peer {
    pub ip: IpAddr,
    pub ip_hash: Arc<str>,
    pub moderator: Option<String>,
}

/// Reports one connection may file.
const MAX_REPORTS: usize = 20;

/// What a frame from the client leads to.
enum Flow {
    Continue,
    Close(CloseReason),
    /// The client sent a close frame; tungstenite answers it.
    PeerClosed,
}

enum Event {
    Close(CloseReason),
    Write,
    Read(Option<Result<Message, axum::Error>>),
    Tick,
}

impl Session {
    pub fn new(state: &AppState, peer: Peer, handle: ConnHandle) -> Self {
        let config = state.config.clone();
        let messages = Bucket::new(quota(config.message_burst, config.message_interval));
        let per_frame = Duration::from_secs(1) / config.frames_per_second.max(1);
        let frames = Bucket::new(quota(config.frames_per_second.saturating_mul(2), per_frame));
        Self {
            hub: state.hub.clone(),
            ip_limits: state.ip_limits.clone(),
            moderation: state.moderation.clone(),
            tracker: state.tracker.clone(),
            ip: peer.ip,
            ip_hash: peer.ip_hash,
            moderator: peer.moderator,
            handle,
            membership: None,
            tab: Box::default(),
            watching: false,
            watching_console: false,
            bad_frames: 0,
            messages,
            frames,
            flood: Flood::default(),
            reported: Vec::new(),
            config,
        }
    }

    pub async fn run(mut self, mut socket: WebSocket, outbox: Outbox, shutdown: CancellationToken) {
        self.send(ServerMsg::Welcome { protocol: PROTOCOL_VERSION, limits: self.limits() });
        let mut clock = Clock::new(&self.config, Instant::now());
        let mut deadline = clock.next();
        let mut timer = pin!(sleep_until(deadline));

        let reason = loop {
            // Not `biased`: a queue that never empties must not starve reading (pongs included),
            // nor reading starve the queue.
            let event = tokio::select! {
                () = shutdown.cancelled() => Event::Close(GOING_AWAY),
                ready = outbox.ready() => match ready {
                    Ready::Frames => Event::Write,
                    Ready::Close(reason) => Event::Close(reason),
                },
                incoming = socket.recv() => Event::Read(incoming),
                () = &mut timer => Event::Tick,
            };
            match event {
                Event::Close(reason) => break Some(reason),
                Event::Write => {
                    if let Err(end) = Box::pin(write_queued(&mut socket, &outbox, &shutdown)).await {
                        break end;
                    }
                }
                Event::Read(None) => break None,
                Event::Read(Some(Err(error))) => break read_error(error),
                Event::Read(Some(Ok(message))) => {
                    let now = Instant::now();
                    clock.heard(now);
                    match self.on_frame(message) {
                        Flow::Continue => {}
                        Flow::Close(reason) => break Some(reason),
                        Flow::PeerClosed => break None,
                    }
                    clock.subscribed(self.watching || self.watching_console || self.membership.is_some(), now);
                }
                Event::Tick => match clock.tick(Instant::now()) {
                    Tick::Nothing => {}
                    Tick::Ping => {
                        if let Err(end) = Box::pin(ping(&mut socket, &shutdown)).await {
                            break end;
                        }
                    }
                    Tick::Dead => {
                        break Some(CloseReason::fixed(close::HEARTBEAT_TIMEOUT, "no answer to ping"));
                    }
                    Tick::Idle => break Some(CloseReason::fixed(close::IDLE, "joined no room in time")),
                },
            }
            if clock.next() != deadline {
                deadline = clock.next();
                timer.as_mut().reset(deadline);
            }
        };

        // Refuse new frames at once, then leave, so the room hears of it before the closing
        // handshake runs out its time.
        outbox.close(reason.clone().unwrap_or(GONE));
        self.membership = None;
        if self.watching {
            self.hub.unwatch_directory(self.handle.id);
        }
        if self.watching_console {
            self.moderation.unwatch(self.handle.id);
        }
        match reason {
            Some(reason) => {
                tracing::debug!(code = reason.code, reason = %reason.reason, "closing");
                Box::pin(close_socket(socket, reason)).await;
            }
            None => tracing::debug!("peer gone"),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            message_burst: self.config.message_burst,
            message_interval_ms: u32::try_from(self.config.message_interval.as_millis()).unwrap_or(u32::MAX),
            room_limit_max: self.config.max_room_limit,
            ..Limits::from_rules()
        }
    }

    /// Our own replies go through the outbox too, behind whatever the hub queued before them.
    fn send(&self, message: ServerMsg) {
        self.handle.offer(message.encode().into());
    }

    fn refuse(&self, code: ErrorCode, message: String, client_ref: Option<String>, retry: Option<RetryAfter>) {
        self.send(ServerMsg::Error { code, message, client_ref, retry_after_ms: retry.map(RetryAfter::millis) });
    }

    fn refuse_hub(&self, error: HubError, client_ref: Option<String>) {
        let retry = error.retry_after().map(RetryAfter);
        self.refuse(error.code(), error.to_string(), client_ref, retry);
    }

    fn on_frame(&mut self, message: Message) -> Flow {
        // Every frame counts, pings included: answering is cheap, but not free.
        if self.frames.take(1).is_err() {
            return Flow::Close(CloseReason::fixed(close::FLOOD, "too many frames"));
        }
        match message {
            Message::Text(text) => self.on_text(text.as_str()),
            Message::Binary(_) => {
                Flow::Close(CloseReason::fixed(close::UNSUPPORTED_DATA, "binary frames are not part of the protocol"))
            }
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
            Message::Close(_) => Flow::PeerClosed,
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        match ClientMsg::from_json(text) {
            Ok(message) => {
                self.bad_frames = 0;
                self.on_message(message)
            }
            Err(mut detail) => {
                detail.truncate(detail.floor_char_boundary(200));
                self.refuse(
                    ErrorCode::BadRequest,
                    format!("That frame is not a valid Burner message: {detail}."),
                    None,
                    None,
                );
                self.strike()
            }
        }
    }

    /// Counts a bad frame; too many in a row end the connection.
    fn strike(&mut self) -> Flow {
        self.bad_frames += 1;
        if self.bad_frames >= self.config.max_bad_frames {
            Flow::Close(CloseReason::fixed(close::PROTOCOL_VIOLATION, "too many invalid frames"))
        } else {
            Flow::Continue
        }
    }

    /// Answers one request. Requests that make no sense in the connection's state count as bad
    /// frames, like garbage does.
    fn on_message(&mut self, message: ClientMsg) -> Flow {
        match message {
            ClientMsg::WatchDirectory {} => {
                if !self.watching {
                    self.hub.watch_directory(&self.handle);
                    self.watching = true;
                }
            }
            ClientMsg::UnwatchDirectory {} => {
                self.hub.unwatch_directory(self.handle.id);
                self.watching = false;
            }
            ClientMsg::Join { room, nickname, session, resume } => {
                if self.membership.is_some() {
                    self.refuse(
                        ErrorCode::AlreadyJoined,
                        "You are already in a room: leave it first.".into(),
                        None,
                        None,
                    );
                    return self.strike();
                }
                if let Err(retry) = self.messages.take(JOIN_COST).and_then(|()| self.ip_limits.joins.take(self.ip, 1)) {
                    self.refuse(ErrorCode::RateLimited, slow_down(retry), None, Some(retry));
                    return Flow::Continue;
                }
                let request = JoinRequest {
                    nickname: &nickname,
                    session: &session,
                    resume: resume.as_ref(),
                    ip: self.ip,
                    ip_hash: self.ip_hash.clone(),
                };
                match self.hub.join(&room, &self.handle, request) {
                    Ok(membership) => {
                        self.moderation.log.joined(self.handle.id, &membership.room.slug, &nickname);
                        self.membership = Some(membership);
                        self.tab = session.into();
                    }
                    Err(error) => self.refuse_hub(error, None),
                }
            }
            ClientMsg::Leave {} => match self.membership.take() {
                Some(membership) => {
                    let room = membership.room.slug.to_string();
                    drop(membership);
                    self.send(ServerMsg::Left { room });
                }
                None => {
                    self.refuse_hub(HubError::NotJoined, None);
                    return self.strike();
                }
            },
            ClientMsg::SendMessage { text, client_ref } => return self.on_send(text, client_ref),
            ClientMsg::Report { seq, reason } => return self.on_report(seq, reason),
            ClientMsg::ModWatch {} => {
                let session = self.moderator.clone().filter(|id| self.moderation.auth.session_alive(id));
                let Some(session) = session else {
                    self.refuse(
                        ErrorCode::PermissionDenied,
                        "Only moderators can watch the console: sign in at /mod first.".into(),
                        None,
                        None,
                    );
                    return self.strike();
                };
                if !self.watching_console {
                    self.moderation.watch(&self.handle, session);
                    self.watching_console = true;
                    // The first snapshot goes out with the next console refresh (within a second).
                    let (moderation, hub) = (self.moderation.clone(), self.hub.clone());
                    self.tracker.spawn(async move { moderation.refresh_consoles(&hub).await });
                }
            }
        }
        Flow::Continue
    }

    /// A message: rate limits and flood control, then the room's filters, then the room.
    fn on_send(&mut self, text: String, client_ref: Option<String>) -> Flow {
        let Some(membership) = &self.membership else {
            self.refuse_hub(HubError::NotJoined, client_ref);
            return self.strike();
        };
        // A resend after a reconnect is acknowledged again and costs nothing.
        if let Some(accepted) = client_ref.as_deref().and_then(|r| membership.resent(r)) {
            self.send(ServerMsg::MessageAccepted { client_ref, seq: accepted.seq, at: accepted.at });
            return Flow::Continue;
        }
        let rate = self.messages.take(1).and_then(|()| self.ip_limits.messages.take(self.ip, 1));
        match self.flood.judge(&self.moderation.flood, Instant::now(), rate) {
            Verdict::Allow => {}
            Verdict::RateLimited(retry) => {
                self.refuse(ErrorCode::RateLimited, slow_down(retry), client_ref, Some(retry));
                return Flow::Continue;
            }
            Verdict::Muted(retry) => {
                let seconds = retry.0.as_secs_f64().ceil().max(1.0);
                let message = format!("You are muted for flooding: you can send again in {seconds} seconds.");
                self.refuse(ErrorCode::Muted, message, client_ref, Some(retry));
                return Flow::Continue;
            }
            Verdict::Disconnect => return Flow::Close(CloseReason::fixed(close::FLOOD, "kept flooding while muted")),
        }
        let profanity = membership.room.settings().profanity;
        let checked = filters::links(&text, self.moderation.max_links)
            .and_then(|()| filters::profanity(text, profanity))
            .and_then(|text| self.moderation.repeats.check(self.ip, &text).map(|fingerprint| (text, fingerprint)));
        let (text, fingerprint) = match checked {
            Ok(checked) => checked,
            Err(refusal) => {
                let (code, message) = match refusal {
                    Refusal::Profanity => (ErrorCode::Profanity, "This room does not allow profanity.".to_owned()),
                    Refusal::TooManyLinks { max } => {
                        (ErrorCode::TooManyLinks, format!("At most {max} links per message."))
                    }
                    Refusal::Spam => (ErrorCode::Spam, "You sent that already: say something new.".to_owned()),
                };
                self.refuse(code, message, client_ref, None);
                return Flow::Continue;
            }
        };
        match membership.post(&text, client_ref.clone()) {
            Ok(accepted) => {
                self.moderation.repeats.record(self.ip, fingerprint);
                self.send(ServerMsg::MessageAccepted { client_ref, seq: accepted.seq, at: accepted.at });
            }
            Err(HubError::NotJoined) => {
                // Removed meanwhile (replaced by another connection of the same tab, or kicked).
                self.membership = None;
                self.refuse_hub(HubError::NotJoined, client_ref);
            }
            Err(error) => self.refuse_hub(error, client_ref),
        }
        Flow::Continue
    }

    /// Files a report of a message this member could see, with the room as the server sees it.
    fn on_report(&mut self, seq: u64, reason: String) -> Flow {
        let Some(membership) = &self.membership else {
            self.refuse_hub(HubError::NotJoined, None);
            return self.strike();
        };
        let room = membership.room.clone();
        if !room.has_message_for(seq, &self.tab) {
            self.refuse(ErrorCode::BadRequest, "There is no such message to report (any more).".into(), None, None);
            return Flow::Continue;
        }
        let key = (room.slug.clone(), seq);
        if self.reported.contains(&key) {
            self.send(ServerMsg::Reported { seq });
            return Flow::Continue;
        }
        if self.reported.len() >= MAX_REPORTS {
            self.refuse(ErrorCode::RateLimited, "You have reported enough for one visit.".into(), None, None);
            return Flow::Continue;
        }
        if let Err(retry) = self.messages.take(1).and_then(|()| self.ip_limits.reports.take(self.ip, 1)) {
            self.refuse(
                ErrorCode::RateLimited,
                "You have reported a lot at once: try again in a minute.".into(),
                None,
                Some(retry),
            );
            return Flow::Continue;
        }
        self.reported.push(key);
        let (moderation, handle, ip_hash) = (self.moderation.clone(), self.handle.clone(), self.ip_hash.clone());
        // Consoles see it with their next refresh (within a second), however many come at once.
        self.tracker.spawn(async move {
            let answer = match moderation.report(&room, seq, &ip_hash, &reason).await {
                Ok(()) => ServerMsg::Reported { seq },
                Err((code, message)) => ServerMsg::error(code, message),
            };
            handle.offer(answer.encode().into());
        });
        Flow::Continue
    }
}

/// The connection's deadlines, in one timer: the next ping, the pong it waits for, and the
/// moment a connection that takes part in nothing is let go.
struct Clock {
    ping_every: Duration,
    pong_within: Duration,
    idle_within: Duration,
    next_ping: Instant,
    pong_due: Option<Instant>,
    idle_due: Option<Instant>,
}

enum Tick {
    Nothing,
    Ping,
    Dead,
    Idle,
}

impl Clock {
    fn new(config: &Config, now: Instant) -> Self {
        Self {
            ping_every: config.ping_interval,
            pong_within: config.pong_timeout,
            idle_within: config.idle_timeout,
            next_ping: now + config.ping_interval,
            pong_due: None,
            idle_due: Some(now + config.idle_timeout),
        }
    }

    fn next(&self) -> Instant {
        let heartbeat = self.pong_due.unwrap_or(self.next_ping);
        self.idle_due.map_or(heartbeat, |idle| idle.min(heartbeat))
    }

    /// Any frame proves the peer is there.
    fn heard(&mut self, now: Instant) {
        if self.pong_due.take().is_some() {
            self.next_ping = now + self.ping_every;
        }
    }

    fn subscribed(&mut self, subscribed: bool, now: Instant) {
        if subscribed {
            self.idle_due = None;
        } else if self.idle_due.is_none() {
            self.idle_due = Some(now + self.idle_within);
        }
    }

    fn tick(&mut self, now: Instant) -> Tick {
        if self.idle_due.is_some_and(|due| due <= now) {
            return Tick::Idle;
        }
        match self.pong_due {
            Some(due) if due <= now => Tick::Dead,
            Some(_) => Tick::Nothing,
            None if self.next_ping <= now => {
                self.pong_due = Some(now + self.pong_within);
                Tick::Ping
            }
            None => Tick::Nothing,
        }
    }
}

fn slow_down(retry: RetryAfter) -> String {
    let seconds = retry.0.as_secs_f64().ceil().max(1.0);
    if seconds <= 1.0 {
        "Slow down: you can send again in a second.".to_owned()
    } else {
        format!("Slow down: you can send again in {seconds} seconds.")
    }
}

/// Writes what is queued (up to a batch), then flushes once. A write that stalls past the
/// timeout means the client stopped reading; shutdown interrupts it.
async fn write_queued(
    socket: &mut WebSocket,
    outbox: &Outbox,
    shutdown: &CancellationToken,
) -> Result<(), Option<CloseReason>> {
    let write = async {
        for _ in 0..MAX_BATCH {
            let Some(frame) = outbox.pop() else { break };
            socket.feed(Message::Text(frame)).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        written = timeout(WRITE_TIMEOUT, write) => match written {
            Ok(Ok(())) => outbox.closing().map_or(Ok(()), |reason| Err(Some(reason))),
            Ok(Err(_)) => Err(None),
            Err(_) => Err(Some(SLOW)),
        },
        () = shutdown.cancelled() => Err(Some(GOING_AWAY)),
    }
}

/// Pings, unless the socket will not take it within the write timeout or the server stops.
async fn ping(socket: &mut WebSocket, shutdown: &CancellationToken) -> Result<(), Option<CloseReason>> {
    tokio::select! {
        sent = timeout(WRITE_TIMEOUT, socket.send(Message::Ping(Default::default()))) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(None),
            Err(_) => Err(Some(SLOW)),
        },
        () = shutdown.cancelled() => Err(Some(GOING_AWAY)),
    }
}

/// Maps a read failure to the close code the client should see (1009 too big, 1007 not UTF-8,
/// 1002 protocol error); a dropped connection gets none.
fn read_error(error: axum::Error) -> Option<CloseReason> {
    use tungstenite::Error;
    let error = error.into_inner().downcast::<Error>().ok()?;
    match *error {
        Error::Capacity(_) => Some(CloseReason::fixed(close::TOO_BIG, "frame over 64 KiB")),
        Error::Utf8(_) => Some(CloseReason::fixed(close::INVALID_PAYLOAD, "text frame is not UTF-8")),
        Error::Protocol(_) => Some(CloseReason::fixed(1002, "WebSocket protocol error")),
        _ => None,
    }
}

/// Sends the close frame and waits (briefly) for the client's answer.
pub async fn close_socket(mut socket: WebSocket, reason: CloseReason) {
    let frame = CloseFrame { code: reason.code, reason: reason.reason.into_owned().into() };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = socket.recv().await {}
        }
    })
    .await;
}
