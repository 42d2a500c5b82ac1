//! BAD-INPUTS "Faults" about durable data: restarts, crashes, a database that will not take
//! writes, and the connection log's retention.

use crate::support::{MOD_TOKEN, TestServer, config, eventually, run};
use app::protocol::{BanTarget, ClientMsg, ModAction, ServerMsg};
use server::store::{LogEvent, SqliteStore, Store};
use sqlx::Connection;
use std::{
    net::IpAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};
use tokio::time::Instant;

const DAY_MS: i64 = 86_400_000;

/// A ban, a locked room with slow mode, a report and the audit log outlive a restart.
#[test]
fn bans_reports_and_room_settings_survive_a_restart() {
    run(async {
        let data = tempfile::tempdir().expect("data dir");
        let mut config = config();
        config.data_dir = data.path().to_owned();

        let server = TestServer::with(config.clone()).await;
        let cookie = server.sign_in().await;
        let room = server.create_room_with("Kept", 7, true, "block").await;
        let (mut author, _) = server.member(&room.slug, "author").await;
        let (mut reader, _) = server.member(&room.slug, "reader").await;
        let (seq, _) = author.say("report me", "r1").await.expect("posted");
        reader.send(&ClientMsg::Report { seq, reason: "rude".into() }).await;
        reader.recv_until(|m| matches!(m, ServerMsg::Reported { .. })).await;
        server.must_moderate(&cookie, &ModAction::SlowMode { room: room.slug.clone(), seconds: 15 }).await;
        server.must_moderate(&cookie, &ModAction::LockRoom { room: "lobby".into(), locked: true }).await;
        server
            .must_moderate(
                &cookie,
                &ModAction::Ban {
                    target: BanTarget::Address { address: "127.0.0.1".into() },
                    reason: "kept across restarts".into(),
                    duration_secs: None,
                },
            )
            .await;
        drop((author, reader));
        server.stop().await;

        let server = TestServer::with(config).await;
        let (status, body) = server.connect_as(&[]).await.err().expect("still banned");
        assert_eq!(status, 403);
        assert!(body.contains("kept across restarts"), "{body}");
        let cookie = server.sign_in().await;
        let snapshot = server.mod_snapshot(&cookie).await;
        let kept = snapshot.rooms.iter().find(|r| r.room.slug == room.slug).expect("the room is back");
        assert_eq!((kept.room.name.as_str(), kept.room.limit, kept.room.one_way), ("Kept", 7, true));
        assert_eq!(kept.settings.slow_mode_secs, 15);
        assert_eq!(kept.settings.profanity, app::protocol::Profanity::Block);
        let lobby = snapshot.rooms.iter().find(|r| r.room.slug == "lobby").expect("lobby");
        assert!(lobby.settings.locked, "the lobby's settings too");
        assert_eq!(snapshot.reports.len(), 1);
        assert_eq!(snapshot.reports[0].snapshot[0].text, "report me");
        assert_eq!(snapshot.bans.len(), 1);
        for action in ["ban", "slow_mode", "lock", "sign_in"] {
            assert!(snapshot.audit.iter().any(|a| a.action == action), "{action} in {:?}", snapshot.audit);
        }
    });
}

/// The real binary, killed with SIGKILL mid-flight: what it had acknowledged is there after a
/// restart (SQLite's write-ahead log, synced at each commit the moderators were answered after).
#[test]
fn a_crash_loses_no_acknowledged_moderation_data() {
    run(async {
        let data = tempfile::tempdir().expect("data dir");
        let (mut process, server) = spawn_binary(data.path()).await;
        let cookie = server.sign_in().await;
        let room = server.create_room("Survivor", 5, false).await;
        let (mut member, joined) = server.member(&room.slug, "crashtest").await;
        member.say("before the crash", "c1").await.expect("posted");
        member.send(&ClientMsg::Report { seq: 1, reason: "crash".into() }).await;
        member.recv_until(|m| matches!(m, ServerMsg::Reported { .. })).await;
        server.must_moderate(&cookie, &ModAction::SlowMode { room: room.slug.clone(), seconds: 9 }).await;
        // The connection log is written in the background; give it its moment.
        server.search_log_until_found(&cookie, "crashtest", false).await;
        let ban = ModAction::Ban {
            target: BanTarget::Member { room: room.slug.clone(), member: joined.you.id },
            reason: "crash test".into(),
            duration_secs: Some(3_600),
        };
        server.must_moderate(&cookie, &ban).await;
        process.kill().expect("SIGKILL");
        process.wait().expect("reaped");

        let (mut process, server) = spawn_binary(data.path()).await;
        let (status, body) = server.connect_as(&[]).await.err().expect("banned after the crash");
        assert_eq!(status, 403);
        assert!(body.contains("crash test"), "{body}");
        let cookie = server.sign_in().await;
        let snapshot = server.mod_snapshot(&cookie).await;
        let kept = snapshot.rooms.iter().find(|r| r.room.slug == room.slug).expect("room");
        assert_eq!(kept.settings.slow_mode_secs, 9);
        assert_eq!(snapshot.reports.first().map(|r| r.reason.as_str()), Some("crash"));
        let log = server.search_log(&cookie, "crashtest", false).await;
        assert_eq!(log.len(), 1, "{log:?}");
        process.kill().expect("stop");
        process.wait().expect("reaped");
    });
}

