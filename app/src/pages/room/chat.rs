//! A room as the browser sees it: membership phase, the log, members, drafts waiting to be
//! sent, and what each server message does to them. The socket and its reconnects live in
//! `ws_client`; this decides what to (re)send when the connection is up.

// On the server nothing drives a room (no socket, no events): only the browser uses most of this.
#![cfg_attr(not(feature = "hydrate"), allow(dead_code))]

use crate::{
    api::RoomPreview,
    browser,
    components::LinkStatus,
    protocol::{
        ChatMessage, ClientMsg, Continuity, ErrorCode, Member, Resume, RoomSettings, RoomSummary, ServerMsg,
        TYPING_EVERY_MS, TYPING_SHOWN_MS,
    },
    rules,
};
use leptos::prelude::*;

/// The most log entries a page keeps; older ones scroll away for good.
const MAX_ENTRIES: usize = 500;

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// Not in the room: the join form.
    Lobby,
    Joining,
    Joined,
    /// The server ended the connection for good; the sentence says why.
    Ended(String),
}

/// One line of the log. `id` is this page's own numbering: sequence numbers start again when a
/// room restarts, and the log keeps what it showed before.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: u64,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EntryKind {
    Message(ChatMessage),
    /// Your own message in a one-way room: posted, acknowledged, never shown back.
    Sent {
        seq: u64,
        at: i64,
    },
    Notice(String),
    /// Written here, not yet acknowledged (or waiting for the connection): it stays in the log
    /// where it was written until the server takes it.
    Pending(Pending),
}

/// Someone else writing a message, shown until `until` (ms since the epoch).
#[derive(Clone, Debug, PartialEq)]
pub struct Typist {
    pub id: u64,
    pub nickname: String,
    pub until: f64,
}

/// A message written here and not yet acknowledged by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub client_ref: String,
    pub text: String,
}

#[derive(Clone, Copy)]
pub struct Chat {
    pub room: RwSignal<RoomSummary>,
    pub settings: RwSignal<RoomSettings>,
    pub phase: RwSignal<Phase>,
    pub status: RwSignal<LinkStatus>,
    pub entries: RwSignal<Vec<Entry>>,
    pub members: RwSignal<Vec<Member>>,
    pub you: RwSignal<Option<Member>>,
    pub nickname: RwSignal<String>,
    pub join_error: RwSignal<Option<String>>,
    pub draft: RwSignal<String>,
    pub composer_error: RwSignal<Option<String>>,
    /// While rate-limited: when sending is allowed again (ms since the epoch).
    pub retry_at: RwSignal<Option<f64>>,
    /// The member list on narrow screens, where it is a panel over the log.
    pub show_members: RwSignal<bool>,
    /// Others writing right now (expired ones are dropped as time passes).
    pub typing: RwSignal<Vec<Typist>>,
    /// Messages from others that arrived while the tab was hidden.
    pub unread: RwSignal<u32>,
    /// The person asked for a desktop notification when mentioned (and the browser agreed).
    pub notify: RwSignal<bool>,
    /// The newest message from someone else, for screen readers (a polite live region).
    pub announced: RwSignal<String>,
    /// The visible height while the on-screen keyboard changes it (CSS pixels).
    pub viewport_height: RwSignal<Option<f64>>,
    /// When this page last told the room it is typing.
    typing_sent_at: StoredValue<f64>,
    /// Where our copy of the room ends, for a gap-free rejoin.
    resume: StoredValue<Option<Resume>>,
    /// True from `joined` until the connection drops: only then may messages go out.
    in_room: StoredValue<bool>,
    /// A resend of waiting messages is already scheduled.
    resend_scheduled: StoredValue<bool>,
    /// The waiting message on its way, not yet answered. One at a time: a burst of messages
    /// written offline would otherwise hit the rate limit all at once, and repeated refusals
    /// earn a mute.
    in_flight: StoredValue<Option<String>>,
    /// Makes this page's message references unique: the session outlives a reload, the
    /// counter does not.
    page_tag: StoredValue<String>,
    counter: StoredValue<u64>,
    /// The conversation's latest messages as it was left, for the lobby drawn after it.
    left_with: StoredValue<Vec<ChatMessage>>,
    #[cfg(feature = "hydrate")]
    socket: StoredValue<Option<crate::ws_client::Socket>, LocalStorage>,
}

