//! The control API for Playwright tests, which cannot hold a Rust handle: the same operations
//! as `StandIn`'s people-on-Discord methods, over plain JSON. No auth: the binary binds loopback
//! only. These requests are not recorded and not rate limited; they are not Discord's.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{model, world::Shared};

#[derive(Debug, Deserialize)]
pub(crate) struct UserMessage {
    user_id: u64,
    user_name: String,
    content: String,
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(model::api_error(0, &format!("unknown {what}")))).into_response()
}

/// `POST /_standin/channels/{id}/user_messages` `{"user_id", "user_name", "content"}` → the Message.
pub(crate) async fn post_user_message(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<u64>,
    Json(body): Json<UserMessage>,
) -> Response {
    if !shared.world().store.has_channel(channel) {
        return not_found("channel");
    }
    if body.user_id == 0 {
        return (StatusCode::BAD_REQUEST, Json(model::api_error(0, "user_id cannot be 0"))).into_response();
    }
    let message = shared.user_message(channel, body.user_id, &body.user_name, &body.content);
    shared.post(message.clone());
    Json(message).into_response()
}

/// `GET /_standin/channels/{id}/messages` → what the channel holds, oldest first.
pub(crate) async fn list_messages(State(shared): State<Arc<Shared>>, Path(channel): Path<u64>) -> Response {
    let world = shared.world();
    if !world.store.has_channel(channel) {
        return not_found("channel");
    }
    Json(world.store.messages(channel)).into_response()
}

/// `POST /_standin/channels/{id}/messages/{mid}/delete`: a Discord moderator deletes it.
pub(crate) async fn delete_message(
    State(shared): State<Arc<Shared>>,
    Path((channel, message)): Path<(u64, u64)>,
) -> Response {
    if shared.delete(channel, message) { StatusCode::NO_CONTENT.into_response() } else { not_found("message") }
}
