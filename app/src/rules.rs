//! What counts as a valid nickname, room name and message, and the limits behind them.
//!
//! The limits are shared with the browser (form hints); the checks that need Unicode tables
//! (NFKC, general categories, confusable skeletons) run on the server only (`ssr`), so the wasm
//! bundle does not carry those tables. The server is the only authority anyway.

pub const NICKNAME_MAX_CHARS: usize = 24;
pub const ROOM_NAME_MAX_CHARS: usize = 48;
pub const MESSAGE_MAX_CHARS: usize = 2_000;
/// Messages a room keeps and sends on join.
pub const HISTORY_LEN: usize = 50;
pub const ROOM_LIMIT_MIN: u32 = 2;
/// The largest participant limit anyone may ask for (the server may configure a lower one).
pub const ROOM_LIMIT_MAX: u32 = 1_000;

/// Why a nickname or room name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {max} characters")]
    TooLong { max: usize },
    #[error("it contains an invisible, control or direction-changing character")]
    Invisible,
    #[error("it contains a character that can't be used in names")]
    Forbidden,
    #[error("it stacks too many accent marks on one letter")]
    TooManyMarks,
    #[error("it starts with an accent mark")]
    LeadingMark,
    #[error("that name is reserved")]
    Reserved,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("The message is empty.")]
    Empty,
    #[error("The message is {chars} characters long; the limit is {max}.")]
    TooLong { chars: usize, max: usize },
}

/// How long a ban lasts, as a moderator writes it: `30m`, `12h`, `7d`, `2w` (or `7 days`…), or
/// `permanent`. Empty means the server's default. The answer is what `ModAction::Ban` takes:
/// `None` for the default, `Some(0)` for permanent, else seconds.
pub fn ban_duration(text: &str) -> Result<Option<u64>, &'static str> {
    const HOW: &str = "Write a duration like 30m, 12h, 7d or 4w, or “permanent”.";
    let text = text.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Ok(None);
    }
    if matches!(text.as_str(), "permanent" | "forever" | "never" | "0") {
        return Ok(Some(0));
    }
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let amount: u64 = text[..digits].parse().map_err(|_| HOW)?;
    let unit = match text[digits..].trim() {
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return Err(HOW),
    };
    match amount.checked_mul(unit) {
        Some(0) | None => Err(HOW),
        Some(secs) => Ok(Some(secs)),
    }
}

#[cfg(feature = "ssr")]
pub use checks::*;

#[cfg(feature = "ssr")]
mod checks {
    use super::*;
    use std::{borrow::Cow, sync::LazyLock};
    use unicode_normalization::UnicodeNormalization;
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

