//! Which of a connection's sources woke its task, so a wake-up polls only those.
//!
//! A connection's task is woken by its outbox (frames to write: most wake-ups under load), by
//! its socket (bytes to read) and by its timer (a ping due). Polling a source that has nothing
//! is not free: asking the runtime whether the socket is readable takes the lock of the
//! socket's registration to leave the waker there again, and polling the timer does the same for
//! its entry. Both registrations last until they fire, so the socket and the timer are given the
//! outbox's waker ([`Outbox::waker`]), which notes that they fired before it wakes the task, and
//! a wake-up that was only the outbox's polls nothing else.

use crate::{
    outbox::Outbox,
    websocket::{
        Socket,
        frames::{Incoming, WireError},
    },
};
use std::{
    pin::Pin,
    task::{Context, Poll},
};
use tokio::time::Sleep;

/// The socket's and the timer's side of a connection's wake-ups.
///
/// Three flags, not the waker itself: the socket's task lives as long as the socket, and its
/// size is counted (`ws::tests`). The waker is made when one of them is polled, which under load
/// is seldom.
pub(super) struct Wakes {
    /// The socket gave a message last time: more may have come in the same read, without a
    /// wake-up.
    more_to_read: bool,
    /// The timer was polled since it was last set, so the runtime holds the waker for it.
    timer_armed: bool,
    /// The other sources woke the task, and have not both been polled since.
    woken: bool,
}

impl Wakes {
    pub(super) fn new() -> Self {
        // Nothing is registered yet: the first look polls both.
        Self { more_to_read: true, timer_armed: false, woken: false }
    }

    /// Whether the socket or the timer may have something: they woke the task, or are not yet
    /// registered to. Until both have been polled ([`Wakes::poll_timer`] comes last), the
    /// answer stays yes.
    pub(super) fn others(&mut self, outbox: &Outbox) -> bool {
        if outbox.woken() {
            self.woken = true;
        }
        self.woken || self.more_to_read || !self.timer_armed
    }

    /// The socket's next message, if any; if none, the socket wakes the task through the
    /// outbox's waker when it has one.
    pub(super) fn poll_socket(
        &mut self,
        socket: &mut Socket,
        outbox: &Outbox,
    ) -> Poll<Option<Result<Incoming, WireError>>> {
        let polled = socket.poll_recv(&mut Context::from_waker(&outbox.waker()));
        self.more_to_read = polled.is_ready();
        polled
    }

    /// Whether the timer is due; if not, it wakes the task through the outbox's waker when it
    /// is.
    /// Polled after the socket: the wake-up they were polled for has been seen.
    pub(super) fn poll_timer(&mut self, timer: Pin<&mut Sleep>, outbox: &Outbox) -> Poll<()> {
        let polled = timer.poll(&mut Context::from_waker(&outbox.waker()));
        self.timer_armed = polled.is_pending();
        self.woken = false;
        polled
    }

