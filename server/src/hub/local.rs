//! A room's members on this node: their connections, and the last hop of every room event.
//!
//! The broker hands each event to [`LocalMembers::deliver`] on every node. Here it is encoded
//! once, and here each member's audience is decided: a one-way room keeps a message from its
//! author's tab, a shadow-muted author's message reaches nobody but that author's tab. The
//! members are offered the room's run of frames ([`Run`]) once, and the messages that follow
//! join the run until a member's socket reads it; a frame for some members only names the
//! connections it is not for. Offering never waits; a member whose outbox is full or gone is
//! dropped from this list and noted as departed, for the room to announce (see `Room::settle`).

use crate::{
    event::{EventKind, RoomEvent},
    frame::Frame,
    outbox::{CloseReason, ConnHandle, Offer, Run, Skip},
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
    /// The run every member holds, which the next frame joins unless it is sealed. Sealed when
    /// the members change: a member who came was not offered it, one who left still holds it.
    open: Option<Arc<Run>>,
}

impl State {
    /// The next frame starts a new run, offered to the members as they are now.
    fn seal(&mut self) {
        if let Some(run) = self.open.take() {
            run.seal();
        }
    }
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
        let mut state = self.lock();
        state.seal();
        super::push_within(&mut state.members, Local { member_id, session, conn }, self.limit);
    }

    /// A member's tab came back on another connection: the new one takes its place; the old
    /// one, if it was here, is returned (for the room to close it).
    pub fn replace(&self, member_id: u64, session: Arc<str>, conn: ConnHandle) -> Option<ConnHandle> {
        let mut state = self.lock();
        state.seal();
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
        state.seal();
        Some(state.members.remove(at).conn)
    }

    /// The member's connection leaves the fan-out, if it is still `conn_id` (a tab that took
    /// its place back on another connection keeps it).
    pub fn take_conn(&self, member_id: u64, conn_id: u64) -> Option<ConnHandle> {
        let mut state = self.lock();
        let at = state.members.iter().position(|m| m.member_id == member_id && m.conn.id == conn_id)?;
        state.seal();
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
        if !dropped.is_empty() {
            state.seal();
        }
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
                state.seal();
                state.members.retain(|m| m.member_id != member.id);
                Audience::Everyone
            }
            EventKind::Kicked { member, reason, .. } => {
                if let Some(at) = state.members.iter().position(|m| m.member_id == member.id) {
                    state.seal();
                    state.members.remove(at).conn.close(CloseReason::new(close::KICKED, reason));
                }
                Audience::Everyone
            }
            EventKind::Deleted { .. } | EventKind::Edited { .. } | EventKind::SettingsChanged { .. } => {
                Audience::Everyone
            }
            EventKind::Closed { reason } => {
                state.seal();
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
        let State { members, departed, open } = &mut *state;
        if let Audience::OnlySession(_) = audience {
            // A few members' own frame, outside the run.
            let dropped = keep_offered(members, departed, |local| {
                !audience.includes(local) || local.conn.offer(frame.clone()) == Offer::Queued
            });
            if dropped && let Some(run) = open.take() {
                // A member dropped still holds the run: it would be sent what comes next.
                run.seal();
            }
            return;
        }
        let skip: Skip = match audience {
            Audience::Everyone => None,
            _ => {
                let ids: Vec<u64> = members.iter().filter(|m| !audience.includes(m)).map(|m| m.conn.id).collect();
                (!ids.is_empty()).then(|| ids.into_boxed_slice())
            }
        };
        let (frame, skip) = match open {
            Some(run) => match run.append(frame, skip) {
                Ok(()) => return,
                Err(given_back) => given_back,
            },
            None => (frame, skip),
        };
        if members.is_empty() {
            return;
        }
        let run = Run::start(frame, skip);
        let mut room = usize::MAX;
        keep_offered(members, departed, |local| match local.conn.offer_run(&run) {
            Ok(left) => {
                room = room.min(left);
                true
            }
            Err(_) => false,
        });
        run.limit(room);
        // Kept only while someone holds it: a run nobody reads would grow for nothing.
        if !members.is_empty() {
            *open = Some(run);
        }
    }
}

