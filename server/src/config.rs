//! Every setting of a Burner server: flags, each with an environment variable and a default
//! that serves a community from one process. `burner --help` lists them.

use clap::Parser;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

#[derive(Clone, Debug, Parser)]
#[command(name = "burner", version, about = "Burner: anonymous real-time chat rooms")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BURNER_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// The built site: `pkg/` holds the wasm bundle, its loader and the stylesheet.
    #[arg(long, env = "BURNER_SITE_DIR", default_value = "target/site")]
    pub site_dir: PathBuf,

    /// Origins allowed to open the WebSocket (comma-separated `scheme://host[:port]`).
    /// Empty: only the site's own origin, `http://` + the request's Host. Behind a TLS proxy,
    /// name the public origin, e.g. `https://chat.example.org`.
    #[arg(long, env = "BURNER_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Largest participant limit a new room may ask for (at most 1000).
    #[arg(long, env = "BURNER_MAX_ROOM_LIMIT", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub max_room_limit: u32,

    /// Participant limit of the lobby, the room that always exists (it may be bigger than the
    /// rooms people create: up to 100 000).
    #[arg(long, env = "BURNER_LOBBY_LIMIT", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub lobby_limit: u32,

    /// How long a room without members lives on before it is removed.
    #[arg(long, env = "BURNER_ROOM_EXPIRY", default_value = "10m", value_parser = humantime::parse_duration)]
    pub room_expiry: Duration,

    /// Most rooms that may exist at once.
    #[arg(long, env = "BURNER_MAX_ROOMS", default_value_t = 10_000)]
    pub max_rooms: usize,

    /// Rooms one IP address (IPv6: one /64) may create in a burst ...
    #[arg(long, env = "BURNER_ROOM_CREATE_BURST", default_value_t = 5)]
    pub room_create_burst: u32,

    /// ... and then one more every this long.
    #[arg(long, env = "BURNER_ROOM_CREATE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub room_create_interval: Duration,

    /// Messages a member may send at once ...
    #[arg(long, env = "BURNER_MESSAGE_BURST", default_value_t = 10)]
    pub message_burst: u32,

    /// ... and then one more every this long. A join costs three messages.
    #[arg(long, env = "BURNER_MESSAGE_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub message_interval: Duration,

    /// WebSocket connections one IP address (IPv6: one /64) may have open at once.
    #[arg(long, env = "BURNER_MAX_CONNECTIONS_PER_IP", default_value_t = 20)]
    pub max_connections_per_ip: u32,

    /// New WebSocket connections one IP address (IPv6: one /64) may open in a burst ...
    #[arg(long, env = "BURNER_CONNECT_BURST_PER_IP", default_value_t = 20)]
    pub connect_burst_per_ip: u32,

    /// ... and then one more every this long.
    #[arg(long, env = "BURNER_CONNECT_INTERVAL_PER_IP", default_value = "1s", value_parser = humantime::parse_duration)]
    pub connect_interval_per_ip: Duration,

    /// Joins one IP address (IPv6: one /64) may make in a burst, across all its connections ...
    #[arg(long, env = "BURNER_JOIN_BURST_PER_IP", default_value_t = 20)]
    pub join_burst_per_ip: u32,

    /// ... and then one more every this long.
    #[arg(long, env = "BURNER_JOIN_INTERVAL_PER_IP", default_value = "2s", value_parser = humantime::parse_duration)]
    pub join_interval_per_ip: Duration,

    /// Frames of any kind (pings included) a connection may send per second before it is
    /// closed as a flood; bursts of twice this are tolerated.
    #[arg(long, env = "BURNER_FRAMES_PER_SECOND", default_value_t = 20)]
    pub frames_per_second: u32,

    /// Frames queued for one connection before it counts as too slow and is closed. Queued
    /// frames share their bytes with the rest of the room, and slots are allocated as they
    /// fill, so a roomy limit costs nothing until a client really falls behind; it must absorb
    /// a room's burst (every member's message burst at once) while the writer waits its turn.
    #[arg(long, env = "BURNER_OUTBOX", default_value_t = 1024)]
    pub outbox: usize,

    /// Most WebSocket connections the server holds at once.
    #[arg(long, env = "BURNER_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// How often the server pings each socket.
    #[arg(long, env = "BURNER_PING_INTERVAL", default_value = "25s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// How long a ping may go unanswered before the connection is dropped.
    #[arg(long, env = "BURNER_PONG_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub pong_timeout: Duration,

    /// How long a socket may stay without joining a room or watching the directory.
    #[arg(long, env = "BURNER_IDLE_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// How long a client may take to send its HTTP request headers.
    #[arg(long, env = "BURNER_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Rendered directory and room pages kept for the next request of the same page, in MiB of
    /// HTML (0: every request renders).
    #[arg(long, env = "BURNER_PAGE_CACHE_MB", default_value_t = 16)]
    pub page_cache_mb: usize,

    /// Invalid frames in a row after which a connection is closed.
    #[arg(long, env = "BURNER_MAX_BAD_FRAMES", default_value_t = 5)]
    pub max_bad_frames: u32,

    /// Where durable data lives: the SQLite database, the address-hashing secret, the moderator
    /// token. Created on first start. Not used with `--database-url` (Postgres keeps all three).
    #[arg(long, env = "BURNER_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Keep durable data in this Postgres database instead of the data directory's SQLite file
    /// (`postgres://user:password@host:port/database`): every node of a cluster shares it, the
    /// address-hashing key and a generated moderator token included.
    #[arg(long, env = "BURNER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Cluster mode: several Burner processes behind one load balancer, sharing bans and
    /// moderator sessions through this Redis server (`redis://host:port`, `redis://:password@…`).
    /// Use it with `--database-url`, so every node reads the same bans and log.
    #[arg(long, env = "BURNER_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// This node's name in the cluster (logs, `/healthz`); made up at start when unset.
    #[arg(long, env = "BURNER_NODE_ID")]
    pub node_id: Option<String>,

    /// How long the connection log (addresses, nicknames, rooms) is kept.
    #[arg(long, env = "BURNER_LOG_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub log_retention: Duration,

    /// How often old connection-log rows are deleted.
    #[arg(long, env = "BURNER_RETENTION_SWEEP", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retention_sweep: Duration,

    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are believed (comma-separated
    /// CIDRs, e.g. `127.0.0.1/32,10.0.0.0/8`). From anyone else those headers are ignored.
    #[arg(long, env = "BURNER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The header the trusted proxies write the client's address in; the other one is ignored
    /// (a proxy passes on whatever the client put there).
    #[arg(long, env = "BURNER_PROXY_HEADER", value_enum, default_value = "x-forwarded-for")]
    pub proxy_header: crate::peer::ProxyHeader,

    /// Moderator token. Unset: one is generated on first start, stored in the data directory and
    /// printed to the log once.
    #[arg(long, env = "BURNER_MOD_TOKEN", hide_env_values = true)]
    pub mod_token: Option<String>,

    /// Mark the moderator cookie `Secure` (set it when Burner is served over https).
    #[arg(long, env = "BURNER_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Default length of a ban.
    #[arg(long, env = "BURNER_BAN_DURATION", default_value = "7days", value_parser = humantime::parse_duration)]
    pub ban_duration: Duration,

    /// Prefix length a ban of an IPv6 member covers (64: the block one subscriber usually has).
    #[arg(long, env = "BURNER_IPV6_BAN_PREFIX", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(32..=128))]
    pub ipv6_ban_prefix: u8,

    /// Messages one address may send in a burst, across all its connections ...
    #[arg(long, env = "BURNER_MESSAGE_BURST_PER_IP", default_value_t = 20)]
    pub message_burst_per_ip: u32,

    /// ... and then one more every this long.
    #[arg(long, env = "BURNER_MESSAGE_INTERVAL_PER_IP", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub message_interval_per_ip: Duration,

    /// Refused (rate-limited) messages within `--strike-window` after which a member is muted.
    #[arg(long, env = "BURNER_STRIKES_TO_MUTE", default_value_t = 5)]
    pub strikes_to_mute: u32,

    #[arg(long, env = "BURNER_STRIKE_WINDOW", default_value = "30s", value_parser = humantime::parse_duration)]
    pub strike_window: Duration,

    /// How long a flood mute lasts.
    #[arg(long, env = "BURNER_MUTE_DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub mute_duration: Duration,

    /// Messages tried while muted after which the connection is closed for flooding.
    #[arg(long, env = "BURNER_TRIES_WHILE_MUTED", default_value_t = 20)]
    pub tries_while_muted: u32,

    /// The same message (ignoring case and spacing) from one address this many times within
    /// `--repeat-window` is refused as spam.
    #[arg(long, env = "BURNER_REPEATS_ALLOWED", default_value_t = 2)]
    pub repeats_allowed: u32,

    #[arg(long, env = "BURNER_REPEAT_WINDOW", default_value = "60s", value_parser = humantime::parse_duration)]
    pub repeat_window: Duration,

    /// Links allowed in one message.
    #[arg(long, env = "BURNER_MAX_LINKS", default_value_t = 3)]
    pub max_links: u32,

    /// The Discord bridge's bot token. Unset: no bridge, and nothing about it shows. Set: a
    /// moderator can link a room to a Discord channel in the console (see docs/DISCORD.md).
    #[arg(long, env = "BURNER_DISCORD_TOKEN", hide_env_values = true)]
    pub discord_token: Option<String>,

    /// Where Discord's REST API is (`https://discord.com` unless a proxy or a test stands in).
    #[arg(long, env = "BURNER_DISCORD_API_URL", default_value = "https://discord.com")]
    pub discord_api_url: String,

    /// Where Discord's gateway is (`wss://gateway.discord.gg` unless a proxy or a test stands in).
    #[arg(long, env = "BURNER_DISCORD_GATEWAY_URL", default_value = "wss://gateway.discord.gg")]
    pub discord_gateway_url: String,

    /// Log filter, in `tracing` syntax (e.g. `info`, `server=debug`).
    #[arg(long, env = "BURNER_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// The defaults, as `burner` with no flags would take them (the `BURNER_*` environment
    /// still applies), for tests and tools that start a server in-process.
    pub fn defaults() -> Self {
        Self::parse_from(["burner"])
    }
}
