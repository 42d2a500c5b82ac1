-- Burner's durable data in Postgres, shared by every node of a cluster: the connection log,
-- bans, reports, the audit log, room settings, and the secrets every node must agree on.
-- Times are milliseconds since the Unix epoch. Same tables as the SQLite store's migration.

-- Who connected: one row per WebSocket connection (key: node boot id + connection number).
CREATE TABLE connections (
    conn_key   TEXT PRIMARY KEY,
    opened_at  BIGINT NOT NULL,
    closed_at  BIGINT,
    ip         TEXT NOT NULL,
    ip_hash    TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX connections_opened_at ON connections (opened_at);
CREATE INDEX connections_ip_hash ON connections (ip_hash text_pattern_ops);
CREATE INDEX connections_ip ON connections (ip);

-- The rooms each connection joined, under which nickname.
CREATE TABLE connection_joins (
    conn_key TEXT NOT NULL,
    at       BIGINT NOT NULL,
    room     TEXT NOT NULL,
    nickname TEXT NOT NULL
);
CREATE INDEX connection_joins_conn_key ON connection_joins (conn_key);
CREATE INDEX connection_joins_at ON connection_joins (at);

-- Bans by address (`ip`), by address block (`net`, CIDR) or by keyed address hash (`hash`).
CREATE TABLE bans (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('ip', 'net', 'hash')),
    target     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,           -- NULL: permanent
    lifted_at  BIGINT            -- set by an unban
);

-- Reports from the room page, with the room as the server saw it at that moment.
CREATE TABLE reports (
    id            BIGSERIAL PRIMARY KEY,
    at            BIGINT NOT NULL,
    room          TEXT NOT NULL,
    message_seq   BIGINT NOT NULL,
    reporter_hash TEXT NOT NULL,
    reason        TEXT NOT NULL,
    snapshot      TEXT NOT NULL,   -- JSON: the last 20 messages with their authors' address hashes
    resolved_at   BIGINT
);
-- One open report per message and reporter, even when two nodes take the same report at once.
CREATE UNIQUE INDEX reports_open_once ON reports (room, message_seq, reporter_hash) WHERE resolved_at IS NULL;

-- Every moderator action.
CREATE TABLE audit (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

-- Rooms and their settings, so they outlive a restart.
CREATE TABLE rooms (
    slug           TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    max_members    INTEGER NOT NULL,
    one_way        BOOLEAN NOT NULL,
    listed         BOOLEAN NOT NULL,
    profanity      TEXT NOT NULL DEFAULT 'mask',
    slow_mode_secs INTEGER NOT NULL DEFAULT 0,
    locked         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL
);

-- What every node must share and the first node to start makes: the key of the address hashes
-- (so a hash means the same on every node) and a generated moderator token.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
