use super::*;
use crate::{
    broker::MemoryBroker,
    hub::{Hub, HubConfig, JoinRequest, NewRoom},
    outbox::{ConnHandle, Outbox},
};
use app::protocol::{ErrorCode, LOBBY_SLUG, Profanity, ServerMsg};
use std::{net::IpAddr, sync::Arc};

const ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

fn config() -> Config {
    let mut config = Config::defaults();
    config.message_burst = 3;
    config.message_interval = Duration::from_secs(10);
    config.message_burst_per_ip = 100;
    config.strikes_to_mute = 2;
    config.tries_while_muted = 2;
    config.repeats_allowed = 1;
    config
}

fn hub() -> Hub {
    let config =
        HubConfig { max_room_limit: 100, lobby_limit: 100, room_expiry: Duration::from_secs(60), max_rooms: 10 };
    Hub::new(config, Arc::new(MemoryBroker), None)
}

/// A member of `room` with its own connection.
fn member(hub: &Hub, room: &str, nickname: &str) -> (Membership, Outbox) {
    static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let (handle, outbox) = ConnHandle::new(IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed), 256);
    let session = format!("policy-test-session-{nickname}");
    let request = JoinRequest {
        bridge: false,
        nickname,
        session: &session,
        resume: None,
        ip: ADDRESS,
        ip_hash: "0123456789abcdef01234567".into(),
    };
    (hub.join(room, &handle, request).expect("joined"), outbox)
}

fn texts(outbox: &Outbox) -> Vec<String> {
    let mut texts = Vec::new();
    while let Some(frame) = outbox.pop() {
        if let Ok(ServerMsg::MessagePosted { message }) = serde_json::from_str(&frame) {
            texts.push(message.text);
        }
    }
    texts
}

fn code(result: Result<Posted, Denied>) -> Result<bool, ErrorCode> {
    match result {
        Ok(posted) => Ok(posted.resent),
        Err(Denied::Refused(refusal)) => Err(refusal.code()),
        Err(Denied::Disconnect(reason)) => panic!("disconnected: {reason:?}"),
    }
}

#[test]
fn each_refusal_in_its_order() {
    let (policy, hub) = (Policy::new(&config()), hub());
    let (alice, _) = member(&hub, LOBBY_SLUG, "alice");
    let mut sender = policy.sender(ADDRESS);
    let now = Instant::now();
    let post = |sender: &mut Sender, text: &str, client_ref: Option<&str>| {
        code(policy.post(sender, &alice, text, client_ref.map(str::to_owned), now))
    };
    // 1. A malformed reference before anything else: it costs nothing.
    assert_eq!(post(&mut sender, "hi", Some(&"r".repeat(65))), Err(ErrorCode::BadRequest));
    // 4. The message rules (after the rate: an empty message costs a token).
    assert_eq!(post(&mut sender, "  \n ", None), Err(ErrorCode::MessageEmpty));
    assert_eq!(post(&mut sender, &"x".repeat(2_001), None), Err(ErrorCode::TooLong));
    assert_eq!(post(&mut sender, "first", Some("r1")), Ok(false));
    // 3. Over the rate (the burst of three is spent).
    assert_eq!(post(&mut sender, "second", None), Err(ErrorCode::RateLimited));
    // 2. A resend is acknowledged even now: the receipt comes before the rate.
    assert_eq!(post(&mut sender, "first", Some("r1")), Ok(true));
    // Not waiting as told: a strike, then muted, then disconnected.
    assert_eq!(post(&mut sender, "third", None), Err(ErrorCode::RateLimited));
    assert_eq!(post(&mut sender, "third", None), Err(ErrorCode::Muted));
    assert_eq!(post(&mut sender, "third", None), Err(ErrorCode::Muted));
    assert!(
        matches!(policy.post(&mut sender, &alice, "third", None, now), Err(Denied::Disconnect(r)) if r.code == close::FLOOD)
    );
}

