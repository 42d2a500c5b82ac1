//! What every request handler and socket shares, and how it is put together at start-up.

use crate::{
    broker::{Broker, MemoryBroker},
    cluster::{Cluster, Rooms},
    config::Config,
    conn_log::{self, ConnLog},
    data_dir,
    hub::{Hub, HubConfig},
    limits::{IpLimits, OpenPerIp, PerIp, quota},
    moderation::{Consoles, Moderation, auth::Auth, bans::Bans, registry::Registry},
    pages::PageCache,
    peer::{IpHasher, TrustedProxies},
    policy::Policy,
    site,
};
use anyhow::Context;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Moderator sign-in tries per address: a burst, then one more every interval.
const SIGN_IN_BURST: u32 = 5;
const SIGN_IN_INTERVAL: Duration = Duration::from_secs(30);

/// What every request handler and socket shares, behind one pointer: axum clones the state for
/// each request (the router, the middleware, each extractor that asks for it), and one count to
/// raise and lower costs less than the ~16 of the parts' own pointers, tokens and the Leptos
/// options' strings (5 % of a connect + join + leave, measured: docs/BENCHMARKS.md, "Churn").
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The server's parts, as [`AppState`] holds them.
pub struct AppParts {
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    pub ip_limits: Arc<IpLimits>,
    /// Admits joins, messages and reports, from every source alike.
    pub policy: Arc<Policy>,
    pub moderation: Arc<Moderation>,
    /// What the app's server functions call (room listing, previews, creation).
    pub backend: Arc<dyn app::api::Backend>,
    /// Normalised (lower-case, no trailing slash) `BURNER_ALLOWED_ORIGINS`.
    pub allowed_origins: Arc<[String]>,
    pub leptos: LeptosOptions,
    /// Cancelled when the server starts shutting down: every socket closes with 1001.
    pub shutdown: CancellationToken,
    /// Cancelled once every socket is closed: the connection log writes what is left, then stops.
    pub log_stop: CancellationToken,
    /// Every socket task, so shutdown can wait for them (axum's graceful shutdown does not
    /// know about upgraded connections).
    pub tracker: TaskTracker,
    pub connections: Arc<ConnectionSlots>,
    pub next_conn_id: Arc<AtomicU64>,
    /// Directory and room pages as last rendered.
    pub pages: Arc<PageCache>,
    /// The same parts again, as each socket keeps them.
    pub sockets: Arc<SocketParts>,
}

/// The parts of the server a socket uses, behind one pointer. A socket's task keeps what it
/// holds for as long as it is open, so each pointer held there costs 8 bytes per member (see
/// `ws::tests::a_sockets_task_stays_within_768_bytes`).
pub struct SocketParts {
    pub hub: Arc<Hub>,
    pub policy: Arc<Policy>,
    pub moderation: Arc<Moderation>,
    pub config: Arc<Config>,
    pub tracker: TaskTracker,
    /// The caps a socket holds a place under for its life: given back when it closes.
    pub connections: Arc<ConnectionSlots>,
    pub open_per_ip: Arc<OpenPerIp>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl AppState {
    /// Opens the data directory (creating it on first start) and everything that lives on it:
    /// the store, the bans in force, the rooms a previous run left; and wires the hub to its
    /// broker (in memory: one process).
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let data = match &config.database_url {
            Some(url) => data_dir::open_shared(url, config.mod_token.as_deref()).await?,
            None => data_dir::open(&config.data_dir, config.mod_token.as_deref()).await?,
        };
        let store = data.store;
        let now = conn_log::now_ms();
        let bans = store.active_bans(now).await.context("cannot read the bans")?;
        let rooms = store.rooms().await.context("cannot read the stored rooms")?;
        let cluster = match &config.redis_url {
            Some(url) => Some(Arc::new(Cluster::connect(url, config.node_id.clone()).await?)),
            None => None,
        };
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
            auth: Auth::new(data.mod_token, config.secure_cookies),
            ban_duration: config.ban_duration,
            ipv6_prefix: config.ipv6_ban_prefix,
            consoles: Consoles::default(),
            cluster: cluster.clone(),
            discord: std::sync::OnceLock::new(),
        };
        let broker: Arc<dyn Broker> = Arc::new(MemoryBroker);
        let hub = Hub::new(
            HubConfig {
                max_room_limit: config.max_room_limit,
                lobby_limit: config.lobby_limit,
                room_expiry: config.room_expiry,
                max_rooms: config.max_rooms,
            },
            broker,
            cluster.as_ref().map(|cluster| Arc::new(Rooms::new(cluster.clone()))),
        );
        hub.restore(rooms);
        let ip_limits = IpLimits {
            connects: PerIp::new(quota(config.connect_burst_per_ip, config.connect_interval_per_ip)),
            open: OpenPerIp::new(config.max_connections_per_ip),
            room_creation: PerIp::new(quota(config.room_create_burst, config.room_create_interval)),
            sign_ins: PerIp::new(quota(SIGN_IN_BURST, SIGN_IN_INTERVAL)),
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
        let policy = Arc::new(Policy::new(&config));
        let connections = Arc::new(ConnectionSlots::new(config.max_connections));
        let config = Arc::new(config);
        let sockets = Arc::new(SocketParts {
            hub: hub.clone(),
            policy: policy.clone(),
            moderation: moderation.clone(),
            config: config.clone(),
            tracker: tracker.clone(),
            connections: connections.clone(),
            open_per_ip: ip_limits.open.clone(),
        });
        Ok(Self(Arc::new(AppParts {
            hub,
            ip_limits,
            policy,
            moderation,
            backend,
            allowed_origins,
            leptos,
            shutdown,
            log_stop,
            tracker,
            connections,
            next_conn_id: Arc::new(AtomicU64::new(1)),
            pages: Arc::new(PageCache::new(config.page_cache_mb << 20)),
            config,
            sockets,
        })))
    }
}

/// The global cap on open WebSocket connections: a slot is held for the life of a socket.
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))), max }
    }

    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Keeps the place `slot` holds as a count, without the guard: given back by [`Self::give_back`].
    pub fn keep(slot: OwnedSemaphorePermit) {
        slot.forget();
    }

    /// Gives back a place kept by [`Self::keep`].
    pub fn give_back(&self) {
        self.slots.add_permits(1);
    }

    pub fn open(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }
}
