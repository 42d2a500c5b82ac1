//! From Discord: the gateway, through twilight's shard (heartbeats, zombie detection, resume and
//! reconnect with backoff are twilight's). The session is kept in the store, up to the first
//! event a room's place has not handled yet (`Watermark`), so a restarted bridge resumes it and
//! Discord replays what was missed or still waiting; the recorded Discord ids make a replayed
//! message a no-op. A session Discord no longer resumes starts afresh: what was said meanwhile
//! is not fetched (no backfill yet).
//!
//! What is never bridged: the bot's own posts coming back, webhook posts, and other bots (two
//! bridges facing each other would echo for ever).

use super::{
    Bridge, State,
    place::{FromDiscord, Inbound},
    rest::Reply,
};
use crate::store::GatewaySession;
use hyper::Method;
use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};
use tokio_util::sync::CancellationToken;
use twilight_gateway::{CloseFrame, Event, EventTypeFlags, Intents, Session, Shard, ShardId, StreamExt as _};

/// Discord's default gateway; any other address is a proxy or a test stand-in.
const DISCORD_GATEWAY: &str = "wss://gateway.discord.gg";
/// How often the session is kept in the store (while it changes).
const KEEP_EVERY: Duration = Duration::from_secs(1);
/// How long the gateway waits for room in a place's inbox.
const HAND_WAIT: Duration = Duration::from_secs(5);

/// Checks the token (and learns the bot's id), then reads the gateway until `stop`; a fatal
/// close (4004, 4014…) stops the bridge with the reason.
pub async fn run(bridge: Arc<Bridge>, stop: CancellationToken) {
    // The token first, and the bot's own id (a resumed session gets no READY to read it from).
    loop {
        match bridge.rest.call(Method::GET, "users/@me", "users/@me", None).await {
            Reply::Done(me) => {
                let id = me.get("id").and_then(|id| id.as_str()).and_then(|id| id.parse().ok()).unwrap_or(0);
                bridge.bot_id.store(id, Ordering::Relaxed);
                break;
            }
            Reply::Unauthorized => {
                bridge.fail(super::TOKEN_REFUSED.into());
                return;
            }
            other => {
                tracing::warn!(?other, "discord: cannot reach Discord yet");
                bridge.set_health(|h| h.error = Some("Discord is unavailable: the bot cannot sign in yet".into()));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    }
    let token = bridge.config.discord_token.as_deref().map(super::rest::bare_token).unwrap_or_default().to_owned();
    let intents = Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let mut config = twilight_gateway::ConfigBuilder::new(token, intents);
    let url = bridge.config.discord_gateway_url.trim_end_matches('/');
    if url != DISCORD_GATEWAY {
        config = config.proxy_url(url.to_owned());
    }
    match bridge.store.gateway_session().await {
        Ok(Some(session)) => {
            config = config.session(Session::new(session.sequence, session.id)).resume_url(session.resume_url);
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "discord: cannot read the gateway session; identifying anew"),
    }
    let config = config.build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let wanted = EventTypeFlags::READY
        | EventTypeFlags::RESUMED
        | EventTypeFlags::MESSAGE_CREATE
        | EventTypeFlags::MESSAGE_UPDATE
        | EventTypeFlags::MESSAGE_DELETE
        | EventTypeFlags::MESSAGE_DELETE_BULK;
    let mut last_close: Option<u16> = None;
    let mut kept: Option<GatewaySession> = None;
    // The session is kept once a second at most (and at the end), not once per event.
    let mut keep = tokio::time::interval(KEEP_EVERY);
    keep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => {
                // Resumable: a restart (or the next lease holder) picks the session up.
                shard.close(CloseFrame::RESUME);
                keep_session(&bridge, session_of(&bridge, &shard), &mut kept).await;
                return;
            }
            _ = keep.tick() => {
                keep_session(&bridge, session_of(&bridge, &shard), &mut kept).await;
                continue;
            }
            event = shard.next_event(wanted) => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                tracing::warn!(%error, "discord: gateway trouble");
                bridge.set_health(|h| {
                    if h.state != State::Stopped {
                        h.state = State::Reconnecting;
                        h.error = Some(format!("gateway: {error}"));
                    }
                });
                continue;
            }
            None => {
                bridge.fail(fatal_reason(last_close));
                return;
            }
        };
        // This event's number in the session (every dispatch carries one).
        let seq = shard.session().map_or(0, Session::sequence);
        match event {
            Event::Ready(ready) => {
                bridge.bot_id.store(ready.user.id.get(), Ordering::Relaxed);
                connected(&bridge);
            }
            Event::Resumed => connected(&bridge),
            Event::GatewayClose(frame) => {
                last_close = frame.map(|f| f.code);
                bridge.set_health(|h| {
                    if h.state != State::Stopped {
                        h.state = State::Reconnecting;
                    }
                });
            }
            Event::MessageCreate(created) => {
                let message = created.message;
                let bot = bridge.bot_id.load(Ordering::Relaxed);
                let own = message.author.id.get() == bot;
                if !(own || message.author.bot || message.webhook_id.is_some()) {
                    let channel = message.channel_id.get();
                    hand(&bridge, channel, seq, FromDiscord::Created(Box::new(message))).await;
                }
            }
            // An edit (not an unfurl, which leaves `edited_timestamp` unset).
            Event::MessageUpdate(updated) if updated.0.edited_timestamp.is_some() => {
                let channel = updated.0.channel_id.get();
                hand(&bridge, channel, seq, FromDiscord::Edited(Box::new(updated.0))).await;
            }
            Event::MessageDelete(deleted) => {
                hand(&bridge, deleted.channel_id.get(), seq, FromDiscord::Deleted(deleted.id.get())).await;
            }
            Event::MessageDeleteBulk(deleted) => {
                for id in deleted.ids {
                    hand(&bridge, deleted.channel_id.get(), seq, FromDiscord::Deleted(id.get())).await;
                }
            }
            _ => {}
        }
    }
}

