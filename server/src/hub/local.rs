//! A room's members on this node: their connections, and the last hop of every room event.
//!
//! The broker hands each event to [`LocalMembers::deliver`] on every node. Here it is encoded
//! once, and here each member's audience is decided: a one-way room keeps a message from its
//! author's tab, a shadow-muted author's message reaches nobody but that author's tab. Offering
//! never waits (`try_send` into each outbox); a member whose outbox is full or gone is dropped
//! from this list and noted as departed, for the room to announce (see `Room::settle`).

use crate::{
    event::{EventKind, RoomEvent},
    frame::Frame,
    outbox::{CloseReason, ConnHandle, Offer},
};
use app::protocol::close;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub struct LocalMembers {
    /// A one-way room: authors never see their own messages.
    one_way: bool,
    /// The room's participant limit: the list never grows past it.
    limit: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// In join order. A `Vec`: fan-out walks it front to back, which is what it is best at.
    members: Vec<Local>,
    /// Members dropped because they could not take a frame, not yet announced.
    departed: Vec<u64>,
}

struct Local {
    member_id: u64,
    /// The member's tab session: one-way and shadow-mute audiences are decided by it.
    session: Arc<str>,
    conn: ConnHandle,
}

/// Who an event is shown to.
#[derive(Clone, Copy)]
enum Audience<'a> {
    Everyone,
    AllBut(u64),
    /// Everyone but the connections of this tab session (a one-way room's author).
    AllButSession(&'a str),
    /// Only the connections of this tab session (a shadow-muted author).
    OnlySession(&'a str),
    Nobody,
}

impl Audience<'_> {
    fn includes(self, member: &Local) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::AllBut(id) => member.member_id != id,
            Audience::AllButSession(session) => *member.session != *session,
            Audience::OnlySession(session) => *member.session == *session,
            Audience::Nobody => false,
        }
    }
}

