//! The WebSocket contract between Burner's server and its clients (the browser app and bots).
//!
//! JSON text frames on [`WS_PATH`], one message per frame, tagged by `"type"`. Requests are in the
//! imperative (`send_message`), events in the past tense (`message_posted`). `docs/PROTOCOL.md`
//! documents every message with an example, and the golden tests pin the shapes.

use serde::{Deserialize, Serialize};

/// Bumped on any change a deployed client could trip over. A client that asks for another version
/// (`/ws?v=N`) is closed with [`close::UNSUPPORTED_VERSION`].
pub const PROTOCOL_VERSION: u32 = 1;

/// A typing member sends `typing` at most this often.
pub const TYPING_EVERY_MS: u64 = 3_000;

/// How long "… is typing" stays up after the member's last `typing`.
pub const TYPING_SHOWN_MS: u64 = 6_000;

/// Most members a `joined` lists: the joiner and the room's newest others (the room's summary
/// carries the whole count). Joining a room of thousands then costs what joining a room of a
/// hundred does, for the server and for the page.
pub const MEMBERS_LISTED: usize = 100;

/// Where the socket lives on every Burner server.
pub const WS_PATH: &str = "/ws";

/// What a client may send.
///
/// Unknown fields are refused (`bad_request`) rather than ignored, so a bot's misspelt field is
/// an error it sees instead of a silent default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    // Field-less requests are written `{}` so that `deny_unknown_fields` covers them too.
    /// Receive the room directory now and its changes from then on.
    WatchDirectory {},
    /// Stop receiving directory changes.
    UnwatchDirectory {},
    /// Enter a room under a nickname. One room per connection at a time.
    Join {
        room: String,
        nickname: String,
        /// A secret the client keeps for the life of its tab: ties this tab's messages to it (so
        /// one-way rooms never show them back) and lets a reconnect replace its own ghost.
        session: String,
        /// Where the client's copy of the room ends, when it rejoins after a drop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    /// Leave the current room.
    Leave {},
    /// Post to the current room.
    SendMessage {
        text: String,
        /// Echoed in the acknowledgement or error, so the client can match them to its draft.
        /// A resend with the same reference is acknowledged again, never posted twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
    },
    /// The member is writing a message: the others see "… is typing". Send it at most once
    /// every [`TYPING_EVERY_MS`] while typing; more often is dropped unanswered. Never stored.
    Typing {},
    /// The current room's members who joined before member `before`: the newest
    /// [`MEMBERS_LISTED`] of them, answered with `members`. A big room's `joined` lists only its
    /// newest members; a client pages back from the oldest it lists.
    ListMembers { before: u64 },
    /// Report a message of the current room to the moderators.
    Report {
        seq: u64,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },

    /// For moderators: receive the console's picture of the server now and as it changes.
    /// Refused with `permission_denied` unless the upgrade request carried the `/mod` session
    /// cookie. Moderator actions are not socket messages: they are the `moderate` server
    /// function, checked against the cookie on every call.
    ModWatch {},
}

/// What a moderator can do (the `moderate` server function, `POST /api/moderate`, JSON body
/// `{"action": {...}}`). Each is written to the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModAction {
    /// Remove a member from a room (they may come back).
    Kick {
        room: String,
        member: u64,
        reason: String,
    },
    /// Ban an address: a member's (IPv6: its block), a hashed one, or one written out.
    /// `duration_secs` absent: the server's default (7 days); `0`: permanent.
    Ban {
        target: BanTarget,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u64>,
    },
    Unban {
        id: i64,
    },
    /// A shadow-muted member's messages reach nobody; they are not told.
    ShadowMute {
        room: String,
        member: u64,
        muted: bool,
    },
    /// Remove a message for everyone, live and from the history.
    DeleteMessage {
        room: String,
        seq: u64,
        reason: String,
    },
    /// A locked room takes no new members.
    LockRoom {
        room: String,
        locked: bool,
    },
    /// One message per this many seconds per member; 0 turns it off.
    SlowMode {
        room: String,
        seconds: u32,
    },
    /// Close a room: everyone is let go and the room is gone.
    CloseRoom {
        room: String,
        reason: String,
    },
    /// Bridge a room to a Discord channel (by its id), telling Discord of joins and leaves too
    /// when `joins`. Only when the server runs a Discord bridge.
    LinkDiscord {
        room: String,
        channel_id: String,
        #[serde(default)]
        joins: bool,
    },
    UnlinkDiscord {
        room: String,
    },
    /// Stop bridging what the Discord author of message `seq` writes into this room.
    MuteDiscordAuthor {
        room: String,
        seq: u64,
    },
    UnmuteDiscordAuthor {
        room: String,
        author_id: String,
    },
    ResolveReport {
        id: i64,
    },
}

