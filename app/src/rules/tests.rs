use super::*;
use unicode_normalization::UnicodeNormalization;

fn name(s: &str) -> Name {
    nickname(s).unwrap_or_else(|e| panic!("{s:?} refused: {e}"))
}

/// The three forms share one string: each comes back whole, whatever the others' lengths.
#[test]
fn a_name_gives_back_its_display_key_and_shape() {
    for written in ["aIice", "Bob ЅМІТН", "李小龍", "e\u{301}mile", "rn l1I|0O", "Bob_42 x"] {
        let name = name(written);
        let display: String = written.nfkc().collect();
        assert_eq!(name.display(), display);
        assert_eq!(name.key(), confusable_key(&display));
        assert_eq!(name.shape(), unicode_security::skeleton(&display).collect::<String>());
    }
}

/// ASCII text's skeleton is put together from a table of the characters' own: it must be
/// exactly what the full mapping gives, for every character and every pair (a pair is where a
/// mapping could reach across characters). And a name check skips NFKC for ASCII text, which it
/// must leave as it is.
#[test]
fn the_skeleton_of_ascii_text_is_the_full_mappings() {
    let full = |s: &str| unicode_security::skeleton(s).collect::<String>();
    let ascii: Vec<char> = (0..128_u8).map(char::from).collect();
    for &a in &ascii {
        assert_eq!(skeleton(&a.to_string()), full(&a.to_string()), "{a:?}");
        for &b in &ascii {
            let pair: String = [a, b].into_iter().collect();
            assert_eq!(skeleton(&pair), full(&pair), "{pair:?}");
            assert_eq!(pair.nfkc().collect::<String>(), pair, "NFKC changed {pair:?}");
        }
    }
    for text in ["rnrn m", "Il1|", "admin", "m0derat0r", "e\u{301}", "Zoë"] {
        assert_eq!(skeleton(text), full(text), "{text:?}");
    }
}

#[test]
fn plain_and_unicode_nicknames_are_accepted() {
    for ok in ["alice", "Bob_42", "Zoë", "李小龍", "Ωmega", "émile", "नमस्ते", "Ngô Bảo", "🔥 fire", "a"]
    {
        let name = nickname(ok).unwrap_or_else(|e| panic!("{ok:?} refused: {e}"));
        assert!(!name.display().is_empty());
    }
}

#[test]
fn nicknames_are_nfkc_normalised_and_spaces_collapsed() {
    assert_eq!(nickname("ｆｕｌｌ").map(|n| n.display().to_owned()), Ok("full".to_owned()));
    assert_eq!(nickname("  two   words ").map(|n| n.display().to_owned()), Ok("two words".to_owned()));
    // e + combining acute becomes the single precomposed é.
    assert_eq!(nickname("e\u{301}mile").map(|n| n.display().to_owned()), Ok("émile".to_owned()));
    // Emoji presentation selectors are dropped, not refused.
    assert_eq!(nickname("❤\u{FE0F}").map(|n| n.display().to_owned()), Ok("❤".to_owned()));
}

#[test]
fn case_and_confusables_collide() {
    let alice = name("alice");
    for twin in [
        "ALICE",
        "Alice",
        "аlice", /* Cyrillic а */
        "АLICE", /* Cyrillic А */
        "aIice", /* capital i */
        "ａｌｉｃｅ",
    ] {
        assert!(name(twin).looks_like(&alice), "{twin:?} should look like alice");
        assert!(alice.looks_like(&name(twin)), "and the other way round");
    }
    assert_eq!(name("ALICE").key(), alice.key(), "case-folded skeletons are equal");
    assert!(name("paypal").looks_like(&name("pаypаl")));
    assert!(name("mary").looks_like(&name("rnary")));
    assert!(!name("alice").looks_like(&name("alicia")));
    assert!(!name("bob").looks_like(&name("bobby")));
}

#[test]
fn length_is_counted_in_characters_after_normalisation() {
    assert!(nickname(&"x".repeat(24)).is_ok());
    assert_eq!(nickname(&"x".repeat(25)), Err(NameError::TooLong { max: 24 }));
    assert!(nickname(&"é".repeat(24)).is_ok(), "24 two-byte characters fit");
    assert_eq!(nickname(&"a".repeat(5_000)), Err(NameError::TooLong { max: 24 }));
    // One ligature character that NFKC expands past the limit.
    assert_eq!(nickname(&"\u{FDFA}".repeat(2)), Err(NameError::TooLong { max: 24 }));
}

