//! Burner's server: leptos_axum SSR with hydration, static assets, the `/ws` hub.
//!
//! `run` takes a bound listener and a shutdown future, so `main` and the integration tests
//! start the same server the same way (tests on `127.0.0.1:0`).

// Leptos view types nest deeply; the compiler needs more room to lay them out.
#![recursion_limit = "256"]

pub mod bridge;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod conn_log;
pub mod data_dir;
pub mod error;
pub mod event;
pub mod frame;
pub mod hub;
pub mod limits;
mod maintain;
pub mod moderation;
pub mod outbox;
mod pages;
pub mod peer;
pub mod policy;
pub mod serve;
pub mod shutdown;
mod site;
pub mod state;
pub mod store;
pub mod visitor;
pub mod websocket;
pub mod ws;

use app::{
    api::{CONSOLE_PATH, SIGN_IN_PATH, SIGN_OUT_PATH},
    protocol::WS_PATH,
};
use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderValue, Request, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use config::Config;
use leptos::prelude::provide_context;
use state::AppState;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tower_http::{
    CompressionLevel, compression::CompressionLayer, services::ServeDir, set_header::SetResponseHeaderLayer,
};

/// Everything must be closed this long after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);

/// Serves Burner on `listener` until `shutdown` resolves, then closes every socket with 1001
/// and returns within 5 seconds.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let app = router(state.clone());
    state.tracker.spawn(maintain::maintain(state.clone()));
    if let Some(cluster) = &state.moderation.cluster {
        if let Some(rooms) = state.hub.cluster() {
            rooms.heartbeat().await?;
            state.tracker.spawn(cluster::keep_alive(state.hub.clone(), state.shutdown.clone()));
        }
        let (ready, subscribed) = tokio::sync::oneshot::channel();
        let bus = cluster::listen(
            cluster.clone(),
            state.moderation.clone(),
            state.hub.clone(),
            state.shutdown.clone(),
            ready,
        );
        state.tracker.spawn(bus);
        // Subscribed (and so caught up: the rooms other nodes have) before the first visitor:
        // a node that served before it heard the rooms' events would lose its first joins.
        if tokio::time::timeout(Duration::from_secs(5), subscribed).await.is_err() {
            tracing::warn!("cluster: not subscribed yet; serving anyway (degraded)");
        }
    }
    // Kept here for the life of the server (its tasks and the console hold clones).
    let bridge = bridge::Bridge::new(&state)?;
    if let Some(bridge) = &bridge {
        let _ = state.moderation.discord.set(Arc::downgrade(bridge));
        bridge.start();
    }
    tracing::info!(addr = %listener.local_addr()?, site = %state.config.site_dir.display(), "Burner is listening");

    let log = &state.moderation.log;
    let serving = serve::Serving {
        router: app,
        header_timeout: state.config.header_timeout,
        stop: &state.shutdown,
        tracker: &state.tracker,
        behind: &|| log.behind(),
    };
    serve::serve(listener, serving, shutdown).await;

    tracing::info!(sockets = state.connections.open(), "stopped accepting; closing connections");
    state.shutdown.cancel();
    // After the cancel: a socket upgraded from here on sees it as it opens (`Session::open`).
    state.moderation.registry.close_all(&ws::GOING_AWAY);
    state.tracker.close();
    // Sockets first (their closing is logged), then the log writer with what is left queued.
    let sockets_closed = async {
        // The connection log's writer is the one task left once the sockets are gone.
        while state.tracker.len() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        state.log_stop.cancel();
        state.tracker.wait().await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, sockets_closed).await.is_err() {
        tracing::warn!("shutdown grace period over; dropping the remaining connections");
    }
    Ok(())
}

