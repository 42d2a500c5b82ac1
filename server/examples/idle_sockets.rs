//! Memory per idle WebSocket: starts the release `burner`, opens sockets that join rooms of 100
//! and then stay quiet, and reads the server's resident memory (VmRSS) as they pile up. The
//! cost per socket is the slope between two counts, so fixed start-up memory does not count.
//!
//! cargo run --release -p server --example idle_sockets -- [SOCKETS, default 2000]
//! Results are recorded in docs/BENCHMARKS.md.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

use futures_util::{SinkExt, StreamExt};
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const ROOM_SIZE: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let port = free_port()?;
    let mut server = start_server(port)?;
    let result = measure(port, server.id(), total).await;
    // SIGTERM, so a server run under a profiler can write its report.
    Command::new("kill").arg(server.id().to_string()).status()?;
    server.wait()?;
    result
}

async fn measure(port: u16, pid: u32, total: usize) -> anyhow::Result<()> {
    wait_until_up(port).await?;
    let mut rooms = Vec::new();
    for i in 0..total.div_ceil(ROOM_SIZE) {
        rooms.push(create_room(port, &format!("bench {i}")).await?);
    }
    let mut sockets = Vec::with_capacity(total);
    let first = (total / 5).max(1);
    println!("sockets  server VmRSS");
    let mut samples = Vec::new();
    for target in [first, total] {
        while sockets.len() < target {
            let n = sockets.len();
            sockets.push(join(port, &rooms[n / ROOM_SIZE], n).await?);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_kib(pid)?;
        println!("{:>7}  {:>8} KiB", sockets.len(), rss);
        samples.push((sockets.len(), rss));
    }
    let ((n1, r1), (n2, r2)) = (samples[0], samples[1]);
    let per_socket = (r2 as f64 - r1 as f64) / (n2 - n1) as f64;
    println!("per idle joined socket: {per_socket:.1} KiB ({:.0} bytes)", per_socket * 1024.0);
    println!("10 000 idle sockets would add {:.1} MiB", per_socket * 10_000.0 / 1024.0);
    drop(sockets);
    Ok(())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, joins, reads the welcome and the join, then keeps the socket without reading.
async fn join(port: u16, room: &str, n: usize) -> anyhow::Result<Socket> {
    let mut request = format!("ws://127.0.0.1:{port}/ws").into_client_request()?;
    request.headers_mut().insert("origin", HeaderValue::from_str(&format!("http://127.0.0.1:{port}"))?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let join = serde_json::json!({
        "type": "join", "room": room, "nickname": format!("idle{n}"), "session": format!("bench-session-{n:012}"),
    });
    ws.send(Message::text(join.to_string())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"joined\"") => return Ok(ws),
            Some(Ok(Message::Text(text))) if text.contains("\"error\"") => anyhow::bail!("join refused: {text}"),
            Some(Ok(_)) => {}
            other => anyhow::bail!("socket ended: {other:?}"),
        }
    }
}

async fn create_room(port: u16, name: &str) -> anyhow::Result<String> {
    let body = format!("name={}&limit={ROOM_SIZE}&listed=on", name.replace(' ', "+"));
    let response = http(port, "POST", "/api/create_room", &body).await?;
    let json = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(json)?;
    Ok(summary["slug"].as_str().unwrap_or_default().to_owned())
}

async fn http(port: u16, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

async fn wait_until_up(port: u16) -> anyhow::Result<()> {
    for _ in 0..100 {
        if http(port, "GET", "/healthz", "").await.is_ok_and(|r| r.contains("\"ok\"")) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not start")
}

fn start_server(port: u16) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let binary = std::env::var("BURNER_BIN")
        .map(Into::into)
        .unwrap_or_else(|_| exe.parent().and_then(|p| p.parent()).map(|p| p.join("burner")).unwrap_or_default());
    Ok(Command::new(binary)
        .env("BURNER_ADDR", format!("127.0.0.1:{port}"))
        .env("BURNER_LOG", "warn")
        .env("BURNER_JOIN_BURST_PER_IP", "1000000")
        .env("BURNER_CONNECT_BURST_PER_IP", "1000000")
        .env("BURNER_MAX_CONNECTIONS_PER_IP", "1000000")
        .env("BURNER_ROOM_CREATE_BURST", "100000")
        .stdout(Stdio::null())
        .spawn()?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
