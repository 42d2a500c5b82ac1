//! The hub's handle on one connection: a bounded outbox of ready-to-send frames and a way to
//! tell the connection to close. Nothing here ever waits.

use axum::extract::ws::Utf8Bytes;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, mpsc};

/// An encoded text frame. Cloning shares the bytes: a message is encoded once for a whole room.
pub type Frame = Utf8Bytes;

/// Why the server is closing a connection: a WebSocket close code and a short reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

/// What the hub holds for each member and directory watcher.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    pub id: u64,
    outbox: mpsc::Sender<Frame>,
    control: Arc<Control>,
}

/// Set once by whoever decides the connection must go; read by the connection's task.
#[derive(Debug, Default)]
pub struct Control {
    reason: Mutex<Option<CloseReason>>,
    notify: Notify,
}

/// The outcome of offering a frame to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The outbox is full: the client is not reading. It has been told to close as slow.
    Slow,
    /// The connection is already gone.
    Gone,
}

impl ConnHandle {
    /// The outbox is bounded so one client that stops reading costs at most `capacity` frames
    /// (shared bytes) of memory; it is closed instead of buffering without end.
    pub fn new(id: u64, capacity: usize) -> (Self, mpsc::Receiver<Frame>, Arc<Control>) {
        let (outbox, inbox) = mpsc::channel(capacity.max(1));
        let control = Arc::new(Control::default());
        (Self { id, outbox, control: control.clone() }, inbox, control)
    }

    /// Queue a frame without waiting. A full outbox closes the connection as slow.
    pub fn offer(&self, frame: Frame) -> Offer {
        match self.outbox.try_send(frame) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(CloseReason { code: app::protocol::close::SLOW, reason: "too slow to keep up" });
                Offer::Slow
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }

    pub fn close(&self, reason: CloseReason) {
        self.control.close(reason);
    }
}

impl Control {
    /// The first reason wins: a connection closed as slow stays closed as slow.
    pub fn close(&self, reason: CloseReason) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason);
            // notify_one keeps a permit when nobody waits yet, so the signal is never lost.
            self.notify.notify_one();
        }
    }

    /// Resolves once `close` has been called.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let current = *self.reason.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(reason) = current {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}