/// Rows older than the retention (30 days) are deleted by the background job; younger ones stay.
#[test]
fn the_retention_job_deletes_rows_older_than_thirty_days() {
    run(async {
        let data = tempfile::tempdir().expect("data dir");
        let now = server::conn_log::now_ms();
        {
            let store = SqliteStore::open(&data.path().join("burner.db")).await.expect("store");
            let old: IpAddr = "198.51.100.31".parse().expect("ip");
            let young: IpAddr = "198.51.100.29".parse().expect("ip");
            let events = [
                opened("old", now - 31 * DAY_MS, old),
                LogEvent::Joined {
                    key: "old".into(),
                    at: now - 31 * DAY_MS,
                    room: "lobby".into(),
                    nickname: "ancient".into(),
                },
                LogEvent::Closed { key: "old".into(), at: now - 31 * DAY_MS + 60_000 },
                opened("young", now - 29 * DAY_MS, young),
                LogEvent::Joined {
                    key: "young".into(),
                    at: now - 29 * DAY_MS,
                    room: "lobby".into(),
                    nickname: "recent".into(),
                },
            ];
            store.record(&events).await.expect("seeded");
            assert_eq!(store.search_connections("", 10).await.expect("rows").len(), 2);
        }
        let mut config = config();
        config.data_dir = data.path().to_owned();
        config.retention_sweep = Duration::from_millis(200);
        let server = TestServer::with(config).await;
        let cookie = server.sign_in().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.search_log(&cookie, "ancient", true).await.is_empty() {
            assert!(Instant::now() < deadline, "the 31-day-old row is still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(server.search_log(&cookie, "198.51.100.31", true).await.is_empty());
        let young = server.search_log(&cookie, "recent", true).await;
        assert_eq!(young.len(), 1);
        assert_eq!(young[0].ip.as_deref(), Some("198.51.100.29"));
    });
}

/// The database refuses writes (another process holds its write lock): moderators get a clear
/// sentence, the health endpoint says degraded, the chat goes on, and the connection log catches
/// up afterwards without losing a row.
#[test]
fn a_database_that_refuses_writes_degrades_but_loses_nothing() {
    run(async {
        let data = tempfile::tempdir().expect("data dir");
        let mut config = config();
        config.data_dir = data.path().to_owned();
        let server = TestServer::with(config).await;
        let cookie = server.sign_in().await;
        let (mut talker, _) = server.member("lobby", "before-lock").await;

        let url = format!("sqlite://{}", data.path().join("burner.db").display());
        let mut blocker = sqlx::SqliteConnection::connect(&url).await.expect("second connection");
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut blocker).await.expect("write lock");

        // Chat works: nothing in it waits for the database.
        let (mut during, _) = server.member("lobby", "during-lock").await;
        talker.say("the database is stuck", "d1").await.expect("posted");
        during.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;

        let ban = ModAction::Ban {
            target: BanTarget::Address { address: "192.0.2.1".into() },
            reason: "while locked".into(),
            duration_secs: None,
        };
        let refused = server.moderate(Some(&cookie), &ban).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert!(refused.body.contains("could not be saved"), "{}", refused.body);
        // The log's writer meets the lock too, as soon as its wait for it runs out.
        let degraded = health_once(&server, "degraded", Duration::from_secs(10)).await;
        assert!(degraded["connection_log"]["error"].as_str().is_some_and(|e| e.contains("locked")), "{degraded}");
        assert!(degraded["connection_log"]["waiting"].as_u64().is_some_and(|n| n > 0), "{degraded}");

        sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("unlock");
        drop(blocker);
        health_once(&server, "ok", Duration::from_secs(15)).await;
        let caught_up = server.search_log(&cookie, "during-lock", false).await;
        assert_eq!(caught_up.len(), 1, "the connection made during the outage is logged");
        assert_eq!(server.health().await["connection_log"]["dropped"], 0);
        server.must_moderate(&cookie, &ban).await;
    });
}

/// BAD-INPUTS "Postgres down": the node's database stops taking connections (every session
/// ended, new ones refused). As with SQLite: a moderator's ban is refused as not saved, within
/// the store's few seconds, `/healthz` says `degraded`, the chat goes on; once Postgres is back
/// the connection log catches up with nothing dropped.
#[test]
fn postgres_down_degrades_but_loses_nothing() {
    run(async {
        let url = crate::services::Postgres::shared().database().await;
        let name = url.rsplit('/').next().expect("database name").to_owned();
        let mut admin =
            sqlx::PgConnection::connect(&crate::services::Postgres::shared().admin_url()).await.expect("admin");
        let mut config = config();
        config.database_url = Some(url);
        let server = TestServer::with(config).await;
        let cookie = server.sign_in().await;
        let (mut talker, _) = server.member("lobby", "before-outage").await;

        for statement in [
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut admin).await.expect("take the database away");
        }

        let (mut during, _) = server.member("lobby", "during-outage").await;
        talker.say("the database is gone", "d1").await.expect("posted");
        during.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        let ban = ModAction::Ban {
            target: BanTarget::Address { address: "192.0.2.1".into() },
            reason: "while down".into(),
            duration_secs: None,
        };
        let started = Instant::now();
        let refused = server.moderate(Some(&cookie), &ban).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert!(refused.body.contains("could not be saved"), "{}", refused.body);
        assert!(started.elapsed() < Duration::from_secs(5), "refused after {:?}", started.elapsed());
        let degraded = health_once(&server, "degraded", Duration::from_secs(15)).await;
        assert!(degraded["connection_log"]["waiting"].as_u64().is_some_and(|n| n > 0), "{degraded}");

        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")))
            .execute(&mut admin)
            .await
            .expect("give the database back");
        health_once(&server, "ok", Duration::from_secs(20)).await;
        assert_eq!(server.search_log(&cookie, "during-outage", false).await.len(), 1, "logged after all");
        assert_eq!(server.health().await["connection_log"]["dropped"], 0);
        server.must_moderate(&cookie, &ban).await;
    });
}

