//! One room: who is in it (the roster), its recent history, and the events it decides.
//!
//! Everything that changes a room happens under its one `Mutex`, and every event it decides is
//! published under it too. That single order is what makes the participant limit exact under a
//! join storm and what lets each member see events in sequence order. The lock is never held
//! across an `.await` (there are none here): the broker delivers by queuing, never waiting.
//!
//! The roster is the room's own record of its members (in one process, every member); the
//! connections that events are offered to are this node's [`LocalMembers`].

mod moderate;
mod replica;

pub use replica::{Joiner, ReplicaMember, ReplicaPost, Snapshot};

use super::LocalMembers;
use crate::{
    broker::{Broker, Position},
    error::Refusal,
    event::{AuthorTab, EventKind, RoomEvent},
    frame::Frame,
    outbox::{CloseReason, ConnHandle},
};
use app::{
    protocol::{self, ChatMessage, Continuity, Resume, RoomSettings, RoomSummary, ServerMsg, Source, close},
    rules,
};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// What a room is made of when it is created or restored.
pub struct RoomSpec {
    pub slug: Arc<str>,
    pub name: Arc<str>,
    pub name_key: String,
    pub limit: u32,
    pub one_way: bool,
    pub listed: bool,
    pub permanent: bool,
    pub settings: RoomSettings,
    pub created_at: i64,
}

pub struct Room {
    pub slug: Arc<str>,
    pub name: Arc<str>,
    name_key: String,
    pub limit: u32,
    pub one_way: bool,
    pub listed: bool,
    /// The lobby: never expires, is never stored.
    pub permanent: bool,
    pub(super) created: Instant,
    /// When it was first created (ms since the epoch; survives restarts).
    pub created_at: i64,
    /// Member count, readable without the lock (directory, SSR).
    count: AtomicU32,
    /// Set when the count changes; cleared by the directory update.
    dirty: AtomicBool,
    broker: Arc<dyn Broker>,
    /// This node's members: where published events end.
    local: LocalMembers,
    /// In cluster mode, Redis decides the room's events and this room is this node's replica of
    /// it (see `crate::cluster::rooms`); `None` in one process.
    cluster: Option<Arc<crate::cluster::Rooms>>,
    state: Mutex<State>,
}

struct State {
    /// Names this incarnation of the room, so a client resuming across a restart learns that
    /// its sequence numbers mean nothing here. (In cluster mode Redis names it.)
    epoch: Arc<str>,
    /// In cluster mode, the number of the last event applied from Redis: one that is not newer
    /// is one this replica has already (a snapshot read after subscribing covered it).
    rev: u64,
    /// In join order.
    members: Vec<Member>,
    history: VecDeque<Stored>,
    /// Recent (session, client reference) pairs: a resend is recognised even when the room
    /// has moved on past the history window since.
    receipts: VecDeque<Receipt>,
    next_seq: u64,
    empty_since: Option<Instant>,
    /// Expired or closed by a moderator: joins fail from now on.
    closed: bool,
    settings: RoomSettings,
    /// Address hashes a moderator shadow-muted here: leaving and coming back (another tab,
    /// another nickname) does not lift it.
    muted_addresses: HashSet<Arc<str>>,
    /// When each tab session last posted, for slow mode: leaving and rejoining does not reset it.
    last_posts: HashMap<Arc<str>, Instant>,
}

struct Member {
    id: u64,
    /// The nickname as shown, with its look-alike keys.
    name: rules::Name,
    session: Arc<str>,
    /// The connection that holds this place now (a reconnecting tab takes it over).
    conn_id: u64,
    /// In cluster mode, the node that connection is on (`None`: this process).
    node: Option<Arc<str>>,
    /// For bans; never shown to anyone.
    ip: IpAddr,
    /// What moderators see instead of the address.
    ip_hash: Arc<str>,
    joined_at: i64,
    sent: u32,
    /// Their messages reach nobody else; they are not told.
    shadow_muted: bool,
}

impl Member {
    fn public(&self) -> protocol::Member {
        protocol::Member { id: self.id, nickname: self.name.display().to_owned() }
    }
}

struct Stored {
    message: ChatMessage,
    /// Who wrote it, to keep it from them in a one-way room.
    session: Arc<str>,
    author_hash: Arc<str>,
    /// Written while shadow-muted: only its author's session ever sees it.
    shadow_muted: bool,
}

struct Receipt {
    session: Arc<str>,
    client_ref: Box<str>,
    accepted: Accepted,
}

/// The longest slow mode a moderator can set.
pub const MAX_SLOW_MODE: Duration = Duration::from_secs(3_600);

