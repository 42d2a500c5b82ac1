//! One socket's life: welcome, the read / answer / write loop, heartbeat, and a clean close.
//!
//! The loop waits on three things only (the outbox, the socket, one timer) by polling them
//! itself: their wakers are kept where the wake-up comes from (the outbox, the runtime's
//! registration of the socket, the timer), so waiting adds nothing to the socket's future.
//! Shutdown reaches it through the outbox like any other order to close. The work that takes
//! longer (a flush the kernel did not take at once, a request Redis decides, the closing
//! handshake) runs in short-lived boxed futures. What an idle connection keeps in memory is
//! therefore just this small waiting state, not the largest thing it ever did. What each request
//! does lives in `request/`.

use super::{
    clock::{Clock, Tick},
    wakes::Wakes,
};
use crate::websocket::{
    Socket,
    frames::{Incoming, WireError},
};
use crate::{
    error::Refusal,
    frame::Frame,
    hub::Membership,
    limits::{Bucket, quota},
    outbox::{CloseReason, ConnHandle, GONE, Outbox, Ready, Taken},
    policy::Sender,
    state::{AppState, SocketParts},
    visitor::Visitor,
};
use app::protocol::{ClientMsg, ErrorCode, Limits, PROTOCOL_VERSION, ServerMsg, close};
use std::{
    collections::VecDeque,
    future::poll_fn,
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::time::{Instant, Sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

/// A write that cannot finish in this long means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// What every socket is told when the server stops.
pub const GOING_AWAY: CloseReason = CloseReason::fixed(close::GOING_AWAY, "server shutting down");
const SLOW: CloseReason = CloseReason::fixed(close::SLOW, "too slow to keep up");

pub struct Session {
    /// The server's parts, behind the one pointer every socket shares.
    pub(super) parts: Arc<SocketParts>,
    /// Who is on the other end, as the upgrade found out (the moderator session is checked
    /// again on every use).
    pub(super) visitor: Visitor,
    pub(super) handle: ConnHandle,
    pub(super) membership: Option<Membership>,
    pub(super) watching: bool,
    pub(super) watching_console: bool,
    bad_frames: u32,
    /// This socket as a source of messages, for the posting policy.
    pub(super) sender: Sender,
    frames: Bucket,
    /// Messages this connection reported already, by room and number (each counts once). A boxed
    /// slice, not a `Vec`: reports are rare, and a socket keeps its session for its whole life.
    pub(super) reported: Box<[MessageKey]>,
    /// When this connection last passed a `typing` on to its room.
    pub(super) last_typing: Option<Instant>,
}

/// A message, by its room and number.
pub(super) type MessageKey = (Arc<str>, u64);

/// What a frame from the client leads to.
pub(super) enum Flow {
    Continue,
    Close(CloseReason),
    /// The client sent a close frame (with this code, if any), to be answered in kind.
    PeerClosed(Option<u16>),
    /// The client pinged: answer with its payload.
    Pong(Vec<u8>),
    /// A request only Redis can decide (cluster mode: a join or a message): answered by
    /// `request::shared`, which waits for Redis. (Boxed: the flow is held while a pong is
    /// written, so its size is part of the socket's future.)
    Shared(Box<ClientMsg>),
}

enum Event {
    Close(CloseReason),
    /// Everything the outbox held, to write now.
    Write(VecDeque<Frame>),
    /// What the drainer wrote for this socket and the kernel did not take: sent before
    /// anything else.
    Handed(Box<[u8]>),
    Read(Option<Result<Incoming, WireError>>),
    Tick,
}

/// What the loop waits for after an event, if anything.
enum Step {
    Next,
    /// A write was made: the kernel may not have taken all of it.
    Wrote(std::io::Result<bool>),
    /// A request only Redis can decide.
    Shared(Box<ClientMsg>),
    End(End),
}

/// How the socket's loop ended.
enum End {
    /// We close, for this reason.
    Close(CloseReason),
    /// The client closed (with this code): answer it.
    Answer(Option<u16>),
    /// The connection is gone; nothing more can be said.
    Gone,
}

impl End {
    /// What the outbox is closed with, so nothing more is queued.
    fn reason(&self) -> CloseReason {
        match self {
            End::Close(reason) => reason.clone(),
            End::Answer(_) | End::Gone => GONE,
        }
    }
}

impl Session {
    pub fn new(state: &AppState, visitor: Visitor, handle: ConnHandle) -> Self {
        let config = &state.config;
        let per_frame = Duration::from_secs(1) / config.frames_per_second.max(1);
        let frames = Bucket::new(quota(config.frames_per_second.saturating_mul(2), per_frame));
        Self {
            parts: state.sockets.clone(),
            sender: state.policy.sender(visitor.ip),
            visitor,
            handle,
            membership: None,
            watching: false,
            watching_console: false,
            bad_frames: 0,
            frames,
            reported: Box::default(),
            last_typing: None,
        }
    }

    /// The socket's first turn, where its 101 was written (before it has a task of its own): the
    /// welcome, the join its address asked for, and their write. A visitor whose address names
    /// a room is in it, and told so, in the turn that answered its upgrade.
    pub async fn open(
        &mut self,
        socket: &mut Socket,
        outbox: &Outbox,
        shutdown: &CancellationToken,
        join: Option<ClientMsg>,
    ) {
        // Shutdown cancels, then closes every registered connection through its outbox. This one
        // registered before its upgrade: if that closing missed it, the cancel came first and is
        // seen here, and it closes the same way, saying nothing else. Once, not per event (the
        // check takes the token's lock, which every connection shares).
        if shutdown.is_cancelled() {
            self.handle.close(GOING_AWAY);
            return;
        }
        self.send(ServerMsg::Welcome { protocol: PROTOCOL_VERSION, limits: self.limits() });
        if let Some(join) = join {
            let flow = match self.on_message(join) {
                Flow::Shared(request) => self.on_shared(request).await,
                flow => flow,
            };
            if let Flow::Close(reason) = flow {
                self.handle.close(reason);
            }
        }
        // Written now, as far as the kernel takes it. What it does not take (a big room's member
        // list) the socket's own task flushes as it starts: a flush waited for here would leave
        // this task's waker in the socket's registration, where nothing replaces it for as long
        // as the socket idles, and keep this task's allocation alive with it.
        if let Ok(Err(_)) = write_taken(socket, outbox) {
            self.handle.close(GONE);
        }
    }

    /// The socket's loop until it closes. Not an async fn: one keeps its arguments apart from its
    /// locals, and this future lives as long as the socket does (see `Connection::serve`).
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub fn run<'a>(
        &'a mut self,
        socket: &'a mut Socket,
        outbox: &'a Outbox,
        shutdown: &'a CancellationToken,
    ) -> impl Future<Output = ()> + 'a {
        async move {
            let now = Instant::now();
            let mut clock = Clock::new(&self.parts.config, now);
            // Joined already, if its address named a room (`open`): not idle.
            clock.subscribed(self.subscribed(), now, &self.parts.config);
            // The timer's own deadline is the one it was last set to (no copy is kept).
            let mut timer = pin!(sleep_until(clock.next()));
            let mut wakes = Wakes::new();
            let mut reading_first = false;

            // What the opening wrote and the kernel did not take yet. Should that fail, the loop
            // ends at its first turn, through the outbox like any other order to close.
            if let Err(end) = finish(Ok(socket.has_unsent()), socket, shutdown).await {
                self.handle.close(end.reason());
            }
            if Outbox::drained()
                && let Ok(writer) = socket.writer()
            {
                outbox.write_for_the_task(writer);
            }

            let end = loop {
                // Reading and writing go first in turns: a queue that never empties must not starve
                // reading (pongs included), nor reading starve the queue.
                reading_first = !reading_first;
                // Bytes the drainer wrote and the kernel did not take go first. While nothing is
                // ready and nothing is unsent, the task waits parked: its frames may be written for
                // it (`outbox`).
                let event = poll_fn(|cx| {
                    outbox.unpark();
                    if let Some(bytes) = outbox.take_handed() {
                        return Poll::Ready(Event::Handed(bytes));
                    }
                    let event = next_event(cx, socket, outbox, timer.as_mut(), &mut wakes, reading_first);
                    if event.is_pending() && !socket.has_unsent() {
                        outbox.park();
                    }
                    event
                })
                .await;
                // Decided without waiting, so nothing the event carried is held while a write waits.
                let done = match self.step(event, socket, &mut clock) {
                    Step::Next => Ok(()),
                    Step::Wrote(write) => finish(write, socket, shutdown).await,
                    // Boxed: only a cluster's requests carry the Redis call's state.
                    Step::Shared(request) => Box::pin(self.shared(request, socket, outbox, shutdown, &mut clock)).await,
                    Step::End(end) => Err(end),
                };
                if let Err(end) = done {
                    break end;
                }
                if clock.next() != timer.deadline() {
                    timer.as_mut().reset(clock.next());
                    wakes.timer_reset();
                }
            };

            // Refuse new frames at once, then leave, so the room hears of it before the closing
            // handshake runs out its time.
            outbox.close(end.reason());
            self.end();
            Box::pin(end_socket(socket, end, self.handle.id)).await;
        }
    }

    /// A request Redis decides, then what its answer asks of the socket.
    async fn shared(
        &mut self,
        request: Box<ClientMsg>,
        socket: &mut Socket,
        outbox: &Outbox,
        shutdown: &CancellationToken,
        clock: &mut Clock,
    ) -> Result<(), End> {
        let answered = self.on_shared(request);
        let (flow, ended) = writing_meanwhile(answered, socket, outbox, shutdown).await;
        if let Some(end) = ended {
            return Err(end);
        }
        clock.subscribed(self.subscribed(), Instant::now(), &self.parts.config);
        match step_after(flow, socket) {
            Step::Wrote(write) => finish(write, socket, shutdown).await,
            Step::End(end) => Err(end),
            // An answer from Redis does not ask Redis again.
            Step::Next | Step::Shared(_) => Ok(()),
        }
    }

    /// What an event leads to, done at once: a frame handled, a write made (its flush, if any, is
    /// the loop's to wait for), the clock moved on.
    fn step(&mut self, event: Event, socket: &mut Socket, clock: &mut Clock) -> Step {
        match event {
            Event::Close(reason) => Step::End(End::Close(reason)),
            Event::Write(frames) => Step::Wrote(socket.write_texts(&frames)),
            Event::Handed(bytes) => {
                socket.adopt_unsent(bytes.into_vec());
                Step::Wrote(Ok(true))
            }
            Event::Read(None) => Step::End(End::Gone),
            Event::Read(Some(Err(error))) => Step::End(End::Close(read_error(error))),
            Event::Read(Some(Ok(message))) => {
                let now = Instant::now();
                clock.heard(now, &self.parts.config);
                let step = step_after(self.on_frame(message), socket);
                clock.subscribed(self.subscribed(), now, &self.parts.config);
                step
            }
            Event::Tick => match clock.tick(Instant::now(), &self.parts.config) {
                Tick::Nothing => Step::Next,
                Tick::Ping => Step::Wrote(socket.write_ping()),
                Tick::Dead => Step::End(End::Close(CloseReason::fixed(close::HEARTBEAT_TIMEOUT, "no answer to ping"))),
                Tick::Idle => Step::End(End::Close(CloseReason::fixed(close::IDLE, "joined no room in time"))),
            },
        }
    }

    /// Whether the connection takes part in anything (the idle timer runs while it does not).
    fn subscribed(&self) -> bool {
        self.watching || self.watching_console || self.membership.is_some()
    }

    /// Leaves the room and stops watching, as the connection ends.
    fn end(&mut self) {
        self.membership = None;
        if self.watching {
            self.parts.hub.unwatch_directory(self.handle.id);
        }
        if self.watching_console {
            self.parts.moderation.unwatch(self.handle.id);
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            message_burst: self.parts.config.message_burst,
            message_interval_ms: u32::try_from(self.parts.config.message_interval.as_millis()).unwrap_or(u32::MAX),
            room_limit_max: self.parts.config.max_room_limit,
            ..Limits::from_rules()
        }
    }

    /// Our own replies go through the outbox too, behind whatever the hub queued before them.
    pub(super) fn send(&self, message: ServerMsg) {
        self.handle.offer(Frame::encode(&message));
    }

    /// Refuses a request; `client_ref` ties the refusal to the message it answers.
    pub(super) fn refuse(&self, refusal: &Refusal, client_ref: Option<String>) {
        self.send(refusal.to_message(client_ref));
    }

    /// Refuses a request that makes no sense in the connection's state, which counts as a bad
    /// frame, like garbage does.
    pub(super) fn refuse_and_strike(&mut self, refusal: &Refusal, client_ref: Option<String>) -> Flow {
        self.refuse(refusal, client_ref);
        self.strike()
    }

    pub(super) fn on_frame(&mut self, message: Incoming) -> Flow {
        // Every message counts, pings included: answering is cheap, but not free.
        if self.frames.take(1).is_err() {
            return Flow::Close(CloseReason::fixed(close::FLOOD, "too many frames"));
        }
        match message {
            Incoming::Text(text) => self.on_text(&text),
            Incoming::Binary(_) => {
                Flow::Close(CloseReason::fixed(close::UNSUPPORTED_DATA, "binary frames are not part of the protocol"))
            }
            Incoming::Ping(payload) => Flow::Pong(payload),
            Incoming::Pong => Flow::Continue,
            Incoming::Close(code) => Flow::PeerClosed(code.map(|(code, _)| code)),
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
                let refusal =
                    Refusal::new(ErrorCode::BadRequest, format!("That frame is not a valid Burner message: {detail}."));
                self.refuse_and_strike(&refusal, None)
            }
        }
    }

    /// Counts a bad frame; too many in a row end the connection.
    fn strike(&mut self) -> Flow {
        self.bad_frames += 1;
        if self.bad_frames >= self.parts.config.max_bad_frames {
            Flow::Close(CloseReason::fixed(close::PROTOCOL_VIOLATION, "too many invalid frames"))
        } else {
            Flow::Continue
        }
    }
}

