//! BAD-INPUTS "Moderation", and the moderator console's actions end to end: sign-in, bans,
//! kicks, shadow-mutes, deletions, locks, slow mode, closing rooms, reports, the audit log.

use crate::support::{MOD_TOKEN, TestServer, run, session_for};
use app::protocol::{BanTarget, ClientMsg, ErrorCode, ModAction, ServerMsg, close};
use std::time::Duration;

fn ban_member(room: &str, member: u64, reason: &str, duration_secs: Option<u64>) -> ModAction {
    ModAction::Ban {
        target: BanTarget::Member { room: room.to_owned(), member },
        reason: reason.to_owned(),
        duration_secs,
    }
}

/// A visitor sending a moderator's command gets `permission_denied`, and nothing happens.
#[test]
fn a_visitor_cannot_moderate() {
    run(async {
        let server = TestServer::start().await;
        let (mut target, joined) = server.member("lobby", "target").await;
        let (mut visitor, _) = server.member("lobby", "visitor").await;

        let refusal = visitor.refusal_for(r#"{"type":"mod_watch"}"#).await;
        assert_eq!(refusal.code, ErrorCode::PermissionDenied);
        assert_eq!(refusal.message, "Only moderators can watch the console: sign in at /mod first.");

        let kick = ModAction::Kick { room: "lobby".into(), member: joined.you.id, reason: "no".into() };
        for cookie in [None, Some("burner_mod=0123456789abcdef"), Some("burner_mod=")] {
            let response = server.moderate(cookie, &kick).await;
            assert_eq!(response.status, 403, "{cookie:?}: {}", response.body);
            assert!(response.body.contains("permission_denied"), "{}", response.body);
        }
        let search = server
            .send_http("POST", "/api/search_log", Some(("application/json", r#"{"text":"","reveal":true}"#)), &[])
            .await;
        assert_eq!(search.status, 403);
        assert!(!search.body.contains("127.0.0.1"));

        // Nobody was kicked, nothing was broadcast: the target still talks and is heard.
        target.recv_until(|m| matches!(m, ServerMsg::MemberJoined { .. })).await;
        target.assert_silent(Duration::from_millis(200)).await;
        target.say("still here", "t1").await.expect("still a member");
        let heard = visitor.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        assert!(matches!(heard, ServerMsg::MessagePosted { message } if message.text == "still here"));

        // `/mod` without a session is the sign-in form, not the console.
        let page = server.http("GET", "/mod", None).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Moderator token") && !page.body.contains("Audit log"), "{}", page.body);
    });
}

#[test]
fn the_token_signs_in_with_a_strict_cookie_and_wrong_tokens_are_throttled() {
    run(async {
        let server = TestServer::start().await;
        let watcher = server.sign_in().await;
        let form = ("application/x-www-form-urlencoded", "token=wrong-token");
        let wrong = server.send_http("POST", "/mod/sign-in", Some(form), &[]).await;
        assert_eq!(wrong.status, 401);
        assert!(wrong.body.contains("That is not the moderator token."));
        assert!(wrong.header("set-cookie").is_none());

        let right = format!("token={MOD_TOKEN}");
        let signed_in =
            server.send_http("POST", "/mod/sign-in", Some(("application/x-www-form-urlencoded", &right)), &[]).await;
        assert_eq!((signed_in.status, signed_in.header("location")), (303, Some("/mod")));
        let set_cookie = signed_in.header("set-cookie").expect("cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        assert!(!set_cookie.contains("Secure"), "plain http here: {set_cookie}");
        let cookie = set_cookie.split(';').next().expect("pair");

        let console = server.send_http("GET", "/mod", None, &[("cookie", cookie)]).await;
        assert_eq!(console.status, 200);
        assert!(console.body.contains("Audit log") && console.body.contains("Sign out"), "{}", console.body);
        assert!(console.body.contains("/console-pkg/console.js"), "the console has its own bundle");

        let out = server.send_http("POST", "/mod/sign-out", None, &[("cookie", cookie)]).await;
        assert_eq!(out.status, 303);
        assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
        let after = server.moderate(Some(cookie), &ModAction::ResolveReport { id: 1 }).await;
        assert_eq!(after.status, 403, "signed out");

        // Guessing: five tries, then a wait.
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(server.send_http("POST", "/mod/sign-in", Some(form), &[]).await.status);
        }
        // Five tries in a burst, each counted, right or wrong: three were used above.
        assert_eq!(statuses, [401, 401, 429, 429, 429, 429]);
        let audit = server.mod_snapshot(&watcher).await.audit;
        assert_eq!(audit.iter().filter(|a| a.action == "sign_in_failed").count(), 3, "{audit:?}");
    });
}

/// The BAD-INPUTS row: a banned address is refused at the upgrade with the reason and expiry,
/// whatever socket, tab, nickname or room it tries; its open sockets close at once.
#[test]
fn a_ban_closes_the_address_sockets_and_refuses_every_new_one_until_lifted() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let room = server.create_room("Raided", 10, false).await;
        let (mut raider, joined) = server.member(&room.slug, "raider").await;
        let (mut second_tab, _) = server.member("lobby", "raider-alt").await;
        let mut console = server.connect_as(&[("cookie", &cookie)]).await.expect("moderator's socket");

        let done = server.must_moderate(&cookie, &ban_member(&room.slug, joined.you.id, "spamming links", None)).await;
        assert!(done.starts_with("Banned until "), "{done}");
        for socket in [&mut raider, &mut second_tab] {
            let frame = socket.closed().await.expect("a close frame");
            assert_eq!(u16::from(frame.code), close::BANNED);
            assert!(frame.reason.contains("spamming links"), "{}", frame.reason);
        }
        // The moderator's own socket from the same address stays open.
        console.send(&ClientMsg::WatchDirectory {}).await;
        console.recv_until(|m| matches!(m, ServerMsg::Directory { .. })).await;

        let (status, body) = server.connect_as(&[]).await.err().expect("refused at the upgrade");
        assert_eq!(status, 403);
        assert!(body.starts_with("You are banned until ") && body.ends_with("Reason: spamming links"), "{body}");
        let days = (7..=8).map(|d| app::text::utc_date_time(now_ms() + d * 86_400_000)[..11].to_owned());
        assert!(days.clone().any(|day| body.contains(&day)), "seven days from now: {body}");

        // Nor may it create rooms, and the pages tell it why instead of offering forms.
        let create = server.http("POST", "/api/create_room", Some("name=Again&limit=5")).await;
        assert_eq!(create.status, 403);
        assert!(create.body.contains("banned"), "{}", create.body);
        let home = server.http("GET", "/", None).await;
        assert!(home.body.contains("You are banned until") && !home.body.contains("Create room"));

        let snapshot = server.mod_snapshot(&cookie).await;
        let ban = snapshot.bans.first().expect("the ban is listed");
        assert_eq!(ban.reason, "spamming links");
        assert!(ban.target.starts_with("address ") && !ban.target.contains("127.0.0.1"), "{}", ban.target);
        assert!(snapshot.audit.iter().any(|a| a.action == "ban" && a.reason == "spamming links"));

        assert_eq!(server.must_moderate(&cookie, &ModAction::Unban { id: ban.id }).await, "The ban is lifted.");
        let (mut back, _) = server.member(&room.slug, "reformed").await;
        back.say("sorry", "s1").await.expect("welcome back");
        let lifted = server.moderate(Some(&cookie), &ModAction::Unban { id: ban.id }).await;
        assert_eq!(lifted.status, 404, "{}", lifted.body);
    });
}

#[test]
fn a_permanent_ban_of_a_hash_says_so() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let (_member, _) = server.member("lobby", "someone").await;
        let snapshot = server.mod_snapshot(&cookie).await;
        let hash = snapshot.rooms[0].members[0].ip_hash.clone();
        assert_eq!(hash.len(), 24);
        let action = |hash: &str| ModAction::Ban {
            target: BanTarget::Hash { hash: hash.to_owned() },
            reason: "threats".into(),
            duration_secs: Some(0),
        };
        let bad = server.moderate(Some(&cookie), &action("not-a-hash")).await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("24 hex digits"), "{}", bad.body);
        assert_eq!(server.must_moderate(&cookie, &action(&hash.to_uppercase())).await, "Banned for good.");
        let (_, body) = server.connect_as(&[]).await.err().expect("banned");
        assert_eq!(body, "You are banned for good. Reason: threats");
    });
}

