//! Discord's REST API as the bridge uses it: one request at a time per caller, within
//! Discord's rate limits as Discord announces them.
//!
//! Every response's `X-RateLimit-*` headers are read (not only a 429's): a route whose
//! `Remaining` reaches 0 waits for its reset before the next request, and a 429 waits its
//! `retry_after`, for its route or, when global, for every route. Requests are also kept under
//! Discord's global 50 per second by a token bucket (a lone request goes at once). Refused
//! requests (401, 403, 429 other than `shared`) are counted over Discord's 10-minute window, so
//! `/healthz` shows how close the bot is to the limit that bans a bot for an hour; the bridge
//! stops at the first 401, a link at the first 403 in its channel. Waits end at shutdown.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A request that takes longer than this is given up (and retried by the caller).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Discord's global limit is 50 requests a second: a token every 25 ms, at most 10 saved up,
/// so no second (however it is counted) holds more than 50.
const TOKEN_EVERY: Duration = Duration::from_millis(25);
const TOKENS_MAX: f64 = 10.0;
/// Discord counts refused requests over this window.
const INVALID_WINDOW: Duration = Duration::from_secs(600);

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct Rest {
    client: Client<Https, Full<Bytes>>,
    /// `…/api/v10`, no trailing slash.
    base: String,
    authorization: String,
    limits: Mutex<Limits>,
    /// Burner is shutting down: waits and requests end.
    shutdown: CancellationToken,
}

#[derive(Default)]
struct Limits {
    /// Per route: not before this instant (its bucket is spent, or a 429 said so).
    routes: HashMap<String, Instant>,
    /// Every route: not before this instant (a global 429).
    global: Option<Instant>,
    /// The global pace: tokens left, as of `refilled`.
    tokens: f64,
    refilled: Option<Instant>,
    /// When each refused request of the last 10 minutes came back.
    invalid: VecDeque<Instant>,
}

/// How a request ended.
#[derive(Debug)]
pub enum Reply {
    /// 2xx, with the body as JSON (`Null` for 204).
    Done(Value),
    /// 429: wait this long (the limiter already does), then try again.
    RateLimited { retry_after: Duration, global: bool },
    /// 401: the token is wrong or revoked.
    Unauthorized,
    /// 403: the bot may not do this here (Discord's JSON error code).
    Forbidden { code: u64, message: String },
    /// 404 (Discord's code: 10003 unknown channel, 10008 unknown message).
    NotFound { code: u64 },
    /// Another 4xx: this request will never succeed as it is.
    Refused { status: u16, message: String },
    /// 5xx, a timeout, or no connection: try again later.
    Unavailable(String),
}

/// A bot token as Discord's headers and gateway want it after their own `Bot ` prefix.
pub fn bare_token(token: &str) -> &str {
    let token = token.trim();
    token.strip_prefix("Bot ").unwrap_or(token)
}

#[derive(Debug, thiserror::Error)]
#[error("Discord API address: {0}")]
pub struct BadUrl(String);

