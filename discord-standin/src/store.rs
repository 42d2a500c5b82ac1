//! What the fake guild holds: its text channels, their messages in order, the nonces that
//! `enforce_nonce` checks, and the snowflake clock that numbers new messages.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use twilight_model::{
    channel::{Message, message::Embed},
    user::User,
    util::Timestamp,
};

use crate::{Config, model};

/// Discord checks `enforce_nonce` against messages of "the past few minutes".
const NONCE_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
struct ChannelState {
    name: String,
    messages: Vec<Message>,
    nonces: Vec<NonceEntry>,
}

#[derive(Debug)]
struct NonceEntry {
    nonce: String,
    at: Instant,
    message_id: u64,
}

#[derive(Debug)]
pub(crate) struct Store {
    guild: u64,
    bot: User,
    channels: BTreeMap<u64, ChannelState>,
    /// People who have written, so `<@id>` in later messages can be listed in `mentions`.
    users: HashMap<u64, String>,
    last_id: u64,
    /// Taken at start-up; stands in for "now" if the clock ever reads something twilight's
    /// `Timestamp` cannot hold, so building a message never fails.
    started: Timestamp,
}

impl Store {
    pub(crate) fn new(config: &Config, started: Timestamp) -> Self {
        let channels = config
            .channels
            .iter()
            .map(|(id, name)| (*id, ChannelState { name: name.clone(), ..ChannelState::default() }))
            .collect();
        let mut users = HashMap::new();
        users.insert(config.bot_id, config.bot_name.clone());
        Self {
            guild: config.guild_id,
            bot: model::user(config.bot_id, &config.bot_name, true),
            channels,
            users,
            last_id: 0,
            started,
        }
    }

    /// A fresh snowflake: `(unix_ms - discord_epoch) << 22 | counter`, strictly increasing even
    /// when many are taken within one millisecond.
    pub(crate) fn next_id(&mut self) -> u64 {
        let since_epoch = unix_ms().saturating_sub(model::DISCORD_EPOCH_MS);
        self.last_id = (since_epoch << 22).max(self.last_id + 1);
        self.last_id
    }

    pub(crate) fn now(&self) -> Timestamp {
        let micros = i64::try_from(unix_ms().saturating_mul(1000)).unwrap_or(i64::MAX);
        Timestamp::from_micros(micros).unwrap_or(self.started)
    }

    pub(crate) fn has_channel(&self, channel: u64) -> bool {
        self.channels.contains_key(&channel)
    }

    pub(crate) fn channel_json(&self, channel: u64) -> Option<Value> {
        let position = self.channels.keys().position(|id| *id == channel)?;
        let state = self.channels.get(&channel)?;
        let last = state.messages.last().map(|m| m.id.get());
        Some(model::channel_json(channel, self.guild, &state.name, position, last))
    }

    /// A message someone (not the bot) writes, with `<@id>` mentions of known users resolved.
    pub(crate) fn user_message(&mut self, channel: u64, user_id: u64, user_name: &str, content: &str) -> Message {
        self.users.insert(user_id, user_name.to_owned());
        let id = self.next_id();
        let mut message = model::message(
            id,
            channel,
            self.guild,
            model::user(user_id, user_name, false),
            content,
            Vec::new(),
            self.now(),
        );
        message.mentions = mentioned_ids(content)
            .into_iter()
            .filter_map(|mentioned| {
                let name = self.users.get(&mentioned)?;
                Some(model::mention(mentioned, name, mentioned == self.bot.id.get()))
            })
            .collect();
        message
    }

    /// A message the bot posts through REST.
    pub(crate) fn bot_message(&mut self, channel: u64, content: &str, embeds: Vec<Embed>) -> Message {
        let id = self.next_id();
        model::message(id, channel, self.guild, self.bot.clone(), content, embeds, self.now())
    }

    pub(crate) fn bot_id(&self) -> u64 {
        self.bot.id.get()
    }

