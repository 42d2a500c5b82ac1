//! `list_members`: a page of the current room's members, older than those the client has (a big
//! room's `joined` lists only its newest).

use crate::{
    error::Refusal,
    ws::session::{Flow, Session},
};

pub(super) fn list(session: &mut Session, before: u64) -> Flow {
    let Some(membership) = &session.membership else {
        return session.refuse_and_strike(&Refusal::not_joined(), None);
    };
    membership.room.offer_members_before(before, &session.handle);
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestSession;
    use app::protocol::{ClientMsg, ErrorCode, Member, ServerMsg};

    #[tokio::test]
    async fn a_member_pages_back_through_the_room_and_an_outsider_is_refused() {
        let mut test = TestSession::new(|_| {}).await;
        test.ask(ClientMsg::ListMembers { before: u64::MAX });
        assert!(
            matches!(test.frames().as_slice(), [ServerMsg::Error { code: ErrorCode::NotJoined, .. }]),
            "not in a room"
        );
        let (_bob, _outbox) = test.joined_with("alice", "bob");
        test.ask(ClientMsg::ListMembers { before: u64::MAX });
        let Some(ServerMsg::Members { members, more: false }) = test.frames().pop() else {
            panic!("a page of members");
        };
        let names: Vec<&str> = members.iter().map(|m: &Member| m.nickname.as_str()).collect();
        assert_eq!(names, ["alice", "bob"], "in join order");
        test.ask(ClientMsg::ListMembers { before: members[1].id });
        assert_eq!(test.frames(), [ServerMsg::Members { members: vec![members[0].clone()], more: false }]);
    }
}