impl Rest {
    /// A client for the API at `api_url` (`https://discord.com`, or a stand-in's `http://…`).
    pub fn new(api_url: &str, token: &str, shutdown: CancellationToken) -> Result<Self, BadUrl> {
        let api_url = api_url.trim_end_matches('/');
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(BadUrl(format!("{api_url} is not an http(s) address")));
        }
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        // A request is written in more than one piece: without this, the body waits for the
        // server's delayed ACK of the headers.
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: format!("{api_url}/api/v10"),
            authorization: format!("Bot {}", bare_token(token)),
            limits: Mutex::default(),
            shutdown,
        })
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refused requests in Discord's current 10-minute window.
    pub fn invalid_requests(&self) -> usize {
        let mut limits = self.limits();
        limits.forget_old(Instant::now());
        limits.invalid.len()
    }

    /// Until when every request waits (a global 429), if it does.
    pub fn global_wait(&self) -> Option<Duration> {
        self.limits().global.and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// Sends one request, after waiting as the limits say; `route` names its rate-limit bucket
    /// (the path with message ids left out).
    pub async fn call(&self, method: Method, route: &str, path: &str, body: Option<&Value>) -> Reply {
        tokio::select! {
            () = self.shutdown.cancelled() => Reply::Unavailable("Burner is shutting down".into()),
            reply = self.send(method, route, path, body) => reply,
        }
    }

    async fn send(&self, method: Method, route: &str, path: &str, body: Option<&Value>) -> Reply {
        self.wait_turn(route).await;
        let uri = format!("{}/{path}", self.base);
        let mut request =
            Request::builder().method(method).uri(uri).header("authorization", &self.authorization).header(
                "user-agent",
                concat!("DiscordBot (https://github.com/burner-chat, ", env!("CARGO_PKG_VERSION"), ")"),
            );
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let Ok(request) = request.body(body) else {
            return Reply::Refused { status: 0, message: "bad request".into() };
        };
        let response = match tokio::time::timeout(TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Reply::Unavailable(format!("no answer: {error}")),
            Err(_) => return Reply::Unavailable("no answer within 10 s".into()),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = match tokio::time::timeout(TIMEOUT, response.into_body().collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            _ => return Reply::Unavailable("the answer was cut off".into()),
        };
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.learn(route, status, &headers, &json)
    }

    async fn wait_turn(&self, route: &str) {
        loop {
            let now = Instant::now();
            let until = {
                let mut limits = self.limits();
                let refilled = limits.refilled.unwrap_or(now);
                let earned = now.duration_since(refilled).as_secs_f64() / TOKEN_EVERY.as_secs_f64();
                limits.tokens =
                    if limits.refilled.is_none() { TOKENS_MAX } else { (limits.tokens + earned).min(TOKENS_MAX) };
                limits.refilled = Some(now);
                let paced = (limits.tokens < 1.0).then(|| now + TOKEN_EVERY.mul_f64(1.0 - limits.tokens));
                let until = [limits.global, limits.routes.get(route).copied(), paced].into_iter().flatten().max();
                match until {
                    Some(until) if until > now => until,
                    _ => {
                        limits.tokens -= 1.0;
                        return;
                    }
                }
            };
            tokio::time::sleep_until(until).await;
        }
    }

    /// What the answer says of the limits, and what it means for the caller.
    fn learn(&self, route: &str, status: StatusCode, headers: &HeaderMap, json: &Value) -> Reply {
        let now = Instant::now();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let seconds = |text: &str| text.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0);
        let mut limits = self.limits();
        limits.forget_old(now);
        if header("x-ratelimit-remaining") == Some("0")
            && let Some(reset) = header("x-ratelimit-reset-after").and_then(seconds)
        {
            limits.routes.insert(route.to_owned(), now + Duration::from_secs_f64(reset.min(3600.0)));
        }
        let code = json.get("code").and_then(Value::as_u64).unwrap_or(0);
        let message = json.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
        match status.as_u16() {
            200..=299 => Reply::Done(json.clone()),
            429 => {
                let retry_after = json
                    .get("retry_after")
                    .and_then(Value::as_f64)
                    .or_else(|| header("retry-after").and_then(seconds))
                    .unwrap_or(1.0)
                    .clamp(0.0, 3600.0);
                let retry_after = Duration::from_secs_f64(retry_after);
                let global = json.get("global").and_then(Value::as_bool).unwrap_or(false)
                    || header("x-ratelimit-global") == Some("true");
                if global {
                    limits.global = Some(now + retry_after);
                } else {
                    limits.routes.insert(route.to_owned(), now + retry_after);
                }
                if header("x-ratelimit-scope") != Some("shared") {
                    limits.invalid.push_back(now);
                }
                Reply::RateLimited { retry_after, global }
            }
            401 => {
                limits.invalid.push_back(now);
                Reply::Unauthorized
            }
            403 => {
                limits.invalid.push_back(now);
                Reply::Forbidden { code, message }
            }
            404 => Reply::NotFound { code },
            400..=499 => Reply::Refused { status: status.as_u16(), message },
            _ => Reply::Unavailable(format!("Discord answered {status}")),
        }
    }
}

impl Limits {
    fn forget_old(&mut self, now: Instant) {
        while self.invalid.front().is_some_and(|at| now.duration_since(*at) > INVALID_WINDOW) {
            self.invalid.pop_front();
        }
        self.routes.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_goes_at_once_and_the_pace_holds_after_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rest = Rest::new("http://127.0.0.1:9", "token", CancellationToken::new()).expect("a client");
        let started = Instant::now();
        for _ in 0..TOKENS_MAX as usize {
            rest.wait_turn("channels/1/messages").await;
        }
        assert!(started.elapsed() < TOKEN_EVERY, "the burst waited {:?}", started.elapsed());
        rest.wait_turn("channels/1/messages").await;
        assert!(started.elapsed() >= TOKEN_EVERY.mul_f64(0.9), "then one per {TOKEN_EVERY:?}");
    }
}
