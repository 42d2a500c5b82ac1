//! What a room refuses or changes in a message: profanity (per room: off, mask or block), too
//! many links, and the same text from one address again and again. The posting policy
//! (`crate::policy`) applies them, to every source of messages alike.

use crate::{error::Refusal, limits::IpKey};
use app::{
    protocol::Profanity,
    text::{Piece, pieces},
};
use rustrict::CensorStr;
use std::{
    collections::{HashMap, VecDeque},
    hash::BuildHasher,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Applies the room's profanity setting: the text to post (masked where needed), or a refusal.
pub fn profanity(text: String, mode: Profanity) -> Result<String, Refusal> {
    match mode {
        Profanity::Off => Ok(text),
        Profanity::Mask => Ok(if text.as_str().is_inappropriate() { mask(&text) } else { text }),
        Profanity::Block if text.as_str().is_inappropriate() => Err(Refusal::profanity()),
        Profanity::Block => Ok(text),
    }
}

/// Stars out the profane words, one word at a time: censoring the text as a whole lets the
/// stars run on into the next word ("f*****appened"). Only when no single word is profane (it
/// was spelled out across spaces, "f u c k") is the whole text censored.
fn mask(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut any = false;
    for piece in text.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end_matches(char::is_whitespace);
        let space = &piece[word.len()..];
        if word.is_inappropriate() {
            any = true;
            masked.push_str(&word.censor());
        } else {
            masked.push_str(word);
        }
        masked.push_str(space);
    }
    if any { masked } else { text.censor() }
}

pub fn links(text: &str, max: u32) -> Result<(), Refusal> {
    let count = pieces(text).iter().filter(|p| matches!(p, Piece::Link(_))).count();
    if count > max as usize { Err(Refusal::too_many_links(max)) } else { Ok(()) }
}

/// Recent message fingerprints per address, to refuse the same text posted over and over.
pub struct Repeats {
    allowed: u32,
    window: Duration,
    seen: Mutex<HashMap<IpKey, VecDeque<(u64, Instant)>>>,
}

/// Fingerprints kept per address: enough for any sensible `allowed`.
const KEPT_PER_ADDRESS: usize = 32;

impl Repeats {
    pub fn new(allowed: u32, window: Duration) -> Self {
        Self { allowed, window, seen: Mutex::default() }
    }

    /// Refused if `text` was already posted from `key` `allowed` times in the window. Case,
    /// spacing and punctuation do not make a message different. Allowed: its fingerprint, to
    /// `record` once it is posted.
    pub fn check(&self, key: impl Into<IpKey>, text: &str) -> Result<Fingerprint, Refusal> {
        let fingerprint = Fingerprint::of(text);
        let now = Instant::now();
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let repeats = seen.get(&key.into()).map_or(0, |recent| {
            recent.iter().filter(|(f, at)| *f == fingerprint.0 && now.duration_since(*at) < self.window).count()
        });
        if repeats >= self.allowed as usize { Err(Refusal::spam()) } else { Ok(fingerprint) }
    }

    /// Notes that a message was posted from `key` (after it was: a refused message is no repeat).
    pub fn record(&self, key: impl Into<IpKey>, Fingerprint(fingerprint): Fingerprint) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let recent = seen.entry(key.into()).or_default();
        recent.retain(|(_, at)| now.duration_since(*at) < self.window);
        if recent.len() == KEPT_PER_ADDRESS {
            recent.pop_front();
        }
        recent.push_back((fingerprint, now));
    }

    /// Forgets addresses with nothing recent.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, recent| recent.back().is_some_and(|(_, at)| now.duration_since(*at) < self.window));
    }
}

