//! Rooms shared by every node: Redis decides, every node applies.
//!
//! Each change to a room is one Lua script, run atomically by Redis: a join checks the limit and
//! the nickname's look-alikes against the room's member hash and seats the member; a post checks
//! that the author still holds its place and slow mode, takes the next `seq`, appends to the
//! room's history (a list capped at the last 50) and publishes; a leave gives the place back.
//! Every script takes the room's next `rev` and publishes its event from inside the script, so
//! the order events are published in is the order Redis decided them in, and every node applies
//! them in that order to its replica of the room (`hub::room::replica`): roster, history,
//! receipts. Each node delivers to its own members what it applies, so the fan-out, the one-way
//! rule and shadow mutes are the one-process code. Joins, leaves and the like go to every node
//! (`burner:rooms`); messages and typing only to the nodes with members in the room, on the
//! room's own channel (see `interest`). One subscription carries both, so a node that listens
//! to a room gets all of its events in Redis's order.
//!
//! A join is answered on the joiner's node when its own `joined` event comes back through the
//! subscription: that is the place in the room's order where the joiner starts, so it gets the
//! room as of that event (members, history, resume) and everything after it, nothing twice.
//!
//! Nodes keep a heartbeat key alive; a node whose key lapsed is dead, and any other node gives
//! its members' places back (the leave script is idempotent), so they leave within seconds.
//! Redis failing never hangs a request: every script has the cluster's call deadline, and a
//! join or post it could not decide is refused with the retryable `unavailable`.

use super::{Cluster, ClusterError, interest::Interest};
use crate::{
    error::Refusal,
    hub::{Hub, JoinRequest, Membership, Relayed, ReplicaMember, ReplicaPost, Snapshot},
    outbox::ConnHandle,
    store::RoomRecord,
};
use app::{
    protocol::{ChatMessage, Member, Source},
    rules,
};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::sync::oneshot;

/// Every room's joins, leaves, creation, close and moderators' decisions, for every node.
pub(super) const ROOMS_CHANNEL: &str = "burner:rooms";
/// A room's own channel (`burner:room:<slug>`): its messages and typing, for the nodes with
/// members in it.
const ROOM_CHANNEL_PREFIX: &str = "burner:room:";
/// Rooms that exist (slug → the stored record, JSON), and their names' look-alike keys.
const ROOMS_KEY: &str = "burner:rooms";
const ROOM_NAMES_KEY: &str = "burner:room_names";
/// Names the Redis dataset: set once by the first node that finds it missing. A node that finds
/// another value than the one it last saw knows Redis lost its data (restarted empty).
const INSTANCE_KEY: &str = "burner:instance";
/// Member ids, unique across the cluster.
const MEMBER_IDS_KEY: &str = "burner:member_ids";
/// How long a node's heartbeat key lives: a node silent this long is dead.
const NODE_TTL: Duration = Duration::from_secs(10);
/// How often a node renews its heartbeat ...
pub(super) const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// ... and looks for dead nodes' members.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How long a joiner waits for its own `joined` event to come back through the subscription.
const SEATING_TIMEOUT: Duration = Duration::from_secs(2);

fn room_key(slug: &str, part: &str) -> String {
    format!("burner:room:{slug}:{part}")
}

/// Adds a room's keys, `parts` in that order, to a script call.
fn room_keys<'s, 'i>(
    invocation: &'i mut redis::ScriptInvocation<'s>,
    slug: &str,
    parts: &[&str],
) -> &'i mut redis::ScriptInvocation<'s> {
    for part in parts {
        invocation.key(room_key(slug, part));
    }
    invocation
}

fn room_channel(slug: &str) -> String {
    format!("{ROOM_CHANNEL_PREFIX}{slug}")
}

/// Whether a subscription message is a room event (rather than a control message).
pub(super) fn is_room_channel(channel: &str) -> bool {
    channel == ROOMS_CHANNEL || channel.starts_with(ROOM_CHANNEL_PREFIX)
}

fn node_key(node: &str) -> String {
    format!("burner:node:{node}")
}

/// What one script published: the room's place in its order, and what happened.
#[derive(Debug, Deserialize)]
struct Envelope {
    room: String,
    epoch: String,
    #[serde(default)]
    rev: u64,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    at: i64,
    /// The member the event is about (the author of a post).
    #[serde(default)]
    id: u64,
    /// A join by a tab that already held its place (a reconnect on another connection).
    #[serde(default)]
    ghost: u8,
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Body {
    Joined {
        token: u64,
        member: WireMember,
    },
    Left {},
    Posted(WirePost),
    Typing {},
    Created {
        record: RoomRecord,
    },
    Closed {
        reason: String,
    },
    /// A moderator's decision, taken on `node` already; the others apply it to their replica.
    Moderated {
        node: String,
        decision: Decision,
    },
}

/// What a moderator did to a room, as the other nodes redo it on their replicas.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    Kick { member: u64, reason: String },
    ShadowMute { member: u64, muted: bool },
    Delete { seq: u64 },
    Edit { seq: u64, text: String },
    Lock { locked: bool },
    SlowMode { seconds: u32 },
}

/// A member as the room's member hash keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct WireMember {
    nickname: String,
    session: String,
    ip: IpAddr,
    ip_hash: String,
    joined_at: i64,
    shadow_muted: bool,
    node: String,
    conn: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePost {
    /// Names the post on its author's node (see `Rooms::posts`); 0 elsewhere.
    #[serde(default)]
    token: u64,
    nickname: String,
    text: String,
    mentions: Vec<String>,
    session: String,
    author_hash: String,
    shadow_muted: bool,
    client_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Source::is_burner")]
    source: Source,
    /// Set in the shared history when the message is edited (`EDIT`); absent until then, so
    /// the script adds it once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    edited: bool,
}

