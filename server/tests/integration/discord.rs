//! The Discord bridge against the local Discord stand-in (`discord-standin`): real HTTP, a real
//! gateway WebSocket, Discord's JSON shapes from twilight's own model types. Follows the
//! "Discord bridge" rows of `../shared/BAD-INPUTS.md`.

use crate::support::*;
use app::protocol::{ModAction, ServerMsg, Source};
use discord_standin::{Config as StandInConfig, Fault, StandIn};
use server::config::Config;
use std::time::{Duration, Instant};

const CHANNEL: u64 = 600;
const WAIT: Duration = Duration::from_secs(10);

fn bridged(config: &mut Config, discord: &StandIn) {
    config.discord_token = Some(StandInConfig::default().token);
    config.discord_api_url = discord.api_url();
    config.discord_gateway_url = discord.gateway_url();
}

async fn standin() -> StandIn {
    StandIn::start(StandInConfig::default()).await.expect("the Discord stand-in starts")
}

/// A server with the bridge on, once the bridge is connected to the stand-in.
async fn bridged_server(discord: &StandIn, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = config();
    bridged(&mut config, discord);
    adjust(&mut config);
    let server = TestServer::with(config).await;
    connected(&server).await;
    server
}

async fn connected(server: &TestServer) {
    eventually(WAIT, "the bridge connects", || async { server.health().await["discord"]["state"] == "connected" })
        .await;
}

/// Links `room` to the stand-in's channel, as a moderator does in the console.
async fn link(server: &TestServer, room: &str) {
    let cookie = server.sign_in().await;
    let action = ModAction::LinkDiscord { room: room.to_owned(), channel_id: CHANNEL.to_string(), joins: false };
    let done = server.must_moderate(&cookie, &action).await;
    assert!(done.contains("#general"), "{done}");
}

/// The bot's posts in the channel (embeds), as (author, description).
fn embeds(discord: &StandIn) -> Vec<(String, String)> {
    discord
        .messages(CHANNEL)
        .into_iter()
        .filter(|m| m.author.id.get() == discord.bot_id())
        .filter_map(|m| {
            let embed = m.embeds.first()?;
            Some((embed.author.as_ref()?.name.clone(), embed.description.clone()?))
        })
        .collect()
}

async fn wait_for_embeds(discord: &StandIn, n: usize) -> Vec<(String, String)> {
    eventually(WAIT, "the messages reach Discord", || async { embeds(discord).len() >= n }).await;
    embeds(discord)
}

/// The next message from Discord a member sees.
async fn from_discord(client: &mut Client) -> app::protocol::ChatMessage {
    match client
        .recv_until(|m| matches!(m, ServerMsg::MessagePosted { message } if message.source == Source::Discord))
        .await
    {
        ServerMsg::MessagePosted { message } => message,
        _ => unreachable!(),
    }
}

#[test]
fn a_linked_room_and_its_channel_are_one_conversation() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Night owls", 10, false).await;
        link(&server, &room.slug).await;
        let page = server.http("GET", &format!("/r/{}", room.slug), None).await;
        assert!(page.body.contains("Bridged to Discord #") && page.body.contains("general"), "the page says so");

        let (mut alice, joined) = server.member(&room.slug, "alice").await;
        assert!(
            joined.members.iter().any(|m| m.nickname == "Discord"),
            "the bridge holds a place: {:?}",
            joined.members
        );
        alice.say("hello from Burner", "a1").await.expect("posted");
        let sent = wait_for_embeds(&discord, 1).await;
        assert_eq!(sent, [("alice".to_owned(), "hello from Burner".to_owned())]);

        let posted = discord.post_as_user(CHANNEL, 42, "dana", "hi from Discord");
        let message = from_discord(&mut alice).await;
        assert_eq!((message.author.nickname.as_str(), message.text.as_str()), ("dana", "hi from Discord"));
        // What came from Discord is not sent back to it, and the bot's own post did not come back.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(discord.messages(CHANNEL).len(), 2, "{:?}", discord.messages(CHANNEL));
        alice.assert_silent(Duration::from_millis(200)).await;

        // A newcomer sees both in the history, the Discord one marked as such.
        let (_bob, joined) = server.member(&room.slug, "bob").await;
        let history: Vec<_> = joined.history.iter().map(|m| (m.author.nickname.as_str(), m.source)).collect();
        assert_eq!(history, [("alice", Source::Burner), ("dana", Source::Discord)]);
        assert!(posted.id.get() > 0);
    });
}

