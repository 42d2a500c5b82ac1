//! One room: its members, its recent history, and fan-out of everything said in it.
//!
//! Everything that changes a room happens under its one `Mutex`, and every frame is queued
//! under it too. That single order is what makes the participant limit exact under a join storm
//! and what lets each member see events in sequence order. The lock is never held across an
//! `.await` (there are none here): queuing is `try_send`.

use super::HubError;
use crate::outbox::{CloseReason, ConnHandle, Frame, Offer};
use app::{
    protocol::{self, ChatMessage, Continuity, Resume, RoomSummary, ServerMsg, close},
    rules,
};
use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub struct Room {
    pub slug: Arc<str>,
    pub name: Arc<str>,
    name_key: String,
    pub limit: u32,
    pub one_way: bool,
    pub listed: bool,
    /// The lobby: never expires.
    pub permanent: bool,
    pub(super) created: Instant,
    /// Names this incarnation of the room, so a client resuming across a restart learns that
    /// its sequence numbers mean nothing here.
    epoch: String,
    /// Member count, readable without the lock (directory, SSR).
    count: AtomicU32,
    /// Set when the count changes; cleared by the directory update.
    dirty: AtomicBool,
    state: Mutex<State>,
}

struct State {
    /// In join order. A `Vec`: fan-out walks it front to back, which is what it is best at.
    members: Vec<Member>,
    history: VecDeque<Stored>,
    /// Recent (session, client reference) pairs: a resend is recognised even when the room
    /// has moved on past the history window since.
    receipts: VecDeque<Receipt>,
    next_seq: u64,
    empty_since: Option<Instant>,
    /// Expired: joins fail from now on.
    closed: bool,
}

struct Member {
    id: u64,
    /// The nickname as shown, with its look-alike keys.
    name: rules::Name,
    session: Box<str>,
    conn: ConnHandle,
}

impl Member {
    fn public(&self) -> protocol::Member {
        protocol::Member { id: self.id, nickname: self.name.display.clone() }
    }
}

struct Stored {
    message: ChatMessage,
    /// Who wrote it, to keep it from them in a one-way room.
    session: Box<str>,
}

struct Receipt {
    session: Box<str>,
    client_ref: Box<str>,
    accepted: Accepted,
}

/// How many receipts a room remembers: far more than a client ever has waiting to resend.
const RECEIPTS_KEPT: usize = 256;

pub struct JoinRequest<'a> {
    pub nickname: &'a str,
    pub session: &'a str,
    pub resume: Option<&'a Resume>,
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
}

/// Who a frame is not for.
#[derive(Clone, Copy)]
enum Skip<'a> {
    Nobody,
    Member(u64),
    /// Every connection of this tab session (a one-way room's author).
    Session(&'a str),
}

impl Skip<'_> {
    fn matches(self, member: &Member) -> bool {
        match self {
            Skip::Nobody => false,
            Skip::Member(id) => member.id == id,
            Skip::Session(session) => *member.session == *session,
        }
    }
}

const MAX_CLIENT_REF_CHARS: usize = 64;

