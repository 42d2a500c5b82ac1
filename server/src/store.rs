//! Durable data: the connection log, bans, reports, the audit log, room settings and the
//! Discord bridge's links, outbox and message map (`discord`).
//!
//! A small interface ([`Store`]) with two implementations: [`SqliteStore`], one file under the
//! data directory (the embedded default), and [`PostgresStore`], shared by every node of a
//! cluster. Each has its own migrations (`server/migrations/{sqlite,postgres}`), and the same
//! conformance tests run against both (`server/tests/integration/store.rs`). Nothing on the
//! message path waits for it: the connection log is written in batches by a background task
//! (`conn_log`), bans are checked against an in-memory copy.

pub mod discord;
mod postgres;
mod sqlite;

pub use discord::{BridgeStore, BridgedMessage, DiscordLink, GatewaySession, QueuedJob};
pub use postgres::{PostgresStore, connection_log_statements as postgres_log_statements};
pub use sqlite::SqliteStore;

use app::protocol::Profanity;
use async_trait::async_trait;
use ipnet::IpNet;
use std::{
    collections::{HashMap, hash_map::Entry},
    net::IpAddr,
};

/// The store failed. Keeps the database's own error as its source, for the log; what people
/// are told is the refusal it becomes (`error::Refusal`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: migrations failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A row the store wrote itself no longer reads back (edited by hand?).
    #[error("storage: unreadable row: {0}")]
    Corrupt(String),
}

/// One thing that happened to a connection, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    Opened { key: String, at: i64, ip: IpAddr, ip_hash: String, user_agent: String },
    Joined { key: String, at: i64, room: String, nickname: String },
    Closed { key: String, at: i64 },
}

/// Connection-log events grouped by kind, so a store writes a batch as one statement per kind
/// (one round trip each, instead of one per event). Grouping keeps what matters of the order: a
/// connection's joins and close never come before its opening, which is in this batch or an
/// earlier one. A connection opened and closed within one batch (a short visit) is inserted
/// closed: an update looks each row up again, by its key among the batch's.
#[derive(Default)]
pub(crate) struct LogBatch<'a> {
    pub opened: Vec<Opened<'a>>,
    /// `(key, at, room, nickname)`
    pub joined: Vec<(&'a str, i64, &'a str, &'a str)>,
    /// `(key, at)` of connections opened in an earlier batch.
    pub closed: Vec<(&'a str, i64)>,
}

/// A connection's row as a batch inserts it.
pub(crate) struct Opened<'a> {
    pub key: &'a str,
    pub at: i64,
    pub ip: String,
    pub ip_hash: &'a str,
    pub user_agent: &'a str,
    /// Set when its close is in the same batch.
    pub closed_at: Option<i64>,
}

/// Closing times of connections opened in an earlier batch (`LogBatch::closed`): one statement
/// for the rows, on either database.
pub(crate) fn closing<DB>(rows: &[(&str, i64)]) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    DB::Arguments: Default,
    for<'t> &'t str: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut update = sqlx::QueryBuilder::new("UPDATE connections SET closed_at = CASE conn_key");
    for (key, at) in rows {
        update.push(" WHEN ").push_bind(*key).push(" THEN ").push_bind(*at);
    }
    update.push(" END WHERE conn_key IN (");
    let mut keys = update.separated(", ");
    for (key, _) in rows {
        keys.push_bind(*key);
    }
    update.push(")");
    update
}

impl<'a> LogBatch<'a> {
    /// Rows per statement: well under both databases' limits on bound values.
    pub const ROWS: usize = 1_000;

    pub fn of(events: &'a [LogEvent]) -> Self {
        let mut batch = Self::default();
        let mut opened_here = HashMap::new();
        for event in events {
            match event {
                LogEvent::Opened { key, at, ip, ip_hash, user_agent } => {
                    // Twice in a batch (retried): the first is the row written.
                    if let Entry::Vacant(row) = opened_here.entry(key.as_str()) {
                        row.insert(batch.opened.len());
                        let ip = ip.to_string();
                        batch.opened.push(Opened { key, at: *at, ip, ip_hash, user_agent, closed_at: None });
                    }
                }
                LogEvent::Joined { key, at, room, nickname } => batch.joined.push((key, *at, room, nickname)),
                LogEvent::Closed { key, at } => match opened_here.get(key.as_str()) {
                    Some(&row) => batch.opened[row].closed_at = Some(*at),
                    None => batch.closed.push((key, *at)),
                },
            }
        }
        batch
    }
}