#[test]
fn mentions_and_markdown_reach_discord_as_plain_words() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Pings", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        alice.say("@everyone @here <@123> <@&1> [free](https://e.vil) **loud** # title", "a1").await.expect("posted");
        let sent = wait_for_embeds(&discord, 1).await;
        let description = &sent[0].1;
        for live in ["@everyone", "@here", "<@123>", "<@&1>", "[free](", "**loud**"] {
            assert!(!description.contains(live), "{live} still works in {description:?}");
        }
        let request = discord
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path.ends_with(&format!("channels/{CHANNEL}/messages")))
            .expect("the post");
        assert_eq!(request.body["allowed_mentions"], serde_json::json!({"parse": []}), "nobody is pinged");
        assert_eq!(request.body["enforce_nonce"], true);
        assert!(request.body["nonce"].as_str().is_some_and(|n| n.len() <= 25));
    });
}

#[test]
fn edits_and_deletions_cross() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Deletions", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        let (seq, _) = alice.say("regrettable", "a1").await.expect("posted");
        wait_for_embeds(&discord, 1).await;

        // A Burner moderator deletes it: it goes from Discord too.
        let cookie = server.sign_in().await;
        let delete = ModAction::DeleteMessage { room: room.slug.clone(), seq, reason: "test".into() };
        server.must_moderate(&cookie, &delete).await;
        eventually(WAIT, "the Discord copy is deleted", || async { embeds(&discord).is_empty() }).await;

        // Its author edits a Discord message: the Burner copy follows (an unfurl would not).
        let posted = discord.post_as_user(CHANNEL, 42, "dana", "oops, a tpyo");
        let message = from_discord(&mut alice).await;
        discord.edit_as_user(CHANNEL, posted.id.get(), "oops, a typo").expect("edited");
        let edited = alice.recv_until(|m| matches!(m, ServerMsg::MessageEdited { .. })).await;
        assert!(
            matches!(edited, ServerMsg::MessageEdited { seq, ref text } if seq == message.seq && text == "oops, a typo")
        );
        let (_bob, joined) = server.member(&room.slug, "bob").await;
        let kept = joined.history.iter().find(|m| m.seq == message.seq).expect("in the history");
        assert!(kept.edited && kept.text == "oops, a typo", "{kept:?}");

        // A Discord moderator deletes a Discord message: it goes from Burner.
        assert!(discord.delete_as_user(CHANNEL, posted.id.get()));
        let deleted = alice.recv_until(|m| matches!(m, ServerMsg::MessageDeleted { .. })).await;
        assert!(matches!(deleted, ServerMsg::MessageDeleted { seq } if seq == message.seq));
        // Its deletion is not sent back to Discord as a second delete.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let deletes = discord.requests().iter().filter(|r| r.method == "DELETE").count();
        assert_eq!(deletes, 1, "only the Burner moderator's deletion went to Discord");
    });
}

#[test]
fn one_way_rooms_show_discord_everything_and_shadow_mutes_nothing() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Confessions", 10, true).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        // Another address: a shadow mute is the address's.
        let mut bob = server.client_from("127.0.0.9".parse().expect("address"), &[]).await.expect("bob's socket");
        let joined = bob.join(&room.slug, "bob", &session_for("bob"), None).await.expect("joined");
        let cookie = server.sign_in().await;
        server
            .must_moderate(
                &cookie,
                &ModAction::ShadowMute { room: room.slug.clone(), member: joined.you.id, muted: true },
            )
            .await;
        bob.say("nobody hears this", "b1").await.expect("accepted (shadow-muted)");
        alice.say("only others see this", "a1").await.expect("posted");
        wait_for_embeds(&discord, 1).await;
        // Nothing else follows (the muted message waits nowhere).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = embeds(&discord);
        assert_eq!(
            sent,
            [("alice".to_owned(), "only others see this".to_owned())],
            "the muted message stays in Burner"
        );
        // A Discord message reaches the one-way room's members.
        discord.post_as_user(CHANNEL, 42, "dana", "hello, one-way room");
        assert_eq!(from_discord(&mut alice).await.text, "hello, one-way room");
        assert_eq!(from_discord(&mut bob).await.text, "hello, one-way room");
    });
}

