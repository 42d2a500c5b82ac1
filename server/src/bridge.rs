//! The Discord bridge: a Burner room and a Discord channel as one conversation, both ways.
//!
//! Off unless `BURNER_DISCORD_TOKEN` is set. A moderator links a room to a channel in the
//! console; the link is stored (`store::discord`), audited, and shown on the room page.
//!
//! - **A place in the room** (`place`): the bridge joins each linked room as a member named
//!   "Discord", through the same hub (or cluster) as a browser, and reads the same frames. So
//!   the room's rules decide what crosses: a one-way room still shows Discord every message (the
//!   bridge is never their author), a shadow-muted member's messages never reach the bridge, and
//!   a member who deleted nothing can delete nothing. What arrives is queued in the store's
//!   outbox, with the room's position as the cursor a restarted bridge rejoins from.
//! - **Toward Discord** (`outbound`): one worker drains the outbox in order, within Discord's
//!   rate limits (`rest`), as embeds that ping nobody (`text::neutralise`, `allowed_mentions`
//!   empty), each with a nonce Discord deduplicates a resend by.
//! - **From Discord** (`gateway`): twilight's gateway shard, resumed across restarts; each
//!   message of a linked channel goes to that room's place, which posts it through the posting
//!   policy as its Discord author (its own rate bucket per Discord user) and records the pair of
//!   ids, which also makes a replayed event a no-op.
//! - **Faults**: a 401 (or gateway close 4004 / 4014) stops the bridge; a 403 stops one link;
//!   `/healthz` and the console say which and why. Nothing the bridge does is on a browser's
//!   path: an outage of any length only grows the (bounded) outbox.
//! - **Several nodes**: one node at a time runs the bridge, the holder of a Redis lease
//!   (`lease`); the others only read the links, for their room pages.

mod console;
mod gateway;
mod lease;
mod outbound;
mod place;
pub mod rest;
pub mod text;

use crate::{
    config::Config,
    hub::Hub,
    moderation::Moderation,
    policy::Policy,
    store::{DiscordLink, Store},
};
use rest::Rest;
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::{Notify, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How often the links are read again from the store (another node may have changed them).
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Why the bridge stops when Discord answers 401.
const TOKEN_REFUSED: &str = "Discord refused the bot token (401): set a valid BURNER_DISCORD_TOKEN";

/// The running bridge: shared by its tasks, the console's actions and the room pages.
pub struct Bridge {
    rest: Rest,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    policy: Arc<Policy>,
    moderation: Arc<Moderation>,
    config: Arc<Config>,
    next_conn_id: Arc<AtomicU64>,
    tracker: TaskTracker,
    /// Cancelled when Burner shuts down.
    shutdown: CancellationToken,
    links: Mutex<HashMap<String, Linked>>,
    /// Muted Discord authors, by room: (author id, name).
    mutes: Mutex<HashMap<String, Vec<(u64, String)>>>,
    health: Mutex<Health>,
    /// The outbox has new work.
    queued: Notify,
    /// The bot's own Discord user id (from the gateway's READY or `users/@me`): its own posts
    /// coming back through the gateway are never bridged again.
    bot_id: AtomicU64,
    /// Running here (always in one process; while holding the lease in a cluster).
    active: Mutex<Option<CancellationToken>>,
    /// What the node running the bridge last said, when it is another node.
    remote: Mutex<Option<lease::Report>>,
    watermark: Watermark,
}

/// Gateway events handed to places and not handled yet, by sequence number: the session is
/// kept only up to the first of them, so a restart (or the next lease holder) has Discord replay
/// whatever was still waiting, and the recorded Discord ids make the rest of the replay a no-op.
#[derive(Default)]
struct Watermark(Mutex<BTreeMap<u64, u32>>);

impl Watermark {
    fn handed(&self, seq: u64) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner).entry(seq).or_default() += 1;
    }

    fn handled(&self, seq: u64) {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = pending.get_mut(&seq) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&seq);
            }
        }
    }

    /// The sequence number the session may be kept at, the gateway being at `latest`.
    fn safe(&self, latest: u64) -> u64 {
        let pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.keys().next().map_or(latest, |first| first.saturating_sub(1).min(latest))
    }
}

