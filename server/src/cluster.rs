//! Cluster mode (`BURNER_REDIS_URL`): several Burner processes behind one load balancer, with
//! Redis between them. This file holds the node's link to Redis and the control bus: what one
//! node's moderators decide and every node must enforce at once — bans and their lifting, and
//! moderator sessions (signed in through one node, signed in on all).
//!
//! Every Redis call has a short deadline ([`CALL_TIMEOUT`]): with Redis dead or hung, a call
//! fails fast, `/healthz` says why, and the chat goes on. The listener ([`listen`]) keeps one
//! subscription to the control channel; it proves the subscription still delivers by sending
//! itself a probe every second (a subscription can go silent without an error, for example
//! after a failover), and starts it again when a probe does not come back. Whatever was said on
//! the bus while a node was away is lost, so each (re)subscription first reads the state anew:
//! the bans from the shared store (Postgres), the moderator sessions from Redis, and the rooms.
//! The rooms themselves — Redis decides, every node applies — are `rooms`.

mod control;
mod interest;
mod rooms;

pub use control::Control;
pub use rooms::{Decision, Opened, Rooms, SharedConnection, SharedRate};

use crate::{conn_log::now_ms, hub::Hub, moderation::Moderation};
use futures_util::StreamExt;
use redis::{AsyncCommands, aio::ConnectionManager};
use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// The longest any one Redis call may take before it counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the listener sends itself a probe over the control channel ...
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// ... and how long without one coming back before the subscription is started again.
const PROBE_SILENCE: Duration = Duration::from_secs(3);
/// The longest wait between two tries to reach Redis again.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The control channel every node subscribes to.
const CONTROL_CHANNEL: &str = "burner:control";
/// Moderator sessions: session id → when it expires (ms since the epoch).
const SESSIONS_KEY: &str = "burner:mod_sessions";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {} ms", CALL_TIMEOUT.as_millis())]
    Timeout,
}

pub struct Cluster {
    /// This node's name (`BURNER_NODE_ID`, or made up at start).
    pub node: Arc<str>,
    client: redis::Client,
    commands: ConnectionManager,
    /// Why the node is degraded, if it is.
    trouble: Mutex<Option<String>>,
}

