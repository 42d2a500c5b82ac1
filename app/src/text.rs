//! Splitting message text into plain runs and links, for rendering as text nodes and anchors.
//! Nothing here produces HTML: callers render each piece as a text node or an `<a>`.

/// A piece of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// An `http(s)` URL, exactly as written.
    Link(&'a str),
}

/// Finds `http://` and `https://` URLs (case-insensitive scheme) that start a word. A URL ends at
/// white space or a character that cannot appear unescaped in one; trailing sentence punctuation
/// and an unbalanced closing bracket are left out of it, as people expect.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut plain_from = 0;
    let mut at = 0;
    while let Some(found) = find_scheme(&text[at..]) {
        let start = at + found;
        let end = start + url_len(&text[start..]);
        let scheme_len = if text.as_bytes()[start + 4].eq_ignore_ascii_case(&b's') { 8 } else { 7 };
        if end <= start + scheme_len {
            at = start + scheme_len;
            continue;
        }
        if plain_from < start {
            out.push(Piece::Text(&text[plain_from..start]));
        }
        out.push(Piece::Link(&text[start..end]));
        plain_from = end;
        at = end;
    }
    if plain_from < text.len() {
        out.push(Piece::Text(&text[plain_from..]));
    }
    out
}

/// Byte offset of the next scheme that starts a word. Only an ASCII `h` or `H` can start one
/// (and is always a character boundary), so every other byte is passed over at once.
fn find_scheme(s: &str) -> Option<usize> {
    // Most messages hold no link at all, and every scheme holds "://": one fast substring search
    // settles those before any byte is looked at for an `h`.
    if !s.contains("://") {
        return None;
    }
    let bytes = s.as_bytes();
    (0..bytes.len().saturating_sub(6)).filter(|&at| bytes[at] | 0x20 == b'h').find(|&at| {
        let rest = &bytes[at..];
        let scheme = rest[..7].eq_ignore_ascii_case(b"http://")
            || (rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://"));
        scheme && !s[..at].chars().next_back().is_some_and(char::is_alphanumeric)
    })
}

fn url_len(s: &str) -> usize {
    let mut end = s
        .char_indices()
        .find(|(_, c)| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '`' | '{' | '}' | '|' | '\\' | '^')
        })
        .map_or(s.len(), |(i, _)| i);
    loop {
        let url = &s[..end];
        let Some(last) = url.chars().next_back() else { break };
        let unbalanced =
            |open: char, close: char| last == close && url.matches(open).count() < url.matches(close).count();
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            end -= last.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// The sentence a banned visitor sees, the same wherever it is shown (page, socket close).
pub fn ban_sentence(reason: &str, until_ms: Option<i64>) -> String {
    match until_ms {
        Some(until) => format!("You are banned until {}. Reason: {reason}", utc_date_time(until)),
        None => format!("You are banned for good. Reason: {reason}"),
    }
}

/// Whether a sentence is one `ban_sentence` wrote (a ban that ends a connection says it so).
pub fn is_ban_sentence(sentence: &str) -> bool {
    sentence.starts_with("You are banned ")
}

/// `28 Nov 2026, 21:05 UTC`: the same text on the server and in every browser.
pub fn utc_date_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let minutes = ms.div_euclid(60_000);
    let (days, minute_of_day) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name = MONTHS.get((month - 1) as usize).copied().unwrap_or("?");
    format!("{day} {month_name} {year}, {:02}:{:02} UTC", minute_of_day / 60, minute_of_day % 60)
}

