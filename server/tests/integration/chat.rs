//! What people do in rooms: fan-out, one-way rooms, history and resume, the exact limit,
//! and a member that stops reading.

use crate::support::*;
use app::protocol::{ClientMsg, Continuity, ErrorCode, Resume, ServerMsg, close};
use futures_util::{SinkExt, StreamExt, future::join_all};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn a_message_reaches_every_member_in_order() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Fan out", 10, false).await.slug;
        let (mut alice, _) = server.member(&room, "alice").await;
        let mut others = Vec::new();
        for name in ["bob", "carol", "dave"] {
            others.push(server.member(&room, name).await.0);
        }
        alice.recv_until(|m| matches!(m, ServerMsg::MemberJoined { member, .. } if member.nickname == "dave")).await;
        for i in 0..5 {
            alice.say(&format!("hello {i}"), &format!("r{i}")).await.expect("posted");
        }
        for other in &mut others {
            let mut seen = Vec::new();
            while seen.len() < 5 {
                if let ServerMsg::MessagePosted { message } = other.recv().await {
                    assert_eq!(message.author.nickname, "alice");
                    seen.push((message.seq, message.text));
                }
            }
            let expected: Vec<_> = (0..5).map(|i| (i + 1, format!("hello {i}"))).collect();
            assert_eq!(seen, expected);
        }
    })
}

#[test]
fn normal_rooms_echo_to_the_author() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        alice.send(&ClientMsg::SendMessage { text: "echo?".into(), client_ref: Some("e1".into()) }).await;
        let echoed = alice.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        assert!(matches!(echoed, ServerMsg::MessagePosted { message } if message.text == "echo?"));
        let ack = alice.recv_until(|m| matches!(m, ServerMsg::MessageAccepted { .. })).await;
        assert!(matches!(ack, ServerMsg::MessageAccepted { client_ref: Some(r), seq: 1, .. } if r == "e1"));
    })
}

#[test]
fn one_way_authors_get_a_receipt_and_never_their_text() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Confessions", 10, true).await.slug;
        let (mut author, _) = server.member(&room, "author").await;
        let (mut first, _) = server.member(&room, "first").await;
        let (mut second, _) = server.member(&room, "second").await;

        // The author's connection gets the receipt and nothing carrying the text, live.
        author.send(&ClientMsg::SendMessage { text: "my secret".into(), client_ref: Some("s1".into()) }).await;
        let seq = loop {
            match author.recv().await {
                ServerMsg::MessageAccepted { seq, client_ref, .. } => {
                    assert_eq!(client_ref.as_deref(), Some("s1"));
                    break seq;
                }
                ServerMsg::MessagePosted { message } => panic!("the author got its own message: {message:?}"),
                _ => {}
            }
        };
        for observer in [&mut first, &mut second] {
            let seen = observer.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
            assert!(
                matches!(seen, ServerMsg::MessagePosted { message } if message.text == "my secret" && message.seq == seq)
            );
        }
        // Others' messages do reach the author.
        first.say("hi author", "f1").await.expect("posted");
        let seen = author.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        assert!(matches!(seen, ServerMsg::MessagePosted { message } if message.text == "hi author"));
        author.assert_silent(Duration::from_millis(300)).await;

        // Nor after a reconnect from the same tab: fresh, resumed from before the message, or
        // from another epoch.
        drop(author);
        let session = session_for("author");
        let epoch = {
            let mut probe = server.client().await;
            probe.join(&room, "probe", &session_for("probe"), None).await.expect("joined").epoch
        };
        for resume in
            [None, Some(Resume { epoch: epoch.clone(), seq: 0 }), Some(Resume { epoch: "stale".into(), seq: 0 })]
        {
            let mut again = server.client().await;
            let joined = again.join(&room, "author", &session, resume).await.expect("rejoined");
            assert_eq!(joined.history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["hi author"]);
        }
        // A newcomer sees both.
        let (_, newcomer) = server.member(&room, "newcomer").await;
        assert_eq!(
            newcomer.history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            vec!["my secret", "hi author"]
        );
    })
}

