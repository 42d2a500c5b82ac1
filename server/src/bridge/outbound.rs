//! Toward Discord: one worker drains the outbox (`store::discord`) oldest first, so each
//! channel gets its messages in the room's order, and a job leaves the outbox only once Discord
//! has it (with the pair of ids recorded in the same transaction).
//!
//! A message is an embed: the nickname as its author, the text (made inert by
//! `text::neutralise`) as its description, the room's time as its timestamp, and
//! `allowed_mentions` empty. It carries a nonce derived from the room, epoch and number, with
//! `enforce_nonce`: if Burner stops between Discord's answer and the outbox commit, the resend
//! returns the message Discord already has instead of posting it twice.

use super::{Bridge, State, rest::Reply, text};
use crate::store::{BridgedMessage, QueuedJob};
use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use twilight_model::{
    channel::message::{AllowedMentions, Embed, embed::EmbedAuthor},
    util::Timestamp,
};

/// Jobs read from the outbox at once.
const BATCH: u32 = 32;
/// With nothing queued, the outbox is looked at again after this long anyway (another node's
/// place may have queued, or a notification been missed).
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// Backoff after Discord or the store failed, doubling up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Something to do in a room's channel, as the outbox keeps it (JSON; the store's
/// `cancel_discord_post` relies on a post's first three fields being written in this order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    Post { epoch: String, seq: u64, author: String, text: String, at: i64 },
    Delete { epoch: String, seq: u64 },
    Notice { text: String },
}

/// What became of a job.
enum Outcome {
    /// Done (or pointless now): it leaves the outbox, with its mapping if one was made.
    Done(Option<BridgedMessage>),
    /// Not now: the same job goes first again after the wait (its room's others wait too).
    Later(Duration),
    /// The link cannot work (a 403, the channel gone): its room is skipped until it is linked
    /// again (which empties its outbox).
    LinkBroken(String),
    /// The bridge cannot work (a 401): everything stops.
    Stop(String),
}

/// Drains the outbox room by room, each room's jobs in order, until `stop` (shutdown, a 401,
/// or the lease gone elsewhere). One room waiting (its route limited, Discord failing for it)
/// never holds up another's.
pub async fn run(bridge: Arc<Bridge>, stop: CancellationToken) {
    let mut backoff = BACKOFF_FIRST;
    while !stop.is_cancelled() {
        let mut worked = false;
        let mut soonest: Option<Duration> = None;
        for (room, channel) in bridge.working_links() {
            let jobs = match bridge.store.discord_queue(&room, BATCH).await {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::error!(%error, "discord: cannot read the outbox");
                    soonest = Some(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    break;
                }
            };
            for job in jobs {
                let outcome = tokio::select! {
                    () = stop.cancelled() => return,
                    outcome = execute(&bridge, &job, channel) => outcome,
                };
                match outcome {
                    Outcome::Done(mapped) => {
                        if let Err(error) = bridge.store.finish_discord(job.id, mapped.as_ref()).await {
                            // Sent but still queued: the resend carries the same nonce.
                            tracing::error!(%error, "discord: cannot mark a job done");
                            soonest = Some(backoff);
                            break;
                        }
                        worked = true;
                        backoff = BACKOFF_FIRST;
                    }
                    Outcome::Later(wait) => {
                        soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                        break;
                    }
                    Outcome::LinkBroken(why) => {
                        bridge.link_failed(&room, why);
                        break;
                    }
                    Outcome::Stop(why) => {
                        bridge.fail(why);
                        return;
                    }
                }
            }
        }
        if !worked {
            tokio::select! {
                () = stop.cancelled() => return,
                () = bridge.queued.notified() => {}
                () = tokio::time::sleep(soonest.unwrap_or(IDLE_LOOK)) => {}
            }
        }
    }
}

async fn execute(bridge: &Bridge, queued: &QueuedJob, channel: u64) -> Outcome {
    let Ok(job) = serde_json::from_str::<Job>(&queued.job) else {
        tracing::error!(job = queued.job, "discord: an outbox job no longer reads; dropped");
        return Outcome::Done(None);
    };
    let route = format!("channels/{channel}/messages");
    match job {
        Job::Post { epoch, seq, author, text, at } => {
            let body = message_body(&queued.room, &epoch, seq, &author, &text, at);
            let reply = bridge.rest.call(Method::POST, &route, &route, Some(&body)).await;
            outcome(bridge, reply, |json| {
                let discord_id = json.get("id").and_then(Value::as_str).and_then(|id| id.parse().ok())?;
                Some(BridgedMessage {
                    room: queued.room.clone(),
                    epoch,
                    seq,
                    discord_id,
                    channel_id: channel,
                    author_id: 0,
                    from_discord: false,
                    at,
                })
            })
        }
        Job::Delete { epoch, seq } => {
            let mapped = match bridge.store.bridged_by_seq(&queued.room, &epoch, seq).await {
                Ok(Some(mapped)) => mapped,
                // Never crossed (posted before the link, or shadow-muted): nothing to delete.
                Ok(None) => return Outcome::Done(None),
                Err(error) => {
                    tracing::error!(%error, "discord: cannot look up a deleted message");
                    return Outcome::Later(BACKOFF_FIRST);
                }
            };
            let path = format!("channels/{}/messages/{}", mapped.channel_id, mapped.discord_id);
            let route = format!("channels/{}/messages/*", mapped.channel_id);
            match bridge.rest.call(Method::DELETE, &route, &path, None).await {
                // Gone already (deleted in Discord meanwhile, or its channel unlinked since), or
                // someone else's message without Manage Messages: the Burner side is gone, the
                // link goes on.
                Reply::NotFound { .. } | Reply::Forbidden { .. } => {
                    tracing::info!(room = queued.room, seq, "discord: the Discord copy could not be deleted");
                    bridge.set_health(|h| h.refused += 1);
                    Outcome::Done(None)
                }
                reply => outcome(bridge, reply, |_| None),
            }
        }
        Job::Notice { text } => {
            let body = json!({
                "content": format!("*{}*", text::neutralise(&text)),
                "allowed_mentions": AllowedMentions::default(),
            });
            outcome(bridge, bridge.rest.call(Method::POST, &route, &route, Some(&body)).await, |_| None)
        }
    }
}

