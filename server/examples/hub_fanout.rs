//! The hub's own cost of fan-out, without sockets: rooms of 100 members whose outboxes are
//! drained as they fill, messages posted one after another, on one thread. Prints nanoseconds
//! per delivery (the room lock, the event, encoding once, offering to every outbox), the best of
//! several runs, so the path from `Membership::post` to the outboxes can be compared before and
//! after a change on the same machine.
//!
//! cargo run --release -p server --example hub_fanout -- [MESSAGES, default 200000]

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

use app::protocol::Profanity;
use server::{
    broker::MemoryBroker,
    hub::{Hub, HubConfig, JoinRequest, NewRoom},
    outbox::{ConnHandle, Outbox},
};
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

const ROOM_SIZE: usize = 100;
const RUNS: usize = 5;

fn main() {
    let messages: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let config =
        HubConfig { max_room_limit: 1000, lobby_limit: 1000, room_expiry: Duration::from_secs(600), max_rooms: 100 };
    let hub = Hub::new(config, Arc::new(MemoryBroker), None);
    let room = hub
        .create_room(NewRoom {
            name: "Fan-out".into(),
            limit: 100,
            one_way: false,
            listed: true,
            profanity: Profanity::Off,
        })
        .expect("created");
    let mut outboxes: Vec<Outbox> = Vec::new();
    let mut members = Vec::new();
    for m in 0..ROOM_SIZE {
        let (handle, outbox) = ConnHandle::new(m as u64 + 1, 1024);
        let session = format!("hub-fanout-session-{m:08}");
        let nickname = format!("m{m}");
        let request = JoinRequest {
            bridge: false,
            nickname: &nickname,
            session: &session,
            resume: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip_hash: "0123456789abcdef01234567".into(),
        };
        members.push(hub.join(&room.slug, &handle, request).expect("joined"));
        outboxes.push(outbox);
    }
    let text = "x".repeat(100);
    let mut best = f64::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        for i in 0..messages {
            members[i % ROOM_SIZE].post(text.clone(), None).expect("posted");
            // Drain now and then, as socket tasks would: the queues never fill.
            if i % 256 == 255 {
                for outbox in &outboxes {
                    while outbox.pop().is_some() {}
                }
            }
        }
        let per_delivery = started.elapsed().as_nanos() as f64 / (messages * ROOM_SIZE) as f64;
        best = best.min(per_delivery);
        for outbox in &outboxes {
            while outbox.pop().is_some() {}
        }
    }
    println!(
        "room of {ROOM_SIZE}, {messages} messages of 100 bytes, best of {RUNS}: {best:.1} ns per delivery \
         ({:.0} deliveries/s on one core)",
        1e9 / best
    );
}
