//! From Discord: the gateway, through twilight's shard (heartbeats, zombie detection, resume and
//! reconnect with backoff are twilight's). The session is kept in the store after every event
//! handled here, so a restarted bridge resumes it and Discord replays what it missed; the
//! recorded Discord ids make a replayed message a no-op.
//!
//! What is never bridged: the bot's own posts coming back, webhook posts, and other bots (two
//! bridges facing each other would echo for ever).

use super::{Bridge, place::Inbound, rest::Reply};
use crate::store::GatewaySession;
use hyper::Method;
use std::sync::{Arc, atomic::Ordering};
use tokio_util::sync::CancellationToken;
use twilight_gateway::{CloseFrame, Event, EventTypeFlags, Intents, Session, Shard, ShardId, StreamExt as _};

/// Discord's default gateway; any other address is a proxy or a test stand-in.
const DISCORD_GATEWAY: &str = "wss://gateway.discord.gg";

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
                bridge.fail("Discord refused the bot token (401): set a valid BURNER_DISCORD_TOKEN".into());
                return;
            }
            other => {
                tracing::warn!(?other, "discord: cannot reach Discord yet");
                bridge.set_health(|h| h.error = Some("Discord is unavailable: the bot cannot sign in yet".into()));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
        }
    }
    let token = bridge.config.discord_token.clone().unwrap_or_default();
    let token = token.trim().strip_prefix("Bot ").unwrap_or(token.trim()).to_owned();
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
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => {
                // Resumable: a restart (or the next lease holder) picks the session up.
                shard.close(CloseFrame::RESUME);
                keep_session(&bridge, session_of(&shard), &mut kept).await;
                return;
            }
            event = shard.next_event(wanted) => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                tracing::warn!(%error, "discord: gateway trouble");
                bridge.set_health(|h| {
                    if h.state != "stopped" {
                        h.state = "reconnecting";
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
        match event {
            Event::Ready(ready) => {
                bridge.bot_id.store(ready.user.id.get(), Ordering::Relaxed);
                connected(&bridge);
            }
            Event::Resumed => connected(&bridge),
            Event::GatewayClose(frame) => {
                last_close = frame.map(|f| f.code);
                bridge.set_health(|h| {
                    if h.state != "stopped" {
                        h.state = "reconnecting";
                    }
                });
            }
            Event::MessageCreate(created) => {
                let message = created.message;
                let bot = bridge.bot_id.load(Ordering::Relaxed);
                let own = message.author.id.get() == bot;
                if !(own || message.author.bot || message.webhook_id.is_some())
                    && let Some(inbox) = bridge.inbox_for(message.channel_id.get())
                {
                    // A place that cannot keep up loses the message here rather than stall
                    // every other room's; Discord's own limits keep this far away.
                    if inbox.try_send(Inbound::Created(Box::new(message))).is_err() {
                        bridge.set_health(|h| h.refused += 1);
                    }
                }
            }
            // An edit (not an unfurl, which leaves `edited_timestamp` unset).
            Event::MessageUpdate(updated) if updated.0.edited_timestamp.is_some() => {
                if let Some(inbox) = bridge.inbox_for(updated.0.channel_id.get()) {
                    let _ = inbox.try_send(Inbound::Edited(Box::new(updated.0)));
                }
            }
            Event::MessageDelete(deleted) => {
                if let Some(inbox) = bridge.inbox_for(deleted.channel_id.get()) {
                    let _ = inbox.try_send(Inbound::Deleted(deleted.id.get()));
                }
            }
            Event::MessageDeleteBulk(deleted) => {
                if let Some(inbox) = bridge.inbox_for(deleted.channel_id.get()) {
                    for id in deleted.ids {
                        let _ = inbox.try_send(Inbound::Deleted(id.get()));
                    }
                }
            }
            _ => {}
        }
        keep_session(&bridge, session_of(&shard), &mut kept).await;
    }
}

fn connected(bridge: &Bridge) {
    bridge.set_health(|h| {
        if h.state != "stopped" {
            h.state = "connected";
            h.error = None;
        }
    });
}

/// The shard's session as the store keeps it.
fn session_of(shard: &Shard) -> Option<GatewaySession> {
    match (shard.session(), shard.resume_url()) {
        (Some(session), Some(url)) => Some(GatewaySession {
            id: session.id().to_owned(),
            sequence: session.sequence(),
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
