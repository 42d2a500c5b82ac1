//! Burner's server: leptos_axum SSR with hydration, static assets, the `/ws` hub.
//!
//! `run` takes a bound listener and a shutdown future, so `main` and the integration tests
//! start the same server the same way (tests on `127.0.0.1:0`).

// Leptos view types nest deeply; the compiler needs more room to lay them out.
#![recursion_limit = "256"]

pub mod config;
pub mod conn_log;
pub mod data_dir;
pub mod hub;
pub mod limits;
pub mod moderation;
pub mod outbox;
mod pages;
pub mod peer;
mod serve;
pub mod shutdown;
mod site;
pub mod state;
pub mod store;
pub mod ws;

use anyhow::Context;
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
use conn_log::ConnLog;
use hub::{Hub, HubConfig};
use leptos::prelude::{LeptosOptions, provide_context};
use limits::{IpLimits, OpenPerIp, PerIp, quota};
use moderation::{
    Consoles, Moderation, auth::Auth, bans::Bans, filters::Repeats, flood::FloodPolicy, registry::Registry,
};
use peer::{IpHasher, TrustedProxies};
use state::{AppState, ConnectionSlots};
use std::{
    future::Future,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

/// Everything must be closed this long after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);
/// How often the room directory's watchers get the batched changes.
const DIRECTORY_TICK: Duration = Duration::from_millis(250);
/// Moderator sign-in tries per address: a burst, then one more every interval.
const SIGN_IN_BURST: u32 = 5;
const SIGN_IN_INTERVAL: Duration = Duration::from_secs(30);
/// Reports per address: ten at once, then one a minute.
const REPORT_BURST: u32 = 10;
const REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// How often open moderator consoles get a fresh picture (when it changed).
const CONSOLE_TICK: Duration = Duration::from_secs(1);

/// Serves Burner on `listener` until `shutdown` resolves, then closes every socket with 1001
/// and returns within 5 seconds.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let app = router(state.clone());
    state.tracker.spawn(maintain(state.clone()));
    tracing::info!(addr = %listener.local_addr()?, site = %state.config.site_dir.display(), "Burner is listening");

    serve::serve(listener, app, state.config.header_timeout, shutdown, &state.shutdown, &state.tracker).await;

    tracing::info!(sockets = state.connections.open(), "stopped accepting; closing connections");
    state.shutdown.cancel();
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

impl AppState {
    /// Opens the data directory (creating it on first start) and everything that lives on it:
    /// the store, the bans in force, the rooms a previous run left.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let data = data_dir::open(&config.data_dir, config.mod_token.as_deref()).await?;
        let store: Arc<dyn store::Store> = Arc::new(data.store);
        let now = conn_log::now_ms();
        let bans = store.active_bans(now).await.context("cannot read the bans")?;
        let rooms = store.rooms().await.context("cannot read the stored rooms")?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        // The log writer outlives the sockets: it stops once they are all closed (see `run`).
        let log_stop = CancellationToken::new();
        let moderation = Moderation {
            store: store.clone(),
            hasher: IpHasher::new(data.secret),
            proxies: TrustedProxies::new(config.trusted_proxies.clone(), config.proxy_header),
            bans: Bans::new(bans),
            log: ConnLog::start(store, log_stop.clone(), &tracker),
            registry: Registry::default(),
            repeats: Repeats::new(config.repeats_allowed, config.repeat_window),
            auth: Auth::new(data.mod_token, config.secure_cookies),
            flood: FloodPolicy {
                strikes_to_mute: config.strikes_to_mute,
                strike_window: config.strike_window,
                mute: config.mute_duration,
                tries_while_muted: config.tries_while_muted,
            },
            max_links: config.max_links,
            ban_duration: config.ban_duration,
            ipv6_prefix: config.ipv6_ban_prefix,
            consoles: Consoles::default(),
        };
        let hub = Hub::new(HubConfig {
            max_room_limit: config.max_room_limit,
            lobby_limit: config.lobby_limit,
            room_expiry: config.room_expiry,
            max_rooms: config.max_rooms,
        });
        hub.restore(rooms);
        let ip_limits = IpLimits {
            connects: PerIp::new(quota(config.connect_burst_per_ip, config.connect_interval_per_ip)),
            open: OpenPerIp::new(config.max_connections_per_ip),
            joins: PerIp::new(quota(config.join_burst_per_ip, config.join_interval_per_ip)),
            messages: PerIp::new(quota(config.message_burst_per_ip, config.message_interval_per_ip)),
            room_creation: PerIp::new(quota(config.room_create_burst, config.room_create_interval)),
            sign_ins: PerIp::new(quota(SIGN_IN_BURST, SIGN_IN_INTERVAL)),
            reports: PerIp::new(quota(REPORT_BURST, REPORT_INTERVAL)),
        };
        let allowed_origins = config
            .allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        let leptos = LeptosOptions::builder()
            .output_name("frontend")
            .site_root(config.site_dir.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        let hub = Arc::new(hub);
        let ip_limits = Arc::new(ip_limits);
        let moderation = Arc::new(moderation);
        let backend: Arc<dyn app::api::Backend> = Arc::new(site::Site {
            hub: hub.clone(),
            ip_limits: ip_limits.clone(),
            moderation: moderation.clone(),
            max_room_limit: config.max_room_limit,
        });
        Ok(Self {
            hub,
            ip_limits,
            moderation,
            backend,
            allowed_origins,
            leptos,
            shutdown,
            log_stop,
            tracker,
            connections: Arc::new(ConnectionSlots::new(config.max_connections)),
            next_conn_id: Arc::new(AtomicU64::new(1)),
            config: Arc::new(config),
        })
    }
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
    Router::new()
        .route("/", get(pages::home))
        .route("/r/{slug}", get(pages::room))
        .route(CONSOLE_PATH, get(pages::console))
        .route(SIGN_IN_PATH, post(pages::sign_in))
        .route(SIGN_OUT_PATH, post(pages::sign_out))
        .route(WS_PATH, get(ws::upgrade))
        .route("/api/{*function}", get(server_function).post(server_function))
        .route("/healthz", get(health))
        .nest_service("/pkg", assets)
        .nest_service(&format!("/{}", app::CONSOLE_PKG_DIR), console_assets)
        .fallback(pages::not_found)
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
    Json(serde_json::json!({
        "status": if log_error.is_some() { "degraded" } else { "ok" },
        "rooms": state.hub.room_count(),
        "connections": state.connections.open(),
        "connection_log": {
            "error": log_error,
            "waiting": log.waiting.load(std::sync::atomic::Ordering::Relaxed),
            "dropped": log.dropped.load(std::sync::atomic::Ordering::Relaxed),
        },
    }))
}

/// Background upkeep: directory updates, live consoles, room expiry, forgetting idle rate-limit
/// buckets, and the connection log's retention.
async fn maintain(state: AppState) {
    let mut directory = tokio::time::interval(DIRECTORY_TICK);
    let mut consoles = tokio::time::interval(CONSOLE_TICK);
    let sweep_every = (state.config.room_expiry / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut sweep = tokio::time::interval(sweep_every);
    let mut retention = tokio::time::interval(state.config.retention_sweep.max(Duration::from_millis(100)));
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            _ = directory.tick() => state.hub.flush_directory(),
            _ = consoles.tick() => state.moderation.refresh_consoles(&state.hub).await,
            _ = sweep.tick() => {
                for slug in state.hub.expire_rooms(std::time::Instant::now()) {
                    if let Err(error) = state.moderation.store.delete_room(&slug).await {
                        tracing::error!(%error, room = %slug, "cannot forget an expired room");
                    }
                }
                state.ip_limits.connects.forget_idle();
                state.ip_limits.joins.forget_idle();
                state.ip_limits.messages.forget_idle();
                state.ip_limits.room_creation.forget_idle();
                state.ip_limits.sign_ins.forget_idle();
                state.ip_limits.reports.forget_idle();
                state.moderation.repeats.forget_idle();
            }
            _ = retention.tick() => forget_old_connections(&state).await,
        }
    }
}

/// The retention job: connection-log rows older than `--log-retention` are deleted.
async fn forget_old_connections(state: &AppState) {
    let retention = i64::try_from(state.config.log_retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = conn_log::now_ms().saturating_sub(retention);
    match state.moderation.store.forget_connections_before(cutoff).await {
        Ok(0) => {}
        Ok(forgotten) => tracing::info!(forgotten, "connection log: old rows deleted"),
        Err(error) => tracing::error!(%error, "connection log: cannot delete old rows"),
    }
}
