//! `mod_watch`: a signed-in moderator's console gets the live picture (see
//! `Moderation::refresh_consoles`); anyone else is refused.

use crate::{
    error::Refusal,
    ws::session::{Flow, Session},
};

pub(super) fn watch(session: &mut Session) -> Flow {
    let moderator = session.visitor.moderator.clone().filter(|id| session.parts.moderation.auth.session_alive(id));
    let Some(moderator) = moderator else {
        let refusal = Refusal::permission_denied("Only moderators can watch the console: sign in at /mod first.");
        return session.refuse_and_strike(&refusal, None);
    };
    if !session.watching_console {
        session.parts.moderation.watch(&session.handle, moderator.into());
        session.watching_console = true;
        // The first snapshot goes out with the next console refresh (within a second).
        let (moderation, hub) = (session.parts.moderation.clone(), session.parts.hub.clone());
        session.parts.tracker.spawn(async move { moderation.refresh_consoles(&hub).await });
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestSession, drain, session_on};
    use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
    use std::time::Duration;

    #[tokio::test]
    async fn a_visitor_is_refused_and_a_signed_in_moderator_gets_the_snapshot() {
        let mut test = TestSession::new(|_| {}).await;
        test.ask(ClientMsg::ModWatch {});
        assert!(matches!(test.frames().as_slice(), [ServerMsg::Error { code: ErrorCode::PermissionDenied, .. }]));
        assert!(!test.session.watching_console);

        let id = test.state.moderation.auth.open_session().id;
        let (mut moderator, outbox) = session_on(&test.state, 2, "192.0.2.30".parse().expect("ip"), Some(id));
        moderator.on_message(ClientMsg::ModWatch {});
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(matches!(drain(&outbox).as_slice(), [ServerMsg::ModSnapshot { .. }]));
    }
}