    /// A nickname or room name as it will be shown, with the keys that decide uniqueness. The
    /// three are kept one after the other in one string: a member keeps its name for as long as
    /// it is in a room, and one allocation of a few bytes costs less than three.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Name {
        /// The display form, the key, the shape.
        text: Box<str>,
        key_at: u32,
        shape_at: u32,
    }

    impl Name {
        fn new(display: &str, key: &str, shape: &str) -> Self {
            let text = [display, key, shape].concat().into_boxed_str();
            // Names are capped far below 4 GiB (`RAW_BYTES_CAP`, then their skeletons).
            let at = |len: usize| u32::try_from(len).unwrap_or(u32::MAX);
            Self { text, key_at: at(display.len()), shape_at: at(display.len() + key.len()) }
        }

        /// The name as it will be shown.
        pub fn display(&self) -> &str {
            &self.text[..self.key_at as usize]
        }

        /// Case-folded confusable skeleton: `ALICE`, `Alice` and `аlice` (Cyrillic а) share it.
        pub fn key(&self) -> &str {
            &self.text[self.key_at as usize..self.shape_at as usize]
        }

        /// Confusable skeleton of the name as written, which also catches look-alikes that only
        /// exist in one case: `aIice` with a capital i shares it with `alice`.
        pub fn shape(&self) -> &str {
            &self.text[self.shape_at as usize..]
        }

        /// Whether people could mistake one name for the other.
        pub fn looks_like(&self, other: &Name) -> bool {
            self.key() == other.key() || self.shape() == other.shape()
        }
    }

    /// Names nobody may take, compared by skeleton so look-alikes are refused as well.
    const RESERVED: &[&str] = &[
        "admin",
        "administrator",
        "burner",
        "discord",
        "everyone",
        "here",
        "mod",
        "moderator",
        "moderators",
        "nobody",
        "official",
        "owner",
        "root",
        "server",
        "staff",
        "support",
        "system",
    ];

    /// Marks allowed on one base character: enough for Vietnamese or Devanagari, not for zalgo.
    const MAX_MARKS_PER_CHAR: usize = 3;

    /// Bytes looked at before any normalisation: far above any valid name (24 characters of
    /// 4 bytes, plus decomposition), low enough that a 5 000-character name costs nothing.
    const RAW_BYTES_CAP: usize = 512;

    pub fn nickname(raw: &str) -> Result<Name, NameError> {
        static RESERVED_KEYS: LazyLock<Vec<String>> =
            LazyLock::new(|| RESERVED.iter().map(|r| confusable_key(r)).collect());
        let name = name(raw, NICKNAME_MAX_CHARS)?;
        if RESERVED_KEYS.iter().any(|r| r == name.key() || r == name.shape()) {
            return Err(NameError::Reserved);
        }
        Ok(name)
    }

    /// The name of a bridge's place in a room ("Discord"): the rules of a nickname but for the
    /// reserved words, which only the server itself can ask for.
    pub fn bridge_nickname(raw: &str) -> Result<Name, NameError> {
        name(raw, NICKNAME_MAX_CHARS)
    }

    pub fn room_name(raw: &str) -> Result<Name, NameError> {
        name(raw, ROOM_NAME_MAX_CHARS)
    }

    /// NFKC, emoji variation selectors dropped, white space collapsed, then every character
    /// checked: letters, marks, digits, punctuation, symbols and single spaces only.
    fn name(raw: &str, max_chars: usize) -> Result<Name, NameError> {
        if raw.len() > RAW_BYTES_CAP {
            return Err(NameError::TooLong { max: max_chars });
        }
        // ASCII is its own NFKC form, and holds no variation selector.
        let normalised: Cow<str> = if raw.is_ascii() {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(raw.nfkc().filter(|c| !is_variation_selector(*c)).collect())
        };
        let display = normalised.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        if display.is_empty() {
            return Err(NameError::Empty);
        }
        if display.chars().count() > max_chars {
            return Err(NameError::TooLong { max: max_chars });
        }
        let mut marks = 0;
        for (i, c) in display.chars().enumerate() {
            if is_invisible(c) {
                return Err(NameError::Invisible);
            }
            let group = c.general_category_group();
            match group {
                GeneralCategoryGroup::Mark => {
                    if i == 0 {
                        return Err(NameError::LeadingMark);
                    }
                    marks += 1;
                    if marks > MAX_MARKS_PER_CHAR {
                        return Err(NameError::TooManyMarks);
                    }
                    continue;
                }
                GeneralCategoryGroup::Letter
                | GeneralCategoryGroup::Number
                | GeneralCategoryGroup::Punctuation
                | GeneralCategoryGroup::Symbol => {}
                GeneralCategoryGroup::Separator if c == ' ' => {}
                GeneralCategoryGroup::Separator | GeneralCategoryGroup::Other => {
                    return Err(NameError::Forbidden);
                }
            }
            marks = 0;
        }
        let key = confusable_key(&display);
        let shape = skeleton(&display);
        Ok(Name::new(&display, &key, &shape))
    }

    /// The UTS #39 confusable skeleton of the lower-cased name: equal for names that differ
    /// only in case or by look-alike letters.
    pub fn confusable_key(s: &str) -> String {
        skeleton(&s.to_lowercase())
    }

    /// The UTS #39 confusable skeleton of `s`. Most names and mentions are ASCII, and the
    /// skeleton of ASCII text is its characters' own skeletons one after the other (each ASCII
    /// character's is ASCII: nothing for the normalisations around the mapping to change), so
    /// it is put together from a table of the 128 instead of going through both.
    pub(crate) fn skeleton(s: &str) -> String {
        static ASCII: LazyLock<Vec<Option<String>>> = LazyLock::new(|| {
            (0..128_u8)
                .map(|byte| {
                    let own: String = unicode_security::skeleton(&char::from(byte).to_string()).collect();
                    own.is_ascii().then_some(own)
                })
                .collect()
        });
        if s.is_ascii() {
            let mut out = String::with_capacity(s.len() + 4);
            for byte in s.bytes() {
                match &ASCII[usize::from(byte)] {
                    Some(own) => out.push_str(own),
                    None => return unicode_security::skeleton(s).collect(),
                }
            }
            return out;
        }
        unicode_security::skeleton(s).collect()
    }

    fn is_variation_selector(c: char) -> bool {
        matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
    }

    /// Unicode's Default_Ignorable_Code_Point set plus controls: characters that render as
    /// nothing, or that reorder the text around them.
    fn is_invisible(c: char) -> bool {
        c.is_control()
            || matches!(c,
                '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}'
                | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
                | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
    }

    /// The most `@`s of one message looked at for mentions: a message of nothing but `@`s
    /// costs no more than a short one.
    const MENTIONS_LOOKED_AT: usize = 10;

    /// The names a message mentions: an `@` at the start of a word, then one of `names` as
    /// nickname uniqueness compares them (case and look-alike letters aside), then the end of
    /// the word. Each name once, in the order the message first mentions it.
    pub fn mentions<'a>(text: &str, names: impl Iterator<Item = &'a Name> + Clone) -> Vec<&'a Name> {
        let mut found: Vec<&Name> = Vec::new();
        for (at, _) in text.match_indices('@').take(MENTIONS_LOOKED_AT) {
            if text[..at].chars().next_back().is_some_and(|c| !c.is_whitespace() && !"([{\"'«“".contains(c)) {
                continue;
            }
            let rest = &text[at + 1..];
            // Byte offsets where the first 1, 2, … characters after the `@` end.
            let ends: Vec<usize> =
                rest.char_indices().map(|(i, c)| i + c.len_utf8()).take(NICKNAME_MAX_CHARS).collect();
            let mut keys: Vec<Option<(String, String)>> = vec![None; ends.len() + 1];
            for name in names.clone() {
                let chars = name.display().chars().count();
                let Some(&end) = ends.get(chars.wrapping_sub(1)) else { continue };
                if rest[end..].chars().next().is_some_and(|c| !c.is_whitespace() && !",.;:!?)]}\"'»”…".contains(c))
                {
                    continue;
                }
                let (key, shape) = keys[chars].get_or_insert_with(|| {
                    let written = &rest[..end];
                    (confusable_key(written), skeleton(written))
                });
                if (key == name.key() || shape == name.shape()) && !found.contains(&name) {
                    found.push(name);
                }
            }
        }
        found
    }

    /// Line endings unified, control characters other than newline and tab dropped, trailing
    /// spaces trimmed, runs of blank lines collapsed to one, blank lines at either end removed.
    /// The text is otherwise kept exactly as written, and never truncated.
    ///
    /// Every message passes here: a line without control characters (nearly all of them) is
    /// copied once, as it is, into the result.
    pub fn message(raw: &str) -> Result<String, MessageError> {
        // Most messages are one line of printable ASCII: nothing to unify, drop or collapse,
        // and a byte is a character.
        if printable_ascii(raw.as_bytes()) {
            return match raw.trim_end_matches(' ') {
                "" => Err(MessageError::Empty),
                line if line.len() > MESSAGE_MAX_CHARS => {
                    Err(MessageError::TooLong { chars: line.len(), max: MESSAGE_MAX_CHARS })
                }
                line => Ok(line.to_owned()),
            };
        }
        let mut out = String::with_capacity(raw.len());
        let mut blank_run = 0usize;
        let dropped = |c: char| c != '\t' && c.is_control();
        for line in lines(raw) {
            let cleaned: Cow<'_, str> = if line.contains(dropped) {
                Cow::Owned(line.chars().filter(|c| !dropped(*c)).collect())
            } else {
                Cow::Borrowed(line)
            };
            let line = cleaned.trim_end();
            if line.trim_start().is_empty() {
                blank_run += 1;
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
                if blank_run > 0 {
                    out.push('\n');
                }
            }
            blank_run = 0;
            out.push_str(line);
        }
        if out.is_empty() {
            return Err(MessageError::Empty);
        }
        let chars = out.chars().count();
        if chars > MESSAGE_MAX_CHARS {
            return Err(MessageError::TooLong { chars, max: MESSAGE_MAX_CHARS });
        }
        Ok(out)
    }

    /// Whether every byte is a printable ASCII character (space to tilde). Looked at 64 bytes at
    /// a time without stopping inside them, which the compiler turns into vector instructions.
    fn printable_ascii(bytes: &[u8]) -> bool {
        bytes.chunks(64).all(|chunk| chunk.iter().fold(true, |all, &b| all & (b.wrapping_sub(b' ') < 95)))
    }

    /// The lines of a text whose lines may end in `\n`, `\r\n` or a lone `\r`.
    fn lines(text: &str) -> impl Iterator<Item = &str> {
        text.split('\n').flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests;
