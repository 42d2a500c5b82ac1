//! Server functions: what pages load over HTTP (the directory, a room's preview) and room
//! creation, which also works as a plain HTML form without JavaScript.
//!
//! They run on the server against a [`Backend`] the server crate provides as context, so this
//! crate never depends on the hub itself.

use crate::protocol::{ChatMessage, ConnectionView, ErrorCode, ModAction, Profanity, RoomSummary};
use leptos::prelude::*;
use leptos::server_fn::{
    codec::{GetUrl, Json, JsonEncoding},
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// What the room page shows before joining.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPreview {
    pub room: RoomSummary,
    /// Latest messages of a normal room, never an empty list; `None` when there are none, and in
    /// a one-way room, whose history depends on who is asking (authors never see their own
    /// messages). The server writes them into the page as HTML; the page's data says only that
    /// there are some (an empty list), so no message travels twice. The browser keeps the rows
    /// the server wrote, and in a lobby it draws again after a leave shows the conversation's
    /// latest messages instead.
    #[serde(serialize_with = "shown_only")]
    pub recent: Option<Vec<ChatMessage>>,
    /// The Discord channel the room is bridged to: what is said here is also said there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridged_to: Option<String>,
}

crate::json::read_fields!(RoomPreview { room; recent, bridged_to });

/// `Some` messages as an empty list, `None` as null: whether the page shows recent messages.
fn shown_only<S: serde::Serializer>(recent: &Option<Vec<ChatMessage>>, serializer: S) -> Result<S::Ok, S::Error> {
    let shown: Option<[ChatMessage; 0]> = recent.as_ref().map(|_| []);
    shown.serialize(serializer)
}

/// A refusal with a code for programs and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl ApiError {
    /// The sentence for a refusal that came back in the page address (a form posted without
    /// JavaScript). Only the code is taken from the address: anyone can write a link, so its
    /// text is never shown.
    pub fn sentence_for(code: ErrorCode) -> &'static str {
        match code {
            ErrorCode::RoomNameInvalid => {
                "That room name can't be used: it must be 1 to 48 characters, without invisible or control characters."
            }
            ErrorCode::RoomNameTaken => "A room with that name (or one that looks just like it) already exists.",
            ErrorCode::LimitInvalid => "The participant limit must be a whole number from 2 to 1000.",
            ErrorCode::RateLimited => "You are creating rooms too quickly. Try again in a minute.",
            ErrorCode::Unavailable => "There are too many rooms right now. Join an existing one, or try again later.",
            ErrorCode::Banned => "This address is banned: it cannot create rooms.",
            _ => "The room could not be created. Please try again.",
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> Self {
        match error {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::new(ErrorCode::BadRequest, "The form was incomplete or malformed.")
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                Self::new(ErrorCode::Unavailable, "Burner could not be reached. Check your connection and try again.")
            }
            _ => Self::new(ErrorCode::Internal, "Something went wrong on the server."),
        }
    }
}

/// The server's side of these functions.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    fn rooms(&self) -> Vec<RoomSummary>;
    async fn preview(&self, slug: &str) -> Option<RoomPreview>;
    /// `peer` and `headers` tell the server who asks (behind a trusted proxy, the forwarded client).
    async fn create_room(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
        room: NewRoom,
    ) -> Result<RoomSummary, ApiError>;
    /// A moderator's action (refused unless `headers` carry a moderator session); the sentence
    /// confirming it.
    async fn moderate(&self, headers: &axum::http::HeaderMap, action: ModAction) -> Result<String, ApiError>;
    /// Connection-log search for moderators.
    async fn search_log(
        &self,
        headers: &axum::http::HeaderMap,
        text: String,
        reveal: bool,
    ) -> Result<Vec<ConnectionView>, ApiError>;
}

/// A room as the creation form describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRoom {
    pub name: String,
    pub limit: u32,
    pub one_way: bool,
    pub listed: bool,
    pub profanity: Profanity,
}