impl Chat {
    pub fn new(preview: &RoomPreview) -> Self {
        Self {
            room: RwSignal::new(preview.room.clone()),
            settings: RwSignal::new(RoomSettings::default()),
            phase: RwSignal::new(Phase::Lobby),
            status: RwSignal::new(LinkStatus::Idle),
            entries: RwSignal::new(Vec::new()),
            members: RwSignal::new(Vec::new()),
            you: RwSignal::new(None),
            nickname: RwSignal::new(String::new()),
            join_error: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            composer_error: RwSignal::new(None),
            retry_at: RwSignal::new(None),
            show_members: RwSignal::new(false),
            typing: RwSignal::new(Vec::new()),
            unread: RwSignal::new(0),
            notify: RwSignal::new(false),
            announced: RwSignal::new(String::new()),
            viewport_height: RwSignal::new(None),
            typing_sent_at: StoredValue::new(f64::NEG_INFINITY),
            resume: StoredValue::new(None),
            in_room: StoredValue::new(false),
            resend_scheduled: StoredValue::new(false),
            in_flight: StoredValue::new(None),
            page_tag: StoredValue::new(String::new()),
            counter: StoredValue::new(0),
            left_with: StoredValue::new(Vec::new()),
            #[cfg(feature = "hydrate")]
            socket: StoredValue::new_local(None),
        }
    }

    fn next_id(&self) -> u64 {
        self.counter.update_value(|n| *n += 1);
        self.counter.get_value()
    }

    fn notice(&self, text: String) {
        self.push(EntryKind::Notice(text));
    }

    fn push(&self, kind: EntryKind) {
        let entry = Entry { id: self.next_id(), kind };
        let redrawn = self.next_id();
        self.entries.update(|entries| {
            entries.push(entry);
            if entries.len() > MAX_ENTRIES {
                entries.drain(..entries.len() - MAX_ENTRIES);
                // The new first entry starts a group now: a new id draws it again.
                entries[0].id = redrawn;
            }
        });
    }

    /// The join form was submitted.
    pub fn join(&self) {
        if self.nickname.with_untracked(|n| n.trim().is_empty()) {
            self.join_error.set(Some("Choose a nickname first.".into()));
            return;
        }
        self.join_error.set(None);
        self.phase.set(Phase::Joining);
        self.connect();
    }

    /// Reports a message to the moderators.
    pub fn report(&self, seq: u64) {
        self.send(&ClientMsg::Report { seq, reason: String::new() });
    }

    /// Asks for the members older than those listed (a big room's `joined` lists its newest).
    pub fn more_members(&self) {
        // Between a reconnect's `welcome` and its `joined` the list is the old one: a page asked
        // for from it would not fit the list `joined` brings.
        if !self.in_room.get_value() {
            return;
        }
        let you = self.you.with_untracked(|you| you.as_ref().map(|you| you.id));
        // The oldest listed other than you (the list is in id order): a tab that took its old place
        // back is listed however old it is, and the members between it and the others are the
        // ones not yet listed.
        let oldest = self.members.with_untracked(|m| m.iter().find(|m| Some(m.id) != you).map(|m| m.id));
        self.send(&ClientMsg::ListMembers { before: oldest.unwrap_or(u64::MAX) });
    }

    pub fn leave(&self) {
        self.send(&ClientMsg::Leave {});
        self.disconnect();
        self.phase.set(Phase::Lobby);
        self.members.set(Vec::new());
        self.you.set(None);
        self.resume.set_value(None);
        self.left_with.set_value(self.entries.with_untracked(|entries| latest_messages(entries)));
        self.entries.set(Vec::new());
        self.typing.set(Vec::new());
    }

    /// The conversation's latest messages (at most a room's history), oldest first: those still
    /// in the log, or those it held when it was left.
    pub fn latest_messages(&self) -> Vec<ChatMessage> {
        let latest = self.entries.with_untracked(|entries| latest_messages(entries));
        if latest.is_empty() { self.left_with.get_value() } else { latest }
    }

    /// The composer was submitted.
    pub fn submit(&self) {
        let text = self.draft.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        let chars = text.chars().count();
        if chars > rules::MESSAGE_MAX_CHARS {
            self.composer_error.set(Some(format!(
                "The message is {chars} characters long; the limit is {}.",
                rules::MESSAGE_MAX_CHARS
            )));
            return;
        }
        if self.retry_at.get_untracked().is_some_and(|at| at > browser::now_ms()) {
            return;
        }
        if self.page_tag.with_value(String::is_empty) {
            self.page_tag.set_value(browser::random_tag());
        }
        let client_ref = format!("{}-{}", self.page_tag.get_value(), self.next_id());
        let pending = Pending { client_ref, text };
        self.push(EntryKind::Pending(pending.clone()));
        self.draft.set(String::new());
        self.composer_error.set(None);
        // The message ends this bout of typing: the next keystroke starts another at once.
        self.typing_sent_at.set_value(f64::NEG_INFINITY);
        // Out of the room (offline, rejoining), it waits in the log and goes after the rejoin.
        self.send_next();
    }

