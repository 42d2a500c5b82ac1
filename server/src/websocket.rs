//! Burner's own server side of the WebSocket protocol (RFC 6455): the upgrade, and a socket that
//! writes frames straight from the room's shared bytes.
//!
//! Why not a library's socket: a chat server writes the same few hundred bytes to many sockets.
//! tungstenite copies each frame into a per-socket write buffer first, which keeps the capacity
//! of the largest frame it ever wrote (a `joined` frame listing a room's members) for the life of
//! the socket, and reads through a buffer held while idle. Here a batch of queued frames goes out
//! in one vectored write, done at once (each frame's header from the stack, its payload the
//! room's own bytes, no copy); only what the kernel does not take is copied, to wait. Reading
//! goes into a buffer on the stack of the call that reads (not zeroed, not kept); the parser
//! keeps bytes only while a message is half-received. An idle socket holds its TCP stream and nothing
//! else.
//!
//! The framing rules live in [`frames`]; the Autobahn test cases check the whole of it
//! (`server/examples/autobahn_echo.rs`, run by `make test`).

pub mod frames;

use crate::error::Refusal;
use app::protocol::ErrorCode;
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use base64::Engine;
use frames::{Incoming, MAX_HEADER, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Parser, WireError};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use socket2::SockRef;
use std::{
    cell::RefCell,
    future::poll_fn,
    io,
    io::IoSlice,
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::timeout,
};

/// Most bytes of small frames gathered for one write; a frame over half of it is written from
/// its own bytes.
const WRITE_CHUNK: usize = 64 * 1024;
/// Most bytes of frames laid out once for several sockets ([`frame_texts`]): far more than
/// [`WRITE_CHUNK`], since the layout's one copy is shared by every socket sent it, and one
/// member behind by a few dozen kilobytes is written so too, not laid out again for itself.
const SHARED_LAYOUT: usize = 1024 * 1024;
/// Most bytes left waiting that a write sends along with its frames, rather than behind them.
const MERGED_UNSENT: usize = 1024;
/// How much one read takes from the kernel, on the stack; a longer message takes several reads.
const READ_CHUNK: usize = 8 * 1024;
/// How long a closing handshake may take before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

thread_local! {
    /// Where small frames are laid out for one write: one per worker thread, reused, so no socket
    /// holds a write buffer of its own.
    static GATHER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A request to open a WebSocket, checked (RFC 6455 4.2.1) and ready to be accepted.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refusal> {
        let headers = &parts.headers;
        let is_upgrade = parts.method == Method::GET
            && header_has(headers, header::CONNECTION, "upgrade")
            && header_has(headers, header::UPGRADE, "websocket");
        if !is_upgrade {
            return Err(bad_request("This address speaks WebSocket only: open it with a WebSocket upgrade."));
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
            return Err(bad_request("Only WebSocket version 13 is spoken here."));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err(bad_request("The WebSocket upgrade has no Sec-WebSocket-Key."));
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(bad_request("This connection cannot be upgraded to a WebSocket."));
        };
        Ok(Self { key, on_upgrade })
    }
}

