//! A real Burner server on `127.0.0.1:0` and real WebSocket clients (tokio-tungstenite).

use app::protocol::{
    ChatMessage, ClientMsg, ConnectionView, Continuity, Member, ModAction, ModSnapshot, Resume, RoomSettings,
    RoomSummary, ServerMsg,
};
use futures_util::{SinkExt, StreamExt};
use server::config::Config;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
    time::{Instant, timeout},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame},
};

/// Long enough for a loaded CI machine, short enough that a hang fails quickly.
pub const WAIT: Duration = Duration::from_secs(5);

/// Runs a test on the one runtime all tests share, as a Burner process has one runtime: many
/// servers, started and stopped while others serve, in one process. Multi-threaded, as Burner
/// runs on several cores; `BURNER_TEST_ONE_CORE=1` runs the tests on the single-threaded
/// runtime Burner runs on one core, where a drainer writes the sockets' frames (`outbox`).
pub fn run(test: impl std::future::Future<Output = ()>) {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        let mut builder = if std::env::var_os("BURNER_TEST_ONE_CORE").is_some() {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        };
        builder.enable_all().build().expect("test runtime")
    });
    RUNTIME.block_on(test);
}

/// Waits up to `within` for `check` to hold; how long it took.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    check: impl Fn() -> F,
) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The server's own data directory, unless the test chose one; removed when dropped.
    _data: Option<tempfile::TempDir>,
}

/// The moderator token every test server has.
pub const MOD_TOKEN: &str = "test-moderator-token";

