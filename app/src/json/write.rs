//! The browser's JSON writer: what the few client messages need (strings, numbers, a nested
//! object), escaped as serde_json escapes, so the server reads the same bytes either way.

/// Writes one JSON object, field by field.
pub struct Writer {
    out: String,
}

impl Writer {
    /// An object whose first field is `"type": kind`, as every client message starts.
    pub fn tagged(kind: &str) -> Self {
        let mut writer = Self { out: String::from("{") };
        writer.string("type", kind);
        writer
    }

    fn name(&mut self, name: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        quote(&mut self.out, name);
        self.out.push(':');
    }

    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        self.name(name);
        quote(&mut self.out, value);
        self
    }

    pub fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.name(name);
        self.out.push_str(&value.to_string());
        self
    }

    /// A field holding an object written by `inner`.
    pub fn object(&mut self, name: &str, inner: impl FnOnce(&mut Writer)) -> &mut Self {
        self.name(name);
        let mut nested = Writer { out: String::from("{") };
        inner(&mut nested);
        self.out.push_str(&nested.finish());
        self
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped, as serde_json
/// escapes them.
fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
