//! `/ws`: the upgrade (origin check, connection cap, socket limits) and the per-socket loop.
//!
//! One task per socket. It writes whatever the hub queued in its outbox (everything queued, then
//! one flush), reads the client's frames and answers them through the same outbox, pings, and
//! closes with a code from `protocol::close` when anything goes wrong. The hub never waits for it.

mod clock;
mod request;
mod session;
mod wakes;

pub use session::GOING_AWAY;
use session::Session;

use crate::{
    cluster::{Opened, SharedConnection, SharedRate},
    error::Refusal,
    limits::{IpKey, IpSlot},
    moderation::registry::Place,
    outbox::{CloseReason, ConnHandle, Outbox},
    state::{AppState, ConnectionSlots},
    visitor::Visitor,
    websocket::{Socket, Switch, Upgrade},
};
use app::protocol::{ClientMsg, ErrorCode, PROTOCOL_VERSION, close};
use axum::{
    Extension,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use std::sync::{Arc, Mutex, PoisonError, atomic::Ordering};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::{sync::CancellationToken, task::task_tracker::TaskTrackerToken};
use tracing::Instrument;

/// Frames and messages are capped at 64 KiB: far above the 2 000-character message limit, far
/// below tungstenite's 16/64 MiB defaults, so an oversized frame is refused from its header.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
pub struct WsQuery {
    /// The protocol version the client speaks.
    v: Option<String>,
    /// The room the socket is for. Alone, a hint for a load balancer (the room page's sockets
    /// name theirs); with `nickname` (and the tab's `session`), a room to join as the socket
    /// opens, as a `join` frame would: entered in the same turn as the 101, one round trip fewer.
    room: Option<String>,
    nickname: Option<String>,
    session: Option<String>,
}

impl WsQuery {
    /// The `join` the address asks for, if it names a room and a nickname.
    fn join(self) -> Option<ClientMsg> {
        let Self { room, nickname, session, .. } = self;
        Some(ClientMsg::Join { room: room?, nickname: nickname?, session: session.unwrap_or_default(), resume: None })
    }
}

/// Where the upgrade leaves a socket's [`Opening`] for the HTTP connection's task to run once the
/// 101 is written: in the same turn, not in a task of its own that would wait its turn behind
/// every other socket's. `serve` puts one on each connection (the only way requests reach the
/// router).
#[derive(Clone, Default)]
pub struct Handover(Arc<Mutex<Option<Opening>>>);

impl Handover {
    /// The socket to open, if the connection upgraded.
    pub fn take(&self) -> Option<Opening> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, opening: Opening) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(opening);
    }
}

/// A socket answered with 101: what it needs to open, and its first request.
pub struct Opening {
    switch: Switch,
    connection: Connection,
    conn_id: u64,
    join: Option<ClientMsg>,
}

