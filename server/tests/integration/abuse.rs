//! BAD-INPUTS "Abuse": floods, many sockets from one address, spoofed forwarding headers, spam.

use crate::support::{TestServer, config, run};
use app::protocol::{BanTarget, ClientMsg, ErrorCode, ModAction, ServerMsg, close};
use futures_util::{SinkExt, StreamExt};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const FLOOD_RATE: u32 = 1_000;
const FLOOD_FOR: Duration = Duration::from_secs(10);

/// 1 000 messages a second from one socket for 10 s: with the graduated penalties out of the
/// way, exactly the token bucket decides. At most burst + rate × t get through, every refusal
/// says when to try again, and another member's messages keep arriving promptly.
#[test]
fn a_flood_gets_no_more_than_the_bucket_allows_and_others_keep_their_latency() {
    run(async {
        let mut config = config();
        config.message_burst = 10;
        config.message_interval = Duration::from_secs(1);
        config.strikes_to_mute = u32::MAX;
        let server = TestServer::with(config).await;
        let (flooder, _) = server.member("lobby", "flooder").await;
        let (mut speaker, _) = server.member("lobby", "speaker").await;
        let (mut listener, _) = server.member("lobby", "listener").await;

        let (mut sink, mut stream) = flooder.ws.split();
        let accepted = Arc::new(AtomicU32::new(0));
        let refused = Arc::new(AtomicU32::new(0));
        let reader = tokio::spawn({
            let (accepted, refused) = (accepted.clone(), refused.clone());
            async move {
                while let Some(Ok(frame)) = stream.next().await {
                    let Message::Text(text) = frame else { continue };
                    match serde_json::from_str::<ServerMsg>(&text).expect("server JSON") {
                        ServerMsg::MessageAccepted { .. } => _ = accepted.fetch_add(1, Ordering::Relaxed),
                        ServerMsg::Error { code: ErrorCode::RateLimited, retry_after_ms, .. } => {
                            assert!(retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 1_000), "{retry_after_ms:?}");
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        ServerMsg::Error { code, message, .. } => panic!("unexpected refusal {code:?}: {message}"),
                        _ => {}
                    }
                }
            }
        });

        let started = Instant::now();
        let flood = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut sent = 0_u32;
            while started.elapsed() < FLOOD_FOR {
                tick.tick().await;
                for _ in 0..FLOOD_RATE / 100 {
                    let frame = format!(r#"{{"type":"send_message","text":"flood {sent}","client_ref":"f{sent}"}}"#);
                    sink.send(Message::text(frame)).await.expect("flood frame");
                    sent += 1;
                }
            }
            (sink, sent)
        });

        // Meanwhile, another member says something every second; how long until the third
        // member has it.
        let mut latencies = Vec::new();
        let mut said = 0;
        while started.elapsed() < FLOOD_FOR - Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let text = format!("still here {said}");
            let sent_at = Instant::now();
            speaker.say(&text, &format!("s{said}")).await.expect("the speaker is not limited");
            listener.recv_until(|m| matches!(m, ServerMsg::MessagePosted { message } if message.text == text)).await;
            latencies.push(sent_at.elapsed());
            said += 1;
        }
        let (sink, sent) = flood.await.expect("flood");
        let elapsed = started.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(sink);
        reader.abort();

        let accepted = accepted.load(Ordering::Relaxed);
        let refused = refused.load(Ordering::Relaxed);
        // Burst + rate × t; joining cost the flooder 3 of its burst.
        let allowed = 10 + elapsed.as_secs_f64().ceil() as u32;
        let joined_cost = 3;
        latencies.sort();
        let worst = *latencies.last().expect("latencies");
        let median = latencies[latencies.len() / 2];
        // The figures, for `cargo test --test integration flood -- --nocapture` (see BENCHMARKS.md).
        #[allow(clippy::print_stdout)]
        {
            println!(
                "flood: {sent} sent in {elapsed:.1?}, {accepted} accepted (bucket allows {allowed}), {refused} refused; \
                 other member's latency: median {median:.1?}, worst {worst:.1?} over {} messages",
                latencies.len()
            );
        }
        assert!(sent >= FLOOD_RATE * 9, "the flood ran at about {FLOOD_RATE}/s: {sent}");
        assert!(accepted <= allowed, "{accepted} got through, the bucket allows {allowed}");
        assert!(accepted + joined_cost + 1 >= allowed, "the bucket lets its rate through: {accepted} of {allowed}");
        assert!(accepted + refused >= sent - 10, "every message was answered: {accepted} + {refused} of {sent}");
        assert!(worst < Duration::from_millis(500), "another member's message took {worst:?}");
    });
}

