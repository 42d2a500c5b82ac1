//! The browser's socket (gloo-net): connects to `/ws`, reports every server message, and
//! reconnects by itself with jittered exponential backoff after a drop. Close codes decide:
//! the "reconnect" range (and network drops) retry, the "terminal" range ends with a reason.
//!
//! A page owns one [`Socket`] and tells it what to do when the connection opens (join, watch
//! the directory); the socket itself keeps no application state.

use crate::{
    components::LinkStatus as Status,
    protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, WS_PATH, close},
};
use futures_channel::mpsc;
use futures_util::{
    SinkExt, StreamExt,
    future::{Either, select},
};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};
use gloo_timers::future::TimeoutFuture;
use std::{cell::Cell, rc::Rc};

pub enum Event {
    Status(Status),
    Message(ServerMsg),
}

enum Command {
    Send(String),
    Stop,
}

/// A handle to the page's connection. Dropping it does not stop it; call [`Socket::stop`].
#[derive(Clone)]
pub struct Socket {
    commands: mpsc::UnboundedSender<Command>,
    online: Rc<Cell<bool>>,
}

const FIRST_RETRY_MS: f64 = 500.0;
const MAX_RETRY_MS: f64 = 15_000.0;
/// A connection up for this long counts as working: the next drop retries quickly again.
const STABLE_MS: f64 = 10_000.0;

impl Socket {
    /// Starts connecting. `on_event` gets every status change and server message, in order,
    /// with the socket to answer through. `room`: the room this socket is for, named in its
    /// address so that a load balancer can send a room's members to the same server (a hint
    /// only: the server ignores it, and joins are messages).
    pub fn open(room: Option<String>, on_event: impl Fn(&Socket, Event) + 'static) -> Self {
        let (commands, inbox) = mpsc::unbounded();
        let socket = Self { commands, online: Rc::new(Cell::new(false)) };
        let this = socket.clone();
        let on_event = move |event| on_event(&this, event);
        leptos::task::spawn_local(run(inbox, room, socket.online.clone(), Rc::new(on_event)));
        socket
    }

    /// Sends now if the connection is up; `false` if it is not (the caller keeps the message
    /// and sends it again once the connection is back).
    pub fn send(&self, message: &ClientMsg) -> bool {
        self.online.get() && self.commands.unbounded_send(Command::Send(message.to_json())).is_ok()
    }

    pub fn is_online(&self) -> bool {
        self.online.get()
    }

    pub fn stop(&self) {
        let _ = self.commands.unbounded_send(Command::Stop);
    }
}

async fn run(
    mut commands: mpsc::UnboundedReceiver<Command>,
    room: Option<String>,
    online: Rc<Cell<bool>>,
    on_event: Rc<dyn Fn(Event)>,
) {
    let mut failures = 0u32;
    loop {
        on_event(Event::Status(Status::Connecting));
        // Whatever was queued for the previous connection is stale: the page resends what
        // still matters once it hears `Online`.
        while let Ok(command) = commands.try_recv() {
            if matches!(command, Command::Stop) {
                return;
            }
        }
        let ended = connect_once(&mut commands, room.as_deref(), &online, on_event.as_ref()).await;
        online.set(false);
        match ended {
            Ended::Stopped => return,
            Ended::Terminal(reason) => {
                on_event(Event::Status(Status::Closed(reason)));
                return;
            }
            // A connection that stayed up a while starts the backoff over; one that a server
            // closes right after welcoming it keeps backing off.
            Ended::Dropped { online_for_ms } => {
                failures = if online_for_ms >= STABLE_MS { 1 } else { failures + 1 };
            }
        }
        let ceiling = (FIRST_RETRY_MS * 2f64.powi(failures.min(8) as i32 - 1)).min(MAX_RETRY_MS);
        // Full jitter keeps a restarted server from being hit by every client at once.
        let delay = ceiling * (0.5 + 0.5 * js_sys::Math::random());
        on_event(Event::Status(Status::Reconnecting { retry_at: js_sys::Date::now() + delay }));
        let wait = TimeoutFuture::new(delay as u32);
        let stop = commands.next();
        if let Either::Right((Some(Command::Stop) | None, _)) = select(wait, stop).await {
            return;
        }
    }
}

