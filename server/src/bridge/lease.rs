//! Several nodes, one bridge: the node holding the Redis lease `burner:discord:lease` runs the
//! gateway, the outbox worker and the rooms' places; the others stand by and keep the links in
//! memory for their room pages. Every node reads the links again at each renewal. A holder renews every 2 s for 10 s; a node that dies (or loses
//! Redis) lets it lapse and another takes over within about 10 s. Its places leave their
//! rooms when its connections go (as any node's members do), the new holder's places rejoin
//! from the stored cursors, the gateway resumes the stored session, and the outbox is in the
//! shared store: so each message crosses once whichever node carries it.

use super::Bridge;
use crate::cluster::Cluster;
use std::{sync::Arc, time::Duration};

const LEASE_KEY: &str = "burner:discord:lease";
const LEASE_TTL: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(2);

pub async fn hold(bridge: Arc<Bridge>, cluster: Arc<Cluster>) {
    // Unique per start: a restarted node must not think it still holds its old lease.
    let holder = format!("{}.{:08x}", cluster.node, rand::random::<u32>());
    let mut holding = false;
    loop {
        let held = match cluster.lease(LEASE_KEY, &holder, LEASE_TTL).await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(%error, "discord: cannot renew the bridge lease");
                false
            }
        };
        if held && !holding {
            tracing::info!(node = %cluster.node, "discord: this node runs the bridge");
            bridge.activate();
        } else if !held && holding {
            tracing::info!(node = %cluster.node, "discord: another node runs the bridge");
            bridge.deactivate();
        } else if !held {
            bridge.set_health(|h| {
                if h.state == "starting" {
                    h.state = "standby";
                }
            });
        }
        holding = held;
        // A link made on another node starts here within one renewal.
        bridge.reload().await;
        tokio::select! {
            () = bridge.shutdown.cancelled() => return,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
}
