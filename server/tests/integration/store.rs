//! The `Store` contract, checked against both implementations: the embedded SQLite file and a
//! real Postgres server (started by the tests, `services`). Each check is written once and run
//! on both, so the two stores cannot drift apart.

use crate::{services::Postgres, support::run};
use app::protocol::Profanity;
use server::{
    conn_log::{self, ConnLog},
    store::{AuditEntry, BanTarget, LogEvent, PostgresStore, Report, RoomRecord, SqliteStore, Store},
};
use std::{future::Future, net::IpAddr, sync::Arc};

const DAY: i64 = 86_400_000;

/// Runs `check` on a fresh SQLite store, then on a fresh Postgres database.
fn on_both<F, Fut>(check: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    run(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("burner.db")).await.expect("open sqlite");
        check(Arc::new(sqlite)).await;
        let url = Postgres::shared().database().await;
        let postgres = PostgresStore::open(&url).await.expect("open postgres");
        check(Arc::new(postgres)).await;
    });
}

#[test]
fn the_connection_log_is_searchable_and_forgets_old_rows() {
    on_both(|store| async move {
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        let opened = |key: &str, at| LogEvent::Opened {
            key: key.into(),
            at,
            ip,
            ip_hash: "aaaa1111".into(),
            user_agent: "ua".into(),
        };
        store
            .record(&[
                opened("old", 0),
                opened("new", 40 * DAY),
                // Written twice (a retried batch): still one connection.
                opened("new", 40 * DAY),
                LogEvent::Joined {
                    key: "new".into(),
                    at: 40 * DAY + 1,
                    room: "lobby".into(),
                    nickname: "alice".into(),
                },
                LogEvent::Joined { key: "new".into(), at: 40 * DAY + 5, room: "cats".into(), nickname: "al".into() },
                LogEvent::Closed { key: "new".into(), at: 40 * DAY + 9 },
            ])
            .await
            .expect("recorded");
        // Wildcards typed by a moderator are plain characters.
        for pattern in ["a_ice", "%", "_", "\\"] {
            assert!(store.search_connections(pattern, 10).await.expect("search").is_empty(), "{pattern}");
        }
        let by_nickname = store.search_connections("alic", 10).await.expect("search");
        assert_eq!(by_nickname.len(), 1);
        assert_eq!(
            by_nickname[0].joins,
            vec![
                (40 * DAY + 1, "lobby".to_owned(), "alice".to_owned()),
                (40 * DAY + 5, "cats".to_owned(), "al".to_owned())
            ]
        );
        assert_eq!(by_nickname[0].closed_at, Some(40 * DAY + 9));
        assert_eq!((by_nickname[0].ip.as_str(), by_nickname[0].user_agent.as_str()), ("203.0.113.7", "ua"));
        let by_hash = store.search_connections("aaaa", 10).await.expect("search");
        assert_eq!(by_hash.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["new", "old"], "newest first");
        assert_eq!(store.search_connections("203.0.113.7", 10).await.expect("search").len(), 2);
        assert_eq!(store.search_connections("", 1).await.expect("search").len(), 1, "the limit holds");
        // Closed in a later batch than it opened in.
        store.record(&[LogEvent::Closed { key: "old".into(), at: 3 }]).await.expect("recorded");
        let everyone = store.search_connections("", 10).await.expect("search");
        assert_eq!(everyone.iter().map(|c| c.closed_at).collect::<Vec<_>>(), [Some(40 * DAY + 9), Some(3)]);
        assert_eq!(store.forget_connections_before(10 * DAY).await.expect("forget"), 1);
        assert_eq!(store.search_connections("", 10).await.expect("search").len(), 1);
    });
}