#[test]
fn fifty_simultaneous_joins_fill_a_room_of_ten_exactly() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Ten seats", 10, false).await.slug;
        let mut clients = Vec::new();
        for _ in 0..50 {
            clients.push(server.client().await);
        }
        // Every join goes out before any answer is read.
        for (i, client) in clients.iter_mut().enumerate() {
            client
                .send(&ClientMsg::Join {
                    room: room.clone(),
                    nickname: format!("seat{i}"),
                    session: session_for(&format!("seat{i}")),
                    resume: None,
                })
                .await;
        }
        let outcomes = join_all(clients.iter_mut().map(|c| async move {
            c.recv_until(|m| matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. })).await
        }))
        .await;
        let admitted = outcomes.iter().filter(|m| matches!(m, ServerMsg::Joined { .. })).count();
        let full: Vec<_> = outcomes
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Error { code: ErrorCode::RoomFull, message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(admitted, 10);
        assert_eq!(full.len(), 40);
        assert_eq!(full[0], "This room is full (10/10).");
        let listed = server.http("GET", "/api/rooms", None).await;
        assert!(
            listed.body.contains(&format!(r#""slug":"{room}","name":"Ten seats","members":10,"limit":10"#)),
            "{}",
            listed.body
        );
    })
}

#[test]
fn a_reconnect_fills_the_gap_from_its_last_sequence_number() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        let (mut bob, joined) = server.member("lobby", "bob").await;
        alice.say("one", "1").await.expect("posted");
        let last_seen = match bob.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await {
            ServerMsg::MessagePosted { message } => message.seq,
            _ => unreachable!(),
        };
        drop(bob); // the connection drops
        alice.recv_until(|m| matches!(m, ServerMsg::MemberLeft { .. })).await;
        alice.say("two", "2").await.expect("posted");
        alice.say("three", "3").await.expect("posted");

        let mut back = server.client().await;
        let resumed = back
            .join("lobby", "bob", &session_for("bob"), Some(Resume { epoch: joined.epoch.clone(), seq: last_seen }))
            .await
            .expect("rejoined");
        assert_eq!(resumed.continuity, Continuity::Resumed);
        assert_eq!(resumed.history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["two", "three"]);

        // Too far behind: the latest 50, and the client is told it missed some.
        for i in 0..60 {
            alice.say(&format!("m{i}"), &format!("m{i}")).await.expect("posted");
        }
        drop(back);
        let mut late = server.client().await;
        let gap = late
            .join("lobby", "bob", &session_for("bob"), Some(Resume { epoch: joined.epoch, seq: last_seen }))
            .await
            .expect("rejoined");
        assert_eq!(gap.continuity, Continuity::Gap);
        assert_eq!(gap.history.len(), 50);
        assert_eq!(gap.history.last().map(|m| m.text.as_str()), Some("m59"));
    })
}

#[test]
fn a_rejoin_from_the_same_tab_replaces_the_ghost_without_churn() {
    run(async {
        let server = TestServer::start().await;
        let (mut watcher, _) = server.member("lobby", "watcher").await;
        let (mut ghost, first) = server.member("lobby", "alice").await;
        watcher.recv_until(|m| matches!(m, ServerMsg::MemberJoined { .. })).await;
        let mut tab = server.client().await;
        let second = tab.join("lobby", "alice", &session_for("alice"), None).await.expect("replaces");
        assert_eq!(second.you, first.you);
        assert_eq!(ghost.close_code().await, Some(close::REPLACED));
        watcher.assert_silent(Duration::from_millis(300)).await;
        assert_eq!(second.room.members, 2);
    })
}

#[test]
fn a_member_that_stops_reading_is_closed_and_the_others_keep_receiving() {
    run(async {
        let mut config = config();
        config.outbox = 256;
        let server = TestServer::with(config).await;
        let (talker, _) = server.member("lobby", "talker").await;
        let (listener, _) = server.member("lobby", "listener").await;
        let (mut stuck, _) = server.member("lobby", "stuck").await;
        // The talker and the listener read everything, as they get it, on the side.
        let (mut talker_tx, mut talker_rx) = talker.ws.split();
        let drain = tokio::spawn(async move { while let Some(Ok(_)) = talker_rx.next().await {} });
        let (progress_tx, mut progress) = tokio::sync::watch::channel((0usize, false));
        let listening = tokio::spawn(async move {
            let mut listener = listener;
            let (mut received, mut stuck_left) = (0, false);
            while let Some(message) = listener.next().await {
                match message {
                    ServerMsg::MessagePosted { .. } => received += 1,
                    ServerMsg::MemberLeft { member, count } if member.nickname == "stuck" => {
                        assert_eq!(count, 2);
                        stuck_left = true;
                    }
                    _ => {}
                }
                let _ = progress_tx.send((received, stuck_left));
            }
        });
        // `stuck` never reads again. Large messages fill its socket buffers, then its outbox.
        let text = serde_json::to_string(&ClientMsg::SendMessage { text: "😀".repeat(1_990), client_ref: None })
            .expect("json");
        let mut sent = 0;
        while !progress.borrow().1 && sent < 5_000 {
            for _ in 0..50 {
                talker_tx.send(Message::text(text.clone())).await.expect("send");
            }
            sent += 50;
            // The listener keeps up with every message, batch after batch.
            progress.wait_for(|(received, _)| *received >= sent).await.expect("listener alive");
        }
        let received = progress.borrow().0;
        assert!(progress.borrow().1, "stuck was never dropped ({sent} sent)");
        // Whatever the kernel still held reaches `stuck`, then its connection ends.
        let mut posted = 0;
        let code = loop {
            match tokio::time::timeout(WAIT, stuck.ws.next()).await.expect("ends in time") {
                Some(Ok(Message::Text(_))) => posted += 1,
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        };
        assert!(posted < received, "dropped before everything was delivered ({posted} of {received})");
        assert!(code.is_none() || code == Some(close::SLOW), "{code:?}");
        drain.abort();
        listening.abort();
    })
}

#[test]
fn joining_after_fifty_of_the_largest_messages_works() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        let longest = "😀".repeat(2_000);
        for i in 0..50 {
            alice.say(&longest, &format!("big{i}")).await.expect("posted");
        }
        let (_bob, joined) = server.member("lobby", "bob").await;
        assert_eq!(joined.history.len(), 50);
        assert!(joined.history.iter().all(|m| m.text == longest));
    })
}