fn bad_request(sentence: &'static str) -> Refusal {
    Refusal::new(ErrorCode::BadRequest, sentence)
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` answer to a key (RFC 6455 4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

impl Upgrade {
    /// Answers 101. The socket is [`Switch::socket`]'s once hyper has written the answer.
    pub fn answer(self) -> (Response, Switch) {
        let Self { key, on_upgrade } = self;
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::try_from(accept_key(key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        (response, Switch(on_upgrade))
    }
}

/// An accepted TCP stream as hyper serves it (`serve`). The answer to an upgrade (a 101) is not
/// written but kept, from its first byte on (hyper writes nothing after it), and becomes the
/// socket's: its first write sends it together with the first frames (`welcome`, and the join
/// its address asked for), so a WebSocket visit costs the server one send and the client one
/// wake-up fewer (docs/BENCHMARKS.md, "Churn"). Everything else passes straight through.
#[derive(Debug)]
pub struct Wire {
    stream: TcpStream,
    /// The 101, once hyper has written it.
    held: Vec<u8>,
}

/// How every answer to an upgrade begins (hyper writes the status line first, in one piece with
/// the headers).
const SWITCHING: &[u8] = b"HTTP/1.1 101 ";

impl Wire {
    pub fn new(stream: TcpStream) -> Self {
        Self { stream, held: Vec::new() }
    }

    /// Whether what is written now is (part of) the 101, to keep.
    fn holds(&self, first: Option<&[u8]>) -> bool {
        !self.held.is_empty() || first.is_some_and(|bytes| bytes.starts_with(SWITCHING))
    }
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holds(Some(buf)) {
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holds(bufs.iter().find(|buf| !buf.is_empty()).map(|buf| &buf[..])) {
            for buf in bufs {
                this.held.extend_from_slice(buf);
            }
            return Poll::Ready(Ok(bufs.iter().map(|buf| buf.len()).sum()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// An HTTP connection answered with 101: its socket, once the answer is written.
pub struct Switch(OnUpgrade);

impl Switch {
    /// The socket, once the HTTP connection has switched (at once when its task ran to the end
    /// of the answer); `None` if it never did. Messages over `max_message` bytes close the socket
    /// with 1009.
    pub async fn socket(self, max_message: usize) -> Option<Socket> {
        let upgraded = match self.0.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return None;
            }
        };
        // Burner's own accept loop serves a `Wire`, which kept the 101 for the socket's first
        // write (or its first read, whichever comes first); another server a plain TCP stream.
        let (io, unsent, read_buf) = match upgraded.downcast::<TokioIo<Wire>>() {
            Ok(parts) => {
                let Wire { stream, held } = parts.io.into_inner();
                (stream, held, parts.read_buf)
            }
            Err(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => (parts.io.into_inner(), Vec::new(), parts.read_buf),
                Err(_) => {
                    tracing::warn!("upgraded connection is not a TCP stream");
                    return None;
                }
            },
        };
        let mut parser = Parser::new(max_message);
        // Bytes a client sent right behind its request, before our answer. Copied and let go at
        // once: they share the HTTP connection's whole read buffer.
        parser.feed(&read_buf);
        drop(read_buf);
        Some(Socket { io, parser, unsent })
    }
}

/// An open WebSocket. Reading ([`Socket::recv`]) is cancel-safe, so it can wait in a
/// `select!` beside the outbox.
///
/// Writing is done now, without waiting, as far as the kernel takes it ([`Socket::write_texts`]
/// and the like); what it does not take is kept, copied, in `unsent`, and [`Socket::flush`]
/// waits for the socket to drain it. Nothing is kept once it is sent: the batch of frames and
/// their headers live on the stack of the call that writes them, never in the socket's future.
#[derive(Debug)]
pub struct Socket {
    io: TcpStream,
    parser: Parser,
    /// Bytes written by us but not yet taken by the kernel, in order.
    unsent: Vec<u8>,
}

impl Socket {
    /// A socket on one end of a loopback connection, the raw stream on the other (for tests).
    #[cfg(test)]
    pub(crate) async fn loopback() -> (Socket, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (Socket { io: server, parser: Parser::new(1 << 20), unsent: Vec::new() }, client)
    }

    /// The next whole message. `None` when the connection ended (closed or failed) without a
    /// close frame; an error when the client broke the protocol, and the socket must then be
    /// closed with [`WireError::close_code`].
    pub async fn recv(&mut self) -> Option<Result<Incoming, WireError>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`Socket::recv`] as a poll: the next whole message if one is in, else the task is woken
    /// when the socket has more (the waker is kept by the runtime's registration, not here).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, WireError>>> {
        // A socket that reads before it writes (an echo server) sends the 101 it still holds
        // (`Wire`) first: the client says nothing before it has it. `send_texts` decides whether
        // what waits goes now (a few bytes) or stays for `flush` (the kernel was full).
        if !self.unsent.is_empty()
            && send_texts(SockRef::from(&self.io), std::iter::empty::<&[u8]>(), &mut self.unsent).is_err()
        {
            return Poll::Ready(None);
        }
        loop {
            match self.parser.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
            // Ended or failed.
            if !ready!(self.poll_read_now(cx)) {
                return Poll::Ready(None);
            }
        }
    }

    /// Reads what has arrived into the parser; `false` at the end of the stream or when it
    /// failed. The buffer is on this call's stack (and not zeroed first): an idle socket holds
    /// none. Through the runtime's `poll_read`, which notes the socket drained when a read comes
    /// back short, so a message costs one read, not a second one that finds nothing.
    fn poll_read_now(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut chunk = [MaybeUninit::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
            Ok(()) if buf.filled().is_empty() => Poll::Ready(false),
            Ok(()) => {
                self.parser.feed(buf.filled());
                Poll::Ready(true)
            }
            Err(_) => Poll::Ready(false),
        }
    }

    /// Writes text frames, as few writes as it takes: small frames are laid out one after the
    /// other in the worker thread's gathering buffer and go out in one plain write per
    /// [`WRITE_CHUNK`] (one copy in user space is cheaper than the kernel walking two slices per
    /// frame); a big frame goes out from its own shared bytes. Whether some are left for
    /// [`Socket::flush`].
    pub fn write_texts<T: AsRef<[u8]>>(&mut self, texts: impl IntoIterator<Item = T>) -> io::Result<bool> {
        send_texts(SockRef::from(&self.io), texts, &mut self.unsent)?;
        Ok(!self.unsent.is_empty())
    }

    /// A second descriptor of this socket, for [`write_texts_to`] to write on while the
    /// socket's own task waits (`outbox`: the one-core runtime's writer).
    pub fn writer(&self) -> io::Result<socket2::Socket> {
        SockRef::from(&self.io).try_clone()
    }

    /// Takes over bytes another writer of this socket ([`write_texts_to`]) could not send: they
    /// go out before anything else, by [`Socket::flush`].
    pub fn adopt_unsent(&mut self, bytes: Vec<u8>) {
        if self.unsent.is_empty() {
            self.unsent = bytes;
        } else {
            self.unsent.extend_from_slice(&bytes);
        }
    }

    /// Writes one data message (text or binary) in one frame.
    pub fn write_message(&mut self, text: bool, payload: &[u8]) -> io::Result<bool> {
        let mut header = [0; MAX_HEADER];
        let len = frames::header(if text { OP_TEXT } else { OP_BINARY }, payload.len(), &mut header);
        self.write_slices(&mut [IoSlice::new(&header[..len]), IoSlice::new(payload)])
    }

    pub fn write_ping(&mut self) -> io::Result<bool> {
        self.write_slices(&mut [IoSlice::new(&frames::control(OP_PING, &[]))])
    }

    /// Answers a ping with its own payload.
    pub fn write_pong(&mut self, payload: &[u8]) -> io::Result<bool> {
        self.write_slices(&mut [IoSlice::new(&frames::control(OP_PONG, payload))])
    }

    /// Whether bytes written wait for [`Socket::flush`].
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Waits until everything written so far has been taken by the kernel.
    pub async fn flush(&mut self) -> io::Result<()> {
        let mut sent = 0;
        while sent < self.unsent.len() {
            self.io.writable().await?;
            match self.io.try_write(&self.unsent[sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => sent += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        self.unsent = Vec::new();
        Ok(())
    }

    /// Closes from our side: the close frame, then the client's answer is awaited (briefly).
    /// The connection ends when the socket is dropped.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let _ = timeout(CLOSE_TIMEOUT, async {
            let frame = frames::close(code, reason);
            if self.write_slices(&mut [IoSlice::new(&frame)]).is_ok() && self.flush().await.is_ok() {
                while let Some(Ok(message)) = self.recv().await {
                    if matches!(message, Incoming::Close(_)) {
                        break;
                    }
                }
            }
        })
        .await;
    }

    /// Answers the client's close frame with the same code (RFC 6455 5.5.1). Drop the socket
    /// right after: the server ends the TCP connection first.
    pub async fn answer_close(&mut self, code: Option<u16>) {
        let frame = match code {
            Some(code) => frames::close(code, ""),
            None => frames::control(OP_CLOSE, &[]),
        };
        if self.write_slices(&mut [IoSlice::new(&frame)]).is_ok() {
            let _ = timeout(CLOSE_TIMEOUT, self.flush()).await;
        }
    }

    /// Writes as much as the kernel takes now; keeps a copy of the rest in `unsent`. Behind
    /// bytes already waiting, everything waits, so frames keep their order.
    fn write_slices(&mut self, slices: &mut [IoSlice<'_>]) -> io::Result<bool> {
        send_slices(&SockRef::from(&self.io), slices, &mut self.unsent)?;
        Ok(!self.unsent.is_empty())
    }
}

/// [`Socket::write_texts`] on a second descriptor of a socket ([`Socket::writer`]) whose own
/// task is waiting with nothing unsent: what the kernel did not take, in order, for that task
/// to flush ([`Socket::adopt_unsent`]).
pub fn write_texts_to<T: AsRef<[u8]>>(
    writer: &socket2::Socket,
    texts: impl IntoIterator<Item = T>,
) -> io::Result<Vec<u8>> {
    let mut unsent = Vec::new();
    send_texts(SockRef::from(writer), texts, &mut unsent)?;
    Ok(unsent)
}

/// Lays `texts` out at the end of `out` as text frames, one after another, to be written as
/// they are to several sockets ([`write_framed_to`]), if every one is small and all are within
/// [`SHARED_LAYOUT`]. False, and `out` as it was, if not.
pub fn frame_texts<T: AsRef<[u8]>>(texts: impl IntoIterator<Item = T> + Clone, out: &mut Vec<u8>) -> bool {
    let mut total = 0;
    for text in texts.clone() {
        let len = text.as_ref().len();
        if len > WRITE_CHUNK / 2 {
            return false;
        }
        total += len + MAX_HEADER;
    }
    if total > SHARED_LAYOUT {
        return false;
    }
    out.reserve(total);
    for text in texts {
        push_text_frame(out, text.as_ref());
    }
    true
}

/// One text frame, header and payload, at the end of `out`.
fn push_text_frame(out: &mut Vec<u8>, text: &[u8]) {
    let mut header = [0; MAX_HEADER];
    let len = frames::header(OP_TEXT, text.len(), &mut header);
    out.extend_from_slice(&header[..len]);
    out.extend_from_slice(text);
}

/// Bytes already laid out as frames ([`frame_texts`]), written as [`write_texts_to`] writes:
/// what the kernel did not take.
pub fn write_framed_to(writer: &socket2::Socket, framed: &[u8]) -> io::Result<Vec<u8>> {
    let mut unsent = Vec::new();
    send_slices(&SockRef::from(writer), &mut [IoSlice::new(framed)], &mut unsent)?;
    Ok(unsent)
}

/// Text frames gathered and sent (see [`Socket::write_texts`]); what the kernel did not take is
/// appended to `unsent`.
fn send_texts<T: AsRef<[u8]>>(
    socket: SockRef<'_>,
    texts: impl IntoIterator<Item = T>,
    unsent: &mut Vec<u8>,
) -> io::Result<()> {
    GATHER.with_borrow_mut(|gathered| {
        gathered.clear();
        // A few bytes waiting (the 101 a new socket still holds) go out in the same write, and
        // their buffer goes: an idle socket keeps none. (More means the kernel was full: they
        // wait for `Socket::flush`, and the frames behind them.)
        if !unsent.is_empty() && unsent.len() <= MERGED_UNSENT {
            gathered.extend_from_slice(&std::mem::take(unsent));
        }
        let result = send_gathered(&socket, texts, gathered, unsent);
        if gathered.capacity() > 2 * WRITE_CHUNK {
            *gathered = Vec::new();
        }
        result
    })
}

fn send_gathered<T: AsRef<[u8]>>(
    socket: &SockRef<'_>,
    texts: impl IntoIterator<Item = T>,
    gathered: &mut Vec<u8>,
    unsent: &mut Vec<u8>,
) -> io::Result<()> {
    for text in texts {
        let text = text.as_ref();
        if text.len() > WRITE_CHUNK / 2 {
            send_slices(socket, &mut [IoSlice::new(gathered)], unsent)?;
            gathered.clear();
            let mut header = [0; MAX_HEADER];
            let len = frames::header(OP_TEXT, text.len(), &mut header);
            send_slices(socket, &mut [IoSlice::new(&header[..len]), IoSlice::new(text)], unsent)?;
            continue;
        }
        push_text_frame(gathered, text);
        if gathered.len() >= WRITE_CHUNK {
            send_slices(socket, &mut [IoSlice::new(gathered)], unsent)?;
            gathered.clear();
        }
    }
    send_slices(socket, &mut [IoSlice::new(gathered)], unsent)
}

/// Sends as much as the kernel takes now; appends a copy of the rest to `unsent`. Behind bytes
/// already waiting there, everything waits, so frames keep their order.
///
/// Straight to the socket, not through the runtime's `try_write`: that checks the runtime's
/// note of whether the socket is writable first, and clears it when the kernel refuses. A
/// write here is tried whatever the note says (the kernel knows better); only
/// [`Socket::flush`] waits for writability, and its own `try_write` keeps the note right.
fn send_slices(socket: &SockRef<'_>, mut slices: &mut [IoSlice<'_>], unsent: &mut Vec<u8>) -> io::Result<()> {
    while unsent.is_empty() {
        // An empty slice carries nothing (and a write of nothing would read as a dead peer).
        while slices.first().is_some_and(|slice| slice.is_empty()) {
            slices = &mut std::mem::take(&mut slices)[1..];
        }
        // A peer gone is an error to end the socket on, never a signal to the process.
        let written = match &*slices {
            [] => break,
            [one] => socket.send_with_flags(one, libc::MSG_NOSIGNAL),
            several => socket.send_vectored_with_flags(several, libc::MSG_NOSIGNAL),
        };
        match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    for slice in slices.iter() {
        unsent.extend_from_slice(slice);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::AsyncReadExt;

    async fn pair() -> (Socket, TcpStream) {
        Socket::loopback().await
    }

    /// The payloads of the unmasked text frames in `bytes`.
    fn frames_in(bytes: &[u8]) -> Vec<&[u8]> {
        let mut frames = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            assert_eq!(bytes[at], 0x81, "a final, unmasked text frame");
            let (len, header) = match bytes[at + 1] {
                126 => (usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])), 4),
                127 => {
                    let len = u64::from_be_bytes(bytes[at + 2..at + 10].try_into().expect("8 bytes"));
                    (usize::try_from(len).expect("length"), 10)
                }
                short => (usize::from(short), 2),
            };
            frames.push(&bytes[at + header..at + header + len]);
            at += header + len;
        }
        frames
    }

    /// What hyper writes through a `Wire` goes straight out, but for a 101: that is kept and
    /// becomes the socket's, and goes out in front of its first frames, in the same write, after
    /// which the socket keeps no buffer.
    #[tokio::test]
    async fn the_answer_to_an_upgrade_goes_out_with_the_first_frames() {
        use tokio::io::AsyncWriteExt;
        let (Socket { io, .. }, mut client) = pair().await;
        let mut wire = Wire::new(io);
        let page = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        wire.write_all(page).await.expect("written");
        let mut read = vec![0; page.len()];
        timeout(Duration::from_secs(5), client.read_exact(&mut read)).await.expect("in time").expect("read");
        assert_eq!(read, page, "anything but a 101 passes straight through");

        // As hyper writes it: the status line and the headers, gathered.
        let (status, headers) = (&b"HTTP/1.1 101 Switching Protocols\r\n"[..], &b"upgrade: websocket\r\n\r\n"[..]);
        let written = wire.write_vectored(&[IoSlice::new(status), IoSlice::new(headers)]).await.expect("kept");
        assert_eq!(written, status.len() + headers.len(), "taken whole");
        wire.flush().await.expect("flushed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            client.try_read(&mut [0; 64]).map_err(|error| error.kind()),
            Err(io::ErrorKind::WouldBlock),
            "the 101 waits for the first frames"
        );

        // As `Switch::socket` takes it over.
        let Wire { stream, held } = wire;
        let mut socket = Socket { io: stream, parser: Parser::new(1 << 20), unsent: held };
        assert!(!socket.write_texts(["welcome"]).expect("written"), "nothing left waiting");
        assert_eq!(socket.unsent.capacity(), 0, "the socket keeps no buffer");
        let expected = [status, headers, &[0x81, 7], b"welcome"].concat();
        let mut read = vec![0; expected.len()];
        timeout(Duration::from_secs(5), client.read_exact(&mut read)).await.expect("in time").expect("read");
        assert_eq!(read, expected);
    }

    /// A socket that reads before it writes (as the Autobahn echo server does) sends the 101 it
    /// holds first: the client waits for it before it says anything.
    #[tokio::test]
    async fn a_socket_that_reads_first_sends_the_answer_first() {
        use tokio::io::AsyncWriteExt;
        let (Socket { io, .. }, mut client) = pair().await;
        let answer = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        let mut socket = Socket { io, parser: Parser::new(1 << 20), unsent: answer.clone() };
        let reading = tokio::spawn(async move { socket.recv().await.map(|message| message.is_ok()) });
        let mut read = vec![0; answer.len()];
        timeout(Duration::from_secs(5), client.read_exact(&mut read)).await.expect("the 101 came").expect("read");
        assert_eq!(read, answer);
        // "hi", masked with a key of zeros.
        client.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']).await.expect("written");
        let message = timeout(Duration::from_secs(5), reading).await.expect("in time").expect("the reader");
        assert_eq!(message, Some(true), "the client's message is read");
    }

    #[tokio::test]
    async fn what_the_kernel_does_not_take_waits_and_goes_out_in_order() {
        let (mut socket, mut client) = pair().await;
        // 12 MB in 300 frames (more than one batch) with nobody reading: far more than the
        // kernel's buffers hold.
        let texts: Vec<String> = (0..300).map(|i| format!("{i:05}{}", "x".repeat(40_000))).collect();
        assert!(socket.write_texts(&texts).expect("written"), "some of it waits");
        assert!(socket.write_texts(["last"]).expect("queued behind"), "behind what waits");
        let reader = tokio::spawn(async move {
            let mut bytes = Vec::new();
            client.read_to_end(&mut bytes).await.expect("read");
            bytes
        });
        socket.flush().await.expect("flushed");
        assert_eq!(socket.unsent.capacity(), 0, "nothing kept once sent");
        drop(socket);
        let bytes = reader.await.expect("reader");
        let frames = frames_in(&bytes);
        assert_eq!(frames.len(), 301, "no frame dropped");
        assert!(frames.iter().zip(&texts).all(|(frame, text)| *frame == text.as_bytes()), "in order, whole");
        assert_eq!(frames[300], b"last");
    }

    #[tokio::test]
    async fn small_frames_gathered_and_big_ones_written_apart_keep_their_order() {
        let (mut socket, mut client) = pair().await;
        // Small frames (gathered, more than one chunk's worth), a big one between them (written
        // from its own bytes), an empty one, then more small ones; nobody reads at first.
        // 8 MB in all: more than the kernel's buffers take, so the end of it waits.
        let mut texts: Vec<String> = (0..80_000).map(|i| format!("{i:05}{}", "s".repeat(95))).collect();
        texts.insert(700, "B".repeat(100_000));
        texts.insert(701, String::new());
        assert!(socket.write_texts(&texts).expect("written"), "some of it waits");
        let reader = tokio::spawn(async move {
            let mut bytes = Vec::new();
            client.read_to_end(&mut bytes).await.expect("read");
            bytes
        });
        socket.flush().await.expect("flushed");
        drop(socket);
        let bytes = reader.await.expect("reader");
        let frames = frames_in(&bytes);
        assert_eq!(frames.len(), texts.len(), "no frame dropped or doubled");
        assert!(frames.iter().zip(&texts).all(|(frame, text)| *frame == text.as_bytes()), "in order, whole");
        assert!(GATHER.with_borrow(Vec::capacity) <= 2 * WRITE_CHUNK, "the gathering buffer stays small");
    }

    #[test]
    fn the_accept_key_is_the_rfcs_example() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