#[test]
fn a_kick_closes_with_the_reason_and_the_room_hears_of_it() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let (mut rude, joined) = server.member("lobby", "rude").await;
        let (mut other, _) = server.member("lobby", "other").await;
        let kick = ModAction::Kick { room: "lobby".into(), member: joined.you.id, reason: "Be nice.".into() };
        assert_eq!(server.must_moderate(&cookie, &kick).await, "rude was removed from the room.");
        let frame = rude.closed().await.expect("close frame");
        assert_eq!((u16::from(frame.code), frame.reason.as_str()), (close::KICKED, "Be nice."));
        let left = other.recv_until(|m| matches!(m, ServerMsg::MemberLeft { .. })).await;
        assert!(matches!(left, ServerMsg::MemberLeft { member, .. } if member.nickname == "rude"));
        // A kick is not a ban.
        server.member("lobby", "rude").await;
        let again = server.moderate(Some(&cookie), &kick).await;
        assert_eq!(again.status, 404, "that membership is gone: {}", again.body);
    });
}

/// A shadow-muted member is not told: they see their messages as usual, nobody else does.
#[test]
fn a_shadow_muted_member_talks_to_nobody_without_knowing() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let (mut troll, joined) = server.member("lobby", "troll").await;
        let (mut other, _) = server.member("lobby", "other").await;
        let mute = |muted| ModAction::ShadowMute { room: "lobby".into(), member: joined.you.id, muted };
        server.must_moderate(&cookie, &mute(true)).await;

        troll.send(&ClientMsg::SendMessage { text: "can anyone hear me".into(), client_ref: Some("t1".into()) }).await;
        let echo = troll.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        assert!(matches!(echo, ServerMsg::MessagePosted { message } if message.text == "can anyone hear me"));
        assert!(matches!(troll.recv().await, ServerMsg::MessageAccepted { .. }), "acknowledged as usual");
        other.assert_silent(Duration::from_millis(300)).await;
        let (_, late) = server.member("lobby", "latecomer").await;
        assert!(late.history.iter().all(|m| m.text != "can anyone hear me"), "not in others' history");
        let snapshot = server.mod_snapshot(&cookie).await;
        let recent = &snapshot.rooms.iter().find(|r| r.room.slug == "lobby").expect("lobby").recent;
        assert!(recent.iter().any(|m| m.text == "can anyone hear me" && m.shadow_muted), "moderators see it");

        server.must_moderate(&cookie, &mute(false)).await;
        troll.say("hello again", "t2").await.expect("accepted");
        let heard = other.recv_until(|m| matches!(m, ServerMsg::MessagePosted { .. })).await;
        assert!(matches!(heard, ServerMsg::MessagePosted { message } if message.text == "hello again"));
    });
}

