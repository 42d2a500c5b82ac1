//! The WebSocket wire format (RFC 6455, section 5) as a server reads and writes it: the client's
//! frames parsed into whole messages, and the header of each frame the server sends.
//!
//! Pure code, no I/O: bytes go in with [`Parser::feed`], messages come out of
//! [`Parser::next_message`], so every rule (masking, fragmentation, control frames, UTF-8, close codes,
//! size caps) is tested here without a socket. What the bytes mean is the session's business.

use std::ops::Range;

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, checked to be UTF-8.
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// The client's close frame: its code and reason, if it gave one.
    Close(Option<(u16, String)>),
}

/// Why the client's bytes cannot be read; each maps to the close code the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("text is not UTF-8")]
    NotUtf8,
    #[error("message over the size limit")]
    TooBig,
}

impl WireError {
    /// The close code RFC 6455 (section 7.4.1) gives this failure.
    pub fn close_code(self) -> u16 {
        match self {
            Self::Protocol(_) => 1002,
            Self::NotUtf8 => 1007,
            Self::TooBig => 1009,
        }
    }
}

const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// The longest header a server frame needs: 2 bytes, then a 64-bit length.
pub const MAX_HEADER: usize = 10;

/// Writes the header of an unmasked, final server frame; returns how many bytes it took.
pub fn header(opcode: u8, len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A whole control frame (close, ping, pong: at most 125 bytes of payload).
pub fn control(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(125)];
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(&[0x80 | opcode, payload.len() as u8]);
    frame.extend_from_slice(payload);
    frame
}

/// What of `reason` a close frame can carry: 123 bytes (125 less the code), cut on a character
/// boundary.
pub fn close_reason(reason: &str) -> &str {
    &reason[..reason.floor_char_boundary(123)]
}

/// A close frame with a code and a reason (cut to fit, see [`close_reason`]).
pub fn close(code: u16, reason: &str) -> Vec<u8> {
    let reason = close_reason(reason);
    let end = reason.len();
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    control(OP_CLOSE, &payload)
}

/// Close codes a peer may send (RFC 6455 7.4.1 and 7.4.2, as the Autobahn cases read them):
/// the defined ones that may appear on the wire, and 3000–4999 for libraries and applications.
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Reads the client's frames into messages. It keeps only the bytes not yet made into a
/// message; between messages it holds no memory at all.
#[derive(Debug)]
pub struct Parser {
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    start: usize,
    /// The message being put together from fragments, if one was started (boxed: an idle
    /// socket keeps only the pointer's room).
    partial: Option<Box<Partial>>,
    /// The largest message accepted, in bytes.
    max_message: usize,
}

#[derive(Debug)]
struct Partial {
    text: bool,
    data: Vec<u8>,
    /// For text: how much of `data` is known to be valid UTF-8 so far.
    checked: usize,
}

/// One frame's header, as parsed.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    payload: Range<usize>,
}

