//! BAD-INPUTS "Identity": nickname rules on the wire, look-alikes, reserved names, churn.

use crate::support::*;
use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
use std::time::Duration;

#[test]
fn a_5000_character_nickname_is_refused_before_anyone_hears_of_it() {
    run(async {
        let server = TestServer::start().await;
        let (mut watcher, _) = server.member("lobby", "watcher").await;
        let mut client = server.client().await;
        let refusal = client.join("lobby", &"n".repeat(5_000), &session_for("long"), None).await.expect_err("refused");
        assert_eq!(refusal.code, ErrorCode::NicknameInvalid);
        assert_eq!(refusal.message, "That nickname can't be used: it is longer than 24 characters.");
        watcher.assert_silent(Duration::from_millis(300)).await;
    })
}

#[test]
fn invisible_direction_and_control_characters_are_refused() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        for nickname in
            ["ali\u{202E}ce", "ali\u{200B}ce", "\u{3164}", "al\u{7}ice", "z\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}"]
        {
            let refusal = client.join("lobby", nickname, &session_for("x"), None).await.expect_err("refused");
            assert_eq!(refusal.code, ErrorCode::NicknameInvalid, "{nickname:?}");
        }
        let refusal = client.join("lobby", "   ", &session_for("x"), None).await.expect_err("refused");
        assert_eq!(refusal.message, "That nickname can't be used: it is empty.");
    })
}

#[test]
fn look_alike_and_reserved_nicknames_are_refused() {
    run(async {
        let server = TestServer::start().await;
        let (_alice, _) = server.member("lobby", "alice").await;
        let mut client = server.client().await;
        for twin in ["ALICE", "Alice", "аlice", "aIice", "ａｌｉｃｅ"] {
            let refusal = client.join("lobby", twin, &session_for(twin), None).await.expect_err("taken");
            assert_eq!(refusal.code, ErrorCode::NicknameTaken, "{twin}");
            assert_eq!(refusal.message, "That nickname is taken in this room.");
        }
        for reserved in ["admin", "Moderator", "SYSTEM", "аdmin"] {
            let refusal = client.join("lobby", reserved, &session_for(reserved), None).await.expect_err("reserved");
            assert_eq!(refusal.code, ErrorCode::NicknameReserved, "{reserved}");
        }
        let joined =
            client.join("lobby", "alicia", &session_for("alicia"), None).await.expect("a different name is fine");
        assert_eq!(joined.members.len(), 2);
    })
}

#[test]
fn the_same_name_is_free_in_another_room() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Elsewhere", 5, false).await.slug;
        let (_a, _) = server.member("lobby", "alice").await;
        let (_b, joined) = server.member(&room, "alice").await;
        assert_eq!(joined.you.nickname, "alice");
    })
}

#[test]
fn join_churn_is_rate_limited_and_cannot_flood_a_room_with_notices() {
    run(async {
        let mut config = config();
        config.message_burst = 10;
        config.join_burst_per_ip = 20;
        config.join_interval_per_ip = Duration::from_secs(2);
        let server = TestServer::with(config).await;
        let (mut watcher, _) = server.member("lobby", "watcher").await;
        let mut churners = Vec::new();
        for _ in 0..10 {
            churners.push(server.client().await);
        }
        let started = tokio::time::Instant::now();
        let (mut joined, mut limited) = (0, 0);
        for round in 0..5 {
            for (i, churner) in churners.iter_mut().enumerate() {
                let nickname = format!("churn{i}r{round}");
                match churner.join("lobby", &nickname, &session_for(&nickname), None).await {
                    Ok(_) => {
                        joined += 1;
                        churner.send(&ClientMsg::Leave {}).await;
                        churner.recv_until(|m| matches!(m, ServerMsg::Left { .. })).await;
                    }
                    Err(refusal) => {
                        assert_eq!(refusal.code, ErrorCode::RateLimited, "{}", refusal.message);
                        assert!(refusal.message.starts_with("Slow down"), "{}", refusal.message);
                        limited += 1;
                    }
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let allowed = 20.0 + elapsed / 2.0 + 1.0;
        assert!(f64::from(joined) <= allowed, "{joined} joins in {elapsed:.2}s (allowed {allowed:.1})");
        assert_eq!(joined + limited, 50);
        // The watcher heard of exactly the joins that happened, no more.
        let mut notices = 0;
        while notices < joined {
            if let ServerMsg::MemberJoined { .. } = watcher.recv().await {
                notices += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = 0;
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_millis(50), futures_util::StreamExt::next(&mut watcher.ws)).await
        {
            if frame.to_text().is_ok_and(|t| t.contains("member_joined")) {
                extra += 1;
            }
        }
        assert_eq!(extra, 0);
    })
}