#[test]
fn a_deleted_message_disappears_live_and_from_history() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let (mut author, _) = server.member("lobby", "author").await;
        let (mut reader, _) = server.member("lobby", "reader").await;
        let (seq, _) = author.say("something awful", "a1").await.expect("posted");
        author.say("something fine", "a2").await.expect("posted");
        let delete = ModAction::DeleteMessage { room: "lobby".into(), seq, reason: "hateful".into() };
        assert_eq!(server.must_moderate(&cookie, &delete).await, "The message is deleted.");
        for client in [&mut author, &mut reader] {
            let gone = client.recv_until(|m| matches!(m, ServerMsg::MessageDeleted { .. })).await;
            assert_eq!(gone, ServerMsg::MessageDeleted { seq });
        }
        let (_, late) = server.member("lobby", "latecomer").await;
        let texts: Vec<&str> = late.history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["something fine"]);
        assert_eq!(server.moderate(Some(&cookie), &delete).await.status, 404, "already gone");
        let audit = server.mod_snapshot(&cookie).await.audit;
        assert!(audit.iter().any(|a| a.action == "delete_message" && a.reason == "hateful"));
    });
}

#[test]
fn lock_slow_mode_and_close_change_the_room_for_everyone() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let room = server.create_room("Heated", 10, false).await;
        let (mut member, _) = server.member(&room.slug, "member").await;

        server.must_moderate(&cookie, &ModAction::LockRoom { room: room.slug.clone(), locked: true }).await;
        let changed = member.recv_until(|m| matches!(m, ServerMsg::RoomSettingsChanged { .. })).await;
        assert!(matches!(changed, ServerMsg::RoomSettingsChanged { settings } if settings.locked));
        let mut newcomer = server.client().await;
        let refused = newcomer.join(&room.slug, "newcomer", &session_for("newcomer"), None).await.expect_err("locked");
        assert_eq!(refused.code, ErrorCode::RoomLocked);
        member.say("we are still here", "m1").await.expect("members stay and talk");
        server.must_moderate(&cookie, &ModAction::LockRoom { room: room.slug.clone(), locked: false }).await;
        newcomer.join(&room.slug, "newcomer", &session_for("newcomer"), None).await.expect("open again");

        server.must_moderate(&cookie, &ModAction::SlowMode { room: room.slug.clone(), seconds: 30 }).await;
        newcomer.say("first", "n1").await.expect("one message");
        let slow = newcomer.say("second", "n2").await.expect_err("slow mode");
        assert_eq!(slow.code, ErrorCode::SlowMode);
        assert_eq!(slow.message, "This room is in slow mode: one message every 30 seconds.");
        assert!(slow.retry_after_ms.is_some_and(|ms| ms > 25_000 && ms <= 30_000), "{:?}", slow.retry_after_ms);
        // Counted from each member's last message, also one from before slow mode began.
        assert_eq!(member.say("me too", "m2").await.expect_err("spoke recently").code, ErrorCode::SlowMode);

        let close_it = ModAction::CloseRoom { room: room.slug.clone(), reason: "This room is closed.".into() };
        server.must_moderate(&cookie, &close_it).await;
        for client in [&mut member, &mut newcomer] {
            let frame = client.closed().await.expect("close frame");
            assert_eq!(u16::from(frame.code), close::ROOM_CLOSED);
        }
        let mut late = server.client().await;
        let gone = late.join(&room.slug, "late", &session_for("late"), None).await.expect_err("gone");
        assert_eq!(gone.code, ErrorCode::RoomNotFound);
        let lobby = ModAction::CloseRoom { room: "lobby".into(), reason: "no".into() };
        assert_eq!(server.moderate(Some(&cookie), &lobby).await.status, 404, "the lobby always exists");
    });
}

