//! Rooms shared by several nodes through one real `redis-server` (and one Postgres): one room
//! everywhere, one order of messages with one set of numbers, one member list, exact limits
//! under a join storm spread over three nodes, one-way rooms across nodes, resuming on another
//! node, and a killed node's members leaving.

use crate::{
    cluster::node_with,
    faults::spawn_binary_with,
    services::{Postgres, Redis},
    support::{Client, TestServer, eventually, run, session_for},
};
use app::protocol::{ClientMsg, Continuity, ErrorCode, LOBBY_SLUG, ModAction, Resume, RoomSummary, ServerMsg, close};
use server::config::Config;
use std::{collections::HashSet, time::Duration};
use tokio::time::Instant;

/// How soon a moderator's decision on one node must hold on the others.
const EVERYWHERE: Duration = Duration::from_secs(1);

async fn node(name: &str, database: &str, redis: &Redis) -> TestServer {
    node_with(name, database, redis, |_| {}).await
}

async fn two_nodes() -> (Redis, [TestServer; 2]) {
    let (database, redis) = (Postgres::shared().database().await, Redis::start());
    let a = node("a", &database, &redis).await;
    let b = node("b", &database, &redis).await;
    (redis, [a, b])
}

async fn three_nodes() -> (Redis, [TestServer; 3]) {
    let (database, redis) = (Postgres::shared().database().await, Redis::start());
    let a = node("a", &database, &redis).await;
    let b = node("b", &database, &redis).await;
    let c = node("c", &database, &redis).await;
    (redis, [a, b, c])
}

/// The directory as a node lists it.
async fn listed(server: &TestServer) -> Vec<RoomSummary> {
    let response = server.http("GET", "/api/rooms", None).await;
    serde_json::from_str(&response.body).expect("rooms JSON")
}

/// Waits until every node lists `slug` with `members` in it.
async fn everywhere_with(nodes: &[TestServer], slug: &str, members: u32) {
    for server in nodes {
        eventually(Duration::from_secs(2), &format!("{slug} lists {members} members on every node"), || async {
            listed(server).await.iter().any(|r| r.slug == slug && r.members == members)
        })
        .await;
    }
}

/// The texts and numbers of the next `n` messages a client receives.
async fn messages(client: &mut Client, n: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        if let ServerMsg::MessagePosted { message } =
            client.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await
        {
            seen.push((message.seq, message.text));
        }
    }
    seen
}

