//! The posting policy: the one way into a room for a message, whatever its source (a browser's
//! socket today; a bridge next). Each source of messages is a [`Sender`] with its own bucket and
//! flood record, counted under a key it shares with its other connections (its address, or a
//! bridged author's id). In order, a message is:
//!
//! 1. refused if its client reference is malformed;
//! 2. acknowledged again, at no cost, if this tab already posted it (the receipt check, once);
//! 3. rate-limited per sender and per key, with graduated flood control (refused with a wait,
//!    muted for not waiting, disconnected for flooding on while muted);
//! 4. checked and normalised by the message rules (empty, too long, blank lines);
//! 5. filtered: too many links, profanity as the room chose, the same text again;
//! 6. posted: the room applies slow mode and records the author's shadow-mute, and the fan-out
//!    applies that and the one-way rule (see `hub::local`).
//!
//! Joins and reports are admitted here too, against the same sender's bucket.

use crate::{
    config::Config,
    error::Refusal,
    hub::{Accepted, Membership},
    limits::{Bucket, IpKey, PerIp, quota},
    moderation::{
        filters::{self, Repeats},
        flood::{Flood, FloodPolicy, Verdict},
    },
    outbox::CloseReason,
};
use app::{protocol::close, rules};
use governor::Quota;
use std::time::Duration;
use tokio::time::Instant;

/// Joins cost this many message tokens: a join is heavier (and noisier) than a message.
const JOIN_COST: u32 = 3;
/// The longest client reference a message may carry.
const MAX_CLIENT_REF_CHARS: usize = 64;
/// Reports per key: ten at once, then one a minute.
const REPORT_BURST: u32 = 10;
const REPORT_INTERVAL: Duration = Duration::from_secs(60);

pub struct Policy {
    /// Each sender's own bucket.
    per_sender: Quota,
    /// Messages, across every sender of one key (an address's connections).
    messages: PerIp,
    joins: PerIp,
    /// Reports: each stores a snapshot of a room, so new connections must not multiply them.
    reports: PerIp,
    flood: FloodPolicy,
    max_links: u32,
    repeats: Repeats,
}

impl Sender {
    /// The key this sender is counted under with the others that share it.
    pub fn key(&self) -> IpKey {
        self.key
    }
}

/// One source of messages: a socket, or one author behind a bridge.
pub struct Sender {
    key: IpKey,
    bucket: Bucket,
    /// Made at the first message over the rate (most senders never are; a socket keeps its
    /// sender for its whole life).
    flood: Option<Box<Flood>>,
}

/// A message got in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posted {
    pub accepted: Accepted,
    /// It had been posted before (a resend after a reconnect): acknowledged again only.
    pub resent: bool,
}

/// What the policy says of a message before the room takes it.
pub enum Admission {
    /// This tab posted it already (a resend after a reconnect): acknowledged again only.
    Resent(Accepted),
    New(Admitted),
}

/// A message that may go in, as the rules made it.
pub struct Admitted {
    pub text: String,
    pub fingerprint: filters::Fingerprint,
}

