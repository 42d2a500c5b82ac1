//! Golden JSON: the exact wire shape of every message, so a change to the contract is a
//! deliberate edit here (and in docs/PROTOCOL.md), never an accident.

use super::*;
use serde_json::{Value, json};

fn member(id: u64, nickname: &str) -> Member {
    Member { id, nickname: nickname.to_owned() }
}

fn room() -> RoomSummary {
    RoomSummary { slug: "night-owls-k3x9q".into(), name: "Night owls".into(), members: 2, limit: 10, one_way: true }
}

fn message() -> ChatMessage {
    ChatMessage {
        seq: 42,
        at: 1_763_750_000_000,
        author: member(7, "alice"),
        text: "hello".into(),
        mentions: vec![],
        source: Source::Burner,
        edited: false,
    }
}

fn assert_server(msg: ServerMsg, expected: Value) {
    assert_eq!(serde_json::to_value(&msg).expect("serialises"), expected);
    assert_eq!(serde_json::from_value::<ServerMsg>(expected).expect("parses"), msg);
    assert_eq!(serde_json::from_str::<ServerMsg>(&msg.encode()).expect("encode round-trips"), msg);
    assert_eq!(ServerMsg::from_json(&msg.encode()).expect("the browser's decoder reads it"), msg);
}

fn assert_client(msg: ClientMsg, expected: Value) {
    assert_eq!(serde_json::to_value(&msg).expect("serialises"), expected);
    assert_eq!(ClientMsg::from_json(&expected.to_string()).expect("parses"), msg);
    let written = msg.to_json();
    assert_eq!(written, serde_json::to_string(&msg).expect("serialises"), "the browser writes serde's bytes");
    assert_eq!(serde_json::from_str::<Value>(&written).expect("the browser writes JSON"), expected, "{written}");
    assert_eq!(ClientMsg::from_json(&written).expect("the server reads what the browser writes"), msg);
}

#[test]
fn the_browser_writes_any_text_as_the_server_reads_it() {
    for text in
        ["say \"hi\"", "back\\slash / slash", "line\nbreak\ttab\r", "\u{0}\u{8}\u{c}\u{1f}\u{7f}", "\u{2028}é😀", ""]
    {
        let msg = ClientMsg::SendMessage { text: text.to_owned(), client_ref: Some("\"ref\"".into()) };
        assert_eq!(ClientMsg::from_json(&msg.to_json()).expect("read back"), msg, "{text:?}");
        assert_eq!(msg.to_json(), serde_json::to_string(&msg).expect("serialises"), "the same bytes as serde's");
    }
}

#[test]
fn client_messages() {
    assert_client(ClientMsg::WatchDirectory {}, json!({"type": "watch_directory"}));
    assert_client(ClientMsg::UnwatchDirectory {}, json!({"type": "unwatch_directory"}));
    assert_client(
        ClientMsg::Join {
            room: "lobby".into(),
            nickname: "alice".into(),
            session: "s3cr3t-tab-id-0123456789".into(),
            resume: None,
        },
        json!({"type": "join", "room": "lobby", "nickname": "alice", "session": "s3cr3t-tab-id-0123456789"}),
    );
    assert_client(
        ClientMsg::Join {
            room: "lobby".into(),
            nickname: "alice".into(),
            session: "s3cr3t-tab-id-0123456789".into(),
            resume: Some(Resume { epoch: "9f2c41d07a6be513".into(), seq: 41 }),
        },
        json!({"type": "join", "room": "lobby", "nickname": "alice", "session": "s3cr3t-tab-id-0123456789",
               "resume": {"epoch": "9f2c41d07a6be513", "seq": 41}}),
    );
    assert_client(ClientMsg::Leave {}, json!({"type": "leave"}));
    assert_client(
        ClientMsg::SendMessage { text: "hi".into(), client_ref: Some("m1".into()) },
        json!({"type": "send_message", "text": "hi", "client_ref": "m1"}),
    );
    assert_client(
        ClientMsg::SendMessage { text: "hi".into(), client_ref: None },
        json!({"type": "send_message", "text": "hi"}),
    );
    assert_client(ClientMsg::Typing {}, json!({"type": "typing"}));
    assert_client(ClientMsg::ListMembers { before: 41 }, json!({"type": "list_members", "before": 41}));
}

