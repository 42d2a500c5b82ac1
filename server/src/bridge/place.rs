//! The bridge's place in one linked room: a member named "Discord" whose connection is a task
//! here instead of a socket. It reads the frames the room sends it, as a browser would, and
//! queues for Discord what the room's rules let it see; and it posts what the channel's people
//! write, each as its own Discord author, through the posting policy.

use super::{Bridge, outbound::Job, text};
use crate::{
    cluster::SharedRate,
    conn_log::now_ms,
    hub::{JoinRequest, Membership, Relayed},
    limits::IpKey,
    outbox::{ConnHandle, Ready},
    policy::{Admission, Denied, Sender},
    store::{BridgedMessage, DiscordLink},
};
use app::protocol::{ChatMessage, ErrorCode, ModAction, Resume, ServerMsg, Source};
use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv6Addr},
    sync::Arc,
    time::Duration,
};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use twilight_model::channel::Message;

/// Messages from the channel waiting for the place (the gateway waits up to 5 s for room).
pub const INBOX: usize = 256;
/// Frames the room may queue for the bridge before it counts as slow; a slow bridge rejoins
/// from its cursor and the room's history (its last 50 messages) fills the gap.
const OUTBOX_FRAMES: usize = 4096;
/// The most outbox jobs kept per room while Discord does not take them.
const QUEUE_CAP: u32 = 1000;
/// Wait before joining again after a refusal (room full, Redis away).
const REJOIN_AFTER: Duration = Duration::from_secs(5);
/// The bridge's place has no address: bans and caps of addresses never apply to it.
const NO_ADDRESS: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
/// Tries at posting a message from Discord while Redis does not answer.
const POST_TRIES: u32 = 4;
/// Discord authors' rate buckets kept per room (the oldest go first).
const SENDERS_KEPT: usize = 1000;

/// What the gateway hands a place: an event, with the gateway sequence number it came with
/// (the place reports it handled, see `Watermark`).
#[derive(Debug)]
pub struct Inbound {
    pub seq: u64,
    pub event: FromDiscord,
}

#[derive(Debug)]
pub enum FromDiscord {
    Created(Box<Message>),
    Edited(Box<Message>),
    Deleted(u64),
}

struct Place {
    bridge: Arc<Bridge>,
    link: DiscordLink,
    /// The last message queued for Discord (or seen at linking): where a rejoin resumes.
    cursor: Option<(String, u64)>,
    /// The room's epoch as of the last join.
    epoch: String,
    /// Each Discord author as a source of messages, with its own bucket and flood record.
    senders: HashMap<u64, Sender>,
    /// Messages this place deleted because Discord did: not sent back to Discord.
    deleted_here: HashSet<u64>,
    tab: String,
}

/// Holds the bridge's place in `link`'s room until `stop` (unlinked, the link broken, the lease
/// gone, shutdown) or the room is gone: joins (again after a close or a refusal), reads what the
/// room sends, and posts what comes from the channel.
pub async fn run(bridge: Arc<Bridge>, link: DiscordLink, mut inbox: mpsc::Receiver<Inbound>, stop: CancellationToken) {
    let tab = format!("discord-bridge-{:016x}", rand::random::<u64>());
    let mut place = Place {
        bridge,
        cursor: link.cursor.clone(),
        link,
        epoch: String::new(),
        senders: HashMap::new(),
        deleted_here: HashSet::new(),
        tab,
    };
    while !stop.is_cancelled() {
        let (handle, outbox) = ConnHandle::new(place.bridge.next_conn_id(), OUTBOX_FRAMES);
        let membership = match place.join(&handle).await {
            Ok(membership) => membership,
            Err(why) => {
                if place.bridge.hub.room(&place.link.room).is_none() {
                    place.bridge.link_failed(&place.link.room, "the room no longer exists".into());
                    return;
                }
                tracing::warn!(room = %place.link.room, why, "discord: cannot take the bridge's place");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(REJOIN_AFTER) => continue,
                }
            }
        };
        let mut queued = true;
        while queued {
            tokio::select! {
                () = stop.cancelled() => return,
                ready = outbox.ready() => {
                    // What the room sent before it closed the place still counts (a deletion, say).
                    while queued && let Some(frame) = outbox.pop() {
                        queued = place.read(frame.as_str()).await;
                    }
                    if let Ready::Close(reason) = ready {
                        // Kicked, too slow, or the room closed: take the place again (or stop).
                        tracing::info!(room = %place.link.room, code = reason.code, "discord: the bridge's place was closed");
                        break;
                    }
                },
                inbound = inbox.recv() => {
                    let Some(Inbound { seq, event }) = inbound else { return };
                    match event {
                        FromDiscord::Created(message) => place.relay(&membership, *message).await,
                        FromDiscord::Edited(message) => place.edited_in_discord(&membership, &message).await,
                        FromDiscord::Deleted(id) => place.deleted_in_discord(id).await,
                    }
                    place.bridge.watermark.handled(seq);
                },
            }
        }
        drop(membership);
        if !queued {
            // The store refused a job: rejoin from the cursor (the last job it took) later, so
            // what it refused is read again rather than skipped.
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(REJOIN_AFTER) => {}
            }
        }
    }
}

