//! Background upkeep, one task: the directory's batched updates, live consoles, room expiry,
//! forgetting idle rate-limit buckets, and the connection log's retention.

use crate::{conn_log, state::AppState};
use std::time::Duration;

/// How often the room directory's watchers get the batched changes.
const DIRECTORY_TICK: Duration = Duration::from_millis(250);
/// How often open moderator consoles get a fresh picture (when it changed).
const CONSOLE_TICK: Duration = Duration::from_secs(1);
/// In a cluster, how often the bans are read again from the shared store: a ban whose
/// announcement was lost (Redis failed just then) still holds everywhere within this time.
const BAN_RELOAD: Duration = Duration::from_secs(10);

/// Background upkeep: directory updates, live consoles, room expiry, forgetting idle rate-limit
/// buckets, and the connection log's retention.
pub(crate) async fn maintain(state: AppState) {
    let mut directory = tokio::time::interval(DIRECTORY_TICK);
    let mut consoles = tokio::time::interval(CONSOLE_TICK);
    let sweep_every = (state.config.room_expiry / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut sweep = tokio::time::interval(sweep_every);
    let mut retention = tokio::time::interval(state.config.retention_sweep.max(Duration::from_millis(100)));
    let mut bans = tokio::time::interval(BAN_RELOAD);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            _ = directory.tick() => state.hub.flush_directory(),
            _ = consoles.tick() => state.moderation.refresh_consoles(&state.hub).await,
            _ = sweep.tick() => {
                if state.hub.cluster().is_some() {
                    expire_shared_rooms(&state).await;
                } else {
                    for slug in state.hub.expire_rooms(std::time::Instant::now()) {
                        if let Err(error) = state.moderation.store.delete_room(&slug).await {
                            tracing::error!(%error, room = %slug, "cannot forget an expired room");
                        }
                    }
                }
                state.ip_limits.forget_idle();
                state.policy.forget_idle();
            }
            _ = retention.tick() => forget_old_connections(&state).await,
            _ = bans.tick(), if state.moderation.cluster.is_some() => reload_bans(&state).await,
        }
    }
}

/// In a cluster a room expires once, everywhere: whichever node finds it empty first removes it
/// from Redis (only if it is empty on every node), and every node then lets it go.
async fn expire_shared_rooms(state: &AppState) {
    let Some(rooms) = state.hub.cluster() else { return };
    for (slug, name_key) in state.hub.idle_rooms(std::time::Instant::now()) {
        match rooms.remove(&slug, &name_key, "the room expired", false).await {
            Ok(true) => {
                state.hub.remove_replica(&slug, "the room expired");
                if let Err(error) = state.moderation.store.delete_room(&slug).await {
                    tracing::error!(%error, room = %slug, "cannot forget an expired room");
                }
            }
            Ok(false) => {}
            // Redis is failing: the rest waits for the next sweep rather than stall upkeep.
            Err(_) => break,
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

/// The bans in the shared store are the truth; what the control bus said is the fast path.
async fn reload_bans(state: &AppState) {
    if let Err(error) = state.moderation.reload_bans().await {
        tracing::error!(%error, "cannot read the bans again");
    }
}
