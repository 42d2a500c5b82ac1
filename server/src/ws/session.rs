//! One socket's life: welcome, read/answer/write loop, heartbeat, and a clean close.

use crate::{
    hub::{HubError, JoinRequest, Membership},
    limits::{Bucket, RetryAfter, quota},
    outbox::{CloseReason, ConnHandle, Control, Frame},
    state::AppState,
};
use app::protocol::{ClientMsg, ErrorCode, Limits, PROTOCOL_VERSION, ServerMsg, close};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use std::{net::IpAddr, pin::pin, sync::Arc, time::Duration};
use tokio::{
    sync::mpsc,
    time::{Instant, sleep, timeout},
};

/// Most frames written before one flush; keeps one busy room from starving a socket's reads.
const MAX_BATCH: usize = 64;
/// A write that cannot finish in this long means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Joins cost this many message tokens: a join is heavier (and noisier) than a message.
const JOIN_COST: u32 = 3;

pub struct Session {
    state: AppState,
    ip: IpAddr,
    handle: ConnHandle,
    control: Arc<Control>,
    membership: Option<Membership>,
    watching: bool,
    bad_frames: u32,
    messages: Bucket,
    frames: Bucket,
}

/// What a frame from the client leads to.
enum Flow {
    Continue,
    Close(CloseReason),
    /// The client sent a close frame; tungstenite answers it.
    PeerClosed,
}

impl Session {
    pub fn new(state: AppState, ip: IpAddr, handle: ConnHandle, control: Arc<Control>) -> Self {
        let config = &state.config;
        let messages = Bucket::new(quota(config.message_burst, config.message_interval));
        let per_frame = Duration::from_secs(1) / config.frames_per_second.max(1);
        let frames = Bucket::new(quota(config.frames_per_second.saturating_mul(2), per_frame));
        Self { ip, handle, control, membership: None, watching: false, bad_frames: 0, messages, frames, state }
    }

    pub async fn run(mut self, mut socket: WebSocket, mut inbox: mpsc::Receiver<Frame>) {
        let config = self.state.config.clone();
        self.send(ServerMsg::Welcome { protocol: PROTOCOL_VERSION, limits: self.limits() });
        let shutdown = self.state.shutdown.clone();
        let control = self.control.clone();

        let mut heartbeat = pin!(sleep(config.ping_interval));
        let mut awaiting_pong = false;
        let mut idle = pin!(sleep(config.idle_timeout));

        let reason: Option<CloseReason> = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Some(GOING_AWAY),
                reason = control.closed() => break Some(reason),
                Some(first) = inbox.recv() => {
                    let write = write_batch(&mut socket, first, &mut inbox);
                    tokio::select! {
                        written = timeout(WRITE_TIMEOUT, write) => match written {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break None,
                            Err(_) => break Some(CloseReason { code: close::SLOW, reason: "too slow to keep up" }),
                        },
                        () = shutdown.cancelled() => break Some(GOING_AWAY),
                        reason = control.closed() => break Some(reason),
                    }
                }
                incoming = socket.recv() => {
                    let flow = match incoming {
                        None => break None,
                        Some(Err(error)) => break read_error(error),
                        Some(Ok(message)) => {
                            if awaiting_pong {
                                awaiting_pong = false;
                                heartbeat.as_mut().reset(Instant::now() + config.ping_interval);
                            }
                            self.on_frame(message)
                        }
                    };
                    match flow {
                        Flow::Continue => {}
                        Flow::Close(reason) => break Some(reason),
                        Flow::PeerClosed => break None,
                    }
                    if self.subscribed() {
                        idle.as_mut().reset(far_future());
                    } else if idle.deadline() > Instant::now() + config.idle_timeout {
                        idle.as_mut().reset(Instant::now() + config.idle_timeout);
                    }
                }
                () = &mut heartbeat => {
                    if awaiting_pong {
                        break Some(CloseReason { code: close::HEARTBEAT_TIMEOUT, reason: "no answer to ping" });
                    }
                    if !matches!(timeout(WRITE_TIMEOUT, socket.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                        break None;
                    }
                    awaiting_pong = true;
                    heartbeat.as_mut().reset(Instant::now() + config.pong_timeout);
                }
                () = &mut idle => break Some(CloseReason { code: close::IDLE, reason: "joined no room in time" }),
            }
        };

