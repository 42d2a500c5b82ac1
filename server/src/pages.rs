//! Page routes: choose the page for a path, gather its data from the hub, and render it with
//! leptos_axum. The page goes into the document as JSON too, for the browser to hydrate. Also the
//! moderators' sign-in and sign-out, which are plain form posts. The directory and room pages
//! are kept once rendered (`cache`): the next request for the same page only gets a new nonce.

mod cache;

pub use cache::PageCache;

use crate::{state::AppState, visitor::Visitor};
use app::{
    api::{ApiError, CONSOLE_PATH},
    page::Page,
    protocol::is_valid_slug,
};
use axum::{
    Form,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use leptos::{
    nonce::{Nonce, use_nonce},
    prelude::use_context,
    server_fn::error::ServerFnUrlError,
};
use leptos_axum::ResponseOptions;
use serde::Deserialize;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Deserialize)]
pub struct HomeQuery {
    /// A refusal of the creation form, when it was posted without JavaScript and sent back here.
    #[serde(rename = "__err")]
    error: Option<String>,
}

/// The sentence a banned visitor sees instead of the forms; `None` for everyone else (and for
/// moderators, who must never lock themselves out by banning an address they share).
fn ban_notice(visitor: &Visitor) -> Option<String> {
    visitor.banned().map(|refusal| refusal.sentence().to_owned())
}

pub async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<HomeQuery>,
    request: Request<Body>,
) -> Response {
    // Only the code is taken from the address (anyone can write a link); the sentence is ours.
    let form_error = query
        .error
        .map(|encoded| ApiError::sentence_for(ServerFnUrlError::<ApiError>::decode_err(&encoded).code).to_owned());
    let banned = ban_notice(&visitor);
    let page = Page::Home { rooms: state.hub.listed_rooms(), form_error, banned };
    render(&state, page, StatusCode::OK, request).await
}

pub async fn room(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(slug): Path<String>,
    request: Request<Body>,
) -> Response {
    let preview = match is_valid_slug(&slug) {
        true => state.backend.preview(&slug).await,
        false => None,
    };
    match preview {
        Some(preview) => {
            let banned = ban_notice(&visitor);
            render(&state, Page::Room { preview, banned }, StatusCode::OK, request).await
        }
        None => render(&state, Page::NotFound { room: true }, StatusCode::NOT_FOUND, request).await,
    }
}

pub async fn not_found(State(state): State<AppState>, request: Request<Body>) -> Response {
    render(&state, Page::NotFound { room: false }, StatusCode::NOT_FOUND, request).await
}

/// `/mod`: the console for a signed-in moderator, the sign-in form for anyone else.
pub async fn console(State(state): State<AppState>, visitor: Visitor, request: Request<Body>) -> Response {
    let page = if visitor.is_moderator() {
        Page::Console { snapshot: state.moderation.snapshot(&state.hub).await }
    } else {
        Page::SignIn { error: None }
    };
    let mut response = render(&state, page, StatusCode::OK, request).await;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
}

/// Trades the moderator token for a session cookie. Tries are rate-limited per address, and
/// every outcome is written to the audit log under the address's hash.
pub async fn sign_in(State(state): State<AppState>, visitor: Visitor, Form(form): Form<SignInForm>) -> Response {
    let moderation = &state.moderation;
    let who = format!("address {}", visitor.ip_hash);
    if let Err(retry) = state.ip_limits.sign_ins.take(visitor.ip, 1) {
        let seconds = retry.0.as_secs().max(1);
        let error = format!("Too many tries. Try again in {seconds} seconds.");
        return sign_in_page(&state, error, StatusCode::TOO_MANY_REQUESTS).await;
    }
    if !moderation.auth.token_matches(&form.token) {
        moderation.audit("sign_in_failed", &who, "", String::new()).await;
        return sign_in_page(&state, "That is not the moderator token.".to_owned(), StatusCode::UNAUTHORIZED).await;
    }
    moderation.audit("sign_in", &who, "", String::new()).await;
    let session = moderation.auth.open_session();
    if let Some(cluster) = &moderation.cluster {
        cluster.session_opened(&session.id, session.expires_at).await;
    }
    let mut response = Redirect::to(CONSOLE_PATH).into_response();
    if let Ok(value) = HeaderValue::from_str(&session.set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let (Some(cluster), Some(id)) = (&state.moderation.cluster, state.moderation.auth.session(&headers)) {
        cluster.session_closed(&id).await;
    }
    let cookie = state.moderation.auth.close_session(&headers);
    let mut response = Redirect::to(CONSOLE_PATH).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn sign_in_page(state: &AppState, error: String, status: StatusCode) -> Response {
    let request = Request::builder().uri(CONSOLE_PATH).body(Body::empty()).unwrap_or_default();
    render(state, Page::SignIn { error: Some(error) }, status, request).await
}

/// The policy for pages: scripts only from this site, and the inline hydration script only with
/// this response's nonce; no framing; nothing loaded from elsewhere.
fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Renders `page`, or answers with the same page kept from an earlier render (directory and room
/// pages) under a nonce of its own.
async fn render(state: &AppState, page: Page, status: StatusCode, request: Request<Body>) -> Response {
    // Where the page is kept, with the page to compare the next request's with.
    let keep = match &page {
        Page::Home { .. } | Page::Room { .. } if state.pages.keeps() => {
            Some((request.uri().path().to_owned(), page.clone()))
        }
        _ => None,
    };
    if let Some((path, page)) = &keep
        && let Some(rendered) = state.pages.get(path, page)
    {
        let nonce = Nonce::new().to_string();
        if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
            return rendered.respond(&nonce, policy);
        }
    }
    let options = state.leptos.clone();
    let used_nonce = Arc::new(Mutex::new(String::new()));
    // Runs inside the render, after leptos_axum has made this response's nonce.
    let set_policy = {
        let used_nonce = used_nonce.clone();
        move || {
            if let (Some(nonce), Some(response)) = (use_nonce(), use_context::<ResponseOptions>())
                && let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce))
            {
                response.insert_header(header::CONTENT_SECURITY_POLICY, policy);
                *used_nonce.lock().unwrap_or_else(PoisonError::into_inner) = nonce.to_string();
            }
        }
    };
    let render =
        leptos_axum::render_app_async_with_context(set_policy, move || app::shell(options.clone(), page.clone()));
    let mut response = render(request).await;
    *response.status_mut() = status;
    let Some((path, page)) = keep else { return response };
    // Kept: the body is read whole (it was rendered whole, `render_app_async`), then sent on.
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let nonce = std::mem::take(&mut *used_nonce.lock().unwrap_or_else(PoisonError::into_inner));
    if let Some(rendered) = cache::Rendered::new(page, parts.status, parts.headers.clone(), &body, &nonce) {
        state.pages.put(&path, rendered);
    }
    Response::from_parts(parts, Body::from(body))
}
