-- The Discord bridge: which room is linked to which channel, what waits to go to Discord, and
-- which Burner message is which Discord message. Times are milliseconds since the Unix epoch.

-- One link per room. `out_epoch` / `out_seq`: the last message of the room queued for Discord
-- (a restarted bridge rejoins the room from there, so nothing said meanwhile is skipped).
CREATE TABLE discord_links (
    room         TEXT PRIMARY KEY,
    channel_id   TEXT NOT NULL,
    channel_name TEXT NOT NULL,
    joins        BOOLEAN NOT NULL DEFAULT false,
    created_at   BIGINT NOT NULL,
    out_epoch    TEXT NOT NULL DEFAULT '',
    out_seq      BIGINT NOT NULL DEFAULT 0
);

-- What waits to be done in Discord (a message to post, one to delete), oldest first. Bounded
-- per room by the bridge: beyond the cap the oldest are dropped and counted.
-- One room per channel.
CREATE UNIQUE INDEX discord_links_channel ON discord_links (channel_id);

CREATE TABLE discord_outbox (
    id         BIGSERIAL PRIMARY KEY,
    room       TEXT NOT NULL,
    job        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX discord_outbox_room ON discord_outbox (room, id);

-- Burner message ↔ Discord message, both directions. The Discord id is the dedupe key.
CREATE TABLE discord_messages (
    room         TEXT NOT NULL,
    epoch        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    discord_id   TEXT NOT NULL,
    channel_id   TEXT NOT NULL,
    author_id    TEXT NOT NULL DEFAULT '',
    from_discord BOOLEAN NOT NULL DEFAULT false,
    at           BIGINT NOT NULL,
    PRIMARY KEY (room, epoch, seq)
);
CREATE UNIQUE INDEX discord_messages_discord_id ON discord_messages (discord_id);

-- The bridge's gateway session, kept after each event it handled: a restarted bridge resumes
-- it and Discord replays what was said meanwhile. At most one row.
CREATE TABLE discord_gateway (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    session_id TEXT NOT NULL,
    sequence   BIGINT NOT NULL,
    resume_url TEXT NOT NULL
);

-- Discord authors a moderator muted in a room: their messages do not cross into it.
CREATE TABLE discord_mutes (
    room       TEXT NOT NULL,
    author_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room, author_id)
);
