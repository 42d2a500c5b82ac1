//! The Discord bridge's speed against the local Discord stand-in (in this process): the release
//! `burner` with the bridge on, the lobby linked to the stand-in's channel, then
//!
//! 1. latency: 100 round trips, one every 100 ms: a member posts, the stand-in records the bot's
//!    request (Burner → Discord), a Discord user answers at once, the member receives it
//!    (Discord → Burner); p50 / p99 of each leg and of the round trip;
//! 2. sustained rate: 300 messages from Burner as fast as a member may post, the time until the
//!    stand-in holds them all (the bridge paces itself under Discord's 50 requests a second); and
//!    300 messages from 30 Discord users at once, the time until the member has them all.
//!
//! cargo run --release -p server --example discord_bridge   (or `make bench-discord`)
//! Results are recorded in docs/BENCHMARKS.md. Timings, not tests: nothing here can fail a build.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

mod support;

use discord_standin::{Config as StandInConfig, StandIn};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use support::{Server, Socket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const CHANNEL: u64 = 600;
const ROUND_TRIPS: usize = 100;
/// Between round trips: 10 a second, under the bridge's own pace (40 requests a second), so the
/// latency is the bridge's, not its rate limiter's.
const ROUND_TRIP_EVERY: Duration = Duration::from_millis(100);
const BURST: usize = 300;
const MOD_TOKEN: &str = "bench-moderator-token";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let discord = StandIn::start(StandInConfig::default()).await?;
    let api = discord.api_url();
    let gateway = discord.gateway_url();
    let token = StandInConfig::default().token;
    let server = Server::start(
        None,
        &[
            ("BURNER_DISCORD_TOKEN", &token),
            ("BURNER_DISCORD_API_URL", &api),
            ("BURNER_DISCORD_GATEWAY_URL", &gateway),
            ("BURNER_MOD_TOKEN", MOD_TOKEN),
        ],
    )
    .await?;
    wait_connected(&server).await?;
    // In the lobby first, so the bridge's arrival is seen.
    let mut member = server.join("lobby", 0).await?;
    link(&server).await?;
    // The bridge takes its place in the lobby.
    read_until(&mut member, |text| text.contains("\"member_joined\"") && text.contains("\"Discord\"")).await?;

    let (mut out_leg, mut in_leg, mut round) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ROUND_TRIPS {
        tokio::time::sleep(ROUND_TRIP_EVERY).await;
        let started = Instant::now();
        say(&mut member, &format!("ping {i}")).await?;
        let needle = format!("ping {i}");
        let arrived = loop {
            let found =
                discord.requests().into_iter().rev().find(|r| r.status == 200 && r.body.to_string().contains(&needle));
            if let Some(found) = found {
                break found.at;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        out_leg.push(arrived.saturating_duration_since(started));
        let answered = Instant::now();
        discord.post_as_user(CHANNEL, 42, "dana", &format!("pong {i}"));
        let pong = format!("\"pong {i}\"");
        read_until(&mut member, |text| text.contains("\"message_posted\"") && text.contains(&pong)).await?;
        in_leg.push(answered.elapsed());
        round.push(started.elapsed());
    }

    // Sustained, Burner → Discord.
    let before = discord.messages(CHANNEL).len();
    let started = Instant::now();
    for i in 0..BURST {
        say(&mut member, &format!("burst {i}")).await?;
    }
    while discord.messages(CHANNEL).len() < before + BURST {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let outward = BURST as f64 / started.elapsed().as_secs_f64();
    let refused = discord.requests().iter().filter(|r| r.status == 429).count();

    // Sustained, Discord → Burner (30 people, 10 messages each).
    let started = Instant::now();
    for i in 0..BURST {
        discord.post_as_user(CHANNEL, 1_000 + (i % 30) as u64, &format!("user{}", i % 30), &format!("flood {i}"));
    }
    let mut seen = 0;
    while seen < BURST {
        let text = next_text(&mut member).await?;
        if text.contains("\"message_posted\"") && text.contains("\"flood ") {
            seen += 1;
        }
    }
    let inward = BURST as f64 / started.elapsed().as_secs_f64();

    println!("Discord bridge against the local stand-in ({ROUND_TRIPS} round trips, one every {ROUND_TRIP_EVERY:?})");
    println!("| leg | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    for (name, samples) in [
        ("Burner → Discord (post to the bot's request)", &mut out_leg),
        ("Discord → Burner (gateway event to the member)", &mut in_leg),
        ("round trip", &mut round),
    ] {
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!("| {name} | {:.2} ms | {:.2} ms | {:.2} ms |", ms(at(0.50)), ms(at(0.99)), ms(at(1.0)));
    }
    println!();
    println!("sustained Burner → Discord: {outward:.1} messages/s ({BURST} messages; 429s received: {refused})");
    println!("sustained Discord → Burner: {inward:.1} messages/s ({BURST} messages from 30 Discord users)");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn wait_connected(server: &Server) -> anyhow::Result<()> {
    for _ in 0..100 {
        if server.http("GET", "/healthz", "").await?.contains("\"state\":\"connected\"") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the bridge did not connect")
}

/// Signs in as a moderator and links the lobby to the stand-in's channel.
async fn link(server: &Server) -> anyhow::Result<()> {
    let signed_in = server.http("POST", "/mod/sign-in", &format!("token={MOD_TOKEN}")).await?;
    let cookie = signed_in
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: ").or_else(|| line.strip_prefix("Set-Cookie: ")))
        .and_then(|value| value.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie: {signed_in}"))?
        .to_owned();
    let body =
        serde_json::json!({"action": {"action": "link_discord", "room": "lobby", "channel_id": CHANNEL.to_string()}})
            .to_string();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await?;
    let request = format!(
        "POST /api/moderate HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nAccept: application/json\r\n\
         Cookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.port,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    anyhow::ensure!(response.starts_with("HTTP/1.1 200"), "linking failed: {response}");
    Ok(())
}

async fn say(ws: &mut Socket, text: &str) -> anyhow::Result<()> {
    let frame = serde_json::json!({"type": "send_message", "text": text, "client_ref": text});
    ws.send(Message::text(frame.to_string())).await?;
    let receipt = format!("\"client_ref\":\"{text}\"");
    read_until(ws, |t| t.contains("\"message_accepted\"") && t.contains(&receipt)).await
}

async fn next_text(ws: &mut Socket) -> anyhow::Result<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                anyhow::ensure!(!text.contains("\"type\":\"error\""), "refused: {text}");
                return Ok(text.to_string());
            }
            Ok(Some(Ok(_))) => {}
            other => anyhow::bail!("socket ended: {other:?}"),
        }
    }
}

async fn read_until(ws: &mut Socket, done: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    while !done(&next_text(ws).await?) {}
    Ok(())
}
