//! A local stand-in for Discord's REST API and gateway, for testing Burner's Discord bridge on
//! a machine that cannot reach Discord. One axum server on loopback serves:
//!
//! - the gateway (`GET /` and `GET /resume[/]`, WebSocket, JSON text frames) the way
//!   twilight-gateway 0.18 expects it: HELLO, IDENTIFY → READY, RESUME → replay + RESUMED,
//!   heartbeats, op 7 / op 9, close codes 4004 and 4014;
//! - REST under `/api/v10/` (current user, channel, create / edit / delete message) with
//!   Discord's rate-limit headers, 429s and error bodies;
//! - a small control API under `/_standin/` for Playwright tests.
//!
//! Every JSON shape is built from twilight-model types, so it cannot drift from what the
//! bridge's client deserialises. [`StandIn`] is the handle tests hold: it plays the people on
//! the Discord side, injects faults and reports what the bridge did.

mod bodies;
mod control;
mod gateway;
mod limits;
mod model;
mod rest;
mod sessions;
mod store;
mod world;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use axum::{
    Router,
    routing::{get, post},
};
use tokio::{net::TcpListener, task::AbortHandle};
use twilight_model::{channel::Message, gateway::event::GatewayEvent, util::Timestamp};

use crate::world::{Shared, World};

/// What the fake Discord looks like and how strict it is.
#[derive(Clone, Debug)]
pub struct Config {
    /// The accepted bot token, without the `Bot ` prefix (a presented token may carry it).
    pub token: String,
    pub bot_id: u64,
    pub bot_name: String,
    pub guild_id: u64,
    /// The guild's text channels, `(id, name)`, in position order.
    pub channels: Vec<(u64, String)>,
    /// The HELLO interval: short in tests so heartbeats are exercised.
    pub heartbeat_interval: Duration,
    /// Whether the bot has the privileged MESSAGE_CONTENT intent enabled in the developer
    /// portal; without it an IDENTIFY asking for it is closed with 4014.
    pub message_content_intent: bool,
    /// Requests per route bucket (per method, route and channel) per `route_window`.
    pub route_limit: u32,
    pub route_window: Duration,
    /// Requests per second across all routes (Discord's global limit is 50).
    pub global_per_sec: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token: "standin-token".to_owned(),
            bot_id: 900,
            bot_name: "burner-bridge".to_owned(),
            guild_id: 500,
            channels: vec![(600, "general".to_owned()), (601, "random".to_owned())],
            heartbeat_interval: Duration::from_secs(1),
            message_content_intent: true,
            route_limit: 50,
            route_window: Duration::from_secs(1),
            global_per_sec: 50,
        }
    }
}

/// One REST request as it arrived, with the status it was answered with.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: Instant,
    pub method: String,
    /// The path without the query, e.g. `/api/v10/channels/600/messages`.
    pub path: String,
    pub status: u16,
    /// The request body as JSON; `Null` if empty, a JSON string if it was not JSON.
    pub body: serde_json::Value,
}

/// A failure to answer instead of serving a REST request (see [`StandIn::fail_next`]).
#[derive(Clone, Debug)]
pub enum Fault {
    /// A 429. A global one also refuses every request until `retry_after` has passed, so a
    /// test can check the client waited.
    RateLimited { global: bool, retry_after: Duration },
    /// 401 `{"message":"401: Unauthorized","code":0}`.
    Unauthorized,
    /// 403 `{"message":"Missing Permissions","code":50013}`.
    Forbidden,
    /// 502 `{"message":"Bad Gateway","code":0}`.
    ServerError,
}

/// Gateway activity so far.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub connections: u32,
    /// Connections made on the `/resume` path (`resume_gateway_url`).
    pub resume_connections: u32,
    pub identifies: u32,
    pub resumes: u32,
    /// RESUMEs answered with a replay and RESUMED (not op 9).
    pub resumed_ok: u32,
    pub heartbeats: u32,
}

/// The handle tests hold. Clones share one stand-in; dropping the last one stops the server and
/// drops its gateway sockets.
#[derive(Clone)]
pub struct StandIn {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    server: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.world().sessions.drop_all();
    }
}

