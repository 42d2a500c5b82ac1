//! BAD-INPUTS "Protocol and JSON": whatever a client sends gets a typed answer, never a panic,
//! and a run of garbage ends the connection.

use crate::support::*;
use app::protocol::{ClientMsg, ErrorCode, ServerMsg, close};

#[test]
fn malformed_frames_get_bad_request_and_a_run_of_them_closes() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let deep = format!("{}{}", "[".repeat(100_000 / 2), "]".repeat(100_000 / 2));
        let garbage = [
            "not json".to_owned(),
            r#"{"type": "leave"} trailing"#.to_owned(),
            deep.chars().take(60_000).collect::<String>(),
            " ".repeat(60_000),
        ];
        for frame in &garbage {
            let refusal = client.refusal_for(frame).await;
            assert_eq!(refusal.code, ErrorCode::BadRequest, "{}", &frame[..frame.len().min(40)]);
            assert!(refusal.message.starts_with("That frame is not a valid Burner message"), "{}", refusal.message);
        }
        // A valid request resets the count...
        client.send(&ClientMsg::WatchDirectory {}).await;
        client.recv_until(|m| matches!(m, ServerMsg::Directory { .. })).await;
        // ... and five invalid ones in a row end the connection.
        for _ in 0..5 {
            client.send_text("{").await;
        }
        assert_eq!(client.close_code().await, Some(close::PROTOCOL_VIOLATION));
    })
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let deep = format!(r#"{{"type":"send_message","text":{}1{}}}"#, "[".repeat(30_000), "]".repeat(30_000));
        assert_eq!(client.refusal_for(&deep).await.code, ErrorCode::BadRequest);
        let (mut other, _) = server.member("lobby", "other").await;
        other.say("the server is fine", "o1").await.expect("posted");
    })
}

#[test]
fn megabytes_of_anything_are_refused_at_the_frame_cap() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let _ = client.ws.send(tokio_tungstenite::tungstenite::Message::text(" ".repeat(2 * 1024 * 1024))).await;
        assert_eq!(client.close_code().await, Some(close::TOO_BIG));
    })
}

#[test]
fn unknown_types_and_wrong_fields_get_a_typed_answer() {
    run(async {
        let server = TestServer::start().await;
        let (mut client, _) = server.member("lobby", "tester").await;
        let cases = [
            (r#"{"type": "shout", "text": "hi"}"#, "unknown variant `shout`"),
            (r#"{"text": "hi"}"#, "missing field `type`"),
            (r#"{"type": "send_message"}"#, "missing field `text`"),
            (r#"{"type": "send_message", "text": 5}"#, "invalid type: integer `5`"),
            (r#"{"type": "send_message", "text": null}"#, "invalid type: null"),
            (r#"{"type": "send_message", "text": "hi", "colour": "red"}"#, "unknown field `colour`"),
            (r#"{"type": "leave", "now": true}"#, "unknown field `now`"),
            (r#"["send_message", "hi"]"#, "JSON object"),
            ("null", "JSON object"),
        ];
        for (frame, detail) in cases {
            let refusal = client.refusal_for(frame).await;
            assert_eq!(refusal.code, ErrorCode::BadRequest, "{frame}");
            assert!(refusal.message.contains(detail), "{frame}: {}", refusal.message);
            // Alternate with a good frame so the connection is never at five in a row.
            client.say("still works", frame).await.expect("posted");
        }
    })
}

#[test]
fn message_text_rules_apply_on_the_wire() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        let (mut bob, _) = server.member("lobby", "bob").await;
        for empty in ["", "   ", "\n\n\n", "\t \n"] {
            let refusal = alice.say(empty, "e").await.expect_err("empty refused");
            assert_eq!(refusal.code, ErrorCode::MessageEmpty);
            assert_eq!(refusal.message, "The message is empty.");
        }
        let over = "x".repeat(2_001);
        let refusal = alice.say(&over, "long").await.expect_err("too long");
        assert_eq!(refusal.code, ErrorCode::TooLong);
        assert_eq!(refusal.message, "The message is 2001 characters long; the limit is 2000.");
        alice.say(&"é".repeat(2_000), "max").await.expect("2000 characters fit");
        let spaced = format!("top{}bottom", "\n".repeat(30_000));
        alice.say(&spaced, "spaced").await.expect("posted");
        let texts: Vec<String> = {
            let mut texts = Vec::new();
            while texts.len() < 2 {
                if let ServerMsg::MessagePosted { message } = bob.recv().await {
                    texts.push(message.text);
                }
            }
            texts
        };
        assert_eq!(texts[0].chars().count(), 2_000, "never truncated");
        assert_eq!(texts[1], "top\n\nbottom", "blank-line runs collapsed");
    })
}

#[test]
fn requests_out_of_order_get_typed_errors() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.send(&ClientMsg::SendMessage { text: "too early".into(), client_ref: Some("x".into()) }).await;
        let refusal = client.refusal().await;
        assert_eq!(refusal.code, ErrorCode::NotJoined);
        client.send(&ClientMsg::Leave {}).await;
        assert_eq!(client.refusal().await.code, ErrorCode::NotJoined);
        client.join("lobby", "early", &session_for("early"), None).await.expect("joined");
        client
            .send(&ClientMsg::Join {
                room: "lobby".into(),
                nickname: "again".into(),
                session: session_for("again"),
                resume: None,
            })
            .await;
        let refusal = client.refusal().await;
        assert_eq!(refusal.code, ErrorCode::AlreadyJoined);
        client.send(&ClientMsg::Leave {}).await;
        assert!(matches!(client.recv().await, ServerMsg::Left { room } if room == "lobby"));
        client.send(&ClientMsg::SendMessage { text: "after leaving".into(), client_ref: None }).await;
        assert_eq!(client.refusal().await.code, ErrorCode::NotJoined);
    })
}

#[test]
fn an_overlong_client_reference_is_refused() {
    run(async {
        let server = TestServer::start().await;
        let (mut client, _) = server.member("lobby", "refs").await;
        let refusal = client.say("hi", &"r".repeat(65)).await.expect_err("refused");
        assert_eq!(refusal.code, ErrorCode::BadRequest);
    })
}

use futures_util::SinkExt;
