use super::*;
use crate::{broker::MemoryBroker, outbox::Outbox};
use app::protocol::{Continuity, ErrorCode, Profanity, Resume, close};
use std::{sync::Barrier, thread};

fn hub() -> Hub {
    Hub::new(
        HubConfig { max_room_limit: 1000, lobby_limit: 1000, room_expiry: Duration::from_secs(60), max_rooms: 100 },
        Arc::new(MemoryBroker),
        None,
    )
}

/// What a refusal comes down to for a program: its code.
fn code<T>(result: Result<T, Refusal>) -> Result<T, ErrorCode> {
    result.map_err(|refusal| refusal.code())
}

struct Client {
    handle: ConnHandle,
    outbox: Outbox,
}

static IDS: AtomicU64 = AtomicU64::new(1);

fn client(capacity: usize) -> Client {
    let (handle, outbox) = ConnHandle::new(IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed), capacity);
    Client { handle, outbox }
}

impl Client {
    fn frames(&mut self) -> Vec<ServerMsg> {
        let mut out = Vec::new();
        while let Some(frame) = self.outbox.pop() {
            out.push(serde_json::from_str(frame.as_str()).expect("server frames parse"));
        }
        out
    }

    fn texts(&mut self) -> Vec<String> {
        self.frames()
            .into_iter()
            .filter_map(|m| match m {
                ServerMsg::MessagePosted { message } => Some(message.text),
                _ => None,
            })
            .collect()
    }
}

fn join<'a>(nickname: &'a str, session: &'a str) -> JoinRequest<'a> {
    JoinRequest {
        nickname,
        session,
        resume: None,
        ip: TEST_IP,
        ip_hash: "0123456789abcdef01234567".into(),
        bridge: false,
    }
}

const TEST_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

/// A listed room, by its slug.
fn create(hub: &Hub, name: &str, limit: u32, one_way: bool) -> Result<Arc<str>, ErrorCode> {
    let request = NewRoom { name: name.into(), limit, one_way, listed: true, profanity: Profanity::Mask };
    code(hub.create_room(request).map(|room| room.slug.clone()))
}

const S1: &str = "session-one-0123456789";
const S2: &str = "session-two-0123456789";
const S3: &str = "session-three-012345678";

#[test]
fn rooms_get_unique_slugs_and_names() {
    let hub = hub();
    let room = create(&hub, "Rust talk!", 10, false).expect("created");
    assert!(room.starts_with("rust-talk-"), "{room}");
    assert!(app::protocol::is_valid_slug(&room));
    assert_eq!(create(&hub, "RUST TALK!", 10, false), Err(ErrorCode::RoomNameTaken));
    assert_eq!(create(&hub, "Lobby", 10, false), Err(ErrorCode::RoomNameTaken));
    assert!(create(&hub, "日本語", 5, true).expect("created").starts_with("room-"));
    assert_eq!(create(&hub, "x", 1, false), Err(ErrorCode::LimitInvalid));
    assert_eq!(create(&hub, "y", 1001, false), Err(ErrorCode::LimitInvalid));
    let request = NewRoom { name: "z".into(), limit: 1001, one_way: false, listed: true, profanity: Profanity::Mask };
    let refused = hub.create_room(request).err().expect("refused");
    assert!(refused.sentence().contains("from 2 to 1000"), "{}", refused.sentence());
    assert_eq!(create(&hub, "bad\u{202E}name", 5, false), Err(ErrorCode::RoomNameInvalid));
}

#[test]
fn the_participant_limit_is_exact_under_a_join_storm() {
    let hub = Arc::new(hub());
    let room = create(&hub, "Storm", 10, false).expect("created");
    let barrier = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let (hub, barrier, slug) = (hub.clone(), barrier.clone(), room.clone());
            thread::spawn(move || {
                let c = client(64);
                let session = format!("storm-session-{i:08}");
                let nickname = format!("person{i}");
                barrier.wait();
                hub.join(&slug, &c.handle, join(&nickname, &session)).ok().map(|m| (m, c))
            })
        })
        .collect();
    let admitted: Vec<_> = threads.into_iter().filter_map(|t| t.join().expect("thread")).collect();
    assert_eq!(admitted.len(), 10);
    assert_eq!(hub.room(&room).expect("room").member_count(), 10);
}