/// What a ban covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BanTarget {
    /// The address of a member now in a room (IPv6: its /64).
    Member { room: String, member: u64 },
    /// An address known only by its hash (from the connection log).
    Hash { hash: String },
    /// An address or block written out (`192.0.2.7`, `2001:db8::/64`).
    Address { address: String },
}

impl ClientMsg {
    /// Parses one frame. Only a JSON object is a message: serde would also take the tuple form
    /// `["send_message", "hi"]`, which the protocol does not have.
    pub fn from_json(text: &str) -> Result<Self, String> {
        if !text.trim_start().starts_with('{') {
            return Err("a message is a JSON object with a \"type\"".to_owned());
        }
        serde_json::from_str(text).map_err(|error| error.to_string())
    }
}

impl ClientMsg {
    /// The frame's text, as the browser writes it: with its own small writer ([`crate::json`])
    /// rather than serde_json's, which would bring its serialiser into the bundle. The golden
    /// tests check it writes what serde would.
    pub fn to_json(&self) -> String {
        use crate::json::Writer;
        match self {
            ClientMsg::WatchDirectory {} => Writer::tagged("watch_directory").finish(),
            ClientMsg::UnwatchDirectory {} => Writer::tagged("unwatch_directory").finish(),
            ClientMsg::Join { room, nickname, session, resume } => {
                let mut writer = Writer::tagged("join");
                writer.string("room", room).string("nickname", nickname).string("session", session);
                if let Some(Resume { epoch, seq }) = resume {
                    writer.object("resume", |resume| {
                        resume.string("epoch", epoch).number("seq", *seq);
                    });
                }
                writer.finish()
            }
            ClientMsg::Leave {} => Writer::tagged("leave").finish(),
            ClientMsg::SendMessage { text, client_ref } => {
                let mut writer = Writer::tagged("send_message");
                writer.string("text", text);
                if let Some(client_ref) = client_ref {
                    writer.string("client_ref", client_ref);
                }
                writer.finish()
            }
            ClientMsg::Typing {} => Writer::tagged("typing").finish(),
            ClientMsg::ListMembers { before } => {
                let mut writer = Writer::tagged("list_members");
                writer.number("before", *before);
                writer.finish()
            }
            ClientMsg::Report { seq, reason } => {
                let mut writer = Writer::tagged("report");
                writer.number("seq", *seq);
                if !reason.is_empty() {
                    writer.string("reason", reason);
                }
                writer.finish()
            }
            ClientMsg::ModWatch {} => Writer::tagged("mod_watch").finish(),
        }
    }
}