    /// A keystroke in the composer: the room hears of it at most once every few seconds.
    pub fn typed(&self, writing: bool) {
        let now = browser::now_ms();
        if !writing || !self.in_room.get_value() || now - self.typing_sent_at.get_value() < TYPING_EVERY_MS as f64 {
            return;
        }
        // In a one-way room too: others see that someone writes, never what.
        if self.send(&ClientMsg::Typing {}) {
            self.typing_sent_at.set_value(now);
        }
    }

    /// Drops typists whose last sign of typing is too old.
    pub fn expire_typing(&self, now: f64) {
        if self.typing.with_untracked(|t| t.iter().any(|t| t.until <= now)) {
            self.typing.update(|t| t.retain(|t| t.until > now));
        }
    }

    fn stopped_typing(&self, member_id: u64) {
        if self.typing.with_untracked(|t| t.iter().any(|t| t.id == member_id)) {
            self.typing.update(|t| t.retain(|t| t.id != member_id));
        }
    }

    /// A message from someone else arrived: unread while hidden, a notification when it
    /// mentions you (if asked for), and a line for screen readers.
    fn arrived(&self, message: &ChatMessage) {
        let Some(you) = self.you.get_untracked() else { return };
        if message.author.id == you.id {
            return;
        }
        let mentioned = message.mentions.contains(&you.nickname);
        if browser::is_hidden() {
            self.unread.update(|n| *n += 1);
        }
        if mentioned && self.notify.get_untracked() && browser::is_hidden() {
            let room = self.room.with_untracked(|r| r.name.clone());
            browser::notify(&format!("{} mentioned you in {room}", message.author.nickname), &message.text);
        }
        let text: String = message.text.chars().take(300).collect();
        self.announced.set(format!("{}: {text}", message.author.nickname));
    }

    /// Sends the oldest waiting message, unless one is on its way, we are out of the room, or
    /// the server asked us to wait. The server recognises one it already posted (a resend
    /// after a reconnect) by its reference and only acknowledges it again.
    fn send_next(&self) {
        if !self.in_room.get_value()
            || self.in_flight.with_value(Option::is_some)
            || self.retry_at.get_untracked().is_some_and(|at| at > browser::now_ms())
        {
            return;
        }
        let next = self.entries.with_untracked(|entries| {
            entries.iter().find_map(|e| match &e.kind {
                EntryKind::Pending(pending) => Some(pending.clone()),
                _ => None,
            })
        });
        if let Some(Pending { client_ref, text }) = next {
            self.in_flight.set_value(Some(client_ref.clone()));
            self.send(&ClientMsg::SendMessage { text, client_ref: Some(client_ref) });
        }
    }

    /// The message on its way was answered; `client_ref` names it.
    fn answered(&self, client_ref: &str) {
        if self.in_flight.with_value(|f| f.as_deref() == Some(client_ref)) {
            self.in_flight.set_value(None);
        }
    }

    fn join_message(&self) -> ClientMsg {
        ClientMsg::Join {
            room: self.room.with_untracked(|r| r.slug.clone()),
            nickname: self.nickname.get_untracked().trim().to_owned(),
            session: browser::tab_session(),
            resume: self.resume.get_value(),
        }
    }