#[test]
fn empty_and_blank_names_are_refused() {
    for blank in ["", " ", "   ", "\u{3000}"] {
        assert_eq!(nickname(blank), Err(NameError::Empty), "{blank:?}");
    }
}

#[test]
fn invisible_and_direction_characters_are_refused() {
    let cases = [
        "ali\u{202E}ce",  // right-to-left override
        "ali\u{2066}ce",  // left-to-right isolate
        "ali\u{200F}ce",  // right-to-left mark
        "ali\u{200B}ce",  // zero-width space
        "ali\u{200D}ce",  // zero-width joiner
        "ali\u{2060}ce",  // word joiner
        "\u{FEFF}alice",  // byte-order mark
        "ali\u{AD}ce",    // soft hyphen
        "\u{3164}",       // Hangul filler: an "invisible name"
        "\u{2800}",       // braille blank
        "al\u{7}ice",     // bell
        "al\nice",        // newline
        "al\u{85}ice",    // next line (C1)
        "al\u{E0041}ice", // tag character
    ];
    for bad in cases {
        assert_eq!(nickname(bad), Err(NameError::Invisible), "{bad:?}");
    }
    assert_eq!(nickname("al\u{E000}ice"), Err(NameError::Forbidden), "private use");
    assert_eq!(nickname("al\u{2028}ice"), Err(NameError::Forbidden), "line separator");
}

#[test]
fn stacks_of_combining_marks_are_refused() {
    assert_eq!(nickname("z\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}algo"), Err(NameError::TooManyMarks));
    assert_eq!(nickname("\u{301}alice"), Err(NameError::LeadingMark));
    assert!(nickname("ệ").is_ok());
}

#[test]
fn reserved_names_and_their_look_alikes_are_refused() {
    for reserved in
        ["admin", "Admin", "ADMINISTRATOR", "аdmin", "System", "moderator", "burner", "Discord", "ｓｙｓｔｅｍ"]
    {
        assert_eq!(nickname(reserved), Err(NameError::Reserved), "{reserved:?}");
    }
    assert!(nickname("admiral").is_ok());
    assert!(room_name("System talk").is_ok(), "reserved words are fine in room names");
}

#[test]
fn room_names_follow_the_same_character_rules_with_their_own_length() {
    assert!(room_name(&"r".repeat(48)).is_ok());
    assert_eq!(room_name(&"r".repeat(49)), Err(NameError::TooLong { max: 48 }));
    assert_eq!(room_name(&"r".repeat(10_000)), Err(NameError::TooLong { max: 48 }));
    assert_eq!(room_name("a\u{202E}b"), Err(NameError::Invisible));
    assert_eq!(room_name("a\u{0}b"), Err(NameError::Invisible));
    assert_eq!(room_name("../../etc/passwd").map(|n| n.display().to_owned()), Ok("../../etc/passwd".to_owned()));
}

#[test]
fn messages_keep_their_text_and_collapse_blank_runs() {
    assert_eq!(message("hello"), Ok("hello".to_owned()));
    assert_eq!(message("a\n\n\n\n\nb"), Ok("a\n\nb".to_owned()));
    assert_eq!(message("a\r\nb\rc"), Ok("a\nb\nc".to_owned()));
    assert_eq!(message("\n\n  hi  \n\n"), Ok("  hi".to_owned()));
    assert_eq!(message("a\n \t \nb"), Ok("a\n\nb".to_owned()), "whitespace-only lines are blank");
    assert_eq!(message("a\u{7}b\u{1B}[31m"), Ok("ab[31m".to_owned()), "controls dropped");
    assert_eq!(message("<script>alert(1)</script>"), Ok("<script>alert(1)</script>".to_owned()));
    let spaced = format!("start{}end", "\n".repeat(100_000));
    assert_eq!(message(&spaced), Ok("start\n\nend".to_owned()));
}

#[test]
fn empty_and_overlong_messages_are_refused_never_truncated() {
    for empty in ["", "   ", "\n\n\n", &"\n".repeat(100_000), "\t\u{7}"] {
        assert_eq!(message(empty), Err(MessageError::Empty), "{empty:?}");
    }
    assert!(message(&"x".repeat(2_000)).is_ok());
    assert!(message(&"😀".repeat(2_000)).is_ok(), "the limit counts characters, not bytes");
    assert_eq!(message(&"x".repeat(2_001)), Err(MessageError::TooLong { chars: 2_001, max: 2_000 }));
}