/// A report keeps the room as the server saw it (the last 20 messages) and reaches the console.
#[test]
fn a_report_keeps_the_room_as_it_was_and_lands_in_the_queue() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let (mut author, _) = server.member("lobby", "author").await;
        let (mut reporter, _) = server.member("lobby", "reporter").await;
        let mut last = 0;
        for n in 0..25 {
            last = author.say(&format!("line {n}"), &format!("l{n}")).await.expect("posted").0;
        }
        reporter.send(&ClientMsg::Report { seq: last, reason: "harassment".into() }).await;
        let reported = reporter.recv_until(|m| matches!(m, ServerMsg::Reported { .. })).await;
        assert_eq!(reported, ServerMsg::Reported { seq: last });
        // Once per message: a second report is answered the same and files nothing.
        reporter.send(&ClientMsg::Report { seq: last, reason: "again".into() }).await;
        reporter.recv_until(|m| matches!(m, ServerMsg::Reported { .. })).await;
        let missing = reporter.refusal_for(r#"{"type":"report","seq":9999,"reason":""}"#).await;
        assert_eq!(missing.code, ErrorCode::BadRequest);

        // Deleting the message later does not change what the report saw.
        let delete = ModAction::DeleteMessage { room: "lobby".into(), seq: last, reason: String::new() };
        server.must_moderate(&cookie, &delete).await;
        let snapshot = server.mod_snapshot(&cookie).await;
        assert_eq!(snapshot.reports.len(), 1);
        let report = &snapshot.reports[0];
        assert_eq!((report.room.as_str(), report.message_seq, report.reason.as_str()), ("lobby", last, "harassment"));
        assert_eq!(report.snapshot.len(), 20);
        assert_eq!(report.snapshot.last().map(|m| m.text.as_str()), Some("line 24"));
        assert_eq!(report.snapshot[0].text, "line 5");
        assert!(!report.resolved);

        let resolve = ModAction::ResolveReport { id: report.id };
        assert_eq!(server.must_moderate(&cookie, &resolve).await, "The report is resolved.");
        assert!(server.mod_snapshot(&cookie).await.reports[0].resolved);
        assert_eq!(server.moderate(Some(&cookie), &resolve).await.status, 404);
    });
}

