//! The plain-Rust baseline: a stock axum + tokio chat with a `broadcast` channel per room.
//! `GET /ws?room=R` joins room R; every text frame a member sends goes to every member of R,
//! the sender included. What a Rust chat server is without Burner's own machinery.
//!
//! axum-peer PORT

use axum::{
    Router,
    extract::{Query, State, WebSocketUpgrade, ws::Message},
    response::Response,
    routing::get,
};
use futures_util::{SinkExt, StreamExt};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::broadcast;

type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<axum::extract::ws::Utf8Bytes>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).unwrap_or_else(|| "3100".into()).parse()?;
    let rooms: Rooms = Arc::default();
    let app = Router::new().route("/ws", get(upgrade)).with_state(rooms);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(
    State(rooms): State<Rooms>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let room = query.get("room").cloned().unwrap_or_default();
    let channel = {
        let mut rooms = rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms.entry(room).or_insert_with(|| broadcast::channel(1024).0).clone()
    };
    ws.on_upgrade(move |socket| async move {
        let (mut sink, mut stream) = socket.split();
        let mut feed = channel.subscribe();
        let writer = tokio::spawn(async move {
            while let Ok(text) = feed.recv().await {
                if sink.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
        });
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                let _ = channel.send(text);
            }
        }
        writer.abort();
    })
}