fn opened(key: &str, at: i64, ip: IpAddr) -> LogEvent {
    LogEvent::Opened { key: key.into(), at, ip, ip_hash: format!("{key:0>24}"), user_agent: "seeded".into() }
}

/// `/healthz` once its status is `status` (or fails the test after `within`).
async fn health_once(server: &TestServer, status: &str, within: Duration) -> serde_json::Value {
    eventually(within, status, || async { server.health().await["status"] == status }).await;
    server.health().await
}

/// The `burner` binary on a free port with `data` as its data directory, once it answers.
async fn spawn_binary(data: &Path) -> (Child, TestServer) {
    spawn_binary_with(data, &[], None).await
}

/// The same, with more settings, its output written to `output` (else dropped).
pub async fn spawn_binary_with(data: &Path, env: &[(&str, &str)], output: Option<&Path>) -> (Child, TestServer) {
    let port = crate::services::free_port();
    let (stdout, stderr) = match output {
        Some(path) => {
            let file = std::fs::File::create(path).expect("output file");
            (Stdio::from(file.try_clone().expect("output file")), Stdio::from(file))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let child = Command::new(env!("CARGO_BIN_EXE_burner"))
        .env("BURNER_ADDR", format!("127.0.0.1:{port}"))
        .env("BURNER_DATA_DIR", data)
        .env("BURNER_MOD_TOKEN", MOD_TOKEN)
        .env("BURNER_LOG", "warn")
        .env("BURNER_JOIN_BURST_PER_IP", "1000")
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("burner starts");
    let server = TestServer::attach(([127, 0, 0, 1], port).into());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(server.addr).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "burner did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, server)
}

/// The application's log (stdout, stderr of the real binary, at debug level) never holds a
/// client's raw address, whatever happens to that client.
#[test]
fn raw_addresses_never_reach_the_application_log() {
    run(async {
        let data = tempfile::tempdir().expect("data dir");
        let client = "198.51.100.23";
        let log_path = data.path().join("output.log");
        let settings = [("BURNER_LOG", "debug"), ("BURNER_TRUSTED_PROXIES", "127.0.0.1/32")];
        let (mut child, server) = spawn_binary_with(data.path(), &settings, Some(&log_path)).await;
        let cookie = server.sign_in().await;
        let forwarded = [("x-forwarded-for", client)];
        let mut visitor = server.connect_as(&forwarded).await.expect("open");
        visitor.recv_until(|m| matches!(m, ServerMsg::Welcome { .. })).await;
        let joined = visitor.join("lobby", "someone", "test-session-logcheck-01", None).await.expect("joined");
        visitor.send_text("not json").await;
        visitor.say("hello", "h1").await.expect("posted");
        let form = ("application/x-www-form-urlencoded", "token=wrong");
        server.send_http("POST", "/mod/sign-in", Some(form), &[("x-forwarded-for", client)]).await;
        let ban = ModAction::Ban {
            target: BanTarget::Member { room: "lobby".into(), member: joined.you.id },
            reason: "log check".into(),
            duration_secs: None,
        };
        server.must_moderate(&cookie, &ban).await;
        assert!(server.connect_as(&forwarded).await.is_err(), "banned");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        tokio::task::spawn_blocking(move || child.wait()).await.expect("joined").expect("exited");
        let output = std::fs::read_to_string(&log_path).expect("log");
        assert!(output.contains("DEBUG"), "the debug log was captured: {output}");
        assert!(!output.contains(client), "a raw address in the log:\n{output}");
    });
}