/// A one-way room's author cannot report (or even name) their own message: they never saw it.
#[test]
fn nobody_reports_what_they_could_not_see() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Confessions", 10, true).await;
        let (mut author, _) = server.member(&room.slug, "author").await;
        let (mut reader, _) = server.member(&room.slug, "reader").await;
        let (seq, _) = author.say("a secret", "c1").await.expect("acknowledged");
        let refused = author.refusal_for(&format!(r#"{{"type":"report","seq":{seq},"reason":""}}"#)).await;
        assert_eq!(refused.code, ErrorCode::BadRequest);
        reader.send(&ClientMsg::Report { seq, reason: String::new() }).await;
        assert_eq!(reader.recv_until(|m| matches!(m, ServerMsg::Reported { .. })).await, ServerMsg::Reported { seq });
    });
}

/// Raw addresses appear only where a moderator asks for them: not in the console's member list,
/// not in frames to visitors, and revealing them is itself audited.
#[test]
fn addresses_stay_hashed_unless_a_moderator_reveals_them() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let mut visitor = server.client().await;
        let joined = visitor.join("lobby", "visitor", &session_for("visitor"), None).await.expect("joined");
        assert!(!format!("{joined:?}").contains("127.0.0.1"));

        let snapshot = server.mod_snapshot(&cookie).await;
        let json = serde_json::to_string(&snapshot).expect("json");
        assert!(!json.contains("127.0.0.1"), "{json}");
        let hash = &snapshot.rooms[0].members[0].ip_hash;

        let hidden = server.search_log_until_found(&cookie, "visitor", false).await;
        assert!(!hidden.is_empty() && hidden.iter().all(|c| c.ip.is_none() && &c.ip_hash == hash));
        assert!(hidden[0].joins.iter().any(|(_, room, nickname)| room == "lobby" && nickname == "visitor"));
        let shown = server.search_log(&cookie, hash, true).await;
        assert!(shown.iter().all(|c| c.ip.as_deref() == Some("127.0.0.1")));
        assert_eq!(server.search_log(&cookie, "127.0.0.1", false).await.len(), shown.len(), "by address too");
        let audit = server.mod_snapshot(&cookie).await.audit;
        assert!(audit.iter().any(|a| a.action == "reveal_addresses" && &a.target == hash));
    });
}

