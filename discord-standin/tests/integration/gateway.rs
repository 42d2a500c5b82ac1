//! The gateway as twilight-gateway meets it: HELLO → IDENTIFY → READY, dispatches with
//! sequence numbers, RESUME replay after a dropped connection, op 7 / op 9, close codes.

use std::time::Duration;

use discord_standin::Config;
use serde_json::json;
use twilight_model::gateway::{
    event::{DispatchEvent, GatewayEvent},
    payload::incoming::Hello,
};

use crate::support::{
    INTENTS, TOKEN, api, close_code, connect, identified, identify_frame, next_event, next_frame, send, start,
    start_with,
};

#[tokio::test]
async fn hello_identify_ready_heartbeat_and_a_dispatch() {
    let standin = start().await;
    let mut ws = connect(&standin.gateway_url()).await;
    match next_event(&mut ws).await {
        GatewayEvent::Hello(Hello { heartbeat_interval }) => assert_eq!(heartbeat_interval, 1000),
        other => panic!("expected HELLO, got {other:?}"),
    }
    send(&mut ws, identify_frame(&format!("Bot {TOKEN}"), INTENTS)).await;
    let ready = match next_event(&mut ws).await {
        GatewayEvent::Dispatch(1, DispatchEvent::Ready(ready)) => ready,
        other => panic!("expected READY with s=1, got {other:?}"),
    };
    assert_eq!(ready.resume_gateway_url, format!("{}/resume", standin.gateway_url()));
    assert_eq!((ready.user.id.get(), ready.user.bot, ready.version), (900, true, 10));
    assert_eq!(ready.guilds[0].id.get(), 500);

    send(&mut ws, json!({ "op": 1, "d": 1 })).await;
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::HeartbeatAck));

    let posted = standin.post_as_user(600, 42, "dana", "hi from discord");
    match next_event(&mut ws).await {
        GatewayEvent::Dispatch(2, DispatchEvent::MessageCreate(create)) => {
            assert_eq!(create.id, posted.id);
            assert_eq!((create.content.as_str(), create.author.name.as_str()), ("hi from discord", "dana"));
        }
        other => panic!("expected MESSAGE_CREATE with s=2, got {other:?}"),
    }
    // The bot sees its own REST posts, as on Discord.
    api(&standin, "POST", "channels/600/messages", Some(json!({ "content": "from burner" }))).await;
    match next_event(&mut ws).await {
        GatewayEvent::Dispatch(3, DispatchEvent::MessageCreate(create)) => assert!(create.author.bot),
        other => panic!("expected the bot's own MESSAGE_CREATE, got {other:?}"),
    }
    let counters = standin.counters();
    assert_eq!((counters.connections, counters.identifies, counters.heartbeats), (1, 1, 1));
}

#[tokio::test]
async fn edits_and_deletes_are_dispatched() {
    let standin = start().await;
    let (mut ws, _) = identified(&standin).await;
    let posted = standin.post_as_user(601, 42, "dana", "typo");
    next_frame(&mut ws).await;
    assert!(standin.edit_as_user(601, posted.id.get(), "fixed").is_some());
    match next_event(&mut ws).await {
        GatewayEvent::Dispatch(3, DispatchEvent::MessageUpdate(update)) => {
            assert_eq!(update.content, "fixed");
            assert!(update.edited_timestamp.is_some());
        }
        other => panic!("expected MESSAGE_UPDATE, got {other:?}"),
    }
    assert!(standin.delete_as_user(601, posted.id.get()));
    match next_event(&mut ws).await {
        GatewayEvent::Dispatch(4, DispatchEvent::MessageDelete(delete)) => {
            assert_eq!(
                (delete.id, delete.channel_id.get(), delete.guild_id.map(|g| g.get())),
                (posted.id, 601, Some(500))
            );
        }
        other => panic!("expected MESSAGE_DELETE, got {other:?}"),
    }
    assert!(!standin.delete_as_user(601, posted.id.get()));
}