#[test]
fn bans_persist_expire_and_lift() {
    on_both(|store| async move {
        let ip = BanTarget::Ip("198.51.100.1".parse().expect("ip"));
        let net = BanTarget::Net("2001:db8:1:2::/64".parse().expect("net"));
        let hash = BanTarget::Hash("0123456789abcdef01234567".into());
        let a = store.add_ban(&ip, "spam", 1_000, Some(5_000)).await.expect("ban");
        let b = store.add_ban(&net, "raid", 1_000, None).await.expect("ban");
        let c = store.add_ban(&hash, "", 1_500, None).await.expect("ban");
        assert!(a.id < b.id && b.id < c.id, "ids grow");
        assert_eq!(store.active_bans(2_000).await.expect("bans"), vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(store.active_bans(6_000).await.expect("bans"), vec![b.clone(), c.clone()], "expired");
        assert!(store.lift_ban(b.id, 7_000).await.expect("lift"));
        assert!(!store.lift_ban(b.id, 7_000).await.expect("lift"), "only once");
        assert!(!store.lift_ban(9_999, 7_000).await.expect("lift"), "no such ban");
        assert_eq!(store.active_bans(7_000).await.expect("bans"), vec![c]);
    });
}

#[test]
fn a_message_reported_twice_while_open_is_one_report() {
    on_both(|store| async move {
        let report = |seq, reporter: &str| Report {
            id: 0,
            at: 1_000,
            room: "lobby".into(),
            message_seq: seq,
            reporter_hash: reporter.into(),
            reason: "rude".into(),
            snapshot: "[]".into(),
            resolved_at: None,
        };
        let first = store.add_report(&report(7, "aaa")).await.expect("report");
        assert_eq!(store.add_report(&report(7, "aaa")).await.expect("report"), first, "same open report");
        let other = store.add_report(&report(7, "bbb")).await.expect("report");
        assert_ne!(other, first, "another reporter: another report");
        assert!(store.resolve_report(first, 2_000).await.expect("resolve"));
        assert!(!store.resolve_report(first, 2_000).await.expect("resolve"), "only once");
        let again = store.add_report(&report(7, "aaa")).await.expect("report");
        assert!(again != first && again != other, "a resolved report is not reopened");
        let listed = store.reports(10).await.expect("reports");
        // Open ones first, newest first; then resolved ones.
        assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [again, other, first]);
        assert_eq!(listed[2].resolved_at, Some(2_000));
        assert_eq!(listed[0].message_seq, 7);
        assert_eq!(store.reports(1).await.expect("reports").len(), 1);
    });
}

#[test]
fn the_audit_log_lists_newest_first() {
    on_both(|store| async move {
        for (at, action) in [(1, "ban"), (2, "kick"), (3, "close_room")] {
            let entry = AuditEntry {
                at,
                action: action.into(),
                target: "lobby".into(),
                reason: "why".into(),
                detail: "ünïcode ✓".into(),
            };
            store.audit(&entry).await.expect("audit");
        }
        let log = store.audit_log(2).await.expect("log");
        assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["close_room", "kick"]);
        assert_eq!(log[0].detail, "ünïcode ✓");
    });
}

#[test]
fn rooms_are_saved_updated_and_deleted() {
    on_both(|store| async move {
        let room = RoomRecord {
            slug: "cats-ab2cd".into(),
            name: "Cats".into(),
            limit: 50,
            one_way: true,
            listed: false,
            profanity: Profanity::Block,
            slow_mode_secs: 0,
            locked: false,
            created_at: 1_700_000_000_000,
        };
        store.save_room(&room).await.expect("save");
        assert_eq!(store.rooms().await.expect("rooms"), vec![room.clone()]);
        // Settings change; what the room is (name, limit, mode) does not.
        let changed = RoomRecord { slow_mode_secs: 30, locked: true, profanity: Profanity::Off, ..room.clone() };
        store.save_room(&RoomRecord { name: "Renamed".into(), limit: 3, ..changed.clone() }).await.expect("save");
        assert_eq!(store.rooms().await.expect("rooms"), vec![changed]);
        store.delete_room(&room.slug).await.expect("delete");
        assert!(store.rooms().await.expect("rooms").is_empty());
    });
}

/// Every node of a cluster hashes addresses with one key and accepts one token: the first node
/// to start makes them, the others read them.
#[test]
fn nodes_sharing_a_database_share_its_secrets() {
    run(async {
        let url = Postgres::shared().database().await;
        let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
        let (a, b) = (a.expect("first node"), b.expect("second node, migrating at the same time"));
        let first = a.shared_secret("key", || "made-by-a".into()).await.expect("secret");
        let second = b.shared_secret("key", || "made-by-b".into()).await.expect("secret");
        assert_eq!((first.as_str(), second.as_str()), ("made-by-a", "made-by-a"));
    });
}

