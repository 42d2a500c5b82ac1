//! A minimal WebSocket client, made to outrun the fastest server: one read of up to 64 KiB
//! takes in as many frames as arrived, frames are parsed in place (no allocation per frame),
//! and the handler sees each text payload as a byte slice. Writes are masked frames built into
//! one reused buffer. Only what a benchmark needs: text frames, pings answered, no extensions.

use std::{rc::Rc, time::Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

const READ_CHUNK: usize = 64 * 1024;

/// The writing half, shared by the senders and the reader (which answers pings).
pub type Writer = Rc<tokio::sync::Mutex<OwnedWriteHalf>>;

pub struct Conn {
    pub reader: Reader,
    pub writer: Writer,
}

pub struct Reader {
    half: OwnedReadHalf,
    buffer: Vec<u8>,
}

/// Opens `ws://127.0.0.1:{port}{path}` with `Origin: http://127.0.0.1:{port}`.
pub async fn connect(port: u16, path: &str) -> anyhow::Result<Conn> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: YnVybmVyLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: http://127.0.0.1:{port}\r\n\r\n"
    );
    write.write_all(request.as_bytes()).await?;
    let mut buffer = Vec::with_capacity(READ_CHUNK);
    let end = loop {
        let mut chunk = [0_u8; 4096];
        let n = read.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed during the handshake");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    anyhow::ensure!(buffer.starts_with(b"HTTP/1.1 101"), "refused: {}", String::from_utf8_lossy(&buffer[..end]));
    buffer.drain(..end);
    Ok(Conn { reader: Reader { half: read, buffer }, writer: Rc::new(tokio::sync::Mutex::new(write)) })
}

/// Sends one masked text frame.
pub async fn send(writer: &Writer, text: &[u8]) -> anyhow::Result<()> {
    let mut frame = Vec::with_capacity(text.len() + 14);
    encode(0x1, text, &mut frame);
    write_all(writer, &frame).await
}

async fn write_all(writer: &Writer, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(writer.lock().await.write_all(bytes).await?)
}

fn encode(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    // A fixed mask: servers must unmask, none may care which mask it is.
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

impl Reader {
    /// Reads frames until a text frame matches `done` (a join's answer); what came after it
    /// stays in the buffer for [`Reader::run`].
    pub async fn read_until(&mut self, done: impl Fn(&[u8]) -> bool) -> anyhow::Result<()> {
        loop {
            while let Some((opcode, payload, next)) = parse(&self.buffer) {
                let matched = opcode == 0x1 && done(payload);
                anyhow::ensure!(opcode != 0x8, "closed: {}", String::from_utf8_lossy(payload));
                self.buffer.drain(..next);
                if matched {
                    return Ok(());
                }
            }
            let len = self.buffer.len();
            self.buffer.resize(len + READ_CHUNK, 0);
            let n = self.half.read(&mut self.buffer[len..]).await?;
            self.buffer.truncate(len + n);
            anyhow::ensure!(n > 0, "closed while joining");
        }
    }

    /// Reads until the connection ends, calling `on_text` for every text frame with when the
    /// read that brought it in ended (the clock is read once per read, not per frame: at five
    /// million frames a second, reading it per frame took a tenth of the generator's core).
    /// Pings are answered with pongs through `writer`.
    pub async fn run(mut self, writer: Writer, mut on_text: impl FnMut(&[u8], Instant) -> Option<&'static [u8]>) {
        let mut start = 0;
        let mut read_at = Instant::now();
        loop {
            // Frames complete in the buffer.
            while let Some((opcode, payload, next)) = parse(&self.buffer[start..]) {
                match opcode {
                    0x1 => {
                        if let Some(answer) = on_text(payload, read_at) {
                            let mut frame = Vec::new();
                            encode(0x1, answer, &mut frame);
                            if write_all(&writer, &frame).await.is_err() {
                                return;
                            }
                        }
                    }
                    0x9 => {
                        let mut pong = Vec::new();
                        encode(0xA, payload, &mut pong);
                        if write_all(&writer, &pong).await.is_err() {
                            return;
                        }
                    }
                    0x8 => return,
                    _ => {}
                }
                start += next;
            }
            self.buffer.drain(..start);
            start = 0;
            // Into the buffer's spare room, as it is: zeroing 64 KiB before every read took a
            // third of the generator's time.
            self.buffer.reserve(READ_CHUNK);
            match self.half.read_buf(&mut self.buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => read_at = Instant::now(),
            }
        }
    }
}

/// One unmasked frame at the start of `bytes`: its opcode, payload and length in all.
fn parse(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
    let (len, header) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = bytes.get(header..header + len)?;
    Some((b0 & 0x0f, payload, header + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_parsed_in_place_and_incomplete_ones_wait() {
        let mut bytes = vec![0x81, 5];
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&[0x81, 126, 0, 200]);
        bytes.extend(std::iter::repeat_n(b'x', 200));
        let (opcode, payload, next) = parse(&bytes).expect("first");
        assert_eq!((opcode, payload, next), (1, &b"hello"[..], 7));
        let (_, payload, _) = parse(&bytes[next..]).expect("second");
        assert_eq!(payload.len(), 200);
        assert!(parse(&bytes[next..bytes.len() - 1]).is_none(), "one byte short");
    }

    #[test]
    fn a_client_frame_is_masked_and_unmasks_to_the_payload() {
        let mut frame = Vec::new();
        encode(1, b"abc", &mut frame);
        assert_eq!(&frame[..2], &[0x81, 0x83]);
        let mask = &frame[2..6];
        let unmasked: Vec<u8> = frame[6..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(unmasked, b"abc");
    }
}
