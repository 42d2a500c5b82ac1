//! The embedded store: one SQLite file (WAL), migrated on start.

use super::{
    AuditEntry, Ban, BanTarget, ConnectionRecord, LogBatch, LogEvent, Report, RoomRecord, Store, StoreError, closing,
    profanity_from, profanity_name,
};
use async_trait::async_trait;
use sqlx::{
    QueryBuilder, Row,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous},
};
use std::{path::Path, time::Duration};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a process crash without losing committed data.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

// The connection log's reads and deletes. Every index of its two tables serves one of these
// (`tests::every_index_of_the_connection_log_serves_a_query`): each index is one more B-tree
// written on every visit.

/// The console's search: an address, a hash prefix or a nickname, newest first. SQLite answers
/// the `OR` by walking `opened_at` and scanning the joins (`LIKE '%…%'` can use no index).
const SEARCH_CONNECTIONS: &str = "SELECT conn_key, opened_at, closed_at, ip, ip_hash, user_agent FROM connections
     WHERE ?1 = '' OR ip = ?1 OR ip_hash LIKE ?2 || '%' ESCAPE '\\'
        OR conn_key IN (SELECT conn_key FROM connection_joins WHERE nickname LIKE '%' || ?2 || '%' ESCAPE '\\')
     ORDER BY opened_at DESC LIMIT ?3";
/// The rooms one connection joined.
const JOINS_OF: &str = "SELECT at, room, nickname FROM connection_joins WHERE conn_key = ? ORDER BY at";
/// Retention: the joins of connections opened before the cutoff, then the connections.
const FORGET_JOINS: &str =
    "DELETE FROM connection_joins WHERE conn_key IN (SELECT conn_key FROM connections WHERE opened_at < ?)";
const FORGET_CONNECTIONS: &str = "DELETE FROM connections WHERE opened_at < ?";