impl Parser {
    pub fn new(max_message: usize) -> Self {
        Self { buf: Vec::new(), start: 0, partial: None, max_message }
    }

    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed. After an error the
    /// connection must be closed: the stream cannot be read any further.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, WireError> {
        loop {
            let Some(header) = self.header()? else {
                self.compact();
                return Ok(None);
            };
            let Header { fin, opcode, mask, payload } = header;
            let end = self.start + payload.end;
            let body = self.start + payload.start..end;
            unmask(&mut self.buf[body.clone()], mask);
            self.start = end;
            let body = &self.buf[body];
            let message = match opcode {
                OP_PING => Some(Incoming::Ping(body.to_vec())),
                OP_PONG => Some(Incoming::Pong),
                OP_CLOSE => Some(Incoming::Close(close_payload(body)?)),
                OP_TEXT | OP_BINARY if fin => Some(whole(opcode == OP_TEXT, body.to_vec())?),
                OP_TEXT | OP_BINARY => {
                    let mut partial = Box::new(Partial { text: opcode == OP_TEXT, data: body.to_vec(), checked: 0 });
                    partial.check()?;
                    self.partial = Some(partial);
                    None
                }
                _ => {
                    // A continuation (the header check made sure a message was started).
                    let partial = self.partial.as_mut().ok_or(WireError::Protocol("continuation of nothing"))?;
                    if partial.data.len() + body.len() > self.max_message {
                        return Err(WireError::TooBig);
                    }
                    partial.data.extend_from_slice(body);
                    partial.check()?;
                    if fin {
                        let partial = self.partial.take().ok_or(WireError::Protocol("lost"))?;
                        Some(whole(partial.text, partial.data)?)
                    } else {
                        None
                    }
                }
            };
            if let Some(message) = message {
                // Consumed bytes are dropped only when more must be read: a burst of messages
                // that arrived together is not moved along the buffer once per message.
                return Ok(Some(message));
            }
        }
    }

    /// Parses the header at `start`, if all of it and its payload have arrived; checks
    /// everything the header alone can tell.
    fn header(&self) -> Result<Option<Header>, WireError> {
        let bytes = &self.buf[self.start..];
        let [first, second, ..] = *bytes else { return Ok(None) };
        if first & 0x70 != 0 {
            return Err(WireError::Protocol("reserved bits set without an extension"));
        }
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0F);
        if second & 0x80 == 0 {
            return Err(WireError::Protocol("client frames must be masked"));
        }
        let control = opcode & 0x08 != 0;
        match opcode {
            OP_CONTINUATION if self.partial.is_none() => return Err(WireError::Protocol("continuation of nothing")),
            OP_TEXT | OP_BINARY if self.partial.is_some() => {
                return Err(WireError::Protocol("new message before the last one ended"));
            }
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(WireError::Protocol("unknown opcode")),
        }
        let (len, at) = match second & 0x7F {
            126 => match bytes.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match bytes.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(b) => (u64::from_be_bytes(b), 10),
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if control && (!fin || len > 125) {
            return Err(WireError::Protocol("control frames must be whole and at most 125 bytes"));
        }
        if len >> 63 != 0 {
            return Err(WireError::Protocol("frame length out of range"));
        }
        let len = usize::try_from(len).map_err(|_| WireError::TooBig)?;
        if len > self.max_message {
            return Err(WireError::TooBig);
        }
        let Some(mask) = bytes.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
            return Ok(None);
        };
        let payload = at + 4..at + 4 + len;
        if bytes.len() < payload.end {
            return Ok(None);
        }
        Ok(Some(Header { fin, opcode, mask, payload }))
    }

    /// Drops consumed bytes; gives the buffer back when nothing is left in it.
    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

impl Partial {
    /// Fails a text message as soon as its bytes cannot be UTF-8, not only at its end; a
    /// character cut between two fragments is waited for.
    fn check(&mut self) -> Result<(), WireError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(error) if error.error_len().is_none() => self.checked += error.valid_up_to(),
            Err(_) => return Err(WireError::NotUtf8),
        }
        Ok(())
    }
}

fn whole(text: bool, data: Vec<u8>) -> Result<Incoming, WireError> {
    if text {
        String::from_utf8(data).map(Incoming::Text).map_err(|_| WireError::NotUtf8)
    } else {
        Ok(Incoming::Binary(data))
    }
}