#[test]
fn nicknames_are_unique_by_confusable_key() {
    let hub = hub();
    let (a, b) = (client(16), client(16));
    let _alice = hub.join(LOBBY_SLUG, &a.handle, join("alice", S1)).expect("joined");
    for twin in ["ALICE", "аlice", "aIice"] {
        assert_eq!(
            code(hub.join(LOBBY_SLUG, &b.handle, join(twin, S2))).err(),
            Some(ErrorCode::NicknameTaken),
            "{twin}"
        );
    }
    assert_eq!(code(hub.join(LOBBY_SLUG, &b.handle, join("Admin", S2))).err(), Some(ErrorCode::NicknameReserved));
    assert_eq!(code(hub.join(LOBBY_SLUG, &b.handle, join("bob", "short"))).err(), Some(ErrorCode::SessionInvalid));
    assert_eq!(code(hub.join("nope", &b.handle, join("bob", S2))).err(), Some(ErrorCode::RoomNotFound));
}

#[test]
fn one_way_rooms_never_show_authors_their_own_messages() {
    let hub = hub();
    let room = create(&hub, "Confessions", 10, true).expect("created");
    let (mut author, mut first, mut second) = (client(64), client(64), client(64));
    let author_in = hub.join(&room, &author.handle, join("author", S1)).expect("joined");
    let _first_in = hub.join(&room, &first.handle, join("first", S2)).expect("joined");
    let _second_in = hub.join(&room, &second.handle, join("second", S3)).expect("joined");
    author.frames();
    first.frames();
    second.frames();

    let accepted = author_in.post("a secret".into(), Some("r1".into())).expect("posted");
    assert_eq!(author.texts(), Vec::<String>::new(), "not live");
    assert_eq!(first.texts(), vec!["a secret"]);
    assert_eq!(second.texts(), vec!["a secret"]);

    // Not in the history of a rejoin from the same tab either, fresh or resumed.
    drop(author_in);
    let mut again = client(64);
    let rejoined = hub.join(&room, &again.handle, join("author", S1)).expect("rejoined");
    let history = |frames: Vec<ServerMsg>| -> Vec<String> {
        frames
            .into_iter()
            .find_map(|m| match m {
                ServerMsg::Joined { history, .. } => Some(history.into_iter().map(|h| h.text).collect()),
                _ => None,
            })
            .expect("joined")
    };
    let frames = again.frames();
    let epoch = frames
        .iter()
        .find_map(|m| if let ServerMsg::Joined { epoch, .. } = m { Some(epoch.clone()) } else { None })
        .expect("joined");
    assert_eq!(history(frames), Vec::<String>::new());
    drop(rejoined);
    let mut resumed = client(64);
    let resume = Resume { epoch, seq: 0 };
    let rejoined =
        hub.join(&room, &resumed.handle, JoinRequest { resume: Some(&resume), ..join("author", S1) }).expect("resumed");
    assert_eq!(history(resumed.frames()), Vec::<String>::new(), "not in a resumed history either");
    drop(rejoined);
    let mut newcomer = client(64);
    let _n = hub.join(&room, &newcomer.handle, join("newcomer", "session-four-012345678")).expect("joined");
    assert_eq!(history(newcomer.frames()), vec!["a secret"]);
    assert_eq!(accepted.seq, 1);
}