impl Cluster {
    /// Connects to Redis. A node does not start without it: a node that cannot reach the others
    /// is not part of the cluster.
    pub async fn connect(url: &str, node: Option<String>) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("BURNER_REDIS_URL is not a Redis URL")?;
        let commands = timeout(CALL_TIMEOUT * 4, ConnectionManager::new(client.clone()))
            .await
            .map_err(|_| ClusterError::Timeout)
            .and_then(|connected| connected.map_err(ClusterError::from))
            .context("cannot reach Redis (BURNER_REDIS_URL)")?;
        let node = node.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| hex::encode(rand::random::<[u8; 4]>()));
        Ok(Self { node: node.into(), client, commands, trouble: Mutex::new(None) })
    }

    /// Why this node is degraded (Redis unreachable, hung, or its subscription silent); `None`
    /// when all is well.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_trouble(&self, trouble: Option<String>) {
        let mut current = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        if *current != trouble {
            match &trouble {
                Some(reason) => tracing::warn!(node = %self.node, %reason, "cluster: degraded"),
                None => tracing::info!(node = %self.node, "cluster: Redis is back"),
            }
            *current = trouble;
        }
    }

    /// Runs one Redis call with the deadline every call has; a failure marks the node degraded.
    async fn call<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, ClusterError> {
        let result = match timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => ClusterError::from(error),
            Err(_) => ClusterError::Timeout,
        };
        self.set_trouble(Some(result.to_string()));
        Err(result)
    }

    /// Takes or keeps the lease `key` for `holder` for `ttl`: true while `holder` has it. A
    /// lease nobody renews lapses, and the next node to ask takes it.
    pub async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, ClusterError> {
        let script = redis::Script::new(
            "local held = redis.call('GET', KEYS[1])
             if held == false or held == ARGV[1] then
               redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
               return 1
             end
             return 0",
        );
        let mut redis = self.commands.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = script.key(key);
        invocation.arg(holder).arg(ttl_ms);
        self.call(invocation.invoke_async::<i64>(&mut redis)).await.map(|held| held == 1)
    }

    /// Gives the lease `key` back if `holder` has it (a clean stop: the next node need not wait
    /// for it to lapse).
    pub async fn release(&self, key: &str, holder: &str) {
        let script = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let mut redis = self.commands.clone();
        let mut invocation = script.key(key);
        invocation.arg(holder);
        let _ = self.call(invocation.invoke_async::<i64>(&mut redis)).await;
    }

    /// A value every node may read for `ttl` (a node's report to the others).
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), ClusterError> {
        let mut redis = self.commands.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.call(redis.pset_ex::<_, _, ()>(key, value, ttl_ms)).await
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, ClusterError> {
        let mut redis = self.commands.clone();
        self.call(redis.get::<_, Option<String>>(key)).await
    }

    /// Tells every node, this one included.
    pub async fn publish(&self, control: &Control) -> Result<(), ClusterError> {
        let mut redis = self.commands.clone();
        self.call(redis.publish::<_, _, ()>(CONTROL_CHANNEL, control.encode())).await
    }

    /// Tells every node, logging (not returning) a failure: for decisions that stand on this
    /// node and in the store whatever Redis says; the others read them again when they
    /// resubscribe, or at the next periodic reload.
    pub async fn announce(&self, control: Control) {
        if let Err(error) = self.publish(&control).await {
            tracing::error!(%error, "cluster: cannot tell the other nodes; they catch up from the store");
        }
    }

    /// Keeps a moderator session where every node can find it, and tells them.
    pub async fn session_opened(&self, id: &str, expires_at: i64) {
        let mut redis = self.commands.clone();
        if let Err(error) = self.call(redis.hset::<_, _, _, ()>(SESSIONS_KEY, id, expires_at)).await {
            tracing::error!(%error, "cluster: cannot share a moderator session");
        }
        self.announce(Control::SessionOpened { id: id.to_owned(), expires_at }).await;
    }

    pub async fn session_closed(&self, id: &str) {
        let mut redis = self.commands.clone();
        if let Err(error) = self.call(redis.hdel::<_, _, ()>(SESSIONS_KEY, id)).await {
            tracing::error!(%error, "cluster: cannot end a shared moderator session");
        }
        self.announce(Control::SessionClosed { id: id.to_owned() }).await;
    }

    /// Every moderator session still alive, as Redis keeps them (expired ones are removed).
    async fn sessions(&self) -> Result<Vec<(String, i64)>, ClusterError> {
        let mut redis = self.commands.clone();
        let all: Vec<(String, i64)> = self.call(redis.hgetall(SESSIONS_KEY)).await?;
        let now = now_ms();
        let (alive, expired): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, until)| *until > now);
        if !expired.is_empty() {
            let ids: Vec<&str> = expired.iter().map(|(id, _)| id.as_str()).collect();
            self.call(redis.hdel::<_, _, ()>(SESSIONS_KEY, ids)).await?;
        }
        Ok(alive)
    }

    /// Reads anew what the bus would have said while this node was not listening.
    /// Each part is tried even if another fails (Postgres down must not keep the rooms stale).
    async fn catch_up(&self, moderation: &Moderation, hub: &Hub) -> Result<(), ClusterError> {
        // The store (Postgres) failing does not keep the node off the bus: the periodic ban
        // reload (`maintain`) makes up for it once the store answers again.
        if let Err(error) = moderation.reload_bans().await {
            tracing::error!(%error, "cluster: cannot read the bans again after reconnecting; the periodic reload will");
        }
        for (id, expires_at) in self.sessions().await? {
            moderation.auth.admit(&id, expires_at);
        }
        // Rooms last: a banned member is closed as banned, not asked to rejoin.
        match hub.cluster() {
            Some(rooms) => rooms.resync(hub).await,
            None => Ok(()),
        }
    }
}

/// A name for a room's incarnation in Redis (see `crate::broker::Position`).
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// This node's heartbeat, for the life of the node, and beside it (on its own timer, so a slow
/// sweep never lets this node's own heartbeat lapse) the sweep of dead nodes' members.
pub async fn keep_alive(hub: Arc<Hub>, stop: CancellationToken) {
    let Some(rooms) = hub.cluster().cloned() else { return };
    let sweeper = {
        let (rooms, hub, stop) = (rooms.clone(), hub.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(rooms::SWEEP_EVERY);
            let mut sweeps = 0_u64;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = sweep.tick() => {
                        sweeps += 1;
                        if let Err(error) = rooms.sweep(&hub).await {
                            tracing::debug!(%error, "cluster: sweep of dead nodes' members put off");
                        }
                        if let Err(error) = rooms.tend_connections(sweeps).await {
                            tracing::debug!(%error, "cluster: sweep of dead nodes' connection counts put off");
                        }
                    }
                }
            }
        })
    };
    let mut beat = tokio::time::interval(rooms::HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = beat.tick() => {
                if let Err(error) = rooms.heartbeat().await {
                    tracing::debug!(%error, "cluster: heartbeat missed");
                }
            }
        }
    }
    let _ = sweeper.await;
}