#[test]
fn server_messages() {
    assert_server(
        ServerMsg::Welcome {
            protocol: 1,
            limits: Limits {
                nickname_chars: 24,
                room_name_chars: 48,
                message_chars: 2000,
                history: 50,
                room_limit_min: 2,
                room_limit_max: 1000,
                frame_bytes: 65536,
                message_burst: 10,
                message_interval_ms: 1000,
            },
        },
        json!({"type": "welcome", "protocol": 1, "limits": {
            "nickname_chars": 24, "room_name_chars": 48, "message_chars": 2000, "history": 50,
            "room_limit_min": 2, "room_limit_max": 1000, "frame_bytes": 65536,
            "message_burst": 10, "message_interval_ms": 1000}}),
    );
    let room_json =
        json!({"slug": "night-owls-k3x9q", "name": "Night owls", "members": 2, "limit": 10, "one_way": true});
    assert_server(ServerMsg::Directory { rooms: vec![room()] }, json!({"type": "directory", "rooms": [room_json]}));
    assert_server(
        ServerMsg::DirectoryChanged { updated: vec![room()], removed: vec!["old-room-a1b2c".into()] },
        json!({"type": "directory_changed", "updated": [room_json], "removed": ["old-room-a1b2c"]}),
    );
    let message_json =
        json!({"seq": 42, "at": 1_763_750_000_000_i64, "author": {"id": 7, "nickname": "alice"}, "text": "hello"});
    assert_server(
        ServerMsg::Joined {
            room: room(),
            settings: RoomSettings { profanity: Profanity::Mask, slow_mode_secs: 0, locked: false },
            you: member(8, "bob"),
            members: vec![member(7, "alice"), member(8, "bob")],
            epoch: "9f2c41d07a6be513".into(),
            continuity: Continuity::Fresh,
            history: vec![message()],
        },
        json!({"type": "joined", "room": room_json,
               "settings": {"profanity": "mask", "slow_mode_secs": 0, "locked": false},
               "you": {"id": 8, "nickname": "bob"},
               "members": [{"id": 7, "nickname": "alice"}, {"id": 8, "nickname": "bob"}],
               "epoch": "9f2c41d07a6be513", "continuity": "fresh", "history": [message_json]}),
    );
    assert_server(ServerMsg::Left { room: "lobby".into() }, json!({"type": "left", "room": "lobby"}));
    assert_server(
        ServerMsg::MemberJoined { member: member(9, "carol"), count: 3 },
        json!({"type": "member_joined", "member": {"id": 9, "nickname": "carol"}, "count": 3}),
    );
    assert_server(
        ServerMsg::MemberLeft { member: member(9, "carol"), count: 2 },
        json!({"type": "member_left", "member": {"id": 9, "nickname": "carol"}, "count": 2}),
    );
    assert_server(
        ServerMsg::MessagePosted { message: message() },
        json!({"type": "message_posted", "message": message_json}),
    );
    assert_server(
        ServerMsg::MessagePosted {
            message: ChatMessage { text: "@bob look".into(), mentions: vec!["Bob".into()], ..message() },
        },
        json!({"type": "message_posted", "message": {"seq": 42, "at": 1_763_750_000_000_i64,
               "author": {"id": 7, "nickname": "alice"}, "text": "@bob look", "mentions": ["Bob"]}}),
    );
    assert_server(
        ServerMsg::MessagePosted {
            message: ChatMessage { author: member(3, "dana"), source: Source::Discord, ..message() },
        },
        json!({"type": "message_posted", "message": {"seq": 42, "at": 1_763_750_000_000_i64,
               "author": {"id": 3, "nickname": "dana"}, "text": "hello", "source": "discord"}}),
    );
    assert_server(
        ServerMsg::MessageEdited { seq: 44, text: "hi from Discord (typo fixed)".into() },
        json!({"type": "message_edited", "seq": 44, "text": "hi from Discord (typo fixed)"}),
    );
    assert_server(
        ServerMsg::MessagePosted { message: ChatMessage { edited: true, ..message() } },
        json!({"type": "message_posted", "message": {"seq": 42, "at": 1_763_750_000_000_i64,
               "author": {"id": 7, "nickname": "alice"}, "text": "hello", "edited": true}}),
    );
    assert_server(
        ServerMsg::MemberTyping { member: member(7, "alice") },
        json!({"type": "member_typing", "member": {"id": 7, "nickname": "alice"}}),
    );
    assert_server(
        ServerMsg::MessageAccepted { client_ref: Some("m1".into()), seq: 42, at: 1_763_750_000_000 },
        json!({"type": "message_accepted", "client_ref": "m1", "seq": 42, "at": 1_763_750_000_000_i64}),
    );
    assert_server(
        ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: "Slow down: you can send again in 2 seconds.".into(),
            client_ref: Some("m2".into()),
            retry_after_ms: Some(1800),
        },
        json!({"type": "error", "code": "rate_limited", "message": "Slow down: you can send again in 2 seconds.",
               "client_ref": "m2", "retry_after_ms": 1800}),
    );
    assert_server(
        ServerMsg::error(ErrorCode::RoomFull, "This room is full (2/2)."),
        json!({"type": "error", "code": "room_full", "message": "This room is full (2/2)."}),
    );
    assert_server(ServerMsg::MessageDeleted { seq: 42 }, json!({"type": "message_deleted", "seq": 42}));
    assert_server(
        ServerMsg::RoomSettingsChanged {
            settings: RoomSettings { profanity: Profanity::Block, slow_mode_secs: 30, locked: true },
        },
        json!({"type": "room_settings_changed",
               "settings": {"profanity": "block", "slow_mode_secs": 30, "locked": true}}),
    );
    assert_server(ServerMsg::Reported { seq: 42 }, json!({"type": "reported", "seq": 42}));
    assert_server(
        ServerMsg::Members { members: vec![member(3, "carol"), member(5, "dave")], more: true },
        json!({"type": "members", "members": [{"id": 3, "nickname": "carol"}, {"id": 5, "nickname": "dave"}], "more": true}),
    );
}

