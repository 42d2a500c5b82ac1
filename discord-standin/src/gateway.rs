//! The gateway's sockets: the upgrade on `/` and `/resume`, one task per socket that writes its
//! outbox and reads the client's frames, and the answer to each client opcode (HEARTBEAT,
//! IDENTIFY, RESUME). Session bookkeeping lives in `sessions`; this module owns the wire.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    extract::{
        Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message as WsMessage, WebSocket},
    },
    response::Response,
};
use serde::Deserialize as _;
use serde_json::Value;
use tracing::Instrument as _;
use twilight_model::gateway::{
    CloseCode, Intents, OpCode,
    event::{DispatchEvent, GatewayEvent},
    payload::{
        incoming::Hello,
        outgoing::{Identify, Resume},
    },
};

use crate::{
    model,
    sessions::{Out, Registration, encode},
    world::{Shared, World, ready_user},
};

/// How long a socket we closed waits for the client's close reply before dropping TCP.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `GET /?v=10&encoding=json`: the URL twilight builds from `proxy_url`.
pub(crate) async fn upgrade_identify(
    ws: WebSocketUpgrade,
    Query(query): Query<HashMap<String, String>>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    upgrade(ws, &query, shared, false)
}

/// `GET /resume/?v=10&encoding=json`: the URL twilight builds from READY's `resume_gateway_url`.
pub(crate) async fn upgrade_resume(
    ws: WebSocketUpgrade,
    Query(query): Query<HashMap<String, String>>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    upgrade(ws, &query, shared, true)
}

fn upgrade(ws: WebSocketUpgrade, query: &HashMap<String, String>, shared: Arc<Shared>, via_resume: bool) -> Response {
    let version_ok = query.get("v").is_none_or(|v| v == "10");
    if let Some(compress) = query.get("compress") {
        // twilight decompresses only binary frames, so text frames still work for it.
        tracing::warn!(compress, "transport compression requested; the stand-in answers uncompressed text frames");
    }
    ws.on_upgrade(move |socket| serve(socket, shared, via_resume, version_ok))
}

/// How a socket's loop ended, which decides what happens to its session.
enum Ending {
    /// `drop_gateway` or a full outbox: TCP dropped, no close frame, session kept.
    Dropped,
    /// We sent a close frame (4004, 4014, …).
    ClosedByUs,
    /// The client sent a close frame; 1000 and 1001 end the session, as on Discord.
    ClosedByClient { normal: bool },
    /// Read or write failed, or the client vanished.
    Gone,
}

