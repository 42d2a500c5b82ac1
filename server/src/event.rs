//! `RoomEvent`: something that happened in a room, as a typed value with its place in the
//! room's history. Rooms decide events, the broker carries them, and each node turns them into
//! frames for its own members (`hub::local`): encoded once per node, with the audience decided
//! there.

use crate::broker::Position;
use app::protocol::{ChatMessage, Member, RoomSettings, ServerMsg};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEvent {
    /// The room's slug.
    pub room: Arc<str>,
    /// A posted message's own place; for any other event, where the history stood.
    pub position: Position,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Posted {
        message: ChatMessage,
        author: AuthorTab,
    },
    Joined {
        member: Member,
        count: u32,
    },
    /// Left by itself: its connection went, it asked to leave, or it could not keep up.
    Left {
        member: Member,
        count: u32,
    },
    /// Removed by a moderator: its connection is told why and closed.
    Kicked {
        member: Member,
        count: u32,
        reason: Arc<str>,
    },
    /// A member is writing: shown to the others for a few seconds, never stored.
    Typing {
        member: Member,
        author: AuthorTab,
    },
    Deleted {
        seq: u64,
    },
    /// Its author changed it (beyond a bridge).
    Edited {
        seq: u64,
        text: Arc<str>,
    },
    SettingsChanged {
        settings: RoomSettings,
    },
    /// The room is gone for good: every member is let go with `reason`.
    Closed {
        reason: Arc<str>,
    },
}

/// Who wrote a message (or is writing one), as far as deciding who sees it: the author's tab session, and whether
/// the author is shadow-muted. (Whether the room is one-way, each node knows of the room.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorTab {
    pub session: Arc<str>,
    pub shadow_muted: bool,
}

impl RoomEvent {
    /// What members are shown of it; `None` for an event that closes connections instead.
    pub fn to_message(&self) -> Option<ServerMsg> {
        Some(match &self.kind {
            EventKind::Posted { message, .. } => ServerMsg::MessagePosted { message: message.clone() },
            EventKind::Joined { member, count } => ServerMsg::MemberJoined { member: member.clone(), count: *count },
            EventKind::Left { member, count } | EventKind::Kicked { member, count, .. } => {
                ServerMsg::MemberLeft { member: member.clone(), count: *count }
            }
            EventKind::Typing { member, .. } => ServerMsg::MemberTyping { member: member.clone() },
            EventKind::Deleted { seq } => ServerMsg::MessageDeleted { seq: *seq },
            EventKind::Edited { seq, text } => ServerMsg::MessageEdited { seq: *seq, text: text.to_string() },
            EventKind::SettingsChanged { settings } => ServerMsg::RoomSettingsChanged { settings: settings.clone() },
            EventKind::Closed { .. } => return None,
        })
    }
}