    /// What each server message does to the room.
    pub fn on_message(&self, message: ServerMsg) {
        match message {
            ServerMsg::Welcome { .. } => {
                self.in_room.set_value(false);
                if matches!(self.phase.get_untracked(), Phase::Joining | Phase::Joined) {
                    self.send(&self.join_message());
                }
            }
            ServerMsg::Joined { room, settings, you, members, epoch, continuity, history } => {
                self.settings.set(settings);
                self.typing.set(Vec::new());
                let rejoin = self.phase.get_untracked() == Phase::Joined;
                let previous = self.resume.get_value().filter(|r| r.epoch == epoch).map(|r| r.seq);
                let last_seq = history.last().map(|m| m.seq).max(previous);
                match continuity {
                    Continuity::Fresh => self.entries.set(Vec::new()),
                    Continuity::Resumed => {}
                    Continuity::Gap => self.notice("Some messages were missed while you were disconnected.".into()),
                    Continuity::Reset => {
                        if rejoin {
                            self.notice("The room restarted: earlier messages are gone.".into());
                        }
                    }
                }
                for message in history {
                    self.push(EntryKind::Message(message));
                }
                self.resume.set_value(Some(Resume { epoch, seq: last_seq.unwrap_or(0) }));
                browser::remember_nickname(&you.nickname);
                self.room.set(room);
                self.members.set(members);
                self.you.set(Some(you));
                self.phase.set(Phase::Joined);
                self.in_room.set_value(true);
                self.in_flight.set_value(None);
                self.send_next();
            }
            ServerMsg::Left { .. } => {
                self.in_room.set_value(false);
                self.phase.set(Phase::Lobby);
            }
            ServerMsg::MemberJoined { member, count } => {
                self.room.update(|r| r.members = count);
                self.notice(format!("{} joined", member.nickname));
                self.members.update(|m| m.push(member));
            }
            ServerMsg::MemberLeft { member, count } => {
                self.stopped_typing(member.id);
                self.room.update(|r| r.members = count);
                self.notice(format!("{} left", member.nickname));
                self.members.update(|m| m.retain(|x| x.id != member.id));
            }
            ServerMsg::MessagePosted { message } => {
                let seq = message.seq;
                if self.resume.with_value(|r| r.as_ref().is_none_or(|r| seq > r.seq)) {
                    self.advance(seq);
                    self.stopped_typing(message.author.id);
                    self.arrived(&message);
                    self.push(EntryKind::Message(message));
                }
            }
            ServerMsg::MemberTyping { member } => {
                let until = browser::now_ms() + TYPING_SHOWN_MS as f64;
                self.typing.update(|typing| match typing.iter_mut().find(|t| t.id == member.id) {
                    Some(typist) => typist.until = until,
                    None => typing.push(Typist { id: member.id, nickname: member.nickname, until }),
                });
            }
            ServerMsg::MessageAccepted { client_ref, seq, at } => {
                self.advance(seq);
                if let Some(client_ref) = &client_ref {
                    self.answered(client_ref);
                }
                let one_way = self.room.with_untracked(|r| r.one_way);
                // A new id: the log is keyed by id, and this line becomes another line.
                let receipt_id = self.next_id();
                let redrawn = self.next_id();
                self.entries.update(|entries| {
                    let waiting = client_ref.as_deref().and_then(|r| {
                        entries.iter().position(|e| matches!(&e.kind, EntryKind::Pending(p) if p.client_ref == r))
                    });
                    // A resend after a reconnect is acknowledged again with the same number.
                    let known =
                        entries.iter().rev().any(|e| matches!(e.kind, EntryKind::Sent { seq: s, .. } if s == seq));
                    match waiting {
                        // In a one-way room the receipt takes the message's place; elsewhere the
                        // message itself has arrived (it came before its receipt).
                        Some(at_index) if one_way && !known => {
                            entries[at_index] = Entry { id: receipt_id, kind: EntryKind::Sent { seq, at } }
                        }
                        Some(at_index) => {
                            remove_entry(entries, at_index, redrawn);
                        }
                        None => {}
                    }
                });
                self.send_next();
            }
            ServerMsg::Error { code, message, client_ref, retry_after_ms } => {
                self.on_error(code, message, client_ref, retry_after_ms)
            }
            ServerMsg::MessageDeleted { seq } => {
                let redrawn = self.next_id();
                self.entries.update(|entries| {
                    if let Some(at) =
                        entries.iter().position(|e| matches!(&e.kind, EntryKind::Message(m) if m.seq == seq))
                    {
                        remove_entry(entries, at, redrawn);
                    }
                });
            }
            ServerMsg::MessageEdited { seq, text } => {
                // A new entry id: the row is drawn again with the new text.
                let redrawn = self.next_id();
                self.entries.update(|entries| {
                    if let Some(entry) =
                        entries.iter_mut().find(|e| matches!(&e.kind, EntryKind::Message(m) if m.seq == seq))
                        && let EntryKind::Message(message) = &mut entry.kind
                    {
                        message.text = text;
                        message.edited = true;
                        entry.id = redrawn;
                    }
                });
            }
            ServerMsg::RoomSettingsChanged { settings } => {
                let before = self.settings.get_untracked();
                if settings.slow_mode_secs != before.slow_mode_secs {
                    self.notice(match settings.slow_mode_secs {
                        0 => "Slow mode is off.".to_owned(),
                        n => format!("Slow mode: one message every {n} seconds."),
                    });
                }
                if settings.locked != before.locked {
                    self.notice(
                        if settings.locked {
                            "The room is locked: nobody new can join."
                        } else {
                            "The room is open again."
                        }
                        .to_owned(),
                    );
                }
                self.settings.set(settings);
            }
            ServerMsg::Reported { .. } => self.notice("Thanks: the moderators will take a look.".to_owned()),
            // Older members, in join order (ids are handed out in join order); you may be among
            // them already.
            ServerMsg::Members { members: older, more } => {
                self.members.update(|members| {
                    for member in older {
                        let at = members.partition_point(|m| m.id < member.id);
                        if members.get(at).is_none_or(|m| m.id != member.id) {
                            members.insert(at, member);
                        }
                    }
                });
                // The button that asked goes away with the last page: the list's heading takes
                // the focus it had.
                if !more {
                    browser::pass_focus("more-members", "members-title");
                }
            }
            ServerMsg::Directory { .. } | ServerMsg::DirectoryChanged { .. } | ServerMsg::ModSnapshot { .. } => {}
        }
    }