#[test]
fn what_discord_sends_fits_burners_rules() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |c| c.message_burst = 3).await;
        let room = server.create_room_with("Rules", 10, false, "off").await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;

        // Too long: clipped with a marker, never silently cut.
        let long = "x".repeat(4_000);
        discord.post_as_user(CHANNEL, 42, "dana", &long);
        let message = from_discord(&mut alice).await;
        assert!(message.text.chars().count() <= app::rules::MESSAGE_MAX_CHARS, "{}", message.text.len());
        assert!(message.text.ends_with("more characters in Discord]"), "{}", &message.text[message.text.len() - 60..]);

        // Attachments and stickers as links and placeholders; mentions by name.
        let mut with_file = discord.user_message(CHANNEL, 43, "erin", "see <@42>");
        with_file.mentions = vec![
            serde_json::from_value(serde_json::json!({"id": "42", "username": "dana", "discriminator": "0",
                "avatar": null, "public_flags": 0, "bot": false}))
            .expect("a mention"),
        ];
        with_file.attachments = vec![
            serde_json::from_value(serde_json::json!({"id": "7", "filename": "cat.png", "size": 1024,
                "url": "https://cdn.example/cat.png", "proxy_url": "https://media.example/cat.png"}))
            .expect("an attachment"),
        ];
        discord.post_message(with_file);
        let message = from_discord(&mut alice).await;
        assert_eq!(message.text, "see @dana\n[attachment: cat.png] https://cdn.example/cat.png");

        // A Discord author named like a member is still a Discord author.
        discord.post_as_user(CHANNEL, 44, "alice", "it is me");
        let message = from_discord(&mut alice).await;
        assert_eq!((message.author.nickname.as_str(), message.source), ("alice", Source::Discord));

        // A flood from one Discord user meets the same rate limit as a browser's.
        for i in 0..6 {
            discord.post_as_user(CHANNEL, 45, "flood", &format!("flood {i}"));
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mut seen = 0;
        while let Some(ServerMsg::MessagePosted { message }) =
            tokio::time::timeout(Duration::from_millis(200), alice.next()).await.ok().flatten()
        {
            if message.author.nickname == "flood" {
                seen += 1;
            }
        }
        assert_eq!(seen, 3, "a burst of 3, the rest refused");
        let health = server.health().await;
        assert!(health["discord"]["refused"].as_u64().is_some_and(|n| n >= 3), "{health}");
    });
}

#[test]
fn a_global_429_is_waited_out_and_order_kept() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Busy", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        discord.fail_next(1, Fault::RateLimited { global: true, retry_after: Duration::from_millis(1500) });
        for i in 1..=5 {
            alice.say(&format!("m{i}"), &format!("r{i}")).await.expect("posted");
        }
        let sent = wait_for_embeds(&discord, 5).await;
        let texts: Vec<_> = sent.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(texts, ["m1", "m2", "m3", "m4", "m5"], "each once, in order");
        let posts: Vec<_> = discord.requests().into_iter().filter(|r| r.method == "POST").collect();
        let limited = posts.iter().position(|r| r.status == 429).expect("the 429");
        let next = &posts[limited + 1];
        let waited = next.at.duration_since(posts[limited].at);
        assert!(waited >= Duration::from_millis(1400), "the next request came after {waited:?}");
        assert_eq!(posts.iter().filter(|r| r.status == 429).count(), 1, "no refused request beyond the first");
    });
}

