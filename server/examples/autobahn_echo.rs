//! An echo server on Burner's own WebSocket layer (`server::websocket`), for the Autobahn test
//! cases: every text or binary message comes back as it was sent, pings are answered, and
//! protocol errors close the socket with the code the RFC gives them. `scripts/autobahn.sh`
//! starts it and runs the cases against it (PyPI `kosoku`), as part of `make test`.
//!
//! cargo run --release -p server --example autobahn_echo -- [ADDRESS, default 127.0.0.1:9001]

use axum::{Router, response::Response, routing::get};
use server::{
    serve::Serving,
    websocket::{Socket, Upgrade, frames::Incoming},
};
use std::time::Duration;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The Autobahn cases send messages of up to 16 MiB (section 9).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let app = Router::new().route("/", get(|ws: Upgrade| async move { answer(ws) }));
    // Burner's own accept loop: the socket layer takes its TCP stream back from it.
    let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
    let serving = Serving {
        router: app,
        header_timeout: Duration::from_secs(10),
        stop: &stop,
        tracker: &tracker,
        behind: &|| false,
    };
    server::serve::serve(listener, serving, std::future::pending()).await;
    Ok(())
}

/// Answers 101 and echoes on the socket once the connection has switched.
fn answer(ws: Upgrade) -> Response {
    let (response, switch) = ws.answer();
    tokio::spawn(async move {
        if let Some(socket) = switch.socket(MAX_MESSAGE).await {
            echo(socket).await;
        }
    });
    response
}

async fn echo(mut socket: Socket) {
    loop {
        let written = match socket.recv().await {
            None => return,
            Some(Err(error)) => return socket.close(error.close_code(), "").await,
            Some(Ok(Incoming::Text(text))) => socket.write_message(true, text.as_bytes()),
            Some(Ok(Incoming::Binary(data))) => socket.write_message(false, &data),
            Some(Ok(Incoming::Ping(payload))) => socket.write_pong(&payload),
            Some(Ok(Incoming::Pong)) => Ok(false),
            Some(Ok(Incoming::Close(code))) => return socket.answer_close(code.map(|(code, _)| code)).await,
        };
        match written {
            Ok(false) => {}
            Ok(true) if socket.flush().await.is_ok() => {}
            _ => return,
        }
    }
}
