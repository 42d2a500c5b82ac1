//! A room as one node of a cluster keeps it: a replica that Redis's decisions are applied to,
//! in the order Redis made them (`crate::cluster::rooms` decides and carries them). Each applied
//! event changes the roster and history exactly as the one-process room would have, then ends
//! in this node's [`LocalMembers`](super::LocalMembers) like any other event: the fan-out, the
//! one-way rule and shadow mutes are the same code in both modes.
//!
//! Every event carries the room's `rev` (one counter per room, taken by every script that
//! changes it) and `epoch`: an event not newer than the replica's `rev` is one a snapshot
//! already covered; a new epoch means Redis lost the room's history, and the replica starts it
//! anew (a resuming client is then told of the reset).

use super::{Member, Receipt, Room, State, Stored};
use crate::{
    event::{AuthorTab, EventKind},
    outbox::{CloseReason, ConnHandle},
};
use app::{
    protocol::{self, ChatMessage, Resume, close},
    rules,
};
use std::{net::IpAddr, sync::Arc, time::Instant};

/// A member as Redis keeps it, with the node and connection that hold its place.
#[derive(Clone, Debug)]
pub struct ReplicaMember {
    pub id: u64,
    pub nickname: String,
    pub session: Arc<str>,
    pub ip: IpAddr,
    pub ip_hash: Arc<str>,
    pub joined_at: i64,
    pub shadow_muted: bool,
    pub node: Arc<str>,
    pub conn_id: u64,
}

/// A posted message as Redis numbered it.
#[derive(Clone, Debug)]
pub struct ReplicaPost {
    pub message: ChatMessage,
    pub session: Arc<str>,
    pub author_hash: Arc<str>,
    pub shadow_muted: bool,
    pub client_ref: Option<String>,
}

/// Everything Redis holds of a room, read at once (`rev` says as of which event).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub epoch: String,
    pub rev: u64,
    pub seq: u64,
    pub members: Vec<ReplicaMember>,
    pub history: Vec<ReplicaPost>,
}

/// The connection that asked to join, on the node applying its `joined` event.
pub struct Joiner {
    pub conn: ConnHandle,
    pub resume: Option<Resume>,
}

impl ReplicaMember {
    fn into_member(self) -> Option<Member> {
        // The nickname passed the rules when it joined (a bridge's reserved name included); only
        // a foreign writer could fail this.
        let name = rules::bridge_nickname(&self.nickname).ok()?;
        Some(Member {
            id: self.id,
            name,
            session: self.session,
            conn_id: self.conn_id,
            node: Some(self.node),
            ip: self.ip,
            ip_hash: self.ip_hash,
            joined_at: self.joined_at,
            sent: 0,
            shadow_muted: self.shadow_muted,
        })
    }
}

impl Room {
    /// Takes the event if it is newer than what the replica holds; starts the history anew if
    /// Redis's epoch is not the replica's.
    fn accept(&self, state: &mut State, epoch: &str, rev: u64) -> bool {
        if *state.epoch != *epoch {
            state.epoch = epoch.into();
            state.history.clear();
            state.receipts.clear();
            state.next_seq = 1;
            state.rev = 0;
        }
        if rev != 0 && rev <= state.rev {
            return false;
        }
        state.rev = state.rev.max(rev);
        true
    }

    /// Someone took a place (or a tab took its own place back: `ghost`). On the joiner's node,
    /// `joiner` is its connection: it gets the room as of this event, then everything after.
    /// False if the event was not newer than the replica (a snapshot covered it).
    pub(crate) fn apply_joined(
        &self,
        epoch: &str,
        rev: u64,
        joined: ReplicaMember,
        ghost: bool,
        joiner: Option<Joiner>,
    ) -> bool {
        let mut state = self.lock();
        if !self.accept(&mut state, epoch, rev) {
            return false;
        }
        let (id, session, conn_id) = (joined.id, joined.session.clone(), joined.conn_id);
        let Some(member) = joined.into_member() else { return false };
        let you = member.public();
        let existing = state.members.iter().position(|m| m.id == id);
        match existing {
            Some(at) => {
                let held = &mut state.members[at];
                held.conn_id = conn_id;
                held.node = member.node.clone();
            }
            // In its place by id (join order): a ghost's old place, or ids Redis handed out
            // again after losing its data, may be older than the newest here.
            None => {
                let at = state.members.partition_point(|m| m.id < id);
                crate::hub::push_within(&mut state.members, member, self.limit);
                state.members[at..].rotate_right(1);
            }
        }
        // The place's previous connection, if it was here, is replaced (or let go).
        match joiner {
            Some(Joiner { conn, resume }) => {
                if let Some(old) = self.local.replace(id, session.clone(), conn.clone())
                    && old.id != conn.id
                {
                    old.close(CloseReason::fixed(close::REPLACED, "joined again from another connection"));
                }
                conn.offer(self.joined_frame(&state, &you, &session, resume.as_ref()));
            }
            None if ghost => {
                if let Some(old) = self.local.take(id) {
                    old.close(CloseReason::fixed(close::REPLACED, "joined again from another connection"));
                }
            }
            None => {}
        }
        if !ghost || existing.is_none() {
            let count = state.members.len() as u32;
            let event = self.event(&state, state.next_seq - 1, EventKind::Joined { member: you, count });
            self.local.deliver(&event);
        }
        self.note_count(&mut state);
        true
    }

