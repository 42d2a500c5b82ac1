//! What a client may ask for, one file per request (`join`, `send`, `report`, …): each parses
//! nothing (the protocol did), applies the request to the hub or moderation, and answers through
//! the connection's outbox. This file only dispatches.

mod console;
mod directory;
mod join;
mod members;
mod report;
mod send;
mod shared;
mod typing;

use super::session::{Flow, Session};
use app::protocol::ClientMsg;

impl Session {
    /// Answers one request.
    pub(super) fn on_message(&mut self, message: ClientMsg) -> Flow {
        match message {
            ClientMsg::Join { .. } | ClientMsg::SendMessage { .. } if self.parts.hub.cluster().is_some() => {
                Flow::Shared(Box::new(message))
            }
            ClientMsg::WatchDirectory {} => directory::watch(self),
            ClientMsg::UnwatchDirectory {} => directory::unwatch(self),
            ClientMsg::Join { room, nickname, session, resume } => join::join(self, &room, &nickname, &session, resume),
            ClientMsg::Leave {} => join::leave(self),
            ClientMsg::SendMessage { text, client_ref } => send::send(self, &text, client_ref),
            ClientMsg::Typing {} => typing::typing(self),
            ClientMsg::ListMembers { before } => members::list(self, before),
            ClientMsg::Report { seq, reason } => report::report(self, seq, reason),
            ClientMsg::ModWatch {} => console::watch(self),
        }
    }
}

impl Session {
    /// Answers a request that Redis decides (cluster mode).
    pub(super) async fn on_shared(&mut self, message: Box<ClientMsg>) -> Flow {
        match *message {
            ClientMsg::Join { room, nickname, session, resume } => {
                shared::join(self, &room, &nickname, &session, resume).await
            }
            ClientMsg::SendMessage { text, client_ref } => shared::send(self, &text, client_ref).await,
            other => self.on_message(other),
        }
    }
}

/// A session on a real server state, without a socket: requests go in, frames come out of
/// its outbox.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::{
        config::Config,
        frame::Frame,
        outbox::{ConnHandle, Outbox},
        state::AppState,
        visitor::Visitor,
    };
    use app::protocol::ServerMsg;
    use std::net::IpAddr;

    pub struct TestSession {
        pub session: Session,
        pub outbox: Outbox,
        pub state: AppState,
        _data: tempfile::TempDir,
    }

    pub async fn state(change: impl FnOnce(&mut Config)) -> (AppState, tempfile::TempDir) {
        let data = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config::defaults();
        config.data_dir = data.path().to_owned();
        config.mod_token = Some("request-test-token".into());
        change(&mut config);
        (AppState::open(config).await.expect("state"), data)
    }

    pub fn session_on(state: &AppState, id: u64, ip: IpAddr, moderator: Option<String>) -> (Session, Outbox) {
        let (handle, outbox) = ConnHandle::new(id, 256);
        let ip_hash = state.moderation.hasher.hash(ip).into();
        (
            Session::new(
                state,
                Visitor { ip, ip_hash, moderator: moderator.map(String::into_boxed_str), ban: None },
                handle,
            ),
            outbox,
        )
    }

    impl TestSession {
        pub async fn new(change: impl FnOnce(&mut Config)) -> Self {
            let (state, data) = state(change).await;
            let (session, outbox) = session_on(&state, 1, "192.0.2.10".parse().expect("ip"), None);
            Self { session, outbox, state, _data: data }
        }

        /// Another connection to the same server, from `ip`.
        pub fn another(&self, id: u64, ip: &str) -> (Session, Outbox) {
            session_on(&self.state, id, ip.parse().expect("ip"), None)
        }

        /// This session joins the lobby as `me` and another (from 192.0.2.20) as `other`, and
        /// both outboxes are emptied: the start of every test between two members.
        pub fn joined_with(&mut self, me: &str, other: &str) -> (Session, Outbox) {
            let (mut second, outbox) = self.another(2, "192.0.2.20");
            self.ask(join(me));
            second.on_message(join(other));
            self.frames();
            drain(&outbox);
            (second, outbox)
        }

        /// Sends a request; the flow it led to.
        pub fn ask(&mut self, message: ClientMsg) -> Flow {
            self.session.on_message(message)
        }

        pub fn frames(&self) -> Vec<ServerMsg> {
            drain(&self.outbox)
        }
    }

    pub fn drain(outbox: &Outbox) -> Vec<ServerMsg> {
        let mut frames = Vec::new();
        while let Some(frame) = outbox.pop() {
            frames.push(parse(&frame));
        }
        frames
    }

    fn parse(frame: &Frame) -> ServerMsg {
        serde_json::from_str(frame).expect("server frames parse")
    }

    pub fn join(nickname: &str) -> ClientMsg {
        ClientMsg::Join {
            room: app::protocol::LOBBY_SLUG.into(),
            nickname: nickname.into(),
            session: format!("request-test-{nickname}-0123456789"),
            resume: None,
        }
    }
}