/// Whatever is ready first of the socket and the outbox (in the order given), then the timer;
/// when none is, each will wake the task. The socket and the timer are polled only if they may
/// have something ([`Wakes`]): most wake-ups are the outbox's.
fn next_event(
    cx: &mut Context<'_>,
    socket: &mut Socket,
    outbox: &Outbox,
    timer: Pin<&mut Sleep>,
    wakes: &mut Wakes,
    reading_first: bool,
) -> Poll<Event> {
    let mut others = wakes.others(outbox);
    let mut socket_waits = false;
    if others && reading_first {
        if let Poll::Ready(incoming) = wakes.poll_socket(socket, outbox) {
            return Poll::Ready(Event::Read(incoming));
        }
        socket_waits = true;
    }
    match outbox.poll_take(cx) {
        Poll::Ready(Taken::Frames(frames)) => return Poll::Ready(Event::Write(frames)),
        Poll::Ready(Taken::Close(reason)) => return Poll::Ready(Event::Close(reason)),
        // The socket or the timer woke the task meanwhile: look at both (once: a source that
        // wakes the task again at once is seen on the next poll, not in a loop here).
        Poll::Ready(Taken::Woken) => {
            others = wakes.others(outbox);
            socket_waits = false;
        }
        Poll::Pending => {}
    }
    if !others {
        return Poll::Pending;
    }
    if !socket_waits && let Poll::Ready(incoming) = wakes.poll_socket(socket, outbox) {
        return Poll::Ready(Event::Read(incoming));
    }
    wakes.poll_timer(timer, outbox).map(|()| Event::Tick)
}

