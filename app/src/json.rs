//! The browser's JSON: a small reader for what the server sends (its frames, the page it embeds)
//! and a writer for what the browser sends, in place of serde_json in the visitors' bundle.
//!
//! Why by hand: serde_json's reader is generic over every type it reads, so each of the
//! protocol's structs brought its own copy of the parsing code, its field-name visitors and its
//! error formatting into the wasm: 61 KB of the 524 KB before this module, 22 KB of the 172 KB
//! brotli (docs/BENCHMARKS.md, "Browser bundle"). Here the parsing is one piece of code that
//! does not depend on the type being read: a type says which fields it has ([`read_fields!`])
//! and reads each through the same few functions. The server keeps serde (it writes with it);
//! the golden tests check that this reader reads back every message the server writes, and that
//! the browser writes what serde would. (Smaller JSON crates, such as miniserde or nanoserde,
//! were not measured: each brings a derive of its own, with its own rules for absent fields, to
//! put beside serde's on the shared types and hold to serde's shapes just the same.)
//!
//! It reads standard JSON (RFC 8259): unknown fields are skipped (a newer server may add some;
//! what is skipped is checked all the same); a field given twice, a missing field without a
//! default, and a number that is not a whole one in range of its field are errors.

mod write;

use std::fmt;
pub use write::Writer;

/// Why a text could not be read: what was expected, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Byte offset in the text.
    pub at: usize,
    pub expected: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.at)
    }
}

impl std::error::Error for Error {}

/// How deep arrays and objects may nest in a value that is skipped (what is read nests no deeper
/// than the types do).
const MAX_DEPTH: u32 = 128;

/// A cursor over one JSON text.
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
}

/// A value this crate can read.
pub trait Read: Sized {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error>;
}

/// Reads a whole text as one `T`: nothing but white space may follow it.
pub fn from_str<T: Read>(text: &str) -> Result<T, Error> {
    let mut reader = Reader::new(text);
    let value = T::read(&mut reader)?;
    reader.end()?;
    Ok(value)
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    pub fn error(&self, expected: &'static str) -> Error {
        Error { at: self.at, expected }
    }

    /// The next byte that is not white space, not taken.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
        bytes.get(self.at).copied()
    }

    /// Takes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), Error> {
        if self.eat(byte) { Ok(()) } else { Err(self.error(expected)) }
    }

    /// Takes `word` (`true`, `false`, `null`) if it comes next.
    fn eat_word(&mut self, word: &str) -> bool {
        let next = self.peek().is_some() && self.text[self.at..].starts_with(word);
        if next {
            self.at += word.len();
        }
        next
    }

    /// Only white space is left.
    pub fn end(&mut self) -> Result<(), Error> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("the end of the text")),
        }
    }

    /// Takes `null` if it comes next.
    pub fn null(&mut self) -> bool {
        self.eat_word("null")
    }

    /// Reads an object, handing each field's name to `field`, which must read (or
    /// [`skip`](Self::skip)) its value.
    pub fn object(&mut self, field: &mut dyn FnMut(&mut Self, &str) -> Result<(), Error>) -> Result<(), Error> {
        self.expect(b'{', "an object")?;
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let name = self.string()?;
            self.expect(b':', "`:`")?;
            field(self, &name)?;
            if self.eat(b'}') {
                return Ok(());
            }
            self.expect(b',', "`,` or `}`")?;
        }
    }

    /// Reads an array, calling `item` for each element, which must read it.
    pub fn array(&mut self, item: &mut dyn FnMut(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        self.expect(b'[', "an array")?;
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.eat(b']') {
                return Ok(());
            }
            self.expect(b',', "`,` or `]`")?;
        }
    }

    pub fn string(&mut self) -> Result<String, Error> {
        self.expect(b'"', "a string")?;
        let mut out = String::new();
        loop {
            // Everything up to the next quote or escape is taken as it is (the text is UTF-8).
            let rest = &self.text[self.at..];
            let plain = rest.find(['"', '\\']).ok_or_else(|| self.error("the string's closing `\"`"))?;
            if rest.as_bytes()[..plain].iter().any(|&b| b < 0x20) {
                return Err(self.error("no control characters in a string"));
            }
            out.push_str(&rest[..plain]);
            self.at += plain + 1;
            if rest.as_bytes()[plain] == b'"' {
                return Ok(out);
            }
            let escaped = match self.text.as_bytes().get(self.at) {
                Some(b'u') => {
                    self.at += 1;
                    self.unicode_escape()?
                }
                Some(&letter) => {
                    let escaped = match letter {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        _ => return Err(self.error("an escape")),
                    };
                    self.at += 1;
                    escaped
                }
                None => return Err(self.error("an escape")),
            };
            out.push(escaped);
        }
    }

    /// The character after `\u`: four hex digits, or two such escapes for a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.text[self.at..].starts_with("\\u") {
                return Err(self.error("the second half of a surrogate pair"));
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("the second half of a surrogate pair"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("a character"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self.text.as_bytes().get(self.at..self.at + 4).unwrap_or_default();
        let value = digits
            .iter()
            .try_fold(0, |n, &b| Some(n * 16 + char::from(b).to_digit(16)?))
            .filter(|_| digits.len() == 4)
            .ok_or_else(|| self.error("four hex digits"))?;
        self.at += 4;
        Ok(value)
    }

    /// Takes a run of ASCII digits.
    fn digits(&mut self) -> &'a [u8] {
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        self.at += len;
        &rest[..len]
    }

    /// A whole number (no fraction, no exponent) as its sign (when `signed` allows one) and its
    /// magnitude, which must fit in `u64`.
    fn integer(&mut self, signed: bool) -> Result<(bool, u64), Error> {
        self.peek();
        let start = self.at;
        let bytes = self.text.as_bytes();
        let negative = signed && bytes.get(self.at) == Some(&b'-');
        self.at += usize::from(negative);
        let digits = self.digits();
        let magnitude = digits.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
        let whole = !digits.is_empty()
            && (digits.len() == 1 || digits[0] != b'0')
            && !matches!(bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        match magnitude {
            // `-0` is a float to serde_json, not an integer: refused here too.
            Some(magnitude) if whole && !(negative && magnitude == 0) => Ok((negative, magnitude)),
            _ => {
                self.at = start;
                Err(self.error("a whole number"))
            }
        }
    }

    /// Skips a number of any kind, checked against JSON's grammar:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn skip_number(&mut self) -> Result<(), Error> {
        let bytes = self.text.as_bytes();
        self.at += usize::from(bytes.get(self.at) == Some(&b'-'));
        let whole = self.digits();
        let mut valid = !whole.is_empty() && (whole.len() == 1 || whole[0] != b'0');
        if bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            valid &= !self.digits().is_empty();
        }
        if matches!(bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            self.at += usize::from(matches!(bytes.get(self.at), Some(b'+' | b'-')));
            valid &= !self.digits().is_empty();
        }
        if valid { Ok(()) } else { Err(self.error("a number")) }
    }

    /// Skips any one value.
    pub fn skip(&mut self) -> Result<(), Error> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(self.error("less nesting"));
        }
        match self.peek() {
            Some(b'{') => self.object(&mut |reader, _| reader.skip_nested(depth + 1)),
            Some(b'[') => self.array(&mut |reader| reader.skip_nested(depth + 1)),
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            _ if self.eat_word("true") || self.eat_word("false") || self.null() => Ok(()),
            _ => Err(self.error("a value")),
        }
    }

    /// Skips one value and gives back its text (for a part of a page another reader reads).
    pub fn raw(&mut self) -> Result<&'a str, Error> {
        self.peek();
        let start = self.at;
        self.skip()?;
        Ok(&self.text[start..self.at])
    }
}

