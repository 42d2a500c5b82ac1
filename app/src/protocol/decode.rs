//! Reading server frames without serde's buffering of internally tagged enums: the `type` is
//! read first, then the frame is parsed again straight into that message's fields. In the
//! browser this keeps serde's generic "content" machinery (tens of kilobytes of wasm) out of the
//! bundle. The golden tests check that it reads back every message the server writes.

use super::{ChatMessage, Continuity, ErrorCode, Limits, Member, RoomSettings, RoomSummary, ServerMsg};
use serde::{Deserialize, de::Error as _};
use std::borrow::Cow;

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Welcome {
    protocol: u32,
    limits: Limits,
}

#[derive(Deserialize)]
struct Directory {
    rooms: Vec<RoomSummary>,
}

#[derive(Deserialize)]
struct DirectoryChanged {
    updated: Vec<RoomSummary>,
    removed: Vec<String>,
}

#[derive(Deserialize)]
struct Joined {
    room: RoomSummary,
    settings: RoomSettings,
    you: Member,
    members: Vec<Member>,
    epoch: String,
    continuity: Continuity,
    history: Vec<ChatMessage>,
}

#[derive(Deserialize)]
struct Left {
    room: String,
}

/// Also reads `member_typing`, which has no count: one reader is less code than two.
#[derive(Deserialize)]
struct MemberChange {
    member: Member,
    #[serde(default)]
    count: u32,
}

#[derive(Deserialize)]
struct MessagePosted {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct MessageAccepted {
    client_ref: Option<String>,
    seq: u64,
    at: i64,
}

#[derive(Deserialize)]
struct Seq {
    seq: u64,
}

#[derive(Deserialize)]
struct Edited {
    seq: u64,
    text: String,
}

#[derive(Deserialize)]
struct Settings {
    settings: RoomSettings,
}

#[cfg(any(feature = "ssr", feature = "console"))]
#[derive(Deserialize)]
struct Snapshot {
    snapshot: super::ModSnapshot,
}

#[derive(Deserialize)]
struct Refusal {
    code: ErrorCode,
    message: String,
    client_ref: Option<String>,
    retry_after_ms: Option<u64>,
}

impl ServerMsg {
    /// Parses one frame from the server. Fields a newer server adds are ignored.
    pub fn from_json(text: &str) -> Result<ServerMsg, serde_json::Error> {
        let tag: Tag<'_> = serde_json::from_str(text)?;
        Ok(match tag.kind.as_ref() {
            "welcome" => {
                let Welcome { protocol, limits } = serde_json::from_str(text)?;
                ServerMsg::Welcome { protocol, limits }
            }
            "directory" => {
                let Directory { rooms } = serde_json::from_str(text)?;
                ServerMsg::Directory { rooms }
            }
            "directory_changed" => {
                let DirectoryChanged { updated, removed } = serde_json::from_str(text)?;
                ServerMsg::DirectoryChanged { updated, removed }
            }
            "joined" => {
                let Joined { room, settings, you, members, epoch, continuity, history } = serde_json::from_str(text)?;
                ServerMsg::Joined { room, settings, you, members, epoch, continuity, history }
            }
            "left" => {
                let Left { room } = serde_json::from_str(text)?;
                ServerMsg::Left { room }
            }
            "member_joined" => {
                let MemberChange { member, count } = serde_json::from_str(text)?;
                ServerMsg::MemberJoined { member, count }
            }
            "member_left" => {
                let MemberChange { member, count } = serde_json::from_str(text)?;
                ServerMsg::MemberLeft { member, count }
            }
            "message_posted" => {
                let MessagePosted { message } = serde_json::from_str(text)?;
                ServerMsg::MessagePosted { message }
            }
            "member_typing" => ServerMsg::MemberTyping { member: serde_json::from_str::<MemberChange>(text)?.member },
            "message_accepted" => {
                let MessageAccepted { client_ref, seq, at } = serde_json::from_str(text)?;
                ServerMsg::MessageAccepted { client_ref, seq, at }
            }
            "message_deleted" => ServerMsg::MessageDeleted { seq: serde_json::from_str::<Seq>(text)?.seq },
            "message_edited" => {
                let Edited { seq, text } = serde_json::from_str(text)?;
                ServerMsg::MessageEdited { seq, text }
            }
            "room_settings_changed" => {
                ServerMsg::RoomSettingsChanged { settings: serde_json::from_str::<Settings>(text)?.settings }
            }
            "reported" => ServerMsg::Reported { seq: serde_json::from_str::<Seq>(text)?.seq },
            // Only the console reads these; the visitors' bundle is spared the code.
            #[cfg(any(feature = "ssr", feature = "console"))]
            "mod_snapshot" => ServerMsg::ModSnapshot { snapshot: serde_json::from_str::<Snapshot>(text)?.snapshot },
            "error" => {
                let Refusal { code, message, client_ref, retry_after_ms } = serde_json::from_str(text)?;
                ServerMsg::Error { code, message, client_ref, retry_after_ms }
            }
            other => return Err(serde_json::Error::custom(format!("unknown message type `{other}`"))),
        })
    }
}