/// Defaults with the per-IP limits opened up: every test client comes from 127.0.0.1, and only
/// the tests about those limits want them.
pub fn config() -> Config {
    let mut config = Config::defaults();
    config.join_burst_per_ip = 10_000;
    config.connect_burst_per_ip = 10_000;
    config.max_connections_per_ip = 10_000;
    config.room_create_burst = 10_000;
    config.message_burst = 10_000;
    config.frames_per_second = 100_000;
    config.message_burst_per_ip = 10_000;
    config.repeats_allowed = 10_000;
    config.mod_token = Some(MOD_TOKEN.to_owned());
    config
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(config()).await
    }

    /// A server behind a proxy on loopback that it trusts: each test client says which address it
    /// is with `x-forwarded-for`.
    pub async fn behind_a_loopback_proxy() -> Self {
        let mut config = config();
        config.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
        Self::with(config).await
    }

    /// A server with `config`; with the default data directory, it gets a temporary one of its own.
    pub async fn with(mut config: Config) -> Self {
        // Not a port handed to a service that has yet to bind it (`services::claim`).
        let (listener, addr) = loop {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            if crate::services::claim(addr.port()) {
                break (listener, addr);
            }
        };
        config.addr = addr;
        let data = (config.data_dir == Config::defaults().data_dir).then(|| {
            let dir = tempfile::tempdir().expect("temporary data directory");
            config.data_dir = dir.path().to_owned();
            dir
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task), _data: data }
    }

    /// A server this test did not start (a `burner` process), at `addr`.
    pub fn attach(addr: SocketAddr) -> Self {
        Self { addr, stop: None, task: None, _data: None }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client with the site's own origin, past the welcome frame.
    pub async fn client(&self) -> Client {
        let mut client = self.connect().await;
        match client.recv().await {
            ServerMsg::Welcome { .. } => client,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn connect(&self) -> Client {
        self.connect_with(Some(&self.origin()), "/ws").await.expect("upgrade accepted")
    }

    /// Opens `/ws`-like `path` with the given Origin; the HTTP status if the upgrade is refused.
    pub async fn connect_with(&self, origin: Option<&str>, path: &str) -> Result<Client, u16> {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        self.upgrade(path, &headers).await.map_err(|(status, _)| status)
    }

    /// Opens `/ws` with the site's origin and these extra headers (cookies, forwarding headers);
    /// the status and body of a refused upgrade.
    pub async fn connect_as(&self, headers: &[(&str, &str)]) -> Result<Client, (u16, String)> {
        let origin = self.origin();
        let mut all = vec![("origin", origin.as_str())];
        all.extend_from_slice(headers);
        self.upgrade("/ws", &all).await
    }

    /// Opens `path` with these headers; the status and body of a refused upgrade.
    pub async fn upgrade(&self, path: &str, headers: &[(&str, &str)]) -> Result<Client, (u16, String)> {
        self.upgrade_from(None, path, headers).await
    }

    /// Opens `/ws` with the site's origin from `source` (another loopback address: another
    /// visitor, as far as the server can tell), past the welcome frame; the status and body of a
    /// refused upgrade.
    pub async fn client_from(
        &self,
        source: std::net::IpAddr,
        headers: &[(&str, &str)],
    ) -> Result<Client, (u16, String)> {
        let origin = self.origin();
        let mut all = vec![("origin", origin.as_str())];
        all.extend_from_slice(headers);
        let mut client = self.upgrade_from(Some(source), "/ws", &all).await?;
        match client.recv().await {
            ServerMsg::Welcome { .. } => Ok(client),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    async fn upgrade_from(
        &self,
        source: Option<std::net::IpAddr>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, (u16, String)> {
        let mut request = format!("ws://{}{path}", self.addr).into_client_request().expect("request");
        for (name, value) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name");
            request.headers_mut().append(name, HeaderValue::from_str(value).expect("header"));
        }
        let connected = match source {
            None => tokio_tungstenite::connect_async(request).await,
            Some(source) => {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.bind(SocketAddr::new(source, 0)).expect("bind a loopback source address");
                let stream = socket.connect(self.addr).await.expect("connect");
                tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await
            }
        };
        match connected {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                Err((response.status().as_u16(), body))
            }
            Err(error) => panic!("connect failed: {error}"),
        }
    }

    /// Signs in with the moderator token; the `Cookie` header value of the session.
    pub async fn sign_in(&self) -> String {
        let response = self
            .send_http(
                "POST",
                "/mod/sign-in",
                Some(("application/x-www-form-urlencoded", &format!("token={MOD_TOKEN}"))),
                &[],
            )
            .await;
        assert_eq!(response.status, 303, "sign-in: {}", response.body);
        let set_cookie = response.header("set-cookie").expect("a session cookie");
        set_cookie.split(';').next().expect("name=value").to_owned()
    }

    /// Asks for a moderator action, with `cookie` as the session (or none).
    pub async fn moderate(&self, cookie: Option<&str>, action: &ModAction) -> HttpResponse {
        let body = serde_json::json!({ "action": action }).to_string();
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        self.send_http("POST", "/api/moderate", Some(("application/json", &body)), &headers).await
    }

    /// Does a moderator action that must succeed; the confirming sentence.
    pub async fn must_moderate(&self, cookie: &str, action: &ModAction) -> String {
        let response = self.moderate(Some(cookie), action).await;
        assert_eq!(response.status, 200, "{action:?}: {}", response.body);
        serde_json::from_str(&response.body).expect("sentence")
    }

    /// Searches the connection log as a moderator; addresses only with `reveal`.
    pub async fn search_log(&self, cookie: &str, text: &str, reveal: bool) -> Vec<ConnectionView> {
        let body = serde_json::json!({ "text": text, "reveal": reveal }).to_string();
        let response =
            self.send_http("POST", "/api/search_log", Some(("application/json", &body)), &[("cookie", cookie)]).await;
        assert_eq!(response.status, 200, "search: {}", response.body);
        serde_json::from_str(&response.body).expect("connections")
    }

    /// [`TestServer::search_log`] once it finds something: the connection log is written in
    /// the background, a moment after what it records (or fails the test after 5 s).
    pub async fn search_log_until_found(&self, cookie: &str, text: &str, reveal: bool) -> Vec<ConnectionView> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.search_log(cookie, text, reveal).await;
            if !found.is_empty() {
                return found;
            }
            assert!(std::time::Instant::now() < deadline, "{text:?} never reached the connection log");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The console's picture of the server now (over a console socket).
    pub async fn mod_snapshot(&self, cookie: &str) -> ModSnapshot {
        let mut console = self.connect_as(&[("cookie", cookie)]).await.expect("console socket");
        console.recv_until(|m| matches!(m, ServerMsg::Welcome { .. })).await;
        console.send(&ClientMsg::ModWatch {}).await;
        match console.recv_until(|m| matches!(m, ServerMsg::ModSnapshot { .. } | ServerMsg::Error { .. })).await {
            ServerMsg::ModSnapshot { snapshot } => snapshot,
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    /// Joins `room` as `nickname` on a fresh client with a session of its own.
    pub async fn member(&self, room: &str, nickname: &str) -> (Client, Joined) {
        let mut client = self.client().await;
        let joined = client.join(room, nickname, &session_for(nickname), None).await.expect("joined");
        (client, joined)
    }

    pub async fn create_room(&self, name: &str, limit: u32, one_way: bool) -> RoomSummary {
        self.create_room_with(name, limit, one_way, "mask").await
    }

    /// A room with a profanity filter (`off`, `mask`, `block`).
    pub async fn create_room_with(&self, name: &str, limit: u32, one_way: bool, profanity: &str) -> RoomSummary {
        let one_way = if one_way { "&one_way=on" } else { "" };
        let body = format!("name={}&limit={limit}{one_way}&listed=on&profanity={profanity}", urlencode(name));
        let response = self.http("POST", "/api/create_room", Some(&body)).await;
        assert_eq!(response.status, 200, "create_room: {}", response.body);
        serde_json::from_str(&response.body).expect("room summary")
    }

    /// What `/healthz` says now.
    pub async fn health(&self) -> serde_json::Value {
        let response = self.http("GET", "/healthz", None).await;
        serde_json::from_str(&response.body).expect("health JSON")
    }

    /// A minimal HTTP/1.1 exchange (one request per connection), with a form as the body.
    pub async fn http(&self, method: &str, path: &str, form: Option<&str>) -> HttpResponse {
        self.send_http(method, path, form.map(|f| ("application/x-www-form-urlencoded", f)), &[]).await
    }

    /// Any request: `body` is `(content type, content)`.
    pub async fn send_http(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept")) {
            request.push_str("Accept: application/json\r\n");
        }
        if let Some((content_type, body)) = body {
            request.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body.map(|(_, b)| b).unwrap_or_default());
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        timeout(WAIT * 3, stream.read_to_end(&mut raw)).await.expect("response in time").expect("read");
        HttpResponse::parse(&raw)
    }

    /// Stops the server and says how long it took to return.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            timeout(Duration::from_secs(10), task).await.expect("server stops").expect("task").expect("run ok");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl HttpResponse {
    /// The first value of a header (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The script nonce of the page's `Content-Security-Policy` (`script-src … 'nonce-…'`).
    pub fn script_nonce(&self) -> Option<&str> {
        let policy = self.header("content-security-policy")?;
        let script_src = policy.split(';').map(str::trim).find(|d| d.starts_with("script-src"))?;
        script_src.split_whitespace().find_map(|s| s.strip_prefix("'nonce-")?.strip_suffix('\''))
    }

    /// Bytes first: a compressed body is not text, and chunk sizes count bytes.
    fn parse(raw: &[u8]) -> Self {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
        let (head, body) = split.map_or((raw, &[][..]), |at| (&raw[..at], &raw[at + 4..]));
        let head = String::from_utf8_lossy(head).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        let body = if chunked { dechunk(body) } else { body.to_vec() };
        Self { status, headers: head, body: String::from_utf8_lossy(&body).into_owned() }
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(String::from_utf8_lossy(&body[..line]).trim(), 16) else { break };
        let rest = &body[line + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A stable, valid session id per nickname, so a test can rejoin "from the same tab".
pub fn session_for(nickname: &str) -> String {
    let hash =
        nickname.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("test-session-{hash:016x}")
}

#[derive(Debug)]
pub struct Joined {
    pub room: RoomSummary,
    pub settings: RoomSettings,
    pub you: Member,
    pub members: Vec<Member>,
    pub epoch: String,
    pub continuity: Continuity,
    pub history: Vec<ChatMessage>,
}

/// What the server did with a request.
#[derive(Debug)]
pub struct Refusal {
    pub code: app::protocol::ErrorCode,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, message: &ClientMsg) {
        self.send_text(&serde_json::to_string(message).expect("encode")).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next protocol message (pings and pongs are skipped).
    pub async fn recv(&mut self) -> ServerMsg {
        match self.next().await {
            Some(message) => message,
            None => panic!("connection closed while waiting for a message"),
        }
    }

    /// The next protocol message, or `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<ServerMsg> {
        loop {
            let frame = timeout(WAIT, self.ws.next()).await.expect("a frame in time");
            match frame {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).expect("server JSON")),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn recv_until(&mut self, matches: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let message = self.recv().await;
            if matches(&message) {
                return message;
            }
        }
    }

    /// Nothing but pings arrives for `quiet`.
    pub async fn assert_silent(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while let Ok(frame) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected silence, got {other:?}"),
            }
        }
    }

    pub async fn join(
        &mut self,
        room: &str,
        nickname: &str,
        session: &str,
        resume: Option<Resume>,
    ) -> Result<Joined, Refusal> {
        self.send(&ClientMsg::Join {
            room: room.to_owned(),
            nickname: nickname.to_owned(),
            session: session.to_owned(),
            resume,
        })
        .await;
        match self.recv_until(|m| matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. })).await {
            ServerMsg::Joined { room, settings, you, members, epoch, continuity, history } => {
                Ok(Joined { room, settings, you, members, epoch, continuity, history })
            }
            ServerMsg::Error { code, message, retry_after_ms, .. } => Err(Refusal { code, message, retry_after_ms }),
            _ => unreachable!(),
        }
    }

    /// Posts and waits for the acknowledgement (or the refusal).
    pub async fn say(&mut self, text: &str, client_ref: &str) -> Result<(u64, i64), Refusal> {
        self.send(&ClientMsg::SendMessage { text: text.to_owned(), client_ref: Some(client_ref.to_owned()) }).await;
        let reply = self
            .recv_until(|m| match m {
                ServerMsg::MessageAccepted { client_ref: r, .. } | ServerMsg::Error { client_ref: r, .. } => {
                    r.as_deref() == Some(client_ref)
                }
                _ => false,
            })
            .await;
        match reply {
            ServerMsg::MessageAccepted { seq, at, .. } => Ok((seq, at)),
            ServerMsg::Error { code, message, retry_after_ms, .. } => Err(Refusal { code, message, retry_after_ms }),
            _ => unreachable!(),
        }
    }

    /// The next error frame.
    pub async fn refusal(&mut self) -> Refusal {
        match self.recv_until(|m| matches!(m, ServerMsg::Error { .. })).await {
            ServerMsg::Error { code, message, retry_after_ms, .. } => Refusal { code, message, retry_after_ms },
            _ => unreachable!(),
        }
    }

    /// Sends a raw text frame and returns the error it earns.
    pub async fn refusal_for(&mut self, frame: &str) -> Refusal {
        self.send_text(frame).await;
        self.refusal().await
    }

    /// Reads until the server closes; the close frame it sent, if any.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match timeout(WAIT, self.ws.next()).await.expect("closed in time") {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The close code the server ended the connection with.
    pub async fn close_code(&mut self) -> Option<u16> {
        self.closed().await.map(|f| u16::from(f.code))
    }

    /// Writes raw bytes on the socket under the WebSocket (for frames no client library sends).
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        self.write_raw_lenient(bytes).await.expect("raw write");
    }

    /// Like `write_raw`, for when the server may already have closed the connection.
    pub async fn write_raw_lenient(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let MaybeTlsStream::Plain(tcp) = self.ws.get_mut() else { panic!("plain TCP expected") };
        tcp.write_all(bytes).await?;
        tcp.flush().await
    }
}

/// A masked client frame (mask key 0: the payload goes as is), with an exact header: `len` is
/// what the header announces, which may be more than `payload` carries.
pub fn raw_frame(fin: bool, opcode: u8, len: u64, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => frame.push(0x80 | len as u8),
        126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&len.to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}