/// What a reply means for the job; `mapped` reads the mapping out of a success.
fn outcome(bridge: &Bridge, reply: Reply, mapped: impl FnOnce(&Value) -> Option<BridgedMessage>) -> Outcome {
    match reply {
        Reply::Done(json) => {
            bridge.set_health(|h| {
                h.sent += 1;
                if h.state != State::Stopped
                    && h.error.as_deref().is_some_and(|e| e.starts_with("Discord is unavailable"))
                {
                    h.error = None;
                }
            });
            Outcome::Done(mapped(&json))
        }
        // The limiter already holds the route (or everything) until then.
        Reply::RateLimited { retry_after, .. } => Outcome::Later(retry_after.min(BACKOFF_MAX)),
        Reply::Unauthorized => Outcome::Stop(super::TOKEN_REFUSED.into()),
        Reply::Forbidden { code, message } => {
            Outcome::LinkBroken(format!("the bot lacks a permission in this channel (Discord: {message}, {code})"))
        }
        Reply::NotFound { code: 10003 } => Outcome::LinkBroken("the channel no longer exists in Discord".into()),
        Reply::NotFound { code } => {
            tracing::warn!(code, "discord: not found; the job is dropped");
            bridge.set_health(|h| h.refused += 1);
            Outcome::Done(None)
        }
        Reply::Refused { status, message } => {
            // It would be refused again as it is: dropped (and counted), never retried.
            tracing::warn!(status, message, "discord: a request was refused; the job is dropped");
            bridge.set_health(|h| h.refused += 1);
            Outcome::Done(None)
        }
        Reply::Unavailable(why) => {
            bridge.set_health(|h| h.error = Some(format!("Discord is unavailable: {why}")));
            Outcome::Later(Duration::from_secs(2))
        }
    }
}

/// A Burner message as Discord gets it: an embed that pings nobody.
pub fn message_body(room: &str, epoch: &str, seq: u64, author: &str, text: &str, at: i64) -> Value {
    let embed = Embed {
        author: Some(EmbedAuthor { icon_url: None, name: author.to_owned(), proxy_icon_url: None, url: None }),
        color: Some(color(author)),
        description: Some(text::neutralise(text)),
        fields: Vec::new(),
        flags: None,
        footer: None,
        image: None,
        kind: "rich".to_owned(),
        provider: None,
        thumbnail: None,
        timestamp: Timestamp::from_micros(at.saturating_mul(1000)).ok(),
        title: None,
        url: None,
        video: None,
    };
    json!({
        "embeds": [embed],
        "allowed_mentions": AllowedMentions::default(),
        "nonce": nonce(room, epoch, seq),
        "enforce_nonce": true,
    })
}

/// A message's nonce (Discord takes up to 25 characters): the same for every resend of it.
fn nonce(room: &str, epoch: &str, seq: u64) -> String {
    let digest = Sha256::digest(format!("{room}\n{epoch}\n{seq}").as_bytes());
    hex::encode(&digest[..12])
}

/// The embed's colour, one per nickname (as its avatar is).
fn color(nickname: &str) -> u32 {
    let digest = Sha256::digest(nickname.as_bytes());
    u32::from_be_bytes([0, digest[0], digest[1], digest[2]]) | 0x40_40_40
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_becomes_an_embed_that_pings_nobody() {
        let body = message_body("lobby", "e1", 7, "alice", "@everyone look [here](https://x.y)", 1_764_000_000_000);
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        assert_eq!(body["enforce_nonce"], json!(true));
        let nonce = body["nonce"].as_str().expect("a nonce");
        assert_eq!(nonce.len(), 24, "Discord takes up to 25 characters");
        assert_eq!(
            body["nonce"],
            message_body("lobby", "e1", 7, "bob", "other", 0)["nonce"],
            "the same message, the same nonce"
        );
        assert_ne!(body["nonce"], message_body("lobby", "e1", 8, "alice", "x", 0)["nonce"]);
        let embed = &body["embeds"][0];
        assert_eq!(embed["author"]["name"], "alice");
        assert_eq!(embed["type"], "rich");
        let description = embed["description"].as_str().expect("a description");
        assert!(!description.contains("@everyone") && description.contains("\\[here\\]"), "{description}");
        assert!(embed["timestamp"].as_str().is_some_and(|t| t.starts_with("2025-11-24")), "{}", embed["timestamp"]);
    }

    #[test]
    fn jobs_keep_their_shape_in_the_outbox() {
        let job = Job::Delete { epoch: "e".into(), seq: 3 };
        let json = serde_json::to_string(&job).expect("serialises");
        assert_eq!(json, r#"{"kind":"delete","epoch":"e","seq":3}"#);
        assert_eq!(serde_json::from_str::<Job>(&json).expect("parses"), job);
    }
}
