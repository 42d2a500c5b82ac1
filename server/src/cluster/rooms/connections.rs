//! Each address's open connections, counted across the cluster: an address cannot open its cap
//! of sockets on every node, nor multiply its connect rate by spreading them over nodes.
//!
//! Redis keeps, per address (its keyed hash), how many connections each node holds
//! (`burner:conns:<hash>`: owner → count), and per node the addresses it counted
//! (`burner:owner_conns:<owner>`), so a dead node's counts can be taken back by the sweep, like its
//! members' places. A node also remembers what it counted, and writes it again whenever it
//! catches up (Redis restarted empty), soon after a count or a give-back whose outcome it could
//! not learn (Redis slow or away), and every [`RECOUNT_EVERY`] sweeps anyway: the counts heal by
//! themselves. When Redis cannot answer at upgrade, the node's own cap still holds.

use super::{Rooms, SharedRate, node_key};
use crate::cluster::ClusterError;
use redis::{AsyncCommands, Script};
use std::{
    collections::HashMap,
    sync::{
        Arc, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// Sweeps between two recounts of this node's connections when nothing went wrong.
const RECOUNT_EVERY: u64 = 15;

/// Every owner (`<node>.<suffix>`) that has counted connections, for the sweep to find.
const OWNERS_KEY: &str = "burner:owners";

fn conns_key(address: &str) -> String {
    format!("burner:conns:{address}")
}

fn owner_conns_key(owner: &str) -> String {
    format!("burner:owner_conns:{owner}")
}

/// What the cluster said about one more connection of an address.
pub enum Opened {
    /// Counted; given back when dropped.
    Counted(SharedConnection),
    /// The address has its cap of connections open across the nodes.
    TooMany,
    /// The address connects too fast across the nodes: wait this long.
    Wait(Duration),
    /// Redis did not answer: the node's own limits decide alone.
    Unknown,
}

/// One connection of an address, counted in Redis; its count goes back down when dropped.
pub struct SharedConnection {
    rooms: Arc<Rooms>,
    address: String,
}

impl Drop for SharedConnection {
    fn drop(&mut self) {
        let (rooms, address) = (self.rooms.clone(), std::mem::take(&mut self.address));
        {
            let mut counted = rooms.counted.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = counted.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    counted.remove(&address);
                }
            }
        }
        // A socket's end never waits for Redis; a failure is healed at the next recount.
        tokio::spawn(async move {
            let mut redis = rooms.cluster.commands.clone();
            let mut invocation = rooms.connections.close.prepare_invoke();
            invocation.key(conns_key(&address)).key(owner_conns_key(rooms.node())).arg(rooms.node());
            if rooms.cluster.call(invocation.invoke_async::<()>(&mut redis)).await.is_err() {
                rooms.connections.recount_due.store(true, Ordering::Relaxed);
            }
        });
    }
}

/// The scripts, and whether Redis's counts may differ from this node's.
pub(super) struct Connections {
    open: Script,
    close: Script,
    forget: Script,
    recount: Script,
    recount_due: AtomicBool,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            open: Script::new(OPEN),
            close: Script::new(CLOSE),
            forget: Script::new(FORGET),
            recount: Script::new(RECOUNT),
            recount_due: AtomicBool::new(false),
        }
    }
}

impl Rooms {
    /// Counts one more connection of the address `rate.key` across the cluster, against `max`
    /// open at once and the connect rate `rate`.
    pub async fn open_connection(self: &Arc<Self>, rate: &SharedRate, max: u32) -> Opened {
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.connections.open.prepare_invoke();
        invocation
            .key(conns_key(&rate.key))
            .key(format!("burner:rate:connect:{}", rate.key))
            .key(owner_conns_key(self.node()))
            .key(OWNERS_KEY)
            .arg(self.node())
            .arg(max)
            .arg(rate.interval_ms())
            .arg(rate.burst);
        let answer: Result<Vec<String>, ClusterError> = self.cluster.call(invocation.invoke_async(&mut redis)).await;
        match answer.as_deref().map(|a| (a.first().map(String::as_str), a.get(1))) {
            Ok((Some("ok"), _)) => {
                *self.counted.lock().unwrap_or_else(PoisonError::into_inner).entry(rate.key.clone()).or_default() += 1;
                Opened::Counted(SharedConnection { rooms: self.clone(), address: rate.key.clone() })
            }
            Ok((Some("full"), _)) => Opened::TooMany,
            Ok((Some("rate"), Some(wait))) => Opened::Wait(Duration::from_millis(wait.parse().unwrap_or(1_000))),
            _ => {
                // Perhaps counted after all (an answer too late): the next recount settles it.
                self.connections.recount_due.store(true, Ordering::Relaxed);
                Opened::Unknown
            }
        }
    }

