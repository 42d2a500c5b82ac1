//! `join` and `leave`: taking a place in a room (admitted by the posting policy's join rate,
//! then by the room: limit, lock, nickname) and giving it back.

use crate::{
    error::Refusal,
    hub::JoinRequest,
    ws::session::{Flow, Session},
};
use app::protocol::{Resume, ServerMsg};

pub(super) fn join(session: &mut Session, room: &str, nickname: &str, tab: &str, resume: Option<Resume>) -> Flow {
    if session.membership.is_some() {
        return session.refuse_and_strike(&Refusal::already_joined(), None);
    }
    if let Err(refusal) = session.parts.policy.join(&session.sender) {
        session.refuse(&refusal, None);
        return Flow::Continue;
    }
    let request = JoinRequest {
        bridge: false,
        nickname,
        session: tab,
        resume: resume.as_ref(),
        ip: session.visitor.ip,
        ip_hash: session.visitor.ip_hash.clone(),
    };
    match session.parts.hub.join(room, &session.handle, request) {
        Ok(membership) => {
            session.parts.moderation.log.joined(session.handle.id, &membership.room.slug, nickname);
            session.membership = Some(membership);
        }
        Err(refusal) => session.refuse(&refusal, None),
    }
    Flow::Continue
}

pub(super) fn leave(session: &mut Session) -> Flow {
    match session.membership.take() {
        Some(membership) => {
            let room = membership.room.slug.to_string();
            drop(membership);
            session.send(ServerMsg::Left { room });
            Flow::Continue
        }
        None => session.refuse_and_strike(&Refusal::not_joined(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestSession, join};
    use crate::ws::session::Flow;
    use app::protocol::{ClientMsg, ErrorCode, ServerMsg};

    fn codes(frames: &[ServerMsg]) -> Vec<ErrorCode> {
        frames.iter().filter_map(|m| if let ServerMsg::Error { code, .. } = m { Some(*code) } else { None }).collect()
    }

    #[tokio::test]
    async fn a_join_takes_a_place_and_leave_gives_it_back() {
        let mut test = TestSession::new(|_| {}).await;
        test.ask(join("alice"));
        assert!(matches!(test.frames().as_slice(), [ServerMsg::Joined { you, .. }] if you.nickname == "alice"));
        assert_eq!(test.state.hub.room("lobby").expect("lobby").member_count(), 1);
        test.ask(ClientMsg::Leave {});
        assert!(matches!(test.frames().as_slice(), [ServerMsg::Left { room }] if room == "lobby"));
        assert_eq!(test.state.hub.room("lobby").expect("lobby").member_count(), 0);
    }

    #[tokio::test]
    async fn joining_twice_or_leaving_nothing_counts_as_a_bad_frame() {
        let mut test = TestSession::new(|c| c.max_bad_frames = 2).await;
        test.ask(join("alice"));
        test.frames();
        assert!(matches!(test.ask(join("alice")), Flow::Continue));
        assert_eq!(codes(&test.frames()), [ErrorCode::AlreadyJoined]);
        test.ask(ClientMsg::Leave {});
        test.frames();
        assert!(matches!(test.ask(ClientMsg::Leave {}), Flow::Close(reason) if reason.code == 4100));
        assert_eq!(codes(&test.frames()), [ErrorCode::NotJoined]);
    }

    #[tokio::test]
    async fn a_join_costs_three_messages_and_a_refused_join_is_answered_not_punished() {
        let mut test = TestSession::new(|c| c.message_burst = 4).await;
        let ClientMsg::Join { room, session, resume, .. } = join("x") else { unreachable!("a join") };
        test.ask(ClientMsg::Join { room, nickname: "Admin".into(), session, resume });
        assert_eq!(codes(&test.frames()), [ErrorCode::NicknameReserved]);
        test.ask(join("alice"));
        assert_eq!(codes(&test.frames()), [ErrorCode::RateLimited], "3 + 3 tokens > a burst of 4");
        assert!(test.session.membership.is_none());
    }
}
