//! BAD-INPUTS "Handshake and transport": origins, sizes, encodings, timeouts, floods, dead peers.

use crate::support::*;
use app::protocol::{ClientMsg, ServerMsg, close};
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{Instant, sleep, timeout},
};

#[test]
fn only_the_sites_own_origin_may_upgrade() {
    run(async {
        let server = TestServer::start().await;
        let port = server.addr.port();
        let foreign = [
            "http://evil.example".to_owned(),
            "null".to_owned(),
            format!("https://127.0.0.1:{port}"),
            format!("http://127.0.0.1:{}", port.wrapping_add(1)),
            format!("http://127.0.0.1:{port}.evil.example"),
            format!("http://localhost:{port}"),
            "http://127.0.0.1".to_owned(),
        ];
        for origin in &foreign {
            assert_eq!(server.connect_with(Some(origin), "/ws").await.err(), Some(403), "{origin}");
        }
        assert_eq!(server.connect_with(None, "/ws").await.err(), Some(403), "no Origin");
        assert!(server.connect_with(Some(&server.origin()), "/ws").await.is_ok());
    })
}

#[test]
fn a_configured_allowlist_is_matched_exactly() {
    run(async {
        let mut config = config();
        config.allowed_origins = vec!["https://chat.example.org/".into()];
        let server = TestServer::with(config).await;
        assert!(server.connect_with(Some("https://chat.example.org"), "/ws").await.is_ok());
        assert_eq!(server.connect_with(Some(&server.origin()), "/ws").await.err(), Some(403));
        assert_eq!(server.connect_with(Some("https://chat.example.org.evil.example"), "/ws").await.err(), Some(403));
    })
}

#[test]
fn a_frame_announcing_100_mb_is_refused_from_its_header() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let started = Instant::now();
        client.write_raw(&raw_frame(true, 0x1, 100 * 1024 * 1024, b"{\"type\":")).await;
        assert_eq!(client.close_code().await, Some(close::TOO_BIG));
        assert!(started.elapsed() < Duration::from_secs(2), "refused without waiting for the payload");
    })
}

#[test]
fn a_10_mb_frame_is_refused() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let mut frame = raw_frame(true, 0x1, 10 * 1024 * 1024, &[]);
        frame.extend(std::iter::repeat_n(b' ', 256 * 1024));
        // The server may stop reading (and close) before all of it is written.
        let _ = timeout(Duration::from_secs(2), client.write_raw_lenient(&frame)).await;
        assert_eq!(client.close_code().await, Some(close::TOO_BIG));
    })
}

#[test]
fn tiny_continuation_frames_past_the_cap_are_refused() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let chunk = vec![b' '; 1_000];
        let mut bytes = raw_frame(false, 0x1, chunk.len() as u64, &chunk);
        for _ in 0..70 {
            bytes.extend(raw_frame(false, 0x0, chunk.len() as u64, &chunk));
        }
        let _ = timeout(Duration::from_secs(2), client.write_raw_lenient(&bytes)).await;
        assert_eq!(client.close_code().await, Some(close::TOO_BIG));
    })
}

#[test]
fn a_text_frame_that_is_not_utf8_is_closed_with_1007() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.write_raw(&raw_frame(true, 0x1, 4, &[0xff, 0xfe, 0xfd, 0x80])).await;
        assert_eq!(client.close_code().await, Some(close::INVALID_PAYLOAD));
    })
}

#[test]
fn a_binary_frame_is_closed_with_1003() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![1, 2, 3])).await.expect("send");
        assert_eq!(client.close_code().await, Some(close::UNSUPPORTED_DATA));
    })
}

#[test]
fn a_ping_flood_counts_against_the_frame_limit() {
    run(async {
        let mut config = config();
        config.frames_per_second = 20;
        let server = TestServer::with(config).await;
        let (mut flooder, _) = server.member("lobby", "flooder").await;
        let (mut calm, _) = server.member("lobby", "calm").await;
        for _ in 0..200 {
            if flooder.ws.send(tokio_tungstenite::tungstenite::Message::Ping(Default::default())).await.is_err() {
                break;
            }
        }
        assert_eq!(flooder.close_code().await, Some(close::FLOOD));
        calm.recv_until(|m| matches!(m, ServerMsg::MemberLeft { member, .. } if member.nickname == "flooder")).await;
        calm.say("still here", "c1").await.expect("the others are unaffected");
    })
}

