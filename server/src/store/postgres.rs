//! The shared store: one Postgres database for every node of a cluster, migrated on start
//! (sqlx's Postgres migrator holds an advisory lock, so nodes starting together migrate once).
//! Each call waits at most [`ACQUIRE_TIMEOUT`] for a connection: with Postgres down, a moderator
//! is told at once and the connection log keeps its events to retry (`conn_log`), as with SQLite.

use super::{
    AuditEntry, Ban, BanTarget, ConnectionRecord, LogBatch, LogEvent, Report, RoomRecord, Store, StoreError, closing,
    profanity_from, profanity_name,
};
use async_trait::async_trait;
use sqlx::{
    QueryBuilder, Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow},
};
use std::{str::FromStr, time::Duration};

/// How long a call waits for a pooled connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections per node: the store's writers are few (the log batches, moderator actions).
const MAX_CONNECTIONS: u32 = 8;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and brings the schema
    /// up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("burner");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The secret kept under `name`, made by `make` and stored if no node has made it yet. Two
    /// nodes starting at once both get the first one written.
    pub async fn shared_secret(&self, name: &str, make: impl FnOnce() -> String) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(make())
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1").bind(name).fetch_one(&self.pool).await?)
    }
}

fn ban_from_row(row: &PgRow) -> Result<Ban, StoreError> {
    Ok(Ban {
        id: row.try_get("id")?,
        target: BanTarget::from_columns(row.try_get("kind")?, row.try_get("target")?)?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn report_from_row(row: &PgRow) -> Result<Report, StoreError> {
    Ok(Report {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        room: row.try_get("room")?,
        message_seq: u64::try_from(row.try_get::<i64, _>("message_seq")?).unwrap_or(0),
        reporter_hash: row.try_get("reporter_hash")?,
        reason: row.try_get("reason")?,
        snapshot: row.try_get("snapshot")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

fn room_from_row(row: &PgRow) -> Result<RoomRecord, StoreError> {
    Ok(RoomRecord {
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        limit: u32::try_from(row.try_get::<i32, _>("max_members")?).unwrap_or(2),
        one_way: row.try_get("one_way")?,
        listed: row.try_get("listed")?,
        profanity: profanity_from(&row.try_get::<String, _>("profanity")?),
        slow_mode_secs: u32::try_from(row.try_get::<i32, _>("slow_mode_secs")?).unwrap_or(0),
        locked: row.try_get("locked")?,
        created_at: row.try_get("created_at")?,
    })
}

// The connection log's reads and deletes. Every index of its two tables serves one of these or
// the closes' update (`connection_log_statements`, planned by the integration test
// `store::every_index_of_the_postgres_connection_log_serves_a_query`): each index is one more
// B-tree written on every visit.

/// The console's search: an address, a hash prefix or a nickname, newest first. Postgres walks
/// `opened_at` backwards and filters: the nickname's `LIKE '%…%'` scans the joins whatever the
/// other arms could use, so no index on the address or the hash can serve the `OR`.
const SEARCH_CONNECTIONS: &str = "SELECT conn_key, opened_at, closed_at, ip, ip_hash, user_agent FROM connections
     WHERE $1 = '' OR ip = $1 OR ip_hash LIKE $2 || '%'
        OR conn_key IN (SELECT conn_key FROM connection_joins WHERE nickname LIKE '%' || $2 || '%')
     ORDER BY opened_at DESC LIMIT $3";
/// The rooms the connections found joined.
const JOINS_OF: &str = "SELECT conn_key, at, room, nickname FROM connection_joins WHERE conn_key = ANY($1) ORDER BY at";
/// Retention: the joins of connections opened before the cutoff, then the connections.
const FORGET_JOINS: &str =
    "DELETE FROM connection_joins WHERE conn_key IN (SELECT conn_key FROM connections WHERE opened_at < $1)";
const FORGET_CONNECTIONS: &str = "DELETE FROM connections WHERE opened_at < $1";

/// The connection log's statements other than its inserts, as this store runs them: the search
/// (`$1` text, `$2` its `LIKE` literal, `$3` a limit), the joins of some connections (`$1` keys),
/// the two deletes (`$1` a cutoff), and the update that closes two connections (`$1` key, `$2`
/// time, `$3` key, `$4` time, then `$5` and `$6` the keys again). For the test that plans them.
pub fn connection_log_statements() -> [String; 5] {
    [
        SEARCH_CONNECTIONS.to_owned(),
        JOINS_OF.to_owned(),
        FORGET_JOINS.to_owned(),
        FORGET_CONNECTIONS.to_owned(),
        closing::<sqlx::Postgres>(&[("a", 1), ("b", 2)]).into_string(),
    ]
}

/// What a moderator typed, with `%`, `_` and `\` meaning themselves in a `LIKE` pattern.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Postgres integers are signed; a count or sequence number past `i32::MAX` is clamped.
fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[async_trait]
impl Store for PostgresStore {
    async fn record(&self, events: &[LogEvent]) -> Result<(), StoreError> {
        // Not prepared and kept: see the SQLite store's `record`.
        let batch = LogBatch::of(events);
        let mut tx = self.pool.begin().await?;
        for rows in batch.opened.chunks(LogBatch::ROWS) {
            let mut insert =
                QueryBuilder::new("INSERT INTO connections (conn_key, opened_at, ip, ip_hash, user_agent, closed_at) ");
            insert.push_values(rows, |mut row, opened| {
                row.push_bind(opened.key)
                    .push_bind(opened.at)
                    .push_bind(opened.ip.as_str())
                    .push_bind(opened.ip_hash)
                    .push_bind(opened.user_agent)
                    .push_bind(opened.closed_at);
            });
            insert.push(" ON CONFLICT (conn_key) DO NOTHING");
            insert.build().persistent(false).execute(&mut *tx).await?;
        }
        for rows in batch.joined.chunks(LogBatch::ROWS) {
            let mut insert = QueryBuilder::new("INSERT INTO connection_joins (conn_key, at, room, nickname) ");
            insert.push_values(rows, |mut row, (key, at, room, nickname)| {
                row.push_bind(*key).push_bind(*at).push_bind(*room).push_bind(*nickname);
            });
            insert.build().persistent(false).execute(&mut *tx).await?;
        }
        for rows in batch.closed.chunks(LogBatch::ROWS) {
            closing::<sqlx::Postgres>(rows).build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn search_connections(&self, text: &str, limit: u32) -> Result<Vec<ConnectionRecord>, StoreError> {
        let text = text.trim();
        let rows = sqlx::query(SEARCH_CONNECTIONS)
            .bind(text)
            .bind(like_literal(text))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let keys: Vec<String> = rows.iter().map(|row| row.try_get("conn_key")).collect::<Result<_, _>>()?;
        // Every join of every connection found, in one query.
        let joins = sqlx::query(JOINS_OF).bind(&keys).fetch_all(&self.pool).await?;
        let mut records = Vec::with_capacity(rows.len());
        for (row, key) in rows.iter().zip(keys) {
            let joins = joins
                .iter()
                .filter(|j| j.try_get::<&str, _>("conn_key").is_ok_and(|k| k == key))
                .map(|j| Ok((j.try_get("at")?, j.try_get("room")?, j.try_get("nickname")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            records.push(ConnectionRecord {
                key,
                opened_at: row.try_get("opened_at")?,
                closed_at: row.try_get("closed_at")?,
                ip: row.try_get("ip")?,
                ip_hash: row.try_get("ip_hash")?,
                user_agent: row.try_get("user_agent")?,
                joins,
            });
        }
        Ok(records)
    }

    async fn forget_connections_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(FORGET_JOINS).bind(cutoff).execute(&mut *tx).await?;
        let deleted = sqlx::query(FORGET_CONNECTIONS).bind(cutoff).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }

    async fn add_ban(
        &self,
        target: &BanTarget,
        reason: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> Result<Ban, StoreError> {
        let (kind, value) = target.columns();
        let id = sqlx::query_scalar(
            "INSERT INTO bans (kind, target, reason, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(kind)
        .bind(value)
        .bind(reason)
        .bind(at)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(Ban { id, target: target.clone(), reason: reason.to_owned(), created_at: at, expires_at })
    }

    async fn lift_ban(&self, id: i64, at: i64) -> Result<bool, StoreError> {
        let lifted = sqlx::query("UPDATE bans SET lifted_at = $1 WHERE id = $2 AND lifted_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(lifted.rows_affected() > 0)
    }

    async fn active_bans(&self, now: i64) -> Result<Vec<Ban>, StoreError> {
        sqlx::query(
            "SELECT id, kind, target, reason, created_at, expires_at FROM bans
             WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1) ORDER BY id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(ban_from_row)
        .collect()
    }

    async fn add_report(&self, report: &Report) -> Result<i64, StoreError> {
        let seq = i64::try_from(report.message_seq).unwrap_or(i64::MAX);
        // The same message reported again from the same address while its report is open is
        // that report; the partial unique index makes this hold between nodes too.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO reports (at, room, message_seq, reporter_hash, reason, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (room, message_seq, reporter_hash) WHERE resolved_at IS NULL DO NOTHING RETURNING id",
        )
        .bind(report.at)
        .bind(&report.room)
        .bind(seq)
        .bind(&report.reporter_hash)
        .bind(&report.reason)
        .bind(&report.snapshot)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = inserted {
            return Ok(id);
        }
        Ok(sqlx::query_scalar(
            "SELECT id FROM reports WHERE room = $1 AND message_seq = $2 AND reporter_hash = $3 AND resolved_at IS NULL",
        )
        .bind(&report.room)
        .bind(seq)
        .bind(&report.reporter_hash)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn reports(&self, limit: u32) -> Result<Vec<Report>, StoreError> {
        sqlx::query(
            "SELECT id, at, room, message_seq, reporter_hash, reason, snapshot, resolved_at FROM reports
             ORDER BY resolved_at IS NOT NULL, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(report_from_row)
        .collect()
    }

    async fn resolve_report(&self, id: i64, at: i64) -> Result<bool, StoreError> {
        let resolved = sqlx::query("UPDATE reports SET resolved_at = $1 WHERE id = $2 AND resolved_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(resolved.rows_affected() > 0)
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (at, action, target, reason, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(entry.at)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(&entry.reason)
            .bind(&entry.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query("SELECT at, action, target, reason, detail FROM audit ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: row.try_get("at")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    reason: row.try_get("reason")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn save_room(&self, room: &RoomRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rooms (slug, name, max_members, one_way, listed, profanity, slow_mode_secs, locked, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (slug) DO UPDATE SET profanity = excluded.profanity,
                 slow_mode_secs = excluded.slow_mode_secs, locked = excluded.locked",
        )
        .bind(&room.slug)
        .bind(&room.name)
        .bind(int(room.limit))
        .bind(room.one_way)
        .bind(room.listed)
        .bind(profanity_name(room.profanity))
        .bind(int(room.slow_mode_secs))
        .bind(room.locked)
        .bind(room.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_room(&self, slug: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM rooms WHERE slug = $1").bind(slug).execute(&self.pool).await?;
        Ok(())
    }

    async fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        sqlx::query(
            "SELECT slug, name, max_members, one_way, listed, profanity, slow_mode_secs, locked, created_at FROM rooms",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(room_from_row)
        .collect()
    }
}

super::discord::bridge_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