/// How many receipts a room remembers: far more than a client ever has waiting to resend.
const RECEIPTS_KEPT: usize = 256;

pub struct JoinRequest<'a> {
    pub nickname: &'a str,
    pub session: &'a str,
    pub resume: Option<&'a Resume>,
    pub ip: IpAddr,
    pub ip_hash: Arc<str>,
    /// A bridge's own place (`crate::bridge`): it may take a reserved name.
    pub bridge: bool,
}

/// An author on the other side of a bridge, whose message a bridge's member posts: shown
/// under that name, marked with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    pub name: String,
    pub source: Source,
}

/// The author's receipt for a posted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub seq: u64,
    pub at: i64,
}

/// A connection's place in a room. Dropping it leaves the room.
pub struct Membership {
    pub room: Arc<Room>,
    pub member_id: u64,
    conn_id: u64,
    session: Arc<str>,
}

impl Room {
    pub(super) fn new(spec: RoomSpec, broker: Arc<dyn Broker>, cluster: Option<Arc<crate::cluster::Rooms>>) -> Self {
        let RoomSpec { slug, name, name_key, limit, one_way, listed, permanent, settings, created_at } = spec;
        Self {
            slug,
            name,
            name_key,
            limit,
            one_way,
            listed,
            permanent,
            created: Instant::now(),
            created_at,
            count: AtomicU32::new(0),
            dirty: AtomicBool::new(true),
            broker,
            local: LocalMembers::new(one_way, limit),
            cluster,
            state: Mutex::new(State {
                epoch: new_epoch().into(),
                rev: 0,
                members: Vec::new(),
                history: VecDeque::with_capacity(rules::HISTORY_LEN),
                receipts: VecDeque::new(),
                next_seq: 1,
                empty_since: Some(Instant::now()),
                closed: false,
                settings,
                muted_addresses: HashSet::new(),
                last_posts: HashMap::new(),
            }),
        }
    }