impl Place {
    async fn join(&self, handle: &ConnHandle) -> Result<Membership, String> {
        let resume = self.cursor.as_ref().map(|(epoch, seq)| Resume { epoch: epoch.clone(), seq: *seq });
        let request = JoinRequest {
            nickname: "Discord",
            session: &self.tab,
            resume: resume.as_ref(),
            ip: NO_ADDRESS,
            ip_hash: "discord".into(),
            bridge: true,
        };
        let hub = &self.bridge.hub;
        let joined = match hub.cluster() {
            Some(rooms) => {
                // The bridge's own joins: rare (a rejoin after a fault), never worth refusing.
                let rate = SharedRate { key: "discord".into(), burst: 100, interval: Duration::from_millis(10) };
                rooms.join(hub, &self.link.room, handle, request, &rate).await
            }
            None => hub.join(&self.link.room, handle, request),
        };
        joined.map_err(|refusal| refusal.to_string())
    }

    /// One frame the room sent the bridge's place; false if the store refused to queue what
    /// it meant for Discord.
    async fn read(&mut self, frame: &str) -> bool {
        let Ok(message) = serde_json::from_str::<ServerMsg>(frame) else { return true };
        match message {
            ServerMsg::Joined { epoch, history, .. } => {
                self.epoch = epoch;
                for message in history {
                    if !self.posted(message).await {
                        return false;
                    }
                }
                true
            }
            ServerMsg::MessagePosted { message } => self.posted(message).await,
            ServerMsg::MessageDeleted { seq } => {
                if self.deleted_here.remove(&seq) {
                    return true;
                }
                // Deleted before it crossed: it never will.
                match self.bridge.store.cancel_discord_post(&self.link.room, &self.epoch, seq).await {
                    Ok(true) => true,
                    Ok(false) => self.queue(Job::Delete { epoch: self.epoch.clone(), seq }, None).await,
                    Err(error) => {
                        tracing::error!(%error, "discord: cannot drop a deleted message from the outbox");
                        false
                    }
                }
            }
            ServerMsg::MemberJoined { member, .. } if self.link.joins => {
                self.queue(Job::Notice { text: format!("{} joined", member.nickname) }, None).await
            }
            ServerMsg::MemberLeft { member, .. } if self.link.joins => {
                self.queue(Job::Notice { text: format!("{} left", member.nickname) }, None).await
            }
            _ => true,
        }
    }

    /// A message the bridge may show Discord, unless it came from Discord or crossed already;
    /// false if the store refused it.
    async fn posted(&mut self, message: ChatMessage) -> bool {
        if message.source != Source::Burner {
            return true;
        }
        let new = match &self.cursor {
            Some((epoch, seq)) => *epoch != self.epoch || message.seq > *seq,
            None => true,
        };
        if !new {
            return true;
        }
        let cursor = (self.epoch.clone(), message.seq);
        let job = Job::Post {
            epoch: self.epoch.clone(),
            seq: message.seq,
            author: message.author.nickname,
            text: message.text,
            at: message.at,
        };
        let queued = self.queue(job, Some((&cursor.0, cursor.1))).await;
        if queued {
            self.cursor = Some(cursor);
        }
        queued
    }

    /// Puts a job in the outbox (with the cursor, for a message); false if the store refused.
    async fn queue(&self, job: Job, cursor: Option<(&str, u64)>) -> bool {
        let Ok(json) = serde_json::to_string(&job) else { return false };
        match self.bridge.store.queue_discord(&self.link.room, cursor, &json, QUEUE_CAP, now_ms()).await {
            Ok(dropped) => {
                if dropped > 0 {
                    tracing::warn!(room = %self.link.room, dropped, "discord: the outbox is full; the oldest are dropped");
                    self.bridge.set_health(|h| h.dropped += dropped);
                }
                self.bridge.queued.notify_one();
                true
            }
            Err(error) => {
                tracing::error!(%error, room = %self.link.room, "discord: cannot queue for Discord");
                false
            }
        }
    }

