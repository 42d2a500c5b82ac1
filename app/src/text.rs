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

/// Byte offset of the next scheme that starts a word.
fn find_scheme(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i + 7 <= bytes.len() {
        let starts_word = i == 0 || !s[..i].chars().next_back().is_some_and(char::is_alphanumeric);
        if starts_word && bytes[i].eq_ignore_ascii_case(&b'h') {
            let rest = &bytes[i..];
            let http = rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"http://");
            let https = rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://");
            if http || https {
                return Some(i);
            }
        }
        i += 1;
        while i < bytes.len() && !s.is_char_boundary(i) {
            i += 1;
        }
    }
    None
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
}
