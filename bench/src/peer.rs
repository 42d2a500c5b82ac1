//! The servers measured side by side, how each is started (pinned to core 0), and how a member
//! joins a room and says something in each one's protocol.

use crate::ws::{self, Conn};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// How a server's members talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Burner's own: `join`, then `send_message`; messages arrive as `message_posted`.
    Burner,
    /// `GET /ws?room=R`; every text frame goes to the whole room verbatim.
    Plain,
    /// Socket.IO (Engine.IO 4 over WebSocket): `join` event, then `msg` events.
    SocketIo,
}

#[derive(Clone)]
pub struct Peer {
    pub name: &'static str,
    pub protocol: Protocol,
    /// Whether a message goes out in Burner's frame (its author, number and time around the
    /// text) rather than as it came in: Burner, and Bun.serve when told to (`bun.js --stamped`).
    pub burners_frames: bool,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// Where the repository's pieces are: the release binaries, the npm peers, the Python venv.
pub struct Paths {
    pub target: PathBuf,
    pub peers: PathBuf,
    pub venv: PathBuf,
}

impl Peer {
    pub fn all(paths: &Paths, data: &Path) -> Vec<Peer> {
        let node = PathBuf::from("node");
        let js = |file: &str| paths.peers.join(file).to_string_lossy().into_owned();
        vec![
            Peer::bun(paths, false),
            Peer {
                name: "Burner",
                protocol: Protocol::Burner,
                burners_frames: true,
                program: paths.target.join("burner"),
                args: vec![],
                env: burner_env(data),
            },
            Peer {
                name: "axum + broadcast",
                protocol: Protocol::Plain,
                burners_frames: false,
                program: paths.target.join("axum-peer"),
                args: vec![],
                env: vec![],
            },
            Peer {
                name: "Node ws",
                protocol: Protocol::Plain,
                burners_frames: false,
                program: node.clone(),
                args: vec![js("ws.mjs")],
                env: vec![],
            },
            Peer {
                name: "Socket.IO",
                protocol: Protocol::SocketIo,
                burners_frames: false,
                program: node,
                args: vec![js("socketio.mjs")],
                env: vec![],
            },
            Peer {
                name: "Flask-SocketIO",
                protocol: Protocol::SocketIo,
                burners_frames: false,
                program: paths.venv.join("bin/python"),
                args: vec![js("flask_peer.py")],
                env: vec![],
            },
        ]
    }

    /// Bun.serve, its messages sent verbatim, or `stamped` as Burner sends them (`bun.js`): the
    /// paired benchmark runs the second beside Burner and the first.
    pub fn bun(paths: &Paths, stamped: bool) -> Peer {
        let mut args = vec![paths.peers.join("bun.js").to_string_lossy().into_owned()];
        if stamped {
            args.push("--stamped".to_owned());
        }
        Peer {
            name: if stamped { "Bun.serve (Burner's frames)" } else { "Bun.serve (uWebSockets)" },
            protocol: Protocol::Plain,
            burners_frames: stamped,
            program: paths.peers.join("node_modules/@oven/bun-linux-x64/bin/bun"),
            args,
            env: vec![],
        }
    }

    /// This peer as node `n` of a cluster through the Redis at `redis`, for the peers that have
    /// a cluster mode: Burner (`BURNER_REDIS_URL`) and Socket.IO (its Redis adapter).
    pub fn clustered(&self, redis: &str, n: usize) -> Option<Peer> {
        let mut node = self.clone();
        match self.protocol {
            Protocol::Burner => {
                for (name, value) in &mut node.env {
                    if *name == "BURNER_DATA_DIR" {
                        *value = format!("{value}/node-{n}");
                    }
                }
                node.env.push(("BURNER_REDIS_URL", redis.to_owned()));
                node.env.push(("BURNER_NODE_ID", format!("bench-{n}")));
            }
            Protocol::SocketIo if self.program == Path::new("node") => node.env.push(("REDIS_URL", redis.to_owned())),
            _ => return None,
        }
        Some(node)
    }

