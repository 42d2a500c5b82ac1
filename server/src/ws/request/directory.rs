//! `watch_directory` / `unwatch_directory`: the room directory's live occupancy.

use crate::ws::session::{Flow, Session};

pub(super) fn watch(session: &mut Session) -> Flow {
    if !session.watching {
        session.parts.hub.watch_directory(&session.handle);
        session.watching = true;
    }
    Flow::Continue
}

pub(super) fn unwatch(session: &mut Session) -> Flow {
    session.parts.hub.unwatch_directory(session.handle.id);
    session.watching = false;
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestSession;
    use app::protocol::{ClientMsg, ServerMsg};

    #[tokio::test]
    async fn watching_sends_the_directory_once_however_often_asked() {
        let mut test = TestSession::new(|_| {}).await;
        test.ask(ClientMsg::WatchDirectory {});
        test.ask(ClientMsg::WatchDirectory {});
        let frames = test.frames();
        assert_eq!(frames.iter().filter(|m| matches!(m, ServerMsg::Directory { .. })).count(), 1);
        assert!(test.session.watching);
        test.ask(ClientMsg::UnwatchDirectory {});
        assert!(!test.session.watching);
    }
}