fn ban_from_row(row: &SqliteRow) -> Result<Ban, StoreError> {
    Ok(Ban {
        id: row.try_get("id")?,
        target: BanTarget::from_columns(row.try_get("kind")?, row.try_get("target")?)?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn record(&self, events: &[LogEvent]) -> Result<(), StoreError> {
        let batch = LogBatch::of(events);
        // Each statement has as many rows as the batch: not kept as prepared statements (sqlx
        // keeps up to 100 per connection), or every batch size seen stays compiled in memory.
        // The server's memory per idle member measured 0.8-1.2 KiB more with them kept.
        let mut tx = self.pool.begin().await?;
        for rows in batch.opened.chunks(LogBatch::ROWS) {
            let mut insert = QueryBuilder::new(
                "INSERT OR IGNORE INTO connections (conn_key, opened_at, ip, ip_hash, user_agent, closed_at) ",
            );
            insert.push_values(rows, |mut row, opened| {
                row.push_bind(opened.key)
                    .push_bind(opened.at)
                    .push_bind(opened.ip.as_str())
                    .push_bind(opened.ip_hash)
                    .push_bind(opened.user_agent)
                    .push_bind(opened.closed_at);
            });
            insert.push("");
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
            closing::<sqlx::Sqlite>(rows).build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn search_connections(&self, text: &str, limit: u32) -> Result<Vec<ConnectionRecord>, StoreError> {
        let text = text.trim();
        let rows = sqlx::query(SEARCH_CONNECTIONS)
            .bind(text)
            // `%` and `_` in what a moderator typed are themselves, not wildcards.
            .bind(text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("conn_key")?;
            let joins = sqlx::query(JOINS_OF)
                .bind(&key)
                .fetch_all(&self.pool)
                .await?
                .iter()
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
        let id = sqlx::query("INSERT INTO bans (kind, target, reason, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(kind)
            .bind(value)
            .bind(reason)
            .bind(at)
            .bind(expires_at)
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(Ban { id, target: target.clone(), reason: reason.to_owned(), created_at: at, expires_at })
    }

    async fn lift_ban(&self, id: i64, at: i64) -> Result<bool, StoreError> {
        let lifted = sqlx::query("UPDATE bans SET lifted_at = ? WHERE id = ? AND lifted_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(lifted.rows_affected() > 0)
    }

    async fn active_bans(&self, now: i64) -> Result<Vec<Ban>, StoreError> {
        sqlx::query(
            "SELECT id, kind, target, reason, created_at, expires_at FROM bans
             WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(ban_from_row)
        .collect()
    }

    async fn add_report(&self, report: &Report) -> Result<i64, StoreError> {
        // The same message reported again from the same address (another tab, a reconnect)
        // while its report is open is that report.
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM reports WHERE room = ? AND message_seq = ? AND reporter_hash = ? AND resolved_at IS NULL",
        )
        .bind(&report.room)
        .bind(i64::try_from(report.message_seq).unwrap_or(i64::MAX))
        .bind(&report.reporter_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = open {
            return Ok(id);
        }
        Ok(sqlx::query(
            "INSERT INTO reports (at, room, message_seq, reporter_hash, reason, snapshot) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(report.at)
        .bind(&report.room)
        .bind(i64::try_from(report.message_seq).unwrap_or(i64::MAX))
        .bind(&report.reporter_hash)
        .bind(&report.reason)
        .bind(&report.snapshot)
        .execute(&self.pool)
        .await?
        .last_insert_rowid())
    }

    async fn reports(&self, limit: u32) -> Result<Vec<Report>, StoreError> {
        sqlx::query(
            "SELECT id, at, room, message_seq, reporter_hash, reason, snapshot, resolved_at FROM reports
             ORDER BY resolved_at IS NOT NULL, id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
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
        })
        .collect()
    }

    async fn resolve_report(&self, id: i64, at: i64) -> Result<bool, StoreError> {
        let resolved = sqlx::query("UPDATE reports SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(resolved.rows_affected() > 0)
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (at, action, target, reason, detail) VALUES (?, ?, ?, ?, ?)")
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
        sqlx::query("SELECT at, action, target, reason, detail FROM audit ORDER BY id DESC LIMIT ?")
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (slug) DO UPDATE SET profanity = excluded.profanity,
                 slow_mode_secs = excluded.slow_mode_secs, locked = excluded.locked",
        )
        .bind(&room.slug)
        .bind(&room.name)
        .bind(i64::from(room.limit))
        .bind(room.one_way)
        .bind(room.listed)
        .bind(profanity_name(room.profanity))
        .bind(i64::from(room.slow_mode_secs))
        .bind(room.locked)
        .bind(room.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_room(&self, slug: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM rooms WHERE slug = ?").bind(slug).execute(&self.pool).await?;
        Ok(())
    }

    async fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        sqlx::query(
            "SELECT slug, name, max_members, one_way, listed, profanity, slow_mode_secs, locked, created_at FROM rooms",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(RoomRecord {
                slug: row.try_get("slug")?,
                name: row.try_get("name")?,
                limit: u32::try_from(row.try_get::<i64, _>("max_members")?).unwrap_or(2),
                one_way: row.try_get("one_way")?,
                listed: row.try_get("listed")?,
                profanity: profanity_from(&row.try_get::<String, _>("profanity")?),
                slow_mode_secs: u32::try_from(row.try_get::<i64, _>("slow_mode_secs")?).unwrap_or(0),
                locked: row.try_get("locked")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
    }
}

super::discord::bridge_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every index of the connection log's tables is read by one of the log's queries, as SQLite
    /// plans them: an index no query reads costs every visit a B-tree write and buys nothing.
    #[tokio::test]
    async fn every_index_of_the_connection_log_serves_a_query() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("burner.db")).await.expect("open");
        let indexes: BTreeSet<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('connections', 'connection_joins')",
        )
        .fetch_all(&store.pool)
        .await
        .expect("indexes")
        .into_iter()
        .collect();
        let close = closing::<sqlx::Sqlite>(&[("a", 1), ("b", 2)]).sql();
        let mut read = BTreeSet::new();
        for sql in [SEARCH_CONNECTIONS, JOINS_OF, FORGET_JOINS, FORGET_CONNECTIONS, close.as_str()] {
            let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&store.pool)
                .await
                .expect("plan");
            for step in plan {
                let detail: String = step.try_get("detail").expect("detail");
                if let Some((_, index)) = detail.split_once(" INDEX ") {
                    read.extend(index.split_whitespace().next().map(str::to_owned));
                }
            }
        }
        assert_eq!(read, indexes, "indexes read by a query / indexes written on every visit");
    }
}