#[test]
fn a_connection_that_sends_nothing_is_dropped() {
    run(async {
        let mut config = config();
        config.header_timeout = Duration::from_millis(500);
        let server = TestServer::with(config).await;
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let read = timeout(Duration::from_secs(5), tcp.read(&mut buf)).await.expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    })
}

/// The acceptor takes a new connection's first turn itself (`serve`); a request that is not in
/// yet then, and comes in pieces later, is still read and answered by the connection's own task.
#[test]
fn a_request_that_comes_after_the_accept_in_pieces_is_answered() {
    run(async {
        let server = TestServer::start().await;
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr);
        let (head, tail) = request.split_at(12);
        for piece in [head, tail] {
            sleep(Duration::from_millis(100)).await;
            tcp.write_all(piece.as_bytes()).await.expect("write");
        }
        let mut response = Vec::new();
        timeout(Duration::from_secs(5), tcp.read_to_end(&mut response)).await.expect("answered in time").expect("read");
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    })
}

#[test]
fn a_handshake_trickled_byte_by_byte_is_dropped() {
    run(async {
        let mut config = config();
        config.header_timeout = Duration::from_millis(500);
        let server = TestServer::with(config).await;
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let request = format!("GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n", server.addr);
        let started = Instant::now();
        let mut dropped = false;
        for byte in request.bytes() {
            if tcp.write_all(&[byte]).await.is_err() {
                dropped = true;
                break;
            }
            sleep(Duration::from_millis(100)).await;
            let mut buf = [0u8; 256];
            if let Ok(Ok(n)) = timeout(Duration::from_millis(1), tcp.read(&mut buf)).await {
                // hyper answers a timed-out request head with 408, or just closes.
                dropped = n == 0 || String::from_utf8_lossy(&buf[..n]).contains(" 408 ");
                if dropped {
                    break;
                }
            }
        }
        assert!(dropped, "the trickle was never cut off");
        assert!(started.elapsed() < Duration::from_secs(4));
    })
}

#[test]
fn a_socket_that_never_joins_is_closed_as_idle() {
    run(async {
        let mut config = config();
        config.idle_timeout = Duration::from_millis(400);
        let server = TestServer::with(config).await;
        let mut idle = server.client().await;
        let mut watching = server.client().await;
        watching.send(&ClientMsg::WatchDirectory {}).await;
        // Joined by its address as it opened, and silent since: a member, not idle.
        let path = format!("/ws?v=1&room=lobby&nickname=quiet&session={}", session_for("quiet"));
        let mut quiet = server.connect_with(Some(&server.origin()), &path).await.expect("upgraded");
        quiet.recv_until(|m| matches!(m, ServerMsg::Joined { .. })).await;
        assert_eq!(idle.close_code().await, Some(close::IDLE));
        // Watching the directory counts as taking part: still connected well past the timeout.
        watching.recv_until(|m| matches!(m, ServerMsg::Directory { .. })).await;
        sleep(Duration::from_millis(800)).await;
        watching.send(&ClientMsg::Leave {}).await;
        assert_eq!(watching.refusal().await.code, app::protocol::ErrorCode::NotJoined);
        quiet.say("still here", "q1").await.expect("still a member");
    })
}

#[test]
fn a_peer_that_vanished_is_dropped_and_its_seat_released() {
    run(async {
        let mut config = config();
        config.ping_interval = Duration::from_millis(300);
        config.pong_timeout = Duration::from_millis(300);
        let server = TestServer::with(config).await;
        let (mut watcher, _) = server.member("lobby", "watcher").await;
        // Half-open: joined, then never reads (so never answers a ping) and never closes.
        let (_vanished, _) = server.member("lobby", "vanished").await;
        let started = Instant::now();
        loop {
            // The watcher keeps reading, which answers its own pings.
            match watcher.recv().await {
                ServerMsg::MemberLeft { member, count } if member.nickname == "vanished" => {
                    assert_eq!(count, 1);
                    break;
                }
                _ => {}
            }
        }
        assert!(started.elapsed() < Duration::from_secs(3));
    })
}