/// Texts of every kind a message can hold, made the same way on every run: line endings of
/// each sort, controls (C0, DEL, C1), wide and combining letters, letters whose lower case is
/// longer, links and near-links. For tests that check a fast path against the plain rule.
#[cfg(test)]
pub(crate) fn tricky_texts(count: usize) -> Vec<String> {
    const PARTS: &[&str] = &[
        "a",
        "Z",
        "7",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\u{7}",
        "\u{1b}",
        "\u{7f}",
        "\u{85}",
        "\u{9f}",
        "\u{a0}",
        "\u{3000}",
        "é",
        "É",
        "İ",
        "ß",
        "😀",
        "日本",
        "e\u{301}",
        "h",
        "H",
        "http://",
        "HTTPS://x.org/(a)",
        "https://",
        ".",
        ",",
        ")",
        "(",
        "xhttp://glued",
        "www",
        "@",
        "_",
        "\u{200b}",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let parts = next() % 24;
            (0..parts).map(|_| PARTS[(next() % PARTS.len() as u64) as usize]).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Piece::*, *};

    #[test]
    fn dates_are_written_the_same_everywhere() {
        assert_eq!(utc_date_time(0), "1 Jan 1970, 00:00 UTC");
        assert_eq!(utc_date_time(1_795_381_500_000), "22 Nov 2026, 21:05 UTC");
        assert_eq!(utc_date_time(951_782_400_000), "29 Feb 2000, 00:00 UTC");
        assert_eq!(ban_sentence("spam", None), "You are banned for good. Reason: spam");
        assert_eq!(ban_sentence("spam", Some(0)), "You are banned until 1 Jan 1970, 00:00 UTC. Reason: spam");
        assert!(is_ban_sentence(&ban_sentence("x", None)) && is_ban_sentence(&ban_sentence("x", Some(1))));
        assert!(!is_ban_sentence("A moderator removed you from the room. Reason: You are banned "));
    }

    #[test]
    fn plain_text_is_one_piece() {
        assert_eq!(pieces("hello there"), vec![Text("hello there")]);
        assert_eq!(pieces(""), vec![]);
    }

    #[test]
    fn urls_become_links_and_punctuation_stays_outside() {
        assert_eq!(
            pieces("see https://example.com/a?b=1. ok"),
            vec![Text("see "), Link("https://example.com/a?b=1"), Text(". ok")]
        );
        assert_eq!(pieces("(http://x.org/wiki/A_(b))"), vec![Text("("), Link("http://x.org/wiki/A_(b)"), Text(")")]);
        assert_eq!(pieces("HTTPS://LOUD.example"), vec![Link("HTTPS://LOUD.example")]);
        assert_eq!(pieces("a http://b <c>"), vec![Text("a "), Link("http://b"), Text(" <c>")]);
    }

    #[test]
    fn only_http_and_https_become_links() {
        for text in ["javascript:alert(1)", "data:text/html,x", "ftp://x.org", "file:///etc/passwd"] {
            assert_eq!(pieces(text), vec![Text(text)]);
        }
        assert_eq!(pieces("xhttp://glued.example"), vec![Text("xhttp://glued.example")], "must start a word");
        assert_eq!(pieces("http:// nothing"), vec![Text("http:// nothing")]);
    }

    #[test]
    fn multibyte_text_around_links_is_kept() {
        assert_eq!(
            pieces("日本 https://例え.jp/パス 終"),
            vec![Text("日本 "), Link("https://例え.jp/パス"), Text(" 終")]
        );
    }

    /// The scheme search as first written: every character boundary looked at in turn.
    fn find_scheme_plainly(s: &str) -> Option<usize> {
        s.char_indices().map(|(at, _)| at).filter(|&at| at + 7 <= s.len()).find(|&at| {
            let rest = &s.as_bytes()[at..];
            let scheme = rest[..7].eq_ignore_ascii_case(b"http://")
                || (rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://"));
            scheme && !s[..at].chars().next_back().is_some_and(char::is_alphanumeric)
        })
    }

    #[test]
    fn the_scheme_search_finds_what_looking_at_every_character_finds() {
        for text in tricky_texts(20_000) {
            assert_eq!(find_scheme(&text), find_scheme_plainly(&text), "{text:?}");
        }
    }
}