    /// A message written in the linked channel: posted in the room as its Discord author,
    /// through the posting policy; its Discord id is the receipt, so a replay posts nothing.
    async fn relay(&mut self, membership: &Membership, message: Message) {
        let discord_id = message.id.get();
        match self.bridge.store.bridged_by_discord(discord_id).await {
            Ok(None) => {}
            Ok(Some(_)) => return,
            Err(error) => {
                tracing::error!(%error, "discord: cannot check a message against the ones bridged");
                return;
            }
        }
        let max_chars = app::rules::MESSAGE_MAX_CHARS;
        let Some(text) = text::from_discord(&message, max_chars) else { return };
        let relayed = Relayed { name: text::author_name(&message), source: Source::Discord };
        let author = message.author.id.get();
        if self.bridge.is_muted(&self.link.room, author) {
            tracing::debug!(room = %self.link.room, author, "discord: a muted author's message stays in Discord");
            self.bridge.set_health(|h| h.refused += 1);
            return;
        }
        if self.senders.len() >= SENDERS_KEPT && !self.senders.contains_key(&author) {
            self.senders.clear();
        }
        let sender = self.senders.entry(author).or_insert_with(|| self.bridge.policy.sender(IpKey::Other(author)));
        let client_ref = format!("discord:{discord_id}");
        let policy = &self.bridge.policy;
        let posted = match policy.admit(sender, membership, &text, Some(&client_ref), Instant::now()) {
            Ok(Admission::Resent(accepted)) => Ok(accepted),
            Ok(Admission::New(admitted)) => {
                let fingerprint = admitted.fingerprint;
                let mut tries = 0;
                let posted = loop {
                    let text = admitted.text.clone();
                    let posted = match self.bridge.hub.cluster() {
                        Some(rooms) => {
                            let rate = SharedRate {
                                key: format!("discord:{author}"),
                                burst: self.bridge.config.message_burst_per_ip,
                                interval: self.bridge.config.message_interval_per_ip,
                            };
                            rooms.post(membership, text, Some(client_ref.clone()), Some(&relayed), &rate).await
                        }
                        None => membership.relay(text, Some(client_ref.clone()), &relayed),
                    };
                    // Redis did not answer: nothing was posted, so try again a little later.
                    tries += 1;
                    match posted {
                        Err(refusal) if refusal.code() == ErrorCode::Unavailable && tries < POST_TRIES => {
                            tokio::time::sleep(REJOIN_AFTER / 5 * tries).await;
                        }
                        posted => break posted,
                    }
                };
                if posted.is_ok() {
                    policy.posted(sender, fingerprint);
                }
                posted.map_err(Denied::Refused)
            }
            Err(denied) => Err(denied),
        };
        let accepted = match posted {
            Ok(accepted) => accepted,
            Err(denied) => {
                let why = match denied {
                    Denied::Refused(refusal) => refusal.to_string(),
                    Denied::Disconnect(reason) => reason.reason.to_string(),
                };
                tracing::info!(room = %self.link.room, author, why, "discord: a message from Discord was refused");
                self.bridge.set_health(|h| h.refused += 1);
                return;
            }
        };
        self.bridge.set_health(|h| h.received += 1);
        let mapped = BridgedMessage {
            room: self.link.room.clone(),
            epoch: self.epoch.clone(),
            seq: accepted.seq,
            discord_id,
            channel_id: self.link.channel_id,
            author_id: author,
            from_discord: true,
            at: accepted.at,
        };
        if let Err(error) = self.bridge.store.map_discord(&mapped).await {
            tracing::error!(%error, "discord: cannot record a bridged message");
        }
    }

    /// Its author edited a message in Discord: the Burner copy shows the new text (through
    /// the same rules and filters as a new message; refused, the copy stays as it was).
    async fn edited_in_discord(&mut self, membership: &Membership, message: &Message) {
        if self.bridge.is_muted(&self.link.room, message.author.id.get()) {
            return;
        }
        let mapped = match self.bridge.store.bridged_by_discord(message.id.get()).await {
            Ok(Some(mapped)) if mapped.from_discord && mapped.room == self.link.room && mapped.epoch == self.epoch => {
                mapped
            }
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "discord: cannot look up an edited message");
                return;
            }
        };
        let Some(text) = text::from_discord(message, app::rules::MESSAGE_MAX_CHARS) else { return };
        match self.bridge.policy.edit(membership, &text) {
            Ok(text) => {
                crate::moderation::edit_message(&self.bridge.hub, &self.link.room, mapped.seq, &text).await;
            }
            Err(refusal) => {
                tracing::info!(room = %self.link.room, %refusal, "discord: an edit from Discord was refused");
                self.bridge.set_health(|h| h.refused += 1);
            }
        }
    }

    /// A Discord moderator (or the author) deleted a message: its Burner side goes too.
    async fn deleted_in_discord(&mut self, discord_id: u64) {
        let mapped = match self.bridge.store.bridged_by_discord(discord_id).await {
            Ok(Some(mapped)) if mapped.room == self.link.room && mapped.epoch == self.epoch => mapped,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "discord: cannot look up a deleted message");
                return;
            }
        };
        self.deleted_here.insert(mapped.seq);
        let command = ModAction::DeleteMessage {
            room: self.link.room.clone(),
            seq: mapped.seq,
            reason: "deleted in Discord".into(),
        };
        if let Err(refusal) = self.bridge.moderation.command(&self.bridge.hub, command).await {
            self.deleted_here.remove(&mapped.seq);
            tracing::info!(room = %self.link.room, seq = mapped.seq, %refusal, "discord: cannot delete a message");
        }
    }
}