/// With the default penalties: refused, then muted, then disconnected with the flood code.
#[test]
fn sustained_flooding_is_muted_then_disconnected() {
    run(async {
        let mut config = config();
        config.message_burst = 10;
        config.frames_per_second = 20;
        let server = TestServer::with(config).await;
        let (mut flooder, _) = server.member("lobby", "flooder").await;
        let (mut witness, _) = server.member("lobby", "witness").await;
        // Joining took its share of the burst of 10; the rest goes through, then no more.
        let mut accepted = 0;
        let limited = loop {
            match flooder.say(&format!("burst {accepted}"), &format!("b{accepted}")).await {
                Ok(_) => accepted += 1,
                Err(refusal) => break refusal,
            }
        };
        assert!((5..=10).contains(&accepted), "{accepted} within the burst");
        assert_eq!(limited.code, ErrorCode::RateLimited);
        assert!(limited.message.contains("second"), "{}", limited.message);
        // Not waiting as told: strikes; the fifth mutes.
        for n in 1..5 {
            assert_eq!(flooder.say("more", &format!("x{n}")).await.expect_err("limited").code, ErrorCode::RateLimited);
        }
        let muted = flooder.say("and more", "x4").await.expect_err("muted");
        assert_eq!(muted.code, ErrorCode::Muted, "{}", muted.message);
        assert!(muted.retry_after_ms.is_some_and(|ms| ms > 50_000), "a minute's mute: {:?}", muted.retry_after_ms);
        assert!(muted.message.contains("muted for flooding"), "{}", muted.message);
        for n in 0..40 {
            flooder.send(&ClientMsg::SendMessage { text: format!("still {n}"), client_ref: None }).await;
        }
        assert_eq!(flooder.close_code().await, Some(close::FLOOD));
        // The room heard of the departure and nothing of the flood after the burst.
        let left = witness.recv_until(|m| matches!(m, ServerMsg::MemberLeft { .. })).await;
        assert!(matches!(left, ServerMsg::MemberLeft { member, .. } if member.nickname == "flooder"));
    });
}

/// 50 sockets from one address, each under its own limit, share the address's bucket.
#[test]
fn many_sockets_from_one_address_share_its_message_bucket() {
    run(async {
        let mut config = config();
        config.message_burst_per_ip = 20;
        config.message_interval_per_ip = Duration::from_secs(10);
        let server = TestServer::with(config).await;
        let mut clients = Vec::new();
        for n in 0..50 {
            clients.push(server.member("lobby", &format!("sock{n}")).await.0);
        }
        let (mut accepted, mut limited) = (0, 0);
        for (n, client) in clients.iter_mut().enumerate() {
            match client.say("one message each", &format!("m{n}")).await {
                Ok(_) => accepted += 1,
                Err(refusal) if refusal.code == ErrorCode::RateLimited => limited += 1,
                Err(refusal) => panic!("unexpected {refusal:?}"),
            }
        }
        assert_eq!((accepted, limited), (20, 30), "the address's burst is 20");
    });
}

/// The same text over and over is spam; so is a message made of links.
#[test]
fn repeats_and_link_spam_are_refused() {
    run(async {
        let mut config = config();
        config.repeats_allowed = 2;
        config.max_links = 3;
        let server = TestServer::with(config).await;
        let (mut first, _) = server.member("lobby", "first").await;
        let (mut second, _) = server.member("lobby", "second").await;
        first.say("Buy cheap stuff", "r1").await.expect("once");
        // Normalised: case and spacing do not make it new; another socket from the same address
        // does not either.
        second.say("buy   CHEAP stuff", "r2").await.expect("twice");
        let spam = first.say("BUY cheap stuff ", "r3").await.expect_err("the third time");
        assert_eq!(spam.code, ErrorCode::Spam);
        assert_eq!(spam.message, "You sent that already: say something new.");
        first.say("something else", "r4").await.expect("new text passes");

        let links = "https://a.example https://b.example https://c.example https://d.example";
        let refused = first.say(links, "l1").await.expect_err("four links");
        assert_eq!((refused.code, refused.message.as_str()), (ErrorCode::TooManyLinks, "At most 3 links per message."));
        first.say("https://a.example and https://b.example", "l2").await.expect("two links are fine");
    });
}

