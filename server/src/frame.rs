//! `Frame`: one encoded server message, ready for any number of sockets.
//!
//! Burner's own type, so the hub, the bus and moderation do not depend on how a socket library
//! holds text. Inside, the shared UTF-8 bytes the WebSocket layer writes as they are: cloning a
//! frame shares them, which is how one message is encoded once for a whole room, and the socket
//! (`websocket`) writes those very bytes as its frame's payload.

use app::protocol::ServerMsg;
use std::ops::Deref;
use tungstenite::Utf8Bytes;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame(Utf8Bytes);

impl Frame {
    /// Encodes a server message.
    pub fn encode(message: &ServerMsg) -> Self {
        Self::from(message.encode())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self.0.as_str().as_bytes()
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self(Utf8Bytes::from(text))
    }
}

impl Deref for Frame {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_encoded_message_and_clones_share_its_bytes() {
        let frame = Frame::encode(&ServerMsg::MessageDeleted { seq: 7 });
        assert_eq!(frame.as_str(), r#"{"type":"message_deleted","seq":7}"#);
        let copy = frame.clone();
        assert_eq!(copy.as_ptr(), frame.as_ptr(), "one encoding, shared");
        assert_eq!(copy.as_ref(), frame.as_str().as_bytes());
    }
}