    /// Stores a message as given. A channel the config did not name is created on the fly, so a
    /// test posting into it sees its message rather than a silent drop.
    pub(crate) fn insert(&mut self, message: Message) {
        let channel = message.channel_id.get();
        let state = self.channels.entry(channel).or_insert_with(|| {
            tracing::warn!(channel, "message posted into a channel the config did not name; creating it");
            ChannelState { name: format!("channel-{channel}"), ..ChannelState::default() }
        });
        state.messages.push(message);
    }

    pub(crate) fn get(&self, channel: u64, message_id: u64) -> Option<&Message> {
        self.channels.get(&channel)?.messages.iter().find(|m| m.id.get() == message_id)
    }

    pub(crate) fn get_mut(&mut self, channel: u64, message_id: u64) -> Option<&mut Message> {
        self.channels.get_mut(&channel)?.messages.iter_mut().find(|m| m.id.get() == message_id)
    }

    pub(crate) fn remove(&mut self, channel: u64, message_id: u64) -> Option<Message> {
        let messages = &mut self.channels.get_mut(&channel)?.messages;
        let index = messages.iter().position(|m| m.id.get() == message_id)?;
        Some(messages.remove(index))
    }

    pub(crate) fn messages(&self, channel: u64) -> Vec<Message> {
        self.channels.get(&channel).map(|state| state.messages.clone()).unwrap_or_default()
    }

    pub(crate) fn remember_nonce(&mut self, channel: u64, nonce: String, message_id: u64, now: Instant) {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.nonces.retain(|entry| now.duration_since(entry.at) < NONCE_TTL);
            state.nonces.push(NonceEntry { nonce, at: now, message_id });
        }
    }

    /// The message created with this nonce in this channel within the last five minutes, if it
    /// still exists (a deleted one cannot be returned, so the caller creates a new message).
    pub(crate) fn find_by_nonce(&self, channel: u64, nonce: &str, now: Instant) -> Option<Message> {
        let state = self.channels.get(&channel)?;
        let entry = state.nonces.iter().rev().find(|e| e.nonce == nonce && now.duration_since(e.at) < NONCE_TTL)?;
        state.messages.iter().find(|m| m.id.get() == entry.message_id).cloned()
    }
}

fn unix_ms() -> u64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// User ids named by `<@id>` or the older `<@!id>` in message text.
fn mentioned_ids(content: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let digits_from = usize::from(rest.starts_with('!'));
        let Some(end) = rest.find('>') else { break };
        if let Some(Ok(id)) = rest.get(digits_from..end).map(str::parse::<u64>)
            && id != 0
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(&Config::default(), Timestamp::from_secs(1_764_693_000).expect("timestamp"))
    }

    #[test]
    fn snowflakes_strictly_increase_and_carry_the_time() {
        let mut store = store();
        let a = store.next_id();
        let b = store.next_id();
        assert!(b > a);
        let ms = (b >> 22) + model::DISCORD_EPOCH_MS;
        assert!(ms.abs_diff(unix_ms()) < 5_000);
    }

    #[test]
    fn mentions_of_known_users_are_listed() {
        let mut store = store();
        store.user_message(600, 42, "dana", "hello");
        let message = store.user_message(600, 43, "eli", "hi <@42> and <@!900> and <@7> <@nope>");
        let names: Vec<_> = message.mentions.iter().map(|m| (m.id.get(), m.name.as_str(), m.bot)).collect();
        assert_eq!(names, vec![(42, "dana", false), (900, "burner-bridge", true)]);
    }

    #[test]
    fn a_nonce_finds_its_message_while_it_exists() {
        let mut store = store();
        let message = store.bot_message(600, "x", Vec::new());
        let id = message.id.get();
        store.insert(message);
        let now = Instant::now();
        store.remember_nonce(600, "n1".into(), id, now);
        assert_eq!(store.find_by_nonce(600, "n1", now).map(|m| m.id.get()), Some(id));
        assert!(store.find_by_nonce(601, "n1", now).is_none());
        assert!(store.find_by_nonce(600, "n1", now + NONCE_TTL).is_none());
        store.remove(600, id);
        assert!(store.find_by_nonce(600, "n1", now).is_none());
    }
}
