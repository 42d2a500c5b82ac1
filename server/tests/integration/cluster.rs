//! Cluster mode: several nodes (each a real server with its own state) sharing one real
//! Postgres and one real `redis-server`, started by the tests (`services`). What one node's
//! moderators decide holds on every node; Redis failing degrades a node without stopping it.

use crate::{
    services::{Balancer, Postgres, Redis},
    support::{TestServer, config, eventually, run, session_for},
};
use app::protocol::{BanTarget, ClientMsg, ErrorCode, ModAction, ServerMsg, close};
use server::config::Config;
use std::{net::IpAddr, time::Duration};
use tokio::time::Instant;

/// How soon a decision on one node must hold on the others.
const EVERYWHERE: Duration = Duration::from_secs(1);

async fn node(name: &str, database: &str, redis: &Redis) -> TestServer {
    node_with(name, database, redis, |_| {}).await
}

pub(crate) async fn node_with(
    name: &str,
    database: &str,
    redis: &Redis,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let mut config = config();
    adjust(&mut config);
    config.database_url = Some(database.to_owned());
    config.redis_url = Some(redis.url());
    config.node_id = Some(name.to_owned());
    let server = TestServer::with(config).await;
    // Started (Postgres migrated, Redis reached, subscribed) and healthy.
    eventually(Duration::from_secs(10), "the node starts", || async { server.health().await["status"] == "ok" }).await;
    server
}

/// Two nodes that trust the balancer, and haproxy (`deploy/haproxy.cfg`) in front of them
/// spreading sockets with `balance`.
async fn behind_the_balancer(balance: &str) -> (Redis, TestServer, TestServer, Balancer) {
    let (database, redis) = (Postgres::shared().database().await, Redis::start());
    let trust_the_balancer = |config: &mut Config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    };
    let a = node_with("a", &database, &redis, trust_the_balancer).await;
    let b = node_with("b", &database, &redis, trust_the_balancer).await;
    let balancer = Balancer::start(&[a.addr, b.addr], balance);
    (redis, a, b, balancer)
}

/// Signs in through `a`; the cookie, once `b` takes it too.
async fn sign_in_everywhere(a: &TestServer, b: &TestServer) -> String {
    let cookie = a.sign_in().await;
    eventually(EVERYWHERE, "the session reaches the other node", || async {
        b.moderate(Some(&cookie), &ModAction::ResolveReport { id: 0 }).await.status != 403
    })
    .await;
    cookie
}

fn ban_hash(hash: &str, reason: &str) -> ModAction {
    ModAction::Ban {
        target: BanTarget::Hash { hash: hash.to_owned() },
        reason: reason.to_owned(),
        duration_secs: Some(0),
    }
}

/// A moderator signs in through node A; the cookie works on node B. A ban decided on A closes
/// the address's socket on B within a second and B refuses its upgrades; the address hash
/// means the same on both (one key, kept in Postgres). Lifting it on A frees it on B.
#[test]
fn a_ban_on_one_node_closes_sockets_and_refuses_upgrades_on_another() {
    run(async {
        let (database, redis) = (Postgres::shared().database().await, Redis::start());
        let a = node("a", &database, &redis).await;
        let b = node("b", &database, &redis).await;
        let (mut raider, _) = b.member("lobby", "raider").await;
        // Signed in through A, a moderator on B: B's console shows B's members.
        let cookie = sign_in_everywhere(&a, &b).await;
        let snapshot = b.mod_snapshot(&cookie).await;
        let hash = snapshot
            .rooms
            .iter()
            .flat_map(|r| &r.members)
            .find(|m| m.nickname == "raider")
            .expect("on B")
            .ip_hash
            .clone();

        let started = Instant::now();
        assert_eq!(a.must_moderate(&cookie, &ban_hash(&hash, "raid from B")).await, "Banned for good.");
        let frame = raider.closed().await.expect("a close frame");
        assert!(started.elapsed() < EVERYWHERE, "closed after {:?}", started.elapsed());
        assert_eq!(u16::from(frame.code), close::BANNED);
        assert!(frame.reason.contains("raid from B"), "{}", frame.reason);
        let (status, body) = b.connect_as(&[]).await.err().expect("refused at B's upgrade");
        assert_eq!((status, body.as_str()), (403, "You are banned for good. Reason: raid from B"));

        let id = a.mod_snapshot(&cookie).await.bans[0].id;
        assert_eq!(a.must_moderate(&cookie, &ModAction::Unban { id }).await, "The ban is lifted.");
        eventually(EVERYWHERE, "the ban is lifted on B", || async { b.connect_as(&[]).await.is_ok() }).await;
        let health = b.health().await;
        assert_eq!((health["status"].as_str(), health["cluster"]["node"].as_str()), (Some("ok"), Some("b")));
    });
}

