//! Server-side rendering speed: starts the release `burner` on core 0, fills the lobby with 50
//! messages of ~100 characters over the WebSocket, then runs `wrk` (Debian's `wrk`) on core 1
//! against the room page and the home page, and prints what wrk says: with rendered pages kept
//! (the default), with every request rendering (`BURNER_PAGE_CACHE_MB=0`), and with the room
//! changing 50 times a second while wrk runs.
//!
//! cargo run --release -p server --example ssr_room
//! `BURNER_BIN` picks the binary (default: the `burner` next to this example). Results are
//! recorded in docs/BENCHMARKS.md.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

mod support;

use futures_util::{SinkExt, StreamExt};
use std::process::Command;
use support::{Server, Socket};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Pages kept once rendered (the default), then every request rendering (the cache off).
    for (setting, mb) in [("pages kept", "16"), ("every request renders", "0")] {
        println!("{setting} (BURNER_PAGE_CACHE_MB={mb}):");
        let server = Server::start(Some(0), &[("BURNER_PAGE_CACHE_MB", mb)]).await?;
        let mut ws = server.join("lobby", 0).await?;
        for i in 0..50 {
            say(&mut ws, i).await?;
        }
        let page = server.http("GET", "/r/lobby", "").await?;
        let label = format!("/r/lobby with 50 messages ({} bytes)", page.len());
        println!("  {label}: {}", wrk(server.port, "/r/lobby", 10)?);
        println!("  /: {}", wrk(server.port, "/", 10)?);
        if mb != "0" {
            // A busy room: a message every 20 ms changes the page 50 times a second.
            let busy = tokio::spawn(async move {
                let mut i = 50;
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
                loop {
                    tick.tick().await;
                    if say(&mut ws, i).await.is_err() {
                        break;
                    }
                    i += 1;
                }
            });
            let port = server.port;
            let report = tokio::task::spawn_blocking(move || wrk(port, "/r/lobby", 10)).await??;
            println!("  /r/lobby while it gets 50 messages/s: {report}");
            busy.abort();
        }
    }
    Ok(())
}

/// Posts message number `i` (~100 characters) and waits until the room took it.
async fn say(ws: &mut Socket, i: usize) -> anyhow::Result<()> {
    let text = format!("Message number {i}: {}", "lorem ipsum dolor sit amet ".repeat(3));
    let frame = serde_json::json!({ "type": "send_message", "text": text, "client_ref": format!("f{i}") });
    ws.send(Message::text(frame.to_string())).await?;
    while let Some(Ok(message)) = ws.next().await {
        if message.to_text().is_ok_and(|t| t.contains("\"message_accepted\"")) {
            break;
        }
    }
    Ok(())
}

/// `wrk` on core 1 for `seconds` against `path`: requests/s, p50 and p99 as it printed them.
fn wrk(port: u16, path: &str, seconds: u32) -> anyhow::Result<String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let duration = format!("{seconds}s");
    let output =
        Command::new("taskset").args(["-c", "1", "wrk", "-t1", "-c32", "-d", &duration, "--latency", &url]).output()?;
    if !output.status.success() {
        anyhow::bail!(
            "wrk did not run ({}): {} (Debian: apt-get install wrk)",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let report = String::from_utf8_lossy(&output.stdout);
    let pick = |key: &str| {
        let line = report.lines().find(|l| l.trim_start().starts_with(key));
        line.and_then(|l| l.split_whitespace().last()).unwrap_or("?").to_owned()
    };
    Ok(format!("{} requests/s, p50 {}, p99 {}", pick("Requests/sec"), pick("50%"), pick("99%")))
}