/// A message did not get in.
#[derive(Debug)]
pub enum Denied {
    Refused(Refusal),
    /// The sender flooded on while muted: its connection ends.
    Disconnect(CloseReason),
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl Policy {
    pub fn new(config: &Config) -> Self {
        Self {
            per_sender: quota(config.message_burst, config.message_interval),
            messages: PerIp::new(quota(config.message_burst_per_ip, config.message_interval_per_ip)),
            joins: PerIp::new(quota(config.join_burst_per_ip, config.join_interval_per_ip)),
            reports: PerIp::new(quota(REPORT_BURST, REPORT_INTERVAL)),
            flood: FloodPolicy {
                strikes_to_mute: config.strikes_to_mute,
                strike_window: config.strike_window,
                mute: config.mute_duration,
                tries_while_muted: config.tries_while_muted,
            },
            max_links: config.max_links,
            repeats: Repeats::new(config.repeats_allowed, config.repeat_window),
        }
    }

    /// A new source of messages, counted under `key` with the others that share it.
    pub fn sender(&self, key: impl Into<IpKey>) -> Sender {
        Sender { key: key.into(), bucket: Bucket::new(self.per_sender), flood: None }
    }

    /// Whether `sender` may join a room now.
    pub fn join(&self, sender: &Sender) -> Result<(), Refusal> {
        sender
            .bucket
            .take(JOIN_COST)
            .and_then(|()| self.joins.take(sender.key, 1))
            .map_err(|retry| Refusal::slow_down(retry.0))
    }

    /// Whether `sender` may file a report now.
    pub fn report(&self, sender: &Sender) -> Result<(), Refusal> {
        sender.bucket.take(1).and_then(|()| self.reports.take(sender.key, 1)).map_err(|retry| {
            Refusal::new(
                app::protocol::ErrorCode::RateLimited,
                "You have reported a lot at once: try again in a minute.",
            )
            .retry_after(retry.0)
        })
    }

    /// Takes a message from `sender` into the room of `membership`, or says why not (the
    /// steps are in this module's documentation).
    pub fn post(
        &self,
        sender: &mut Sender,
        membership: &Membership,
        text: &str,
        client_ref: Option<String>,
        now: Instant,
    ) -> Result<Posted, Denied> {
        match self.admit(sender, membership, text, client_ref.as_deref(), now)? {
            Admission::Resent(accepted) => Ok(Posted { accepted, resent: true }),
            Admission::New(admitted) => {
                let fingerprint = admitted.fingerprint;
                let accepted = membership.post(admitted.text, client_ref)?;
                self.posted(sender, fingerprint);
                Ok(Posted { accepted, resent: false })
            }
        }
    }

    /// Steps 1 to 5: whether the message may go, and as what text. In cluster mode the room
    /// (Redis) then posts it, and [`Policy::posted`] records it.
    pub fn admit(
        &self,
        sender: &mut Sender,
        membership: &Membership,
        text: &str,
        client_ref: Option<&str>,
        now: Instant,
    ) -> Result<Admission, Denied> {
        if client_ref.is_some_and(|r| r.chars().count() > MAX_CLIENT_REF_CHARS) {
            return Err(Refusal::client_ref_invalid().into());
        }
        if let Some(accepted) = client_ref.and_then(|r| membership.receipt(r)) {
            return Ok(Admission::Resent(accepted));
        }
        let rate = sender.bucket.take(1).and_then(|()| self.messages.take(sender.key, 1));
        match Flood::judge_kept(&mut sender.flood, &self.flood, now, rate) {
            Verdict::Allow => {}
            Verdict::RateLimited(retry) => return Err(Refusal::slow_down(retry.0).into()),
            Verdict::Muted(retry) => return Err(Refusal::muted(retry.0).into()),
            Verdict::Disconnect => {
                return Err(Denied::Disconnect(CloseReason::fixed(close::FLOOD, "kept flooding while muted")));
            }
        }
        let text = rules::message(text).map_err(Refusal::message)?;
        filters::links(&text, self.max_links)?;
        let text = filters::profanity(text, membership.room.settings().profanity)?;
        let fingerprint = self.repeats.check(sender.key, &text)?;
        Ok(Admission::New(Admitted { text, fingerprint }))
    }

    /// A message's new text (its author edited it beyond a bridge), as the message rules and
    /// filters make it: no rate or repeat check, the message is already there.
    pub fn edit(&self, membership: &Membership, text: &str) -> Result<String, Refusal> {
        let text = rules::message(text).map_err(Refusal::message)?;
        filters::links(&text, self.max_links)?;
        filters::profanity(text, membership.room.settings().profanity)
    }

    /// The room took the admitted message: it counts against repeats from now on.
    pub fn posted(&self, sender: &Sender, fingerprint: filters::Fingerprint) {
        self.repeats.record(sender.key, fingerprint);
    }

    /// Forgets keys whose buckets are full again and texts too old to repeat.
    pub fn forget_idle(&self) {
        self.messages.forget_idle();
        self.joins.forget_idle();
        self.reports.forget_idle();
        self.repeats.forget_idle();
    }
}

#[cfg(test)]
mod tests;