    /// The room's durable settings, for the store.
    pub fn record(&self) -> crate::store::RoomRecord {
        let settings = self.settings();
        crate::store::RoomRecord {
            slug: self.slug.to_string(),
            name: self.name.to_string(),
            limit: self.limit,
            one_way: self.one_way,
            listed: self.listed,
            profanity: settings.profanity,
            slow_mode_secs: settings.slow_mode_secs,
            locked: settings.locked,
            created_at: self.created_at,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn summary(&self) -> RoomSummary {
        RoomSummary {
            slug: self.slug.to_string(),
            name: self.name.to_string(),
            members: self.count.load(Ordering::Relaxed),
            limit: self.limit,
            one_way: self.one_way,
        }
    }

    pub fn settings(&self) -> RoomSettings {
        self.lock().settings.clone()
    }

    /// Whether a member of the room is connected to this process.
    pub fn has_local_members(&self) -> bool {
        !self.local.is_empty()
    }

    /// The members who joined before member `before` (in join order, which is id order: a tab
    /// that takes its place back keeps its id): the newest [`protocol::MEMBERS_LISTED`] of them,
    /// and whether older ones remain. How a client pages back through a room bigger than its
    /// `joined` lists. (Requests are answered by [`Room::offer_members_before`]; this is the
    /// page itself, for tests.)
    #[cfg(test)]
    pub fn members_before(&self, before: u64) -> (Vec<protocol::Member>, bool) {
        page_before(&self.lock().members, before)
    }

    /// Answers `list_members` with the page before `before` (`page_before`), queued under the
    /// room's lock as `joined` is: a leave that comes after the page was taken is queued after
    /// it, so the client never lists someone who has gone.
    pub fn offer_members_before(&self, before: u64, conn: &ConnHandle) {
        let state = self.lock();
        let (members, more) = page_before(&state.members, before);
        conn.offer(Frame::encode(&ServerMsg::Members { members, more }));
    }

    pub fn member_count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn name_key(&self) -> &str {
        &self.name_key
    }

    pub(super) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// What a visitor who has not joined may read: the history as everyone sees it.
    pub(super) fn recent_messages(&self) -> Vec<ChatMessage> {
        self.lock().history.iter().filter(|s| !s.shadow_muted).map(|s| s.message.clone()).collect()
    }

    /// Whether the room has been empty for `expiry`.
    pub(super) fn idle_for(&self, now: Instant, expiry: Duration) -> bool {
        let state = self.lock();
        state.members.is_empty()
            && state.empty_since.is_some_and(|since| now.saturating_duration_since(since) >= expiry)
    }

    /// Marks the room closed when it has been empty for `expiry`; true if it was.
    pub(super) fn close_if_expired(&self, now: Instant, expiry: Duration) -> bool {
        let mut state = self.lock();
        let expired = state.members.is_empty()
            && state.empty_since.is_some_and(|since| now.saturating_duration_since(since) >= expiry);
        if expired {
            state.closed = true;
        }
        expired
    }

    pub(super) fn join(
        self: &Arc<Self>,
        conn: &ConnHandle,
        request: JoinRequest<'_>,
        ids: &AtomicU64,
    ) -> Result<Membership, Refusal> {
        let name =
            if request.bridge { rules::bridge_nickname(request.nickname) } else { rules::nickname(request.nickname) }
                .map_err(Refusal::nickname)?;
        if !valid_session(request.session) {
            return Err(Refusal::session_invalid());
        }
        let mut state = self.lock();
        if state.closed {
            return Err(Refusal::room_not_found());
        }
        // A reconnecting tab takes its own place back (same session, same nickname): the ghost
        // of its dropped connection is replaced quietly, keeping its member id, so the others
        // see no leave/join churn.
        let ghost = state.members.iter_mut().find(|m| *m.session == *request.session && m.name.looks_like(&name));
        let (you, session, fresh) = if let Some(ghost) = ghost {
            ghost.conn_id = conn.id;
            let session = ghost.session.clone();
            if let Some(old) = self.local.replace(ghost.id, session.clone(), conn.clone())
                && old.id != conn.id
            {
                old.close(CloseReason::fixed(close::REPLACED, "joined again from another connection"));
            }
            (ghost.public(), session, false)
        } else {
            if state.settings.locked {
                return Err(Refusal::room_locked());
            }
            if state.members.iter().any(|m| m.name.looks_like(&name)) {
                return Err(Refusal::nickname_taken());
            }
            if state.members.len() >= self.limit as usize {
                return Err(Refusal::room_full(self.limit));
            }
            let session: Arc<str> = request.session.into();
            let member = Member {
                id: ids.fetch_add(1, Ordering::Relaxed),
                name,
                session: session.clone(),
                conn_id: conn.id,
                node: None,
                ip: request.ip,
                ip_hash: request.ip_hash.clone(),
                joined_at: now_ms(),
                sent: 0,
                shadow_muted: state.muted_addresses.contains(&request.ip_hash),
            };
            let you = member.public();
            self.local.add(member.id, session.clone(), conn.clone());
            super::push_within(&mut state.members, member, self.limit);
            (you, session, true)
        };

        let count = state.members.len() as u32;
        // Queued under the lock, so nothing said in the room can overtake it.
        conn.offer(self.joined_frame(&state, &you, &session, request.resume));
        if fresh {
            // Publishing settles the room, the member count included.
            self.publish(&mut state, EventKind::Joined { member: you.clone(), count });
        }
        Ok(Membership { room: self.clone(), member_id: you.id, conn_id: conn.id, session })
    }

    /// The `joined` answer: the room as it stands, for the member `you` of tab `session`.
    fn joined_frame(&self, state: &State, you: &protocol::Member, session: &str, resume: Option<&Resume>) -> Frame {
        let (continuity, history) = self.history_for(state, session, resume);
        Frame::encode(&ServerMsg::Joined {
            room: RoomSummary { members: state.members.len() as u32, ..self.summary() },
            settings: state.settings.clone(),
            you: you.clone(),
            members: listed(&state.members, you.id),
            epoch: state.epoch.to_string(),
            continuity,
            history,
        })
    }

    /// What a joiner gets to see, given where its copy of the room ended.
    fn history_for(&self, state: &State, session: &str, resume: Option<&Resume>) -> (Continuity, Vec<ChatMessage>) {
        let (continuity, from_seq) = match resume {
            None => (Continuity::Fresh, 0),
            Some(resume) if *resume.epoch != *state.epoch => (Continuity::Reset, 0),
            Some(resume) => {
                let oldest_kept = state.history.front().map_or(state.next_seq, |s| s.message.seq);
                if resume.seq.saturating_add(1) >= oldest_kept {
                    (Continuity::Resumed, resume.seq.saturating_add(1))
                } else {
                    (Continuity::Gap, 0)
                }
            }
        };
        let history = state
            .history
            .iter()
            .filter(|s| s.message.seq >= from_seq && self.visible_to(s, session))
            .map(|s| s.message.clone())
            .collect();
        (continuity, history)
    }

    /// Whether a stored message is shown to a member of `session`: never an author's own in a
    /// one-way room, never a shadow-muted one except to its author.
    fn visible_to(&self, stored: &Stored, session: &str) -> bool {
        let own = *stored.session == *session;
        if self.one_way && own {
            return false;
        }
        !stored.shadow_muted || own
    }

    /// Posts a message the posting policy admitted. Slow mode is the room's own last word: it
    /// needs the room's memory of when this tab last posted.
    fn post(
        &self,
        member_id: u64,
        conn_id: u64,
        text: String,
        client_ref: Option<String>,
        relayed: Option<&Relayed>,
    ) -> Result<Accepted, Refusal> {
        if self.cluster.is_some() {
            // Redis numbers a cluster room's messages: posting goes through `cluster::Rooms::post`.
            return Err(Refusal::unavailable());
        }
        let mut state = self.lock();
        let slow_mode = Duration::from_secs(u64::from(state.settings.slow_mode_secs));
        let index = state
            .members
            .iter()
            .position(|m| m.id == member_id && m.conn_id == conn_id)
            .ok_or_else(Refusal::not_joined)?;
        let session = state.members[index].session.clone();
        // Slow mode is per tab; a bridge's one tab speaks for many people, each of whom the
        // posting policy limits on their own.
        if let Some(last) = state.last_posts.get(&session)
            && relayed.is_none()
            && !slow_mode.is_zero()
            && last.elapsed() < slow_mode
        {
            return Err(Refusal::slow_mode(slow_mode - last.elapsed(), slow_mode.as_secs()));
        }
        let author = &mut state.members[index];
        author.sent = author.sent.saturating_add(1);
        let (mut author_ref, author_hash, shadow_muted) =
            (author.public(), author.ip_hash.clone(), author.shadow_muted);
        let source = relayed.map_or(Source::Burner, |relayed| {
            author_ref.nickname.clone_from(&relayed.name);
            relayed.source
        });
        // Only what slow mode at its longest (an hour) could still need is kept.
        let now = Instant::now();
        if state.last_posts.len() >= state.members.len().max(64) * 2 {
            state.last_posts.retain(|_, at| now.duration_since(*at) < MAX_SLOW_MODE);
        }
        state.last_posts.insert(session.clone(), now);
        let seq = state.next_seq;
        state.next_seq += 1;
        let at = now_ms();
        let mentions = if text.contains('@') {
            let others = state.members.iter().filter(|m| m.id != member_id).map(|m| &m.name);
            rules::mentions(&text, others).into_iter().map(|name| name.display().to_owned()).collect()
        } else {
            Vec::new()
        };
        let event = self.event(
            &state,
            seq,
            EventKind::Posted {
                message: ChatMessage { seq, at, author: author_ref, text, mentions, source, edited: false },
                author: AuthorTab { session: session.clone(), shadow_muted },
            },
        );
        self.broker.publish(&event, &self.local);
        let accepted = Accepted { seq, at };
        if let Some(client_ref) = client_ref {
            if state.receipts.len() == RECEIPTS_KEPT {
                state.receipts.pop_front();
            }
            state.receipts.push_back(Receipt { session: session.clone(), client_ref: client_ref.into(), accepted });
        }
        if let EventKind::Posted { message, .. } = event.kind {
            if state.history.len() == rules::HISTORY_LEN {
                state.history.pop_front();
            }
            state.history.push_back(Stored { message, session, author_hash, shadow_muted });
        }
        self.settle(&mut state);
        Ok(accepted)
    }

    /// Tells the others that this member is writing. Not stored, not numbered.
    fn typing(&self, member_id: u64, conn_id: u64) {
        if let Some(cluster) = &self.cluster {
            return cluster.typing(self, member_id);
        }
        let mut state = self.lock();
        let Some(typist) = state.members.iter().find(|m| m.id == member_id && m.conn_id == conn_id) else {
            return;
        };
        let author = AuthorTab { session: typist.session.clone(), shadow_muted: typist.shadow_muted };
        let member = typist.public();
        self.publish(&mut state, EventKind::Typing { member, author });
    }

    /// Removes the member if it still belongs to this connection (a replaced ghost does not).
    fn leave(&self, member_id: u64, conn_id: u64) {
        if let Some(cluster) = &self.cluster {
            // Out of this node's fan-out at once; out of the room when Redis says so (then the
            // `left` event finds no connection here to close).
            self.local.take_conn(member_id, conn_id);
            return cluster.leave(self.slug.clone(), member_id, conn_id);
        }
        let mut state = self.lock();
        let Some(at) = state.members.iter().position(|m| m.id == member_id && m.conn_id == conn_id) else {
            return;
        };
        let gone = state.members.remove(at);
        let count = state.members.len() as u32;
        self.publish(&mut state, EventKind::Left { member: gone.public(), count });
    }

    fn event(&self, state: &State, seq: u64, kind: EventKind) -> RoomEvent {
        RoomEvent { room: self.slug.clone(), position: Position { epoch: state.epoch.clone(), seq }, kind }
    }

    /// Publishes an event of this room (under its lock: that is the room's one order), then
    /// settles what delivering it showed.
    fn publish(&self, state: &mut State, kind: EventKind) {
        let event = self.event(state, state.next_seq - 1, kind);
        self.broker.publish(&event, &self.local);
        self.settle(state);
    }

    /// Members this node dropped while delivering (full or closed outboxes) leave the roster,
    /// and the others are told. Telling them can show that more have gone: those leave too,
    /// until everyone left has heard of everyone gone.
    fn settle(&self, state: &mut State) {
        loop {
            let departed = self.local.take_departed();
            if departed.is_empty() {
                break;
            }
            for id in departed {
                let Some(at) = state.members.iter().position(|m| m.id == id) else { continue };
                let gone = state.members.remove(at);
                let count = state.members.len() as u32;
                let event = self.event(state, state.next_seq - 1, EventKind::Left { member: gone.public(), count });
                self.broker.publish(&event, &self.local);
            }
        }
        self.note_count(state);
    }

    fn note_count(&self, state: &mut State) {
        let count = state.members.len() as u32;
        if self.count.swap(count, Ordering::Relaxed) != count {
            self.dirty.store(true, Ordering::Release);
        }
        if count == 0 {
            state.empty_since.get_or_insert_with(Instant::now);
        } else {
            state.empty_since = None;
        }
    }
}

impl Membership {
    /// A place Redis gave (cluster mode: see `crate::cluster::rooms`).
    pub(crate) fn new(room: Arc<Room>, member_id: u64, conn_id: u64, session: Arc<str>) -> Self {
        Self { room, member_id, conn_id, session }
    }

    /// The connection holding the place.
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// The receipt of a message this member's tab already posted under `client_ref` (a resend
    /// after a reconnect). The posting policy asks this once, before any limit or filter.
    pub fn receipt(&self, client_ref: &str) -> Option<Accepted> {
        let state = self.room.lock();
        state
            .receipts
            .iter()
            .rev()
            .find(|r| *r.session == *self.session && *r.client_ref == *client_ref)
            .map(|r| r.accepted)
    }

    /// The member's tab session.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Posts `text`, which the posting policy (`crate::policy`) has admitted and made
    /// ready; refused only by the room itself (slow mode) or when the member is gone.
    pub fn post(&self, text: String, client_ref: Option<String>) -> Result<Accepted, Refusal> {
        self.room.post(self.member_id, self.conn_id, text, client_ref, None)
    }

    /// Posts, as a bridge, what `relayed` wrote on the other side.
    pub fn relay(&self, text: String, client_ref: Option<String>, relayed: &Relayed) -> Result<Accepted, Refusal> {
        self.room.post(self.member_id, self.conn_id, text, client_ref, Some(relayed))
    }
}

impl Membership {
    /// The member is writing (the request was already rate-limited by its connection).
    pub fn typing(&self) {
        self.room.typing(self.member_id, self.conn_id);
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.leave(self.member_id, self.conn_id);
    }
}

fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Session ids are the client's own random secret; this only bounds their size and alphabet.
pub fn valid_session(session: &str) -> bool {
    (16..=128).contains(&session.len()) && session.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The newest [`protocol::MEMBERS_LISTED`] of the members older than `before` (by id, which is
/// join order), and whether older ones remain.
fn page_before(members: &[Member], before: u64) -> (Vec<protocol::Member>, bool) {
    let older = members.partition_point(|m| m.id < before);
    let from = older.saturating_sub(protocol::MEMBERS_LISTED);
    (members[from..older].iter().map(Member::public).collect(), from > 0)
}

/// The members a `joined` lists, in join order: the newest [`protocol::MEMBERS_LISTED`], the
/// joiner always among them (a tab that took its place back may be far from the newest).
fn listed(members: &[Member], you: u64) -> Vec<protocol::Member> {
    let others = members.iter().filter(|m| m.id != you).count();
    let mut left_out = others.saturating_sub(protocol::MEMBERS_LISTED - 1);
    members
        .iter()
        .filter(|m| {
            let out = m.id != you && left_out > 0;
            left_out -= usize::from(out);
            !out
        })
        .map(Member::public)
        .collect()
}
