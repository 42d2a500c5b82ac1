//! Server-rendered pages: readable without JavaScript, user text always shown as text.

use crate::support::*;
use app::protocol::{BanTarget, ModAction};

#[test]
fn the_directory_is_readable_without_javascript() {
    run(async {
        let server = TestServer::start().await;
        server.create_room("Night owls", 12, true).await;
        let page = server.http("GET", "/", None).await;
        assert_eq!(page.status, 200);
        assert!(page.headers.to_ascii_lowercase().contains("content-type: text/html"));
        for expected in
            ["<bdi>Lobby</bdi>", "<bdi>Night owls</bdi>", "One-way", ">12</span>", "Create room", r#"for="room-name""#]
        {
            assert!(page.body.contains(expected), "missing {expected}");
        }
        assert!(
            page.body.contains(r#"<form action="/api/create_room" method="post""#),
            "the form works without JavaScript"
        );
    })
}

/// A browser without JavaScript posts the form and sends no `Referer` (the pages ask it not to):
/// a refusal still comes back to the form as a sentence, and nothing is lost on the way.
#[test]
fn a_plain_form_refusal_comes_back_to_the_home_page_as_a_sentence() {
    run(async {
        let server = TestServer::start().await;
        let form = ("application/x-www-form-urlencoded", "name=Twice&limit=7");
        let html = [("accept", "text/html")];
        let created = server.send_http("POST", "/api/create_room", Some(form), &html).await;
        assert_eq!(created.status, 302);
        let room = created.header("location").expect("to the room");
        assert!(room.starts_with("/r/twice-"), "{room}");
        let refused = server.send_http("POST", "/api/create_room", Some(form), &html).await;
        let back = refused.header("location").expect("back to the form");
        assert!(back.starts_with("/?__path=%2Fapi%2Fcreate_room&__err="), "{back}");
        let page = server.http("GET", back, None).await;
        assert!(page.body.contains("A room with that name (or one that looks just like it) already exists."));
    })
}

#[test]
fn markup_in_names_and_messages_is_text_everywhere_in_the_page() {
    run(async {
        let server = TestServer::start().await;
        let hostile = "</script><script>alert(1)</script>";
        server.create_room(hostile, 5, false).await;
        let (mut alice, _) = server.member("lobby", "<img onerror=x>").await;
        alice.say("<b>bold</b> </script><script>alert(2)</script> javascript:alert(3)", "m").await.expect("posted");
        for path in ["/", "/r/lobby"] {
            let page = server.http("GET", path, None).await;
            assert!(!page.body.contains("<script>alert("), "{path}: markup got through");
            assert!(!page.body.contains("<img onerror"), "{path}");
            assert!(!page.body.contains("<b>bold"), "{path}");
        }
        let room = server.http("GET", "/r/lobby", None).await;
        assert!(room.body.contains("&lt;b&gt;bold&lt;/b&gt;"), "shown as text in the preview");
        assert!(!room.body.contains(r#"href="javascript:"#));
    })
}

#[test]
fn links_in_messages_are_safe_anchors() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        alice.say("see https://example.org/a?b=1 and ftp://no.example", "l").await.expect("posted");
        let room = server.http("GET", "/r/lobby", None).await;
        assert!(room.body.contains(r#"href="https://example.org/a?b=1""#), "{}", room.body);
        assert!(room.body.contains(r#"rel="noopener noreferrer nofollow""#));
        assert!(!room.body.contains(r#"href="ftp://"#));
    })
}

#[test]
fn a_message_travels_once_in_the_room_page() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Said once", 5, false).await.slug;
        let quiet = server.http("GET", &format!("/r/{room}"), None).await;
        assert!(!quiet.body.contains("Recent messages"), "nothing said yet, nothing to preview");
        assert!(quiet.body.contains(r#""recent":null"#), "{}", quiet.body);
        let (mut alice, _) = server.member(&room, "alice").await;
        alice.say("a sentence said only once", "o").await.expect("posted");
        let page = server.http("GET", &format!("/r/{room}"), None).await;
        assert!(page.body.contains("Recent messages"));
        // In the preview's rows, not again in the page's data, which says only that there are some.
        assert_eq!(page.body.matches("a sentence said only once").count(), 1, "{}", page.body);
        assert!(page.body.contains(r#""recent":[]"#), "{}", page.body);
    })
}

#[test]
fn one_way_rooms_show_no_messages_before_joining() {
    run(async {
        let server = TestServer::start().await;
        let room = server.create_room("Quiet", 5, true).await.slug;
        let (mut author, _) = server.member(&room, "author").await;
        author.say("do not show me", "q").await.expect("posted");
        let page = server.http("GET", &format!("/r/{room}"), None).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("This is a one-way room."));
        assert!(!page.body.contains("do not show me"), "an author reloading must not see it");
    })
}

#[test]
fn unknown_rooms_and_pages_are_404() {
    run(async {
        let server = TestServer::start().await;
        for path in ["/r/no-such-room", "/r/UPPER", "/nowhere"] {
            let page = server.http("GET", path, None).await;
            assert_eq!(page.status, 404, "{path}");
        }
        assert!(server.http("GET", "/r/no-such-room", None).await.body.contains("No such room"));
    })
}

#[test]
fn health_reports_rooms_and_connections() {
    run(async {
        let server = TestServer::start().await;
        let _client = server.client().await;
        let health = server.http("GET", "/healthz", None).await;
        assert_eq!(health.status, 200);
        let body: serde_json::Value = serde_json::from_str(&health.body).expect("json");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["rooms"], 1);
        assert_eq!(body["connections"], 1);
    })
}

/// Many servers in one process, starting and stopping while others render pages: no page may
/// wait on another server's state (leptos keeps some of it process-wide).
#[test]
fn pages_render_while_other_servers_start_and_stop() {
    run(async {
        let mut servers = Vec::new();
        for _ in 0..4 {
            servers.push(TestServer::start().await);
        }
        let churn = tokio::spawn(async {
            loop {
                TestServer::start().await.stop().await;
            }
        });
        for round in 0..40 {
            let paths = ["/", "/r/lobby", "/r/no-such-room", "/nowhere"];
            let pages = servers.iter().enumerate().map(|(i, server)| async move {
                let path = paths[(i + round) % paths.len()];
                (
                    path,
                    tokio::time::timeout(std::time::Duration::from_secs(3), server.http("GET", path, None))
                        .await
                        .is_ok(),
                )
            });
            for (path, answered) in futures_util::future::join_all(pages).await {
                assert!(answered, "round {round}: {path} never answered");
            }
        }
        churn.abort();
    })
}

/// A room page carries its messages twice (the HTML and the page data): it goes compressed to
/// a browser that accepts it, and as it is to one that does not.
#[test]
fn pages_go_compressed_to_browsers_that_accept_it() {
    run(async {
        let server = TestServer::start().await;
        let compressed = server.send_http("GET", "/r/lobby", None, &[("accept-encoding", "br, gzip")]).await;
        assert_eq!(compressed.status, 200);
        assert_eq!(compressed.header("content-encoding"), Some("br"));
        let plain = server.http("GET", "/r/lobby", None).await;
        assert_eq!(plain.header("content-encoding"), None);
        assert!(plain.body.contains("<bdi>Lobby</bdi>"));
    })
}

/// The page's body with its nonce taken out, after checking the scripts carry the policy's.
fn without_nonce(page: &HttpResponse) -> (String, String) {
    let nonce = page.script_nonce().expect("a nonce in script-src").to_owned();
    assert!(page.body.contains(&format!("nonce=\"{nonce}\"")), "the scripts carry the policy's nonce");
    (nonce.clone(), page.body.replace(&nonce, "NONCE"))
}

/// Directory and room pages are kept once rendered: the next request for the same page gets the
/// same bytes with a nonce of its own, and a page that changed (a message, a join) is rendered
/// anew, never served stale.
#[test]
fn a_page_served_again_is_the_page_rendered_anew_with_its_own_nonce() {
    run(async {
        let server = TestServer::start().await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        alice.say("kept <b>once</b>", "k1").await.expect("posted");
        // Rendered (the page changed with the message), then served again.
        let fresh = server.http("GET", "/r/lobby", None).await;
        let again = server.http("GET", "/r/lobby", None).await;
        let ((fresh_nonce, fresh), (again_nonce, again)) = (without_nonce(&fresh), without_nonce(&again));
        assert_ne!(fresh_nonce, again_nonce, "a nonce per response");
        assert_eq!(fresh, again, "served again, the same page");
        assert!(again.contains("kept &lt;b&gt;once&lt;/b&gt;") && again.contains(">1 / "));

        let (mut bob, _) = server.member("lobby", "bob").await;
        let joined = server.http("GET", "/r/lobby", None).await;
        assert!(joined.body.contains(">2 / "), "a join is seen at once");
        bob.say("said after the page was kept", "b1").await.expect("posted");
        let changed = server.http("GET", "/r/lobby", None).await;
        assert!(changed.body.contains("said after the page was kept"), "a message is seen at once");
        let home = server.http("GET", "/", None).await;
        assert!(home.body.contains("<bdi>Lobby</bdi>"));
    })
}

/// What keeping pages rests on: the same page rendered twice is the same bytes but its nonce.
#[test]
fn a_page_rendered_twice_differs_only_in_its_nonce() {
    run(async {
        let mut config = config();
        config.page_cache_mb = 0;
        let server = TestServer::with(config).await;
        let (mut alice, _) = server.member("lobby", "alice").await;
        alice.say("rendered twice", "r1").await.expect("posted");
        for path in ["/r/lobby", "/"] {
            let (first_nonce, first) = without_nonce(&server.http("GET", path, None).await);
            let (second_nonce, second) = without_nonce(&server.http("GET", path, None).await);
            assert_ne!(first_nonce, second_nonce);
            assert_eq!(first, second, "{path}");
        }
    })
}

/// A kept page is shared by everyone who would get the same page, and only by them: a banned
/// visitor's page carries its ban sentence, and that sentence never reaches anyone else.
#[test]
fn a_kept_page_never_carries_one_visitors_ban_to_another() {
    run(async {
        let server = TestServer::behind_a_loopback_proxy().await;
        let cookie = server.sign_in().await;
        let ban = ModAction::Ban {
            target: BanTarget::Address { address: "203.0.113.5".into() },
            reason: "raid".into(),
            duration_secs: Some(0),
        };
        server.must_moderate(&cookie, &ban).await;
        let get_as = |address: &'static str| {
            let server = &server;
            async move { server.send_http("GET", "/r/lobby", None, &[("x-forwarded-for", address)]).await.body }
        };
        for page in [get_as("198.51.100.1").await, get_as("198.51.100.1").await] {
            assert!(!page.contains("You are banned") && page.contains("Join"), "a visitor's page: no ban");
        }
        let banned = get_as("203.0.113.5").await;
        assert!(banned.contains("You are banned for good. Reason: raid"), "the banned visitor's own page");
        assert!(!get_as("198.51.100.2").await.contains("You are banned"), "and nobody else's");
    })
}