#[test]
fn filters_and_slow_mode_come_after_the_rate() {
    let (policy, hub) = (Policy::new(&config()), hub());
    let strict =
        NewRoom { name: "Strict".into(), limit: 10, one_way: false, listed: true, profanity: Profanity::Block };
    let room = hub.create_room(strict).expect("created");
    let (alice, _) = member(&hub, &room.slug, "alice");
    let mut sender = policy.sender(ADDRESS);
    let mut post = |text: &str| code(policy.post(&mut sender, &alice, text, None, Instant::now()));
    // 5. Links, profanity as the room chose, the same text again.
    assert_eq!(post("http://a.x http://b.x http://c.x http://d.x"), Err(ErrorCode::TooManyLinks));
    assert_eq!(post("what the fuck"), Err(ErrorCode::Profanity));
    assert_eq!(post("hello there"), Ok(false));
    let mut sender = policy.sender(ADDRESS);
    let mut post = |text: &str| code(policy.post(&mut sender, &alice, text, None, Instant::now()));
    assert_eq!(post("Hello   there!"), Err(ErrorCode::Spam), "the same text from the same address");
    // 6. Slow mode, the room's own last word.
    room.update_settings(|s| s.slow_mode_secs = 30);
    assert_eq!(post("something new"), Err(ErrorCode::SlowMode));
}

#[test]
fn a_resend_is_acknowledged_with_its_first_receipt_and_costs_nothing() {
    let (policy, hub) = (Policy::new(&config()), hub());
    let (alice, _) = member(&hub, LOBBY_SLUG, "alice");
    let (_bob, bob_outbox) = member(&hub, LOBBY_SLUG, "bob");
    texts(&bob_outbox);
    let mut sender = policy.sender(ADDRESS);
    let now = Instant::now();
    let first = policy.post(&mut sender, &alice, "once", Some("r1".into()), now).expect("posted");
    for _ in 0..10 {
        let again = policy.post(&mut sender, &alice, "once", Some("r1".into()), now).expect("acknowledged");
        assert_eq!((again.accepted, again.resent), (first.accepted, true));
    }
    assert_eq!(texts(&bob_outbox), ["once"], "posted once");
    // Ten resends spent none of the burst of three.
    assert!(policy.post(&mut sender, &alice, "two", None, now).is_ok());
    assert!(policy.post(&mut sender, &alice, "three", None, now).is_ok());
    assert!(policy.post(&mut sender, &alice, "four", None, now).is_err());
}

/// A stand-in for a bridge: one member of the room relaying the messages of outside authors,
/// each its own sender, keyed by the author's id on the other side.
struct BridgeDouble {
    membership: Membership,
    authors: std::collections::HashMap<u64, Sender>,
}

impl BridgeDouble {
    fn relay(&mut self, policy: &Policy, author: u64, text: &str) -> Result<bool, ErrorCode> {
        let sender = self.authors.entry(author).or_insert_with(|| policy.sender(IpKey::Other(author)));
        code(policy.post(sender, &self.membership, text, None, Instant::now()))
    }
}

#[test]
fn a_second_source_of_messages_is_refused_and_accepted_by_the_same_rules_as_a_socket() {
    let (policy, hub) = (Policy::new(&config()), hub());
    let (bridge, _) = member(&hub, LOBBY_SLUG, "bridge");
    let (socket_member, _) = member(&hub, LOBBY_SLUG, "carol");
    let (_reader, reader_outbox) = member(&hub, LOBBY_SLUG, "reader");
    texts(&reader_outbox);
    let mut bridge = BridgeDouble { membership: bridge, authors: Default::default() };
    let mut socket = policy.sender(ADDRESS);
    let mut from_socket = |text: &str| code(policy.post(&mut socket, &socket_member, text, None, Instant::now()));

    for (from_bridge, from_socket) in [
        (bridge.relay(&policy, 7, "hello from afar"), from_socket("hello from here")),
        (bridge.relay(&policy, 7, ""), from_socket("")),
        (bridge.relay(&policy, 7, "hello from afar"), from_socket("hello from here")),
        (bridge.relay(&policy, 7, "one more"), from_socket("one more too")),
    ] {
        assert_eq!(from_bridge, from_socket);
    }
    // The same outcomes, step by step: accepted, empty, repeated, over the burst of three.
    assert_eq!(bridge.relay(&policy, 8, "another author has a bucket of its own"), Ok(false));
    assert_eq!(texts(&reader_outbox), ["hello from afar", "hello from here", "another author has a bucket of its own"]);
    assert_eq!(bridge.relay(&policy, 7, "still over"), Err(ErrorCode::RateLimited));
}