/// Every response says no sniffing, no referrer, no framing; pages allow only their own
/// scripts, by nonce, and no inline ones.
#[test]
fn pages_carry_a_nonce_csp_and_the_hardening_headers() {
    run(async {
        let server = TestServer::start().await;
        let mut nonces = Vec::new();
        for path in ["/", "/r/lobby", "/mod", "/nowhere"] {
            let page = server.http("GET", path, None).await;
            assert_eq!(page.header("x-content-type-options"), Some("nosniff"), "{path}");
            assert_eq!(page.header("referrer-policy"), Some("no-referrer"), "{path}");
            assert_eq!(page.header("x-frame-options"), Some("DENY"), "{path}");
            let csp = page.header("content-security-policy").expect("CSP");
            assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
            let nonce = page.script_nonce().expect("a nonce in script-src").to_owned();
            // Every script on the page carries it (the page data is JSON, not a script).
            let scripts =
                page.body.matches("<script").count() - page.body.matches("<script type=\"application/json\"").count();
            assert!(scripts > 0, "{path}");
            assert_eq!(page.body.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "{path}: {}", page.body);
            nonces.push(nonce);
        }
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 4, "a fresh nonce per response");
        let api = server.http("GET", "/api/rooms", None).await;
        assert_eq!(api.header("content-security-policy"), Some("default-src 'none'; frame-ancestors 'none'"));
        assert_eq!(api.header("x-content-type-options"), Some("nosniff"));
    });
}

fn now_ms() -> i64 {
    server::conn_log::now_ms()
}

/// A browser on another site cannot make a signed-in moderator's browser act (or sign out).
#[test]
fn requests_from_other_sites_are_refused() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let room = server.create_room("Target", 5, false).await;
        let body =
            serde_json::json!({ "action": ModAction::CloseRoom { room: room.slug.clone(), reason: "x".into() } });
        let foreign = [("cookie", cookie.as_str()), ("origin", "http://evil.example")];
        let refused =
            server.send_http("POST", "/api/moderate", Some(("text/plain", &body.to_string())), &foreign).await;
        assert_eq!(refused.status, 403);
        assert_eq!(refused.body, "Requests from other sites are refused.");
        let out = server.send_http("POST", "/mod/sign-out", None, &foreign).await;
        assert_eq!(out.status, 403);
        // What browsers say of a request another site made, whatever its Origin.
        let cross = [("cookie", cookie.as_str()), ("sec-fetch-site", "cross-site"), ("origin", "null")];
        let refused = server.send_http("POST", "/api/moderate", Some(("text/plain", &body.to_string())), &cross).await;
        assert_eq!(refused.status, 403);
        let sibling = [("cookie", cookie.as_str()), ("sec-fetch-site", "same-site")];
        assert_eq!(server.send_http("POST", "/mod/sign-out", None, &sibling).await.status, 403);
        // Still open, still signed in; our own pages work (their form posts say `Origin: null`).
        let ours = [("cookie", cookie.as_str()), ("sec-fetch-site", "same-origin"), ("origin", "null")];
        let done =
            server.send_http("POST", "/api/moderate", Some(("application/json", &body.to_string())), &ours).await;
        assert_eq!(done.status, 200, "{}", done.body);
    });
}