/// What makes two messages "the same" for the spam filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// Letters and digits, lower-cased; a message with none (emoji, punctuation) by everything
    /// but its spaces, so that "👍" and "🎉" stay different messages.
    ///
    /// Every message is fingerprinted: what is kept is laid out once and hashed in one go (not a
    /// hasher call per character). Most messages are ASCII, and those are sifted byte by byte
    /// (5 % of the server's CPU at 12 800 one-KB messages a second went to this when every
    /// message was decoded as characters; 2.2 % when sifted byte by byte with the letter test
    /// worked out per byte; half that with a table); either way the same text keeps the same
    /// bytes.
    ///
    /// Hashed with foldhash rather than the standard library's SipHash (faster, and not built to
    /// resist made-up collisions): a fingerprint is compared only with earlier ones from the same
    /// address, so a made-up collision refuses only messages from its maker's own address (as
    /// posting the same text twice would).
    fn of(text: &str) -> Self {
        let kept = if text.is_ascii() { ascii_kept(text.as_bytes()) } else { kept_chars(text).into_bytes() };
        Self(foldhash::quality::FixedState::with_seed(0).hash_one(&kept[..]))
    }
}

/// What a fingerprint keeps of a text: its letters and digits lower-cased, or if it has none,
/// everything but its white space.
fn kept_chars(text: &str) -> String {
    let wordy = text.chars().any(char::is_alphanumeric);
    let mut kept = String::with_capacity(text.len());
    for c in text.chars().filter(|c| if wordy { c.is_alphanumeric() } else { !c.is_whitespace() }) {
        if c.is_ascii() {
            kept.push(c.to_ascii_lowercase());
        } else {
            kept.extend(c.to_lowercase());
        }
    }
    kept
}

/// [`kept_chars`] for an ASCII text, a byte at a time.
fn ascii_kept(bytes: &[u8]) -> Vec<u8> {
    // Looked at whole, without stopping at the first letter: the compiler makes it a vector loop.
    let wordy = bytes.iter().fold(false, |any, b| any | b.is_ascii_alphanumeric());
    if !wordy {
        // `char::is_whitespace` among ASCII: tab, line feed, vertical tab, form feed, carriage
        // return and space (`u8::is_ascii_whitespace` leaves out the vertical tab).
        return bytes.iter().copied().filter(|b| !matches!(b, b'\t'..=b'\r' | b' ')).collect();
    }
    // Every byte is written and the length moves on past the kept ones: no branch to guess per
    // byte (a third of the time this took when the letter test and the lower case were worked
    // out per byte rather than looked up).
    let mut kept = vec![0; bytes.len()];
    let mut len = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let lower = IN_WORDS[usize::from(b)];
        // `len` never passes `at`; `min` lets the compiler see it.
        kept[len.min(at)] = lower;
        len += usize::from(lower != 0);
    }
    kept.truncate(len);
    kept
}

