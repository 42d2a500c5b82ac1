//! REST under `/api/v10/`: one handler for every request, so each one is recorded, checked
//! against injected faults, the global block, the token and the rate limits in the same order,
//! then routed by hand to the few routes the bridge uses. Every response carries Discord's
//! `X-RateLimit-*` headers.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header::AUTHORIZATION},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;

use crate::{
    Fault, bodies,
    limits::{BucketKey, Snapshot, Verdict},
    model,
    world::{Shared, World, ready_user},
};

/// The routes the bridge calls.
#[derive(Debug)]
enum Route {
    CurrentUser,
    GetChannel(u64),
    CreateMessage(u64),
    EditMessage(u64, u64),
    DeleteMessage(u64, u64),
}

#[derive(Debug)]
enum Miss {
    NotFound,
    MethodNotAllowed,
}

impl Route {
    fn parse(method: &Method, path: &str) -> Result<Route, Miss> {
        let rest = path.strip_prefix("/api/v10/").ok_or(Miss::NotFound)?;
        let segments: Vec<&str> = rest.split('/').collect();
        let id = |s: &str| s.parse::<u64>().ok().filter(|n| *n != 0).ok_or(Miss::NotFound);
        let only =
            |allowed: Method, route: Route| if *method == allowed { Ok(route) } else { Err(Miss::MethodNotAllowed) };
        match segments.as_slice() {
            ["users", "@me"] => only(Method::GET, Route::CurrentUser),
            ["channels", channel] => only(Method::GET, Route::GetChannel(id(channel)?)),
            ["channels", channel, "messages"] => only(Method::POST, Route::CreateMessage(id(channel)?)),
            ["channels", channel, "messages", message] => {
                let (channel, message) = (id(channel)?, id(message)?);
                match *method {
                    Method::PATCH => Ok(Route::EditMessage(channel, message)),
                    Method::DELETE => Ok(Route::DeleteMessage(channel, message)),
                    _ => Err(Miss::MethodNotAllowed),
                }
            }
            _ => Err(Miss::NotFound),
        }
    }

    /// Buckets are per route and major parameter (the channel), as on Discord.
    fn bucket(&self, method: &Method) -> BucketKey {
        let (route, major) = match self {
            Route::CurrentUser => ("users/@me", 0),
            Route::GetChannel(c) => ("channels/{channel_id}", *c),
            Route::CreateMessage(c) => ("channels/{channel_id}/messages", *c),
            Route::EditMessage(c, _) | Route::DeleteMessage(c, _) => {
                ("channels/{channel_id}/messages/{message_id}", *c)
            }
        };
        BucketKey { method: method.to_string(), route: route.to_owned(), major }
    }
}

/// An answer before headers are added.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    snapshot: Snapshot,
    /// Set on 429s: the scope and how long to wait.
    limited: Option<(Scope, Duration)>,
    /// Whether stored messages changed (wakes `wait_for_messages`).
    changed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Scope {
    User,
    Global,
}

impl Reply {
    fn new(status: StatusCode, body: Option<Value>, snapshot: Snapshot) -> Self {
        Self { status, body, snapshot, limited: None, changed: false }
    }

    fn error(status: StatusCode, code: u64, message: &str, snapshot: Snapshot) -> Self {
        Self::new(status, Some(model::api_error(code, message)), snapshot)
    }

    fn rate_limited(scope: Scope, retry_after: Duration, snapshot: Snapshot) -> Self {
        let global = matches!(scope, Scope::Global);
        let body = model::rate_limited(global, retry_after.as_secs_f64());
        Self { limited: Some((scope, retry_after)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, Some(body), snapshot) }
    }

    fn json<T: Serialize>(status: StatusCode, value: &T, snapshot: Snapshot) -> Self {
        match serde_json::to_value(value) {
            Ok(body) => Self::new(status, Some(body), snapshot),
            Err(error) => {
                tracing::error!(%error, "cannot encode a REST response");
                Self::error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error", snapshot)
            }
        }
    }
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path();
    let token = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let recorded_body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let reply = {
        let mut world = shared.world();
        let reply = decide(&shared, &mut world, at, &method, path, token, &body);
        world.record(at, method.as_str(), path, reply.status.as_u16(), recorded_body);
        reply
    };
    tracing::debug!(%method, path, status = reply.status.as_u16(), "rest");
    if reply.changed {
        shared.messages_changed();
    }
    respond(reply)
}