#[tokio::test]
async fn a_dropped_connection_resumes_and_gets_what_it_missed() {
    let standin = start().await;
    let (mut ws, ready) = identified(&standin).await;
    let session_id = ready["session_id"].as_str().expect("session id").to_owned();
    standin.drop_gateway();
    assert_eq!(close_code(&mut ws).await, None, "a TCP drop sends no close frame");
    let missed = standin.post_as_user(600, 42, "dana", "while you were away");

    let resume_url = ready["resume_gateway_url"].as_str().expect("resume url").to_owned();
    let mut ws = connect(&resume_url).await;
    assert_eq!(next_frame(&mut ws).await["op"], 10);
    send(&mut ws, json!({ "op": 6, "d": { "seq": 1, "session_id": session_id, "token": format!("Bot {TOKEN}") } }))
        .await;
    match next_event(&mut ws).await {
        GatewayEvent::Dispatch(2, DispatchEvent::MessageCreate(create)) => assert_eq!(create.id, missed.id),
        other => panic!("expected the missed MESSAGE_CREATE, got {other:?}"),
    }
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::Dispatch(3, DispatchEvent::Resumed)));
    standin.post_as_user(600, 42, "dana", "live again");
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::Dispatch(4, DispatchEvent::MessageCreate(_))));
    let counters = standin.counters();
    assert_eq!(
        (counters.connections, counters.resume_connections, counters.identifies, counters.resumes, counters.resumed_ok),
        (2, 1, 1, 1, 1)
    );
}

#[tokio::test]
async fn a_bad_token_closes_4004_and_a_disallowed_intent_4014() {
    let standin = start_with(Config { message_content_intent: false, ..Config::default() }).await;
    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    send(&mut ws, identify_frame("Bot wrong", INTENTS)).await;
    assert_eq!(close_code(&mut ws).await, Some(4004));

    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    send(&mut ws, identify_frame(&format!("Bot {TOKEN}"), INTENTS)).await;
    assert_eq!(close_code(&mut ws).await, Some(4014));

    // Without MESSAGE_CONTENT the same bot is let in.
    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    send(&mut ws, identify_frame(&format!("Bot {TOKEN}"), 1 << 9)).await;
    assert_eq!(next_frame(&mut ws).await["t"], "READY");

    standin.set_token_valid(false);
    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    send(&mut ws, identify_frame(TOKEN, 1 << 9)).await;
    assert_eq!(close_code(&mut ws).await, Some(4004));
}

#[tokio::test]
async fn reconnect_and_invalid_session_reach_every_socket() {
    let standin = start().await;
    let (mut ws, ready) = identified(&standin).await;
    standin.send_reconnect();
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::Reconnect));
    standin.invalidate_sessions(true);
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::InvalidateSession(true)));
    standin.invalidate_sessions(false);
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::InvalidateSession(false)));

    // The forgotten session cannot be resumed.
    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    let resume = json!({ "op": 6, "d": { "seq": 1, "session_id": ready["session_id"], "token": TOKEN } });
    send(&mut ws, resume).await;
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::InvalidateSession(false)));
}

#[tokio::test]
async fn a_normal_close_ends_the_session() {
    let standin = start().await;
    let (mut ws, ready) = identified(&standin).await;
    ws.close(None).await.ok();
    drop(ws);
    // Closing with no code is not a normal close: the session survives that.
    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    let resume = json!({ "op": 6, "d": { "seq": 1, "session_id": ready["session_id"], "token": TOKEN } });
    send(&mut ws, resume.clone()).await;
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::Dispatch(2, DispatchEvent::Resumed)));
    let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.close(Some(frame)).await.ok();
    // Let the stand-in see the close before the next RESUME.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ws = connect(&standin.gateway_url()).await;
    next_frame(&mut ws).await;
    send(&mut ws, resume).await;
    assert!(matches!(next_event(&mut ws).await, GatewayEvent::InvalidateSession(false)));
}