    fn on_error(&self, code: ErrorCode, message: String, client_ref: Option<String>, retry_after_ms: Option<u64>) {
        if let Some(client_ref) = client_ref {
            return self.on_refused_message(code, message, &client_ref, retry_after_ms);
        }
        match self.phase.get_untracked() {
            // A rejoin after a reconnect was refused for now: try again when allowed.
            Phase::Joined if matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable) => {
                let wait = retry_after_ms.unwrap_or(2_000);
                self.composer_error.set(Some(format!("{message} Rejoining by itself…")));
                self.after(wait, |chat| {
                    if chat.phase.get_untracked() == Phase::Joined && !chat.in_room.get_value() {
                        chat.send(&chat.join_message());
                    }
                });
            }
            // The servers could not decide the join just now (cluster mode, Redis away): the
            // form stays as it is and the join goes again by itself.
            Phase::Joining if code == ErrorCode::Unavailable => {
                self.join_error.set(Some(message));
                self.after(retry_after_ms.unwrap_or(2_000), |chat| {
                    if chat.phase.get_untracked() == Phase::Joining && !chat.in_room.get_value() {
                        chat.send(&chat.join_message());
                    }
                });
            }
            Phase::Joining | Phase::Joined if is_join_refusal(code) || code == ErrorCode::RateLimited => {
                self.disconnect();
                self.in_room.set_value(false);
                self.phase.set(Phase::Lobby);
                self.join_error.set(Some(message));
            }
            _ => self.composer_error.set(Some(message)),
        }
    }

    /// A message of ours was refused. Nothing typed is lost: a message that may go later stays
    /// waiting; one that never can goes back into an empty composer, with the reason.
    fn on_refused_message(&self, code: ErrorCode, message: String, client_ref: &str, retry_after_ms: Option<u64>) {
        self.answered(client_ref);
        match code {
            // Sent while the connection was changing: it goes again after the rejoin.
            ErrorCode::NotJoined => {}
            // Allowed again later: it stays waiting and goes by itself, with a countdown meanwhile.
            // (`unavailable`: the cluster could not number it just now; nothing was posted.)
            ErrorCode::RateLimited | ErrorCode::Muted | ErrorCode::SlowMode | ErrorCode::Unavailable => {
                let wait = retry_after_ms.unwrap_or(1_000);
                self.retry_at.set(Some(browser::now_ms() + wait as f64));
                // The server's sentence names the wait as it was; the composer counts it down
                // after the reason.
                let reason = match code {
                    ErrorCode::RateLimited => "Slow down: you are sending messages too fast.".to_owned(),
                    ErrorCode::Muted => "You are muted for flooding.".to_owned(),
                    _ => message,
                };
                self.composer_error.set(Some(reason));
                if !self.resend_scheduled.get_value() {
                    self.resend_scheduled.set_value(true);
                    self.after(wait, |chat| {
                        chat.resend_scheduled.set_value(false);
                        // Timers are not exact: a wait that is over by now is over.
                        if chat.retry_at.get_untracked().is_some_and(|at| at <= browser::now_ms() + 100.0) {
                            chat.retry_at.set(None);
                            chat.composer_error.set(None);
                        }
                        chat.send_next();
                    });
                }
            }
            _ => {
                let mut refused = None;
                let redrawn = self.next_id();
                self.entries.update(|entries| {
                    let at = entries
                        .iter()
                        .position(|e| matches!(&e.kind, EntryKind::Pending(p) if p.client_ref == client_ref));
                    if let Some(EntryKind::Pending(pending)) = at.map(|at| remove_entry(entries, at, redrawn).kind) {
                        refused = Some(pending);
                    }
                });
                if let Some(refused) = refused
                    && self.draft.with_untracked(String::is_empty)
                {
                    self.draft.set(refused.text);
                }
                self.composer_error.set(Some(message));
                self.send_next();
            }
        }
    }

    fn advance(&self, seq: u64) {
        self.resume.update_value(|r| {
            if let Some(r) = r
                && seq > r.seq
            {
                r.seq = seq;
            }
        });
    }

    pub fn on_status(&self, status: LinkStatus) {
        if status != LinkStatus::Online {
            self.in_room.set_value(false);
        }
        if let LinkStatus::Closed(reason) = &status {
            self.forget_socket();
            if self.phase.get_untracked() != Phase::Lobby {
                self.phase.set(Phase::Ended(reason.clone()));
            }
        }
        self.status.set(status);
    }
}