#[test]
fn a_rejected_token_stops_the_bridge_and_the_chat_goes_on() {
    run(async {
        let discord = standin().await;
        discord.set_token_valid(false);
        let mut config = config();
        bridged(&mut config, &discord);
        let server = TestServer::with(config).await;
        eventually(WAIT, "the bridge stops", || async { server.health().await["discord"]["state"] == "stopped" }).await;
        let health = server.health().await;
        assert!(health["discord"]["error"].as_str().is_some_and(|e| e.contains("token")), "{health}");
        assert_eq!(health["status"], "ok", "the chat is unaffected");
        let requests = discord.requests().len();
        let (mut alice, _) = server.member("lobby", "alice").await;
        let (mut bob, _) = server.member("lobby", "bob").await;
        alice.say("still here", "a1").await.expect("posted");
        bob.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(discord.requests().len(), requests, "the bridge stopped trying");
        // The console says why, and linking is refused with a sentence.
        let cookie = server.sign_in().await;
        let snapshot = server.mod_snapshot(&cookie).await;
        assert_eq!(snapshot.discord.as_ref().map(|d| d.state.as_str()), Some("stopped"));
        let action = ModAction::LinkDiscord { room: "lobby".into(), channel_id: CHANNEL.to_string(), joins: false };
        let response = server.moderate(Some(&cookie), &action).await;
        assert!(response.body.contains("stopped"), "{}", response.body);
    });
}

#[test]
fn a_missing_permission_stops_that_link_only() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Forbidden", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        discord.fail_next(1, Fault::Forbidden);
        alice.say("will not cross", "a1").await.expect("posted in Burner");
        let cookie = server.sign_in().await;
        eventually(WAIT, "the console shows the problem", || async {
            let snapshot = server.mod_snapshot(&cookie).await;
            let link = snapshot.discord.and_then(|d| d.links.into_iter().next());
            link.and_then(|l| l.problem).is_some_and(|p| p.contains("permission"))
        })
        .await;
        let refused = discord.requests().iter().filter(|r| r.status == 403).count();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(discord.requests().iter().filter(|r| r.status == 403).count(), refused, "no more refused requests");
        assert_eq!(server.health().await["discord"]["state"], "connected", "the bridge itself goes on");
    });
}

#[test]
fn a_dropped_gateway_resumes_without_losing_a_message() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Resume", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        discord.drop_gateway();
        discord.post_as_user(CHANNEL, 42, "dana", "said while the gateway was down");
        assert_eq!(from_discord(&mut alice).await.text, "said while the gateway was down");
        let counters = discord.counters();
        assert!(counters.resumes >= 1 && counters.resume_connections >= 1, "{counters:?}");
        assert_eq!(counters.identifies, 1, "resumed, not identified again");
    });
}

#[test]
fn a_restarted_bridge_neither_loses_nor_duplicates() {
    run(async {
        let discord = standin().await;
        let data = tempfile::tempdir().expect("data directory");
        let start = || {
            let mut config = config();
            bridged(&mut config, &discord);
            config.data_dir = data.path().to_owned();
            TestServer::with(config)
        };
        let server = start().await;
        connected(&server).await;
        let room = server.create_room("Restart", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        alice.say("before", "a1").await.expect("posted");
        wait_for_embeds(&discord, 1).await;
        // Discord is away: the next message waits in the outbox when Burner stops.
        discord.fail_next(1000, Fault::ServerError);
        alice.say("queued", "a2").await.expect("posted");
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(alice);
        server.stop().await;
        discord.clear_faults();
        discord.post_as_user(CHANNEL, 42, "dana", "said while Burner was down");

        let server = start().await;
        connected(&server).await;
        let sent = wait_for_embeds(&discord, 2).await;
        let texts: Vec<_> = sent.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(texts, ["before", "queued"], "the queued message crossed, once");
        let page = format!("/r/{}", room.slug);
        eventually(WAIT, "the missed Discord message arrives", || async {
            server.http("GET", &page, None).await.body.contains("said while Burner was down")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_dave, joined) = server.member(&room.slug, "dave").await;
        let replays = joined.history.iter().filter(|m| m.text == "said while Burner was down").count();
        assert_eq!(replays, 1, "crossed once");
        assert!(discord.counters().resumes >= 1, "the gateway session was resumed: {:?}", discord.counters());
    });
}

#[test]
fn the_round_trip_takes_milliseconds() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Latency", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        let started = Instant::now();
        alice.say("ping", "a1").await.expect("posted");
        wait_for_embeds(&discord, 1).await;
        discord.post_as_user(CHANNEL, 42, "dana", "pong");
        from_discord(&mut alice).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    });
}