/// A room made on A exists on B and C with the same settings; members on all three see one
/// member list and each other's joins once; messages from every node arrive everywhere in one
/// order with the same numbers; a later joiner on C gets the history; a member who drops on B
/// resumes on C exactly after its last number.
#[test]
fn one_room_one_order_one_member_list_on_every_node() {
    run(async {
        let (_redis, nodes) = three_nodes().await;
        let [a, b, c] = &nodes;
        let room = a.create_room("Everywhere", 10, false).await;
        everywhere_with(&nodes, &room.slug, 0).await;
        // A look-alike of its name is taken on every node.
        for (server, name) in [(b, "EVERYWHERE"), (c, "Еverywhere")] {
            let taken = server.http("POST", "/api/create_room", Some(&format!("name={name}&limit=5"))).await;
            assert!(taken.body.contains(r#""code":"room_name_taken""#), "{name}: {}", taken.body);
        }
        let (mut ann, _) = a.member(&room.slug, "ann").await;
        let (mut bob, _) = b.member(&room.slug, "bob").await;
        let (mut cat, joined) = c.member(&room.slug, "cat").await;
        let names: HashSet<String> = joined.members.iter().map(|m| m.nickname.clone()).collect();
        assert_eq!(names, HashSet::from(["ann".into(), "bob".into(), "cat".into()]), "one member list");
        // A reader on each node, who only listens.
        let (mut read_a, _) = a.member(&room.slug, "read-a").await;
        let (mut read_b, _) = b.member(&room.slug, "read-b").await;
        let (mut read_c, _) = c.member(&room.slug, "read-c").await;
        // ann hears of everyone else once each, whatever node they joined through.
        for expected in ["bob", "cat", "read-a", "read-b", "read-c"] {
            let ServerMsg::MemberJoined { member, .. } =
                ann.recv_until(|m| matches!(m, ServerMsg::MemberJoined { .. })).await
            else {
                unreachable!()
            };
            assert_eq!(member.nickname, expected);
        }
        everywhere_with(&nodes, &room.slug, 6).await;
        // A look-alike nickname is taken cluster-wide.
        let mut copycat = b.client().await;
        let refused = copycat.join(&room.slug, "ANN", &session_for("copycat"), None).await.expect_err("taken");
        assert_eq!(refused.code, ErrorCode::NicknameTaken);

        // Messages from three nodes, one order: everyone receives the same sequence.
        for round in 0..3 {
            ann.say(&format!("ann {round}"), &format!("a{round}")).await.expect("posted on A");
            bob.say(&format!("bob {round}"), &format!("b{round}")).await.expect("posted on B");
            cat.say(&format!("cat {round}"), &format!("c{round}")).await.expect("posted on C");
        }
        let (seen_a, seen_b, seen_c) =
            (messages(&mut read_a, 9).await, messages(&mut read_b, 9).await, messages(&mut read_c, 9).await);
        assert_eq!(seen_a, seen_b);
        assert_eq!(seen_b, seen_c);
        assert_eq!(seen_a.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());

        // The author's receipt comes after its message, as in one process (a client moves its
        // last number forward on the receipt, so a message arriving after it would be dropped).
        ann.send(&ClientMsg::SendMessage { text: "in order".into(), client_ref: Some("order".into()) }).await;
        let first = ann
            .recv_until(|m| match m {
                ServerMsg::MessagePosted { message } => message.text == "in order",
                ServerMsg::MessageAccepted { client_ref, .. } => client_ref.as_deref() == Some("order"),
                _ => false,
            })
            .await;
        assert!(matches!(first, ServerMsg::MessagePosted { .. }), "the message first, then the receipt: {first:?}");
        ann.recv_until(|m| matches!(m, ServerMsg::MessageAccepted { .. })).await;
        for reader in [&mut read_a, &mut read_b, &mut read_c] {
            assert_eq!(messages(reader, 1).await[0], (10, "in order".to_owned()));
        }

        // A later joiner on C gets the history; bob drops on B and resumes on C.
        let (_, late) = c.member(&room.slug, "dee").await;
        assert_eq!(late.history.len(), 10);
        let epoch = late.epoch.clone();
        drop(bob);
        ann.say("while bob was away", "a-away").await.expect("posted");
        let mut back = c.client().await;
        let resumed = back
            .join(&room.slug, "bob", &session_for("bob"), Some(Resume { epoch, seq: 10 }))
            .await
            .expect("bob back, on C");
        assert_eq!(resumed.continuity, Continuity::Resumed);
        assert_eq!(resumed.history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["while bob was away"]);
        assert_eq!(resumed.history[0].seq, 11);
    });
}

/// A one-way room across nodes: the author on A gets the receipt and never the message (live,
/// or in history when it comes back through B); readers on B and C get it.
#[test]
fn one_way_holds_across_nodes() {
    run(async {
        let (_redis, nodes) = three_nodes().await;
        let [a, b, c] = &nodes;
        let room = a.create_room("Confessions", 10, true).await;
        everywhere_with(&nodes, &room.slug, 0).await;
        let (mut author, _) = a.member(&room.slug, "author").await;
        let (mut on_b, _) = b.member(&room.slug, "reader-b").await;
        let (mut on_c, _) = c.member(&room.slug, "reader-c").await;
        let (seq, _) = author.say("a secret", "s1").await.expect("receipt");
        assert_eq!(messages(&mut on_b, 1).await, [(seq, "a secret".to_owned())]);
        assert_eq!(messages(&mut on_c, 1).await, [(seq, "a secret".to_owned())]);
        on_b.say("an answer", "r1").await.expect("posted");
        assert_eq!(messages(&mut author, 1).await[0].1, "an answer", "the author sees others, not itself");
        drop(author);
        let mut again = b.client().await;
        let joined = again.join(&room.slug, "author", &session_for("author"), None).await.expect("back on B");
        assert_eq!(joined.history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["an answer"]);
    });
}

/// A join named in the socket's address is decided by Redis in a cluster, as a `join` frame is:
/// the member is seated on every node's count, and the room's members elsewhere hear of it.
#[test]
fn a_join_in_the_address_is_shared_across_nodes() {
    run(async {
        let (_redis, nodes) = two_nodes().await;
        let [a, b] = &nodes;
        let room = a.create_room("Front door", 10, false).await;
        everywhere_with(&nodes, &room.slug, 0).await;
        let (mut on_a, _) = a.member(&room.slug, "host").await;
        let path = format!("/ws?v=1&room={}&nickname=guest&session={}", room.slug, session_for("guest"));
        let mut guest = b.connect_with(Some(&b.origin()), &path).await.expect("upgraded");
        assert!(matches!(guest.recv().await, ServerMsg::Welcome { .. }));
        assert!(matches!(guest.recv().await, ServerMsg::Joined { you, .. } if you.nickname == "guest"));
        let joined = on_a.recv_until(|m| matches!(m, ServerMsg::MemberJoined { .. })).await;
        assert!(matches!(joined, ServerMsg::MemberJoined { member, count: 2 } if member.nickname == "guest"));
        everywhere_with(&nodes, &room.slug, 2).await;
    });
}

/// 300 joins racing on three nodes for a room of 50: exactly 50 get in, every node counts 50.
#[test]
fn three_hundred_joins_on_three_nodes_seat_exactly_the_limit() {
    run(async {
        let (_redis, nodes) = three_nodes().await;
        let room = nodes[0].create_room("Crowded", 50, false).await;
        everywhere_with(&nodes, &room.slug, 0).await;
        let mut clients = Vec::new();
        for i in 0..300 {
            clients.push(nodes[i % 3].client().await);
        }
        let joins = clients.into_iter().enumerate().map(|(i, mut client)| {
            let slug = room.slug.clone();
            tokio::spawn(async move {
                let nickname = format!("racer{i}");
                let result = client.join(&slug, &nickname, &session_for(&nickname), None).await;
                (result.map(|_| ()).map_err(|refusal| refusal.code), client)
            })
        });
        let results: Vec<_> =
            futures_util::future::join_all(joins).await.into_iter().map(|r| r.expect("task")).collect();
        let admitted = results.iter().filter(|(r, _)| r.is_ok()).count();
        let full = results.iter().filter(|(r, _)| *r == Err(ErrorCode::RoomFull)).count();
        assert_eq!((admitted, full), (50, 250), "exactly the limit, everyone else told it is full");
        everywhere_with(&nodes, &room.slug, 50).await;
    });
}

/// A node killed with SIGKILL: its members leave the room on the other nodes within 30 s, and
/// the others see them go; the room goes on. Its sockets stop counting against their address.
#[test]
fn a_killed_nodes_members_leave_everywhere() {
    run(async {
        let (database, redis) = (Postgres::shared().database().await, Redis::start());
        let a = node("a", &database, &redis).await;
        let data = tempfile::tempdir().expect("data dir");
        let settings = [
            ("BURNER_REDIS_URL", redis.url()),
            ("BURNER_DATABASE_URL", database.clone()),
            ("BURNER_NODE_ID", "doomed".to_owned()),
        ];
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (mut child, doomed) = spawn_binary_with(data.path(), &settings, None).await;
        let (mut watcher, _) = a.member(LOBBY_SLUG, "watcher").await;
        let mut victim = doomed.client().await;
        victim.join(LOBBY_SLUG, "victim", &session_for("victim"), None).await.expect("joined on the doomed node");
        watcher
            .recv_until(|m| matches!(m, ServerMsg::MemberJoined { member, .. } if member.nickname == "victim"))
            .await;
        assert_eq!(open_connections(&redis).await, 2, "both sockets count against 127.0.0.1");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let started = tokio::time::Instant::now();
        eventually(Duration::from_secs(30), "the killed node's member leaves the count", || async {
            listed(&a).await.iter().any(|r| r.slug == LOBBY_SLUG && r.members == 1)
        })
        .await;
        eprintln!("a killed node's member left after {:?}", started.elapsed());
        let left = watcher
            .recv_until(|m| matches!(m, ServerMsg::MemberLeft { member, .. } if member.nickname == "victim"))
            .await;
        assert!(matches!(left, ServerMsg::MemberLeft { count: 1, .. }), "{left:?}");
        watcher.say("still here", "w1").await.expect("the room goes on");
        eventually(Duration::from_secs(5), "the killed node's socket stops counting", || async {
            open_connections(&redis).await == 1
        })
        .await;
    });
}

/// Every address's open connections across the cluster, as Redis counts them.
async fn open_connections(redis: &Redis) -> u64 {
    let mut connection = inspect(redis).await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("burner:conns:*").query_async(&mut connection).await.expect("KEYS");
    let mut open = 0;
    for key in keys {
        let counts: Vec<u64> = redis::cmd("HVALS").arg(&key).query_async(&mut connection).await.expect("HVALS");
        open += counts.iter().sum::<u64>();
    }
    open
}

/// Redis restarted empty: the rooms come back (every node tells Redis of the rooms it has), the
/// members are asked to rejoin (a reconnect close code), and a member resuming learns that the
/// history is gone (a new epoch: `reset`), never a silently wrong history. The room goes on.
#[test]
fn redis_restarted_empty_the_rooms_come_back_with_a_new_epoch() {
    run(async {
        let (database, mut redis) = (Postgres::shared().database().await, Redis::start());
        let nodes = [node("a", &database, &redis).await, node("b", &database, &redis).await];
        let room = nodes[0].create_room("Survivors", 10, false).await;
        everywhere_with(&nodes, &room.slug, 0).await;
        let (mut member, joined) = nodes[1].member(&room.slug, "member").await;
        let (seq, _) = member.say("before", "m1").await.expect("posted");

        redis.restart_empty();
        let code = tokio::time::timeout(Duration::from_secs(8), member.close_code()).await.expect("closed in time");
        assert_eq!(code, Some(close::HEARTBEAT_TIMEOUT), "a reconnect code: the tab rejoins by itself");
        let mut again = nodes[0].client().await;
        let rejoined = eventually_joined(&mut again, &room.slug, Resume { epoch: joined.epoch.clone(), seq }).await;
        assert_eq!(rejoined.continuity, Continuity::Reset, "the history is gone, and the client is told");
        assert_ne!(rejoined.epoch, joined.epoch);
        again.say("after", "m2").await.expect("the room goes on");
        everywhere_with(&nodes, &room.slug, 1).await;
    });
}

/// Joins (retrying while the nodes catch up with a restarted Redis).
async fn eventually_joined(client: &mut Client, slug: &str, resume: Resume) -> crate::support::Joined {
    for _ in 0..50 {
        match client.join(slug, "member", &session_for("member"), Some(resume.clone())).await {
            Ok(joined) => return joined,
            Err(refusal) if refusal.code == ErrorCode::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(refusal) => panic!("join refused: {refusal:?}"),
        }
    }
    panic!("never joined");
}

/// An address cannot multiply its rate by spreading sockets over nodes: with 5 messages per
/// address, 3 through A and 2 through B use it up, and B refuses the next one although B alone
/// has seen only 2. Joins are counted the same way, and so are open connections: with a cap of
/// 6, the sixth socket spread over two nodes is the last, and a socket closed on one node makes
/// room on the other.
#[test]
fn per_address_limits_hold_across_nodes() {
    run(async {
        let (database, redis) = (Postgres::shared().database().await, Redis::start());
        let limited = |config: &mut Config| {
            config.message_burst_per_ip = 5;
            config.message_interval_per_ip = Duration::from_secs(60);
            config.join_burst_per_ip = 4;
            config.join_interval_per_ip = Duration::from_secs(60);
            config.max_connections_per_ip = 6;
        };
        let a = node_with("a", &database, &redis, limited).await;
        let b = node_with("b", &database, &redis, limited).await;
        let (mut on_a, _) = a.member(LOBBY_SLUG, "on-a").await;
        let (mut on_b, _) = b.member(LOBBY_SLUG, "on-b").await;
        for i in 0..3 {
            on_a.say(&format!("a{i}"), &format!("a{i}")).await.expect("within the address's rate");
        }
        for i in 0..2 {
            on_b.say(&format!("b{i}"), &format!("b{i}")).await.expect("within the address's rate");
        }
        let refused = on_b.say("one too many", "b2").await.expect_err("the address used its 5 on two nodes");
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused.retry_after_ms.is_some_and(|ms| ms > 0));
        // Two joins spent above; two more anywhere, then the third is refused wherever it goes.
        let (_third, _) = a.member(LOBBY_SLUG, "third").await;
        let (_fourth, _) = b.member(LOBBY_SLUG, "fourth").await;
        let mut fifth = a.client().await;
        let refused = fifth.join(LOBBY_SLUG, "fifth", &session_for("fifth"), None).await.expect_err("over");
        assert_eq!(refused.code, ErrorCode::RateLimited);

        // Five sockets open now (on-a, third and fifth on A; on-b and fourth on B): one more
        // anywhere, then none, although each node alone holds fewer than six.
        let sixth = b.client().await;
        let (status, body) = b.connect_as(&[]).await.map(|_| ()).expect_err("the address has 6 open on two nodes");
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("Too many connections"), "{body}");
        let (status, _) = a.connect_as(&[]).await.map(|_| ()).expect_err("and on A too");
        assert_eq!(status, 429);
        drop(fifth);
        eventually(Duration::from_secs(3), "a socket closed on A makes room on B", || async {
            b.connect_as(&[]).await.is_ok()
        })
        .await;
        drop(sixth);
    });
}