/// A link as this node runs it.
struct Linked {
    link: DiscordLink,
    /// Messages from the channel for the room's place, when it runs here.
    inbox: Option<mpsc::Sender<place::Inbound>>,
    /// Why the link does not work (a 403 in its channel, the room gone), if it does not.
    problem: Option<String>,
    stop: CancellationToken,
}

/// Where the bridge stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    #[default]
    Starting,
    Connected,
    Reconnecting,
    /// Another node runs it (cluster mode).
    Standby,
    /// A rejected token or intent: nothing more is tried until Burner restarts.
    Stopped,
}

/// What `/healthz` and the console say of the bridge.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    pub state: State,
    /// Why it stopped, or what goes wrong now.
    pub error: Option<String>,
    pub sent: u64,
    pub received: u64,
    /// Messages refused on the way in (the posting policy) or given up on the way out.
    pub refused: u64,
    /// Jobs dropped because the outbox was full (Discord away for long).
    pub dropped: u64,
    /// Refused requests in Discord's 10-minute window.
    pub invalid_requests: usize,
    /// Seconds until Discord takes requests again (a global 429).
    pub rate_limited_secs: Option<f64>,
    /// In a cluster, the node that runs the bridge (when it is another one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_node: Option<String>,
}

impl Bridge {
    /// The bridge, when a token is configured; its tasks are started by [`Bridge::start`].
    pub fn new(state: &crate::state::AppState) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(token) = state.config.discord_token.clone().filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        // rustls needs one crypto provider for the whole process (twilight's gateway and the
        // REST client both use it); a second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rest = Rest::new(&state.config.discord_api_url, &token, state.shutdown.clone())?;
        Ok(Some(Arc::new(Self {
            rest,
            store: state.moderation.store.clone(),
            hub: state.hub.clone(),
            policy: state.policy.clone(),
            moderation: state.moderation.clone(),
            config: state.config.clone(),
            next_conn_id: state.next_conn_id.clone(),
            tracker: state.tracker.clone(),
            shutdown: state.shutdown.clone(),
            links: Mutex::default(),
            mutes: Mutex::default(),
            health: Mutex::new(Health::default()),
            queued: Notify::new(),
            bot_id: AtomicU64::new(0),
            active: Mutex::default(),
            remote: Mutex::default(),
            watermark: Watermark::default(),
        })))
    }

    /// Starts the bridge's upkeep: here at once in one process; in a cluster, whenever this
    /// node holds the lease.
    pub fn start(self: &Arc<Self>) {
        let bridge = self.clone();
        self.tracker.spawn(async move {
            match bridge.moderation.cluster.clone() {
                Some(cluster) => {
                    // The links are read on their own beat: a slow store never delays a renewal.
                    let links = bridge.clone();
                    bridge.tracker.spawn(async move { links.keep_links().await });
                    lease::hold(bridge, cluster).await;
                }
                None => {
                    bridge.activate().await;
                    bridge.keep_links().await;
                }
            }
        });
    }

    /// Runs the bridge's workers on this node until `deactivate` or shutdown. The links and
    /// their places come first: a resumed gateway replays at once what was said meanwhile, and
    /// an event for a link not read yet would have no place to go (the outbox worker, likewise,
    /// would find no room to drain).
    async fn activate(self: &Arc<Self>) {
        let stop = self.shutdown.child_token();
        *self.active.lock().unwrap_or_else(PoisonError::into_inner) = Some(stop.clone());
        self.set_health(|h| {
            h.state = State::Starting;
            h.error = None;
        });
        self.reload().await;
        self.tracker.spawn(outbound::run(self.clone(), stop.clone()));
        self.tracker.spawn(gateway::run(self.clone(), stop));
    }

    /// Stops this node's workers and places (the lease went elsewhere).
    fn deactivate(&self) {
        if let Some(stop) = self.active.lock().unwrap_or_else(PoisonError::into_inner).take() {
            stop.cancel();
        }
        for linked in self.lock_links().values_mut() {
            linked.stop.cancel();
            linked.inbox = None;
        }
        self.set_health(|h| h.state = State::Standby);
    }

    fn is_active(&self) -> bool {
        self.active.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|stop| !stop.is_cancelled())
    }

    /// Reads the links now and then, and runs a place for each while active.
    async fn keep_links(self: &Arc<Self>) {
        loop {
            self.reload().await;
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(RELOAD_EVERY) => {}
            }
        }
    }

    /// Brings the links and mutes in memory (and this node's places) in line with the store.
    async fn reload(self: &Arc<Self>) {
        match self.store.discord_mutes().await {
            Ok(stored) => {
                let mut mutes: HashMap<String, Vec<(u64, String)>> = HashMap::new();
                for (room, author, name) in stored {
                    mutes.entry(room).or_default().push((author, name));
                }
                *self.mutes.lock().unwrap_or_else(PoisonError::into_inner) = mutes;
            }
            Err(error) => tracing::warn!(%error, "discord: cannot read the muted authors"),
        }
        let stored = match self.store.discord_links().await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "discord: cannot read the links");
                return;
            }
        };
        let active = self.is_active();
        let mut links = self.lock_links();
        links.retain(|room, linked| {
            // The same link (a link made again is new: its problem and place start afresh).
            let keep = stored.iter().any(|l| {
                l.room == *room && l.channel_id == linked.link.channel_id && l.created_at == linked.link.created_at
            });
            if !keep {
                linked.stop.cancel();
            }
            keep
        });
        for link in stored {
            let linked = links.entry(link.room.clone()).or_insert_with(|| Linked {
                link: link.clone(),
                inbox: None,
                problem: None,
                stop: CancellationToken::new(),
            });
            linked.link.channel_name.clone_from(&link.channel_name);
            linked.link.joins = link.joins;
            let running = linked.inbox.as_ref().is_some_and(|inbox| !inbox.is_closed());
            if active && !running && linked.problem.is_none() {
                let (inbox, receiver) = mpsc::channel(place::INBOX);
                linked.stop = self.shutdown.child_token();
                linked.inbox = Some(inbox);
                self.tracker.spawn(place::run(self.clone(), link, receiver, linked.stop.clone()));
            }
        }
    }

    fn lock_links(&self) -> MutexGuard<'_, HashMap<String, Linked>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_health(&self, change: impl FnOnce(&mut Health)) {
        change(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The bridge stops for good (until restarted): a rejected token or intent.
    fn fail(&self, why: String) {
        tracing::error!(why, "discord: the bridge stops");
        self.set_health(|h| {
            h.state = State::Stopped;
            h.error = Some(why);
        });
        if let Some(stop) = self.active.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            stop.cancel();
        }
        for linked in self.lock_links().values() {
            linked.stop.cancel();
        }
    }

    fn stopped(&self) -> bool {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).state == State::Stopped
    }

    /// One link stops working (its room stays as it is): the console says why.
    fn link_failed(&self, room: &str, why: String) {
        tracing::warn!(room, why, "discord: a link stops");
        if let Some(linked) = self.lock_links().get_mut(room) {
            linked.problem = Some(why);
            linked.stop.cancel();
            linked.inbox = None;
        }
    }

    /// The links that work now: (room, channel).
    fn working_links(&self) -> Vec<(String, u64)> {
        let links = self.lock_links();
        links.values().filter(|l| l.problem.is_none()).map(|l| (l.link.room.clone(), l.link.channel_id)).collect()
    }

    /// Whose place a message from `channel` goes to.
    fn inbox_for(&self, channel: u64) -> Option<mpsc::Sender<place::Inbound>> {
        self.lock_links().values().find(|l| l.link.channel_id == channel).and_then(|l| l.inbox.clone())
    }

    pub fn health(&self) -> Health {
        if !self.is_active()
            && let Some(remote) = self.remote.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
        {
            // Standing by: the running node's account, as it left it in Redis.
            let mut health = remote.health.clone();
            health.active_node = Some(remote.node.clone());
            return health;
        }
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner).clone();
        health.invalid_requests = self.rest.invalid_requests();
        health.rate_limited_secs = self.rest.global_wait().map(|d| d.as_secs_f64());
        health
    }

    /// Why each link that does not work does not (for the other nodes).
    fn problems(&self) -> HashMap<String, String> {
        let links = self.lock_links();
        links.iter().filter_map(|(room, l)| Some((room.clone(), l.problem.clone()?))).collect()
    }

    fn set_remote(&self, report: Option<lease::Report>) {
        *self.remote.lock().unwrap_or_else(PoisonError::into_inner) = report;
    }

    fn is_muted(&self, room: &str, author: u64) -> bool {
        let mutes = self.mutes.lock().unwrap_or_else(PoisonError::into_inner);
        mutes.get(room).is_some_and(|muted| muted.iter().any(|(id, _)| *id == author))
    }

    fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}
