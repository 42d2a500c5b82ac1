//! Helpers that make each test read as one row of the spec: start a stand-in, speak raw HTTP
//! and raw WebSocket to it (nothing of the stand-in's own code on the client side), and parse
//! what comes back with twilight-model and a copy of twilight-http's error shapes.

use std::{collections::HashMap, time::Duration};

use discord_standin::{Config, StandIn};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, de::DeserializeSeed as _};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as WsMessage};
use twilight_model::gateway::event::{GatewayEvent, GatewayEventDeserializer};

pub const TOKEN: &str = "standin-token";
/// GUILD_MESSAGES | MESSAGE_CONTENT, what the bridge asks for.
pub const INTENTS: u64 = (1 << 9) | (1 << 15);

pub async fn start() -> StandIn {
    start_with(Config::default()).await
}

pub async fn start_with(config: Config) -> StandIn {
    StandIn::start(config).await.expect("stand-in starts")
}

/// twilight-http's `ApiError` (untagged), copied so the test does not depend on twilight-http.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ApiError {
    General { code: u64, message: String },
    Ratelimited { global: bool, message: String, retry_after: f64 },
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn error(&self) -> ApiError {
        serde_json::from_value(self.body.clone()).expect("body parses as twilight-http's ApiError")
    }

    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> T {
        serde_json::from_value(self.body.clone()).expect("body parses as the twilight-model type")
    }
}

/// One HTTP/1.1 request on a fresh connection, read to its end.
pub async fn http(base: &str, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Reply {
    let authority = base.strip_prefix("http://").expect("http base");
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    if body.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{payload}", payload.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<HashMap<_, _>>();
    assert!(!headers.contains_key("transfer-encoding"), "the helper reads fixed-length bodies only");
    let body = if body.is_empty() { Value::Null } else { serde_json::from_str(body).expect("JSON body") };
    Reply { status, headers, body }
}

/// A REST call with the bot token, as the bridge makes it.
pub async fn api(standin: &StandIn, method: &str, route: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bot {TOKEN}");
    http(&standin.api_url(), method, &format!("/api/v10/{route}"), Some(&auth), body.as_ref()).await
}

/// A REST call to a stand-in known only by URL (the binary).
pub async fn api_at(base: &str, token: &str, method: &str, route: &str, body: Value) -> Reply {
    http(base, method, &format!("/api/v10/{route}"), Some(&format!("Bot {token}")), Some(&body)).await
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects the way twilight does: `{base}/?v=10&encoding=json`.
pub async fn connect(base: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{base}/?v=10&encoding=json")).await.expect("ws connect");
    ws
}

/// The next frame: text, parsed as JSON.
pub async fn next_frame(ws: &mut Ws) -> Value {
    match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.expect("a frame within 2 s") {
        Some(Ok(WsMessage::Text(text))) => serde_json::from_str(&text).expect("JSON frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next frame, decoded the way twilight-gateway decodes it.
pub async fn next_event(ws: &mut Ws) -> GatewayEvent {
    let text = next_frame(ws).await.to_string();
    let deserializer = GatewayEventDeserializer::from_json(&text).expect("op and t found");
    deserializer.deserialize(&mut serde_json::Deserializer::from_str(&text)).expect("a twilight GatewayEvent")
}

/// The close code the server ends the socket with.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.expect("close within 2 s") {
            Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| f.code.into()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(WsMessage::Text(frame.to_string().into())).await.expect("send");
}

pub fn identify_frame(token: &str, intents: u64) -> Value {
    json!({ "op": 2, "d": {
        "capabilities": 0, "compress": false, "intents": intents, "large_threshold": 50, "presence": null,
        "properties": { "browser": "twilight.rs", "device": "twilight.rs", "os": "linux" },
        "shard": [0, 1], "token": token,
    }})
}

/// HELLO, IDENTIFY, READY: returns the socket and READY's `d`.
pub async fn identified(standin: &StandIn) -> (Ws, Value) {
    let mut ws = connect(&standin.gateway_url()).await;
    assert_eq!(next_frame(&mut ws).await["op"], 10);
    send(&mut ws, identify_frame(&format!("Bot {TOKEN}"), INTENTS)).await;
    let ready = next_frame(&mut ws).await;
    assert_eq!(ready["t"], "READY");
    (ws, ready["d"].clone())
}