/// A moderator on node A deletes, kicks, locks and closes; members on node B feel each within
/// a second, and what Redis keeps agrees (a later joiner's history lacks the deleted message).
#[test]
fn moderators_decisions_on_one_node_hold_on_another_within_a_second() {
    run(async {
        let (_redis, nodes) = two_nodes().await;
        let [a, b] = &nodes;
        let cookie = a.sign_in().await;
        let room = a.create_room("Moderated", 10, false).await;
        everywhere_with(&nodes, &room.slug, 0).await;
        let (mut writer, _) = a.member(&room.slug, "writer").await;
        let (mut reader, _) = b.member(&room.slug, "reader").await;
        let (mut unruly, unruly_joined) = b.member(&room.slug, "unruly").await;

        let (seq, _) = writer.say("something hateful", "w1").await.expect("posted");
        reader.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        let started = Instant::now();
        let delete = ModAction::DeleteMessage { room: room.slug.clone(), seq, reason: "hateful".into() };
        a.must_moderate(&cookie, &delete).await;
        assert_eq!(
            reader.recv_until(|m| matches!(m, ServerMsg::MessageDeleted { .. })).await,
            ServerMsg::MessageDeleted { seq }
        );
        assert!(started.elapsed() < EVERYWHERE, "deleted on B after {:?}", started.elapsed());
        let (_, late) = b.member(&room.slug, "late").await;
        assert!(late.history.iter().all(|m| m.seq != seq), "Redis's history lost it too");

        let started = Instant::now();
        let kick = ModAction::Kick { room: room.slug.clone(), member: unruly_joined.you.id, reason: "enough".into() };
        a.must_moderate(&cookie, &kick).await;
        assert_eq!(unruly.close_code().await, Some(close::KICKED));
        assert!(started.elapsed() < EVERYWHERE, "kicked on B after {:?}", started.elapsed());
        reader.recv_until(|m| matches!(m, ServerMsg::MemberLeft { member, .. } if member.nickname == "unruly")).await;

        a.must_moderate(&cookie, &ModAction::LockRoom { room: room.slug.clone(), locked: true }).await;
        eventually(EVERYWHERE, "B refuses joins to the locked room", || async {
            let mut newcomer = b.client().await;
            newcomer
                .join(&room.slug, "newcomer", &session_for("newcomer"), None)
                .await
                .is_err_and(|r| r.code == ErrorCode::RoomLocked)
        })
        .await;

        let started = Instant::now();
        a.must_moderate(&cookie, &ModAction::CloseRoom { room: room.slug.clone(), reason: "closing time".into() })
            .await;
        assert_eq!(reader.close_code().await, Some(close::ROOM_CLOSED));
        assert!(started.elapsed() < EVERYWHERE, "closed on B after {:?}", started.elapsed());
        assert!(listed(b).await.iter().all(|r| r.slug != room.slug), "gone from B's directory");
    });
}