fn close_payload(body: &[u8]) -> Result<Option<(u16, String)>, WireError> {
    match body {
        [] => Ok(None),
        [_] => Err(WireError::Protocol("a close payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !close_code_allowed(code) {
                return Err(WireError::Protocol("close code not allowed on the wire"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WireError::NotUtf8)?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// Client frames are masked with a 4-byte key (RFC 6455 5.3); XOR, word by word.
fn unmask(bytes: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let (words, rest) = bytes.as_chunks_mut::<4>();
    for chunk in words {
        *chunk = (u32::from_ne_bytes(*chunk) ^ word).to_ne_bytes();
    }
    for (byte, key) in rest.iter_mut().zip(mask) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            len @ 0..126 => out.push(0x80 | len as u8),
            len @ 126..65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
        out
    }

    fn parse_all(bytes: &[u8]) -> Result<Vec<Incoming>, WireError> {
        let mut parser = Parser::new(1 << 20);
        parser.feed(bytes);
        let mut out = Vec::new();
        while let Some(message) = parser.next_message()? {
            out.push(message);
        }
        Ok(out)
    }

    #[test]
    fn the_rfcs_own_example_a_masked_hello() {
        let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(parse_all(&bytes), Ok(vec![Incoming::Text("Hello".into())]));
    }

    #[test]
    fn bytes_arriving_one_at_a_time_make_the_same_messages() {
        let mut bytes = frame(true, OP_TEXT, "héllo wörld, a longer text".as_bytes());
        bytes.extend(frame(false, OP_TEXT, "frag".as_bytes()));
        bytes.extend(frame(true, OP_PING, b"p"));
        bytes.extend(frame(true, OP_CONTINUATION, "mented".as_bytes()));
        bytes.extend(frame(true, OP_BINARY, &[0, 1, 2]));
        let mut parser = Parser::new(1 << 20);
        let mut out = Vec::new();
        for byte in &bytes {
            parser.feed(std::slice::from_ref(byte));
            while let Some(message) = parser.next_message().expect("valid") {
                out.push(message);
            }
        }
        assert_eq!(
            out,
            [
                Incoming::Text("héllo wörld, a longer text".into()),
                Incoming::Ping(b"p".to_vec()),
                Incoming::Text("fragmented".into()),
                Incoming::Binary(vec![0, 1, 2]),
            ]
        );
        assert!(parser.partial.is_none());
        assert_eq!(parser.buf.capacity(), 0, "nothing kept between messages");
    }

    #[test]
    fn lengths_of_every_width_are_read() {
        for len in [0, 125, 126, 65_535, 65_536, 200_000] {
            let text = "x".repeat(len);
            assert_eq!(parse_all(&frame(true, OP_TEXT, text.as_bytes())), Ok(vec![Incoming::Text(text)]), "{len}");
        }
    }

    #[test]
    fn the_protocols_rules_are_enforced() {
        let unmasked = [0x81, 0x02, b'h', b'i'];
        assert_eq!(parse_all(&unmasked), Err(WireError::Protocol("client frames must be masked")));
        let mut reserved = frame(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        assert!(matches!(parse_all(&reserved), Err(WireError::Protocol(_))));
        for opcode in [3, 7, 0xB, 0xF] {
            assert!(matches!(parse_all(&frame(true, opcode, b"")), Err(WireError::Protocol(_))), "{opcode}");
        }
        assert!(matches!(parse_all(&frame(true, OP_CONTINUATION, b"x")), Err(WireError::Protocol(_))));
        let mut twice = frame(false, OP_TEXT, b"a");
        twice.extend(frame(true, OP_TEXT, b"b"));
        assert!(matches!(parse_all(&twice), Err(WireError::Protocol(_))));
        assert!(matches!(parse_all(&frame(false, OP_PING, b"")), Err(WireError::Protocol(_))));
        assert!(matches!(parse_all(&frame(true, OP_PING, &[0; 126])), Err(WireError::Protocol(_))));
    }

    #[test]
    fn text_that_is_not_utf8_fails_at_the_first_bad_fragment() {
        assert_eq!(parse_all(&frame(true, OP_TEXT, &[0xce, 0xba, 0xff])), Err(WireError::NotUtf8));
        let mut parser = Parser::new(1 << 20);
        parser.feed(&frame(false, OP_TEXT, &[b'a', 0xff]));
        assert_eq!(parser.next_message(), Err(WireError::NotUtf8), "before the message ends");
        // A character split between two fragments is fine.
        let euro = "€".as_bytes();
        let mut split = frame(false, OP_TEXT, &euro[..1]);
        split.extend(frame(true, OP_CONTINUATION, &euro[1..]));
        assert_eq!(parse_all(&split), Ok(vec![Incoming::Text("€".into())]));
    }

    #[test]
    fn messages_over_the_cap_are_refused_from_the_header_or_the_fragment() {
        let mut parser = Parser::new(10);
        parser.feed(&frame(true, OP_TEXT, &[b'a'; 11])[..4]);
        assert_eq!(parser.next_message(), Err(WireError::TooBig), "known from the header alone");
        let mut parser = Parser::new(10);
        parser.feed(&frame(false, OP_TEXT, b"123456"));
        parser.feed(&frame(true, OP_CONTINUATION, b"789012"));
        assert_eq!(parser.next_message(), Err(WireError::TooBig));
    }

    #[test]
    fn close_frames_carry_a_valid_code_and_a_utf8_reason() {
        assert_eq!(parse_all(&frame(true, OP_CLOSE, b"")), Ok(vec![Incoming::Close(None)]));
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        assert_eq!(parse_all(&frame(true, OP_CLOSE, &payload)), Ok(vec![Incoming::Close(Some((1000, "bye".into())))]));
        assert!(matches!(parse_all(&frame(true, OP_CLOSE, &[3])), Err(WireError::Protocol(_))));
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] {
            let result = parse_all(&frame(true, OP_CLOSE, &code.to_be_bytes()));
            assert!(matches!(result, Err(WireError::Protocol(_))), "{code}");
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.push(0xff);
        assert_eq!(parse_all(&frame(true, OP_CLOSE, &bad_reason)), Err(WireError::NotUtf8));
    }

    #[test]
    fn server_headers_use_the_shortest_length_form() {
        let mut out = [0; MAX_HEADER];
        assert_eq!((header(OP_TEXT, 5, &mut out), &out[..2]), (2, &[0x81, 5][..]));
        assert_eq!((header(OP_TEXT, 300, &mut out), &out[..4]), (4, &[0x81, 126, 1, 44][..]));
        assert_eq!(header(OP_BINARY, 70_000, &mut out), 10);
        assert_eq!(&out[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(close(4100, "é".repeat(100).as_str()).len(), 2 + 2 + 122, "cut on a character boundary");
    }
}