    /// Starts the server on core 0 and waits until it takes connections.
    pub async fn start(&self, port: u16) -> anyhow::Result<Running> {
        let mut command = Command::new("taskset");
        command.arg("-c").arg("0").arg(&self.program).args(&self.args);
        if self.protocol == Protocol::Burner {
            command.env("BURNER_ADDR", format!("127.0.0.1:{port}"));
        } else {
            command.arg(port.to_string());
        }
        for (name, value) in &self.env {
            command.env(name, value);
            // Every start begins empty: Burner would bring back the rooms of the last one.
            if *name == "BURNER_DATA_DIR" {
                let _ = std::fs::remove_dir_all(value);
            }
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let running = Running { child };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                // A moment for the rest of its start-up (Burner restores its store first).
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(running);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{} did not start", self.name)
    }

    /// A room of `limit` to fill: Burner's must be created first (its slug is returned), the
    /// others come into being when someone joins.
    pub async fn room(&self, port: u16, name: &str, limit: usize) -> anyhow::Result<String> {
        if self.protocol != Protocol::Burner {
            return Ok(name.to_owned());
        }
        // Rooms people create hold at most 1 000; the lobby's limit is the operator's.
        if limit > 1_000 {
            return Ok("lobby".to_owned());
        }
        let body = format!("name={name}&limit={limit}&listed=on&profanity=off");
        let response = crate::http(port, "POST", "/api/create_room", &body).await?;
        let json = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let summary: serde_json::Value = serde_json::from_str(json)?;
        summary["slug"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no room: {response}"))
    }

    /// A new member of `room`, joined and ready.
    pub async fn join(&self, port: u16, room: &str, n: usize) -> anyhow::Result<Conn> {
        match self.protocol {
            Protocol::Plain => ws::connect(port, &format!("/ws?room={room}")).await,
            Protocol::Burner => {
                // Joined by its address, as the plain peers are: the room is entered as the
                // socket opens, with no `join` frame to wait for.
                let path = format!("/ws?room={room}&nickname=m{n}&session=bench-session-{n:012}");
                let mut conn = ws::connect(port, &path).await?;
                conn.reader.read_until(|text| contains(text, b"\"joined\"")).await?;
                Ok(conn)
            }
            Protocol::SocketIo => {
                let mut conn = ws::connect(port, "/socket.io/?EIO=4&transport=websocket").await?;
                conn.reader.read_until(|text| text.first() == Some(&b'0')).await?;
                ws::send(&conn.writer, b"40").await?;
                conn.reader.read_until(|text| text.starts_with(b"40")).await?;
                ws::send(&conn.writer, format!(r#"42["join","{room}"]"#).as_bytes()).await?;
                conn.reader.read_until(|text| contains(text, b"\"joined\"")).await?;
                Ok(conn)
            }
        }
    }

    /// The frame that says `payload` in this protocol.
    pub fn say(&self, payload: &str) -> Vec<u8> {
        match self.protocol {
            Protocol::Plain => payload.as_bytes().to_vec(),
            Protocol::Burner => format!(r#"{{"type":"send_message","text":"{payload}"}}"#).into_bytes(),
            Protocol::SocketIo => format!(r#"42["msg","{payload}"]"#).into_bytes(),
        }
    }
}

/// Burner with every limit that would get in a load test's way opened up.
fn burner_env(data: &Path) -> Vec<(&'static str, String)> {
    let open = "1000000".to_owned();
    vec![
        ("BURNER_DATA_DIR", data.to_string_lossy().into_owned()),
        ("BURNER_LOG", "warn".into()),
        ("BURNER_LOBBY_LIMIT", "10000".into()),
        ("BURNER_JOIN_BURST_PER_IP", open.clone()),
        ("BURNER_CONNECT_BURST_PER_IP", open.clone()),
        ("BURNER_MAX_CONNECTIONS_PER_IP", open.clone()),
        ("BURNER_ROOM_CREATE_BURST", open.clone()),
        ("BURNER_MESSAGE_BURST", open.clone()),
        ("BURNER_MESSAGE_BURST_PER_IP", open.clone()),
        ("BURNER_FRAMES_PER_SECOND", open.clone()),
        ("BURNER_REPEATS_ALLOWED", open.clone()),
        ("BURNER_STRIKES_TO_MUTE", open),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A started server; stopped when dropped.
pub struct Running {
    child: Child,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