#[test]
fn frame_bytes_trickled_after_joining_end_in_a_heartbeat_timeout() {
    run(async {
        let mut config = config();
        config.ping_interval = Duration::from_millis(300);
        config.pong_timeout = Duration::from_millis(300);
        let server = TestServer::with(config).await;
        let (mut watcher, _) = server.member("lobby", "watcher").await;
        let (mut trickler, _) = server.member("lobby", "trickler").await;
        let frame = raw_frame(true, 0x1, 40, br#"{"type":"send_message","text":"slow...."}"#);
        let writer = async {
            for byte in frame {
                if trickler.write_raw_lenient(&[byte]).await.is_err() {
                    break;
                }
                sleep(Duration::from_millis(200)).await;
            }
        };
        let gone =
            watcher.recv_until(|m| matches!(m, ServerMsg::MemberLeft { member, .. } if member.nickname == "trickler"));
        tokio::select! {
            _ = gone => {}
            () = writer => panic!("the whole frame trickled through"),
        }
    })
}

/// An address whose settings cannot be read (a setting twice) is refused before the upgrade,
/// with a sentence that says which and how to write it.
#[test]
fn an_address_with_a_setting_twice_is_refused_with_a_sentence() {
    run(async {
        let server = TestServer::start().await;
        let origin = server.origin();
        let refused = server.upgrade("/ws?v=1&room=lobby&room=cats&nickname=ada", &[("origin", &origin)]).await;
        let (status, body) = refused.err().expect("refused");
        assert_eq!(status, 400);
        assert!(body.contains("duplicate field `room`") && body.contains("at most once"), "{body}");
    })
}

#[test]
fn another_protocol_version_is_closed_with_a_reload_code() {
    run(async {
        let server = TestServer::start().await;
        let mut client = server.connect_with(Some(&server.origin()), "/ws?v=99").await.expect("upgraded");
        assert_eq!(client.close_code().await, Some(close::UNSUPPORTED_VERSION));
        let mut current = server.connect_with(Some(&server.origin()), "/ws?v=1").await.expect("upgraded");
        assert!(matches!(current.recv().await, ServerMsg::Welcome { protocol: 1, .. }));
    })
}

#[test]
fn the_global_connection_cap_answers_503_before_upgrading() {
    run(async {
        let mut config = config();
        config.max_connections = 2;
        let server = TestServer::with(config).await;
        let _first = server.client().await;
        let _second = server.client().await;
        assert_eq!(server.connect_with(Some(&server.origin()), "/ws").await.err(), Some(503));
    })
}

use futures_util::SinkExt;

#[test]
fn one_address_may_hold_only_so_many_connections() {
    run(async {
        let mut config = config();
        config.max_connections_per_ip = 3;
        let server = TestServer::with(config).await;
        let first = server.client().await;
        let _second = server.client().await;
        let _third = server.client().await;
        assert_eq!(server.connect_with(Some(&server.origin()), "/ws").await.err(), Some(429));
        drop(first);
        // The closed connection gives its place back (once the server has noticed).
        let mut accepted = false;
        for _ in 0..50 {
            if server.connect_with(Some(&server.origin()), "/ws").await.is_ok() {
                accepted = true;
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert!(accepted);
    })
}

#[test]
fn one_address_may_open_connections_only_so_fast() {
    run(async {
        let mut config = config();
        config.connect_burst_per_ip = 5;
        config.connect_interval_per_ip = Duration::from_secs(60);
        let server = TestServer::with(config).await;
        let mut open = Vec::new();
        for _ in 0..5 {
            open.push(server.client().await);
        }
        assert_eq!(server.connect_with(Some(&server.origin()), "/ws").await.err(), Some(429));
        let health = server.http("GET", "/healthz", None).await;
        assert_eq!(health.status, 200, "plain HTTP is not affected");
    })
}