impl Opening {
    /// Opens the socket (its welcome, the join its address asked for, and their write), then runs
    /// it in a task of its own for the rest of its life.
    pub async fn open(self) {
        let Self { switch, mut connection, conn_id, join } = self;
        let Some(mut socket) = switch.socket(MAX_FRAME_BYTES).await else {
            return;
        };
        connection.open(&mut socket, join).instrument(tracing::info_span!("conn", id = conn_id)).await;
        // The socket's whole life from here is one task, its future holding the connection, the
        // socket and the loop's waiting state in one allocation. Not in a span (40 bytes more per
        // member): what it logs names the connection itself.
        tokio::spawn(connection.serve(socket));
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Query<WsQuery>, QueryRejection>,
    headers: HeaderMap,
    Extension(handover): Extension<Handover>,
    ws: Upgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            let text = rejection.body_text();
            let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
            return Refusal::bad_request(format!(
                "This socket's address could not be read ({detail}). Give v, room, nickname and session at \
                 most once each, URL-encoded."
            ))
            .into_response();
        }
    };
    if !origin_allowed(&state.allowed_origins, &headers) {
        return Refusal::permission_denied("This page may not open a Burner connection (origin not allowed).")
            .into_response();
    }
    if let Some(banned) = visitor.banned() {
        return banned.into_response();
    }
    let ip = visitor.ip;
    if let Err(retry) = state.ip_limits.connects.take(ip, 1) {
        return connecting_too_fast(retry.0);
    }
    let Some(ip_slot) = state.ip_limits.open.try_open(ip) else {
        return too_many_connections();
    };
    let Some(slot) = state.connections.try_acquire() else {
        return Refusal::new(ErrorCode::Unavailable, "Burner is at its connection limit. Try again in a minute.")
            .into_response();
    };
    // In a cluster, the same caps hold for the address across every node.
    let shared_slot = match state.hub.cluster() {
        Some(rooms) => {
            let config = &state.config;
            let rate = SharedRate::of(
                IpKey::from(ip),
                &visitor.ip_hash,
                &state.moderation.hasher,
                config.connect_burst_per_ip,
                config.connect_interval_per_ip,
            );
            match rooms.open_connection(&rate, config.max_connections_per_ip).await {
                Opened::Counted(counted) => Some(counted),
                Opened::TooMany => return too_many_connections(),
                Opened::Wait(wait) => return connecting_too_fast(wait),
                // Redis cannot say now: this node's own caps (above) hold alone.
                Opened::Unknown => None,
            }
        }
        None => None,
    };
    let conn_id = state.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let (handle, outbox) = ConnHandle::new(conn_id, state.config.outbox);
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let moderation = &state.moderation;
    moderation.log.opened(conn_id, ip, visitor.ip_hash.to_string(), user_agent.to_owned());
    let place = moderation.registry.add(ip, visitor.ip_hash.clone(), visitor.is_moderator(), handle.clone());
    let places = Places { slot, ip_slot, shared_slot, place };
    let version_ok = query.v.as_deref().is_none_or(|v| v == PROTOCOL_VERSION.to_string());
    let connection = Connection::new(&state, Session::new(&state, visitor, handle), outbox, version_ok, places);
    let (response, switch) = ws.answer();
    let opening = Opening { switch, connection, conn_id, join: query.join() };
    handover.put(opening);
    response
}

fn connecting_too_fast(wait: std::time::Duration) -> Response {
    Refusal::new(ErrorCode::RateLimited, "Too many new connections from your address. Try again in a moment.")
        .retry_after(wait)
        .into_response()
}

fn too_many_connections() -> Response {
    Refusal::new(ErrorCode::RateLimited, "Too many connections from your address: close a few tabs.").into_response()
}

/// Everything one socket needs, prepared before the upgrade.
struct Connection {
    session: Session,
    outbox: Outbox,
    shutdown: CancellationToken,
    version_ok: bool,
    /// Its entry in the moderators' registry.
    place: Place,
    /// The address's place under the same caps across the cluster.
    _shared_slot: Option<Box<SharedConnection>>,
    /// Lets shutdown wait for this socket.
    _tracked: TaskTrackerToken,
}

/// What the upgrade took for a socket: its places under the connection caps and in the
/// moderators' registry.
struct Places {
    slot: OwnedSemaphorePermit,
    ip_slot: IpSlot,
    shared_slot: Option<SharedConnection>,
    place: Place,
}

impl Connection {
    /// Holds the socket's places under the connection caps (global, per address) as counts, not
    /// guards: the socket's task keeps its connection for its whole life, where each guard's
    /// pointer would cost 8 bytes per member. Dropping the connection gives them back.
    fn new(state: &AppState, session: Session, outbox: Outbox, version_ok: bool, places: Places) -> Self {
        let Places { slot, ip_slot, shared_slot, place } = places;
        ConnectionSlots::keep(slot);
        ip_slot.keep();
        Self {
            session,
            outbox,
            shutdown: state.shutdown.clone(),
            version_ok,
            place,
            _shared_slot: shared_slot.map(Box::new),
            _tracked: state.tracker.token(),
        }
    }
}

/// The socket closed, or the upgrade never happened: its entry in the moderators' registry goes,
/// the connection log notes the close, and its places under the caps are given back.
impl Drop for Connection {
    fn drop(&mut self) {
        let (parts, id) = (&self.session.parts, self.session.handle.id);
        parts.moderation.registry.remove(self.place);
        parts.moderation.log.closed(id);
        parts.open_per_ip.close(self.session.visitor.ip);
        parts.connections.give_back();
    }
}

impl Connection {
    /// The socket's first turn, before it has a task of its own.
    async fn open(&mut self, socket: &mut Socket, join: Option<ClientMsg>) {
        if self.version_ok {
            let Self { session, outbox, shutdown, .. } = self;
            session.open(socket, outbox, shutdown, join).await;
        }
    }

