//! The HTTP accept loop: hyper HTTP/1.1 with a header-read timeout (a client that connects and
//! sends nothing, or trickles its headers, is dropped), upgrades for `/ws`, and graceful shutdown:
//! every connection task is tracked, and finishes its request then closes once `stop` is
//! cancelled.
//!
//! A visit is served in the turn that accepts it: the acceptor runs a new connection's first turn
//! itself, and a connection that switches to a WebSocket opens the socket in its own task right
//! after the 101 ([`Handover`]). Arrivals are paced so they cannot starve the sockets already
//! open (a few a turn), and wait while the connection log is behind.

use crate::{websocket::Wire, ws::Handover};
use axum::{Router, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{
    future::{Future, poll_fn},
    pin::pin,
    task::Poll,
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// New connections the acceptor takes (and runs the first turn of) before it lets every other
/// task run once. It takes a visit's first turn itself, ahead of the sockets' writes, so under
/// a storm of arrivals the conversation would wait for the newcomers: unbounded, 8 800 visits a
/// second beside 12 800 messages a second, whose p99 went from 24 to 300 ms. Measured
/// (docs/BENCHMARKS.md, "Churn"): 4 a turn, ~5 000 visits and 28 ms; 6, ~6 600 and 37 ms; 8,
/// ~7 500 and 42 ms; 16, 8 900 and 76 ms.
const ACCEPTS_PER_TURN: usize = 6;
/// How often the acceptor looks again while the server is [`Serving::behind`].
const BEHIND_WAIT: Duration = Duration::from_millis(5);

/// What the accept loop serves, and how.
pub struct Serving<'a> {
    pub router: Router,
    pub header_timeout: Duration,
    /// Connections run here, and wind down when `stop` is cancelled.
    pub stop: &'a CancellationToken,
    pub tracker: &'a TaskTracker,
    /// While this says so, no connection is accepted (they wait in the kernel's backlog): the
    /// connection log is behind, and a visit it cannot record is better not taken than lost to
    /// the moderators.
    pub behind: &'a (dyn Fn() -> bool + Sync),
}

/// Accepts connections until `shutdown` resolves.
pub async fn serve(listener: TcpListener, serving: Serving<'_>, shutdown: impl Future<Output = ()>) {
    let Serving { router, header_timeout, stop, tracker, behind } = serving;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut shutdown = pin!(shutdown);
    let mut this_turn = 0;
    loop {
        if this_turn == ACCEPTS_PER_TURN {
            this_turn = 0;
            tokio::task::yield_now().await;
        }
        this_turn += 1;
        if behind() {
            tokio::select! {
                () = tokio::time::sleep(BEHIND_WAIT) => continue,
                () = &mut shutdown => break,
            }
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handover = Handover::default();
        let service = router.clone().map_request({
            let handover = handover.clone();
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(handover.clone());
                request
            }
        });
        let connection =
            http.serve_connection(TokioIo::new(Wire::new(stream)), TowerToHyperService::new(service)).with_upgrades();
        let stop = stop.clone();
        // One HTTP connection to its end; then, if it switched to a WebSocket, the socket's
        // opening, in the same turn as the 101.
        let mut task = Box::pin(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "http connection ended with an error");
            }
            if let Some(opening) = handover.take() {
                opening.open().await;
            }
        });
        // The connection's first turn is taken now, in the acceptor's: its request is usually in
        // already, and a WebSocket visit is answered, opened and (if its address names a room)
        // joined before anything else runs. A task spawned instead would wait behind every task
        // already queued: under load, a round of every socket, for each step of a visit. Polled
        // here with the acceptor's waker; once spawned, the task's first poll takes over whatever
        // it waits for.
        if poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await.is_pending() {
            tracker.spawn(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
        time::timeout,
    };

    /// While the server is behind (its connection log), no connection is taken: a request waits
    /// in the kernel's backlog unanswered, and is answered once the server has caught up.
    #[tokio::test]
    async fn no_connection_is_taken_while_the_server_is_behind() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let behind = AtomicBool::new(true);
        let (stop, tracker, done) = (CancellationToken::new(), TaskTracker::new(), CancellationToken::new());
        let serving = Serving {
            router: Router::new().route("/", get(|| async { "served" })),
            header_timeout: Duration::from_secs(5),
            stop: &stop,
            tracker: &tracker,
            behind: &|| behind.load(Ordering::Relaxed),
        };
        let client = async {
            let mut tcp = TcpStream::connect(address).await.expect("the kernel's backlog takes it");
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: burner\r\nConnection: close\r\n\r\n").await.expect("write");
            let mut first = [0; 64];
            let early = timeout(Duration::from_millis(300), tcp.read(&mut first)).await;
            assert!(early.is_err(), "answered while behind: {early:?}");
            behind.store(false, Ordering::Relaxed);
            let mut response = Vec::new();
            timeout(Duration::from_secs(5), tcp.read_to_end(&mut response)).await.expect("in time").expect("read");
            done.cancel();
            String::from_utf8_lossy(&response).into_owned()
        };
        let ((), response) = tokio::join!(serve(listener, serving, done.clone().cancelled_owned()), client);
        assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("served"), "{response}");
    }
}
