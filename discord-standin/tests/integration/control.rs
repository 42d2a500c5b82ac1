//! The binary and its control API, as a Playwright run uses them.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};
use twilight_model::channel::Message;

use crate::support::{api_at, http};

/// Kills the stand-in process this test started, even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_its_urls_and_serves_the_control_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_discord-standin"))
        .args(["--port", "0", "--token", "t-123"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the stand-in");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("one line");
    let urls: Value = serde_json::from_str(&line).expect("a JSON line");
    let api_url = urls["api_url"].as_str().expect("api_url").to_owned();
    assert!(api_url.starts_with("http://127.0.0.1:"));
    assert_eq!(urls["gateway_url"].as_str(), Some(api_url.replace("http://", "ws://").as_str()));

    let body = json!({ "user_id": 42, "user_name": "dana", "content": "hi" });
    let posted = http(&api_url, "POST", "/_standin/channels/600/user_messages", None, Some(&body)).await;
    assert_eq!(posted.status, 200);
    let message: Message = posted.parse();
    assert_eq!((message.author.name.as_str(), message.content.as_str()), ("dana", "hi"));

    let reply = api_at(&api_url, "t-123", "POST", "channels/600/messages", json!({ "content": "bridged" })).await;
    assert_eq!(reply.status, 200, "the --token is the accepted one");

    let listed = http(&api_url, "GET", "/_standin/channels/600/messages", None, None).await;
    let messages: Vec<Message> = listed.parse();
    assert_eq!(messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["hi", "bridged"]);

    let delete = format!("/_standin/channels/600/messages/{}/delete", message.id);
    assert_eq!(http(&api_url, "POST", &delete, None, None).await.status, 204);
    assert_eq!(http(&api_url, "POST", &delete, None, None).await.status, 404);
    let unknown = http(&api_url, "POST", "/_standin/channels/999/user_messages", None, Some(&body)).await;
    assert_eq!(unknown.status, 404);
    drop(running);
}