#[test]
fn ban_durations_are_written_the_way_people_say_them() {
    assert_eq!(ban_duration(""), Ok(None), "the server's default");
    assert_eq!(ban_duration("7d"), Ok(Some(7 * 86_400)));
    assert_eq!(ban_duration(" 12 hours "), Ok(Some(12 * 3_600)));
    assert_eq!(ban_duration("30m"), Ok(Some(1_800)));
    assert_eq!(ban_duration("2W"), Ok(Some(2 * 604_800)));
    assert_eq!(ban_duration("permanent"), Ok(Some(0)));
    for bad in ["soon", "7", "d", "0d", "-1d", "1.5d", "99999999999999999999d", "7 fortnights"] {
        assert!(ban_duration(bad).is_err(), "{bad}");
    }
}

fn mentioned(text: &str, names: &[Name]) -> Vec<String> {
    mentions(text, names.iter()).into_iter().map(|n| n.display().to_owned()).collect()
}

#[test]
fn a_mention_is_an_at_sign_a_nickname_and_the_end_of_a_word() {
    let names = [name("alice"), name("Bob Smith"), name("bob"), name("Zoë")];
    assert_eq!(mentioned("@alice hi", &names), ["alice"]);
    assert_eq!(mentioned("hi @alice, and @bob!", &names), ["alice", "bob"]);
    assert_eq!(mentioned("(@zoë)", &names), ["Zoë"]);
    assert_eq!(mentioned("@Bob Smith said so", &names), ["Bob Smith", "bob"], "both names are written there");
    assert_eq!(mentioned("@alice @alice @ALICE", &names), ["alice"], "each name once");
    assert!(mentioned("mail alice@example.com", &names).is_empty(), "not at the start of a word");
    assert!(mentioned("@alicexyz", &names).is_empty(), "not at the end of a word");
    assert!(mentioned("@bob-the-builder", &names).is_empty());
    assert!(mentioned("alice without the sign", &names).is_empty());
    assert!(mentioned("@", &names).is_empty());
}

#[test]
fn mentions_see_through_case_and_look_alikes_as_nicknames_do() {
    let names = [name("alice")];
    assert_eq!(mentioned("@ALICE", &names), ["alice"]);
    assert_eq!(mentioned("@\u{0430}lice look", &names), ["alice"], "Cyrillic а");
    assert_eq!(mentioned("@aIice", &names), ["alice"], "capital i for l");
}

#[test]
fn a_message_of_at_signs_looks_at_only_the_first_few() {
    let names = [name("alice")];
    let text = format!("{} @alice", "@x ".repeat(500));
    assert!(mentioned(&text, &names).is_empty(), "past the first ten `@`s nothing is looked at");
}

/// The message rule as first written: each step a pass of its own over the whole text.
fn message_plainly(raw: &str) -> Result<String, MessageError> {
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::new();
    let mut blank_run = 0usize;
    for line in unified.split('\n') {
        let line: String = line.chars().filter(|c| *c == '\t' || !c.is_control()).collect();
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    match out.chars().count() {
        0 => Err(MessageError::Empty),
        chars if chars > MESSAGE_MAX_CHARS => Err(MessageError::TooLong { chars, max: MESSAGE_MAX_CHARS }),
        _ => Ok(out),
    }
}

#[test]
fn the_message_rule_reads_as_the_plain_one_on_every_kind_of_text() {
    let texts = crate::text::tricky_texts(20_000);
    for text in &texts {
        assert_eq!(message(text), message_plainly(text), "{text:?}");
    }
    // Printable ASCII takes a way of its own: blank, spaced and worded texts among them.
    let printable = |t: &&String| t.bytes().all(|b| (b' '..=b'~').contains(&b));
    let printable: Vec<&String> = texts.iter().filter(printable).collect();
    assert!(printable.iter().filter(|t| !t.is_empty() && t.trim().is_empty()).count() >= 10);
    assert!(printable.iter().filter(|t| t.ends_with(' ') && !t.trim().is_empty()).count() >= 10);
    // Long enough to reach the character limit, or just under it.
    for text in crate::text::tricky_texts(200).iter().filter(|t| !t.is_empty()) {
        let long = text.repeat(MESSAGE_MAX_CHARS / text.chars().count() + 1);
        assert_eq!(message(&long), message_plainly(&long), "{long:?}");
    }
}