#[test]
fn resends_with_the_same_reference_are_acknowledged_not_reposted() {
    let hub = hub();
    let (mut a, mut b) = (client(64), client(64));
    let a_in = hub.join(LOBBY_SLUG, &a.handle, join("a", S1)).expect("joined");
    let _b_in = hub.join(LOBBY_SLUG, &b.handle, join("b", S2)).expect("joined");
    b.frames();
    let first = a_in.post("once".into(), Some("ref-1".into())).expect("posted");
    // The room keeps the receipt; the posting policy asks for it before a resend costs anything
    // (see `policy::tests`).
    assert_eq!(a_in.receipt("ref-1"), Some(first));
    assert_eq!(a_in.receipt("ref-2"), None);
    assert_eq!(b.texts(), vec!["once"]);
    a.frames();
}

#[test]
fn a_rejoin_resumes_gap_free_or_says_what_happened() {
    let hub = hub();
    let (mut a, b) = (client(256), client(256));
    let a_in = hub.join(LOBBY_SLUG, &a.handle, join("a", S1)).expect("joined");
    let b_in = hub.join(LOBBY_SLUG, &b.handle, join("b", S2)).expect("joined");
    let epoch = a
        .frames()
        .into_iter()
        .find_map(|m| if let ServerMsg::Joined { epoch, .. } = m { Some(epoch) } else { None })
        .expect("joined");
    for i in 1..=3 {
        a_in.post(format!("m{i}"), None).expect("posted");
    }
    drop(b_in);
    let resumed = |seq: u64, epoch: &str| {
        let mut c = client(256);
        let resume = Resume { epoch: epoch.to_owned(), seq };
        let membership = hub.join(LOBBY_SLUG, &c.handle, JoinRequest { resume: Some(&resume), ..join("b", S2) });
        let joined = c.frames().into_iter().find_map(|m| match m {
            ServerMsg::Joined { continuity, history, .. } => {
                Some((continuity, history.into_iter().map(|h| h.seq).collect::<Vec<_>>()))
            }
            _ => None,
        });
        drop(membership);
        joined.expect("joined")
    };
    assert_eq!(resumed(1, &epoch), (Continuity::Resumed, vec![2, 3]));
    assert_eq!(resumed(3, &epoch), (Continuity::Resumed, vec![]));
    assert_eq!(resumed(1, "another-epoch"), (Continuity::Reset, vec![1, 2, 3]));
    for i in 4..=60 {
        a_in.post(format!("m{i}"), None).expect("posted");
    }
    let (continuity, seqs) = resumed(2, &epoch);
    assert_eq!(continuity, Continuity::Gap);
    assert_eq!(seqs.len(), 50);
    assert_eq!(seqs.first(), Some(&11));
}

#[test]
fn a_reconnecting_tab_replaces_its_ghost_quietly() {
    let hub = hub();
    let (ghost, mut other) = (client(64), client(64));
    let ghost_in = hub.join(LOBBY_SLUG, &ghost.handle, join("alice", S1)).expect("joined");
    let _other_in = hub.join(LOBBY_SLUG, &other.handle, join("bob", S2)).expect("joined");
    other.frames();
    let fresh = client(64);
    let fresh_in = hub.join(LOBBY_SLUG, &fresh.handle, join("Alice", S1)).expect("replaces the ghost");
    assert_eq!(fresh_in.member_id, ghost_in.member_id, "same member, new connection");
    assert_eq!(ghost.outbox.closing().map(|r| r.code), Some(close::REPLACED));
    assert!(other.frames().is_empty(), "no leave/join churn for the others");
    drop(ghost_in);
    assert_eq!(hub.room(LOBBY_SLUG).expect("lobby").member_count(), 2, "the ghost's leave is a no-op");
}