impl WireMember {
    fn replica(self, id: u64) -> ReplicaMember {
        ReplicaMember {
            id,
            nickname: self.nickname,
            session: self.session.into(),
            ip: self.ip,
            ip_hash: self.ip_hash.into(),
            joined_at: self.joined_at,
            shadow_muted: self.shadow_muted,
            node: self.node.into(),
            conn_id: self.conn,
        }
    }
}

impl WirePost {
    /// The post as Redis numbered it: `seq`, time and author id come with the envelope.
    fn replica(self, seq: u64, at: i64, author_id: u64) -> ReplicaPost {
        let post = self;
        ReplicaPost {
            message: ChatMessage {
                seq,
                at,
                author: Member { id: author_id, nickname: post.nickname },
                text: post.text,
                mentions: post.mentions,
                source: post.source,
                edited: post.edited,
            },
            session: post.session.into(),
            author_hash: post.author_hash.into(),
            shadow_muted: post.shadow_muted,
            client_ref: post.client_ref,
        }
    }
}

fn json(value: &impl Serialize) -> String {
    // Plain data: serialising it cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A per-address limit that holds across the cluster (an address cannot multiply its rate by
/// spreading sockets over nodes): checked by the join or post script itself, in the same round
/// trip, as a generic cell rate (one more every `interval`, `burst` at once).
#[derive(Clone, Debug)]
pub struct SharedRate {
    /// The address's keyed hash (its /64 for IPv6): never the address itself.
    pub key: String,
    pub burst: u32,
    pub interval: Duration,
}

impl SharedRate {
    /// The limit of the address (its /64 for IPv6) `address` stands for, named by its keyed
    /// hash (`fallback` for a key with no address).
    pub fn of(
        address: crate::limits::IpKey,
        fallback: &str,
        hasher: &crate::peer::IpHasher,
        burst: u32,
        interval: Duration,
    ) -> Self {
        let key = address.network().map_or_else(|| fallback.to_owned(), |network| hasher.hash(network));
        Self { key, burst, interval }
    }

    fn interval_ms(&self) -> u64 {
        u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

/// Who must still hold a place for the leave script to give it back.
#[derive(Clone, Copy)]
enum Holder<'a> {
    /// This connection (`node/conn`): a member leaving by itself.
    Exactly(&'a str),
    /// Any connection of this node: a dead node's members.
    OnNode(&'a str),
    /// Whoever: a moderator's kick.
    Anyone,
}

/// A join whose `joined` event has not come back yet.
struct Pending {
    conn: ConnHandle,
    resume: Option<app::protocol::Resume>,
    seated: oneshot::Sender<u64>,
}

pub struct Rooms {
    cluster: Arc<Cluster>,
    /// This process among the nodes: its node id and a per-start suffix, so a node restarted
    /// under the same id is a new owner (its previous start's places are swept, and connection
    /// numbers starting again from 1 never match them).
    me: Arc<str>,
    scripts: Scripts,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Posts from this node whose event has not come back yet: the receipt waits for it, so an
    /// author never gets a receipt before the messages numbered before it.
    posts: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    /// The Redis dataset this node last caught up with (see `INSTANCE_KEY`).
    instance: Mutex<Option<String>>,
    /// The rooms whose messages this node listens to.
    pub(super) interest: Interest,
    /// The connections this node has counted in Redis, per address key (see `connections`).
    counted: Mutex<HashMap<String, u32>>,
    connections: Connections,
}

struct Scripts {
    join: Script,
    post: Script,
    leave: Script,
    create: Script,
    remove: Script,
    snapshot: Script,
    delete: Script,
    edit: Script,
}

impl Rooms {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let me = format!("{}.{}", cluster.node, hex::encode(rand::random::<[u8; 3]>())).into();
        Self {
            cluster,
            me,
            scripts: Scripts {
                join: Script::new(JOIN),
                post: Script::new(POST),
                leave: Script::new(LEAVE),
                create: Script::new(CREATE),
                remove: Script::new(REMOVE),
                snapshot: Script::new(SNAPSHOT),
                delete: Script::new(DELETE),
                edit: Script::new(EDIT),
            },
            pending: Mutex::default(),
            posts: Mutex::default(),
            instance: Mutex::default(),
            interest: Interest::default(),
            counted: Mutex::default(),
            connections: Connections::default(),
        }
    }

    /// This process's name as the owner of places (see `me`).
    pub fn node(&self) -> &str {
        &self.me
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place in a room, as Redis decides: limit and look-alike nicknames across every
    /// node. Answered once the joiner is seated here (its `joined` event came back).
    pub async fn join(
        self: &Arc<Self>,
        hub: &Hub,
        slug: &str,
        conn: &ConnHandle,
        request: JoinRequest<'_>,
        rate: &SharedRate,
    ) -> Result<Membership, Refusal> {
        let room = hub.room(slug).ok_or_else(Refusal::room_not_found)?;
        let name =
            if request.bridge { rules::bridge_nickname(request.nickname) } else { rules::nickname(request.nickname) }
                .map_err(Refusal::nickname)?;
        if !crate::hub::valid_session(request.session) {
            return Err(Refusal::session_invalid());
        }
        // This node hears the room's messages before its joiner is seated.
        if !self.interest.ensure(slug).await {
            return Err(Refusal::unavailable());
        }
        let (locked, shadow_muted) = room.join_context(&request.ip_hash);
        let member = WireMember {
            nickname: name.display().to_owned(),
            session: request.session.to_owned(),
            ip: request.ip,
            ip_hash: request.ip_hash.to_string(),
            joined_at: crate::conn_log::now_ms(),
            shadow_muted,
            node: self.node().to_owned(),
            conn: conn.id,
        };
        let token: u64 = rand::random();
        let (seated, mut is_seated) = oneshot::channel();
        self.pending().insert(token, Pending { conn: conn.clone(), resume: request.resume.cloned(), seated });
        let record = json(&member);
        let body = json(&Body::Joined { token, member });
        let owner = format!("{}/{}", self.node(), conn.id);
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.scripts.join.prepare_invoke();
        room_keys(&mut invocation, slug, &["state", "members", "owners", "nicks", "sessions"])
            .key(MEMBER_IDS_KEY)
            .key(format!("burner:rate:join:{}", rate.key))
            .key(ROOMS_KEY)
            .arg(super::new_epoch())
            .arg(room.limit)
            .arg(name.key())
            .arg(name.shape())
            .arg(request.session)
            .arg(&owner)
            .arg(&record)
            .arg(&body)
            .arg(u8::from(locked))
            .arg(ROOMS_CHANNEL)
            .arg(slug)
            .arg(rate.interval_ms())
            .arg(rate.burst);
        let answer: Result<Vec<String>, ClusterError> = self.cluster.call(invocation.invoke_async(&mut redis)).await;
        let refusal = match answer.as_deref().map(|a| (a.first().map(String::as_str), a.get(1))) {
            Ok((Some("ok"), Some(_))) => None,
            Ok((Some("full"), _)) => Some(Refusal::room_full(room.limit)),
            Ok((Some("taken"), _)) => Some(Refusal::nickname_taken()),
            Ok((Some("locked"), _)) => Some(Refusal::room_locked()),
            Ok((Some("rate"), Some(wait))) => {
                Some(Refusal::slow_down(Duration::from_millis(wait.parse().unwrap_or(1_000))))
            }
            // Redis does not know the room (it restarted empty and no node has told it again
            // yet, or the room is being removed): try again in a moment.
            Ok((Some("missing"), _)) => Some(Refusal::unavailable()),
            Ok(other) => {
                tracing::error!(?other, "cluster: unexpected answer from the join script");
                Some(Refusal::unavailable())
            }
            // Perhaps decided, perhaps not: settled below by who takes the pending join.
            Err(_) => Some(Refusal::unavailable()),
        };
        let wait = match refusal {
            Some(refusal) => {
                // Withdrawn before its event came back: nobody is seated, and an event that comes
                // after all finds no joiner and gives the place back (see `apply`).
                if self.pending().remove(&token).is_some() {
                    return Err(refusal);
                }
                // Too late to withdraw: the event is being applied; its outcome is the answer.
                SEATING_TIMEOUT
            }
            None => SEATING_TIMEOUT,
        };
        let seated = match tokio::time::timeout(wait, &mut is_seated).await {
            Ok(Ok(id)) => Some(id),
            Ok(Err(_)) => None,
            Err(_) if self.pending().remove(&token).is_some() => None,
            // Taken while timing out: it is applied now.
            Err(_) => is_seated.await.ok(),
        };
        match seated {
            Some(id) => Ok(Membership::new(room, id, conn.id, request.session.into())),
            None => Err(Refusal::unavailable()),
        }
    }

    /// Posts a message the posting policy admitted, numbered by Redis.
    pub async fn post(
        &self,
        membership: &Membership,
        text: String,
        client_ref: Option<String>,
        relayed: Option<&Relayed>,
        rate: &SharedRate,
    ) -> Result<crate::hub::Accepted, Refusal> {
        let room = &membership.room;
        let context = room.post_context(membership.member_id, &text).ok_or_else(Refusal::not_joined)?;
        let (nickname, source) = match relayed {
            Some(relayed) => (relayed.name.clone(), relayed.source),
            None => (context.author.nickname, Source::Burner),
        };
        let token: u64 = rand::random();
        let (applied, is_applied) = oneshot::channel();
        self.posts.lock().unwrap_or_else(PoisonError::into_inner).insert(token, applied);
        let body = json(&Body::Posted(WirePost {
            token,
            nickname,
            text,
            mentions: context.mentions,
            session: context.session.to_string(),
            author_hash: context.author_hash.to_string(),
            shadow_muted: context.shadow_muted,
            client_ref,
            source,
            edited: false,
        }));
        let slug = &*room.slug;
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.scripts.post.prepare_invoke();
        room_keys(&mut invocation, slug, &["state", "owners", "history", &format!("last:{}", context.session)])
            .key(format!("burner:rate:post:{}", rate.key))
            .arg(membership.member_id)
            .arg(format!("{}/{}", self.node(), membership.conn_id()))
            .arg(&*context.session)
            // Slow mode is per tab: not for a bridge's tab, which speaks for many people.
            .arg(if relayed.is_some() { 0 } else { u64::from(context.slow_mode_secs) * 1000 })
            .arg(&body)
            .arg(rules::HISTORY_LEN)
            .arg(room_channel(slug))
            .arg(slug)
            .arg(rate.interval_ms())
            .arg(rate.burst);
        let answer = self.cluster.call(invocation.invoke_async::<Vec<String>>(&mut redis)).await;
        let answer = match answer {
            Ok(answer) if answer.first().map(String::as_str) == Some("ok") => answer,
            _ => {
                self.posts.lock().unwrap_or_else(PoisonError::into_inner).remove(&token);
                answer.map_err(|_| Refusal::unavailable())?
            }
        };
        let number = |at: usize| answer.get(at).and_then(|n| n.parse::<u64>().ok());
        match (answer.first().map(String::as_str), number(1)) {
            (Some("ok"), Some(seq)) => {
                let at = number(2).and_then(|at| i64::try_from(at).ok()).unwrap_or_else(crate::conn_log::now_ms);
                // The message (and every one numbered before it) reaches this node's members,
                // the author included, before the receipt does.
                if tokio::time::timeout(SEATING_TIMEOUT, is_applied).await.is_err() {
                    self.posts.lock().unwrap_or_else(PoisonError::into_inner).remove(&token);
                }
                Ok(crate::hub::Accepted { seq, at })
            }
            (Some("gone"), _) => Err(Refusal::not_joined()),
            (Some("slow"), Some(wait_ms)) => {
                Err(Refusal::slow_mode(Duration::from_millis(wait_ms), u64::from(context.slow_mode_secs)))
            }
            (Some("rate"), Some(wait_ms)) => Err(Refusal::slow_down(Duration::from_millis(wait_ms))),
            other => {
                tracing::error!(?other, "cluster: unexpected answer from the post script");
                Err(Refusal::unavailable())
            }
        }
    }

    /// Gives a place back (in the background: a socket's end never waits for Redis). Only the
    /// connection that holds the place can give it back.
    pub fn leave(self: &Arc<Self>, slug: Arc<str>, member_id: u64, conn_id: u64) {
        let rooms = self.clone();
        let owner = format!("{}/{conn_id}", self.node());
        tokio::spawn(async move { rooms.give_back(&slug, member_id, Holder::Exactly(&owner)).await });
    }

    /// A moderator removed this member: its place goes back in Redis too, whichever node holds
    /// it (the holder's node closes its connection when it hears the decision).
    pub async fn kick(&self, slug: &str, member_id: u64) {
        self.give_back(slug, member_id, Holder::Anyone).await;
    }

    /// Runs the leave script, if the place is still held as `holder` says.
    async fn give_back(&self, slug: &str, member_id: u64, holder: Holder<'_>) -> bool {
        let (owner, node) = match holder {
            Holder::Exactly(owner) => (owner, ""),
            Holder::OnNode(node) => ("", node),
            Holder::Anyone => ("", ""),
        };
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.scripts.leave.prepare_invoke();
        room_keys(&mut invocation, slug, &["state", "members", "owners", "nicks", "sessions"])
            .arg(member_id)
            .arg(owner)
            .arg(ROOMS_CHANNEL)
            .arg(slug)
            .arg(node);
        match self.cluster.call(invocation.invoke_async::<u8>(&mut redis)).await {
            Ok(left) => left == 1,
            Err(error) => {
                // The place stays until the sweep of dead places (this node's heartbeat goes on,
                // so it will be given back when this connection's absence is noticed on resync).
                tracing::warn!(%error, room = slug, member_id, "cluster: cannot give a place back now");
                false
            }
        }
    }

    /// Tells the room's members on every node that this member is writing.
    pub fn typing(self: &Arc<Self>, room: &crate::hub::Room, member_id: u64) {
        let payload = format!(
            r#"{{"room":"{}","epoch":"{}","id":{member_id},"body":{{"type":"typing"}}}}"#,
            room.slug,
            room.epoch()
        );
        let (cluster, channel) = (self.cluster.clone(), room_channel(&room.slug));
        tokio::spawn(async move {
            let mut redis = cluster.commands.clone();
            let _ = cluster.call(redis.publish::<_, _, ()>(channel, payload)).await;
        });
    }

    /// Makes a room this node created exist on every node; refused if a look-alike name was
    /// taken on another node first.
    pub async fn create(&self, record: &RoomRecord, name_key: &str) -> Result<(), Refusal> {
        let body = json(&Body::Created { record: record.clone() });
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.scripts.create.prepare_invoke();
        invocation
            .key(ROOM_NAMES_KEY)
            .key(ROOMS_KEY)
            .key(room_key(&record.slug, "state"))
            .arg(name_key)
            .arg(&record.slug)
            .arg(json(record))
            .arg(super::new_epoch())
            .arg(&body)
            .arg(ROOMS_CHANNEL);
        match self.cluster.call(invocation.invoke_async::<u8>(&mut redis)).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(Refusal::room_name_taken()),
            Err(_) => Err(Refusal::unavailable()),
        }
    }

    /// Removes a room everywhere: `force` for a moderator's close; otherwise only if nobody is
    /// in it on any node (expiry: whichever node gets there first does it, once). True if this
    /// call removed it.
    pub async fn remove(&self, slug: &str, name_key: &str, reason: &str, force: bool) -> Result<bool, ClusterError> {
        let body = json(&Body::Closed { reason: reason.to_owned() });
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.scripts.remove.prepare_invoke();
        room_keys(&mut invocation, slug, &["state", "members", "owners", "nicks", "sessions", "history"])
            .key(ROOM_NAMES_KEY)
            .key(ROOMS_KEY)
            .arg(slug)
            .arg(name_key)
            .arg(u8::from(force))
            .arg(&body)
            .arg(ROOMS_CHANNEL);
        Ok(self.cluster.call(invocation.invoke_async::<u8>(&mut redis)).await? == 1)
    }

    /// Tells the other nodes what a moderator did here (already done on this node's replica).
    /// A deleted message also leaves the history Redis keeps, so no node brings it back.
    pub async fn moderated(&self, slug: &str, decision: Decision, before: Option<String>) {
        let mut redis = self.cluster.commands.clone();
        if let Decision::Delete { seq } = decision {
            let mut invocation = self.scripts.delete.prepare_invoke();
            invocation.key(room_key(slug, "history")).arg(seq);
            if let Err(error) = self.cluster.call(invocation.invoke_async::<u8>(&mut redis)).await {
                tracing::error!(%error, room = slug, seq, "cluster: cannot delete a message from the shared history");
            }
        }
        if let Decision::Edit { seq, text } = &decision
            && let Some(before) = before
        {
            // The text as the history's JSON has it, replaced where it stands (the rest of the
            // entry, large numbers included, is left byte for byte).
            let mut invocation = self.scripts.edit.prepare_invoke();
            invocation.key(room_key(slug, "history")).arg(*seq).arg(json(&before)).arg(json(text));
            if let Err(error) = self.cluster.call(invocation.invoke_async::<u8>(&mut redis)).await {
                tracing::error!(%error, room = slug, seq, "cluster: cannot edit a message in the shared history");
            }
        }
        let body = json(&Body::Moderated { node: self.node().to_owned(), decision });
        let payload = format!(r#"{{"room":"{slug}","epoch":"","body":{body}}}"#);
        if let Err(error) = self.cluster.call(redis.publish::<_, _, ()>(ROOMS_CHANNEL, payload)).await {
            tracing::error!(%error, room = slug, "cluster: cannot tell the other nodes of a moderator's decision");
        }
    }

    /// Applies one event from the rooms channel to this node's replica.
    pub fn apply(self: &Arc<Self>, hub: &Hub, payload: &[u8]) {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                return tracing::warn!(%error, bytes = payload.len(), "cluster: unreadable room event ignored");
            }
        };
        let Envelope { ref room, ref epoch, rev, id, ghost, .. } = envelope;
        match envelope.body {
            Body::Created { record } => hub.restore(vec![record]),
            Body::Closed { reason } => {
                hub.remove_replica(room, &reason);
            }
            Body::Joined { token, member } => {
                let Some(replica) = hub.room(room) else { return };
                let here = *member.node == *self.me;
                let conn_id = member.conn;
                let pending = if here { self.pending().remove(&token) } else { None };
                let joiner =
                    pending.as_ref().map(|p| crate::hub::Joiner { conn: p.conn.clone(), resume: p.resume.clone() });
                let applied = replica.apply_joined(epoch, rev, member.replica(id), ghost == 1, joiner);
                match pending {
                    Some(pending) if applied => {
                        let _ = pending.seated.send(id);
                    }
                    // Decided after its joiner gave up waiting (Redis slow), or covered by a
                    // snapshot before it came (the joiner was never seated here): the place
                    // goes back. (A dropped `seated` tells the joiner.)
                    _ if here => self.leave(replica.slug.clone(), id, conn_id),
                    _ => {}
                }
            }
            Body::Left {} => {
                if let Some(replica) = hub.room(room) {
                    replica.apply_left(epoch, rev, id);
                }
            }
            Body::Posted(post) => {
                let token = post.token;
                if let Some(replica) = hub.room(room) {
                    replica.apply_posted(epoch, rev, post.replica(envelope.seq, envelope.at, id));
                }
                if token != 0
                    && let Some(applied) = self.posts.lock().unwrap_or_else(PoisonError::into_inner).remove(&token)
                {
                    let _ = applied.send(());
                }
            }
            Body::Typing {} => {
                if let Some(replica) = hub.room(room) {
                    replica.apply_typing(id);
                }
            }
            Body::Moderated { node, decision } if *node != *self.cluster.node => {
                let Some(replica) = hub.room(room) else { return };
                match decision {
                    Decision::Kick { member, reason } => {
                        replica.kick(member, &reason);
                    }
                    Decision::ShadowMute { member, muted } => {
                        replica.shadow_mute(member, muted);
                    }
                    Decision::Delete { seq } => {
                        replica.delete_message(seq);
                    }
                    Decision::Edit { seq, text } => {
                        replica.edit_message(seq, &text);
                    }
                    Decision::Lock { locked } => {
                        replica.update_settings(|s| s.locked = locked);
                    }
                    Decision::SlowMode { seconds } => {
                        replica.update_settings(|s| s.slow_mode_secs = seconds);
                    }
                }
            }
            Body::Moderated { .. } => {}
        }
    }

    /// Reads every room anew from Redis (after (re)subscribing: what was published meanwhile
    /// is lost): rooms created elsewhere appear, each replica takes Redis's roster and history.
    pub(crate) async fn resync(self: &Arc<Self>, hub: &Hub) -> Result<(), ClusterError> {
        let mut redis = self.cluster.commands.clone();
        let records: HashMap<String, String> = self.cluster.call(redis.hgetall(ROOMS_KEY)).await?;
        let records: Vec<RoomRecord> = records.values().filter_map(|r| serde_json::from_str(r).ok()).collect();
        let known: Vec<String> = records.iter().map(|r| r.slug.clone()).collect();
        hub.restore(records);
        let _: bool = self.cluster.call(redis.set_nx(INSTANCE_KEY, super::new_epoch())).await?;
        let instance: String = self.cluster.call(redis.get(INSTANCE_KEY)).await?;
        let previous = self.instance.lock().unwrap_or_else(PoisonError::into_inner).replace(instance.clone());
        // A node's first catch-up, or Redis lost its data: the rooms this node has (from the
        // store) are made known again; the first node wins, as at creation. Otherwise a room
        // Redis does not have was closed or expired while this node was not listening.
        let redis_lost = previous.as_deref() != Some(instance.as_str());
        for slug in hub.slugs() {
            let Some(room) = hub.room(&slug).filter(|r| !r.permanent && !known.contains(&r.slug.to_string())) else {
                continue;
            };
            if !redis_lost {
                hub.remove_replica(&slug, "the room was closed");
            } else if self.create(&room.record(), room.name_key()).await.is_err() {
                // A look-alike name was made meanwhile on another node: this one yields.
                hub.remove_replica(&slug, "the room's name was taken");
            }
        }
        for slug in hub.slugs() {
            let snapshot = self.snapshot(&slug).await?;
            if let Some(room) = hub.room(&slug) {
                self.adopt(&room, snapshot);
            }
        }
        self.recount_after_catching_up().await;
        Ok(())
    }

    /// Everything Redis holds of one room, read at once.
    async fn snapshot(&self, slug: &str) -> Result<Snapshot, ClusterError> {
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.scripts.snapshot.prepare_invoke();
        room_keys(&mut invocation, slug, &["state", "members", "history"]).arg(super::new_epoch());
        let (epoch, rev, seq, members, history): (String, u64, u64, Vec<String>, Vec<String>) =
            self.cluster.call(invocation.invoke_async(&mut redis)).await?;
        let members = members
            .chunks(2)
            .filter_map(|pair| {
                let id = pair.first()?.parse().ok()?;
                let member: WireMember = serde_json::from_str(pair.get(1)?).ok()?;
                Some(member.replica(id))
            })
            .collect();
        let history = history.iter().filter_map(|entry| posted(entry)).collect();
        Ok(Snapshot { epoch, rev, seq, members, history })
    }

    /// Starts listening to a room's messages, for a member here (see `interest`): run by the
    /// listener, between two events it applies, so the state read here and the events after it
    /// follow on from each other. False if Redis could not do it now.
    pub(super) async fn warm_up(
        self: &Arc<Self>,
        hub: &Hub,
        sink: &mut redis::aio::PubSubSink,
        slug: Arc<str>,
    ) -> bool {
        if self.interest.is_warm(&slug) {
            return true;
        }
        let Some(room) = hub.room(&slug) else { return false };
        let channel = room_channel(&slug);
        let subscribed = tokio::time::timeout(super::CALL_TIMEOUT, sink.subscribe(&channel)).await;
        // Subscribed, then read: what was published before the read is in it (older events
        // still queued are skipped by `rev`), what comes after arrives on the subscription.
        let snapshot = match subscribed {
            Ok(Ok(())) => self.snapshot(&slug).await.ok(),
            _ => None,
        };
        match snapshot {
            Some(snapshot) => {
                self.adopt(&room, snapshot);
                self.interest.mark_warm(slug);
                true
            }
            None => false,
        }
    }

    /// After a warm-up that failed (once its joiner has been told): the room is not warm, so it
    /// would never be cooled, and a subscription made after all must not stay.
    pub(super) async fn forget(&self, sink: &mut redis::aio::PubSubSink, slug: &str) {
        let _ = tokio::time::timeout(super::CALL_TIMEOUT, sink.unsubscribe(room_channel(slug))).await;
    }

    /// Takes Redis's state of the room into the replica, then gives back the places Redis says
    /// this node holds there but no connection here has (a `joined` event lost while the
    /// subscription was down, its joiner long gone), unless a join for that connection is still
    /// under way.
    fn adopt(self: &Arc<Self>, room: &crate::hub::Room, snapshot: Snapshot) {
        room.apply_snapshot(snapshot, self.node());
        let joining: Vec<u64> = self.pending().values().map(|p| p.conn.id).collect();
        for (member_id, conn_id) in room.orphans_on(self.node()) {
            if !joining.contains(&conn_id) {
                tracing::info!(room = %room.slug, member_id, "cluster: a place nobody here holds is given back");
                self.leave(room.slug.clone(), member_id, conn_id);
            }
        }
    }

    /// Stops listening to the messages of rooms no member here needs any more.
    pub(super) async fn cool_down(&self, hub: &Hub, sink: &mut redis::aio::PubSubSink) {
        let cold =
            self.interest.cool(std::time::Instant::now(), |slug| hub.room(slug).is_some_and(|r| r.has_local_members()));
        if cold.is_empty() {
            return;
        }
        let channels: Vec<String> = cold.iter().map(|slug| room_channel(slug)).collect();
        // Failing, the channels stay subscribed until the next subscription: only wasted work.
        let _ = tokio::time::timeout(super::CALL_TIMEOUT, sink.unsubscribe(channels)).await;
    }

    /// The channels a new subscription listens to: the shared one and the warm rooms'.
    pub(super) fn channels(&self) -> Vec<String> {
        let mut channels = vec![ROOMS_CHANNEL.to_owned()];
        channels.extend(self.interest.slugs().iter().map(|slug| room_channel(slug)));
        channels
    }

    /// Whether this node's replica of the room has its messages (a member here is in it, or
    /// was lately); if not, [`recent`](Self::recent) reads them from Redis.
    pub fn hears(&self, slug: &str) -> bool {
        self.interest.is_warm(slug)
    }

    /// The room's last messages as Redis keeps them, shadow-muted ones left out: for a room
    /// page on a node that does not listen to the room. Empty if Redis cannot say now.
    pub async fn recent(&self, slug: &str) -> Vec<ChatMessage> {
        match self.history(slug).await {
            Ok(history) => history.into_iter().filter(|p| !p.shadow_muted).map(|p| p.message).collect(),
            Err(error) => {
                tracing::warn!(%error, room = slug, "cluster: cannot read a room's messages for its page");
                Vec::new()
            }
        }
    }

    /// The room's last messages as the moderator console shows them, for a node that does not
    /// listen to the room; `None` if Redis cannot say now.
    pub async fn console_messages(&self, slug: &str) -> Option<Vec<app::protocol::ModMessage>> {
        let history = self.history(slug).await.ok()?;
        let messages = history.into_iter().map(|post| app::protocol::ModMessage {
            seq: post.message.seq,
            at: post.message.at,
            author: post.message.author,
            author_hash: post.author_hash.to_string(),
            text: post.message.text,
            shadow_muted: post.shadow_muted,
            source: post.message.source,
        });
        Some(messages.collect())
    }

    /// Who wrote message `seq` of the room, as Redis keeps it: for a moderator deleting it
    /// through a node that does not listen to the room.
    pub async fn author_of(&self, slug: &str, seq: u64) -> Option<Member> {
        let history = self.history(slug).await.ok()?;
        history.into_iter().find(|post| post.message.seq == seq).map(|post| post.message.author)
    }

    /// Every message Redis keeps of the room, shadow-muted ones included.
    async fn history(&self, slug: &str) -> Result<Vec<ReplicaPost>, ClusterError> {
        let mut redis = self.cluster.commands.clone();
        let history: Vec<String> = self.cluster.call(redis.lrange(room_key(slug, "history"), 0, -1)).await?;
        Ok(history.iter().filter_map(|entry| posted(entry)).collect())
    }

    /// Renews this node's heartbeat.
    pub(crate) async fn heartbeat(&self) -> Result<(), ClusterError> {
        let mut redis = self.cluster.commands.clone();
        let ttl = u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX);
        self.cluster.call(redis.pset_ex::<_, _, ()>(node_key(self.node()), 1, ttl)).await
    }

    /// Gives back the places of members whose node's heartbeat lapsed (a node killed, or cut
    /// off from Redis for longer than `NODE_TTL`) — only while that node still holds them.
    pub(crate) async fn sweep(&self, hub: &Hub) -> Result<(), ClusterError> {
        let mut redis = self.cluster.commands.clone();
        let mut alive: HashMap<Arc<str>, bool> = HashMap::new();
        for slug in hub.slugs() {
            let Some(room) = hub.room(&slug) else { continue };
            for node in room.nodes() {
                if *node == *self.me {
                    continue;
                }
                let is_alive = match alive.get(&node) {
                    Some(known) => *known,
                    None => {
                        let known: bool = self.cluster.call(redis.exists(node_key(&node))).await?;
                        alive.insert(node.clone(), known);
                        known
                    }
                };
                if !is_alive {
                    for member_id in room.members_on(&node) {
                        if self.give_back(&slug, member_id, Holder::OnNode(&node)).await {
                            tracing::info!(room = %slug, member_id, node = %node, "cluster: a dead node's member left");
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A message as the history keeps it (its `posted` event), or `None` for anything else.
fn posted(entry: &str) -> Option<ReplicaPost> {
    let envelope: Envelope = serde_json::from_str(entry).ok()?;
    let Body::Posted(post) = envelope.body else { return None };
    Some(post.replica(envelope.seq, envelope.at, envelope.id))
}

/// The cluster-wide per-address limit, a generic cell rate kept in one key (the theoretical
/// arrival time): `rate(key, now, interval, burst)` is 0 when allowed (and counted), else how
/// many ms to wait. Time is Redis's own (`now_ms()`), so nodes whose clocks disagree still
/// count alike, and messages are stamped in the order they are numbered.
macro_rules! rate_lua {
    () => {
        r#"
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function rate(key, now, interval, burst)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local later = tat + interval
  local over = later - now - burst * interval
  if over > 0 then return over end
  redis.call('SET', key, string.format('%d', later), 'PX', math.max(1, later - now))
  return 0
end
"#
    };
}

mod connections;
use connections::Connections;
pub use connections::{Opened, SharedConnection};

/// KEYS: state, members, owners, nicks, sessions, member ids, the address's join rate, rooms.
/// ARGV: new epoch, limit, name key, name shape, session, owner, member record, event body,
/// locked, channel, slug, rate interval, rate burst. A tab that holds a look-alike place
/// already takes it back (a ghost).
const JOIN: &str = concat!(
    rate_lua!(),
    r#"
if ARGV[11] ~= 'lobby' and redis.call('HEXISTS', KEYS[8], ARGV[11]) == 0 then return {'missing'} end
local wait = rate(KEYS[7], now_ms(), tonumber(ARGV[12]), tonumber(ARGV[13]))
if wait > 0 then return {'rate', string.format('%d', wait)} end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'rev', 0)
end
local holder = redis.call('HGET', KEYS[4], ARGV[3]) or redis.call('HGET', KEYS[4], ARGV[4])
local id
local ghost = 0
if holder then
  if redis.call('HGET', KEYS[5], holder) ~= ARGV[5] then return {'taken'} end
  id = holder
  ghost = 1
else
  if ARGV[9] == '1' then return {'locked'} end
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[2]) then return {'full'} end
  id = tostring(redis.call('INCR', KEYS[6]))
  redis.call('HSET', KEYS[4], ARGV[3], id)
  redis.call('HSET', KEYS[4], ARGV[4], id)
  redis.call('HSET', KEYS[5], id, ARGV[5])
end
redis.call('HSET', KEYS[2], id, ARGV[7])
redis.call('HSET', KEYS[3], id, ARGV[6])
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
local seq = redis.call('HGET', KEYS[1], 'seq')
redis.call('PUBLISH', ARGV[10], '{"room":"' .. ARGV[11] .. '","epoch":"' .. epoch .. '","rev":' .. rev ..
  ',"seq":' .. seq .. ',"id":' .. id .. ',"ghost":' .. ghost .. ',"body":' .. ARGV[8] .. '}')
return {'ok', id}
"#
);

/// KEYS: state, owners, history, the author tab's last post (kept only while slow mode is on,
/// for as long as it matters), the address's message rate. ARGV: member id,
/// owner, session, slow mode (ms), event body, history length, channel, slug, rate interval,
/// rate burst. Answers the number and the time (Redis's) it gave the message.
const POST: &str = concat!(
    rate_lua!(),
    r#"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {'gone'} end
local now = now_ms()
local slow = tonumber(ARGV[4])
if slow > 0 then
  local last = redis.call('GET', KEYS[4])
  if last and now - tonumber(last) < slow then return {'slow', string.format('%d', slow - (now - tonumber(last)))} end
end
local wait = rate(KEYS[5], now, tonumber(ARGV[9]), tonumber(ARGV[10]))
if wait > 0 then return {'rate', string.format('%d', wait)} end
local at = string.format('%d', now)
if slow > 0 then redis.call('SET', KEYS[4], at, 'PX', slow) end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
local event = '{"room":"' .. ARGV[8] .. '","epoch":"' .. epoch .. '","rev":' .. rev .. ',"seq":' .. seq ..
  ',"at":' .. at .. ',"id":' .. ARGV[1] .. ',"body":' .. ARGV[5] .. '}'
redis.call('RPUSH', KEYS[3], event)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
redis.call('PUBLISH', ARGV[7], event)
return {'ok', tostring(seq), at}
"#
);

/// KEYS: state, members, owners, nicks, sessions. ARGV: member id, owner ('' = any), channel,
/// slug, node ('' = any; else the owner must be on it). Gives the place back once: 1 if it did.
const LEAVE: &str = r#"
local owner = redis.call('HGET', KEYS[3], ARGV[1])
if not owner or (ARGV[2] ~= '' and owner ~= ARGV[2]) then return 0 end
if ARGV[5] ~= '' and string.sub(owner, 1, #ARGV[5] + 1) ~= ARGV[5] .. '/' then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
local nicks = redis.call('HGETALL', KEYS[4])
for i = 1, #nicks, 2 do
  if nicks[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[4], nicks[i]) end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
local seq = redis.call('HGET', KEYS[1], 'seq') or 0
redis.call('PUBLISH', ARGV[3], '{"room":"' .. ARGV[4] .. '","epoch":"' .. epoch .. '","rev":' .. rev ..
  ',"seq":' .. seq .. ',"id":' .. ARGV[1] .. ',"body":{"type":"left"}}')
return 1
"#;

/// KEYS: room names, rooms, state. ARGV: name key, slug, record, new epoch, event body, channel.
/// 1 if the room is known now (made here, or made again by another node after Redis lost it).
const CREATE: &str = r#"
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder then
  if holder == ARGV[2] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], 'epoch', ARGV[4], 'seq', 0, 'rev', 0)
redis.call('PUBLISH', ARGV[6], '{"room":"' .. ARGV[2] .. '","epoch":"' .. ARGV[4] .. '","body":' .. ARGV[5] .. '}')
return 1
"#;

/// KEYS: the room's six keys (state first, members second), room names, rooms. ARGV: slug,
/// name key, force, event body, channel. Once: 1 if this call removed the room.
const REMOVE: &str = r#"
if redis.call('HEXISTS', KEYS[8], ARGV[1]) == 0 then return 0 end
if ARGV[3] ~= '1' and redis.call('HLEN', KEYS[2]) > 0 then return 0 end
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
for i = 1, 6 do redis.call('DEL', KEYS[i]) end
redis.call('HDEL', KEYS[7], ARGV[2])
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('PUBLISH', ARGV[5], '{"room":"' .. ARGV[1] .. '","epoch":"' .. epoch .. '","body":' .. ARGV[4] .. '}')
return 1
"#;

/// KEYS: state, members, history. ARGV: a new epoch, for a room Redis has no state of (it was
/// restarted empty): its history is gone, and clients resuming are told so.
const SNAPSHOT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'rev', 0)
end
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
return {epoch, rev, seq, redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1)}
"#;

/// KEYS: history. ARGV: seq, the old text as JSON, the new text as JSON. Replaces the text
/// where it stands (the rest of the entry byte for byte) and marks the entry edited, once.
const EDIT: &str = r#"
local marker = ',"seq":' .. ARGV[1] .. ','
local old = '"text":' .. ARGV[2]
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
for index, entry in ipairs(entries) do
  if string.find(entry, marker, 1, true) then
    local at = string.find(entry, old, 1, true)
    if not at then return 0 end
    local new = '"text":' .. ARGV[3]
    if not string.find(entry, '"edited":true', 1, true) then new = new .. ',"edited":true' end
    local edited = string.sub(entry, 1, at - 1) .. new .. string.sub(entry, at + string.len(old))
    redis.call('LSET', KEYS[1], index - 1, edited)
    return 1
  end
end
return 0
"#;

/// KEYS: history. ARGV: seq. Removes that message from the kept history.
const DELETE: &str = r#"
local marker = ',"seq":' .. ARGV[1] .. ','
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.find(entry, marker, 1, true) then
    redis.call('LREM', KEYS[1], 1, entry)
    return 1
  end
end
return 0
"#;
