//! The bridge as moderators and room pages see it: linking and unlinking rooms, muting Discord
//! authors, and the views the console and the room page show.

use super::{Bridge, TOKEN_REFUSED, rest::Reply};
use crate::{conn_log::now_ms, error::Refusal, store::DiscordLink};
use app::protocol::{DiscordLinkView, DiscordView, ErrorCode, MutedDiscordAuthor, Source};
use hyper::Method;
use std::{
    sync::{Arc, PoisonError},
    time::Duration,
};

/// How long a mute waits for the record of a message the room shows as from Discord: tries, and
/// the wait between two.
const RECORD_TRIES: u32 = 40;
const RECORD_WAIT: Duration = Duration::from_millis(50);

impl Bridge {
    /// The bridge as the console shows it.
    pub fn view(&self) -> DiscordView {
        let health = self.health();
        DiscordView {
            state: serde_json::to_value(health.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            error: health.error,
            links: self.links(),
            sent: health.sent,
            received: health.received,
            refused: health.refused,
        }
    }

    /// The channel name a room is bridged to, for its page ("Bridged to Discord #name").
    pub fn bridged_to(&self, room: &str) -> Option<String> {
        self.lock_links().get(room).map(|l| l.link.channel_name.clone())
    }

    /// Every link as the console shows it: room, channel, and its problem if any.
    pub fn links(&self) -> Vec<DiscordLinkView> {
        let mut links: Vec<_> = self
            .lock_links()
            .values()
            .map(|l| DiscordLinkView {
                room: l.link.room.clone(),
                channel_id: l.link.channel_id.to_string(),
                channel_name: l.link.channel_name.clone(),
                joins: l.link.joins,
                problem: l.problem.clone().or_else(|| {
                    let remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
                    remote.as_ref().filter(|_| !self.is_active()).and_then(|r| r.problems.get(&l.link.room).cloned())
                }),
                muted: self
                    .mutes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&l.link.room)
                    .map(|muted| {
                        muted
                            .iter()
                            .map(|(id, name)| MutedDiscordAuthor { id: id.to_string(), name: name.clone() })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        links.sort_by(|a, b| a.room.cmp(&b.room));
        links
    }

    /// A moderator links `room` to the channel `channel_id`: checked with Discord first (the
    /// channel must exist and the bot see it), then stored. The sentence confirming it.
    pub async fn link(self: &Arc<Self>, room: &str, channel_id: &str, joins: bool) -> Result<String, Refusal> {
        if self.stopped() {
            return Err(Refusal::new(ErrorCode::Unavailable, "The Discord bridge is stopped: see /healthz."));
        }
        let target = self.hub.room(room).ok_or_else(|| Refusal::no_such("room"))?;
        let channel: u64 = channel_id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
            Refusal::new(
                ErrorCode::BadRequest,
                "A Discord channel id is a number (copy it from Discord with developer mode on).",
            )
        })?;
        if let Some(other) = self.lock_links().values().find(|l| l.link.channel_id == channel && l.link.room != room) {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("That channel is already linked to the room {}.", other.link.room),
            ));
        }
        let name = match self.rest.call(Method::GET, "channels", &format!("channels/{channel}"), None).await {
            Reply::Done(json) => json.get("name").and_then(|n| n.as_str()).unwrap_or("channel").to_owned(),
            Reply::NotFound { .. } => {
                return Err(Refusal::new(ErrorCode::BadRequest, "Discord knows no channel with that id."));
            }
            Reply::Forbidden { .. } => {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "The bot cannot see that channel: invite it to the server and give it access to the channel.",
                ));
            }
            Reply::Unauthorized => {
                self.fail(TOKEN_REFUSED.into());
                return Err(Refusal::new(ErrorCode::Unavailable, "Discord refused the bot token: see /healthz."));
            }
            other => {
                tracing::warn!(?other, "discord: cannot look the channel up");
                return Err(Refusal::new(ErrorCode::Unavailable, "Discord did not answer: try again in a moment."));
            }
        };
        let link = DiscordLink {
            room: target.slug.to_string(),
            channel_id: channel,
            channel_name: name.clone(),
            joins,
            created_at: now_ms(),
            // From now on: what was said before the link stays in Burner.
            cursor: Some({
                let (epoch, seq) = target.position();
                (epoch.to_string(), seq)
            }),
        };
        self.store.save_discord_link(&link).await?;
        if let Some(old) = self.lock_links().remove(&link.room) {
            old.stop.cancel();
        }
        self.reload().await;
        Ok(format!("{} is bridged to Discord #{name}.", target.name))
    }

    /// A moderator unlinks `room`; what still waited for its channel is dropped.
    pub async fn unlink(self: &Arc<Self>, room: &str) -> Result<String, Refusal> {
        if !self.store.delete_discord_link(room).await? {
            return Err(Refusal::no_such("link"));
        }
        if let Some(old) = self.lock_links().remove(room) {
            old.stop.cancel();
        }
        Ok("The room is no longer bridged.".to_owned())
    }

    /// A moderator mutes the Discord author of message `seq` in `room`: what they write in the
    /// channel no longer crosses (their earlier messages stay; delete them as any other).
    pub async fn mute(self: &Arc<Self>, room: &str, seq: u64) -> Result<String, Refusal> {
        let target = self.hub.room(room).ok_or_else(|| Refusal::no_such("room"))?;
        let (epoch, _) = target.position();
        let shown = target.mod_view().recent.into_iter().find(|m| m.seq == seq);
        // The bridge records where a message came from right after posting it, so a moderator
        // can ask before the record is there: a message the room shows as from Discord is
        // waited for, briefly.
        let from_discord = shown.as_ref().is_some_and(|m| m.source == Source::Discord);
        let mut tries = if from_discord { RECORD_TRIES } else { 1 };
        let mapped = loop {
            let mapped = self.store.bridged_by_seq(room, &epoch, seq).await?;
            tries -= 1;
            if mapped.is_some() || tries == 0 {
                break mapped;
            }
            tokio::time::sleep(RECORD_WAIT).await;
        };
        let mapped = mapped
            .filter(|m| m.from_discord && m.author_id != 0)
            .ok_or_else(|| Refusal::new(ErrorCode::BadRequest, "That message did not come from Discord."))?;
        let name = shown.map_or_else(|| format!("Discord user {}", mapped.author_id), |m| m.author.nickname);
        self.store.set_discord_mute(room, mapped.author_id, Some(&name), now_ms()).await?;
        self.reload().await;
        Ok(format!("What {name} writes in Discord no longer reaches {}.", target.name))
    }

    pub async fn unmute(self: &Arc<Self>, room: &str, author_id: &str) -> Result<String, Refusal> {
        let author = author_id.trim().parse::<u64>().map_err(|_| Refusal::no_such("Discord author"))?;
        if !self.store.set_discord_mute(room, author, None, now_ms()).await? {
            return Err(Refusal::no_such("muted Discord author"));
        }
        self.reload().await;
        Ok("Their messages cross again.".to_owned())
    }
}