/// Mask (the default) stars the word out for everyone; block refuses the message; off lets it be.
#[test]
fn the_profanity_filter_masks_blocks_or_stays_out_of_the_way() {
    run(async {
        let server = TestServer::start().await;
        let masked = server.create_room_with("Masked", 10, false, "mask").await;
        let blocked = server.create_room_with("Blocked", 10, false, "block").await;
        let open = server.create_room_with("Anything goes", 10, false, "off").await;

        let (mut author, joined) = server.member(&masked.slug, "author").await;
        assert_eq!(joined.settings.profanity, app::protocol::Profanity::Mask);
        let (mut reader, _) = server.member(&masked.slug, "reader").await;
        author.say("what the fuck is this", "p1").await.expect("masked, not refused");
        let shown = reader.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        let ServerMsg::MessagePosted { message } = shown else { unreachable!() };
        assert!(!message.text.to_lowercase().contains("fuck"), "masked: {}", message.text);
        assert!(message.text.starts_with("what the ") && message.text.contains('*'), "{}", message.text);

        let (mut author, _) = server.member(&blocked.slug, "author").await;
        let refused = author.say("what the fuck is this", "p2").await.expect_err("blocked");
        assert_eq!(refused.code, ErrorCode::Profanity);
        author.say("what the heck is this", "p3").await.expect("clean text passes");

        let (mut author, _) = server.member(&open.slug, "author").await;
        let (mut reader, _) = server.member(&open.slug, "reader").await;
        author.say("what the fuck is this", "p4").await.expect("off");
        let shown = reader.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        assert!(matches!(shown, ServerMsg::MessagePosted { message } if message.text == "what the fuck is this"));
    });
}

/// Forwarding headers from a peer that is not a trusted proxy are ignored: they neither dodge a
/// ban nor a per-address cap. From a trusted proxy, the right-most untrusted hop counts.
#[test]
fn spoofed_forwarding_headers_change_no_ban_or_limit() {
    run(async {
        let mut config = config();
        config.max_connections_per_ip = 3;
        let server = TestServer::with(config).await;
        let cookie = server.sign_in().await;

        // A cap of 3 per address: different made-up addresses do not make a fourth possible.
        let mut open = Vec::new();
        for n in 0..3 {
            let forwarded = format!("198.51.100.{n}");
            open.push(server.connect_as(&[("x-forwarded-for", &forwarded)]).await.expect("under the cap"));
        }
        let (status, _) = server
            .connect_as(&[("x-forwarded-for", "198.51.100.99"), ("forwarded", "for=198.51.100.98")])
            .await
            .err()
            .expect("over the cap");
        assert_eq!(status, 429);
        drop(open);

        // A ban on 127.0.0.1 holds whatever the headers claim.
        server
            .must_moderate(
                &cookie,
                &ModAction::Ban {
                    target: BanTarget::Address { address: "127.0.0.1".into() },
                    reason: "testing spoofing".into(),
                    duration_secs: None,
                },
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await; // the closed sockets let go of their slots
        for headers in [
            vec![("x-forwarded-for", "203.0.113.5")],
            vec![("forwarded", "for=203.0.113.5")],
            vec![("x-real-ip", "203.0.113.5"), ("x-forwarded-for", "203.0.113.5, 203.0.113.6")],
        ] {
            let (status, body) = server.connect_as(&headers).await.err().expect("still banned");
            assert_eq!(status, 403, "{headers:?}");
            assert!(body.contains("testing spoofing"), "{body}");
        }
    });
}

#[test]
fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
    run(async {
        let mut config = config();
        config.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr"), "10.0.0.0/8".parse().expect("cidr")];
        let server = TestServer::with(config).await;
        let cookie = server.sign_in().await;
        server
            .must_moderate(
                &cookie,
                &ModAction::Ban {
                    target: BanTarget::Address { address: "203.0.113.5".into() },
                    reason: "raid".into(),
                    duration_secs: Some(0),
                },
            )
            .await;
        let refused = |headers: Vec<(&'static str, &'static str)>| {
            let server = &server;
            async move { server.connect_as(&headers).await.err().map(|(status, _)| status) }
        };
        // The banned client, seen through one or two of our proxies.
        assert_eq!(refused(vec![("x-forwarded-for", "203.0.113.5")]).await, Some(403));
        assert_eq!(refused(vec![("x-forwarded-for", "203.0.113.5, 10.1.2.3")]).await, Some(403));
        // These proxies write `X-Forwarded-For`: a `Forwarded` header is the client's own words.
        assert_eq!(refused(vec![("forwarded", "for=203.0.113.5;proto=https, for=10.1.2.3")]).await, None);
        // Whatever the banned client itself wrote to the left of its own address is not believed.
        assert_eq!(refused(vec![("x-forwarded-for", "198.51.100.1, 203.0.113.5")]).await, Some(403));
        // Someone else, who put the banned address in front of theirs, is not banned by it.
        assert_eq!(refused(vec![("x-forwarded-for", "203.0.113.5, 198.51.100.1")]).await, None);
        // The console sees the hash of the forwarded address, never the proxy's.
        let mut visitor = server.connect_as(&[("x-forwarded-for", "198.51.100.1")]).await.expect("open");
        visitor.recv_until(|m| matches!(m, ServerMsg::Welcome { .. })).await;
        visitor.join("lobby", "behind-proxy", "test-session-proxy-0001", None).await.expect("joined");
        let snapshot = server.mod_snapshot(&cookie).await;
        let lobby = snapshot.rooms.iter().find(|r| r.room.slug == "lobby").expect("lobby");
        let member = lobby.members.iter().find(|m| m.nickname == "behind-proxy").expect("member");
        let results = server.search_log_until_found(&cookie, &member.ip_hash, true).await;
        assert!(results.iter().any(|c| c.ip.as_deref() == Some("198.51.100.1")), "{results:?}");
    });
}