    /// The timer was set to another deadline: the next look polls it again.
    pub(super) fn timer_reset(&mut self) {
        self.timer_armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{ConnHandle, Taken};
    use std::{future::poll_fn, time::Duration};
    use tokio::{io::AsyncWriteExt, time::Instant};

    /// A masked client text frame (the mask is zero: the text goes as it is).
    fn client_text(text: &str) -> Vec<u8> {
        let mut frame = vec![0x81];
        match u8::try_from(text.len()) {
            Ok(len) if len < 126 => frame.push(0x80 | len),
            _ => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&u16::try_from(text.len()).expect("under 64 KiB").to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text.as_bytes());
        frame
    }

    /// Waits (up to 5 s) for another source to wake a task waiting on `outbox`, with nothing
    /// queued; whether it did.
    async fn woken(outbox: &Outbox) -> bool {
        let woke = poll_fn(|cx| match outbox.poll_take(cx) {
            Poll::Ready(Taken::Woken) => Poll::Ready(()),
            Poll::Ready(other) => panic!("unexpected {other:?}"),
            Poll::Pending => Poll::Pending,
        });
        tokio::time::timeout(Duration::from_secs(5), woke).await.is_ok()
    }

    #[tokio::test]
    async fn the_socket_is_polled_again_only_once_it_woke_the_task_and_nothing_it_sends_is_missed() {
        let (mut socket, mut client) = Socket::loopback().await;
        let (_handle, outbox) = ConnHandle::new(1, 8);
        let mut wakes = Wakes::new();
        let mut timer = std::pin::pin!(tokio::time::sleep(Duration::from_secs(60)));
        // The first look polls both (registering the outbox's waker with each), then nothing
        // until one of them fires.
        assert!(wakes.others(&outbox));
        assert!(wakes.poll_socket(&mut socket, &outbox).is_pending());
        assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_pending());
        assert!(!wakes.others(&outbox), "nothing fired: nothing to poll");
        // Two messages in one write: both come out, though the socket woke the task once.
        let mut bytes = client_text("one");
        bytes.extend(client_text("two"));
        client.write_all(&bytes).await.expect("written");
        assert!(woken(&outbox).await, "the socket woke the task waiting on its outbox");
        // Each message comes out of its own poll; after the first, only "more to read" says the
        // socket may have another (the wake-up's note is cleared once the timer is polled).
        let mut got = Vec::new();
        assert!(wakes.others(&outbox));
        while let Poll::Ready(message) = wakes.poll_socket(&mut socket, &outbox) {
            match message {
                Some(Ok(Incoming::Text(text))) => got.push(text),
                other => panic!("unexpected {other:?}"),
            }
            assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_pending());
            assert!(wakes.others(&outbox), "a message came out: there may be more");
        }
        assert_eq!(got, ["one", "two"]);
        assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_pending());
        assert!(!wakes.others(&outbox), "all read: nothing to poll until the socket wakes the task");

        // A burst longer than one read (8 KiB): the reads that fill the buffer leave the socket
        // readable without a new wake-up, and every message still comes out.
        let burst: Vec<String> = (0..40).map(|n| format!("{n:03}{}", "x".repeat(497))).collect();
        client.write_all(&burst.iter().flat_map(|text| client_text(text)).collect::<Vec<u8>>()).await.expect("written");
        let mut got = Vec::new();
        while got.len() < burst.len() {
            assert!(woken(&outbox).await, "{} of {} messages read, then no wake-up", got.len(), burst.len());
            while wakes.others(&outbox) {
                match wakes.poll_socket(&mut socket, &outbox) {
                    Poll::Ready(Some(Ok(Incoming::Text(text)))) => got.push(text),
                    Poll::Ready(other) => panic!("unexpected {other:?}"),
                    Poll::Pending => assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_pending()),
                }
            }
        }
        assert_eq!(got, burst);
    }

    #[tokio::test]
    async fn the_timer_wakes_the_task_through_the_outbox_and_is_polled_again_when_set_again() {
        let (_handle, outbox) = ConnHandle::new(1, 8);
        let mut wakes = Wakes::new();
        let mut timer = std::pin::pin!(tokio::time::sleep_until(Instant::now() + Duration::from_millis(20)));
        assert!(wakes.others(&outbox));
        assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_pending());
        wakes.more_to_read = false;
        assert!(!wakes.others(&outbox));
        assert!(woken(&outbox).await, "the timer woke the task waiting on its outbox");
        assert!(wakes.others(&outbox));
        assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_ready());
        timer.as_mut().reset(Instant::now() + Duration::from_secs(60));
        wakes.timer_reset();
        assert!(wakes.others(&outbox));
        assert!(wakes.poll_timer(timer.as_mut(), &outbox).is_pending());
        assert!(!wakes.others(&outbox), "armed, not due: nothing to poll");
        timer.as_mut().reset(Instant::now() + Duration::from_secs(30));
        wakes.timer_reset();
        assert!(wakes.others(&outbox), "a timer set again is polled again");
    }
}