/// A joiner in a big room hears of the newest members only (itself among them) and of how many
/// there are: what a join writes does not grow with the room.
#[test]
fn a_big_room_lists_its_newest_members_and_counts_them_all() {
    let hub = hub();
    let room = create(&hub, "Big", 1000, false).expect("created");
    let mut people: Vec<_> = (0..150)
        .map(|i| {
            let c = client(256);
            let joined = hub.join(&room, &c.handle, join(&format!("person{i}"), &format!("session-{i:016}")));
            (joined.expect("joined"), c)
        })
        .collect();
    let listed = |c: &mut Client| {
        c.frames()
            .into_iter()
            .find_map(|m| match m {
                ServerMsg::Joined { room, you, members, .. } => Some((room.members, you.nickname, members)),
                _ => None,
            })
            .expect("a joined")
    };
    let (mut newest, mut first) = (client(256), client(256));
    let (count, you, members) = listed(&mut people.last_mut().expect("the last").1);
    assert_eq!((count, you.as_str()), (150, "person149"));
    let names: Vec<&str> = members.iter().map(|m| m.nickname.as_str()).collect();
    assert_eq!(names.len(), app::protocol::MEMBERS_LISTED);
    assert_eq!((names[0], names[99]), ("person50", "person149"), "the newest, in join order");
    // The first member's tab comes back on another connection: it is listed though it is the
    // oldest, and the newest 99 others with it.
    hub.join(&room, &first.handle, join("person0", &format!("session-{:016}", 0))).expect("back");
    let (count, you, members) = listed(&mut first);
    assert_eq!((count, you.as_str(), members.len()), (150, "person0", 100));
    assert_eq!((members[0].nickname.as_str(), members[1].nickname.as_str()), ("person0", "person51"));
    // At the edge: a room of 100 lists everyone, a room of 101 all but its oldest.
    for (size, first_listed) in [(100, "edge100-0"), (101, "edge101-1")] {
        let edge = create(&hub, &format!("Edge {size}"), 1000, false).expect("created");
        // Memberships kept: one dropped is a member gone.
        let mut here: Vec<_> = (0..size)
            .map(|i| {
                let c = client(256);
                let name = format!("edge{size}-{i}");
                let joined = hub.join(&edge, &c.handle, join(&name, &format!("edge-session-{size}-{i:08}")));
                (joined.expect("joined"), c)
            })
            .collect();
        let (count, _, members) = listed(&mut here.last_mut().expect("the newest").1);
        assert_eq!((count as usize, members.len()), (size, 100), "a room of {size}");
        assert_eq!(members[0].nickname, first_listed, "a room of {size}");
    }
    // In a small room everyone is listed.
    let small = create(&hub, "Small", 10, false).expect("created");
    let _alice = hub.join(&small, &client(16).handle, join("alice", S1)).expect("joined");
    let _bob = hub.join(&small, &newest.handle, join("bob", S2)).expect("joined");
    let (count, _, members) = listed(&mut newest);
    assert_eq!((count, members.len()), (2, 2));
}

#[test]
fn the_members_a_joined_leaves_out_are_listed_a_page_at_a_time() {
    let hub = hub();
    let room = create(&hub, "Big", 1000, false).expect("created");
    // Memberships kept: one dropped is a member gone.
    let here: Vec<_> = (0..250)
        .map(|i| {
            let c = client(256);
            (hub.join(&room, &c.handle, join(&format!("person{i}"), &format!("session-{i:016}"))).expect("joined"), c)
        })
        .collect();
    let room = hub.room(&room).expect("the room");
    let names =
        |members: &[app::protocol::Member]| -> Vec<String> { members.iter().map(|m| m.nickname.clone()).collect() };
    let (all, more) = room.members_before(u64::MAX);
    assert_eq!((all.len(), more), (100, true), "a page is as long as a joined's list");
    assert_eq!((names(&all)[0].as_str(), names(&all)[99].as_str()), ("person150", "person249"));
    let (page, more) = room.members_before(all[0].id);
    assert_eq!((page.len(), more), (100, true));
    assert_eq!(
        (names(&page)[0].as_str(), names(&page)[99].as_str()),
        ("person50", "person149"),
        "the next older, in join order"
    );
    let (last, more) = room.members_before(page[0].id);
    assert_eq!((last.len(), more), (50, false), "the oldest, and nothing older");
    assert_eq!(names(&last)[0], "person0");
    assert_eq!(room.members_before(last[0].id), (vec![], false));
    drop(here);
}