impl Room {
    pub(super) fn new(
        slug: Arc<str>,
        name: Arc<str>,
        name_key: String,
        limit: u32,
        one_way: bool,
        listed: bool,
        permanent: bool,
    ) -> Self {
        Self {
            slug,
            name,
            name_key,
            limit,
            one_way,
            listed,
            permanent,
            created: Instant::now(),
            epoch: format!("{:016x}", rand::random::<u64>()),
            count: AtomicU32::new(0),
            dirty: AtomicBool::new(true),
            state: Mutex::new(State {
                members: Vec::new(),
                history: VecDeque::with_capacity(rules::HISTORY_LEN),
                receipts: VecDeque::new(),
                next_seq: 1,
                empty_since: Some(Instant::now()),
                closed: false,
            }),
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

    pub fn member_count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    pub(super) fn name_key(&self) -> &str {
        &self.name_key
    }

    pub(super) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    pub(super) fn recent_messages(&self) -> Vec<ChatMessage> {
        self.lock().history.iter().map(|s| s.message.clone()).collect()
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
    ) -> Result<Membership, HubError> {
        let name = rules::nickname(request.nickname).map_err(HubError::nickname)?;
        if !valid_session(request.session) {
            return Err(HubError::SessionInvalid);
        }
        let mut state = self.lock();
        if state.closed {
            return Err(HubError::RoomNotFound);
        }
        // A reconnecting tab takes its own place back (same session, same nickname): the ghost
        // of its dropped connection is replaced quietly, keeping its member id, so the others
        // see no leave/join churn.
        let ghost = state.members.iter_mut().find(|m| *m.session == *request.session && m.name.looks_like(&name));
        let (you, fresh) = if let Some(ghost) = ghost {
            let old = std::mem::replace(&mut ghost.conn, conn.clone());
            if old.id != conn.id {
                old.close(CloseReason { code: close::REPLACED, reason: "joined again from another connection" });
            }
            (ghost.public(), false)
        } else {
            if state.members.iter().any(|m| m.name.looks_like(&name)) {
                return Err(HubError::NicknameTaken);
            }
            if state.members.len() >= self.limit as usize {
                return Err(HubError::RoomFull { limit: self.limit });
            }
            let member = Member {
                id: ids.fetch_add(1, Ordering::Relaxed),
                name,
                session: request.session.into(),
                conn: conn.clone(),
            };
            let you = member.public();
            state.members.push(member);
            (you, true)
        };

        let (continuity, history) = self.history_for(&state, request.session, request.resume);
        let count = state.members.len() as u32;
        let joined = ServerMsg::Joined {
            room: RoomSummary { members: count, ..self.summary() },
            you: you.clone(),
            members: state.members.iter().map(Member::public).collect(),
            epoch: self.epoch.clone(),
            continuity,
            history,
        };
        // Queued under the lock, so nothing said in the room can overtake it.
        conn.offer(joined.encode().into());
        if fresh {
            let frame: Frame = ServerMsg::MemberJoined { member: you.clone(), count }.encode().into();
            self.fan_out(&mut state, &frame, Skip::Member(you.id));
        }
        Ok(Membership { room: self.clone(), member_id: you.id, conn_id: conn.id })
    }

    /// What a joiner gets to see, given where its copy of the room ended.
    fn history_for(&self, state: &State, session: &str, resume: Option<&Resume>) -> (Continuity, Vec<ChatMessage>) {
        let (continuity, from_seq) = match resume {
            None => (Continuity::Fresh, 0),
            Some(resume) if resume.epoch != self.epoch => (Continuity::Reset, 0),
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
            .filter(|s| s.message.seq >= from_seq && !(self.one_way && *s.session == *session))
            .map(|s| s.message.clone())
            .collect();
        (continuity, history)
    }

    fn post(
        &self,
        member_id: u64,
        conn_id: u64,
        text: String,
        client_ref: Option<String>,
    ) -> Result<Accepted, HubError> {
        let mut state = self.lock();
        let author =
            state.members.iter().find(|m| m.id == member_id && m.conn.id == conn_id).ok_or(HubError::NotJoined)?;
        let author_ref = author.public();
        let session = author.session.clone();
        // A resend after a reconnect (same session, same reference) is acknowledged, not reposted.
        if let Some(client_ref) = client_ref.as_deref() {
            let earlier = state.receipts.iter().rev().find(|r| *r.session == *session && *r.client_ref == *client_ref);
            if let Some(earlier) = earlier {
                return Ok(earlier.accepted);
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let at = now_ms();
        let message = ChatMessage { seq, at, author: author_ref, text };
        // Encoded once; every member's outbox gets the same bytes.
        let frame: Frame = ServerMsg::MessagePosted { message: message.clone() }.encode().into();
        let skip = if self.one_way { Skip::Session(&session) } else { Skip::Nobody };
        self.fan_out(&mut state, &frame, skip);
        if state.history.len() == rules::HISTORY_LEN {
            state.history.pop_front();
        }
        let accepted = Accepted { seq, at };
        if let Some(client_ref) = client_ref {
            if state.receipts.len() == RECEIPTS_KEPT {
                state.receipts.pop_front();
            }
            state.receipts.push_back(Receipt { session: session.clone(), client_ref: client_ref.into(), accepted });
        }
        state.history.push_back(Stored { message, session });
        Ok(accepted)
    }

    /// Removes the member if it still belongs to this connection (a replaced ghost does not).
    fn leave(&self, member_id: u64, conn_id: u64) {
        let mut state = self.lock();
        let Some(at) = state.members.iter().position(|m| m.id == member_id && m.conn.id == conn_id) else {
            return;
        };
        let gone = state.members.remove(at);
        self.announce_departures(&mut state, vec![gone]);
    }

    /// Queues `frame` for every member but `skip`. Members whose outbox is full (they stopped
    /// reading) or gone are removed, and their departure is announced the same way.
    fn fan_out(&self, state: &mut State, frame: &Frame, skip: Skip<'_>) {
        let mut departed = Vec::new();
        offer_all(state, frame, skip, &mut departed);
        self.announce_departures(state, departed);
    }

    /// Tells the others who left. Telling them can show that more have gone (full or closed
    /// outboxes): those join the list, until everyone left has heard of everyone gone.
    fn announce_departures(&self, state: &mut State, mut departed: Vec<Member>) {
        while let Some(gone) = departed.pop() {
            let count = state.members.len() as u32;
            let frame: Frame = ServerMsg::MemberLeft { member: gone.public(), count }.encode().into();
            offer_all(state, &frame, Skip::Nobody, &mut departed);
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

/// Offers `frame` to every member but `skip`; those that cannot take it are moved to `departed`.
fn offer_all(state: &mut State, frame: &Frame, skip: Skip<'_>, departed: &mut Vec<Member>) {
    let mut at = 0;
    while at < state.members.len() {
        let member = &state.members[at];
        if !skip.matches(member) && member.conn.offer(frame.clone()) != Offer::Queued {
            departed.push(state.members.remove(at));
        } else {
            at += 1;
        }
    }
}

impl Membership {
    pub fn post(&self, text: &str, client_ref: Option<String>) -> Result<Accepted, HubError> {
        if client_ref.as_ref().is_some_and(|r| r.chars().count() > MAX_CLIENT_REF_CHARS) {
            return Err(HubError::ClientRefInvalid);
        }
        let text = rules::message(text).map_err(HubError::Message)?;
        self.room.post(self.member_id, self.conn_id, text, client_ref)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.leave(self.member_id, self.conn_id);
    }
}

/// Session ids are the client's own random secret; this only bounds their size and alphabet.
fn valid_session(session: &str) -> bool {
    (16..=128).contains(&session.len()) && session.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
