//! What the benchmark examples share: starting the release `burner` with the limits that would
//! get in a load test's way opened up, talking HTTP and WebSocket to it, and reading /proc.

#![allow(dead_code)] // each example uses its own part

use futures_util::{SinkExt, StreamExt};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running server, stopped (SIGTERM, so a profiler can write its report) and its data
/// directory removed when dropped.
pub struct Server {
    pub port: u16,
    child: Child,
    data: PathBuf,
}

impl Server {
    /// The binary in `BURNER_BIN` (default: the `burner` next to this example), on core
    /// `core` when given (`taskset`), with `extra` settings on top of the opened-up limits.
    pub async fn start(core: Option<u32>, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = std::env::temp_dir().join(format!("burner-bench-{}-{port}", std::process::id()));
        let exe = std::env::current_exe()?;
        let binary: PathBuf = std::env::var("BURNER_BIN")
            .map(Into::into)
            .unwrap_or_else(|_| exe.parent().and_then(|p| p.parent()).map(|p| p.join("burner")).unwrap_or_default());
        let mut command = match core {
            Some(core) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(core.to_string()).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .env("BURNER_ADDR", format!("127.0.0.1:{port}"))
            .env("BURNER_DATA_DIR", &data)
            .env("BURNER_LOG", "warn")
            .env("BURNER_JOIN_BURST_PER_IP", "1000000")
            .env("BURNER_CONNECT_BURST_PER_IP", "1000000")
            .env("BURNER_MAX_CONNECTIONS_PER_IP", "1000000")
            .env("BURNER_ROOM_CREATE_BURST", "100000")
            .env("BURNER_MESSAGE_BURST", "1000000")
            .env("BURNER_MESSAGE_BURST_PER_IP", "1000000")
            .env("BURNER_FRAMES_PER_SECOND", "1000000")
            .env("BURNER_REPEATS_ALLOWED", "1000000")
            .env("BURNER_STRIKES_TO_MUTE", "1000000");
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = command.stdout(Stdio::null()).spawn()?;
        let server = Self { port, child, data };
        server.wait_until_up().await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    async fn wait_until_up(&self) -> anyhow::Result<()> {
        for _ in 0..100 {
            if self.http("GET", "/healthz", "").await.is_ok_and(|r| r.contains("\"ok\"")) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the server did not start")
    }

    /// One HTTP/1.1 request (a form as the body), the whole raw answer.
    pub async fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nAccept: application/json\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    /// A listed room of `limit` with profanity filtering off; its slug.
    pub async fn create_room(&self, name: &str, limit: usize) -> anyhow::Result<String> {
        let body = format!("name={}&limit={limit}&listed=on&profanity=off", name.replace(' ', "+"));
        let response = self.http("POST", "/api/create_room", &body).await?;
        let json = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let summary: serde_json::Value = serde_json::from_str(json)?;
        Ok(summary["slug"].as_str().unwrap_or_default().to_owned())
    }

    /// Connects, joins `room` as member `n`, reads up to the join.
    pub async fn join(&self, room: &str, n: usize) -> anyhow::Result<Socket> {
        let mut request = format!("ws://127.0.0.1:{}/ws", self.port).into_client_request()?;
        request.headers_mut().insert("origin", HeaderValue::from_str(&format!("http://127.0.0.1:{}", self.port))?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        let join = serde_json::json!({
            "type": "join", "room": room, "nickname": format!("m{n}"), "session": format!("bench-session-{n:012}"),
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).unwrap_or(&"0").parse::<f64>()? + fields.get(12).unwrap_or(&"0").parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
