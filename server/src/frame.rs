//! `Frame`: one encoded server message, ready for any number of sockets.
//!
//! Burner's own type, so the hub, the bus and moderation do not depend on how a socket library
//! holds text. Inside, the UTF-8 text behind one shared count: cloning a frame shares it, which is
//! how one message is encoded once for a whole room, and the socket (`websocket`) writes those
//! very bytes as its frame's payload. An `Arc<str>` rather than a byte-buffer type: a clone and a
//! drop (one of each per delivery) are then one atomic instruction on the count beside the text,
//! not a call through the buffer's table of functions, and a frame is two words, not four.

use app::protocol::ServerMsg;
use std::{ops::Deref, sync::Arc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Arc<str>);

impl Frame {
    /// Encodes a server message.
    pub fn encode(message: &ServerMsg) -> Self {
        Self::from(message.encode())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are the one encoding (clones of one frame), not merely the same text.
    pub fn is(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for Frame {
    fn default() -> Self {
        Self(Arc::from(""))
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self(Arc::from(text))
    }
}

impl Deref for Frame {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
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