/// Redis killed: sockets stay open, the node says `degraded` with the reason, moderators can
/// still ban (the ban is in Postgres). Redis back, empty: within 5 s each node is subscribed
/// again, healthy, and holds the bans decided while it could not hear them.
#[test]
fn redis_killed_degrades_the_nodes_and_they_catch_up_when_it_returns() {
    run(async {
        let (database, mut redis) = (Postgres::shared().database().await, Redis::start());
        let a = node("a", &database, &redis).await;
        let b = node("b", &database, &redis).await;
        let cookie = sign_in_everywhere(&a, &b).await;
        let (mut someone, _) = b.member("lobby", "someone").await;
        let snapshot = b.mod_snapshot(&cookie).await;
        let hash = snapshot
            .rooms
            .iter()
            .flat_map(|r| &r.members)
            .find(|m| m.nickname == "someone")
            .expect("on B")
            .ip_hash
            .clone();

        redis.kill();
        for server in [&a, &b] {
            eventually(Duration::from_secs(5), "degraded", || async { server.health().await["status"] == "degraded" })
                .await;
            let health = server.health().await;
            assert!(health["cluster"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{health}");
        }
        // The socket stays open; a message cannot be numbered without Redis: refused at once,
        // retryable, nothing posted (the browser keeps it and sends it again).
        let started = Instant::now();
        let refused = someone.say("still here", "s1").await.expect_err("no numbers without Redis");
        assert_eq!(refused.code, ErrorCode::Unavailable);
        assert!(refused.retry_after_ms.is_some());
        assert!(started.elapsed() < Duration::from_secs(1), "refused after {:?}", started.elapsed());

        // Decided on A while B cannot hear it: stored, not yet known on B.
        let started = Instant::now();
        assert_eq!(a.must_moderate(&cookie, &ban_hash(&hash, "during the outage")).await, "Banned for good.");
        assert!(started.elapsed() < Duration::from_secs(2), "no hang: {:?}", started.elapsed());

        redis.restart_empty();
        let back = eventually(Duration::from_secs(5), "healthy again", || async {
            a.health().await["status"] == "ok" && b.health().await["status"] == "ok"
        })
        .await;
        eprintln!("both nodes healthy {back:?} after Redis came back");
        let frame = someone.closed().await.expect("closed once B caught up");
        assert_eq!(u16::from(frame.code), close::BANNED);
        assert!(b.connect_as(&[]).await.is_err(), "B refuses the banned address");
    });
}

/// Redis hung (SIGSTOP): every call gives up within its deadline, so signing in and banning
/// answer at once; the silent subscription is noticed. Thawed, all is well again.
#[test]
fn redis_hung_never_hangs_a_node() {
    run(async {
        let (database, redis) = (Postgres::shared().database().await, Redis::start());
        let a = node("a", &database, &redis).await;
        redis.freeze();
        let started = Instant::now();
        let cookie = a.sign_in().await;
        assert!(started.elapsed() < Duration::from_secs(2), "sign-in took {:?}", started.elapsed());
        // A join needs Redis's decision: refused within the call deadline, retryable.
        let mut member = a.client().await;
        let started = Instant::now();
        let refused = member.join("lobby", "patient", &session_for("patient"), None).await.expect_err("no Redis");
        assert_eq!(refused.code, ErrorCode::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(1), "refused after {:?}", started.elapsed());
        eventually(Duration::from_secs(6), "degraded", || async { a.health().await["status"] == "degraded" }).await;
        let started = Instant::now();
        let banned = a.must_moderate(&cookie, &ban_hash("0123456789abcdef01234567", "someone else")).await;
        assert_eq!(banned, "Banned for good.");
        assert!(started.elapsed() < Duration::from_secs(2), "the ban took {:?}", started.elapsed());
        redis.thaw();
        eventually(Duration::from_secs(5), "healthy again", || async { a.health().await["status"] == "ok" }).await;
        member.join("lobby", "patient", &session_for("patient"), None).await.expect("joined once Redis answers");
        member.say("hello", "h1").await.expect("posted");
    });
}

/// The load balancer from `deploy/` (a real haproxy) in front of two nodes that trust it:
/// WebSockets pass through to both nodes in turn; each node sees the visitor's own address (a
/// forged `X-Forwarded-For` changes nothing), so a ban of that address through one node closes
/// its sockets on both and refuses it at both, while its neighbour is untouched.
#[test]
fn behind_the_balancer_every_node_sees_and_bans_the_visitors_own_address() {
    run(async {
        let (_redis, a, b, balancer) = behind_the_balancer("roundrobin").await;
        let site = TestServer::attach(balancer.addr);
        let (raider, neighbour): (IpAddr, IpAddr) =
            ("127.0.0.7".parse().expect("ip"), "127.0.0.8".parse().expect("ip"));

        // Round robin: four sockets of the raider's land on both nodes, one of them forging
        // its address, one joined to the lobby.
        let mut sockets = Vec::new();
        for forged in [None, Some("203.0.113.9"), None, None] {
            let headers: Vec<(&str, &str)> = forged.map(|f| ("x-forwarded-for", f)).into_iter().collect();
            sockets.push(site.client_from(raider, &headers).await.expect("through the balancer"));
        }
        sockets[0].join("lobby", "raider", &crate::support::session_for("raider"), None).await.expect("joined");
        let mut next_door = site.client_from(neighbour, &[("x-forwarded-for", "127.0.0.7")]).await.expect("neighbour");
        for node in [&a, &b] {
            let health = node.health().await;
            assert!(health["connections"].as_u64().is_some_and(|n| n >= 1), "both nodes took sockets: {health}");
        }

        // The moderator signs in and acts through the balancer too (whichever node answers).
        let cookie = site.sign_in().await;
        eventually(EVERYWHERE, "signed in on every node", || async {
            a.moderate(Some(&cookie), &ModAction::ResolveReport { id: 0 }).await.status != 403
                && b.moderate(Some(&cookie), &ModAction::ResolveReport { id: 0 }).await.status != 403
        })
        .await;
        let ban = ModAction::Ban {
            target: BanTarget::Address { address: raider.to_string() },
            reason: "raid through the front door".into(),
            duration_secs: Some(0),
        };
        assert_eq!(site.must_moderate(&cookie, &ban).await, "Banned for good.");
        let started = tokio::time::Instant::now();
        for socket in &mut sockets {
            let frame = socket.closed().await.expect("a close frame");
            assert_eq!(u16::from(frame.code), close::BANNED);
        }
        assert!(started.elapsed() < EVERYWHERE, "all closed after {:?}", started.elapsed());
        for _ in 0..4 {
            let (status, _) = site.client_from(raider, &[]).await.err().expect("refused at every node");
            assert_eq!(status, 403);
        }
        // The neighbour, who claimed to be the raider, was never the raider.
        next_door.send(&ClientMsg::WatchDirectory {}).await;
        next_door.recv_until(|m| matches!(m, ServerMsg::Directory { .. })).await;
        drop(balancer);
    });
}

/// Balanced on the room a socket names (`deploy/nodes.example.cfg`): every socket for one room
/// lands on one node, so only that node listens to the room's messages; sockets that name no
/// room (the directory, the console) still spread over the nodes.
#[test]
fn behind_the_balancer_a_rooms_members_meet_on_one_node() {
    run(async {
        let (_redis, a, b, balancer) = behind_the_balancer("url_param room").await;
        let site = TestServer::attach(balancer.addr);
        let origin = site.origin();
        let mut members = Vec::new();
        for n in 0..4 {
            let mut member =
                site.connect_with(Some(&origin), "/ws?v=1&room=lobby").await.expect("through the balancer");
            member.recv_until(|m| matches!(m, ServerMsg::Welcome { .. })).await;
            let nickname = format!("member{n}");
            member.join("lobby", &nickname, &crate::support::session_for(&nickname), None).await.expect("joined");
            members.push(member);
        }
        let counts = [a.health().await["connections"].as_u64(), b.health().await["connections"].as_u64()];
        assert!(counts == [Some(4), Some(0)] || counts == [Some(0), Some(4)], "one node has them all: {counts:?}");
        let mut others = Vec::new();
        for _ in 0..4 {
            others.push(site.connect_with(Some(&origin), "/ws?v=1").await.expect("through the balancer"));
        }
        let counts = [a.health().await["connections"].as_u64(), b.health().await["connections"].as_u64()];
        let [on_a, on_b] = counts.map(Option::unwrap_or_default);
        assert_eq!(on_a + on_b, 8, "{counts:?}");
        assert!(on_a.min(on_b) >= 2, "sockets naming no room go round: {counts:?}");
        drop((members, others, balancer));
    });
}