/// Leaving and coming back (a reload, another tab, another nickname) lifts neither a
/// shadow-mute nor slow mode.
#[test]
fn leaving_and_rejoining_keeps_a_shadow_mute_and_slow_mode() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let room = server.create_room("Sticky", 10, false).await;
        let (mut troll, joined) = server.member(&room.slug, "troll").await;
        let mute = ModAction::ShadowMute { room: room.slug.clone(), member: joined.you.id, muted: true };
        server.must_moderate(&cookie, &mute).await;
        server.must_moderate(&cookie, &ModAction::SlowMode { room: room.slug.clone(), seconds: 60 }).await;
        troll.say("first", "t1").await.expect("accepted");
        troll.send(&ClientMsg::Leave {}).await;
        troll.recv_until(|m| matches!(m, ServerMsg::Left { .. })).await;
        let again = troll.join(&room.slug, "troll", &session_for("troll"), None).await.expect("back");
        assert!(!again.history.is_empty(), "they still see their own message");
        let slow = troll.say("second", "t2").await.expect_err("slow mode counts from before");
        assert_eq!(slow.code, ErrorCode::SlowMode);

        // Another tab and nickname from the same address: still muted.
        let (mut alt, _) = server.member(&room.slug, "not-a-troll").await;
        let (mut listener, _) = server.member(&room.slug, "listener").await;
        let snapshot = server.mod_snapshot(&cookie).await;
        let sticky = snapshot.rooms.iter().find(|r| r.room.slug == room.slug).expect("room");
        assert!(sticky.members.iter().any(|m| m.nickname == "not-a-troll" && m.shadow_muted));
        assert!(sticky.members.iter().any(|m| m.nickname == "troll" && m.shadow_muted));
        alt.say("hello from the other tab", "a1").await.expect("accepted");
        listener.assert_silent(Duration::from_millis(300)).await;
    });
}

/// A console socket stops seeing anything once its session is signed out.
#[test]
fn a_console_goes_dark_when_its_session_ends() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let mut console = server.connect_as(&[("cookie", &cookie)]).await.expect("console");
        console.recv_until(|m| matches!(m, ServerMsg::Welcome { .. })).await;
        console.send(&ClientMsg::ModWatch {}).await;
        console.recv_until(|m| matches!(m, ServerMsg::ModSnapshot { .. })).await;
        let own = server.origin();
        let out = server.send_http("POST", "/mod/sign-out", None, &[("cookie", &cookie), ("origin", &own)]).await;
        assert_eq!(out.status, 303);
        server.member("lobby", "newcomer").await; // something changes
        let ended = console.refusal().await;
        assert_eq!(ended.code, ErrorCode::PermissionDenied);
        console.assert_silent(Duration::from_millis(1_500)).await;
    });
}

/// Who is asking is decided once, the same way for every door: a moderator on a banned address
/// (an office behind one NAT) still gets the pages, a socket and room creation; a visitor on
/// the same address is told of the ban at each of them.
#[test]
fn a_moderator_on_a_banned_address_is_let_through_every_door_a_visitor_is_not() {
    run(async {
        let server = TestServer::start().await;
        let cookie = server.sign_in().await;
        let ban = ModAction::Ban {
            target: BanTarget::Address { address: "127.0.0.1".into() },
            reason: "shared office".into(),
            duration_secs: None,
        };
        server.must_moderate(&cookie, &ban).await;
        let as_moderator = [("cookie", cookie.as_str())];
        let form = Some(("application/x-www-form-urlencoded", "name=Staff+room&limit=5&listed=on&profanity=mask"));

        let visitor = server.send_http("POST", "/api/create_room", form, &[]).await;
        assert_eq!(visitor.status, 403, "{}", visitor.body);
        assert!(visitor.body.contains("shared office"), "{}", visitor.body);
        let moderator = server.send_http("POST", "/api/create_room", form, &as_moderator).await;
        assert_eq!(moderator.status, 200, "{}", moderator.body);

        assert!(server.http("GET", "/", None).await.body.contains("shared office"));
        assert!(!server.send_http("GET", "/", None, &as_moderator).await.body.contains("shared office"));

        assert_eq!(server.connect_as(&[]).await.err().map(|(status, _)| status), Some(403));
        assert!(server.connect_as(&as_moderator).await.is_ok());
    });
}