/// Redis hands a replica the room's members from a hash, in no order; the replica keeps them in
/// join order (by id), which is what a `joined` lists the newest of.
#[test]
fn a_replica_keeps_a_snapshots_members_in_join_order() {
    let hub = hub();
    let room = hub.room(LOBBY_SLUG).expect("the lobby");
    let member = |id: u64| ReplicaMember {
        id,
        nickname: format!("person{id}"),
        session: format!("session-{id:016}").into(),
        ip: TEST_IP,
        ip_hash: "0123456789abcdef01234567".into(),
        joined_at: 0,
        shadow_muted: false,
        node: "a".into(),
        conn_id: id,
    };
    let snapshot = Snapshot {
        epoch: "e".into(),
        rev: 1,
        seq: 0,
        members: [7, 3, 12, 1, 5].into_iter().map(member).collect(),
        history: Vec::new(),
    };
    room.apply_snapshot(snapshot, "b");
    assert_eq!(room.members_on("a"), [1, 3, 5, 7, 12]);
    // A place older than the newest (a tab taking back a place this replica never had) goes
    // where its id puts it, so pages of the list stay in join order.
    assert!(room.apply_joined("e", 2, member(4), true, None));
    assert_eq!(room.members_on("a"), [1, 3, 4, 5, 7, 12]);
    let (page, more) = room.members_before(7);
    assert_eq!((page.iter().map(|m| m.id).collect::<Vec<_>>(), more), (vec![1, 3, 4, 5], false));
}

#[test]
fn a_member_that_stops_reading_is_dropped_and_the_room_goes_on() {
    let hub = hub();
    let (mut reader, stuck) = (client(1024), client(4));
    let reader_in = hub.join(LOBBY_SLUG, &reader.handle, join("reader", S1)).expect("joined");
    let _stuck_in = hub.join(LOBBY_SLUG, &stuck.handle, join("stuck", S2)).expect("joined");
    for i in 0..10 {
        reader_in.post(format!("m{i}"), None).expect("posted");
    }
    assert_eq!(stuck.outbox.closing().map(|r| r.code), Some(close::SLOW));
    assert_eq!(hub.room(LOBBY_SLUG).expect("lobby").member_count(), 1);
    let frames = reader.frames();
    assert_eq!(frames.iter().filter(|m| matches!(m, ServerMsg::MessagePosted { .. })).count(), 10);
    assert!(frames.iter().any(|m| matches!(m, ServerMsg::MemberLeft { member, .. } if member.nickname == "stuck")));
}

#[test]
fn empty_rooms_expire_and_the_lobby_stays() {
    let hub = hub();
    let room = create(&hub, "Brief", 5, false).expect("created");
    hub.expire_rooms(Instant::now());
    assert!(hub.room(&room).is_some(), "not yet");
    hub.expire_rooms(Instant::now() + Duration::from_secs(61));
    assert!(hub.room(&room).is_none());
    assert!(hub.room(LOBBY_SLUG).is_some());
    let c = client(4);
    assert_eq!(code(hub.join(&room, &c.handle, join("late", S1))).err(), Some(ErrorCode::RoomNotFound));
}

#[test]
fn messages_posted_at_once_from_many_threads_reach_every_member_in_one_order() {
    let hub = Arc::new(hub());
    let mut reader = client(4096);
    let _reader_in = hub.join(LOBBY_SLUG, &reader.handle, join("reader", S3)).expect("joined");
    reader.frames();
    let barrier = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (hub, barrier) = (hub.clone(), barrier.clone());
            thread::spawn(move || {
                let c = client(4096);
                let session = format!("writer-session-{w:08}");
                let member = hub.join(LOBBY_SLUG, &c.handle, join(&format!("writer{w}"), &session)).expect("joined");
                barrier.wait();
                for i in 0..200 {
                    member.post(format!("w{w} m{i}"), None).expect("posted");
                }
                (member, c)
            })
        })
        .collect();
    let _writers: Vec<_> = writers.into_iter().map(|t| t.join().expect("thread")).collect();
    let seqs: Vec<u64> = reader
        .frames()
        .into_iter()
        .filter_map(|m| if let ServerMsg::MessagePosted { message } = m { Some(message.seq) } else { None })
        .collect();
    assert_eq!(seqs, (1..=800).collect::<Vec<_>>(), "every message, in sequence order");
}

