//! `typing`: the member is writing. Passed on to the room at most once per
//! [`TYPING_MIN_GAP`] per connection; more often is dropped without an answer (a client that
//! follows the protocol never sends that often, and a refusal would only be more traffic).

use crate::{
    error::Refusal,
    ws::session::{Flow, Session},
};
use app::protocol::TYPING_EVERY_MS;
use std::time::Duration;
use tokio::time::Instant;

/// A little under the protocol's interval, so a client on time is never dropped for jitter.
const TYPING_MIN_GAP: Duration = Duration::from_millis(TYPING_EVERY_MS * 5 / 6);

pub(super) fn typing(session: &mut Session) -> Flow {
    let Some(membership) = &session.membership else {
        session.refuse(&Refusal::not_joined(), None);
        return Flow::Continue;
    };
    let now = Instant::now();
    if session.last_typing.is_some_and(|at| now.duration_since(at) < TYPING_MIN_GAP) {
        return Flow::Continue;
    }
    session.last_typing = Some(now);
    membership.typing();
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestSession, drain};
    use app::protocol::{ClientMsg, ErrorCode, ServerMsg};

    #[tokio::test]
    async fn the_others_see_a_member_typing_and_the_typist_does_not() {
        let mut test = TestSession::new(|_| {}).await;
        let (_other, other_outbox) = test.joined_with("alice", "bob");
        test.ask(ClientMsg::Typing {});
        assert!(
            matches!(drain(&other_outbox).as_slice(), [ServerMsg::MemberTyping { member }] if member.nickname == "alice")
        );
        assert!(test.frames().is_empty(), "not echoed to the typist");
    }

    #[tokio::test]
    async fn typing_more_often_than_the_protocol_allows_is_dropped() {
        let mut test = TestSession::new(|_| {}).await;
        let (_other, other_outbox) = test.joined_with("alice", "bob");
        for _ in 0..20 {
            test.ask(ClientMsg::Typing {});
        }
        assert_eq!(drain(&other_outbox).len(), 1, "a burst shows once");
        // As if the protocol's interval had passed.
        let interval = std::time::Duration::from_millis(app::protocol::TYPING_EVERY_MS);
        test.session.last_typing = test.session.last_typing.and_then(|at| at.checked_sub(interval));
        test.ask(ClientMsg::Typing {});
        assert_eq!(drain(&other_outbox).len(), 1, "on time again: shown again");
        assert!(test.frames().iter().all(|m| !matches!(m, ServerMsg::Error { .. })), "never refused");
    }

    #[tokio::test]
    async fn typing_outside_a_room_is_refused() {
        let mut test = TestSession::new(|_| {}).await;
        test.ask(ClientMsg::Typing {});
        assert!(matches!(test.frames().as_slice(), [ServerMsg::Error { code: ErrorCode::NotJoined, .. }]));
    }

    #[tokio::test]
    async fn a_shadow_muted_member_is_never_seen_typing() {
        let mut test = TestSession::new(|_| {}).await;
        let (_other, other_outbox) = test.joined_with("alice", "bob");
        let lobby = test.state.hub.room(app::protocol::LOBBY_SLUG).expect("lobby");
        let alice = test.session.membership.as_ref().expect("joined").member_id;
        lobby.shadow_mute(alice, true).expect("muted");
        drain(&other_outbox);
        test.ask(ClientMsg::Typing {});
        assert!(drain(&other_outbox).is_empty());
    }

    #[tokio::test]
    async fn a_message_ends_a_bout_of_typing_so_the_next_shows_at_once() {
        let mut test = TestSession::new(|_| {}).await;
        let (_other, other_outbox) = test.joined_with("alice", "bob");
        test.ask(ClientMsg::Typing {});
        test.ask(ClientMsg::SendMessage { text: "hi".into(), client_ref: None });
        drain(&other_outbox);
        test.ask(ClientMsg::Typing {});
        assert!(matches!(drain(&other_outbox).as_slice(), [ServerMsg::MemberTyping { .. }]));
    }
}