/// Writes everything queued at once, and waits only for what the kernel did not take (most
/// writes are taken whole: only a flush needs a future of its own). Ends the socket if it is
/// closing.
async fn write_queued(socket: &mut Socket, outbox: &Outbox, shutdown: &CancellationToken) -> Result<(), End> {
    let write = write_taken(socket, outbox).map_err(End::Close)?;
    finish(write, socket, shutdown).await
}

/// Takes the outbox's queue and writes it. The queue lives on this call's stack, not in the
/// socket's future. Whether some of it waits to be flushed.
fn write_taken(socket: &mut Socket, outbox: &Outbox) -> Result<std::io::Result<bool>, CloseReason> {
    let frames = outbox.take()?;
    Ok(socket.write_texts(&frames))
}

/// What a frame from the client asks of the socket, done at once.
fn step_after(flow: Flow, socket: &mut Socket) -> Step {
    match flow {
        Flow::Continue => Step::Next,
        Flow::Shared(request) => Step::Shared(request),
        Flow::Pong(payload) => Step::Wrote(socket.write_pong(&payload)),
        Flow::Close(reason) => Step::End(End::Close(reason)),
        Flow::PeerClosed(code) => Step::End(End::Answer(code)),
    }
}

/// The socket's last words: the closing handshake, ours or the answer to the client's.
async fn end_socket(socket: &mut Socket, end: End, conn: u64) {
    match end {
        End::Close(reason) => {
            tracing::debug!(conn, code = reason.code, reason = %reason.reason, "closing");
            close_socket(socket, reason).await;
        }
        End::Answer(code) => {
            tracing::debug!(conn, ?code, "peer closed");
            socket.answer_close(code).await;
        }
        End::Gone => tracing::debug!(conn, "peer gone"),
    }
}