async fn serve(mut socket: WebSocket, shared: Arc<Shared>, via_resume: bool, version_ok: bool) {
    let Registration { conn, mut rx, kill } = {
        let mut world = shared.world();
        world.counters.connections += 1;
        if via_resume {
            world.counters.resume_connections += 1;
        }
        world.sessions.register()
    };
    let span = tracing::debug_span!("gateway", conn, via_resume);
    async {
        tracing::debug!("connected");
        let ending = if !version_ok {
            close(&mut socket, CloseCode::InvalidApiVersion as u16, "Invalid API version.").await;
            Ending::ClosedByUs
        } else {
            let interval = u64::try_from(shared.config.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
            let sent = match encode(&GatewayEvent::Hello(Hello { heartbeat_interval: interval })) {
                Some(hello) => socket.send(WsMessage::Text(hello.into())).await.is_ok(),
                None => false,
            };
            if sent { run(&mut socket, &shared, conn, &mut rx, &kill).await } else { Ending::Gone }
        };
        let normal = matches!(ending, Ending::ClosedByClient { normal: true });
        if matches!(ending, Ending::ClosedByUs | Ending::ClosedByClient { .. }) {
            // Finish the closing handshake (reading flushes tungstenite's automatic reply to a
            // client's close) before TCP goes.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(message)) = socket.recv().await {
                    if matches!(message, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        // Dropping the socket without a close frame is what `Ending::Dropped` promises.
        drop(socket);
        shared.world().sessions.unregister(conn, normal);
        tracing::debug!(normal, "disconnected");
    }
    .instrument(span)
    .await;
}

async fn run(
    socket: &mut WebSocket,
    shared: &Shared,
    conn: u64,
    rx: &mut tokio::sync::mpsc::Receiver<Out>,
    kill: &tokio::sync::Notify,
) -> Ending {
    loop {
        tokio::select! {
            biased;
            () = kill.notified() => return Ending::Dropped,
            out = rx.recv() => match out {
                Some(Out::Frame(frame)) => {
                    if socket.send(WsMessage::Text(frame.into())).await.is_err() {
                        return Ending::Gone;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    close(socket, code, reason).await;
                    return Ending::ClosedByUs;
                }
                None => return Ending::Gone,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => on_frame(shared, conn, text.as_str()),
                Some(Ok(WsMessage::Binary(_))) => {
                    // The stand-in speaks JSON only (no ETF); Discord answers undecodable payloads so.
                    shared.world().sessions.send(conn, Out::Close(CloseCode::DecodeError as u16, "Error while decoding payload."));
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let normal = frame.is_some_and(|f| f.code == 1000 || f.code == 1001);
                    return Ending::ClosedByClient { normal };
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ending::Gone,
            },
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    tracing::debug!(code, reason, "closing");
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = socket.send(WsMessage::Close(Some(frame))).await;
}

/// One client frame. Everything it causes is queued on the socket's outbox under the lock, so a
/// RESUME's replay cannot interleave with a dispatch made at the same moment.
fn on_frame(shared: &Shared, conn: u64, text: &str) {
    let mut guard = shared.world();
    let world = &mut *guard;
    let close = |world: &mut World, code: CloseCode, reason: &'static str| {
        world.sessions.send(conn, Out::Close(code as u16, reason));
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return close(world, CloseCode::DecodeError, "Error while decoding payload.");
    };
    let Some(op) = value.get("op") else {
        return close(world, CloseCode::DecodeError, "Error while decoding payload.");
    };
    let Ok(op) = OpCode::deserialize(op) else {
        return close(world, CloseCode::UnknownOpcode, "Unknown opcode.");
    };
    match op {
        OpCode::Heartbeat => {
            world.counters.heartbeats += 1;
            world.sessions.send_event(conn, &GatewayEvent::HeartbeatAck);
        }
        OpCode::Identify => {
            world.counters.identifies += 1;
            let Ok(identify) = Identify::deserialize(&value) else {
                return close(world, CloseCode::DecodeError, "Error while decoding payload.");
            };
            if world.sessions.is_identified(conn) {
                return close(world, CloseCode::AlreadyAuthenticated, "Already authenticated.");
            }
            if !shared.token_ok(world, &identify.d.token) {
                return close(world, CloseCode::AuthenticationFailed, "Authentication failed.");
            }
            if identify.d.intents.contains(Intents::MESSAGE_CONTENT) && !shared.config.message_content_intent {
                return close(world, CloseCode::DisallowedIntents, "Disallowed intent(s).");
            }
            let (bot, guild, resume_url) =
                (ready_user(&shared.config), shared.config.guild_id, shared.resume_gateway_url());
            world
                .sessions
                .identify(conn, |session_id| DispatchEvent::Ready(model::ready(bot, guild, session_id, resume_url)));
        }
        OpCode::Resume => {
            world.counters.resumes += 1;
            let Ok(resume) = Resume::deserialize(&value) else {
                return close(world, CloseCode::DecodeError, "Error while decoding payload.");
            };
            if world.sessions.is_identified(conn) {
                return close(world, CloseCode::AlreadyAuthenticated, "Already authenticated.");
            }
            if !shared.token_ok(world, &resume.d.token) {
                return close(world, CloseCode::AuthenticationFailed, "Authentication failed.");
            }
            if world.sessions.resume(conn, &resume.d.session_id, resume.d.seq) {
                world.counters.resumed_ok += 1;
            } else {
                world.sessions.send_event(conn, &GatewayEvent::InvalidateSession(false));
            }
        }
        OpCode::PresenceUpdate | OpCode::VoiceStateUpdate | OpCode::RequestGuildMembers => {
            // Accepted and ignored: the bridge never sends them, but they are valid once identified.
            if !world.sessions.is_identified(conn) {
                close(world, CloseCode::NotAuthenticated, "Not authenticated.");
            }
        }
        _ => close(world, CloseCode::UnknownOpcode, "Unknown opcode."),
    }
}