pub fn router(state: AppState) -> Router {
    // Leptos spawns rendering tasks through a global executor; tokio's is ours. Setting it again
    // (a second server in the same process) is refused harmlessly.
    let _ = any_spawner::Executor::init_tokio();
    // Bundle names carry no hash, so browsers revalidate them (cheap: Last-Modified).
    let assets = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .service(ServeDir::new(state.config.site_dir.join("pkg")).precompressed_br().precompressed_gzip());
    let console_assets = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .service(ServeDir::new(state.config.site_dir.join("console")).precompressed_br().precompressed_gzip());
    // Pages carry their messages twice (HTML and the embedded page data): compressed, a room's
    // page is a fraction of its size. The fastest level: it is made anew for every request.
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/r/{slug}", get(pages::room))
        .route(CONSOLE_PATH, get(pages::console))
        .route(SIGN_IN_PATH, post(pages::sign_in))
        .route(SIGN_OUT_PATH, post(pages::sign_out))
        .fallback(pages::not_found)
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest));
    Router::new()
        .merge(pages)
        .route(WS_PATH, get(ws::upgrade))
        .route("/api/{*function}", get(server_function).post(server_function))
        .route("/healthz", get(health))
        .nest_service("/pkg", assets)
        .nest_service(&format!("/{}", app::CONSOLE_PKG_DIR), console_assets)
        .layer(axum::middleware::from_fn_with_state(state.clone(), same_origin_posts))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// A request that changes something (a form post, a server function, signing in or out) from a
/// browser must come from our own pages. Browsers say where a request comes from in
/// `Sec-Fetch-Site`; without it (older browsers) a real `Origin` must be ours. (Our pages send no
/// referrer, so their own form posts carry `Origin: null`: that alone proves nothing either way.)
/// The moderator cookie is `SameSite=Strict` as well; this also covers sibling sites and
/// signing out. Requests with neither header (scripts and bots, without our cookies) pass.
async fn same_origin_posts(
    State(state): State<AppState>,
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if !safe && !from_our_pages(&state, request.headers()) {
        return (axum::http::StatusCode::FORBIDDEN, "Requests from other sites are refused.").into_response();
    }
    next.run(request).await
}

fn from_our_pages(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) if origin.as_bytes() == b"null" => true,
        Some(_) => ws::origin_allowed(&state.allowed_origins, headers),
    }
}

/// On every response: no MIME sniffing, no referrer, no framing; pages bring their own
/// Content-Security-Policy (with the nonce of their hydration script), everything else gets one
/// that allows nothing.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}

/// Stands in for the page a form was posted from: pages send no `Referer` (their policy is
/// `no-referrer`), and server functions only put a refusal in the redirect's query when they
/// have an absolute URL to go back to.
const FORM_ORIGIN: &str = "http://form.burner.invalid";

/// The app's server functions (`app::api`), with the hub behind them.
async fn server_function(State(state): State<AppState>, mut request: Request<Body>) -> Response {
    let headers = request.headers_mut();
    let plain_form = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if plain_form {
        // Every form of the site lives on the home page.
        headers.insert(header::REFERER, HeaderValue::from_str(&format!("{FORM_ORIGIN}/")).expect("valid header"));
    }
    let backend = state.backend.clone();
    let mut response = leptos_axum::handle_server_fns_with_context(move || provide_context(backend.clone()), request)
        .await
        .into_response();
    // Back to a path of this site, whatever origin the redirect was built on.
    if let Some(location) = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok())
        && let Some(path) = location.strip_prefix(FORM_ORIGIN)
        && let Ok(path) = HeaderValue::from_str(path)
    {
        response.headers_mut().insert(header::LOCATION, path);
    }
    response
}

/// `ok`, or `degraded` while the connection log cannot be written (the chat works on; the
/// log catches up when the store does).
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let log = state.moderation.log.health();
    let log_error = log.error();
    let cluster = state
        .moderation
        .cluster
        .as_ref()
        .map(|cluster| serde_json::json!({ "node": &*cluster.node, "error": cluster.trouble() }));
    let cluster_error = cluster.as_ref().is_some_and(|c| !c["error"].is_null());
    // The bridge's trouble is its own: the chat works without it, so the status stays `ok`.
    let discord = state.moderation.bridge().map(|bridge| bridge.health());
    Json(serde_json::json!({
        "status": if log_error.is_some() || cluster_error { "degraded" } else { "ok" },
        "cluster": cluster,
        "discord": discord,
        "rooms": state.hub.room_count(),
        "connections": state.connections.open(),
        "connection_log": {
            "error": log_error,
            "waiting": log.waiting.load(std::sync::atomic::Ordering::Relaxed),
            "dropped": log.dropped.load(std::sync::atomic::Ordering::Relaxed),
        },
    }))
}
