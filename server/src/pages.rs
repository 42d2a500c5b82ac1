//! Page routes: choose the page for a path, gather its data from the hub, and render it (the
//! Leptos view, into one string: `document`). The page goes into the document as JSON too, for
//! the browser to hydrate. Also the moderators' sign-in and sign-out, which are plain form posts.
//! The directory and room pages are kept once rendered (`cache`): the next request for the same
//! page only gets a new nonce.

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
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use futures_util::{FutureExt, StreamExt};
use hydration_context::{SharedContext, SsrSharedContext};
use leptos::{
    config::LeptosOptions, context::provide_context, nonce::Nonce, reactive::owner::Owner,
    server_fn::error::ServerFnUrlError, tachys::view::RenderHtml,
};
use serde::Deserialize;
use std::{fmt::Write, sync::Arc};

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

pub async fn home(State(state): State<AppState>, visitor: Visitor, Query(query): Query<HomeQuery>) -> Response {
    // Only the code is taken from the address (anyone can write a link); the sentence is ours.
    let form_error = query
        .error
        .map(|encoded| ApiError::sentence_for(ServerFnUrlError::<ApiError>::decode_err(&encoded).code).to_owned());
    let banned = ban_notice(&visitor);
    let page = Page::Home { rooms: state.hub.listed_rooms(), form_error, banned };
    render(&state, page, StatusCode::OK).await
}

pub async fn room(State(state): State<AppState>, visitor: Visitor, Path(slug): Path<String>) -> Response {
    let preview = match is_valid_slug(&slug) {
        true => state.backend.preview(&slug).await,
        false => None,
    };
    match preview {
        Some(preview) => {
            let banned = ban_notice(&visitor);
            render(&state, Page::Room { preview, banned }, StatusCode::OK).await
        }
        None => render(&state, Page::NotFound { room: true }, StatusCode::NOT_FOUND).await,
    }
}

pub async fn not_found(State(state): State<AppState>) -> Response {
    render(&state, Page::NotFound { room: false }, StatusCode::NOT_FOUND).await
}