#[test]
fn three_nodes_carry_each_message_once_each_way_even_when_the_bridge_moves() {
    run(async {
        use crate::{
            cluster::node_with,
            services::{Postgres, Redis},
        };
        let discord = standin().await;
        let (database, redis) = (Postgres::shared().database().await, Redis::start());
        let mut nodes = Vec::new();
        for name in ["a", "b", "c"] {
            nodes.push(node_with(name, &database, &redis, |config| bridged(config, &discord)).await);
        }
        // The node running the bridge says "connected"; the others say so too, naming it.
        let state = |health: serde_json::Value| {
            let discord = &health["discord"];
            let running = discord["active_node"].is_null();
            format!("{}{}", discord["state"].as_str().unwrap_or(""), if running { "" } else { " elsewhere" })
        };
        let mut active = None;
        eventually(WAIT, "one node runs the bridge", || async {
            let mut states = Vec::new();
            for node in &nodes {
                states.push(state(node.health().await));
            }
            states.iter().filter(|s| *s == "connected").count() == 1
                && states.iter().filter(|s| *s == "connected elsewhere").count() == 2
        })
        .await;
        for (index, node) in nodes.iter().enumerate() {
            if state(node.health().await) == "connected" {
                active = Some(index);
            }
        }
        let active = active.expect("an active node");
        let room = nodes[0].create_room("Everywhere", 10, false).await;
        link(&nodes[(active + 1) % 3], &room.slug).await;
        // People on the two other nodes.
        let (mut alice, _) = nodes[(active + 1) % 3].member(&room.slug, "alice").await;
        let (mut carol, _) = nodes[(active + 2) % 3].member(&room.slug, "carol").await;
        let bridge_joined =
            |m: &ServerMsg| matches!(m, ServerMsg::MemberJoined { member, .. } if member.nickname == "Discord");
        tokio::time::timeout(WAIT, carol.recv_until(bridge_joined)).await.expect("the bridge takes its place");
        for i in 1..=3 {
            alice.say(&format!("burner {i}"), &format!("a{i}")).await.expect("posted");
        }
        for i in 1..=3 {
            discord.post_as_user(CHANNEL, 42, "dana", &format!("discord {i}"));
        }
        for member in [&mut alice, &mut carol] {
            for i in 1..=3 {
                assert_eq!(from_discord(member).await.text, format!("discord {i}"));
            }
        }
        let sent = wait_for_embeds(&discord, 3).await;
        assert_eq!(sent.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["burner 1", "burner 2", "burner 3"]);

        // An edit in Discord reaches every node, and the history Redis keeps.
        let first = discord.messages(CHANNEL).into_iter().find(|m| m.content == "discord 1").expect("in the channel");
        discord.edit_as_user(CHANNEL, first.id.get(), "discord 1, edited");
        for member in [&mut alice, &mut carol] {
            let edited = member.recv_until(|m| matches!(m, ServerMsg::MessageEdited { .. })).await;
            assert!(matches!(edited, ServerMsg::MessageEdited { ref text, .. } if text == "discord 1, edited"));
        }
        let mut redis = crate::shared_rooms::inspect(&redis).await;
        let history: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("burner:room:{}:history", room.slug))
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .expect("LRANGE");
        let edited: Vec<_> =
            history.iter().filter(|e| e.contains(r#""text":"discord 1, edited","edited":true"#)).collect();
        assert_eq!(edited.len(), 1, "{history:?}");
        assert_eq!(edited[0].matches(r#""edited""#).count(), 1, "one key, so the entry still reads: {}", edited[0]);

        // The active node goes away: another takes the bridge over, and nothing crosses twice.
        let gone = nodes.remove(active);
        gone.stop().await;
        eventually(Duration::from_secs(20), "another node runs the bridge", || async {
            let mut connected = 0;
            for node in &nodes {
                connected += usize::from(state(node.health().await) == "connected");
            }
            connected == 1
        })
        .await;
        alice.say("burner 4", "a4").await.expect("posted");
        discord.post_as_user(CHANNEL, 42, "dana", "discord 4");
        assert_eq!(from_discord(&mut carol).await.text, "discord 4");
        let sent = wait_for_embeds(&discord, 4).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let texts: Vec<_> = embeds(&discord).into_iter().map(|(_, t)| t).collect();
        assert_eq!(texts, ["burner 1", "burner 2", "burner 3", "burner 4"], "each once, in order ({sent:?})");
        carol.assert_silent(Duration::from_millis(300)).await;
    });
}

#[test]
fn a_moderator_mutes_a_discord_author_in_a_room() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let room = server.create_room("Muting", 10, false).await;
        link(&server, &room.slug).await;
        let (mut alice, _) = server.member(&room.slug, "alice").await;
        discord.post_as_user(CHANNEL, 66, "troll", "first");
        let first = from_discord(&mut alice).await;
        let cookie = server.sign_in().await;
        let mute = ModAction::MuteDiscordAuthor { room: room.slug.clone(), seq: first.seq };
        let done = server.must_moderate(&cookie, &mute).await;
        assert!(done.contains("troll"), "{done}");
        // A Burner message is not a Discord author's.
        let (seq, _) = alice.say("mine", "a1").await.expect("posted");
        let refused =
            server.moderate(Some(&cookie), &ModAction::MuteDiscordAuthor { room: room.slug.clone(), seq }).await;
        assert_eq!(refused.status, 400, "{}", refused.body);

        discord.post_as_user(CHANNEL, 66, "troll", "second");
        discord.post_as_user(CHANNEL, 42, "dana", "still heard");
        assert_eq!(from_discord(&mut alice).await.text, "still heard", "the muted author's message stays in Discord");
        let snapshot = server.mod_snapshot(&cookie).await;
        let muted = &snapshot.discord.expect("the bridge").links[0].muted;
        assert_eq!(muted.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["troll"]);

        let unmute = ModAction::UnmuteDiscordAuthor { room: room.slug.clone(), author_id: muted[0].id.clone() };
        server.must_moderate(&cookie, &unmute).await;
        discord.post_as_user(CHANNEL, 66, "troll", "third");
        assert_eq!(from_discord(&mut alice).await.text, "third");
    });
}

#[test]
fn joins_and_leaves_cross_only_when_the_link_asks_for_them() {
    run(async {
        let discord = standin().await;
        let server = bridged_server(&discord, |_| {}).await;
        let quiet = server.create_room("Quiet", 10, false).await;
        let told = server.create_room("Told", 10, false).await;
        link(&server, &quiet.slug).await;
        let cookie = server.sign_in().await;
        let action = ModAction::LinkDiscord { room: told.slug.clone(), channel_id: "601".into(), joins: true };
        server.must_moderate(&cookie, &action).await;
        let (alice, _) = server.member(&quiet.slug, "alice").await;
        let (bob, _) = server.member(&told.slug, "bob").await;
        drop(bob);
        let notices =
            || discord.messages(601).into_iter().map(|m| m.content).filter(|c| !c.is_empty()).collect::<Vec<_>>();
        eventually(WAIT, "the told channel hears of bob", || async { notices().len() >= 2 }).await;
        assert_eq!(notices(), ["*bob joined*", "*bob left*"]);
        drop(alice);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(discord.messages(CHANNEL).is_empty(), "the quiet channel is told nothing");
    });
}