#[test]
fn a_resend_is_recognised_after_the_room_has_moved_on() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        let (mut bob, _) = server.member("lobby", "bob").await;
        let (mut reader, _) = server.member("lobby", "reader").await;
        let (first, _) = alice.say("only once", "page1-1").await.expect("posted");
        for i in 0..100 {
            bob.say(&format!("chatter {i}"), &format!("b{i}")).await.expect("posted");
        }
        let (again, _) = alice.say("only once", "page1-1").await.expect("acknowledged");
        assert_eq!(again, first, "the same message, acknowledged again");
        alice.say("after", "page1-2").await.expect("posted");
        let mut copies = 0;
        loop {
            if let ServerMsg::MessagePosted { message } = reader.recv().await {
                copies += usize::from(message.text == "only once");
                if message.text == "after" {
                    break;
                }
            }
        }
        assert_eq!(copies, 1);
    })
}

/// A socket whose address names a room and a nickname (and its tab's session) is in the room as
/// it opens, without a `join` frame: the welcome, then `joined`, and the room hears of it as of
/// any join. A refused one is answered as a refused `join` frame would be, and the socket stays
/// to try again; a room named alone is only a load balancer's hint.
#[test]
fn a_room_and_nickname_in_the_address_join_as_the_socket_opens() {
    run(async {
        let server = TestServer::start().await;
        let origin = server.origin();
        let mut alice = server.client().await;
        alice.join("lobby", "alice", &session_for("alice"), None).await.expect("alice joins");

        let path = format!("/ws?v=1&room=lobby&nickname=bob&session={}", session_for("bob"));
        let mut bob = server.connect_with(Some(&origin), &path).await.expect("upgraded");
        assert!(matches!(bob.recv().await, ServerMsg::Welcome { .. }));
        match bob.recv().await {
            ServerMsg::Joined { you, members, .. } => {
                assert_eq!(you.nickname, "bob");
                assert!(members.iter().any(|m| m.nickname == "alice"), "{members:?}");
            }
            other => panic!("expected joined, got {other:?}"),
        }
        let joined = alice.recv_until(|m| matches!(m, ServerMsg::MemberJoined { .. })).await;
        assert!(matches!(joined, ServerMsg::MemberJoined { member, count: 2 } if member.nickname == "bob"));
        bob.say("hello from the address", "b1").await.expect("bob posts");
        alice.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;

        let path = format!("/ws?v=1&room=lobby&nickname=Admin&session={}", session_for("carol"));
        let mut carol = server.connect_with(Some(&origin), &path).await.expect("upgraded");
        assert!(matches!(carol.recv().await, ServerMsg::Welcome { .. }));
        assert_eq!(carol.refusal().await.code, ErrorCode::NicknameReserved);
        carol.join("lobby", "carol", &session_for("carol"), None).await.expect("then joins by frame");

        let path = "/ws?v=1&room=lobby&nickname=dave&session=short";
        let mut dave = server.connect_with(Some(&origin), path).await.expect("upgraded");
        assert!(matches!(dave.recv().await, ServerMsg::Welcome { .. }));
        assert_eq!(dave.refusal().await.code, ErrorCode::SessionInvalid);

        let mut erin = server.connect_with(Some(&origin), "/ws?v=1&room=lobby").await.expect("upgraded");
        assert!(matches!(erin.recv().await, ServerMsg::Welcome { .. }));
        erin.assert_silent(Duration::from_millis(300)).await;
        assert_eq!(server.health().await["connections"].as_u64(), Some(5));
    })
}
