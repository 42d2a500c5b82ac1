//! The stand-in's one piece of shared state, and the operations that change what Discord holds
//! (post, edit, delete) together with the gateway events Discord emits for them. REST, the
//! control API and the Rust handle all go through here, so the three cannot disagree.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use tokio::sync::watch;
use twilight_model::{
    channel::{ChannelType, Message},
    gateway::{
        event::DispatchEvent,
        payload::incoming::{MessageCreate, MessageDelete, MessageUpdate},
    },
};

use crate::{Config, Counters, Fault, Recorded, limits::Limits, model, sessions::Sessions, store::Store};

/// Everything behind one mutex: the sections are short and never await, and one lock means a
/// post and its dispatch, or a RESUME and its replay, are never interleaved with another.
#[derive(Debug)]
pub(crate) struct World {
    pub store: Store,
    pub sessions: Sessions,
    pub limits: Limits,
    pub requests: Vec<Recorded>,
    pub faults: VecDeque<Fault>,
    pub counters: Counters,
    pub token_valid: bool,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub api_url: String,
    pub gateway_url: String,
    world: Mutex<World>,
    /// Bumped after every change to the stored messages, so `wait_for_messages` wakes without
    /// polling (a `watch` never loses a change made between a check and the wait).
    changed: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(config: Config, port: u16, world: World) -> Self {
        Self {
            config,
            api_url: format!("http://127.0.0.1:{port}"),
            gateway_url: format!("ws://127.0.0.1:{port}"),
            world: Mutex::new(world),
            changed: watch::channel(0).0,
        }
    }

    /// A panic while holding the lock (only possible in a test's own code) must not take the
    /// whole stand-in down with it.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|version| *version = version.wrapping_add(1));
    }

    /// The token as presented (an `Authorization` header or an IDENTIFY/RESUME field), with or
    /// without twilight's `Bot ` prefix.
    pub(crate) fn token_ok(&self, world: &World, presented: &str) -> bool {
        let token = presented.strip_prefix("Bot ").unwrap_or(presented);
        world.token_valid && token == self.config.token
    }

    pub(crate) fn resume_gateway_url(&self) -> String {
        format!("{}/resume", self.gateway_url)
    }

    pub(crate) fn user_message(&self, channel: u64, user_id: u64, user_name: &str, content: &str) -> Message {
        self.world().store.user_message(channel, user_id, user_name, content)
    }

    /// Stores a message and emits MESSAGE_CREATE to every session, the bot's own posts included.
    pub(crate) fn post(&self, message: Message) {
        self.world().post(message);
        self.bump();
    }

    pub(crate) fn edit(&self, channel: u64, message_id: u64, content: &str) -> Option<Message> {
        let edited = self.world().edit(channel, message_id, |message| message.content = content.to_owned());
        self.bump();
        edited
    }

    pub(crate) fn delete(&self, channel: u64, message_id: u64) -> bool {
        let deleted = self.world().delete(channel, message_id);
        self.bump();
        deleted
    }

    /// Called by REST handlers after they changed messages through `World` directly.
    pub(crate) fn messages_changed(&self) {
        self.bump();
    }
}

impl World {
    pub(crate) fn new(config: &Config, started: twilight_model::util::Timestamp, instance: u64) -> Self {
        Self {
            store: Store::new(config, started),
            sessions: Sessions::new(instance),
            limits: Limits::new(config.route_limit, config.route_window, config.global_per_sec),
            requests: Vec::new(),
            faults: VecDeque::new(),
            counters: Counters::default(),
            token_valid: true,
        }
    }

    pub(crate) fn post(&mut self, message: Message) {
        self.store.insert(message.clone());
        let event = MessageCreate { channel_type: Some(ChannelType::GuildText), message };
        self.sessions.dispatch(&DispatchEvent::MessageCreate(Box::new(event)));
    }

    /// Applies `change`, stamps `edited_timestamp` and emits MESSAGE_UPDATE (a full message, as
    /// in API v10).
    pub(crate) fn edit(&mut self, channel: u64, message_id: u64, change: impl FnOnce(&mut Message)) -> Option<Message> {
        let now = self.store.now();
        let message = self.store.get_mut(channel, message_id)?;
        change(message);
        message.edited_timestamp = Some(now);
        let edited = message.clone();
        self.sessions.dispatch(&DispatchEvent::MessageUpdate(Box::new(MessageUpdate(edited.clone()))));
        Some(edited)
    }

    pub(crate) fn delete(&mut self, channel: u64, message_id: u64) -> bool {
        let Some(removed) = self.store.remove(channel, message_id) else { return false };
        self.sessions.dispatch(&DispatchEvent::MessageDelete(MessageDelete {
            channel_id: removed.channel_id,
            guild_id: removed.guild_id,
            id: removed.id,
        }));
        true
    }

    /// Records one REST request with the status it got.
    pub(crate) fn record(&mut self, at: Instant, method: &str, path: &str, status: u16, body: serde_json::Value) {
        self.requests.push(Recorded { at, method: method.to_owned(), path: path.to_owned(), status, body });
    }

    pub(crate) fn bot_id(&self) -> u64 {
        self.store.bot_id()
    }
}

/// The bot as READY and `GET users/@me` present it.
pub(crate) fn ready_user(config: &Config) -> twilight_model::user::CurrentUser {
    model::current_user(config.bot_id, &config.bot_name)
}
