//! The Discord bridge's durable data: links (room ↔ channel), the outbox of what waits to be
//! done in Discord, and the map between Burner's messages and Discord's.
//!
//! The queries are the same text for SQLite and Postgres (`$N` parameters, which sqlx's SQLite
//! driver numbers as Postgres does), so one macro implements [`BridgeStore`] for both stores.

use super::StoreError;
use async_trait::async_trait;

/// A room bridged to a Discord channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscordLink {
    pub room: String,
    pub channel_id: u64,
    /// The channel's name when it was linked, shown on the room page.
    pub channel_name: String,
    /// Whether joins and leaves are told to Discord too (off by default).
    pub joins: bool,
    pub created_at: i64,
    /// The last message of the room queued for Discord: where a restarted bridge rejoins from.
    pub cursor: Option<(String, u64)>,
}

/// One job waiting in the outbox, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: i64,
    pub room: String,
    /// The job as the bridge wrote it (JSON).
    pub job: String,
}

/// A Burner message and the Discord message that is its other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgedMessage {
    pub room: String,
    pub epoch: String,
    pub seq: u64,
    pub discord_id: u64,
    pub channel_id: u64,
    /// The Discord author's id, for a message written in Discord (else 0).
    pub author_id: u64,
    /// Written in Discord (else in Burner).
    pub from_discord: bool,
    pub at: i64,
}

#[async_trait]
pub trait BridgeStore: Send + Sync {
    /// Links `link.room` (replacing any earlier link of the room, its outbox included).
    async fn save_discord_link(&self, link: &DiscordLink) -> Result<(), StoreError>;
    /// Unlinks a room, dropping what waited for its channel; false if it was not linked.
    async fn delete_discord_link(&self, room: &str) -> Result<bool, StoreError>;
    async fn discord_links(&self) -> Result<Vec<DiscordLink>, StoreError>;
    /// Queues a job for a room's channel (if the room is still linked) and, for a message, moves
    /// the room's cursor to it, in one transaction. Keeps at most `cap` jobs for the room:
    /// returns how many of the oldest had to go.
    async fn queue_discord(
        &self,
        room: &str,
        cursor: Option<(&str, u64)>,
        job: &str,
        cap: u32,
        at: i64,
    ) -> Result<u64, StoreError>;
    /// A room's oldest jobs, in order.
    async fn discord_queue(&self, room: &str, limit: u32) -> Result<Vec<QueuedJob>, StoreError>;
    /// Drops a message's post still waiting in the outbox (deleted before it crossed); false if
    /// none waited.
    async fn cancel_discord_post(&self, room: &str, epoch: &str, seq: u64) -> Result<bool, StoreError>;
    /// A job is done: it leaves the outbox and, for a message that now exists in Discord, its
    /// mapping is recorded, in one transaction.
    async fn finish_discord(&self, id: i64, mapped: Option<&BridgedMessage>) -> Result<(), StoreError>;
    /// Records a mapping; false if that Discord message was mapped already (a replay).
    async fn map_discord(&self, mapped: &BridgedMessage) -> Result<bool, StoreError>;
    async fn bridged_by_seq(&self, room: &str, epoch: &str, seq: u64) -> Result<Option<BridgedMessage>, StoreError>;
    async fn bridged_by_discord(&self, discord_id: u64) -> Result<Option<BridgedMessage>, StoreError>;
    /// Keeps (or with `None` forgets) the gateway session a restarted bridge resumes.
    async fn save_gateway_session(&self, session: Option<&GatewaySession>) -> Result<(), StoreError>;
    async fn gateway_session(&self) -> Result<Option<GatewaySession>, StoreError>;
    /// Mutes (with the name to show) or unmutes a Discord author in a room; false if that
    /// changed nothing.
    async fn set_discord_mute(
        &self,
        room: &str,
        author_id: u64,
        name: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Every muted Discord author: (room, author id, name).
    async fn discord_mutes(&self) -> Result<Vec<(String, u64, String)>, StoreError>;
}

/// A Discord gateway session that can be resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySession {
    pub id: String,
    pub sequence: u64,
    pub resume_url: String,
}

pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn id_from(text: &str) -> Result<u64, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("bad Discord id {text}")))
}