/// `/mod`: the console for a signed-in moderator, the sign-in form for anyone else.
pub async fn console(State(state): State<AppState>, visitor: Visitor) -> Response {
    let page = if visitor.is_moderator() {
        Page::Console { snapshot: state.moderation.snapshot(&state.hub).await }
    } else {
        Page::SignIn { error: None }
    };
    let mut response = render(&state, page, StatusCode::OK).await;
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
    render(state, Page::SignIn { error: Some(error) }, status).await
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

/// Renders `page`, or answers with the same page kept from an earlier render (the directory and
/// room pages) under a nonce of its own.
async fn render(state: &AppState, page: Page, status: StatusCode) -> Response {
    let keeps = state.pages.keeps(&page);
    if keeps && let Some(rendered) = state.pages.get(&page) {
        let nonce = Nonce::new().to_string();
        if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
            return rendered.respond(&nonce, policy);
        }
    }
    let nonce = Nonce::new();
    // A copy to compare the next request's page with, only where the page is kept.
    let kept_page = keeps.then(|| page.clone());
    let Some(body) = document(state.leptos.clone(), page, &nonce) else {
        tracing::error!("a page left data to wait for, which document() cannot send: render it as a stream");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = Bytes::from(body);
    let nonce = nonce.to_string();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if let Some(page) = kept_page
        && let Some(rendered) = cache::Rendered::new(page, status, headers.clone(), &body, &nonce)
    {
        state.pages.put(rendered);
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The whole document for `page`, in one pass into one buffer, with `nonce` on its scripts: the
/// shell's view rendered as leptos_axum's in-order renderer would (the same bytes: a test holds
/// the two equal for every kind of page), then the hydration data's scripts it writes after the
/// app. No stream, no request context and no meta context, which no page uses: what leptos_axum
/// did around the view (its request's parts cloned into a context, the stream's chunks copied
/// into one string, then joined again, a task tick, a streamed body) was a quarter of a room
/// page's render (docs/BENCHMARKS.md, "Server-side rendering").
///
/// All of it happens at once, in this call: no page loads anything asynchronously, so the
/// reactive owner made here is the thread's only while it runs, and no other task can find it
/// there. `None` if the view left something to wait for after all (a resource, a deferred
/// part): such a page needs leptos_axum's stream, which waits, and is not sent without its data.
fn document(options: LeptosOptions, page: Page, nonce: &Nonce) -> Option<String> {
    draw(|| app::shell(options, page), nonce)
}

/// [`document`]'s work for any view (a test gives it one that waits).
fn draw<V: RenderHtml>(view: impl FnOnce() -> V, nonce: &Nonce) -> Option<String> {
    let shared: Arc<dyn SharedContext + Send + Sync> = Arc::new(SsrSharedContext::new());
    let owner = Owner::new_root(Some(shared.clone()));
    let mut html = owner.with(|| {
        provide_context(nonce.clone());
        view().to_html()
    });
    // The hydration data (resolved resources, errors: none on Burner's pages), each chunk a
    // script as leptos' integration writes it: the browser's hydration reads these globals.
    let data = shared.pending_data().map(|data| data.collect::<Vec<String>>().now_or_never());
    let deferred = shared.await_deferred().is_some();
    owner.unset_with_forced_cleanup();
    let chunks = match data {
        Some(Some(chunks)) => chunks,
        None => Vec::new(),
        Some(None) => return None,
    };
    if deferred {
        return None;
    }
    for chunk in chunks {
        let _ = write!(html, "<script nonce=\"{nonce}\">{chunk}</script>");
    }
    Some(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::page::every_kind;
    use axum::http::Request;

    /// The same page through leptos_axum's renderer (the one `document` stands in for), with
    /// `nonce` as the response's.
    async fn leptos_axum_document(options: LeptosOptions, page: Page, nonce: &Nonce) -> String {
        let nonce = nonce.clone();
        let render = leptos_axum::render_app_async_with_context(
            move || provide_context(nonce.clone()),
            move || app::shell(options.clone(), page.clone()),
        );
        let response = render(Request::builder().uri("/r/lobby").body(Body::empty()).expect("request")).await;
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }

    /// The document is byte for byte what leptos_axum's in-order renderer makes of the same page
    /// (which the browser's hydration is written against), for every kind of page: nothing of
    /// the view's rendering, the nonce's places or the hydration data's scripts differs.
    #[tokio::test]
    async fn the_document_is_what_leptos_axum_renders() {
        let _ = any_spawner::Executor::init_tokio();
        let options = LeptosOptions::builder().output_name("frontend").build();
        for page in every_kind() {
            let nonce = Nonce::new();
            let ours = document(options.clone(), page.clone(), &nonce).expect("nothing to wait for");
            let theirs = leptos_axum_document(options.clone(), page.clone(), &nonce).await;
            assert_eq!(ours, theirs, "{page:?}");
            assert!(ours.contains(&format!("nonce=\"{nonce}\"")) && ours.contains("__RESOLVED_RESOURCES"), "{ours}");
        }
    }

    /// A view that leaves data to wait for (a resource not yet loaded, as a future page might
    /// have) is refused, never drawn without its data; the same view with the data at hand is
    /// drawn, its data in the hydration scripts.
    #[tokio::test]
    async fn a_page_left_waiting_is_refused_not_sent_without_its_data() {
        use leptos::prelude::*;
        let _ = any_spawner::Executor::init_tokio();
        let nonce = Nonce::new();
        let waiting = || {
            let never = Resource::new(|| (), |()| std::future::pending::<String>());
            view! { <Suspense fallback=|| "loading">{move || never.get()}</Suspense> }
        };
        assert_eq!(draw(waiting, &nonce), None);
        let ready = || {
            let now = Resource::new(|| (), |()| async { "loaded".to_owned() });
            view! { <Suspense fallback=|| "loading">{move || now.get()}</Suspense> }
        };
        let drawn = draw(ready, &nonce).expect("nothing left to wait for");
        assert!(drawn.contains(&format!("<script nonce=\"{nonce}\">")) && drawn.contains("loaded"), "{drawn}");
    }
}