/// A room empty on every node expires everywhere (removed from Redis by one script, which only
/// removes a room nobody is in): it leaves every node's directory and cannot be joined; a room
/// occupied through another node does not expire.
#[test]
fn an_empty_room_expires_everywhere_and_one_occupied_elsewhere_does_not() {
    run(async {
        let (database, redis) = (Postgres::shared().database().await, Redis::start());
        let expiring = |config: &mut Config| config.room_expiry = Duration::from_millis(600);
        let nodes =
            [node_with("a", &database, &redis, expiring).await, node_with("b", &database, &redis, expiring).await];
        let [a, b] = &nodes;
        let empty = a.create_room("Short-lived", 10, false).await;
        let busy = a.create_room("Still talking", 10, false).await;
        everywhere_with(&nodes, &busy.slug, 0).await;
        // Someone stays in the busy room through B only: A sees it occupied through its replica.
        let (_stayer, _) = b.member(&busy.slug, "stayer").await;
        everywhere_with(&nodes, &busy.slug, 1).await;
        for server in &nodes {
            eventually(Duration::from_secs(10), "the empty room expires on every node", || async {
                listed(server).await.iter().all(|r| r.slug != empty.slug)
            })
            .await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        everywhere_with(&nodes, &busy.slug, 1).await;
        let mut late = a.client().await;
        let refused = late.join(&empty.slug, "late", &session_for("late"), None).await.expect_err("gone");
        assert_eq!(refused.code, ErrorCode::RoomNotFound);
    });
}

/// A connection to look at what Redis holds.
pub(crate) async fn inspect(redis: &Redis) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    client.get_multiplexed_async_connection().await.expect("Redis answers")
}