/// Keeps the members `offered` holds for; the others could not take a frame and are noted as
/// departed. Whether any were dropped.
fn keep_offered(members: &mut Vec<Local>, departed: &mut Vec<u64>, mut offered: impl FnMut(&Local) -> bool) -> bool {
    let before = members.len();
    members.retain(|local| {
        let kept = offered(local);
        if !kept {
            departed.push(local.member_id);
        }
        kept
    });
    members.len() < before
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

        /// Every frame queued, a posted message as its text and any other frame as it is.
        fn everything(&self) -> Vec<String> {
            let mut texts = Vec::new();
            while let Some(frame) = self.outbox.pop() {
                match serde_json::from_str(&frame) {
                    Ok(ServerMsg::MessagePosted { message }) => texts.push(message.text),
                    _ => texts.push(frame.as_str().to_owned()),
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

    /// The room's frames go out as one run ([`Run`]): a frame of a member's own queued between
    /// two of them (the author's receipt) still comes between them.
    #[test]
    fn a_members_own_frame_keeps_its_place_between_the_rooms_frames() {
        let local = LocalMembers::new(false, 100);
        let (author, author_outbox) = ConnHandle::new(1, 16);
        let (reader, reader_outbox) = ConnHandle::new(2, 16);
        local.add(1, "a".into(), author.clone());
        local.add(2, "r".into(), reader);
        local.deliver(&posted("one", false));
        author.offer(Frame::from("receipt".to_owned()));
        local.deliver(&posted("two", false));
        local.deliver(&posted("three", false));
        assert_eq!(Tab { outbox: author_outbox }.everything(), ["one", "receipt", "two", "three"]);
        assert_eq!(Tab { outbox: reader_outbox }.everything(), ["one", "two", "three"]);
    }

    /// A member who comes is sent what the room says from then on, and one who leaves is sent
    /// nothing more, though the run they held goes on for the others.
    #[test]
    fn members_who_come_and_go_are_sent_what_is_said_while_they_are_there() {
        let local = LocalMembers::new(false, 100);
        let (stays, stays_outbox) = ConnHandle::new(1, 16);
        let (comes, comes_outbox) = ConnHandle::new(2, 16);
        let (goes, goes_outbox) = ConnHandle::new(3, 16);
        local.add(1, "s".into(), stays);
        local.add(3, "g".into(), goes);
        local.deliver(&posted("one", false));
        local.add(2, "c".into(), comes);
        local.deliver(&posted("two", false));
        assert!(local.take(3).is_some());
        local.deliver(&posted("three", false));
        assert_eq!(Tab { outbox: stays_outbox }.texts(), ["one", "two", "three"]);
        assert_eq!(Tab { outbox: comes_outbox }.texts(), ["two", "three"]);
        assert_eq!(Tab { outbox: goes_outbox }.texts(), ["one", "two"]);
    }

    /// A reader that takes frames one at a time (the Discord bridge's place), off the one-core
    /// runtime: what the room says after it read is not added behind its back to a run nobody
    /// tells it about; it is woken for it.
    #[test]
    fn a_reader_that_pops_is_woken_for_what_the_room_says_next() {
        use std::{
            sync::atomic::{AtomicBool, Ordering},
            task::{Context, Wake, Waker},
        };
        struct Noted(AtomicBool);
        impl Wake for Noted {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let local = LocalMembers::new(false, 100);
        let (place, outbox) = ConnHandle::new(1, 16);
        local.add(1, "bridge".into(), place);
        let place = Tab { outbox };
        local.deliver(&posted("one", false));
        assert_eq!(place.texts(), ["one"]);
        let noted = Arc::new(Noted(AtomicBool::new(false)));
        assert!(place.outbox.poll_ready(&mut Context::from_waker(&Waker::from(noted.clone()))).is_pending());
        local.deliver(&posted("two", false));
        assert!(noted.0.load(Ordering::SeqCst), "woken for the next message");
        assert_eq!(place.texts(), ["two"]);
    }

    /// A member that reads nothing is closed once its queue holds its capacity, whether the
    /// frames came in one run or several.
    #[test]
    fn a_member_that_reads_nothing_is_closed_at_its_capacity_of_the_rooms_frames() {
        let local = LocalMembers::new(false, 100);
        let (stuck, stuck_outbox) = ConnHandle::new(1, 4);
        let (reader, reader_outbox) = ConnHandle::new(2, 64);
        local.add(1, "s".into(), stuck);
        local.add(2, "r".into(), reader);
        let reader = Tab { outbox: reader_outbox };
        let mut read = Vec::new();
        for n in 0..10 {
            local.deliver(&posted(&n.to_string(), false));
            if n % 3 == 0 {
                read.extend(reader.texts());
            }
        }
        read.extend(reader.texts());
        assert_eq!(local.take_departed(), vec![1], "closed as slow");
        assert_eq!(stuck_outbox.closing(), Some(crate::outbox::CloseReason::fixed(close::SLOW, "too slow to keep up")));
        assert_eq!(read, (0..10).map(|n| n.to_string()).collect::<Vec<_>>(), "the reader has every one");
    }

    /// On the one-core runtime the drainer writes a room's run to every member as it grows,
    /// without an offer per member and message: each member's socket gets every message, in
    /// order, and a one-way room's author none of its own, also in a later pass.
    #[tokio::test]
    async fn a_rooms_run_is_written_to_every_waiting_member_as_it_grows() {
        use std::{
            sync::atomic::{AtomicBool, Ordering},
            task::{Context, Wake, Waker},
            time::Duration,
        };
        use tokio::io::AsyncReadExt;
        struct Idle(AtomicBool);
        impl Wake for Idle {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let local = LocalMembers::new(true, 100);
        let mut ends = Vec::new();
        for (id, session) in [(1, "author"), (2, "reader"), (3, "reader 2")] {
            let (socket, client) = crate::websocket::Socket::loopback().await;
            let (handle, outbox) = ConnHandle::new(id, 64);
            outbox.write_for_the_task(socket.writer().expect("a second descriptor"));
            let idle = Arc::new(Idle(AtomicBool::new(false)));
            assert!(outbox.poll_take(&mut Context::from_waker(&Waker::from(idle.clone()))).is_pending());
            outbox.park();
            local.add(id, session.into(), handle);
            ends.push((socket, outbox, client, idle));
        }
        async fn texts(client: &mut tokio::net::TcpStream, count: usize) -> Vec<String> {
            let mut texts = Vec::new();
            while texts.len() < count {
                let mut header = [0; 2];
                tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut header))
                    .await
                    .expect("written in time")
                    .expect("read");
                let mut len = usize::from(header[1] & 0x7f);
                if len == 126 {
                    let mut extended = [0; 2];
                    client.read_exact(&mut extended).await.expect("read");
                    len = usize::from(u16::from_be_bytes(extended));
                }
                let mut payload = vec![0; len];
                client.read_exact(&mut payload).await.expect("read");
                let frame = Frame::from(String::from_utf8(payload).expect("text"));
                if let Ok(ServerMsg::MessagePosted { message }) = serde_json::from_str(&frame) {
                    texts.push(message.text);
                }
            }
            texts
        }
        let author = Member { id: 1, nickname: "author".into() };
        let from = |author: &Member, text: &str| {
            let mut event = posted(text, false);
            if let EventKind::Posted { message, author: tab } = &mut event.kind {
                message.author = author.clone();
                tab.session = "reader".into();
            }
            event
        };
        local.deliver(&posted("one", false));
        local.deliver(&posted("two", false));
        tokio::task::yield_now().await;
        local.deliver(&posted("three", false));
        local.deliver(&from(&author, "from a reader"));
        for (_, _, client, _) in &mut ends[1..] {
            assert_eq!(texts(client, 3).await, ["one", "two", "three"]);
        }
        assert_eq!(texts(&mut ends[0].2, 1).await, ["from a reader"], "the author's own are kept from it");
        assert_eq!(texts(&mut ends[2].2, 1).await, ["from a reader"]);
        assert!(ends.iter().all(|end| !end.3.0.load(Ordering::SeqCst)), "no socket's task was woken");
        drop(ends);
    }

    /// On the one-core runtime, a socket whose task is busy elsewhere (waiting on Redis, say:
    /// not parked, so the drainer may not write for it) is woken when the run it holds grows,
    /// as a first frame would wake it.
    #[tokio::test]
    async fn a_busy_sockets_task_is_woken_when_its_rooms_run_grows() {
        use crate::outbox::Taken;
        use std::{
            sync::atomic::{AtomicBool, Ordering},
            task::{Context, Poll, Wake, Waker},
        };
        struct Noted(AtomicBool);
        impl Wake for Noted {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let texts = |taken: Poll<Taken>| match taken {
            Poll::Ready(Taken::Frames(frames)) => frames
                .iter()
                .filter_map(|frame| match serde_json::from_str(frame) {
                    Ok(ServerMsg::MessagePosted { message }) => Some(message.text),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            _ => panic!("frames to take"),
        };
        let local = LocalMembers::new(false, 100);
        let (socket, _client) = crate::websocket::Socket::loopback().await;
        let (handle, outbox) = ConnHandle::new(1, 64);
        outbox.write_for_the_task(socket.writer().expect("a second descriptor"));
        local.add(1, "busy".into(), handle);
        let noted = Arc::new(Noted(AtomicBool::new(false)));
        let waker = Waker::from(noted.clone());
        assert!(outbox.poll_take(&mut Context::from_waker(&waker)).is_pending());
        local.deliver(&posted("one", false));
        assert!(noted.0.swap(false, Ordering::SeqCst), "the run's first frame wakes it");
        assert_eq!(texts(outbox.poll_take(&mut Context::from_waker(&waker))), ["one"]);
        // It waits on something else now, never parked: the run grows on the drainer's list.
        assert!(outbox.poll_take(&mut Context::from_waker(&waker)).is_pending());
        local.deliver(&posted("two", false));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(noted.0.load(Ordering::SeqCst), "woken for the grown run");
        assert_eq!(texts(outbox.poll_take(&mut Context::from_waker(&waker))), ["two"]);
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