impl Read for String {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        reader.string()
    }
}

impl Read for bool {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        if reader.eat_word("true") {
            Ok(true)
        } else if reader.eat_word("false") {
            Ok(false)
        } else {
            Err(reader.error("`true` or `false`"))
        }
    }
}

impl Read for u64 {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        reader.integer(false).map(|(_, magnitude)| magnitude)
    }
}

impl Read for u32 {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let start = reader.at;
        u32::try_from(u64::read(reader)?).map_err(|_| Error { at: start, expected: "a number up to 4294967295" })
    }
}

impl Read for i64 {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let start = reader.at;
        let (negative, magnitude) = reader.integer(true)?;
        let value = if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() };
        value.ok_or(Error { at: start, expected: "a number that fits in 64 bits" })
    }
}

impl<T: Read> Read for Option<T> {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        if reader.null() { Ok(None) } else { T::read(reader).map(Some) }
    }
}

impl<T: Read> Read for Vec<T> {
    fn read(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let mut items = Vec::new();
        reader.array(&mut |reader| {
            items.push(T::read(reader)?);
            Ok(())
        })?;
        Ok(items)
    }
}

/// Reads a field-less enum by its name on the wire, the name serde gives it (one `match` on a
/// string, written by serde's derive: no list of names to keep in step here).
pub fn read_named<T: serde::de::DeserializeOwned>(reader: &mut Reader<'_>) -> Result<T, Error> {
    use serde::de::IntoDeserializer;
    let start = reader.at;
    let name = reader.string()?;
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name))
        .map_err(|_| Error { at: start, expected: "a known name" })
}

/// `impl Read` for field-less enums, by [`read_named`].
macro_rules! read_by_name {
    ($($ty:ty),*) => {$(
        impl $crate::json::Read for $ty {
            fn read(reader: &mut $crate::json::Reader<'_>) -> Result<Self, $crate::json::Error> {
                $crate::json::read_named(reader)
            }
        }
    )*};
}
pub(crate) use read_by_name;

/// Reads a field's value into its slot. A field given twice is refused, as serde refuses it.
pub fn field<T: Read>(slot: &mut Option<T>, reader: &mut Reader<'_>) -> Result<(), Error> {
    if slot.is_some() {
        return Err(reader.error("each field once"));
    }
    *slot = Some(T::read(reader)?);
    Ok(())
}

/// `impl Read` for a struct from its fields' names: first those the text must have, then (after
/// `;`) those that default when absent. Fields it does not name are skipped.
///
/// Kept in step with serde by hand: the name on the wire is the field's own (no `rename`), and
/// what may be absent is what serde lets be absent (an `Option`, a `#[serde(default)]`). The
/// golden tests read back what serde writes, absent fields included.
macro_rules! read_fields {
    ($ty:ident { $($field:ident),* $(; $($defaulted:ident),*)? }) => {
        impl $crate::json::Read for $ty {
            fn read(reader: &mut $crate::json::Reader<'_>) -> Result<Self, $crate::json::Error> {
                $(let mut $field = None;)*
                $($(let mut $defaulted = None;)*)?
                reader.object(&mut |reader, name| {
                    match name {
                        $(stringify!($field) => $crate::json::field(&mut $field, reader)?,)*
                        $($(stringify!($defaulted) => $crate::json::field(&mut $defaulted, reader)?,)*)?
                        _ => reader.skip()?,
                    }
                    Ok(())
                })?;
                Ok(Self {
                    $($field: $field.ok_or_else(|| reader.error(concat!("field `", stringify!($field), "`")))?,)*
                    $($($defaulted: $defaulted.unwrap_or_default(),)*)?
                })
            }
        }
    };
}
pub(crate) use read_fields;

#[cfg(test)]
mod tests;
