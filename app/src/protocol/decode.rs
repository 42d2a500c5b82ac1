//! Reading server frames in the browser, with Burner's own small JSON reader ([`crate::json`])
//! instead of serde_json, whose parsing code, copied for each type it read, was an eighth of the
//! bundle. The `type` is read first, then the frame is read again straight into that message's
//! fields. The golden tests check that it reads back every message the server writes.

use super::{
    ChatMessage, Continuity, ErrorCode, Limits, Member, Profanity, RoomSettings, RoomSummary, ServerMsg, Source,
};
use crate::json::{self, read_by_name, read_fields};

read_by_name!(Continuity, ErrorCode, Profanity, Source);
read_fields!(Limits {
    nickname_chars,
    room_name_chars,
    message_chars,
    history,
    room_limit_min,
    room_limit_max,
    frame_bytes,
    message_burst,
    message_interval_ms
});
read_fields!(RoomSummary { slug, name, members, limit, one_way });
read_fields!(RoomSettings { profanity, slow_mode_secs, locked });
read_fields!(Member { id, nickname });
read_fields!(ChatMessage { seq, at, author, text; mentions, source, edited });

/// The frame's `type`, whatever else it holds.
fn kind(text: &str) -> Result<String, json::Error> {
    let mut kind = None;
    let mut reader = json::Reader::new(text);
    reader.object(&mut |reader, name| {
        if name == "type" {
            kind = Some(reader.string()?);
        } else {
            reader.skip()?;
        }
        Ok(())
    })?;
    kind.ok_or_else(|| reader.error("field `type`"))
}

struct Welcome {
    protocol: u32,
    limits: Limits,
}
read_fields!(Welcome { protocol, limits });

struct Directory {
    rooms: Vec<RoomSummary>,
}
read_fields!(Directory { rooms });

struct DirectoryChanged {
    updated: Vec<RoomSummary>,
    removed: Vec<String>,
}
read_fields!(DirectoryChanged { updated, removed });

struct Joined {
    room: RoomSummary,
    settings: RoomSettings,
    you: Member,
    members: Vec<Member>,
    epoch: String,
    continuity: Continuity,
    history: Vec<ChatMessage>,
}
read_fields!(Joined { room, settings, you, members, epoch, continuity, history });

struct Left {
    room: String,
}
read_fields!(Left { room });

/// Also reads `member_typing`, which has no count: one reader is less code than two.
struct MemberChange {
    member: Member,
    count: u32,
}
read_fields!(MemberChange { member; count });

struct MessagePosted {
    message: ChatMessage,
}
read_fields!(MessagePosted { message });

struct MessageAccepted {
    client_ref: Option<String>,
    seq: u64,
    at: i64,
}
read_fields!(MessageAccepted { seq, at; client_ref });

struct MemberPage {
    members: Vec<Member>,
    more: bool,
}
read_fields!(MemberPage { members, more });

struct Seq {
    seq: u64,
}
read_fields!(Seq { seq });

struct Edited {
    seq: u64,
    text: String,
}
read_fields!(Edited { seq, text });

struct Settings {
    settings: RoomSettings,
}
read_fields!(Settings { settings });

struct Refusal {
    code: ErrorCode,
    message: String,
    client_ref: Option<String>,
    retry_after_ms: Option<u64>,
}
read_fields!(Refusal { code, message; client_ref, retry_after_ms });

#[cfg(any(feature = "ssr", feature = "console"))]
struct Snapshot {
    snapshot: super::ModSnapshot,
}
#[cfg(any(feature = "ssr", feature = "console"))]
read_fields!(Snapshot { snapshot });

/// The moderators' snapshot is read with serde: only the console's bundle reads it, and its
/// many types are not worth a second reader.
#[cfg(any(feature = "ssr", feature = "console"))]
impl json::Read for super::ModSnapshot {
    fn read(reader: &mut json::Reader<'_>) -> Result<Self, json::Error> {
        let text = reader.raw()?;
        serde_json::from_str(text).map_err(|_| reader.error("a moderator snapshot"))
    }
}

impl ServerMsg {
    /// Parses one frame from the server. Fields a newer server adds are ignored.
    pub fn from_json(text: &str) -> Result<ServerMsg, json::Error> {
        use json::from_str as read;
        Ok(match kind(text)?.as_str() {
            "welcome" => {
                let Welcome { protocol, limits } = read(text)?;
                ServerMsg::Welcome { protocol, limits }
            }
            "directory" => ServerMsg::Directory { rooms: read::<Directory>(text)?.rooms },
            "directory_changed" => {
                let DirectoryChanged { updated, removed } = read(text)?;
                ServerMsg::DirectoryChanged { updated, removed }
            }
            "joined" => {
                let Joined { room, settings, you, members, epoch, continuity, history } = read(text)?;
                ServerMsg::Joined { room, settings, you, members, epoch, continuity, history }
            }
            "left" => ServerMsg::Left { room: read::<Left>(text)?.room },
            "member_joined" => {
                let MemberChange { member, count } = read(text)?;
                ServerMsg::MemberJoined { member, count }
            }
            "member_left" => {
                let MemberChange { member, count } = read(text)?;
                ServerMsg::MemberLeft { member, count }
            }
            "message_posted" => ServerMsg::MessagePosted { message: read::<MessagePosted>(text)?.message },
            "member_typing" => ServerMsg::MemberTyping { member: read::<MemberChange>(text)?.member },
            "message_accepted" => {
                let MessageAccepted { client_ref, seq, at } = read(text)?;
                ServerMsg::MessageAccepted { client_ref, seq, at }
            }
            "message_deleted" => ServerMsg::MessageDeleted { seq: read::<Seq>(text)?.seq },
            "message_edited" => {
                let Edited { seq, text } = read(text)?;
                ServerMsg::MessageEdited { seq, text }
            }
            "room_settings_changed" => ServerMsg::RoomSettingsChanged { settings: read::<Settings>(text)?.settings },
            "members" => {
                let MemberPage { members, more } = read(text)?;
                ServerMsg::Members { members, more }
            }
            "reported" => ServerMsg::Reported { seq: read::<Seq>(text)?.seq },
            // Only the console reads these; the visitors' bundle is spared the code.
            #[cfg(any(feature = "ssr", feature = "console"))]
            "mod_snapshot" => ServerMsg::ModSnapshot { snapshot: read::<Snapshot>(text)?.snapshot },
            "error" => {
                let Refusal { code, message, client_ref, retry_after_ms } = read(text)?;
                ServerMsg::Error { code, message, client_ref, retry_after_ms }
            }
            _ => return Err(json::Reader::new(text).error("a known message `type`")),
        })
    }
}