/// Refusals that mean "you are not (or no longer) in this room".
fn is_join_refusal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RoomFull
            | ErrorCode::RoomNotFound
            | ErrorCode::NicknameTaken
            | ErrorCode::NicknameInvalid
            | ErrorCode::NicknameReserved
            | ErrorCode::SessionInvalid
            | ErrorCode::RoomLocked
    )
}

#[cfg(feature = "hydrate")]
impl Chat {
    fn connect(&self) {
        if self.socket.with_value(Option::is_some) {
            // Already connected: join now; otherwise `Welcome` will.
            self.send(&self.join_message());
            return;
        }
        let chat = *self;
        let room = self.room.with_untracked(|r| r.slug.clone());
        let socket = crate::ws_client::Socket::open(Some(room), move |_, event| match event {
            crate::ws_client::Event::Status(status) => chat.on_status(status),
            crate::ws_client::Event::Message(message) => chat.on_message(message),
        });
        self.socket.set_value(Some(socket));
    }

    pub fn disconnect(&self) {
        if let Some(socket) = self.socket.try_update_value(Option::take).flatten() {
            socket.stop();
        }
        self.status.set(LinkStatus::Idle);
    }

    fn send(&self, message: &ClientMsg) -> bool {
        self.socket.with_value(|s| s.as_ref().is_some_and(|s| s.send(message)))
    }

    /// The socket ended by itself; the next join opens a new one.
    fn forget_socket(&self) {
        let _ = self.socket.try_update_value(Option::take);
    }

    /// Runs `then` after `ms` milliseconds, unless the page is gone by then.
    fn after(&self, ms: u64, then: impl FnOnce(Chat) + 'static) {
        let chat = *self;
        set_timeout(
            move || {
                if !chat.phase.is_disposed() {
                    then(chat);
                }
            },
            std::time::Duration::from_millis(ms),
        );
    }
}

#[cfg(not(feature = "hydrate"))]
impl Chat {
    fn connect(&self) {}

    pub fn disconnect(&self) {}

    fn send(&self, _message: &ClientMsg) -> bool {
        false
    }

    fn forget_socket(&self) {}

    fn after(&self, _ms: u64, _then: impl FnOnce(Chat) + 'static) {}
}

/// Takes the entry at `at` out of the log. The entry below it may now start or continue a group
/// (a message that followed a draft or a deleted message): the log is keyed by id alone, so it
/// gets `redrawn` as its new id and is drawn again with its new shape.
fn remove_entry(entries: &mut Vec<Entry>, at: usize, redrawn: u64) -> Entry {
    let removed = entries.remove(at);
    if let Some(next) = entries.get_mut(at) {
        next.id = redrawn;
    }
    removed
}

/// The messages among `entries`, the latest `rules::HISTORY_LEN` of them, oldest first.
fn latest_messages(entries: &[Entry]) -> Vec<ChatMessage> {
    let mut latest: Vec<ChatMessage> = entries
        .iter()
        .rev()
        .filter_map(|entry| match &entry.kind {
            EntryKind::Message(message) => Some(message.clone()),
            _ => None,
        })
        .take(rules::HISTORY_LEN)
        .collect();
    latest.reverse();
    latest
}