impl StandIn {
    /// Binds `127.0.0.1:0` and serves in a spawned task.
    pub async fn start(config: Config) -> anyhow::Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the stand-in")?;
        Self::start_on(listener, config).await
    }

    /// Serves on a listener the caller bound (the binary's `--port`).
    pub async fn start_on(listener: TcpListener, config: Config) -> anyhow::Result<StandIn> {
        let mut ids = [config.bot_id, config.guild_id].into_iter().chain(config.channels.iter().map(|(id, _)| *id));
        anyhow::ensure!(ids.all(|id| id != 0), "Discord ids (bot, guild, channels) cannot be 0");
        let port = listener.local_addr().context("reading the stand-in's address")?.port();
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?;
        let started = Timestamp::from_micros(i64::try_from(since_epoch.as_micros())?)?;
        let instance = u64::from(since_epoch.subsec_nanos()) ^ (u64::from(std::process::id()) << 32);
        let world = World::new(&config, started, instance);
        let shared = Arc::new(Shared::new(config, port, world));
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "discord stand-in stopped serving");
            }
        });
        tracing::info!(api_url = %shared.api_url, gateway_url = %shared.gateway_url, "discord stand-in started");
        Ok(StandIn { handle: Arc::new(Handle { shared, server: server.abort_handle() }) })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// `http://127.0.0.1:PORT`; REST lives under `/api/v10/`.
    pub fn api_url(&self) -> String {
        self.shared().api_url.clone()
    }

    /// `ws://127.0.0.1:PORT`, without a trailing slash (twilight appends `/?v=10…`).
    pub fn gateway_url(&self) -> String {
        self.shared().gateway_url.clone()
    }

    pub fn bot_id(&self) -> u64 {
        self.shared().config.bot_id
    }

    /// A person writes in a channel: stores the message and dispatches MESSAGE_CREATE to every
    /// session (connected ones at once, dropped ones on RESUME). A channel the config did not
    /// name is created on the fly.
    pub fn post_as_user(&self, channel: u64, user_id: u64, user_name: &str, content: &str) -> Message {
        let message = self.user_message(channel, user_id, user_name, content);
        self.post_message(message.clone());
        message
    }

    /// Builds, without posting, a valid message by a person with a fresh snowflake id and `<@id>`
    /// mentions of known users resolved: a starting point for [`StandIn::post_message`] when a
    /// test needs attachments, stickers, embeds, a bot or webhook author, a reply…
    /// Ids must be non-zero (`Id` cannot hold 0; a zero becomes 1).
    pub fn user_message(&self, channel: u64, user_id: u64, user_name: &str, content: &str) -> Message {
        self.shared().user_message(channel, user_id, user_name, content)
    }

    /// Stores the message as given and dispatches MESSAGE_CREATE.
    pub fn post_message(&self, message: Message) {
        self.shared().post(message);
    }

    /// The author edits: sets `edited_timestamp` and dispatches MESSAGE_UPDATE. `None` if the
    /// message is not there.
    pub fn edit_as_user(&self, channel: u64, message_id: u64, content: &str) -> Option<Message> {
        self.shared().edit(channel, message_id, content)
    }

    /// A Discord moderator deletes a message: removes it and dispatches MESSAGE_DELETE.
    pub fn delete_as_user(&self, channel: u64, message_id: u64) -> bool {
        self.shared().delete(channel, message_id)
    }

    /// What the channel holds now, oldest first, the bot's messages and people's alike.
    pub fn messages(&self, channel: u64) -> Vec<Message> {
        self.shared().world().store.messages(channel)
    }

    /// Waits until the channel holds at least `n` messages or `timeout` passes; returns what it
    /// holds then.
    pub async fn wait_for_messages(&self, channel: u64, n: usize, timeout: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared().subscribe();
        loop {
            let messages = self.messages(channel);
            if messages.len() >= n {
                return messages;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return self.messages(channel),
            }
        }
    }

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared().world().requests.clone()
    }

    /// The next `n` REST requests, on any route, get `fault` instead of being served. Calls
    /// queue up: `fail_next(1, A); fail_next(2, B)` answers A, B, B.
    pub fn fail_next(&self, n: u32, fault: Fault) {
        let mut world = self.shared().world();
        world.faults.extend(std::iter::repeat_n(fault, n as usize));
    }

    /// Forgets the faults `fail_next` queued that no request has taken yet.
    pub fn clear_faults(&self) {
        self.shared().world().faults.clear();
    }

    /// `false`: every REST call gets 401, and IDENTIFY / RESUME are closed with 4004.
    pub fn set_token_valid(&self, valid: bool) {
        self.shared().world().token_valid = valid;
    }

    /// Drops every gateway socket without a close frame (a TCP drop); sessions stay resumable
    /// and keep buffering what they miss.
    pub fn drop_gateway(&self) {
        self.shared().world().sessions.drop_all();
    }

    /// Op 7 RECONNECT to every socket.
    pub fn send_reconnect(&self) {
        self.shared().world().sessions.broadcast(&GatewayEvent::Reconnect);
    }

    /// Op 9 INVALID_SESSION to every socket; unless `resumable`, every session is forgotten too.
    pub fn invalidate_sessions(&self, resumable: bool) {
        let mut world = self.shared().world();
        world.sessions.broadcast(&GatewayEvent::InvalidateSession(resumable));
        if !resumable {
            world.sessions.forget_all();
        }
    }

    pub fn counters(&self) -> Counters {
        self.shared().world().counters.clone()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(gateway::upgrade_identify))
        .route("/resume", get(gateway::upgrade_resume))
        .route("/resume/", get(gateway::upgrade_resume))
        .route("/_standin/channels/{channel}/user_messages", post(control::post_user_message))
        .route("/_standin/channels/{channel}/messages", get(control::list_messages))
        .route("/_standin/channels/{channel}/messages/{message}/delete", post(control::delete_message))
        // Everything else is REST: routed by hand so auth, faults, limits and recording are
        // applied once, to every request, unknown routes included.
        .fallback(rest::handle)
        .with_state(shared)
}