macro_rules! bridge_store {
    ($store:ty, $db:ty, $row:ty) => {
        /// Records a mapping unless either side of it is mapped already; says whether it was new.
        async fn insert_mapping<'e, E>(
            executor: E,
            mapped: &$crate::store::discord::BridgedMessage,
        ) -> Result<bool, $crate::store::StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let done = sqlx::query(
                "INSERT INTO discord_messages (room, epoch, seq, discord_id, channel_id, author_id, from_discord, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(&mapped.room)
            .bind(&mapped.epoch)
            .bind($crate::store::discord::int(mapped.seq))
            .bind(mapped.discord_id.to_string())
            .bind(mapped.channel_id.to_string())
            .bind(mapped.author_id.to_string())
            .bind(mapped.from_discord)
            .bind(mapped.at)
            .execute(executor)
            .await?;
            Ok(done.rows_affected() > 0)
        }

        fn bridged_from_row(row: &$row) -> Result<$crate::store::discord::BridgedMessage, $crate::store::StoreError> {
            use sqlx::Row;
            Ok($crate::store::discord::BridgedMessage {
                room: row.try_get("room")?,
                epoch: row.try_get("epoch")?,
                seq: u64::try_from(row.try_get::<i64, _>("seq")?).unwrap_or(0),
                discord_id: $crate::store::discord::id_from(&row.try_get::<String, _>("discord_id")?)?,
                channel_id: $crate::store::discord::id_from(&row.try_get::<String, _>("channel_id")?)?,
                author_id: row.try_get::<String, _>("author_id")?.parse().unwrap_or(0),
                from_discord: row.try_get("from_discord")?,
                at: row.try_get("at")?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::discord::BridgeStore for $store {
            async fn save_discord_link(
                &self,
                link: &$crate::store::discord::DiscordLink,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM discord_outbox WHERE room = $1").bind(&link.room).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM discord_links WHERE room = $1").bind(&link.room).execute(&mut *tx).await?;
                let (epoch, seq) = link.cursor.clone().unwrap_or_default();
                sqlx::query(
                    "INSERT INTO discord_links (room, channel_id, channel_name, joins, created_at, out_epoch, out_seq)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&link.room)
                .bind(link.channel_id.to_string())
                .bind(&link.channel_name)
                .bind(link.joins)
                .bind(link.created_at)
                .bind(epoch)
                .bind($crate::store::discord::int(seq))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_discord_link(&self, room: &str) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM discord_outbox WHERE room = $1").bind(room).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM discord_mutes WHERE room = $1").bind(room).execute(&mut *tx).await?;
                let gone =
                    sqlx::query("DELETE FROM discord_links WHERE room = $1").bind(room).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(gone.rows_affected() > 0)
            }

            async fn discord_links(
                &self,
            ) -> Result<Vec<$crate::store::discord::DiscordLink>, $crate::store::StoreError> {
                use sqlx::Row;
                sqlx::query(
                    "SELECT room, channel_id, channel_name, joins, created_at, out_epoch, out_seq
                     FROM discord_links ORDER BY created_at",
                )
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| {
                    let epoch: String = row.try_get("out_epoch")?;
                    let seq = u64::try_from(row.try_get::<i64, _>("out_seq")?).unwrap_or(0);
                    Ok($crate::store::discord::DiscordLink {
                        room: row.try_get("room")?,
                        channel_id: $crate::store::discord::id_from(&row.try_get::<String, _>("channel_id")?)?,
                        channel_name: row.try_get("channel_name")?,
                        joins: row.try_get("joins")?,
                        created_at: row.try_get("created_at")?,
                        cursor: (!epoch.is_empty()).then_some((epoch, seq)),
                    })
                })
                .collect()
            }

            async fn queue_discord(
                &self,
                room: &str,
                cursor: Option<(&str, u64)>,
                job: &str,
                cap: u32,
                at: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                use sqlx::Row;
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO discord_outbox (room, job, created_at)
                     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM discord_links WHERE room = $1)",
                )
                .bind(room)
                .bind(job)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if let Some((epoch, seq)) = cursor {
                    sqlx::query("UPDATE discord_links SET out_epoch = $1, out_seq = $2 WHERE room = $3")
                        .bind(epoch)
                        .bind($crate::store::discord::int(seq))
                        .bind(room)
                        .execute(&mut *tx)
                        .await?;
                }
                let queued: i64 = sqlx::query("SELECT COUNT(*) AS n FROM discord_outbox WHERE room = $1")
                    .bind(room)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                let over = queued - i64::from(cap);
                let mut dropped = 0;
                if over > 0 {
                    dropped = sqlx::query(
                        "DELETE FROM discord_outbox WHERE id IN
                         (SELECT id FROM discord_outbox WHERE room = $1 ORDER BY id LIMIT $2)",
                    )
                    .bind(room)
                    .bind(over)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(dropped)
            }

            async fn cancel_discord_post(
                &self,
                room: &str,
                epoch: &str,
                seq: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                // The job's JSON starts with these fields, in this order (`outbound::Job`); an
                // epoch is hex, so it holds no LIKE wildcard.
                let pattern = format!(r#"{{"kind":"post","epoch":"{epoch}","seq":{seq},%"#);
                let done = sqlx::query("DELETE FROM discord_outbox WHERE room = $1 AND job LIKE $2")
                    .bind(room)
                    .bind(pattern)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn discord_queue(
                &self,
                room: &str,
                limit: u32,
            ) -> Result<Vec<$crate::store::discord::QueuedJob>, $crate::store::StoreError> {
                use sqlx::Row;
                sqlx::query("SELECT id, room, job FROM discord_outbox WHERE room = $1 ORDER BY id LIMIT $2")
                    .bind(room)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok($crate::store::discord::QueuedJob {
                            id: row.try_get("id")?,
                            room: row.try_get("room")?,
                            job: row.try_get("job")?,
                        })
                    })
                    .collect()
            }

            async fn finish_discord(
                &self,
                id: i64,
                mapped: Option<&$crate::store::discord::BridgedMessage>,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM discord_outbox WHERE id = $1").bind(id).execute(&mut *tx).await?;
                if let Some(mapped) = mapped {
                    insert_mapping(&mut *tx, mapped).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn map_discord(
                &self,
                mapped: &$crate::store::discord::BridgedMessage,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                insert_mapping(&mut *conn, mapped).await
            }

            async fn bridged_by_seq(
                &self,
                room: &str,
                epoch: &str,
                seq: u64,
            ) -> Result<Option<$crate::store::discord::BridgedMessage>, $crate::store::StoreError> {
                sqlx::query("SELECT * FROM discord_messages WHERE room = $1 AND epoch = $2 AND seq = $3")
                    .bind(room)
                    .bind(epoch)
                    .bind($crate::store::discord::int(seq))
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(bridged_from_row)
                    .transpose()
            }

            async fn bridged_by_discord(
                &self,
                discord_id: u64,
            ) -> Result<Option<$crate::store::discord::BridgedMessage>, $crate::store::StoreError> {
                sqlx::query("SELECT * FROM discord_messages WHERE discord_id = $1")
                    .bind(discord_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(bridged_from_row)
                    .transpose()
            }

            async fn save_gateway_session(
                &self,
                session: Option<&$crate::store::discord::GatewaySession>,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM discord_gateway").execute(&mut *tx).await?;
                if let Some(session) = session {
                    sqlx::query(
                        "INSERT INTO discord_gateway (id, session_id, sequence, resume_url) VALUES (1, $1, $2, $3)",
                    )
                    .bind(&session.id)
                    .bind($crate::store::discord::int(session.sequence))
                    .bind(&session.resume_url)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn gateway_session(
                &self,
            ) -> Result<Option<$crate::store::discord::GatewaySession>, $crate::store::StoreError> {
                use sqlx::Row;
                let Some(row) = sqlx::query("SELECT session_id, sequence, resume_url FROM discord_gateway")
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some($crate::store::discord::GatewaySession {
                    id: row.try_get("session_id")?,
                    sequence: u64::try_from(row.try_get::<i64, _>("sequence")?).unwrap_or(0),
                    resume_url: row.try_get("resume_url")?,
                }))
            }

            async fn set_discord_mute(
                &self,
                room: &str,
                author_id: u64,
                name: Option<&str>,
                at: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = match name {
                    Some(name) => {
                        sqlx::query(
                            "INSERT INTO discord_mutes (room, author_id, name, created_at) VALUES ($1, $2, $3, $4)
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(room)
                        .bind(author_id.to_string())
                        .bind(name)
                        .bind(at)
                        .execute(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query("DELETE FROM discord_mutes WHERE room = $1 AND author_id = $2")
                            .bind(room)
                            .bind(author_id.to_string())
                            .execute(&self.pool)
                            .await?
                    }
                };
                Ok(done.rows_affected() > 0)
            }

            async fn discord_mutes(&self) -> Result<Vec<(String, u64, String)>, $crate::store::StoreError> {
                use sqlx::Row;
                sqlx::query("SELECT room, author_id, name FROM discord_mutes ORDER BY created_at")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get("room")?,
                            $crate::store::discord::id_from(&row.try_get::<String, _>("author_id")?)?,
                            row.try_get("name")?,
                        ))
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use bridge_store;
