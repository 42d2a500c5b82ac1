//! Several nodes, one bridge: the node holding the Redis lease `burner:discord:lease` runs the
//! gateway, the outbox worker and the rooms' places; the others stand by (every node reads the
//! links from the store, for its room pages). A holder renews every 2 s for 10 s, and gives the
//! lease up only when another node has it or it could not renew for 7 s (a Redis blip does not
//! restart everything); a node that dies lets it lapse and another takes over within about 10 s.
//! Its places leave their rooms when its connections go (as any node's members do), the new
//! holder's places rejoin from the stored cursors, the gateway resumes the stored session, and
//! the outbox is in the shared store: so each message crosses once whichever node carries it.
//!
//! The holder also leaves its health and its links' problems in Redis, so every node's
//! `/healthz` and console say what the bridge is doing and why it stopped.

use super::{Bridge, Health, State};
use crate::cluster::Cluster;
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::time::Instant;

const LEASE_KEY: &str = "burner:discord:lease";
const HEALTH_KEY: &str = "burner:discord:health";
const LEASE_TTL: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// A holder that could not renew for this long stops (the lease may lapse soon after).
const GIVE_UP_AFTER: Duration = Duration::from_secs(7);

/// What the holder tells the other nodes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub node: String,
    pub health: Health,
    /// Room → why its link does not work.
    pub problems: HashMap<String, String>,
}

/// Takes, keeps and gives back the lease, for the life of the server.
pub async fn hold(bridge: Arc<Bridge>, cluster: Arc<Cluster>) {
    // Unique per start: a restarted node must not think it still holds its old lease.
    let holder = format!("{}.{:08x}", cluster.node, rand::random::<u32>());
    let mut holding = false;
    let mut renewed = Instant::now();
    loop {
        match cluster.lease(LEASE_KEY, &holder, LEASE_TTL).await {
            Ok(true) => {
                renewed = Instant::now();
                if !holding {
                    tracing::info!(node = %cluster.node, "discord: this node runs the bridge");
                    holding = true;
                    bridge.activate().await;
                }
                let report =
                    Report { node: cluster.node.to_string(), health: bridge.health(), problems: bridge.problems() };
                if let Ok(json) = serde_json::to_string(&report) {
                    let _ = cluster.put(HEALTH_KEY, &json, LEASE_TTL).await;
                }
            }
            Ok(false) => {
                if holding {
                    tracing::info!(node = %cluster.node, "discord: another node runs the bridge");
                    holding = false;
                    bridge.deactivate();
                }
                if let Ok(report) = cluster.get(HEALTH_KEY).await {
                    bridge.set_remote(report.and_then(|json| serde_json::from_str(&json).ok()));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "discord: cannot renew the bridge lease");
                if holding && renewed.elapsed() >= GIVE_UP_AFTER {
                    holding = false;
                    bridge.deactivate();
                }
            }
        }
        if !holding {
            bridge.set_health(|h| {
                if h.state == State::Starting {
                    h.state = State::Standby;
                }
            });
        }
        tokio::select! {
            () = bridge.shutdown.cancelled() => {
                if holding {
                    cluster.release(LEASE_KEY, &holder).await;
                }
                return;
            }
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
}