/// A broker that notes what it carries, then delivers as the memory engine does.
#[derive(Default)]
struct Recording(Mutex<Vec<(u64, &'static str)>>);

impl Broker for Recording {
    fn publish(&self, event: &crate::event::RoomEvent, here: &LocalMembers) {
        use crate::event::EventKind::*;
        let kind = match &event.kind {
            Posted { .. } => "posted",
            Joined { .. } => "joined",
            Left { .. } => "left",
            Kicked { .. } => "kicked",
            Typing { .. } => "typing",
            Deleted { .. } => "deleted",
            Edited { .. } => "edited",
            SettingsChanged { .. } => "settings",
            Closed { .. } => "closed",
        };
        self.0.lock().expect("recording").push((event.position.seq, kind));
        here.deliver(event);
    }
}

#[test]
fn every_room_event_goes_through_the_broker_with_its_position() {
    let recording = Arc::new(Recording::default());
    let hub = Hub::new(
        HubConfig { max_room_limit: 10, lobby_limit: 10, room_expiry: Duration::from_secs(60), max_rooms: 10 },
        recording.clone(),
        None,
    );
    let room = hub
        .create_room(NewRoom { name: "Seam".into(), limit: 5, one_way: false, listed: true, profanity: Profanity::Off })
        .expect("created");
    let (mut a, b, c) = (client(64), client(64), client(64));
    let a_in = hub.join(&room.slug, &a.handle, join("a", S1)).expect("joined");
    let b_in = hub.join(&room.slug, &b.handle, join("b", S2)).expect("joined");
    let c_in = hub.join(&room.slug, &c.handle, join("c", S3)).expect("joined");
    a_in.post("one".into(), None).expect("posted");
    a_in.post("two".into(), None).expect("posted");
    room.delete_message(1).expect("deleted");
    room.update_settings(|s| s.locked = true);
    room.kick(c_in.member_id, "enough").expect("kicked");
    drop(b_in);
    a.frames();
    assert!(hub.close_room(&room.slug, "closing time"));
    let seen = recording.0.lock().expect("recording").clone();
    assert_eq!(
        seen,
        [
            (0, "joined"),
            (0, "joined"),
            (0, "joined"),
            (1, "posted"),
            (2, "posted"),
            (2, "deleted"),
            (2, "settings"),
            (2, "kicked"),
            (2, "left"),
            (2, "closed"),
        ]
    );
    // Each node's last hop did what each event means for its connections.
    assert_eq!(c.outbox.closing().map(|r| (r.code, r.reason.into_owned())), Some((close::KICKED, "enough".into())));
    assert_eq!(a.outbox.closing().map(|r| r.code), Some(close::ROOM_CLOSED));
    drop((a_in, c_in));
}

#[test]
fn a_full_room_keeps_as_many_places_as_its_limit() {
    for limit in [1, 3, 100, 1000] {
        let mut list = Vec::new();
        for n in 0..limit {
            push_within(&mut list, n, limit);
        }
        assert_eq!(list.capacity(), limit as usize, "limit {limit}");
    }
    // Past the limit (a replica catching up) it still grows, by doubling.
    let mut list = Vec::new();
    for n in 0..1000 {
        push_within(&mut list, n, 10);
    }
    assert_eq!(list.len(), 1000);
    assert!(list.capacity() < 2000);
}