#[test]
fn moderator_messages() {
    assert_client(ClientMsg::ModWatch {}, json!({"type": "mod_watch"}));
    assert_client(
        ClientMsg::Report { seq: 42, reason: "spam".into() },
        json!({"type": "report", "seq": 42, "reason": "spam"}),
    );
    assert_client(ClientMsg::Report { seq: 42, reason: String::new() }, json!({"type": "report", "seq": 42}));
    let snapshot = ModSnapshot {
        rooms: vec![ModRoom {
            room: room(),
            settings: RoomSettings::default(),
            members: vec![ModMember {
                id: 7,
                nickname: "alice".into(),
                ip_hash: "0a1b2c3d4e5f60718293a4b5".into(),
                since: 1_763_749_000_000,
                sent: 3,
                shadow_muted: false,
            }],
            recent: vec![ModMessage {
                seq: 42,
                at: 1_763_750_000_000,
                author: member(7, "alice"),
                author_hash: "0a1b2c3d4e5f60718293a4b5".into(),
                text: "hello".into(),
                shadow_muted: false,
                source: Source::Burner,
            }],
        }],
        bans: vec![BanView {
            id: 3,
            target: "address 0a1b2c3d4e5f60718293a4b5".into(),
            reason: "spam".into(),
            created_at: 1_763_750_000_000,
            expires_at: None,
        }],
        reports: vec![],
        audit: vec![AuditView {
            at: 1_763_750_000_000,
            action: "ban".into(),
            target: "address 0a1b2c3d4e5f60718293a4b5".into(),
            reason: "spam".into(),
        }],
        discord: None,
    };
    let encoded = ServerMsg::ModSnapshot { snapshot: snapshot.clone() }.encode();
    // The server and the console read the moderators' snapshot; the visitors' bundle is built
    // without its reader (it never gets one), and skips it as a message it does not know.
    #[cfg(any(feature = "ssr", feature = "console"))]
    assert_eq!(ServerMsg::from_json(&encoded).expect("decodes"), ServerMsg::ModSnapshot { snapshot });
    #[cfg(not(any(feature = "ssr", feature = "console")))]
    assert!(ServerMsg::from_json(&encoded).is_err(), "the visitors' build has no reader for it");
    let ban = json!({"action": "ban", "target": {"kind": "member", "room": "lobby", "member": 7},
                     "reason": "spam", "duration_secs": 3600});
    assert_eq!(
        serde_json::from_value::<ModAction>(ban).expect("parses"),
        ModAction::Ban {
            target: BanTarget::Member { room: "lobby".into(), member: 7 },
            reason: "spam".into(),
            duration_secs: Some(3600),
        }
    );
    let unban = json!({"action": "unban", "id": 3});
    assert_eq!(serde_json::from_value::<ModAction>(unban).expect("parses"), ModAction::Unban { id: 3 });
    assert!(serde_json::from_value::<ModAction>(json!({"action": "unban", "id": 3, "x": 1})).is_err());
}