enum Ended {
    Stopped,
    Terminal(String),
    /// How long the connection was up (0 if it never was).
    Dropped {
        online_for_ms: f64,
    },
}

async fn connect_once(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    room: Option<&str>,
    online: &Cell<bool>,
    on_event: &dyn Fn(Event),
) -> Ended {
    let Some(url) = socket_url(room) else { return Ended::Terminal("This page has no address to connect to.".into()) };
    let Ok(mut socket) = WebSocket::open(&url) else { return Ended::Dropped { online_for_ms: 0.0 } };
    let mut online_since = None;
    let dropped = |since: Option<f64>| Ended::Dropped { online_for_ms: since.map_or(0.0, |t| js_sys::Date::now() - t) };
    loop {
        let next = match select(socket.next(), commands.next()).await {
            Either::Left((frame, _)) => Either::Left(frame),
            Either::Right((command, _)) => Either::Right(command),
        };
        match next {
            Either::Left(Some(Ok(Message::Text(text)))) => match ServerMsg::from_json(&text) {
                Ok(message) => {
                    if matches!(message, ServerMsg::Welcome { .. }) {
                        online_since = Some(js_sys::Date::now());
                        online.set(true);
                        on_event(Event::Status(Status::Online));
                    }
                    on_event(Event::Message(message));
                }
                // A newer server may send events this page does not know yet: skip them.
                Err(_) => leptos::logging::warn!("Burner: ignored an unknown server message"),
            },
            Either::Left(Some(Ok(Message::Bytes(_)))) => {}
            Either::Left(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                if close::should_reconnect(event.code) {
                    return dropped(online_since);
                }
                return Ended::Terminal(closed_because(event.code, &event.reason));
            }
            Either::Left(Some(Err(_)) | None) => return dropped(online_since),
            Either::Right(Some(Command::Send(text))) => {
                if socket.send(Message::Text(text)).await.is_err() {
                    return dropped(online_since);
                }
            }
            Either::Right(Some(Command::Stop) | None) => {
                let _ = socket.close(Some(1000), Some("left the page"));
                return Ended::Stopped;
            }
        }
    }
}

fn socket_url(room: Option<&str>) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
    let room =
        room.map(|slug| format!("&room={}", String::from(js_sys::encode_uri_component(slug)))).unwrap_or_default();
    Some(format!("{scheme}://{}{WS_PATH}?v={PROTOCOL_VERSION}{room}", location.host().ok()?))
}

/// The sentence shown when the server ends the connection for good.
fn closed_because(code: u16, reason: &str) -> String {
    match code {
        close::REPLACED => "You joined this room from another tab or window, so this one was disconnected.".into(),
        close::KICKED => format!("A moderator removed you from the room. Reason: {reason}"),
        // The server writes the whole sentence: until when, and why.
        close::BANNED => reason.to_owned(),
        close::ROOM_CLOSED => format!("A moderator closed this room. Reason: {reason}"),
        close::UNSUPPORTED_VERSION => "Burner was updated. Reload the page to continue.".into(),
        close::FLOOD => "Disconnected for flooding: sending too much, too fast.".into(),
        close::IDLE => "Disconnected after a while without joining a room.".into(),
        close::PROTOCOL_VIOLATION | close::UNSUPPORTED_DATA | close::INVALID_PAYLOAD | close::TOO_BIG => {
            "The server closed the connection because this page sent something it could not accept. Reload the page."
                .into()
        }
        _ if !reason.is_empty() => format!("The server closed the connection: {reason}."),
        _ => format!("The server closed the connection (code {code})."),
    }
}
