//! Page routes: choose the page for a path, gather its data from the hub, and render it with
//! leptos_axum. The page goes into the document as JSON too, for the browser to hydrate.

use crate::state::AppState;
use app::{api::ApiError, page::Page, protocol::is_valid_slug};
use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{Request, StatusCode},
    response::Response,
};
use leptos::server_fn::error::ServerFnUrlError;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct HomeQuery {
    /// A refusal of the creation form, when it was posted without JavaScript and sent back here.
    #[serde(rename = "__err")]
    error: Option<String>,
}

pub async fn home(State(state): State<AppState>, Query(query): Query<HomeQuery>, request: Request<Body>) -> Response {
    // Only the code is taken from the address (anyone can write a link); the sentence is ours.
    let form_error = query
        .error
        .map(|encoded| ApiError::sentence_for(ServerFnUrlError::<ApiError>::decode_err(&encoded).code).to_owned());
    let page = Page::Home { rooms: state.hub.listed_rooms(), form_error };
    render(&state, page, StatusCode::OK, request).await
}

pub async fn room(State(state): State<AppState>, Path(slug): Path<String>, request: Request<Body>) -> Response {
    let preview = is_valid_slug(&slug).then(|| state.hub.preview(&slug)).flatten();
    match preview {
        Some(preview) => render(&state, Page::Room { preview }, StatusCode::OK, request).await,
        None => render(&state, Page::NotFound { room: true }, StatusCode::NOT_FOUND, request).await,
    }
}

pub async fn not_found(State(state): State<AppState>, request: Request<Body>) -> Response {
    render(&state, Page::NotFound { room: false }, StatusCode::NOT_FOUND, request).await
}

async fn render(state: &AppState, page: Page, status: StatusCode, request: Request<Body>) -> Response {
    let options = state.leptos.clone();
    let render = leptos_axum::render_app_async_with_context(|| {}, move || app::shell(options.clone(), page.clone()));
    let mut response = render(request).await;
    *response.status_mut() = status;
    response
}