/// Follows a write: a failed one ends the socket; one the kernel did not take whole is flushed,
/// unless that stalls past the timeout (the client stopped reading) or the server stops.
async fn written(write: std::io::Result<bool>, socket: &mut Socket, shutdown: &CancellationToken) -> Result<(), End> {
    match write {
        Ok(false) => Ok(()),
        Ok(true) => tokio::select! {
            flushed = timeout(WRITE_TIMEOUT, socket.flush()) => match flushed {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Gone),
                Err(_) => Err(End::Close(SLOW)),
            },
            () = shutdown.cancelled() => Err(End::Close(GOING_AWAY)),
        },
        Err(_) => Err(End::Gone),
    }
}

/// Waits for a request Redis decides while still writing what reaches the socket meanwhile (a
/// member posting keeps receiving the room); the next request is read only after this one is
/// answered, so answers keep their order. The request's flow, and how the socket must end if a
/// write failed meanwhile.
async fn writing_meanwhile(
    request: impl std::future::Future<Output = Flow>,
    socket: &mut Socket,
    outbox: &Outbox,
    shutdown: &CancellationToken,
) -> (Flow, Option<End>) {
    let mut request = pin!(request);
    let mut ended = None;
    // Off once the outbox is closing (the socket's loop sees that again afterwards) or a write
    // failed.
    let mut writing = true;
    loop {
        tokio::select! {
            flow = &mut request => return (flow, ended),
            ready = outbox.ready(), if writing => match ready {
                Ready::Frames => {
                    if let Err(end) = write_queued(socket, outbox, shutdown).await {
                        (ended, writing) = (Some(end), false);
                    }
                }
                Ready::Close(_) => writing = false,
            },
        }
    }
}

/// Finishes a write done at once: only when the kernel did not take it whole does a (boxed)
/// flush run, so the socket's own future never holds a flush's state.
async fn finish(write: std::io::Result<bool>, socket: &mut Socket, shutdown: &CancellationToken) -> Result<(), End> {
    match write {
        Ok(false) => Ok(()),
        write => Box::pin(written(write, socket, shutdown)).await,
    }
}

/// The close code the client gets for bytes that break the protocol (1009 too big, 1007 not
/// UTF-8, 1002 anything else).
fn read_error(error: WireError) -> CloseReason {
    match error {
        WireError::TooBig => CloseReason::fixed(close::TOO_BIG, "frame over 64 KiB"),
        WireError::NotUtf8 => CloseReason::fixed(close::INVALID_PAYLOAD, "text frame is not UTF-8"),
        WireError::Protocol(_) => CloseReason::fixed(error.close_code(), "WebSocket protocol error"),
    }
}

/// Sends the close frame and waits (briefly) for the client's answer.
pub async fn close_socket(socket: &mut Socket, reason: CloseReason) {
    socket.close(reason.code, &reason.reason).await;
}
