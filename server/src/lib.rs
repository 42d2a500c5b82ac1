//! Burner's server: leptos_axum SSR with hydration, static assets, the `/ws` hub.
//!
//! `run` takes a bound listener and a shutdown future, so `main` and the integration tests
//! start the same server the same way (tests on `127.0.0.1:0`).

// Leptos view types nest deeply; the compiler needs more room to lay them out.
#![recursion_limit = "256"]

pub mod config;
pub mod hub;
pub mod limits;
pub mod outbox;
mod pages;
mod serve;
pub mod shutdown;
mod site;
pub mod state;
pub mod ws;

use app::protocol::WS_PATH;
use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderValue, Request, header},
    response::IntoResponse,
    routing::get,
};
use config::Config;
use hub::{Hub, HubConfig};
use leptos::prelude::{LeptosOptions, provide_context};
use limits::{IpLimits, OpenPerIp, PerIp, quota};
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

/// Serves Burner on `listener` until `shutdown` resolves, then closes every socket with 1001
/// and returns within 5 seconds.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let state = AppState::new(config);
    let app = router(state.clone());
    state.tracker.spawn(maintain(state.clone()));
    tracing::info!(addr = %listener.local_addr()?, site = %state.config.site_dir.display(), "Burner is listening");

    serve::serve(listener, app, state.config.header_timeout, shutdown, &state.shutdown, &state.tracker).await;

    tracing::info!(sockets = state.connections.open(), "stopped accepting; closing connections");
    state.shutdown.cancel();
    state.tracker.close();
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, state.tracker.wait()).await;
    if finished.is_err() {
        tracing::warn!("shutdown grace period over; dropping the remaining connections");
    }
    Ok(())
}

impl AppState {
    pub fn new(config: Config) -> Self {
        let hub = Hub::new(HubConfig {
            max_room_limit: config.max_room_limit,
            lobby_limit: config.lobby_limit,
            room_expiry: config.room_expiry,
            max_rooms: config.max_rooms,
        });
        let ip_limits = IpLimits {
            connects: PerIp::new(quota(config.connect_burst_per_ip, config.connect_interval_per_ip)),
            open: OpenPerIp::new(config.max_connections_per_ip),
            joins: PerIp::new(quota(config.join_burst_per_ip, config.join_interval_per_ip)),
            room_creation: PerIp::new(quota(config.room_create_burst, config.room_create_interval)),
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
        let backend: Arc<dyn app::api::Backend> = Arc::new(site::Site {
            hub: hub.clone(),
            ip_limits: ip_limits.clone(),
            max_room_limit: config.max_room_limit,
        });
        Self {
            hub,
            ip_limits,
            backend,
            allowed_origins,
            leptos,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            connections: Arc::new(ConnectionSlots::new(config.max_connections)),
            next_conn_id: Arc::new(AtomicU64::new(1)),
            config: Arc::new(config),
        }
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
    Router::new()
        .route("/", get(pages::home))
        .route("/r/{slug}", get(pages::room))
        .route(WS_PATH, get(ws::upgrade))
        .route("/api/{*function}", get(server_function).post(server_function))
        .route("/healthz", get(health))
        .nest_service("/pkg", assets)
        .fallback(pages::not_found)
        .with_state(state)
}

/// The app's server functions (`app::api`), with the hub behind them.
async fn server_function(State(state): State<AppState>, request: Request<Body>) -> impl IntoResponse {
    let backend = state.backend.clone();
    leptos_axum::handle_server_fns_with_context(move || provide_context(backend.clone()), request).await
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "rooms": state.hub.room_count(),
        "connections": state.connections.open(),
    }))
}

/// Background upkeep: directory updates, room expiry, forgetting idle rate-limit buckets.
async fn maintain(state: AppState) {
    let mut directory = tokio::time::interval(DIRECTORY_TICK);
    let sweep_every = (state.config.room_expiry / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut sweep = tokio::time::interval(sweep_every);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            _ = directory.tick() => state.hub.flush_directory(),
            _ = sweep.tick() => {
                state.hub.expire_rooms(std::time::Instant::now());
                state.ip_limits.connects.forget_idle();
                state.ip_limits.joins.forget_idle();
                state.ip_limits.room_creation.forget_idle();
            }
        }
    }
}
