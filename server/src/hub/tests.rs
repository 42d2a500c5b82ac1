use super::*;
use crate::outbox::Outbox;
use app::protocol::{Continuity, ErrorCode, Profanity, Resume, close};
use std::{sync::Barrier, thread};

fn hub() -> Hub {
    Hub::new(HubConfig {
        max_room_limit: 1000,
        lobby_limit: 1000,
        room_expiry: Duration::from_secs(60),
        max_rooms: 100,
    })
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
    JoinRequest { nickname, session, resume: None, ip: TEST_IP, ip_hash: "0123456789abcdef01234567".into() }
}

const TEST_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

/// A listed room, by its slug.
fn create(hub: &Hub, name: &str, limit: u32, one_way: bool) -> Result<Arc<str>, HubError> {
    let request = NewRoom { name: name.into(), limit, one_way, listed: true, profanity: Profanity::Mask };
    hub.create_room(request).map(|room| room.slug.clone())
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
    assert_eq!(create(&hub, "RUST TALK!", 10, false), Err(HubError::RoomNameTaken));
    assert_eq!(create(&hub, "Lobby", 10, false), Err(HubError::RoomNameTaken));
    assert!(create(&hub, "日本語", 5, true).expect("created").starts_with("room-"));
    assert_eq!(create(&hub, "x", 1, false), Err(HubError::LimitInvalid { max: 1000 }));
    assert_eq!(create(&hub, "y", 1001, false), Err(HubError::LimitInvalid { max: 1000 }));
    assert!(matches!(create(&hub, "bad\u{202E}name", 5, false), Err(HubError::RoomNameInvalid(_))));
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
        assert_eq!(hub.join(LOBBY_SLUG, &b.handle, join(twin, S2)).err(), Some(HubError::NicknameTaken), "{twin}");
    }
    assert_eq!(hub.join(LOBBY_SLUG, &b.handle, join("Admin", S2)).err(), Some(HubError::NicknameReserved));
    assert_eq!(hub.join(LOBBY_SLUG, &b.handle, join("bob", "short")).err(), Some(HubError::SessionInvalid));
    assert_eq!(hub.join("nope", &b.handle, join("bob", S2)).err(), Some(HubError::RoomNotFound));
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

    let accepted = author_in.post("a secret", Some("r1".into())).expect("posted");
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
    let first = a_in.post("once", Some("ref-1".into())).expect("posted");
    let again = a_in.post("once", Some("ref-1".into())).expect("acknowledged");
    assert_eq!(first, again);
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
        a_in.post(&format!("m{i}"), None).expect("posted");
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
        a_in.post(&format!("m{i}"), None).expect("posted");
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

#[test]
fn a_member_that_stops_reading_is_dropped_and_the_room_goes_on() {
    let hub = hub();
    let (mut reader, stuck) = (client(1024), client(4));
    let reader_in = hub.join(LOBBY_SLUG, &reader.handle, join("reader", S1)).expect("joined");
    let _stuck_in = hub.join(LOBBY_SLUG, &stuck.handle, join("stuck", S2)).expect("joined");
    for i in 0..10 {
        reader_in.post(&format!("m{i}"), None).expect("posted");
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
    assert_eq!(hub.join(&room, &c.handle, join("late", S1)).err(), Some(HubError::RoomNotFound));
    assert_eq!(HubError::RoomNotFound.code(), ErrorCode::RoomNotFound);
}
