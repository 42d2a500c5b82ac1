//! `send_message`: a message from this socket, through the posting policy (`crate::policy`),
//! answered with the content-free receipt or the refusal, tied to the client's reference.

use crate::{
    error::Refusal,
    hub::Accepted,
    policy::Denied,
    ws::session::{Flow, Session},
};
use app::protocol::{ErrorCode, ServerMsg};
use tokio::time::Instant;

pub(super) fn send(session: &mut Session, text: &str, client_ref: Option<String>) -> Flow {
    let Some(membership) = &session.membership else {
        return session.refuse_and_strike(&Refusal::not_joined(), client_ref);
    };
    let posted = session.parts.policy.post(&mut session.sender, membership, text, client_ref.clone(), Instant::now());
    answer(session, posted.map(|posted| posted.accepted), client_ref)
}

/// Answers a message with its receipt or its refusal (in one process and in a cluster alike).
pub(super) fn answer(session: &mut Session, posted: Result<Accepted, Denied>, client_ref: Option<String>) -> Flow {
    match posted {
        Ok(accepted) => {
            // The message ends this bout of typing (the client starts the next one at once).
            session.last_typing = None;
            session.send(ServerMsg::MessageAccepted { client_ref, seq: accepted.seq, at: accepted.at });
        }
        Err(Denied::Refused(refusal)) => {
            if refusal.code() == ErrorCode::NotJoined {
                // Removed meanwhile (replaced by another connection of the same tab, or kicked).
                session.membership = None;
            }
            session.refuse(&refusal, client_ref);
        }
        Err(Denied::Disconnect(reason)) => return Flow::Close(reason),
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestSession, drain, join};
    use crate::ws::session::Flow;
    use app::protocol::{ClientMsg, ErrorCode, ServerMsg};

    fn say(text: &str, client_ref: &str) -> ClientMsg {
        ClientMsg::SendMessage { text: text.into(), client_ref: Some(client_ref.into()) }
    }

    #[tokio::test]
    async fn the_author_gets_a_receipt_for_its_reference_and_the_room_the_message() {
        let mut test = TestSession::new(|_| {}).await;
        let (_other, other_outbox) = test.joined_with("alice", "bob");
        test.ask(say("hello", "r1"));
        assert!(matches!(
            test.frames().as_slice(),
            [ServerMsg::MessagePosted { .. }, ServerMsg::MessageAccepted { client_ref: Some(r), seq: 1, .. }] if r == "r1"
        ));
        assert!(
            matches!(drain(&other_outbox).as_slice(), [ServerMsg::MessagePosted { message }] if message.text == "hello")
        );
    }

    #[tokio::test]
    async fn a_refusal_carries_the_reference_and_sending_unjoined_is_a_bad_frame() {
        let mut test = TestSession::new(|_| {}).await;
        assert!(matches!(test.ask(say("hi", "r0")), Flow::Continue));
        assert!(matches!(
            test.frames().as_slice(),
            [ServerMsg::Error { code: ErrorCode::NotJoined, client_ref: Some(r), .. }] if r == "r0"
        ));
        test.ask(join("alice"));
        test.frames();
        test.ask(say("", "r1"));
        assert!(matches!(
            test.frames().as_slice(),
            [ServerMsg::Error { code: ErrorCode::MessageEmpty, client_ref: Some(r), .. }] if r == "r1"
        ));
    }

    #[tokio::test]
    async fn flooding_on_while_muted_closes_the_connection() {
        let mut test = TestSession::new(|c| {
            c.message_burst = 4;
            c.message_burst_per_ip = 100;
            c.strikes_to_mute = 1;
            c.tries_while_muted = 1;
        })
        .await;
        test.ask(join("alice"));
        test.ask(say("one", "r1"));
        let mut flows = (2..6).map(|i| test.ask(say("again", &format!("r{i}"))));
        assert!(flows.any(|flow| matches!(flow, Flow::Close(reason) if reason.code == app::protocol::close::FLOOD)));
    }

    #[tokio::test]
    async fn a_member_replaced_by_its_own_tab_lets_go_of_its_place() {
        let mut test = TestSession::new(|_| {}).await;
        let (mut again, _again_outbox) = test.another(2, "192.0.2.10");
        test.ask(join("alice"));
        again.on_message(join("alice"));
        assert_eq!(test.outbox.closing().map(|r| r.code), Some(app::protocol::close::REPLACED));
        // A frame that was already on its way is refused (and the answer goes nowhere: the
        // connection is closing); the old connection holds no place any more.
        test.ask(say("hello?", "r1"));
        assert!(test.session.membership.is_none());
        assert_eq!(test.state.hub.room("lobby").expect("lobby").member_count(), 1);
    }

    #[tokio::test]
    async fn a_message_names_the_members_it_mentions_and_never_its_author() {
        let mut test = TestSession::new(|_| {}).await;
        let (_other, other_outbox) = test.joined_with("alice", "Bob");
        test.ask(say("@bob @ALICE @carol look", "r1"));
        assert!(matches!(
            drain(&other_outbox).as_slice(),
            [ServerMsg::MessagePosted { message }] if message.mentions == ["Bob"]
        ));
    }
}