/// "I have everything up to `seq` of this incarnation (`epoch`) of the room."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    pub epoch: String,
    pub seq: u64,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on every connection.
    Welcome {
        protocol: u32,
        limits: Limits,
    },
    /// The listed rooms, answering `watch_directory`.
    Directory {
        rooms: Vec<RoomSummary>,
    },
    /// Rooms whose occupancy changed, appeared or went away since the last update (batched).
    DirectoryChanged {
        updated: Vec<RoomSummary>,
        removed: Vec<String>,
    },
    /// You are in. `history` is oldest first and never holds your own messages in a one-way room.
    /// `members` is in join order, at most [`MEMBERS_LISTED`] of them (you and the newest
    /// others); `room.members` counts everyone.
    Joined {
        room: RoomSummary,
        settings: RoomSettings,
        you: Member,
        members: Vec<Member>,
        epoch: String,
        continuity: Continuity,
        history: Vec<ChatMessage>,
    },
    /// You left (answer to `leave`).
    Left {
        room: String,
    },
    MemberJoined {
        member: Member,
        count: u32,
    },
    MemberLeft {
        member: Member,
        count: u32,
    },
    MessagePosted {
        message: ChatMessage,
    },
    /// `member` is writing. Shown for [`TYPING_SHOWN_MS`] after the last of these, or until a
    /// message of theirs arrives. Never sent back to the typist's own tab, nor for a
    /// shadow-muted member.
    MemberTyping {
        member: Member,
    },
    /// Content-free receipt for the author: the message was posted as `seq`.
    MessageAccepted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
        seq: u64,
        at: i64,
    },
    /// A moderator removed this message: it is gone from the history too.
    MessageDeleted {
        seq: u64,
    },
    /// A message's text changed (its author edited it on the other side of a bridge): the
    /// history holds the new text, marked `edited`.
    MessageEdited {
        seq: u64,
        text: String,
    },
    /// The room's moderation settings changed.
    RoomSettingsChanged {
        settings: RoomSettings,
    },
    /// The answer to `list_members`: in join order; `more` when members older than these remain.
    Members {
        members: Vec<Member>,
        more: bool,
    },
    /// Your report was received.
    Reported {
        seq: u64,
    },
    /// For moderators: the whole picture (answer to `mod_watch`, then again as it changes).
    ModSnapshot {
        snapshot: ModSnapshot,
    },
    /// A request was refused. `message` is a sentence for people; `code` is for programs.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerMsg {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into(), client_ref: None, retry_after_ms: None }
    }

    /// The frame's text. Our types always serialise; the fallback only keeps this total.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"The server could not encode a reply."}"#.to_owned()
        })
    }
}

/// What a room does with profanity in messages, chosen when the room is created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profanity {
    /// Messages pass as written.
    Off,
    /// Profane words are replaced by `*`s.
    #[default]
    Mask,
    /// A message with profanity is refused (`profanity`).
    Block,
}

impl Profanity {
    /// Its name on the wire, also what the console shows. (Not `{:?}`: the bundles are built
    /// with `Debug` formatting left out.)
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Mask => "mask",
            Self::Block => "block",
        }
    }
}

/// How `Joined.history` relates to what the client had before (its `resume`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Continuity {
    /// No resume was asked for: the latest messages.
    Fresh,
    /// Exactly the messages after the client's `seq`: nothing was missed.
    Resumed,
    /// Some messages after the client's `seq` are no longer kept: the latest ones follow.
    Gap,
    /// The room was restarted since (another epoch): earlier messages are gone.
    Reset,
}

/// A room's moderation settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    pub profanity: Profanity,
    pub slow_mode_secs: u32,
    pub locked: bool,
}

/// The moderator console's picture of the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModSnapshot {
    pub rooms: Vec<ModRoom>,
    pub bans: Vec<BanView>,
    pub reports: Vec<ReportView>,
    pub audit: Vec<AuditView>,
    /// The Discord bridge, when the server runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordView>,
}

/// The Discord bridge as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordView {
    /// `starting`, `connected`, `reconnecting`, `standby`, `stopped`.
    pub state: String,
    /// Why it stopped, or what goes wrong now.
    pub error: Option<String>,
    pub links: Vec<DiscordLinkView>,
    pub sent: u64,
    pub received: u64,
    pub refused: u64,
}