/// What a text with letters or digits keeps of each byte: a letter in lower case, a digit, or
/// nothing (0).
static IN_WORDS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() {
            table[b] = byte.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::ErrorCode;
    use std::net::IpAddr;

    fn code<T>(result: Result<T, Refusal>) -> Result<T, ErrorCode> {
        result.map_err(|refusal| refusal.code())
    }

    #[test]
    fn profanity_is_masked_refused_or_let_through_as_the_room_chose() {
        let rude = "what the fuck".to_owned();
        let masked = profanity(rude.clone(), Profanity::Mask).expect("masked");
        assert!(!masked.contains("fuck") && masked.starts_with("what the "), "{masked}");
        // The stars stay inside the word; the words around it are untouched.
        let masked = profanity("what the fuck happened here".to_owned(), Profanity::Mask).expect("masked");
        assert_eq!(masked, "what the f*** happened here");
        let masked = profanity("oh shit,\nreally".to_owned(), Profanity::Mask).expect("masked");
        assert_eq!(masked, "oh s***,\nreally");
        assert_eq!(code(profanity(rude.clone(), Profanity::Block)), Err(ErrorCode::Profanity));
        assert_eq!(code(profanity(rude.clone(), Profanity::Off)), Ok(rude));
        let clean = "have a nice day".to_owned();
        assert_eq!(code(profanity(clean.clone(), Profanity::Mask)), Ok(clean.clone()));
        assert_eq!(code(profanity(clean.clone(), Profanity::Block)), Ok(clean));
    }

    #[test]
    fn only_so_many_links_per_message() {
        assert!(links("https://a.example https://b.example https://c.example", 3).is_ok());
        let refused = links("http://a.x http://b.x http://c.x http://d.x", 3).expect_err("four links");
        assert_eq!((refused.code(), refused.sentence()), (ErrorCode::TooManyLinks, "At most 3 links per message."));
        // Where links are not allowed at all: one is refused, whatever its case; near-links and
        // text without any pass.
        for text in ["go to HTTPS://a.example now", "(http://a.x)"] {
            assert_eq!(code(links(text, 0)), Err(ErrorCode::TooManyLinks), "{text}");
        }
        for text in ["see example.com, http:/a.x or ://a.x", "xhttp://a.x", ""] {
            assert!(links(text, 0).is_ok(), "{text}");
        }
    }

    #[test]
    fn an_ascii_text_keeps_what_the_same_text_read_as_characters_keeps() {
        for text in [
            "Hello, World 42",
            "  spaced\tout\x0Bwith\x0Cevery\rkind\nof space ",
            "!!! ??? ...",
            "?! \x0B !?",
            "",
            "MiXeD-case_under_score",
            "\x01\x7f ~`^",
        ] {
            assert_eq!(ascii_kept(text.as_bytes()), kept_chars(text).into_bytes(), "{text:?}");
        }
        // Every ASCII character, alone and beside a letter (which makes the text wordy).
        for byte in 0..=0x7f_u8 {
            let alone = char::from(byte).to_string();
            for text in [alone.clone(), format!("a{alone}"), format!("{alone}{alone}!")] {
                assert_eq!(ascii_kept(text.as_bytes()), kept_chars(&text).into_bytes(), "{text:?}");
            }
        }
        // An ASCII text and the same words with an emoji beside them are one message.
        assert_eq!(Fingerprint::of("Buy NOW"), Fingerprint::of("buy now 🎉"));
        assert_ne!(Fingerprint::of("!!!"), Fingerprint::of("???"));
    }

    #[test]
    fn the_same_text_again_and_again_is_spam_whatever_its_case_and_spacing() {
        let repeats = Repeats::new(2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let post = |text: &str| repeats.check(ip, text).map(|fingerprint| repeats.record(ip, fingerprint));
        assert!(post("BUY NOW!!!").is_ok());
        assert!(repeats.check(ip, "buy now").is_ok(), "checking alone records nothing");
        assert!(post("buy now").is_ok());
        assert_eq!(code(post("  Buy   now. ")), Err(ErrorCode::Spam));
        assert!(post("something else").is_ok());
        assert!(repeats.check("192.0.2.2".parse::<IpAddr>().expect("ip"), "buy now").is_ok(), "per address");
        // Messages without letters are told apart by their symbols.
        for emoji in ["👍", "😂", "🎉", "👍"] {
            assert!(post(emoji).is_ok(), "{emoji}");
        }
        assert_eq!(code(post("👍 ")), Err(ErrorCode::Spam));
    }

    /// The kept text as first written: a character at a time.
    fn kept_plainly(text: &str) -> String {
        let wordy = text.chars().any(char::is_alphanumeric);
        let kept = text.chars().filter(|c| if wordy { c.is_alphanumeric() } else { !c.is_whitespace() });
        kept.flat_map(char::to_lowercase).collect()
    }

    #[test]
    fn two_texts_share_a_fingerprint_exactly_when_they_keep_the_same_characters() {
        let texts = [
            "Buy now",
            "BUY NOW!!!",
            " buy\tnow. ",
            "buynow",
            "buy now 2",
            "ÉCOLE",
            "école",
            "İstanbul",
            "i̇stanbul",
            "STRASSE",
            "straße",
            "Straße",
            "👍",
            "👍 ",
            " 👍",
            "🎉",
            "!!",
            "! !",
            "?",
            "\u{a0}\u{3000}x",
            "X",
            "日本",
            "日 本",
            "e\u{301}",
            "é",
            "",
        ];
        for a in texts {
            for b in texts {
                let same = kept_plainly(a) == kept_plainly(b);
                assert_eq!(Fingerprint::of(a) == Fingerprint::of(b), same, "{a:?} against {b:?}");
            }
        }
    }
}
