-- Burner's durable data: the connection log, bans, reports, the audit log and room settings.
-- Times are milliseconds since the Unix epoch.

-- Who connected: one row per WebSocket connection (key: process boot id + connection number).
CREATE TABLE connections (
    conn_key   TEXT PRIMARY KEY,
    opened_at  INTEGER NOT NULL,
    closed_at  INTEGER,
    ip         TEXT NOT NULL,
    ip_hash    TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX connections_opened_at ON connections (opened_at);
CREATE INDEX connections_ip_hash ON connections (ip_hash);
CREATE INDEX connections_ip ON connections (ip);

-- The rooms each connection joined, under which nickname.
CREATE TABLE connection_joins (
    conn_key TEXT NOT NULL,
    at       INTEGER NOT NULL,
    room     TEXT NOT NULL,
    nickname TEXT NOT NULL
);
CREATE INDEX connection_joins_conn_key ON connection_joins (conn_key);
CREATE INDEX connection_joins_at ON connection_joins (at);
CREATE INDEX connection_joins_nickname ON connection_joins (nickname);

-- Bans by address (`ip`), by address block (`net`, CIDR) or by keyed address hash (`hash`).
CREATE TABLE bans (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('ip', 'net', 'hash')),
    target     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,          -- NULL: permanent
    lifted_at  INTEGER           -- set by an unban
);

-- Reports from the room page, with the room as the server saw it at that moment.
CREATE TABLE reports (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    room          TEXT NOT NULL,
    message_seq   INTEGER NOT NULL,
    reporter_hash TEXT NOT NULL,
    reason        TEXT NOT NULL,
    snapshot      TEXT NOT NULL,   -- JSON: the last 20 messages with their authors' address hashes
    resolved_at   INTEGER
);

-- Every moderator action.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

-- Rooms and their settings, so they outlive a restart.
CREATE TABLE rooms (
    slug       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    max_members INTEGER NOT NULL,
    one_way    INTEGER NOT NULL,
    listed     INTEGER NOT NULL,
    profanity  TEXT NOT NULL DEFAULT 'mask',
    slow_mode_secs INTEGER NOT NULL DEFAULT 0,
    locked     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