impl LocalMembers {
    pub fn new(one_way: bool, limit: u32) -> Self {
        Self { one_way, limit, state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A member connected here joins the fan-out.
    pub fn add(&self, member_id: u64, session: Arc<str>, conn: ConnHandle) {
        super::push_within(&mut self.lock().members, Local { member_id, session, conn }, self.limit);
    }

    /// A member's tab came back on another connection: the new one takes its place; the old
    /// one, if it was here, is returned (for the room to close it).
    pub fn replace(&self, member_id: u64, session: Arc<str>, conn: ConnHandle) -> Option<ConnHandle> {
        let mut state = self.lock();
        match state.members.iter_mut().find(|m| m.member_id == member_id) {
            Some(local) => Some(std::mem::replace(&mut local.conn, conn)),
            None => {
                super::push_within(&mut state.members, Local { member_id, session, conn }, self.limit);
                None
            }
        }
    }

    /// A member's connection, if it is here, leaves the fan-out (its place went elsewhere).
    pub fn take(&self, member_id: u64) -> Option<ConnHandle> {
        let mut state = self.lock();
        let at = state.members.iter().position(|m| m.member_id == member_id)?;
        Some(state.members.remove(at).conn)
    }

    /// The member's connection leaves the fan-out, if it is still `conn_id` (a tab that took
    /// its place back on another connection keeps it).
    pub fn take_conn(&self, member_id: u64, conn_id: u64) -> Option<ConnHandle> {
        let mut state = self.lock();
        let at = state.members.iter().position(|m| m.member_id == member_id && m.conn.id == conn_id)?;
        Some(state.members.remove(at).conn)
    }

    /// Keeps the members for which `keep(member id, connection id)` holds; returns the others'
    /// connections.
    pub fn retain_places(&self, keep: impl Fn(u64, u64) -> bool) -> Vec<ConnHandle> {
        let mut state = self.lock();
        let mut dropped = Vec::new();
        state.members.retain(|m| {
            let kept = keep(m.member_id, m.conn.id);
            if !kept {
                dropped.push(m.conn.clone());
            }
            kept
        });
        dropped
    }

    /// Members dropped since the last call because they could not take a frame.
    pub fn take_departed(&self) -> Vec<u64> {
        std::mem::take(&mut self.lock().departed)
    }

    /// Whether the member is connected here.
    pub fn holds(&self, member_id: u64) -> bool {
        self.lock().members.iter().any(|m| m.member_id == member_id)
    }

    pub fn len(&self) -> usize {
        self.lock().members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last hop of an event: encoded once, offered to every local member in its audience.
    pub fn deliver(&self, event: &RoomEvent) {
        let mut state = self.lock();
        let audience = match &event.kind {
            EventKind::Posted { author, .. } => match (author.shadow_muted, self.one_way) {
                (false, false) => Audience::Everyone,
                (false, true) => Audience::AllButSession(&author.session),
                // Shadow-muted: nobody but the author's own tab (and in a one-way room not even
                // that), so nothing gives the mute away.
                (true, false) => Audience::OnlySession(&author.session),
                (true, true) => Audience::Nobody,
            },
            // Never back to the typist's own tab; a shadow-muted typist's words reach nobody,
            // so neither does their typing.
            EventKind::Typing { author, .. } if author.shadow_muted => Audience::Nobody,
            EventKind::Typing { author, .. } => Audience::AllButSession(&author.session),
            EventKind::Joined { member, .. } => Audience::AllBut(member.id),
            EventKind::Left { member, .. } => {
                state.members.retain(|m| m.member_id != member.id);
                Audience::Everyone
            }
            EventKind::Kicked { member, reason, .. } => {
                if let Some(at) = state.members.iter().position(|m| m.member_id == member.id) {
                    state.members.remove(at).conn.close(CloseReason::new(close::KICKED, reason));
                }
                Audience::Everyone
            }
            EventKind::Deleted { .. } | EventKind::Edited { .. } | EventKind::SettingsChanged { .. } => {
                Audience::Everyone
            }
            EventKind::Closed { reason } => {
                for local in state.members.drain(..) {
                    local.conn.close(CloseReason::new(close::ROOM_CLOSED, reason));
                }
                Audience::Nobody
            }
        };
        let Some(message) = event.to_message() else { return };
        if matches!(audience, Audience::Nobody) {
            return;
        }
        let frame = Frame::encode(&message);
        let State { members, departed } = &mut *state;
        members.retain(|local| {
            let kept = !audience.includes(local) || local.conn.offer(frame.clone()) == Offer::Queued;
            if !kept {
                departed.push(local.member_id);
            }
            kept
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{broker::Position, event::AuthorTab, outbox::Outbox};
    use app::protocol::{ChatMessage, Member, ServerMsg, Source};

    struct Tab {
        outbox: Outbox,
    }

    impl Tab {
        fn texts(&self) -> Vec<String> {
            let mut texts = Vec::new();
            while let Some(frame) = self.outbox.pop() {
                if let Ok(ServerMsg::MessagePosted { message }) = serde_json::from_str(&frame) {
                    texts.push(message.text);
                }
            }
            texts
        }
    }

    /// Three members: 1 and 2 are the same tab session (two connections of one author).
    fn room(one_way: bool) -> (LocalMembers, [Tab; 3]) {
        let local = LocalMembers::new(one_way, 100);
        let tabs = [(1, "author"), (2, "author"), (3, "reader")].map(|(id, session)| {
            let (handle, outbox) = ConnHandle::new(id, 16);
            local.add(id, session.into(), handle);
            Tab { outbox }
        });
        (local, tabs)
    }

    fn posted(text: &str, shadow_muted: bool) -> RoomEvent {
        let author = Member { id: 1, nickname: "author".into() };
        RoomEvent {
            room: "r".into(),
            position: Position { epoch: "e".into(), seq: 1 },
            kind: EventKind::Posted {
                message: ChatMessage {
                    seq: 1,
                    at: 0,
                    author,
                    text: text.into(),
                    mentions: Vec::new(),
                    source: Source::Burner,
                    edited: false,
                },
                author: AuthorTab { session: "author".into(), shadow_muted },
            },
        }
    }

    #[test]
    fn a_normal_room_shows_a_message_to_everyone_its_author_included() {
        let (local, tabs) = room(false);
        local.deliver(&posted("hello", false));
        assert!(tabs.iter().all(|t| t.texts() == ["hello"]));
    }

    #[test]
    fn a_one_way_room_keeps_a_message_from_every_connection_of_its_authors_tab() {
        let (local, [a, b, reader]) = room(true);
        local.deliver(&posted("secret", false));
        assert_eq!((a.texts(), b.texts(), reader.texts()), (vec![], vec![], vec!["secret".to_owned()]));
    }

    #[test]
    fn a_shadow_muted_message_reaches_only_its_authors_tab_and_in_a_one_way_room_nobody() {
        let (local, [a, b, reader]) = room(false);
        local.deliver(&posted("muted", true));
        assert_eq!(
            (a.texts(), b.texts(), reader.texts()),
            (vec!["muted".to_owned()], vec!["muted".to_owned()], vec![])
        );
        let (local, tabs) = room(true);
        local.deliver(&posted("muted", true));
        assert!(tabs.iter().all(|t| t.texts().is_empty()));
    }

    #[test]
    fn an_event_is_encoded_once_for_every_local_member() {
        let (local, tabs) = room(false);
        local.deliver(&posted("shared", false));
        let frames: Vec<Frame> = tabs.iter().map(|t| t.outbox.pop().expect("a frame")).collect();
        assert!(frames.iter().all(|f| f.as_ptr() == frames[0].as_ptr()), "one encoding, the same bytes for all");
    }

    #[test]
    fn a_member_that_cannot_take_a_frame_is_dropped_and_noted_as_departed() {
        let local = LocalMembers::new(false, 100);
        let (stuck, _stuck_outbox) = ConnHandle::new(1, 1);
        let (reader, reader_outbox) = ConnHandle::new(2, 16);
        local.add(1, "s1".into(), stuck);
        local.add(2, "s2".into(), reader);
        local.deliver(&posted("one", false));
        local.deliver(&posted("two", false));
        assert_eq!(local.take_departed(), vec![1]);
        assert_eq!(local.len(), 1);
        assert_eq!(Tab { outbox: reader_outbox }.texts(), ["one", "two"]);
        assert!(local.take_departed().is_empty(), "taken once");
    }
}
