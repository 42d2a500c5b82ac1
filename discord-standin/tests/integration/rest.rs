//! REST as the bridge's client meets it: shapes, errors, nonces, rate limits and faults.

use std::time::Duration;

use discord_standin::{Config, Fault};
use serde_json::json;
use twilight_model::{
    channel::{Channel, Message},
    user::CurrentUser,
};

use crate::support::{ApiError, TOKEN, api, http, start, start_with};

#[tokio::test]
async fn the_bot_and_its_channels_parse_as_twilight_types() {
    let standin = start().await;
    let me: CurrentUser = api(&standin, "GET", "users/@me", None).await.parse();
    assert_eq!((me.id.get(), me.name.as_str(), me.bot), (900, "burner-bridge", true));
    let channel: Channel = api(&standin, "GET", "channels/601", None).await.parse();
    assert_eq!(channel.name.as_deref(), Some("random"));
    let missing = api(&standin, "GET", "channels/999", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error(), ApiError::General { code: 10003, message: "Unknown Channel".into() });
    let unknown = api(&standin, "GET", "guilds/500/roles", None).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error(), ApiError::General { code: 0, message: "404: Not Found".into() });
}

#[tokio::test]
async fn a_missing_or_wrong_token_gets_401_and_the_prefix_is_optional() {
    let standin = start().await;
    let base = standin.api_url();
    let unauthorized = ApiError::General { code: 0, message: "401: Unauthorized".into() };
    assert_eq!(http(&base, "GET", "/api/v10/users/@me", None, None).await.error(), unauthorized);
    assert_eq!(http(&base, "GET", "/api/v10/users/@me", Some("Bot nope"), None).await.status, 401);
    assert_eq!(http(&base, "GET", "/api/v10/users/@me", Some(TOKEN), None).await.status, 200);
    standin.set_token_valid(false);
    assert_eq!(api(&standin, "GET", "users/@me", None).await.status, 401);
    let statuses: Vec<u16> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 200, 401]);
}

#[tokio::test]
async fn the_bot_posts_edits_and_deletes_its_own_messages() {
    let standin = start().await;
    let body = json!({ "content": "hello", "allowed_mentions": { "parse": [] } });
    let posted: Message = api(&standin, "POST", "channels/600/messages", Some(body)).await.parse();
    assert!(posted.author.bot);
    assert_eq!(posted.author.id.get(), standin.bot_id());
    assert_eq!(standin.messages(600).len(), 1);

    let path = format!("channels/600/messages/{}", posted.id);
    let edited: Message = api(&standin, "PATCH", &path, Some(json!({ "content": "hello again" }))).await.parse();
    assert_eq!(edited.content, "hello again");
    assert!(edited.edited_timestamp.is_some());

    let someone = standin.post_as_user(600, 42, "dana", "mine");
    let theirs = format!("channels/600/messages/{}", someone.id);
    let refused = api(&standin, "PATCH", &theirs, Some(json!({ "content": "x" }))).await;
    let text = "Cannot edit a message authored by another user";
    assert_eq!((refused.status, refused.error()), (403, ApiError::General { code: 50005, message: text.into() }));

    let deleted = api(&standin, "DELETE", &path, None).await;
    assert_eq!((deleted.status, &deleted.body), (204, &serde_json::Value::Null));
    let again = api(&standin, "DELETE", &path, None).await;
    assert_eq!(again.error(), ApiError::General { code: 10008, message: "Unknown Message".into() });
    assert_eq!(standin.messages(600).iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["mine"]);
    let recorded = &standin.requests()[0];
    assert_eq!((recorded.method.as_str(), recorded.path.as_str()), ("POST", "/api/v10/channels/600/messages"));
    assert_eq!(recorded.body["content"], "hello");
}

#[tokio::test]
async fn over_long_and_empty_messages_are_refused_with_discords_codes() {
    let standin = start().await;
    let long = api(&standin, "POST", "channels/600/messages", Some(json!({ "content": "a".repeat(2001) }))).await;
    assert_eq!(long.status, 400);
    assert!(matches!(long.error(), ApiError::General { code: 50035, .. }));
    let embed = json!({ "embeds": [{ "description": "a".repeat(4097) }] });
    assert_eq!(api(&standin, "POST", "channels/600/messages", Some(embed)).await.status, 400);
    let empty = api(&standin, "POST", "channels/600/messages", Some(json!({ "content": "" }))).await;
    assert_eq!(empty.error(), ApiError::General { code: 50006, message: "Cannot send an empty message".into() });
    let elsewhere = api(&standin, "POST", "channels/999/messages", Some(json!({ "content": "x" }))).await;
    assert_eq!(elsewhere.status, 404);
    assert!(standin.messages(600).is_empty());
}