/// An IPv6 visitor banned by the hash moderators see cannot come back from another address of
/// the same /64 (which their system hands out by itself).
#[test]
fn a_ban_by_hash_covers_the_ipv6_block_behind_it() {
    run(async {
        let server = TestServer::behind_a_loopback_proxy().await;
        let cookie = server.sign_in().await;
        let mut visitor = server.connect_as(&[("x-forwarded-for", "2001:db8:1:2::5")]).await.expect("open");
        visitor.recv_until(|m| matches!(m, ServerMsg::Welcome { .. })).await;
        visitor.join("lobby", "v6", "test-session-ipv6-000001", None).await.expect("joined");
        let snapshot = server.mod_snapshot(&cookie).await;
        let hash = snapshot.rooms[0].members.iter().find(|m| m.nickname == "v6").expect("member").ip_hash.clone();
        drop(visitor);
        tokio::time::sleep(Duration::from_millis(200)).await; // gone from the room: only the log knows the hash
        server
            .must_moderate(
                &cookie,
                &ModAction::Ban {
                    target: BanTarget::Hash { hash },
                    reason: "rotating addresses".into(),
                    duration_secs: None,
                },
            )
            .await;
        let (status, _) =
            server.connect_as(&[("x-forwarded-for", "2001:db8:1:2:abcd::77")]).await.err().expect("banned");
        assert_eq!(status, 403);
        assert!(
            server.connect_as(&[("x-forwarded-for", "2001:db8:1:3::5")]).await.is_ok(),
            "the next /64 is someone else"
        );
        // A block written in the IPv4-mapped form is the IPv4 block.
        server
            .must_moderate(
                &cookie,
                &ModAction::Ban {
                    target: BanTarget::Address { address: "::ffff:198.51.100.0/120".into() },
                    reason: "mapped".into(),
                    duration_secs: None,
                },
            )
            .await;
        let (status, _) = server.connect_as(&[("x-forwarded-for", "198.51.100.9")]).await.err().expect("banned");
        assert_eq!(status, 403);
    });
}

/// Reports cost the address, not just the connection: new connections do not multiply them.
#[test]
fn reports_are_limited_per_address_and_filed_once() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let (mut author, _) = server.member("lobby", "author").await;
        let (seq, _) = author.say("report me", "r").await.expect("posted");
        let mut answers = Vec::new();
        for n in 0..12 {
            let (mut reporter, _) = server.member("lobby", &format!("reporter{n}")).await;
            reporter.send(&ClientMsg::Report { seq, reason: "again and again".into() }).await;
            answers.push(
                match reporter.recv_until(|m| matches!(m, ServerMsg::Reported { .. } | ServerMsg::Error { .. })).await {
                    ServerMsg::Reported { .. } => "reported",
                    ServerMsg::Error { code: ErrorCode::RateLimited, .. } => "limited",
                    other => panic!("{other:?}"),
                },
            );
        }
        assert_eq!(answers.iter().filter(|a| **a == "reported").count(), 10, "{answers:?}");
        assert_eq!(server.mod_snapshot(&cookie).await.reports.len(), 1, "one open report per message and address");
    });
}

/// Joining (and so changing nickname, which is leaving and joining again) costs three messages.
#[test]
fn joins_and_nickname_changes_cost_more_than_messages() {
    run(async {
        let mut config = config();
        config.message_burst = 10;
        config.message_interval = Duration::from_secs(3_600);
        let server = TestServer::with(config).await;
        let (mut member, _) = server.member("lobby", "first-name").await;
        for n in 0..4 {
            member.say(&format!("message {n}"), &format!("m{n}")).await.expect("3 + 4 of 10");
        }
        member.send(&ClientMsg::Leave {}).await;
        member.recv_until(|m| matches!(m, ServerMsg::Left { .. })).await;
        member.join("lobby", "second-name", "test-session-rename-0001", None).await.expect("3 more: 10 of 10");
        let refused = member.say("one more", "m4").await.expect_err("the bucket is empty");
        assert_eq!(refused.code, ErrorCode::RateLimited);
        member.send(&ClientMsg::Leave {}).await;
        member.recv_until(|m| matches!(m, ServerMsg::Left { .. })).await;
        let rename =
            member.join("lobby", "third-name", "test-session-rename-0001", None).await.expect_err("no joins left");
        assert_eq!(rename.code, ErrorCode::RateLimited);
    });
}