#[cfg(feature = "ssr")]
fn backend() -> Result<std::sync::Arc<dyn Backend>, ApiError> {
    use_context::<std::sync::Arc<dyn Backend>>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "Burner is not ready yet."))
}

#[server(endpoint = "rooms", input = GetUrl)]
pub async fn list_rooms() -> Result<Vec<RoomSummary>, ApiError> {
    Ok(backend()?.rooms())
}

#[server(endpoint = "room", input = GetUrl)]
pub async fn fetch_room_preview(slug: String) -> Result<Option<RoomPreview>, ApiError> {
    Ok(backend()?.preview(&slug).await)
}

/// The moderator console.
pub const CONSOLE_PATH: &str = "/mod";
/// Where the moderator sign-in form posts (`token`); answered with the session cookie and a
/// redirect to the console.
pub const SIGN_IN_PATH: &str = "/mod/sign-in";
pub const SIGN_OUT_PATH: &str = "/mod/sign-out";

/// Where the creation form posts (the `create_room` server function below).
pub const CREATE_ROOM_PATH: &str = "/api/create_room";

/// Creates a room and sends the browser to it. Fields are strings because this is also a plain
/// form post: a wrong limit gets a sentence, not a deserialisation error.
#[server(endpoint = "create_room")]
pub async fn create_room(
    name: String,
    limit: String,
    one_way: Option<String>,
    listed: Option<String>,
    profanity: Option<String>,
) -> Result<RoomSummary, ApiError> {
    use axum::extract::ConnectInfo;
    let limit = limit.trim().parse::<u32>().map_err(|_| {
        with_status(ApiError::new(
            ErrorCode::LimitInvalid,
            "The participant limit must be a whole number from 2 to 1000.",
        ))
    })?;
    let ConnectInfo(peer) = leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>()
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "Burner could not tell where the request came from."))?;
    let headers = request_headers();
    let profanity = match profanity.as_deref() {
        Some("off") => Profanity::Off,
        Some("block") => Profanity::Block,
        _ => Profanity::Mask,
    };
    let room = NewRoom { name, limit, one_way: one_way.is_some(), listed: listed.is_some(), profanity };
    let created = backend()?.create_room(peer.ip(), &headers, room).await.map_err(with_status)?;
    leptos_axum::redirect(&format!("/r/{}", created.slug));
    Ok(created)
}

/// The request's headers (empty outside a request).
#[cfg(feature = "ssr")]
fn request_headers() -> axum::http::HeaderMap {
    use_context::<axum::http::request::Parts>().map(|parts| parts.headers).unwrap_or_default()
}

/// Does a moderator's action. Refused (403, `permission_denied`) without the session cookie
/// that signing in at `/mod` sets.
#[server(endpoint = "moderate", input = Json)]
pub async fn moderate(action: ModAction) -> Result<String, ApiError> {
    backend()?.moderate(&request_headers(), action).await.map_err(with_status)
}

/// Searches the connection log by address, address hash (or its start) or nickname. Addresses
/// are in the answer only with `reveal`, which is written to the audit log.
#[server(endpoint = "search_log", input = Json)]
pub async fn search_log(text: String, reveal: bool) -> Result<Vec<ConnectionView>, ApiError> {
    backend()?.search_log(&request_headers(), text, reveal).await.map_err(with_status)
}

/// Gives a refusal the HTTP status a program expects (422, 429…). A plain form post keeps
/// the redirect back to the form that leptos_axum answers it with, so the browser shows it.
#[cfg(feature = "ssr")]
fn with_status(error: ApiError) -> ApiError {
    use axum::http::{StatusCode, header::ACCEPT, request::Parts};
    let from_a_form = use_context::<Parts>()
        .and_then(|parts| parts.headers.get(ACCEPT)?.to_str().ok().map(|a| a.contains("text/html")))
        .unwrap_or(false);
    if !from_a_form && let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY));
    }
    error
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use leptos::server_fn::ServerFn;

    #[test]
    fn the_creation_form_posts_to_the_server_function() {
        assert_eq!(CREATE_ROOM_PATH, <CreateRoom as ServerFn>::PATH);
    }
}
