//! BAD-INPUTS "Faults" (SIGTERM): stop accepting, close every socket with 1001, return in time.

use crate::support::*;
use app::protocol::close;
use std::time::Duration;

#[test]
fn shutdown_closes_every_socket_with_1001_at_once() {
    run(async {
        let server = TestServer::start().await;
        let addr = server.addr;
        let (mut member, _) = server.member("lobby", "member").await;
        let mut watcher = server.client().await;
        watcher.send(&app::protocol::ClientMsg::WatchDirectory {}).await;
        let mut idle = server.client().await;
        let (stopped, codes) = tokio::join!(server.stop(), async {
            (member.close_code().await, watcher.close_code().await, idle.close_code().await)
        });
        assert_eq!(codes, (Some(close::GOING_AWAY), Some(close::GOING_AWAY), Some(close::GOING_AWAY)));
        // Every client answers the close at once: nothing may wait out the 4.5 s grace period
        // (the connection log's writer once did, on every shutdown).
        assert!(stopped < Duration::from_secs(2), "took {stopped:?}");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
    })
}
