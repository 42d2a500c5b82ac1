//! `report`: a member flags a message it could see; the report is filed with the room as the
//! server sees it (in the background: the socket never waits for the store).

use crate::{
    error::Refusal,
    frame::Frame,
    ws::session::{Flow, Session},
};
use app::protocol::{ErrorCode, ServerMsg};

/// Reports one connection may file.
const MAX_REPORTS: usize = 20;

pub(super) fn report(session: &mut Session, seq: u64, reason: String) -> Flow {
    let Some(membership) = &session.membership else {
        return session.refuse_and_strike(&Refusal::not_joined(), None);
    };
    let room = membership.room.clone();
    if !room.has_message_for(seq, membership.session()) {
        session.refuse(&Refusal::bad_request("There is no such message to report (any more)."), None);
        return Flow::Continue;
    }
    let key = (room.slug.clone(), seq);
    if session.reported.contains(&key) {
        session.send(ServerMsg::Reported { seq });
        return Flow::Continue;
    }
    if session.reported.len() >= MAX_REPORTS {
        session.refuse(&Refusal::new(ErrorCode::RateLimited, "You have reported enough for one visit."), None);
        return Flow::Continue;
    }
    if let Err(refusal) = session.parts.policy.report(&session.sender) {
        session.refuse(&refusal, None);
        return Flow::Continue;
    }
    let mut reported = std::mem::take(&mut session.reported).into_vec();
    reported.push(key);
    session.reported = reported.into_boxed_slice();
    let (moderation, handle, ip_hash) =
        (session.parts.moderation.clone(), session.handle.clone(), session.visitor.ip_hash.clone());
    // Consoles see it with their next refresh (within a second), however many come at once.
    session.parts.tracker.spawn(async move {
        let answer = match moderation.report(&room, seq, &ip_hash, &reason).await {
            Ok(()) => ServerMsg::Reported { seq },
            Err(refusal) => refusal.to_message(None),
        };
        handle.offer(Frame::encode(&answer));
    });
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestSession, drain, join};
    use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
    use std::time::Duration;

    #[tokio::test]
    async fn a_report_is_filed_once_and_answered() {
        let mut test = TestSession::new(|_| {}).await;
        let (mut author, _author_outbox) = test.another(2, "192.0.2.20");
        test.ask(join("reporter"));
        author.on_message(join("author"));
        author.on_message(ClientMsg::SendMessage { text: "something rude".into(), client_ref: None });
        test.frames();
        let report = || ClientMsg::Report { seq: 1, reason: "rude".into() };
        test.ask(report());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(matches!(test.frames().as_slice(), [ServerMsg::Reported { seq: 1 }]));
        test.ask(report());
        assert!(matches!(test.frames().as_slice(), [ServerMsg::Reported { seq: 1 }]), "again: answered, not filed");
        assert_eq!(test.state.moderation.store.reports(10).await.expect("reports").len(), 1);
    }

    #[tokio::test]
    async fn only_a_message_the_member_could_see_can_be_reported() {
        let mut test = TestSession::new(|_| {}).await;
        test.ask(join("reporter"));
        test.frames();
        test.ask(ClientMsg::Report { seq: 99, reason: String::new() });
        assert!(matches!(drain(&test.outbox).as_slice(), [ServerMsg::Error { code: ErrorCode::BadRequest, .. }]));
    }
}