fn decide(
    shared: &Shared,
    world: &mut World,
    at: Instant,
    method: &Method,
    path: &str,
    token: &str,
    body: &[u8],
) -> Reply {
    let route = Route::parse(method, path);
    let key = match &route {
        Ok(route) => route.bucket(method),
        Err(_) => BucketKey { method: method.to_string(), route: path.to_owned(), major: 0 },
    };
    let peek = world.limits.peek(&key, at);
    if let Some(fault) = world.faults.pop_front() {
        return match fault {
            Fault::RateLimited { global: true, retry_after } => {
                world.limits.block_globally(at + retry_after);
                Reply::rate_limited(Scope::Global, retry_after, peek)
            }
            Fault::RateLimited { global: false, retry_after } => {
                let snapshot = Snapshot { remaining: 0, reset_after: retry_after, ..peek };
                Reply::rate_limited(Scope::User, retry_after, snapshot)
            }
            Fault::Unauthorized => Reply::error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized", peek),
            Fault::Forbidden => Reply::error(StatusCode::FORBIDDEN, 50013, "Missing Permissions", peek),
            Fault::ServerError => Reply::error(StatusCode::BAD_GATEWAY, 0, "Bad Gateway", peek),
        };
    }
    if let Some(retry_after) = world.limits.global_block(at) {
        return Reply::rate_limited(Scope::Global, retry_after, peek);
    }
    if !shared.token_ok(world, token) {
        return Reply::error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized", peek);
    }
    let route = match route {
        Ok(route) => route,
        Err(Miss::NotFound) => return Reply::error(StatusCode::NOT_FOUND, 0, "404: Not Found", peek),
        Err(Miss::MethodNotAllowed) => {
            return Reply::error(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed", peek);
        }
    };
    match world.limits.take(&key, at) {
        Verdict::Allowed(snapshot) => serve(shared, world, route, body, at, snapshot),
        Verdict::Route(snapshot) => Reply::rate_limited(Scope::User, snapshot.reset_after, snapshot),
        Verdict::Global { snapshot, retry_after } => Reply::rate_limited(Scope::Global, retry_after, snapshot),
    }
}

fn serve(shared: &Shared, world: &mut World, route: Route, body: &[u8], at: Instant, snapshot: Snapshot) -> Reply {
    let unknown_channel = |snapshot| Reply::error(StatusCode::NOT_FOUND, 10003, "Unknown Channel", snapshot);
    let unknown_message = |snapshot| Reply::error(StatusCode::NOT_FOUND, 10008, "Unknown Message", snapshot);
    let bad_request = |body, snapshot| Reply::new(StatusCode::BAD_REQUEST, Some(body), snapshot);
    match route {
        Route::CurrentUser => Reply::json(StatusCode::OK, &ready_user(&shared.config), snapshot),
        Route::GetChannel(channel) => match world.store.channel_json(channel) {
            Some(json) => Reply::new(StatusCode::OK, Some(json), snapshot),
            None => unknown_channel(snapshot),
        },
        Route::CreateMessage(channel) => {
            if !world.store.has_channel(channel) {
                return unknown_channel(snapshot);
            }
            let create = match bodies::create(body) {
                Ok(create) => create,
                Err(rejection) => return bad_request(rejection, snapshot),
            };
            if let Some(nonce) = create.nonce.as_deref().filter(|_| create.enforce_nonce)
                && let Some(existing) = world.store.find_by_nonce(channel, nonce, at)
            {
                return Reply::json(StatusCode::OK, &existing, snapshot);
            }
            let message = world.store.bot_message(channel, &create.content, create.embeds);
            if let Some(nonce) = create.nonce {
                world.store.remember_nonce(channel, nonce, message.id.get(), at);
            }
            world.post(message.clone());
            Reply { changed: true, ..Reply::json(StatusCode::OK, &message, snapshot) }
        }
        Route::EditMessage(channel, message_id) => {
            if !world.store.has_channel(channel) {
                return unknown_channel(snapshot);
            }
            let Some(existing) = world.store.get(channel, message_id) else { return unknown_message(snapshot) };
            if existing.author.id.get() != world.bot_id() {
                let text = "Cannot edit a message authored by another user";
                return Reply::error(StatusCode::FORBIDDEN, 50005, text, snapshot);
            }
            let edit = match bodies::edit(body) {
                Ok(edit) => edit,
                Err(rejection) => return bad_request(rejection, snapshot),
            };
            let content = edit.content.unwrap_or_else(|| existing.content.clone());
            let embeds = edit.embeds.unwrap_or_else(|| existing.embeds.clone());
            if content.is_empty() && embeds.is_empty() && existing.attachments.is_empty() {
                return bad_request(bodies::empty_message(), snapshot);
            }
            match world.edit(channel, message_id, |m| {
                m.content = content;
                m.embeds = embeds;
            }) {
                Some(edited) => Reply { changed: true, ..Reply::json(StatusCode::OK, &edited, snapshot) },
                None => unknown_message(snapshot),
            }
        }
        Route::DeleteMessage(channel, message_id) => {
            if !world.store.has_channel(channel) {
                unknown_channel(snapshot)
            } else if world.delete(channel, message_id) {
                Reply { changed: true, ..Reply::new(StatusCode::NO_CONTENT, None, snapshot) }
            } else {
                unknown_message(snapshot)
            }
        }
    }
}

fn respond(reply: Reply) -> Response {
    let mut response = match reply.body {
        Some(body) => (reply.status, Json(body)).into_response(),
        None => reply.status.into_response(),
    };
    let headers = response.headers_mut();
    let snapshot = &reply.snapshot;
    let reset_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + snapshot.reset_after;
    set(headers, "x-ratelimit-limit", snapshot.limit.to_string());
    set(headers, "x-ratelimit-remaining", snapshot.remaining.to_string());
    set(headers, "x-ratelimit-reset", format!("{:.3}", reset_at.as_secs_f64()));
    set(headers, "x-ratelimit-reset-after", format!("{:.3}", model::round3(snapshot.reset_after.as_secs_f64())));
    set(headers, "x-ratelimit-bucket", snapshot.bucket.clone());
    if let Some((scope, retry_after)) = reply.limited {
        // Discord's Retry-After is whole seconds, rounded up; twilight parses it as an integer.
        set(headers, "retry-after", (retry_after.as_secs_f64().ceil() as u64).to_string());
        match scope {
            Scope::User => set(headers, "x-ratelimit-scope", "user".to_owned()),
            Scope::Global => {
                set(headers, "x-ratelimit-global", "true".to_owned());
                set(headers, "x-ratelimit-scope", "global".to_owned());
            }
        }
    }
    response
}

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}
