//! BAD-INPUTS "Rooms": creation rules over HTTP, the creation rate, expiry, the lobby.

use crate::support::*;
use app::protocol::{ErrorCode, LOBBY_SLUG, ServerMsg};
use std::time::Duration;

#[test]
fn room_names_follow_the_rules_and_refusals_are_sentences() {
    run(async {
        let server = TestServer::start().await;
        let cases = [
            (
                "name=".to_owned() + &"r".repeat(10_000) + "&limit=5",
                "That room name can't be used: it is longer than 48 characters.",
            ),
            (
                "name=a%E2%80%AEb&limit=5".to_owned(),
                "That room name can't be used: it contains an invisible, control or direction-changing character.",
            ),
            (
                "name=a%00b&limit=5".to_owned(),
                "That room name can't be used: it contains an invisible, control or direction-changing character.",
            ),
            ("name=+++&limit=5".to_owned(), "That room name can't be used: it is empty."),
            ("name=ok&limit=1".to_owned(), "The participant limit must be a whole number from 2 to 1000."),
            ("name=ok&limit=1001".to_owned(), "The participant limit must be a whole number from 2 to 1000."),
            ("name=ok&limit=ten".to_owned(), "The participant limit must be a whole number from 2 to 1000."),
            ("name=Lobby&limit=5".to_owned(), "A room with that name (or one that looks just like it) already exists."),
        ];
        for (form, sentence) in cases {
            let response = server.http("POST", "/api/create_room", Some(&form)).await;
            assert_eq!(response.status, 422, "{}", &form[..form.len().min(40)]);
            assert!(response.body.contains(sentence), "{}: {}", &form[..form.len().min(40)], response.body);
        }
        let taken = server.http("POST", "/api/create_room", Some("name=LOBBY&limit=5")).await;
        assert!(taken.body.contains(r#""code":"room_name_taken""#), "{}", taken.body);
    })
}

#[test]
fn path_tricks_in_a_name_make_a_plain_slug() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("../../etc/passwd", 5, false).await;
        assert_eq!(room.name, "../../etc/passwd");
        assert!(room.slug.starts_with("etc-passwd-"), "{}", room.slug);
        assert!(app::protocol::is_valid_slug(&room.slug));
        let page = server.http("GET", "/r/..%2F..%2Fetc", None).await;
        assert_eq!(page.status, 404);
    })
}

#[test]
fn one_address_cannot_create_rooms_without_end() {
    run(async {
        let mut config = config();
        config.room_create_burst = 5;
        config.room_create_interval = Duration::from_secs(30);
        let server = TestServer::with(config).await;
        for i in 0..5 {
            server.create_room(&format!("burst {i}"), 5, false).await;
        }
        let response = server.http("POST", "/api/create_room", Some("name=one+more&limit=5")).await;
        assert_eq!(response.status, 429);
        assert!(response.body.contains("rate_limited"), "{}", response.body);
        assert!(response.body.contains("You are creating rooms too quickly."), "{}", response.body);
        // A refused name does not use up the allowance.
        let invalid = server.http("POST", "/api/create_room", Some("name=&limit=5")).await;
        assert!(invalid.body.contains("room_name_invalid"), "{}", invalid.body);
    })
}

#[test]
fn empty_rooms_expire_and_their_joiners_are_told() {
    run(async {
        let mut config = config();
        config.room_expiry = Duration::from_millis(300);
        let server = TestServer::with(config).await;
        let room = server.create_room("Short lived", 5, false).await.slug;
        let mut watcher = server.client().await;
        watcher.send(&app::protocol::ClientMsg::WatchDirectory {}).await;
        watcher.recv_until(|m| matches!(m, ServerMsg::Directory { .. })).await;
        let removed = watcher
            .recv_until(|m| matches!(m, ServerMsg::DirectoryChanged { removed, .. } if !removed.is_empty()))
            .await;
        assert!(matches!(removed, ServerMsg::DirectoryChanged { removed, .. } if removed == vec![room.clone()]));
        let mut late = server.client().await;
        let refusal = late.join(&room, "late", &session_for("late"), None).await.expect_err("gone");
        assert_eq!(refusal.code, ErrorCode::RoomNotFound);
        // The lobby never expires.
        late.join(LOBBY_SLUG, "late", &session_for("late"), None).await.expect("the lobby stays");
    })
}

#[test]
fn the_directory_follows_occupancy_live() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Live", 3, true).await.slug;
        let mut watcher = server.client().await;
        watcher.send(&app::protocol::ClientMsg::WatchDirectory {}).await;
        let ServerMsg::Directory { rooms } = watcher.recv().await else { panic!("directory first") };
        assert_eq!(rooms[0].slug, LOBBY_SLUG, "the lobby leads");
        assert!(rooms.iter().any(|r| r.slug == room && r.one_way && r.limit == 3 && r.members == 0));
        let (_member, _) = server.member(&room, "someone").await;
        let changed = watcher
        .recv_until(|m| matches!(m, ServerMsg::DirectoryChanged { updated, .. } if updated.iter().any(|r| r.slug == room && r.members == 1)))
        .await;
        assert!(matches!(changed, ServerMsg::DirectoryChanged { .. }));
    })
}

#[test]
fn unlisted_rooms_stay_out_of_the_directory_but_open_by_url() {
    run(async {
        let server = TestServer::start().await;
        let response = server.http("POST", "/api/create_room", Some("name=Hidden+den&limit=4")).await;
        assert_eq!(response.status, 200, "{}", response.body);
        let room: app::protocol::RoomSummary = serde_json::from_str(&response.body).expect("room");
        let listed = server.http("GET", "/api/rooms", None).await;
        assert!(!listed.body.contains(&room.slug));
        let (_c, joined) = server.member(&room.slug, "finder").await;
        assert_eq!(joined.room.name, "Hidden den");
    })
}

#[test]
fn a_burst_of_directory_changes_comes_in_frames_of_at_most_200_rooms() {
    run(async {
        let server = TestServer::start().await;
        let mut watcher = server.client().await;
        watcher.send(&app::protocol::ClientMsg::WatchDirectory {}).await;
        watcher.recv_until(|m| matches!(m, ServerMsg::Directory { .. })).await;
        for i in 0..450 {
            server.create_room(&format!("crowd {i}"), 5, false).await;
        }
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 450 {
            if let ServerMsg::DirectoryChanged { updated, .. } = watcher.recv().await {
                assert!(updated.len() <= 200, "{} rooms in one frame", updated.len());
                seen.extend(updated.into_iter().map(|r| r.slug));
            }
        }
    })
}