#[test]
fn the_discord_bridge_keeps_links_an_ordered_bounded_outbox_and_one_mapping_per_message() {
    use server::store::{BridgedMessage, DiscordLink, GatewaySession};
    on_both(|store| async move {
        let link = |room: &str| DiscordLink {
            room: room.into(),
            channel_id: 600,
            channel_name: "general".into(),
            joins: false,
            created_at: 1,
            cursor: Some(("e1".into(), 4)),
        };
        // A job as the bridge writes it (`bridge::outbound::Job`).
        let post = |seq: u64| format!(r#"{{"kind":"post","epoch":"e1","seq":{seq},"author":"a","text":"t","at":0}}"#);
        store.save_discord_link(&link("lobby")).await.expect("linked");
        assert_eq!(store.discord_links().await.expect("links"), [link("lobby")]);

        // Queued in order; the cursor moves with each message; beyond the cap the oldest go.
        for seq in 5..=8 {
            let dropped = store.queue_discord("lobby", Some(("e1", seq)), &post(seq), 3, 2).await.expect("queued");
            assert_eq!(dropped, u64::from(seq == 8));
        }
        let queue = store.discord_queue("lobby", 10).await.expect("queue");
        assert_eq!(queue.iter().map(|j| j.job.clone()).collect::<Vec<_>>(), [post(6), post(7), post(8)]);
        assert_eq!(store.discord_links().await.expect("links")[0].cursor, Some(("e1".into(), 8)));

        // Done: out of the outbox and mapped, at once; a second mapping of that Discord id is a replay.
        let mapped = BridgedMessage {
            room: "lobby".into(),
            epoch: "e1".into(),
            seq: 6,
            discord_id: 1_320_000_000_000_000_001,
            channel_id: 600,
            author_id: 0,
            from_discord: false,
            at: 3,
        };
        store.finish_discord(queue[0].id, Some(&mapped)).await.expect("finished");
        assert_eq!(store.discord_queue("lobby", 10).await.expect("queue").len(), 2);
        assert_eq!(store.bridged_by_seq("lobby", "e1", 6).await.expect("by seq"), Some(mapped.clone()));
        assert_eq!(store.bridged_by_discord(mapped.discord_id).await.expect("by id"), Some(mapped.clone()));
        assert!(!store.map_discord(&BridgedMessage { seq: 9, ..mapped.clone() }).await.expect("replay"));

        // Mutes, and the gateway session.
        assert!(store.set_discord_mute("lobby", 66, Some("troll"), 4).await.expect("muted"));
        assert_eq!(store.discord_mutes().await.expect("mutes"), [("lobby".to_owned(), 66, "troll".to_owned())]);
        let session = GatewaySession { id: "s-1".into(), sequence: 7, resume_url: "ws://127.0.0.1:1/resume".into() };
        store.save_gateway_session(Some(&session)).await.expect("kept");
        assert_eq!(store.gateway_session().await.expect("session"), Some(session));

        // A post deleted before it crossed leaves the outbox; another room's jobs are its own.
        assert!(store.cancel_discord_post("lobby", "e1", 7).await.expect("cancelled"));
        assert!(!store.cancel_discord_post("lobby", "e1", 7).await.expect("gone already"));
        assert_eq!(store.discord_queue("lobby", 10).await.expect("queue").len(), 1);
        assert_eq!(store.queue_discord("cats", None, "not linked", 3, 5).await.expect("ignored"), 0);
        assert!(store.discord_queue("cats", 10).await.expect("queue").is_empty(), "only linked rooms queue");

        // Unlinking drops what waited and the mutes.
        assert!(store.delete_discord_link("lobby").await.expect("unlinked"));
        assert!(store.discord_queue("lobby", 10).await.expect("queue").is_empty());
        assert!(store.discord_mutes().await.expect("mutes").is_empty());
        assert!(!store.delete_discord_link("lobby").await.expect("nothing to unlink"));
    });
}

/// The log's writer waits a moment for more events before a transaction, but never when a
/// batch's worth is already there: with a wait of an hour, three full batches queued at once are
/// all written at once. (Waiting before every batch capped the writer below what busy servers
/// log, and the queue overflowed.)
#[test]
fn the_log_writer_waits_for_more_only_when_it_has_less_than_a_batch() {
    run(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("burner.db")).await.expect("open sqlite"));
        let (stop, tracker) = (tokio_util::sync::CancellationToken::new(), tokio_util::task::TaskTracker::new());
        let log = ConnLog::lingering(std::time::Duration::from_secs(3_600), store.clone(), stop.clone(), &tracker);
        let events = 3 * conn_log::BATCH;
        let ip: IpAddr = "198.51.100.7".parse().expect("ip");
        for conn_id in 0..events as u64 {
            log.opened(conn_id, ip, format!("{conn_id:0>24}"), "test".into());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let written = store.search_connections("", 10_000).await.expect("search").len();
            if written == events {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{written} of {events} events written");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    });
}

/// A writer that works but falls behind says so (the server then stops accepting connections
/// until it catches up, `serve`); one whose writes fail does not (a broken disk must not stop the
/// chat: its events are kept, then counted as dropped). Here the database is locked by another
/// connection: the writer waits for the lock (behind), gives up after SQLite's busy timeout
/// (failing, not behind), and once the lock goes writes everything (neither).
#[test]
fn the_log_is_behind_while_its_writer_waits_not_while_it_fails() {
    use sqlx::Connection;
    run(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("burner.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.expect("open sqlite"));
        let (stop, tracker) = (tokio_util::sync::CancellationToken::new(), tokio_util::task::TaskTracker::new());
        let log = ConnLog::start(store.clone(), stop.clone(), &tracker);
        assert!(!log.behind());
        let mut blocker =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.expect("second connection");
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut blocker).await.expect("write lock");
        let events = 12_000;
        let ip: IpAddr = "198.51.100.7".parse().expect("ip");
        for conn_id in 0..events as u64 {
            log.opened(conn_id, ip, format!("{conn_id:0>24}"), "test".into());
        }
        assert!(log.behind(), "{events} events wait for a writer that waits for the lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while log.health().error().is_none() {
            assert!(std::time::Instant::now() < deadline, "the writer never gave up on the lock");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!log.behind(), "a failing writer does not hold up new connections");
        sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("unlock");
        drop(blocker);
        loop {
            let written = store.search_connections("", 20_000).await.expect("search").len();
            if written == events {
                break;
            }
            assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(20), "{written} written");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(!log.behind());
        assert_eq!(log.health().dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    });
}

/// Every index of the connection log's tables is read by one of the log's statements as Postgres
/// plans them over a log of some size, with the arguments' values (the first executions of a
/// prepared statement) and without (the plan it may keep after): an index no statement reads
/// costs every visit a B-tree write and buys nothing. (The SQLite store's unit test
/// `every_index_of_the_connection_log_serves_a_query` does the same with SQLite's planner.)
#[test]
fn every_index_of_the_postgres_connection_log_serves_a_query() {
    use sqlx::{Connection, Row};
    use std::collections::BTreeSet;
    run(async {
        let url = Postgres::shared().database().await;
        PostgresStore::open(&url).await.expect("open postgres");
        let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
        // A visit a minute for two weeks, so the planner weighs an index against a scan as it
        // would on a server that has run a while.
        for statement in [
            "INSERT INTO connections (conn_key, opened_at, closed_at, ip, ip_hash, user_agent)
             SELECT 'boot-' || n, n * 60000, n * 60000 + 5000, '10.0.' || (n % 250) || '.' || (n / 250 % 250),
                    md5(n::text), 'test' FROM generate_series(1, 20000) n",
            "INSERT INTO connection_joins (conn_key, at, room, nickname)
             SELECT 'boot-' || n, n * 60000 + 1, 'room' || (n % 50), 'visitor' || (n % 5000)
             FROM generate_series(1, 20000) n",
            "ANALYZE",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut db).await.expect(statement);
        }
        let indexes: BTreeSet<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename IN ('connections', 'connection_joins')",
        )
        .fetch_all(&mut db)
        .await
        .expect("indexes")
        .into_iter()
        .collect();
        let [search, joins_of, forget_joins, forget_connections, close] = server::store::postgres_log_statements();
        // Arguments of the types the store binds: the search for an address, a hash prefix, a
        // nickname and everything; retention with a cutoff two days in.
        let search_types = "(text, text, bigint)";
        let runs = [
            (&search, search_types, "('10.0.7.1', '10.0.7.1', 50)"),
            (&search, search_types, "('c4ca', 'c4ca', 50)"),
            (&search, search_types, "('visitor12', 'visitor12', 50)"),
            (&search, search_types, "('', '', 50)"),
            (&joins_of, "(text[])", "(ARRAY['boot-1', 'boot-2'])"),
            (&forget_joins, "(bigint)", "(172800000)"),
            (&forget_connections, "(bigint)", "(172800000)"),
            (&close, "(text, bigint, text, bigint, text, text)", "('boot-1', 5, 'boot-2', 6, 'boot-1', 'boot-2')"),
        ];
        let mut read = BTreeSet::new();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            for (statement, types, arguments) in runs {
                let plan = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SET plan_cache_mode = {mode}; PREPARE planned{types} AS {statement};
                     EXPLAIN EXECUTE planned{arguments}; DEALLOCATE planned"
                )))
                .fetch_all(&mut db)
                .await
                .unwrap_or_else(|error| panic!("{statement} {arguments}: {error}"));
                for line in plan.iter().filter_map(|row| row.try_get::<String, _>(0).ok()) {
                    // `Index Scan [Backward] using NAME on …`, `Index Only Scan using NAME on …`,
                    // `Bitmap Index Scan on NAME`.
                    let index = match (line.split_once("Bitmap Index Scan on "), line.split_once(" using ")) {
                        (Some((_, rest)), _) => rest,
                        (None, Some((scan, rest))) if scan.contains("Index") => rest,
                        _ => continue,
                    };
                    read.extend(index.split_whitespace().next().map(str::to_owned));
                }
            }
        }
        assert_eq!(read, indexes, "indexes read by a statement / indexes written on every visit");
    });
}