/// Gives the place of `channel`'s room its event, waiting a little for room in its inbox rather
/// than dropping it. The event counts as handed until the place says it is handled; one that no
/// inbox took stays so, and the kept session never passes it.
async fn hand(bridge: &Bridge, channel: u64, seq: u64, event: FromDiscord) {
    let Some(inbox) = bridge.inbox_for(channel) else { return };
    bridge.watermark.handed(seq);
    if !matches!(tokio::time::timeout(HAND_WAIT, inbox.send(Inbound { seq, event })).await, Ok(Ok(()))) {
        tracing::warn!(channel, "discord: a room's place did not take a Discord event; a restart replays it");
        bridge.set_health(|h| h.refused += 1);
    }
}

fn connected(bridge: &Bridge) {
    bridge.set_health(|h| {
        if h.state != State::Stopped {
            h.state = State::Connected;
            h.error = None;
        }
    });
}

/// The shard's session as the store keeps it: up to the first event not handled yet.
fn session_of(bridge: &Bridge, shard: &Shard) -> Option<GatewaySession> {
    match (shard.session(), shard.resume_url()) {
        (Some(session), Some(url)) => Some(GatewaySession {
            id: session.id().to_owned(),
            sequence: bridge.watermark.safe(session.sequence()),
            resume_url: url.to_owned(),
        }),
        _ => None,
    }
}

/// Saves the shard's session when it changed, so a restart resumes from here.
async fn keep_session(bridge: &Bridge, now: Option<GatewaySession>, kept: &mut Option<GatewaySession>) {
    if now == *kept {
        return;
    }
    match bridge.store.save_gateway_session(now.as_ref()).await {
        Ok(()) => *kept = now,
        Err(error) => tracing::warn!(%error, "discord: cannot keep the gateway session"),
    }
}

/// Why the shard gave up for good, in words for `/healthz` and the console.
fn fatal_reason(code: Option<u16>) -> String {
    match code {
        Some(4004) => "Discord refused the bot token (gateway 4004): set a valid BURNER_DISCORD_TOKEN".into(),
        Some(4014) => {
            "Discord refused the MESSAGE_CONTENT intent (gateway 4014): enable it for the bot in the developer portal"
                .into()
        }
        Some(4013) => "Discord refused the gateway intents (4013)".into(),
        Some(code) => format!("the Discord gateway closed for good ({code})"),
        None => "the Discord gateway closed for good".into(),
    }
}
