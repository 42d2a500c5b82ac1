//! What moderators do to a room: remove members, shadow-mute them, delete messages, lock the
//! room, slow it down, close it; and what they see of it.

use super::{Member, Room, Stored};
use crate::event::EventKind;
use app::protocol::{self, ModMember, ModMessage, ModRoom, RoomSettings};
use std::{net::IpAddr, sync::Arc};

impl Room {
    /// Removes a member and tells their connection why; `None` if there is no such member.
    pub fn kick(&self, member_id: u64, reason: &str) -> Option<protocol::Member> {
        let mut state = self.lock();
        let at = state.members.iter().position(|m| m.id == member_id)?;
        let gone = state.members.remove(at);
        let public = gone.public();
        let count = state.members.len() as u32;
        self.publish(&mut state, EventKind::Kicked { member: public.clone(), count, reason: reason.into() });
        Some(public)
    }

    /// The address and its hash of a member, for a ban.
    pub fn member_address(&self, member_id: u64) -> Option<(IpAddr, Arc<str>)> {
        self.lock().members.iter().find(|m| m.id == member_id).map(|m| (m.ip, m.ip_hash.clone()))
    }

    /// Shadow-mutes (or unmutes) a member; `None` if there is no such member.
    pub fn shadow_mute(&self, member_id: u64, muted: bool) -> Option<protocol::Member> {
        let mut state = self.lock();
        let member = state.members.iter().find(|m| m.id == member_id)?;
        let (public, hash) = (member.public(), member.ip_hash.clone());
        // By address: the member's other tabs and nicknames in this room, now and later.
        for member in state.members.iter_mut().filter(|m| m.ip_hash == hash) {
            member.shadow_muted = muted;
        }
        if muted {
            state.muted_addresses.insert(hash);
        } else {
            state.muted_addresses.remove(&hash);
        }
        Some(public)
    }

    /// Removes a message from the history and from every member's screen.
    pub fn delete_message(&self, seq: u64) -> Option<protocol::Member> {
        let mut state = self.lock();
        let at = state.history.iter().position(|s| s.message.seq == seq)?;
        let removed = state.history.remove(at)?;
        self.publish(&mut state, EventKind::Deleted { seq });
        Some(removed.message.author)
    }

    /// Changes a message's text (its author edited it beyond a bridge) in the history and on
    /// every member's screen; the text it had, or `None` if the history no longer holds it.
    pub fn edit_message(&self, seq: u64, text: &str) -> Option<String> {
        let mut state = self.lock();
        let stored = state.history.iter_mut().find(|s| s.message.seq == seq)?;
        let before = std::mem::replace(&mut stored.message.text, text.to_owned());
        stored.message.edited = true;
        self.publish(&mut state, EventKind::Edited { seq, text: text.into() });
        Some(before)
    }

    /// Changes the room's settings and tells its members.
    pub fn update_settings(&self, change: impl FnOnce(&mut RoomSettings)) -> RoomSettings {
        let mut state = self.lock();
        change(&mut state.settings);
        let settings = state.settings.clone();
        self.publish(&mut state, EventKind::SettingsChanged { settings: settings.clone() });
        settings
    }

    /// Closes the room for good: every member is let go with `reason`, and joins fail.
    pub(in crate::hub) fn close(&self, reason: &str) {
        let mut state = self.lock();
        state.closed = true;
        state.members.clear();
        self.publish(&mut state, EventKind::Closed { reason: reason.into() });
    }

    /// The room as the moderator console shows it.
    pub fn mod_view(&self) -> ModRoom {
        let state = self.lock();
        ModRoom {
            room: self.summary(),
            settings: state.settings.clone(),
            members: state.members.iter().map(mod_member).collect(),
            recent: state.history.iter().map(mod_message).collect(),
        }
    }

    /// The last `n` messages as the server saw them, for a report.
    pub fn report_snapshot(&self, n: usize) -> Vec<ModMessage> {
        let state = self.lock();
        let skip = state.history.len().saturating_sub(n);
        state.history.iter().skip(skip).map(mod_message).collect()
    }

    /// Whether the message exists and the reporter could see it.
    pub fn has_message_for(&self, seq: u64, session: &str) -> bool {
        let state = self.lock();
        state.history.iter().any(|s| s.message.seq == seq && self.visible_to(s, session))
    }
}

fn mod_member(member: &Member) -> ModMember {
    ModMember {
        id: member.id,
        nickname: member.name.display().to_owned(),
        ip_hash: member.ip_hash.to_string(),
        since: member.joined_at,
        sent: member.sent,
        shadow_muted: member.shadow_muted,
    }
}

fn mod_message(stored: &Stored) -> ModMessage {
    ModMessage {
        seq: stored.message.seq,
        at: stored.message.at,
        author: stored.message.author.clone(),
        author_hash: stored.author_hash.to_string(),
        text: stored.message.text.clone(),
        shadow_muted: stored.shadow_muted,
        source: stored.message.source,
    }
}