/// How many nodes listen to a room's own channel (its messages), as Redis counts them.
async fn listening_nodes(redis: &Redis, slug: &str) -> u64 {
    let mut connection = inspect(redis).await;
    let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("burner:room:{slug}"))
        .query_async(&mut connection)
        .await
        .expect("PUBSUB NUMSUB");
    counts.first().map_or(0, |(_, n)| *n)
}

/// A node carries only the messages of rooms its members are in: B, with nobody in the room,
/// does not listen to it, yet lists it, shows its page with the latest messages (read from
/// Redis), and a joiner on B gets the full history, including what was said while B was not
/// listening. B stops listening a few seconds after its last member leaves; its moderator
/// console still shows the room's latest messages, and a moderator through B can delete one B
/// never heard.
#[test]
fn a_node_listens_only_to_the_rooms_its_members_are_in() {
    run(async {
        let (redis, nodes) = two_nodes().await;
        let [a, b] = &nodes;
        let room = a.create_room("Only where needed", 10, false).await;
        let (mut ann, _) = a.member(&room.slug, "ann").await;
        ann.say("said before bob came", "a1").await.expect("posted");
        assert_eq!(listening_nodes(&redis, &room.slug).await, 1, "only A, where ann is");
        everywhere_with(&nodes, &room.slug, 1).await;
        let page = b.http("GET", &format!("/r/{}", room.slug), None).await;
        assert!(page.body.contains("said before bob came"), "B's room page shows the room's messages from Redis");

        let (mut bob, joined) = b.member(&room.slug, "bob").await;
        assert_eq!(listening_nodes(&redis, &room.slug).await, 2, "B listens once bob is in");
        assert_eq!(joined.history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["said before bob came"]);
        ann.say("bob hears this", "a2").await.expect("posted");
        assert_eq!(messages(&mut bob, 1).await, [(2, "bob hears this".to_owned())]);

        drop(bob);
        eventually(Duration::from_secs(12), "B stops listening once bob is gone", || async {
            listening_nodes(&redis, &room.slug).await == 1
        })
        .await;
        ann.say("said while B was not listening", "a3").await.expect("posted");
        // A moderator signed in through B deletes a message B never heard: Redis has it.
        let (seq, _) = ann.say("deleted through B", "a4").await.expect("posted");
        let cookie = b.sign_in().await;
        // B's console shows the room's latest messages all the same.
        let console = b.mod_snapshot(&cookie).await;
        let shown = console.rooms.iter().find(|r| r.room.slug == room.slug).expect("the room in B's console");
        assert_eq!(shown.recent.last().map(|m| m.text.as_str()), Some("deleted through B"));
        let delete = ModAction::DeleteMessage { room: room.slug.clone(), seq, reason: "through B".into() };
        b.must_moderate(&cookie, &delete).await;
        assert_eq!(
            ann.recv_until(|m| matches!(m, ServerMsg::MessageDeleted { .. })).await,
            ServerMsg::MessageDeleted { seq }
        );
        let (mut bob, joined) = b.member(&room.slug, "bob").await;
        let history: Vec<(u64, &str)> = joined.history.iter().map(|m| (m.seq, m.text.as_str())).collect();
        assert_eq!(
            history,
            [(1, "said before bob came"), (2, "bob hears this"), (3, "said while B was not listening")]
        );
        ann.say("and after", "a5").await.expect("posted");
        assert_eq!(messages(&mut bob, 1).await, [(5, "and after".to_owned())]);
    });
}