/// A connection as the log remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub key: String,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub ip: String,
    pub ip_hash: String,
    pub user_agent: String,
    /// `(at, room, nickname)`, oldest first.
    pub joins: Vec<(i64, String, String)>,
}

/// What a ban applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanTarget {
    Ip(IpAddr),
    /// An address block, e.g. an IPv6 /64.
    Net(IpNet),
    /// The keyed hash of an address, for bans decided without seeing the address.
    Hash(String),
}

impl BanTarget {
    /// The `kind` and `target` columns a ban is stored as.
    pub(crate) fn columns(&self) -> (&'static str, String) {
        match self {
            Self::Ip(ip) => ("ip", ip.to_string()),
            Self::Net(net) => ("net", net.to_string()),
            Self::Hash(hash) => ("hash", hash.clone()),
        }
    }

    pub(crate) fn from_columns(kind: String, target: String) -> Result<Self, StoreError> {
        Ok(match kind.as_str() {
            "ip" => Self::Ip(target.parse().map_err(|_| StoreError::Corrupt(format!("bad banned address {target}")))?),
            "net" => Self::Net(target.parse().map_err(|_| StoreError::Corrupt(format!("bad banned block {target}")))?),
            _ => Self::Hash(target),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    pub id: i64,
    pub target: BanTarget,
    pub reason: String,
    pub created_at: i64,
    /// `None`: permanent.
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub id: i64,
    pub at: i64,
    pub room: String,
    pub message_seq: u64,
    pub reporter_hash: String,
    pub reason: String,
    /// JSON: the room's last messages as the server saw them.
    pub snapshot: String,
    pub resolved_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub detail: String,
}

/// A room's durable settings (also what a cluster's nodes tell each other of a new room).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomRecord {
    pub slug: String,
    pub name: String,
    pub limit: u32,
    pub one_way: bool,
    pub listed: bool,
    pub profanity: Profanity,
    pub slow_mode_secs: u32,
    pub locked: bool,
    pub created_at: i64,
}

#[async_trait]
pub trait Store: BridgeStore + Send + Sync + 'static {
    /// Appends connection-log events, in order, in one transaction.
    async fn record(&self, events: &[LogEvent]) -> Result<(), StoreError>;
    /// Connections whose address, address hash (prefix) or nickname matches, newest first.
    async fn search_connections(&self, text: &str, limit: u32) -> Result<Vec<ConnectionRecord>, StoreError>;
    /// The retention job: forgets connections opened before `cutoff`. Returns how many.
    async fn forget_connections_before(&self, cutoff: i64) -> Result<u64, StoreError>;

    async fn add_ban(
        &self,
        target: &BanTarget,
        reason: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> Result<Ban, StoreError>;
    /// Lifts a ban; false if there was no such active ban.
    async fn lift_ban(&self, id: i64, at: i64) -> Result<bool, StoreError>;
    async fn active_bans(&self, now: i64) -> Result<Vec<Ban>, StoreError>;

    async fn add_report(&self, report: &Report) -> Result<i64, StoreError>;
    async fn reports(&self, limit: u32) -> Result<Vec<Report>, StoreError>;
    async fn resolve_report(&self, id: i64, at: i64) -> Result<bool, StoreError>;

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    async fn save_room(&self, room: &RoomRecord) -> Result<(), StoreError>;
    async fn delete_room(&self, slug: &str) -> Result<(), StoreError>;
    async fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError>;
}

/// How a room's profanity setting is stored.
pub(crate) fn profanity_name(profanity: Profanity) -> &'static str {
    match profanity {
        Profanity::Off => "off",
        Profanity::Mask => "mask",
        Profanity::Block => "block",
    }
}

pub(crate) fn profanity_from(name: &str) -> Profanity {
    match name {
        "off" => Profanity::Off,
        "block" => Profanity::Block,
        _ => Profanity::Mask,
    }
}