    /// The socket's life. Not an async fn: one keeps its arguments apart from its locals, and the
    /// connection and the socket would be held twice for as long as it is open. The block's
    /// captures are used in place.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    fn serve(mut self, mut socket: Socket) -> impl Future<Output = ()> {
        async move {
            if self.version_ok {
                let Self { session, outbox, shutdown, .. } = &mut self;
                session.run(&mut socket, outbox, shutdown).await;
            } else {
                let reason = CloseReason::fixed(close::UNSUPPORTED_VERSION, "protocol version not supported");
                Box::pin(session::close_socket(&mut socket, reason)).await;
            }
        }
    }
}

/// The browser's `Origin` must match the allowlist exactly (scheme, host and port). With no
/// allowlist configured, only the site's own origin is allowed: `http://` + the `Host` the
/// request was sent to. A missing `Origin` is refused: browsers always send one on WebSocket
/// upgrades, and bots can send the site's origin like a browser would.
pub(crate) fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if allowed.is_empty() {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        return !host.is_empty()
            && origin.len() == "http://".len() + host.len()
            && origin.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
            && origin.get(7..).is_some_and(|rest| rest.eq_ignore_ascii_case(host));
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// An idle member's largest cost is its socket's task: tokio lays it out as a 32-byte header,
    /// the scheduler's handle and the task id (16), the future with its stage tag (8) and a
    /// 48-byte trailer, aligned to 128. Up to a future of 664 bytes that is 768 bytes, one of
    /// jemalloc's size classes; past it the task takes 896 (128 bytes more per connection). The
    /// task's future is the connection's `serve`, as the upgrade spawns it (waiting for the
    /// upgrade takes less). Anything the socket keeps for its whole life must come out of
    /// something else it keeps.
    #[tokio::test]
    async fn a_sockets_task_stays_within_768_bytes() {
        let (state, _data) = request::testing::state(|_| {}).await;
        let connection = registered(&state);
        let (socket, _client) = Socket::loopback().await;
        let task = connection.serve(socket);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 664, "the socket's future is {size} bytes: its task no longer fits in 768");
    }

    /// What the opening wrote and the kernel did not take is flushed by the socket's own task as
    /// it starts, with nothing else to write (the opening does not wait for it: see
    /// `Session::open`).
    #[tokio::test]
    async fn what_the_opening_could_not_write_goes_out_as_the_socket_starts() {
        use tokio::io::AsyncReadExt;
        let (state, _data) = request::testing::state(|_| {}).await;
        let connection = registered(&state);
        let (mut socket, mut client) = Socket::loopback().await;
        let big = vec![b'x'; 8 << 20];
        assert!(socket.write_message(false, &big).expect("written"), "the kernel took it all: make it bigger");
        let served = tokio::spawn(connection.serve(socket));
        // A binary frame of 8 MiB: two bytes, then its length in eight.
        let mut received = vec![0; 10 + big.len()];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), client.read_exact(&mut received)).await;
        assert!(matches!(read, Ok(Ok(_))), "the rest never came: {read:?}");
        assert!(received[10..].iter().all(|&b| b == b'x'));
        drop(client);
        served.await.expect("the socket's task ends");
    }

    /// On the one-core runtime (a test's) the drainer writes a waiting socket's frames; what the
    /// kernel does not take is handed to the socket's task, which sends it before the frames
    /// queued since. The client reads nothing until far more than the kernel's buffers hold is
    /// on its way, then gets every frame once, in order.
    #[tokio::test]
    async fn frames_the_drainer_could_not_send_reach_the_client_first_and_in_order() {
        use tokio::io::AsyncReadExt;
        let (state, _data) = request::testing::state(|_| {}).await;
        let connection = registered(&state);
        let handle = connection.session.handle.clone();
        let (socket, mut client) = Socket::loopback().await;
        assert!(crate::outbox::Outbox::drained(), "a test's runtime has one thread");
        let served = tokio::spawn(connection.serve(socket));
        // The socket's task starts and waits.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let text = |i: usize| format!("{i:05}{}", "x".repeat(100_000));
        // 20 MB while the task waits: the drainer's to write, and the kernel takes a part.
        for i in 0..200 {
            assert_eq!(handle.offer(crate::frame::Frame::from(text(i))), crate::outbox::Offer::Queued);
        }
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        // Queued behind what the task was handed.
        for i in 200..250 {
            assert_eq!(handle.offer(crate::frame::Frame::from(text(i))), crate::outbox::Offer::Queued);
        }
        let mut frame = vec![0; 10 + text(0).len()];
        for i in 0..250 {
            let read = tokio::time::timeout(std::time::Duration::from_secs(10), client.read_exact(&mut frame)).await;
            assert!(matches!(read, Ok(Ok(_))), "frame {i} never came: {read:?}");
            // A final text frame with a 64-bit length, then the text.
            assert_eq!(frame[..2], [0x81, 127], "frame {i}");
            assert_eq!(frame[10..], *text(i).as_bytes(), "frame {i}: whole, and in its place");
        }
        drop(client);
        served.await.expect("the socket's task ends");
    }

    /// A connection as the upgrade prepares it: registered, holding its slots.
    fn registered(state: &AppState) -> Connection {
        let ip = "192.0.2.10".parse().expect("ip");
        let (session, outbox) = request::testing::session_on(state, 1, ip, None);
        let place = state.moderation.registry.add(ip, "hash".into(), false, session.handle.clone());
        let places = Places {
            slot: state.connections.try_acquire().expect("a connection slot"),
            ip_slot: state.ip_limits.open.try_open(ip).expect("an address slot"),
            shared_slot: None,
            place,
        };
        Connection::new(state, session, outbox, true, places)
    }

    /// A connection holds its places as counts (not guards, see `Connection::new`): they come
    /// back, with its registry entry, when it goes.
    #[tokio::test]
    async fn a_connection_gives_its_places_back_when_it_goes() {
        let (state, _data) = request::testing::state(|config| {
            config.max_connections = 1;
            config.max_connections_per_ip = 1;
        })
        .await;
        let ip = "192.0.2.10".parse().expect("ip");
        let connection = registered(&state);
        assert!(state.connections.try_acquire().is_none(), "the server's one place is taken");
        assert!(state.ip_limits.open.try_open(ip).is_none(), "the address's one place is taken");
        assert_eq!(state.moderation.registry.address_of("hash"), Some(ip), "registered");
        drop(connection);
        assert!(state.connections.try_acquire().is_some(), "the server's place came back");
        assert!(state.ip_limits.open.try_open(ip).is_some(), "the address's place came back");
        assert_eq!(state.moderation.registry.address_of("hash"), None, "its registry entry went");
    }

    /// Shutdown cancels, then closes the registered connections; one registered before that but
    /// upgraded after it (its loop starting once the server is stopping) closes with 1001 too,
    /// before it says anything else.
    #[tokio::test]
    async fn a_socket_upgraded_while_the_server_stops_is_closed_as_going_away() {
        use tokio::io::AsyncReadExt;
        let (state, _data) = request::testing::state(|_| {}).await;
        let mut connection = registered(&state);
        state.shutdown.cancel();
        let (mut socket, mut client) = Socket::loopback().await;
        connection.open(&mut socket, None).await;
        let served = tokio::spawn(connection.serve(socket));
        let mut frame = [0; 4];
        client.read_exact(&mut frame).await.expect("a frame");
        assert_eq!(frame[0], 0x88, "the first frame is a close");
        assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), close::GOING_AWAY);
        drop(client);
        served.await.expect("the socket's task ends");
    }

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn default_allows_only_the_sites_own_origin() {
        assert!(origin_allowed(&[], &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000")));
        assert!(origin_allowed(&[], &headers(Some("http://LOCALHOST:3000"), "localhost:3000")));
        for foreign in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:3000",
            "http://127.0.0.1:3001",
            "http://127.0.0.1:3000.evil.example",
            "http://127.0.0.1",
            "ws://127.0.0.1:3000",
        ] {
            assert!(!origin_allowed(&[], &headers(Some(foreign), "127.0.0.1:3000")), "{foreign}");
        }
        assert!(!origin_allowed(&[], &headers(None, "127.0.0.1:3000")));
    }

    #[test]
    fn a_configured_allowlist_replaces_the_default() {
        let allowed = vec!["https://chat.example.org".to_owned()];
        assert!(origin_allowed(&allowed, &headers(Some("https://chat.example.org"), "10.0.0.5:3000")));
        assert!(!origin_allowed(&allowed, &headers(Some("http://chat.example.org"), "chat.example.org")));
        assert!(!origin_allowed(&allowed, &headers(Some("https://chat.example.org.evil.example"), "x")));
        assert!(!origin_allowed(&allowed, &headers(Some("http://10.0.0.5:3000"), "10.0.0.5:3000")));
    }
}