/// The control bus listener, for the life of the node: subscribe, catch up, apply what arrives,
/// probe; on any trouble, back off briefly and start again.
/// `ready` is told once the first subscription is up: a node serves only then, so no event of
/// its first joins can be published before it listens.
pub async fn listen(
    cluster: Arc<Cluster>,
    moderation: Arc<Moderation>,
    hub: Arc<Hub>,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    // Joiners' requests to warm a room outlive any one subscription: one not answered in time
    // is refused as unavailable.
    let mut warm_requests = hub.cluster().and_then(|rooms| rooms.interest.take_inbox());
    let mut backoff = Duration::from_millis(50);
    while !stop.is_cancelled() {
        match subscribed(&cluster, &moderation, &hub).await {
            Ok(pubsub) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                backoff = Duration::from_millis(50);
                let reason = deliver(&cluster, &moderation, &hub, pubsub, warm_requests.as_mut(), &stop).await;
                if stop.is_cancelled() {
                    return;
                }
                cluster.set_trouble(Some(reason));
            }
            Err(reason) => cluster.set_trouble(Some(reason)),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A fresh subscription to the control channel, once the node has caught up with the state.
async fn subscribed(cluster: &Cluster, moderation: &Moderation, hub: &Hub) -> Result<redis::aio::PubSub, String> {
    let subscribe = async {
        let mut pubsub = cluster.client.get_async_pubsub().await?;
        let mut channels = vec![CONTROL_CHANNEL.to_owned()];
        channels.extend(hub.cluster().map(|rooms| rooms.channels()).unwrap_or_default());
        pubsub.subscribe(channels).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = match timeout(CALL_TIMEOUT * 2, subscribe).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(error)) => return Err(format!("cannot subscribe to Redis: {error}")),
        Err(_) => return Err("Redis does not answer".to_owned()),
    };
    // Subscribed first, then caught up: nothing said in between can be missed. What Redis
    // could not give (it failed again) is tried again with a new subscription.
    cluster.catch_up(moderation, hub).await.map_err(|error| format!("cannot catch up with Redis: {error}"))?;
    Ok(pubsub)
}

/// The next joiner's request to warm a room (never, for a node without rooms).
async fn next_warm(requests: &mut Option<&mut WarmRequests>) -> Option<interest::Warm> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

type WarmRequests = tokio::sync::mpsc::UnboundedReceiver<interest::Warm>;

/// Applies what arrives on the bus until the subscription ends or goes silent; why it stopped.
/// Between two messages, it warms the rooms joiners ask for and cools the ones nobody here
/// needs (see `interest`): the subscription and the order of events are this task's alone.
async fn deliver(
    cluster: &Arc<Cluster>,
    moderation: &Moderation,
    hub: &Hub,
    pubsub: redis::aio::PubSub,
    mut warm_requests: Option<&mut WarmRequests>,
    stop: &CancellationToken,
) -> String {
    let (mut sink, mut messages) = pubsub.split();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    let mut sent = 0u64;
    let mut last_back = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return "stopping".to_owned(),
            message = messages.next() => {
                let Some(message) = message else { return "the Redis subscription closed".to_owned() };
                let payload = message.get_payload_bytes();
                if rooms::is_room_channel(message.get_channel_name()) {
                    if let Some(rooms) = hub.cluster() {
                        rooms.apply(hub, payload);
                    }
                    continue;
                }
                match Control::decode(payload) {
                    Some(Control::Probe { node, .. }) if *node == *cluster.node => {
                        last_back = Instant::now();
                        cluster.set_trouble(None);
                    }
                    Some(control) => control.apply(moderation),
                    None => tracing::warn!(bytes = payload.len(), "cluster: unreadable control message ignored"),
                }
            }
            Some(request) = next_warm(&mut warm_requests) => {
                let Some(rooms) = hub.cluster() else { continue };
                // A joiner that gave up waiting is not worth a subscription.
                if !request.done.is_closed() {
                    let warm = rooms.warm_up(hub, &mut sink, request.slug.clone()).await;
                    let _ = request.done.send(warm);
                    if !warm {
                        rooms.forget(&mut sink, &request.slug).await;
                    }
                }
            }
            _ = probe.tick() => {
                if let Some(rooms) = hub.cluster() {
                    rooms.cool_down(hub, &mut sink).await;
                }
                if last_back.elapsed() > PROBE_SILENCE {
                    return "the Redis subscription went silent (probe not delivered)".to_owned();
                }
                sent += 1;
                // A failed probe marks the node degraded; silence then restarts the subscription.
                // Sent aside: the listener does not wait for Redis's answer between two events.
                let (cluster, probe) = (cluster.clone(), Control::Probe { node: cluster.node.to_string(), n: sent });
                tokio::spawn(async move { cluster.publish(&probe).await });
            }
        }
    }
}