    /// A member left (by itself, or because its node is gone).
    pub(crate) fn apply_left(&self, epoch: &str, rev: u64, member_id: u64) {
        let mut state = self.lock();
        if !self.accept(&mut state, epoch, rev) {
            return;
        }
        let Some(at) = state.members.iter().position(|m| m.id == member_id) else { return };
        let gone = state.members.remove(at);
        // Still connected here: its place was given back for it (swept while this node seemed
        // dead). It rejoins by itself rather than stay, unheard, outside the room.
        if let Some(conn) = self.local.take(member_id) {
            conn.close(CloseReason::fixed(
                close::HEARTBEAT_TIMEOUT,
                "the room lost this connection's place; rejoining",
            ));
        }
        let count = state.members.len() as u32;
        let event = self.event(&state, state.next_seq - 1, EventKind::Left { member: gone.public(), count });
        self.local.deliver(&event);
        self.note_count(&mut state);
    }

    /// A message Redis numbered: into the history, the receipts, and to this node's members.
    pub(crate) fn apply_posted(&self, epoch: &str, rev: u64, post: ReplicaPost) {
        let mut state = self.lock();
        if !self.accept(&mut state, epoch, rev) {
            return;
        }
        let ReplicaPost { message, session, author_hash, shadow_muted, client_ref } = post;
        let seq = message.seq;
        state.next_seq = state.next_seq.max(seq + 1);
        state.last_posts.insert(session.clone(), Instant::now());
        if let Some(author) = state.members.iter_mut().find(|m| m.id == message.author.id) {
            author.sent = author.sent.saturating_add(1);
        }
        if let Some(client_ref) = client_ref {
            if state.receipts.len() == super::RECEIPTS_KEPT {
                state.receipts.pop_front();
            }
            let accepted = super::Accepted { seq, at: message.at };
            state.receipts.push_back(Receipt { session: session.clone(), client_ref: client_ref.into(), accepted });
        }
        let event = self.event(
            &state,
            seq,
            EventKind::Posted {
                message: message.clone(),
                author: AuthorTab { session: session.clone(), shadow_muted },
            },
        );
        self.local.deliver(&event);
        if state.history.len() == rules::HISTORY_LEN {
            state.history.pop_front();
        }
        state.history.push_back(Stored { message, session, author_hash, shadow_muted });
        self.note_count(&mut state);
    }

    /// Someone is writing (never stored, never numbered: no `rev`).
    pub(crate) fn apply_typing(&self, member_id: u64) {
        let state = self.lock();
        let Some(typist) = state.members.iter().find(|m| m.id == member_id) else { return };
        let author = AuthorTab { session: typist.session.clone(), shadow_muted: typist.shadow_muted };
        let event = self.event(&state, state.next_seq - 1, EventKind::Typing { member: typist.public(), author });
        self.local.deliver(&event);
    }

