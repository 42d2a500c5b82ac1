//! The connection log's writer: events are queued without waiting and written in batches by one
//! background task, so a slow or failing disk never slows the chat. When writes fail, events are
//! kept and retried; the health endpoint says so, and only beyond a large bound are any dropped,
//! and then counted and reported.

use crate::store::{LogEvent, Store};
use std::{
    collections::VecDeque,
    net::IpAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events waiting in the queue before `log` calls start being counted as dropped.
const QUEUE: usize = 65_536;
/// Events waiting beyond which the log is [`ConnLog::behind`]: about a second of visits at the
/// most the writer has kept up with here, far below [`QUEUE`].
const BEHIND: usize = 8_192;
/// Events kept for a retry while the store fails.
const KEPT_WHILE_FAILING: usize = 100_000;
/// Events written in one transaction at most. A busy server's log is written a batch at a time
/// (each a round trip to the database's thread): at 512, the writer kept up with ~5 700 visits
/// a second beside a busy room and no more; at 2 048, with more than 8 000.
pub const BATCH: usize = 2_048;
/// How long the writer lets events gather after the first one before writing (unless a batch's
/// worth arrives sooner): one transaction for the arrivals of a fiftieth of a second instead of
/// one for every few. At 6 000 visits a
/// second (three events each) SQLite's writer thread took a third of the server's CPU writing
/// transactions of a few rows. Longer buys little more and keeps more events alive at once (each
/// holds a few strings, freed among the members' long-lived allocations); a moderator searching
/// the log sees a visit this much later.
const LINGER: Duration = Duration::from_millis(20);

pub struct ConnLog {
    queue: mpsc::Sender<LogEvent>,
    /// Identifies this process's connections in the log (connection numbers restart with it).
    boot: String,
    health: Arc<LogHealth>,
}

/// What the health endpoint reports about the log.
#[derive(Default)]
pub struct LogHealth {
    pub dropped: AtomicU64,
    pub waiting: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl LogHealth {
    pub fn error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether the last write failed (without copying why).
    pub fn failing(&self) -> bool {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }
}

impl ConnLog {
    /// Starts the writer; it stops after writing what is queued once `stop` is cancelled.
    pub fn start(store: Arc<dyn Store>, stop: CancellationToken, tracker: &tokio_util::task::TaskTracker) -> Self {
        Self::lingering(LINGER, store, stop, tracker)
    }

    /// [`ConnLog::start`] with another wait for more events than [`LINGER`] (for tests).
    pub fn lingering(
        linger: Duration,
        store: Arc<dyn Store>,
        stop: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE);
        let health = Arc::new(LogHealth::default());
        tracker.spawn(write(store, inbox, stop, health.clone(), linger));
        Self { queue, boot: format!("{:08x}", rand::random::<u32>()), health }
    }

    pub fn health(&self) -> &LogHealth {
        &self.health
    }

    /// Whether events wait to be written in numbers that say the writer, working, is not keeping
    /// up: the server then takes no new connections until it is (see `serve`). Not while writes
    /// fail: a broken disk must not stop the chat (events are kept, then counted as dropped).
    pub fn behind(&self) -> bool {
        QUEUE - self.queue.capacity() > BEHIND && !self.health.failing()
    }

    pub fn key(&self, conn_id: u64) -> String {
        format!("{}-{conn_id}", self.boot)
    }

    pub fn opened(&self, conn_id: u64, ip: IpAddr, ip_hash: String, user_agent: String) {
        let user_agent: String = user_agent.chars().take(300).collect();
        self.log(LogEvent::Opened { key: self.key(conn_id), at: now_ms(), ip, ip_hash, user_agent });
    }

    pub fn joined(&self, conn_id: u64, room: &str, nickname: &str) {
        self.log(LogEvent::Joined {
            key: self.key(conn_id),
            at: now_ms(),
            room: room.to_owned(),
            nickname: nickname.to_owned(),
        });
    }

    pub fn closed(&self, conn_id: u64) {
        self.log(LogEvent::Closed { key: self.key(conn_id), at: now_ms() });
    }

    fn log(&self, event: LogEvent) {
        if self.queue.try_send(event).is_err()
            && self.health.dropped.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000)
        {
            tracing::error!("connection log queue full: events are being dropped");
        }
    }
}

async fn write(
    store: Arc<dyn Store>,
    mut inbox: mpsc::Receiver<LogEvent>,
    stop: CancellationToken,
    health: Arc<LogHealth>,
    linger: Duration,
) {
    let mut pending: VecDeque<LogEvent> = VecDeque::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        // Once stopping, only what is queued already is written: nothing waits for more.
        let stopping = stop.is_cancelled();
        if pending.is_empty() && !stopping {
            tokio::select! {
                event = inbox.recv() => match event {
                    Some(event) => pending.push_back(event),
                    None => return,
                },
                () = stop.cancelled() => {}
            }
            // Then gathers what follows, for at most `linger`: a batch's worth (a backlog, or a
            // burst) is written at once, so the wait never caps how much is written.
            let linger = tokio::time::sleep(linger);
            tokio::pin!(linger);
            while pending.len() < BATCH {
                tokio::select! {
                    event = inbox.recv() => match event {
                        Some(event) => pending.push_back(event),
                        None => break,
                    },
                    () = &mut linger => break,
                    () = stop.cancelled() => break,
                }
            }
        }
        while pending.len() < BATCH {
            match inbox.try_recv() {
                Ok(event) => pending.push_back(event),
                Err(_) => break,
            }
        }
        if pending.is_empty() {
            // Asked again, not `stopping`: the wait above may have ended because of the stop.
            if stop.is_cancelled() {
                return;
            }
            continue;
        }
        // Written from where the events wait: no copy of each event's strings per write.
        let batch = pending.len().min(BATCH);
        match store.record(&pending.make_contiguous()[..batch]).await {
            Ok(()) => {
                pending.drain(..batch);
                backoff = Duration::from_millis(100);
                if health.last_error.lock().unwrap_or_else(PoisonError::into_inner).take().is_some() {
                    tracing::info!("connection log writes work again");
                }
            }
            Err(error) => {
                let message = error.to_string();
                let previous =
                    health.last_error.lock().unwrap_or_else(PoisonError::into_inner).replace(message.clone());
                if previous.as_deref() != Some(message.as_str()) {
                    tracing::error!(%message, "cannot write the connection log; keeping events and retrying");
                }
                while pending.len() > KEPT_WHILE_FAILING {
                    pending.pop_front();
                    health.dropped.fetch_add(1, Ordering::Relaxed);
                }
                if stopping {
                    tracing::error!(events = pending.len(), "stopping with connection-log events unwritten");
                    return;
                }
                health.waiting.store(pending.len() as u64, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        health.waiting.store(pending.len() as u64, Ordering::Relaxed);
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