        // Leave first, so the room hears of it before the closing handshake runs out its time.
        self.membership = None;
        if self.watching {
            self.state.hub.unwatch_directory(self.handle.id);
        }
        match reason {
            Some(reason) => {
                tracing::debug!(code = reason.code, reason = reason.reason, "closing");
                close_socket(socket, reason).await;
            }
            None => tracing::debug!("peer gone"),
        }
    }

    fn subscribed(&self) -> bool {
        self.watching || self.membership.is_some()
    }

    fn limits(&self) -> Limits {
        let config = &self.state.config;
        Limits {
            message_burst: config.message_burst,
            message_interval_ms: u32::try_from(config.message_interval.as_millis()).unwrap_or(u32::MAX),
            room_limit_max: config.max_room_limit,
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

    fn on_frame(&mut self, message: Message) -> Flow {
        // Every frame counts, pings included: answering is cheap, but not free.
        if self.frames.take(1).is_err() {
            return Flow::Close(CloseReason { code: close::FLOOD, reason: "too many frames" });
        }
        match message {
            Message::Text(text) => self.on_text(text.as_str()),
            Message::Binary(_) => Flow::Close(CloseReason {
                code: close::UNSUPPORTED_DATA,
                reason: "binary frames are not part of the protocol",
            }),
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
            Message::Close(_) => Flow::PeerClosed,
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        match ClientMsg::from_json(text) {
            Ok(message) => {
                self.bad_frames = 0;
                self.on_message(message);
                Flow::Continue
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
        if self.bad_frames >= self.state.config.max_bad_frames {
            Flow::Close(CloseReason { code: close::PROTOCOL_VIOLATION, reason: "too many invalid frames" })
        } else {
            Flow::Continue
        }
    }

    fn on_message(&mut self, message: ClientMsg) {
        match message {
            ClientMsg::WatchDirectory {} => {
                if !self.watching {
                    self.state.hub.watch_directory(&self.handle);
                    self.watching = true;
                }
            }
            ClientMsg::UnwatchDirectory {} => {
                self.state.hub.unwatch_directory(self.handle.id);
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
                    let _ = self.strike();
                    return;
                }
                if let Err(retry) =
                    self.messages.take(JOIN_COST).and_then(|()| self.state.ip_limits.joins.take(self.ip, 1))
                {
                    self.refuse(ErrorCode::RateLimited, slow_down(retry), None, Some(retry));
                    return;
                }
                let request = JoinRequest { nickname: &nickname, session: &session, resume: resume.as_ref() };
                match self.state.hub.join(&room, &self.handle, request) {
                    Ok(membership) => self.membership = Some(membership),
                    Err(error) => self.refuse_hub(error, None),
                }
            }
            ClientMsg::Leave {} => match self.membership.take() {
                Some(membership) => {
                    let room = membership.room.slug.to_string();
                    drop(membership);
                    self.send(ServerMsg::Left { room });
                }
                None => self.refuse_hub(HubError::NotJoined, None),
            },
            ClientMsg::SendMessage { text, client_ref } => {
                let Some(membership) = &self.membership else {
                    return self.refuse_hub(HubError::NotJoined, client_ref);
                };
                if let Err(retry) = self.messages.take(1) {
                    return self.refuse(ErrorCode::RateLimited, slow_down(retry), client_ref, Some(retry));
                }
                match membership.post(&text, client_ref.clone()) {
                    Ok(accepted) => {
                        self.send(ServerMsg::MessageAccepted { client_ref, seq: accepted.seq, at: accepted.at })
                    }
                    Err(HubError::NotJoined) => {
                        // Removed meanwhile (too slow, or replaced by another connection).
                        self.membership = None;
                        self.refuse_hub(HubError::NotJoined, client_ref);
                    }
                    Err(error) => self.refuse_hub(error, client_ref),
                }
            }
        }
    }

    fn refuse_hub(&self, error: HubError, client_ref: Option<String>) {
        self.refuse(error.code(), error.to_string(), client_ref, None);
    }
}

const GOING_AWAY: CloseReason = CloseReason { code: close::GOING_AWAY, reason: "server shutting down" };

fn slow_down(retry: RetryAfter) -> String {
    let seconds = retry.0.as_secs_f64().ceil().max(1.0);
    if seconds <= 1.0 {
        "Slow down: you can send again in a second.".to_owned()
    } else {
        format!("Slow down: you can send again in {seconds} seconds.")
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Writes `first` and whatever else is already queued (up to a batch), then flushes once.
async fn write_batch(
    socket: &mut WebSocket,
    first: Frame,
    inbox: &mut mpsc::Receiver<Frame>,
) -> Result<(), axum::Error> {
    socket.feed(Message::Text(first)).await?;
    for _ in 1..MAX_BATCH {
        match inbox.try_recv() {
            Ok(frame) => socket.feed(Message::Text(frame)).await?,
            Err(_) => break,
        }
    }
    socket.flush().await
}

/// Maps a read failure to the close code the client should see (1009 too big, 1007 not UTF-8,
/// 1002 protocol error); a dropped connection gets none.
fn read_error(error: axum::Error) -> Option<CloseReason> {
    use tungstenite::Error;
    let error = error.into_inner().downcast::<Error>().ok()?;
    match *error {
        Error::Capacity(_) => Some(CloseReason { code: close::TOO_BIG, reason: "frame over 64 KiB" }),
        Error::Utf8(_) => Some(CloseReason { code: close::INVALID_PAYLOAD, reason: "text frame is not UTF-8" }),
        Error::Protocol(_) => Some(CloseReason { code: 1002, reason: "WebSocket protocol error" }),
        _ => None,
    }
}

/// Sends the close frame and waits (briefly) for the client's answer.
async fn close_socket(mut socket: WebSocket, reason: CloseReason) {
    let frame = CloseFrame { code: reason.code, reason: reason.reason.into() };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = socket.recv().await {}
        }
    })
    .await;
}

/// Closes a socket that was refused right after the upgrade.
pub async fn refuse(socket: WebSocket, reason: CloseReason) {
    close_socket(socket, reason).await;
}
