//! What every request handler and socket shares.

use crate::{config::Config, hub::Hub, limits::IpLimits, moderation::Moderation};
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::sync::{Arc, atomic::AtomicU64};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    pub ip_limits: Arc<IpLimits>,
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
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
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

    pub fn open(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }
}