#[tokio::test]
async fn enforce_nonce_returns_the_first_message_instead_of_a_second() {
    let standin = start().await;
    let body = json!({ "content": "once", "nonce": "burner-17", "enforce_nonce": true });
    let first: Message = api(&standin, "POST", "channels/600/messages", Some(body.clone())).await.parse();
    let second: Message = api(&standin, "POST", "channels/600/messages", Some(body)).await.parse();
    assert_eq!(first.id, second.id);
    assert_eq!(standin.messages(600).len(), 1);
    // Without enforce_nonce Discord does not deduplicate.
    let loose = json!({ "content": "once", "nonce": "burner-17" });
    api(&standin, "POST", "channels/600/messages", Some(loose)).await;
    assert_eq!(standin.messages(600).len(), 2);
}

#[tokio::test]
async fn every_response_carries_the_headers_and_an_empty_bucket_answers_429() {
    let config = Config { route_limit: 2, route_window: Duration::from_secs(5), ..Config::default() };
    let standin = start_with(config).await;
    let post = || api(&standin, "POST", "channels/600/messages", Some(json!({ "content": "x" })));
    let first = post().await;
    assert_eq!((first.header("x-ratelimit-limit"), first.header("x-ratelimit-remaining")), ("2", "1"));
    let reset_after: f64 = first.header("x-ratelimit-reset-after").parse().expect("float");
    assert!(reset_after > 4.0 && reset_after <= 5.0);
    let reset: f64 = first.header("x-ratelimit-reset").parse().expect("float");
    assert!(reset > 1.7e9);
    let bucket = first.header("x-ratelimit-bucket").to_owned();
    assert!(!bucket.is_empty() && bucket.chars().all(|c| c.is_ascii_hexdigit()));
    post().await;
    let limited = post().await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-ratelimit-remaining"), "0");
    assert_eq!(limited.header("x-ratelimit-scope"), "user");
    assert_eq!(limited.header("x-ratelimit-bucket"), bucket);
    assert_eq!(limited.header("retry-after"), "5");
    assert!(!limited.headers.contains_key("x-ratelimit-global"));
    match limited.error() {
        ApiError::Ratelimited { global, retry_after, .. } => assert!(!global && retry_after > 4.0),
        other => panic!("expected a rate-limit body, got {other:?}"),
    }
    // Another channel has its own bucket.
    assert_eq!(api(&standin, "POST", "channels/601/messages", Some(json!({ "content": "x" }))).await.status, 200);
}

#[tokio::test]
async fn a_global_429_refuses_everything_until_retry_after_has_passed() {
    let standin = start().await;
    standin.fail_next(1, Fault::RateLimited { global: true, retry_after: Duration::from_millis(300) });
    let limited = api(&standin, "GET", "users/@me", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!((limited.header("x-ratelimit-global"), limited.header("x-ratelimit-scope")), ("true", "global"));
    assert_eq!(limited.header("retry-after"), "1");
    assert!(matches!(limited.error(), ApiError::Ratelimited { global: true, .. }));
    let impatient = api(&standin, "POST", "channels/600/messages", Some(json!({ "content": "x" }))).await;
    assert_eq!(impatient.status, 429);
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(api(&standin, "GET", "users/@me", None).await.status, 200);
    let requests = standin.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 429, 200]);
    assert!(requests[2].at.duration_since(requests[0].at) >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_global_limit_counts_requests_per_second() {
    let standin = start_with(Config { global_per_sec: 3, ..Config::default() }).await;
    for _ in 0..3 {
        assert_eq!(api(&standin, "GET", "users/@me", None).await.status, 200);
    }
    let limited = api(&standin, "GET", "channels/600", None).await;
    assert_eq!((limited.status, limited.header("x-ratelimit-scope")), (429, "global"));
}

#[tokio::test]
async fn injected_faults_answer_in_order_then_service_resumes() {
    let standin = start().await;
    standin.fail_next(1, Fault::Unauthorized);
    standin.fail_next(1, Fault::Forbidden);
    standin.fail_next(1, Fault::ServerError);
    standin.fail_next(1, Fault::RateLimited { global: false, retry_after: Duration::from_millis(1500) });
    let get = || api(&standin, "GET", "channels/600", None);
    assert_eq!(get().await.error(), ApiError::General { code: 0, message: "401: Unauthorized".into() });
    assert_eq!(get().await.error(), ApiError::General { code: 50013, message: "Missing Permissions".into() });
    let bad_gateway = get().await;
    assert_eq!(
        (bad_gateway.status, bad_gateway.error()),
        (502, ApiError::General { code: 0, message: "Bad Gateway".into() })
    );
    let limited = get().await;
    assert_eq!(
        (limited.status, limited.header("x-ratelimit-scope"), limited.header("retry-after")),
        (429, "user", "2")
    );
    assert_eq!(limited.header("x-ratelimit-reset-after"), "1.500");
    assert_eq!(get().await.status, 200);
}
