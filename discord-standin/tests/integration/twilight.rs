//! The real client: twilight-gateway 0.18's `Shard`, configured as the bridge configures it,
//! against the stand-in. Proves READY, dispatches, the resume path after a TCP drop, op 7,
//! op 9 and the fatal close codes work with the library itself, not only with our reading of it.

use std::time::Duration;

use discord_standin::{Config, StandIn};
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _, queue::InMemoryQueue,
};

use crate::support::{TOKEN, start, start_with};

fn new_shard(standin: &StandIn, intents: Intents) -> Shard<InMemoryQueue> {
    // twilight builds a rustls config even for ws://, so a crypto provider must be installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ConfigBuilder::new(TOKEN.to_owned(), intents)
        .proxy_url(standin.gateway_url())
        // max_concurrency 0: IDENTIFY is granted at once instead of 5 s apart.
        .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
        .build();
    Shard::with_config(ShardId::ONE, config)
}

const WANTED: EventTypeFlags = EventTypeFlags::READY
    .union(EventTypeFlags::RESUMED)
    .union(EventTypeFlags::MESSAGE_CREATE)
    .union(EventTypeFlags::MESSAGE_UPDATE)
    .union(EventTypeFlags::MESSAGE_DELETE);

/// The next wanted event (close frames always come through), skipping the non-fatal errors twilight reports while reconnecting.
async fn next(shard: &mut Shard<InMemoryQueue>) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match shard.next_event(WANTED).await {
                Some(Ok(event)) => return Some(event),
                Some(Err(_)) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("an event within 3 s")
}

async fn ready(shard: &mut Shard<InMemoryQueue>) {
    assert!(matches!(next(shard).await, Some(Event::Ready(_))));
}

#[tokio::test]
async fn a_shard_gets_ready_and_messages() {
    let standin = start().await;
    let mut shard = new_shard(&standin, Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT);
    ready(&mut shard).await;
    assert_eq!(shard.resume_url(), Some(format!("{}/resume", standin.gateway_url()).as_str()));
    let posted = standin.post_as_user(600, 42, "dana", "hi from discord");
    match next(&mut shard).await {
        Some(Event::MessageCreate(create)) => {
            assert_eq!((create.id, create.content.as_str()), (posted.id, "hi from discord"))
        }
        other => panic!("expected MESSAGE_CREATE, got {other:?}"),
    }
    standin.edit_as_user(600, posted.id.get(), "edited");
    assert!(matches!(next(&mut shard).await, Some(Event::MessageUpdate(u)) if u.content == "edited"));
    standin.delete_as_user(600, posted.id.get());
    assert!(matches!(next(&mut shard).await, Some(Event::MessageDelete(d)) if d.id == posted.id));
}

#[tokio::test]
async fn after_a_tcp_drop_the_shard_resumes_on_the_resume_url_and_misses_nothing() {
    let standin = start().await;
    let mut shard = new_shard(&standin, Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT);
    ready(&mut shard).await;
    standin.drop_gateway();
    let missed = standin.post_as_user(600, 42, "dana", "while you were away");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match next(&mut shard).await {
            Some(Event::MessageCreate(create)) => seen.push(format!("create {}", create.id)),
            Some(Event::Resumed) => seen.push("resumed".to_owned()),
            Some(Event::GatewayClose(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec![format!("create {}", missed.id), "resumed".to_owned()]);
    let counters = standin.counters();
    assert_eq!((counters.identifies, counters.resume_connections, counters.resumed_ok), (1, 1, 1));
}

#[tokio::test]
async fn op7_resumes_and_op9_false_identifies_anew() {
    let standin = start().await;
    let mut shard = new_shard(&standin, Intents::GUILD_MESSAGES);
    ready(&mut shard).await;
    standin.send_reconnect();
    loop {
        match next(&mut shard).await {
            Some(Event::Resumed) => break,
            Some(Event::GatewayClose(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    standin.invalidate_sessions(false);
    loop {
        match next(&mut shard).await {
            Some(Event::Ready(_)) => break,
            Some(Event::GatewayClose(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let counters = standin.counters();
    assert_eq!((counters.identifies, counters.resumed_ok), (2, 1));
}

#[tokio::test]
async fn a_rejected_token_and_a_disallowed_intent_are_fatal() {
    let standin = start().await;
    standin.set_token_valid(false);
    let mut shard = new_shard(&standin, Intents::GUILD_MESSAGES);
    match next(&mut shard).await {
        Some(Event::GatewayClose(Some(frame))) => assert_eq!(frame.code, 4004),
        other => panic!("expected close 4004, got {other:?}"),
    }
    assert!(next(&mut shard).await.is_none(), "4004 is fatal: the stream ends");

    let standin = start_with(Config { message_content_intent: false, ..Config::default() }).await;
    let mut shard = new_shard(&standin, Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT);
    match next(&mut shard).await {
        Some(Event::GatewayClose(Some(frame))) => assert_eq!(frame.code, 4014),
        other => panic!("expected close 4014, got {other:?}"),
    }
    assert!(next(&mut shard).await.is_none(), "4014 is fatal: the stream ends");
}