    /// Writes this node's counts again, as it knows them.
    async fn recount_connections(&self) -> Result<(), ClusterError> {
        let counted: HashMap<String, u32> = self.counted.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut redis = self.cluster.commands.clone();
        let mut invocation = self.connections.recount.prepare_invoke();
        invocation.key(owner_conns_key(self.node())).key(OWNERS_KEY).arg(self.node());
        for (address, count) in &counted {
            invocation.arg(conns_key(address)).arg(count);
        }
        self.cluster.call(invocation.invoke_async::<()>(&mut redis)).await
    }

    /// The sweep's part for connections (its `sweeps`th): dead owners' counts taken back, and
    /// this node's written again if they may be wrong, or it is time to anyway.
    pub(crate) async fn tend_connections(&self, sweeps: u64) -> Result<(), ClusterError> {
        self.sweep_connections().await?;
        let due = self.connections.recount_due.swap(false, Ordering::Relaxed) || sweeps.is_multiple_of(RECOUNT_EVERY);
        if due && let Err(error) = self.recount_connections().await {
            self.connections.recount_due.store(true, Ordering::Relaxed);
            return Err(error);
        }
        Ok(())
    }

    /// After catching up: this node's counts as it knows them (Redis may have lost them).
    pub(super) async fn recount_after_catching_up(&self) {
        if let Err(error) = self.recount_connections().await {
            tracing::warn!(%error, "cluster: connection counts not written again yet; the sweep will");
            self.connections.recount_due.store(true, Ordering::Relaxed);
        }
    }

    /// Takes back the connections counted by owners whose heartbeat lapsed.
    async fn sweep_connections(&self) -> Result<(), ClusterError> {
        let mut redis = self.cluster.commands.clone();
        let owners: Vec<String> = self.cluster.call(redis.smembers(OWNERS_KEY)).await?;
        for owner in owners.iter().filter(|owner| **owner != *self.me) {
            let alive: bool = self.cluster.call(redis.exists(node_key(owner))).await?;
            if !alive {
                let mut invocation = self.connections.forget.prepare_invoke();
                invocation.key(owner_conns_key(owner)).key(OWNERS_KEY).arg(owner);
                self.cluster.call(invocation.invoke_async::<()>(&mut redis)).await?;
                tracing::info!(owner, "cluster: a dead node's connection counts taken back");
            }
        }
        Ok(())
    }
}

/// KEYS: the address's open connections (owner → count), its connect rate, the owner's
/// addresses, every owner. ARGV: owner, max open, rate interval, rate burst.
const OPEN: &str = concat!(
    rate_lua!(),
    r#"
local wait = rate(KEYS[2], now_ms(), tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait > 0 then return {'rate', string.format('%d', wait)} end
local open = 0
for _, n in ipairs(redis.call('HVALS', KEYS[1])) do open = open + tonumber(n) end
if open >= tonumber(ARGV[2]) then return {'full'} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[3], KEYS[1])
redis.call('SADD', KEYS[4], ARGV[1])
return {'ok'}
"#
);

/// KEYS: the address's open connections, the owner's addresses. ARGV: owner.
const CLOSE: &str = r#"
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], KEYS[1])
end
"#;

/// KEYS: the owner's addresses, every owner. ARGV: owner. Takes back all its counts.
const FORGET: &str = r#"
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('HDEL', key, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
"#;

/// KEYS: the owner's addresses, every owner. ARGV: owner, then pairs of (address key, count):
/// the owner's counts, replaced by these.
const RECOUNT: &str = r#"
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('HDEL', key, ARGV[1]) end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', ARGV[i], ARGV[1], ARGV[i + 1])
  redis.call('SADD', KEYS[1], ARGV[i])
end
if #ARGV > 1 then redis.call('SADD', KEYS[2], ARGV[1]) end
"#;