    /// Replaces the replica with what Redis holds (after (re)subscribing). This node's
    /// connections whose places Redis no longer has (swept while this node could not renew its
    /// heartbeat) are closed with a reconnect code, so their tabs join again.
    pub(crate) fn apply_snapshot(&self, snapshot: Snapshot, node: &str) {
        let mut state = self.lock();
        // Events this replica did not see (it was not listening): its members here were not
        // shown them, so they rejoin and resume from their last number, like any reconnect.
        let missed = state.rev != snapshot.rev || *state.epoch != *snapshot.epoch;
        state.epoch = snapshot.epoch.as_str().into();
        state.rev = snapshot.rev;
        state.next_seq = snapshot.seq + 1;
        let mine: Vec<(u64, u64)> =
            snapshot.members.iter().filter(|m| *m.node == *node).map(|m| (m.id, m.conn_id)).collect();
        state.members = snapshot.members.into_iter().filter_map(ReplicaMember::into_member).collect();
        // Redis keeps the members in a hash, in no order; ids are handed out in join order, and
        // a `joined` lists the newest (`listed`).
        state.members.sort_unstable_by_key(|m| m.id);
        // Mutes are this node's memory of moderators' decisions, not the join-time record's.
        let muted = state.muted_addresses.clone();
        for member in &mut state.members {
            member.shadow_muted |= muted.contains(&member.ip_hash);
        }
        state.receipts.clear();
        state.history.clear();
        for post in snapshot.history {
            if let Some(client_ref) = post.client_ref {
                let accepted = super::Accepted { seq: post.message.seq, at: post.message.at };
                let receipt = Receipt { session: post.session.clone(), client_ref: client_ref.into(), accepted };
                state.receipts.push_back(receipt);
            }
            state.history.push_back(Stored {
                message: post.message,
                session: post.session,
                author_hash: post.author_hash,
                shadow_muted: post.shadow_muted,
            });
        }
        let gone = self.local.retain_places(|id, conn_id| !missed && mine.contains(&(id, conn_id)));
        for conn in gone {
            conn.close(CloseReason::fixed(
                close::HEARTBEAT_TIMEOUT,
                "the room moved on while this server was away; rejoining",
            ));
        }
        self.note_count(&mut state);
    }

    /// The members whose places are held by connections on `node`.
    pub(crate) fn members_on(&self, node: &str) -> Vec<u64> {
        self.lock().members.iter().filter(|m| m.node.as_deref() == Some(node)).map(|m| m.id).collect()
    }

    /// Places held by connections on `node` (this one) that are not connected here: a
    /// `(member id, connection id)` each.
    pub(crate) fn orphans_on(&self, node: &str) -> Vec<(u64, u64)> {
        let state = self.lock();
        let held_elsewhere = |m: &&Member| m.node.as_deref() == Some(node) && !self.local.holds(m.id);
        state.members.iter().filter(held_elsewhere).map(|m| (m.id, m.conn_id)).collect()
    }

    /// The nodes holding places here, this one aside.
    pub(crate) fn nodes(&self) -> Vec<Arc<str>> {
        let mut nodes: Vec<Arc<str>> = self.lock().members.iter().filter_map(|m| m.node.clone()).collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// What a post needs from the replica: the author's tab, its address hash and shadow mute,
    /// the slow mode in force, and whom the text mentions.
    pub(crate) fn post_context(&self, member_id: u64, text: &str) -> Option<PostContext> {
        let state = self.lock();
        let author = state.members.iter().find(|m| m.id == member_id)?;
        let mentions = if text.contains('@') {
            let others = state.members.iter().filter(|m| m.id != member_id).map(|m| &m.name);
            rules::mentions(text, others).into_iter().map(|name| name.display().to_owned()).collect()
        } else {
            Vec::new()
        };
        Some(PostContext {
            author: author.public(),
            session: author.session.clone(),
            author_hash: author.ip_hash.clone(),
            shadow_muted: author.shadow_muted,
            slow_mode_secs: state.settings.slow_mode_secs,
            mentions,
        })
    }

    /// Whether the room takes new members (a moderator's lock), and whether this address is
    /// shadow-muted here.
    pub(crate) fn join_context(&self, ip_hash: &str) -> (bool, bool) {
        let state = self.lock();
        (state.settings.locked, state.muted_addresses.contains(ip_hash))
    }

    /// The room's epoch as this replica knows it.
    pub(crate) fn epoch(&self) -> Arc<str> {
        self.lock().epoch.clone()
    }

    /// Where the history stands: the epoch and the last message's number (0: none yet).
    pub(crate) fn position(&self) -> (Arc<str>, u64) {
        let state = self.lock();
        (state.epoch.clone(), state.next_seq.saturating_sub(1))
    }
}

pub struct PostContext {
    pub author: protocol::Member,
    pub session: Arc<str>,
    pub author_hash: Arc<str>,
    pub shadow_muted: bool,
    pub slow_mode_secs: u32,
    pub mentions: Vec<String>,
}
