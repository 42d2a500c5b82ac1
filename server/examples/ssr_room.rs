//! Server-side rendering speed: starts the release `burner` on core 0, fills the lobby with 50
//! messages of ~100 characters over the WebSocket, then runs `wrk` (Debian's `wrk`) on core 1
//! against the room page and the home page, and prints what wrk says.
//!
//! cargo run --release -p server --example ssr_room
//! `BURNER_BIN` picks the binary (default: the `burner` next to this example). Results are
//! recorded in docs/BENCHMARKS.md.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

mod support;

use futures_util::{SinkExt, StreamExt};
use std::process::Command;
use support::Server;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = Server::start(Some(0), &[]).await?;
    let mut ws = server.join("lobby", 0).await?;
    for i in 0..50 {
        let text = format!("Message number {i}: {}", "lorem ipsum dolor sit amet ".repeat(3));
        let frame = serde_json::json!({ "type": "send_message", "text": text, "client_ref": format!("f{i}") });
        ws.send(Message::text(frame.to_string())).await?;
        while let Some(Ok(message)) = ws.next().await {
            if message.to_text().is_ok_and(|t| t.contains("\"message_accepted\"")) {
                break;
            }
        }
    }
    let page = server.http("GET", "/r/lobby", "").await?;
    for (path, label) in [("/r/lobby", format!("/r/lobby with 50 messages ({} bytes)", page.len())), ("/", "/".into())]
    {
        let url = format!("http://127.0.0.1:{}{path}", server.port);
        let output =
            Command::new("taskset").args(["-c", "1", "wrk", "-t1", "-c32", "-d10s", "--latency", &url]).output()?;
        let report = String::from_utf8_lossy(&output.stdout);
        let pick = |key: &str| {
            let line = report.lines().find(|l| l.trim_start().starts_with(key));
            line.and_then(|l| l.split_whitespace().last()).unwrap_or("?").to_owned()
        };
        println!("{label}: {} requests/s, p50 {}, p99 {}", pick("Requests/sec"), pick("50%"), pick("99%"));
    }
    drop(ws);
    Ok(())
}