#[test]
fn the_browser_decoder_refuses_what_is_not_a_message() {
    assert!(ServerMsg::from_json(r#"{"type": "party"}"#).is_err());
    assert!(ServerMsg::from_json(r#"{"type": "left"}"#).is_err(), "missing field");
    assert!(ServerMsg::from_json("[]").is_err());
    let newer = r#"{"type": "left", "room": "lobby", "added_later": 1}"#;
    assert_eq!(ServerMsg::from_json(newer).ok(), Some(ServerMsg::Left { room: "lobby".into() }));
}

#[test]
fn every_continuity_and_error_code_has_a_snake_case_name() {
    let names: Vec<Value> = [Continuity::Fresh, Continuity::Resumed, Continuity::Gap, Continuity::Reset]
        .iter()
        .map(|c| serde_json::to_value(c).expect("serialises"))
        .collect();
    assert_eq!(names, vec![json!("fresh"), json!("resumed"), json!("gap"), json!("reset")]);
    assert_eq!(serde_json::to_value(ErrorCode::NicknameTaken).expect("serialises"), json!("nickname_taken"));
    assert_eq!(serde_json::to_value(ErrorCode::TooLong).expect("serialises"), json!("too_long"));
}

#[test]
fn unknown_types_and_fields_are_refused() {
    for bad in [
        r#"{"type": "shout", "text": "hi"}"#,
        r#"{"type": "send_message", "text": "hi", "colour": "red"}"#,
        r#"{"type": "send_message"}"#,
        r#"{"type": "send_message", "text": null}"#,
        r#"{"type": "send_message", "text": 5}"#,
        r#"{"type": "leave", "now": true}"#,
        r#"{"type": "join", "room": "lobby", "nickname": "a", "session": "s", "resume": {"epoch": "e", "seq": 1, "x": 0}}"#,
        r#"{"text": "hi"}"#,
        r#"["send_message", "hi"]"#,
        r#"{"type": "send_message", "text": "hi"} trailing"#,
    ] {
        assert!(ClientMsg::from_json(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn close_codes_split_into_reconnect_and_terminal() {
    for code in [close::GOING_AWAY, 1006, 1011, 1012, close::SLOW, close::HEARTBEAT_TIMEOUT] {
        assert!(close::should_reconnect(code), "{code}");
    }
    for code in [
        1000,
        close::UNSUPPORTED_DATA,
        close::INVALID_PAYLOAD,
        close::TOO_BIG,
        close::PROTOCOL_VIOLATION,
        close::UNSUPPORTED_VERSION,
        close::REPLACED,
        close::IDLE,
        close::FLOOD,
        close::KICKED,
        close::BANNED,
        close::ROOM_CLOSED,
    ] {
        assert!(!close::should_reconnect(code), "{code}");
    }
}

#[test]
fn slugs() {
    for ok in ["lobby", "a", "rust-talk-k3x9q", "42"] {
        assert!(is_valid_slug(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "A", "a_b", "../etc", "a/b", "é", &"a".repeat(65)] {
        assert!(!is_valid_slug(bad), "{bad}");
    }
}

/// Every JSON example in docs/PROTOCOL.md is a real message: bots are written from that page.
#[test]
fn protocol_doc_examples_parse() {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let mut seen = 0;
    let mut rest = doc;
    while let Some(start) = rest.find("```json") {
        let body = &rest[start + 7..];
        let end = body.find("```").expect("closed code block");
        for line in body[..end].lines().map(str::trim).filter(|l| l.starts_with('{')) {
            let client = ClientMsg::from_json(line).is_ok();
            let server =
                ServerMsg::from_json(line).is_ok_and(|m| serde_json::from_str::<ServerMsg>(line).is_ok_and(|d| d == m));
            assert!(client || server, "PROTOCOL.md example is not a message: {line}");
            seen += 1;
        }
        rest = &body[end + 3..];
    }
    assert!(seen >= 14, "expected an example of every message, found {seen}");
}

#[test]
fn a_profanity_setting_is_named_as_on_the_wire() {
    for setting in [Profanity::Off, Profanity::Mask, Profanity::Block] {
        assert_eq!(serde_json::to_value(setting).expect("serialises"), json!(setting.as_str()));
    }
}