/// A room bridged to a Discord channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordLinkView {
    pub room: String,
    pub channel_id: String,
    pub channel_name: String,
    pub joins: bool,
    /// Why the link does not work, if it does not.
    pub problem: Option<String>,
    /// Discord authors whose messages do not cross into the room.
    #[serde(default)]
    pub muted: Vec<MutedDiscordAuthor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutedDiscordAuthor {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModRoom {
    pub room: RoomSummary,
    pub settings: RoomSettings,
    pub members: Vec<ModMember>,
    pub recent: Vec<ModMessage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModMember {
    pub id: u64,
    pub nickname: String,
    /// Keyed hash of the member's address: the address itself is not shown.
    pub ip_hash: String,
    /// When they joined (ms since the epoch).
    pub since: i64,
    pub sent: u32,
    pub shadow_muted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModMessage {
    pub seq: u64,
    pub at: i64,
    pub author: Member,
    pub author_hash: String,
    pub text: String,
    /// Sent while the author was shadow-muted: nobody else saw it.
    pub shadow_muted: bool,
    /// Written in a bridged Discord channel (the author is a Discord user).
    #[serde(default, skip_serializing_if = "Source::is_burner")]
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    pub id: i64,
    /// What is banned, as moderators see it (`address 1f2e…`, `block 1f2e…/64`, `hash 1f2e…`).
    pub target: String,
    pub reason: String,
    pub created_at: i64,
    /// Absent: permanent.
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportView {
    pub id: i64,
    pub at: i64,
    pub room: String,
    pub message_seq: u64,
    pub reason: String,
    /// The room's last messages when the report was made, as the server saw them.
    pub snapshot: Vec<ModMessage>,
    pub resolved: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub at: i64,
    pub action: String,
    pub target: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    /// Only when the moderator asked to reveal addresses.
    pub ip: Option<String>,
    pub ip_hash: String,
    pub user_agent: String,
    /// `(at, room, nickname)`.
    pub joins: Vec<(i64, String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub slug: String,
    pub name: String,
    pub members: u32,
    pub limit: u32,
    pub one_way: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Unique on this server for the life of the membership; not linked to the session.
    pub id: u64,
    pub nickname: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Per room, increasing by one per posted message within an epoch.
    pub seq: u64,
    /// Server time, milliseconds since the Unix epoch.
    pub at: i64,
    pub author: Member,
    pub text: String,
    /// Nicknames of the members this message mentions (`@name`, look-alikes included, as the
    /// room had them when it was posted), as those members are named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// Where it was written. A message from a bridged Discord channel names its Discord author
    /// in `author.nickname` (`author.id` is the bridge's place in the room); only the server
    /// sets this, so nobody here can pass for a Discord author, nor the other way round.
    #[serde(default, skip_serializing_if = "Source::is_burner")]
    pub source: Source,
    /// Its author changed it since it was posted (present only when true).
    #[serde(default, skip_serializing_if = "is_false")]
    pub edited: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Where a message was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Burner,
    Discord,
}

impl Source {
    pub fn is_burner(&self) -> bool {
        *self == Source::Burner
    }
}

/// Server limits, announced in `welcome` so clients and bots can respect them up front.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub nickname_chars: u32,
    pub room_name_chars: u32,
    pub message_chars: u32,
    pub history: u32,
    pub room_limit_min: u32,
    pub room_limit_max: u32,
    pub frame_bytes: u32,
    /// Messages a member may send at once before the rate limit applies.
    pub message_burst: u32,
    /// One more message is allowed every this many milliseconds.
    pub message_interval_ms: u32,
}

impl Limits {
    /// The limits fixed by [`crate::rules`], with the defaults of the configurable ones.
    pub fn from_rules() -> Self {
        use crate::rules::*;
        Self {
            nickname_chars: NICKNAME_MAX_CHARS as u32,
            room_name_chars: ROOM_NAME_MAX_CHARS as u32,
            message_chars: MESSAGE_MAX_CHARS as u32,
            history: HISTORY_LEN as u32,
            room_limit_min: ROOM_LIMIT_MIN,
            room_limit_max: ROOM_LIMIT_MAX,
            frame_bytes: 64 * 1024,
            message_burst: 10,
            message_interval_ms: 1000,
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, an unknown `type`, a missing, extra or wrongly typed field.
    BadRequest,
    NotJoined,
    AlreadyJoined,
    RoomNotFound,
    RoomFull,
    RoomNameInvalid,
    RoomNameTaken,
    LimitInvalid,
    NicknameInvalid,
    NicknameReserved,
    NicknameTaken,
    SessionInvalid,
    MessageEmpty,
    TooLong,
    RateLimited,
    /// Flooding: no messages for a while (`retry_after_ms`).
    Muted,
    /// The room is in slow mode: one message per so many seconds (`retry_after_ms`).
    SlowMode,
    /// The same message again and again.
    Spam,
    TooManyLinks,
    /// The room refuses messages with profanity.
    Profanity,
    /// The room is locked: nobody new can join.
    RoomLocked,
    /// The address is banned (HTTP answers; sockets are closed with 4106).
    Banned,
    PermissionDenied,
    /// The server is shutting down or overloaded: try again shortly.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status a refusal with this code is answered with, wherever it is answered over
    /// HTTP (server functions, the upgrade, pages): the one place this is decided.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::SessionInvalid => 400,
            Self::Banned | Self::PermissionDenied => 403,
            Self::RoomNotFound | Self::NotJoined => 404,
            Self::RateLimited | Self::Muted | Self::SlowMode => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
            _ => 422,
        }
    }
}

/// Application WebSocket close codes.
///
/// Codes 4000–4099 mean "reconnect (with backoff)"; 4100–4199 are terminal: reconnecting would
/// fail the same way, so the client shows the reason instead. Of the standard codes, 1001 (server
/// going away), 1005 (no code given), 1006 (dropped) and 1011–1014 are worth a reconnect; the rest
/// are terminal.
pub mod close {
    /// The server is shutting down (standard "going away").
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame on the JSON protocol (standard "unsupported data").
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text frame that is not UTF-8 (standard "invalid payload").
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame or message over the size cap (standard "message too big").
    pub const TOO_BIG: u16 = 1009;

    /// The client did not read fast enough and its outbox filled up.
    pub const SLOW: u16 = 4000;
    /// No pong in time: the connection looked dead.
    pub const HEARTBEAT_TIMEOUT: u16 = 4001;

    /// Too many invalid frames in a row.
    pub const PROTOCOL_VIOLATION: u16 = 4100;
    /// The client asked for a protocol version this server does not speak (reload the page).
    pub const UNSUPPORTED_VERSION: u16 = 4101;
    /// The same tab session joined the same room under the same nickname on another connection.
    pub const REPLACED: u16 = 4102;
    /// Connected but never joined a room or watched the directory in time.
    pub const IDLE: u16 = 4103;
    /// Frames arrived far faster than any person types (including control frames), or messages
    /// kept coming while muted for flooding.
    pub const FLOOD: u16 = 4104;
    /// A moderator removed this member from the room (the reason says why).
    pub const KICKED: u16 = 4105;
    /// The address was banned (the reason says why and until when).
    pub const BANNED: u16 = 4106;
    /// A moderator closed the room.
    pub const ROOM_CLOSED: u16 = 4107;

    /// Whether a client should reconnect after the server closed with `code`.
    pub fn should_reconnect(code: u16) -> bool {
        matches!(code, 1001 | 1005 | 1006 | 1011..=1014 | 4000..=4099)
    }
}

/// Room slugs are the `/r/<slug>` path segment: 1–64 of `[a-z0-9-]`, no leading or trailing `-`.
pub fn is_valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes.iter().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// The room every server has and never expires.
pub const LOBBY_SLUG: &str = "lobby";

mod decode;
#[cfg(test)]
mod tests;
