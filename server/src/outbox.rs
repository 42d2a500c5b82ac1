//! The hub's handle on one connection: a bounded queue of ready-to-send frames and a way to tell
//! the connection to close. Offering never waits.
//!
//! A `VecDeque` behind a mutex rather than a channel: an idle connection then holds an empty
//! queue (no preallocated blocks), and the queue, the close signal and the waiting
//! connection's waker share one allocation. The connection polls it ([`Outbox::poll_ready`])
//! beside its socket, so waiting stores nothing in the connection's own future.

use crate::frame::Frame;
use std::{
    borrow::Cow,
    collections::VecDeque,
    future::poll_fn,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

/// Why the server is closing a connection: a WebSocket close code and a short reason (at most
/// 123 bytes go out in the close frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl CloseReason {
    pub const fn fixed(code: u16, reason: &'static str) -> Self {
        Self { code, reason: Cow::Borrowed(reason) }
    }

    /// A reason written at run time (a moderator's words), cut to what a close frame can carry.
    pub fn new(code: u16, reason: &str) -> Self {
        Self { code, reason: Cow::Owned(crate::websocket::frames::close_reason(reason).to_owned()) }
    }
}

/// What the hub holds for each member and directory watcher. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    pub id: u64,
    link: Arc<Link>,
}

/// The connection's side: takes frames out, learns when to close.
#[derive(Debug)]
pub struct Outbox {
    link: Arc<Link>,
}

#[derive(Debug)]
struct Link {
    state: Mutex<State>,
    /// The connection's other sources woke it ([`Outbox::waker`]) since it last looked.
    woken: AtomicBool,
    /// Frames queued before the client counts as too slow to keep up.
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    /// The order to close (boxed: given once, at the end of a connection's life).
    close: Option<Box<CloseReason>>,
    /// The connection waiting for the queue to stop being empty, or for the order to close.
    waiting: Option<Waker>,
}

/// The outcome of offering a frame to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue is full: the client is not reading. It has been told to close as slow.
    Slow,
    /// The connection is closing or gone.
    Gone,
}

/// What a socket's loop takes from its outbox ([`Outbox::poll_take`]).
#[derive(Debug)]
pub enum Taken {
    /// Everything that was queued, to write.
    Frames(VecDeque<Frame>),
    Close(CloseReason),
    /// Nothing queued, and another source woke the task ([`Outbox::waker`]): look at the
    /// others. The task's waker is left with the outbox all the same.
    Woken,
}

/// What the connection should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// Frames are waiting: take them with [`Outbox::pop`].
    Frames,
    Close(CloseReason),
}

const SLOW: CloseReason = CloseReason::fixed(app::protocol::close::SLOW, "too slow to keep up");

impl ConnHandle {
    /// The queue is bounded so one client that stops reading costs at most `capacity` frames
    /// (bytes shared with the room) of memory; it is closed instead of buffering without end.
    pub fn new(id: u64, capacity: usize) -> (Self, Outbox) {
        let link = Arc::new(Link { state: Mutex::default(), woken: AtomicBool::new(false), capacity: capacity.max(1) });
        (Self { id, link: link.clone() }, Outbox { link })
    }

    /// Queues a frame without waiting. A full queue closes the connection as slow.
    pub fn offer(&self, frame: Frame) -> Offer {
        let mut state = self.link.lock();
        if state.close.is_some() {
            return Offer::Gone;
        }
        if state.queue.len() >= self.link.capacity {
            state.close = Some(Box::new(SLOW.clone()));
            let waiting = state.waiting.take();
            drop(state);
            if let Some(waker) = waiting {
                waker.wake();
            }
            return Offer::Slow;
        }
        state.queue.push_back(frame);
        // Only the first frame wakes: the connection takes everything queued when it runs. (A
        // connection that has not polled yet finds the frames when it first looks.)
        let waiting = if state.queue.len() == 1 { state.waiting.take() } else { None };
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
        Offer::Queued
    }

    /// Tells the connection to close. The first reason wins: a client closed as slow stays so.
    pub fn close(&self, reason: CloseReason) {
        self.link.close(reason);
    }
}

impl Outbox {
    /// Resolves when there is something to send or the connection must close.
    pub async fn ready(&self) -> Ready {
        poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// Whether there is something to send or the connection must close; if neither, the task
    /// is woken when there is. One task waits on an outbox: the last to poll is woken.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Ready> {
        let mut state = self.link.lock();
        if let Some(reason) = &state.close {
            return Poll::Ready(Ready::Close(CloseReason::clone(reason)));
        }
        if !state.queue.is_empty() {
            return Poll::Ready(Ready::Frames);
        }
        state.wait(cx);
        Poll::Pending
    }

    /// [`Outbox::poll_ready`] and [`Outbox::take`] in one lock, for a socket's loop: everything
    /// queued if there is anything, why not if the connection must close, or that another
    /// source woke the task meanwhile; if none, the task is woken when there is. The loop calls
    /// this once per wake-up, so a write costs one lock here rather than two.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut state = self.link.lock();
        if let Some(reason) = &state.close {
            return Poll::Ready(Taken::Close(CloseReason::clone(reason)));
        }
        if !state.queue.is_empty() {
            return Poll::Ready(Taken::Frames(std::mem::take(&mut state.queue)));
        }
        state.wait(cx);
        // Looked at under the lock the waker's wake-up takes: either it came first and is seen
        // here, or it comes after and finds this task's waker.
        if self.link.woken.load(Ordering::Acquire) {
            return Poll::Ready(Taken::Woken);
        }
        Poll::Pending
    }

    /// A waker for the connection's other sources (its socket, its timer): it notes that one of
    /// them fired, then wakes the task waiting on this outbox. The loop then polls those only
    /// when they fired ([`Outbox::woken`]): asking the runtime about a socket that has nothing
    /// takes a lock to leave the waker there again, and most wake-ups are the outbox's.
    pub fn waker(&self) -> Waker {
        Waker::from(self.link.clone())
    }

    /// Whether the other sources woke the task since this was last asked.
    pub fn woken(&self) -> bool {
        // A plain read first: under load nearly every wake-up is the outbox's.
        self.link.woken.load(Ordering::Acquire) && self.link.woken.swap(false, Ordering::AcqRel)
    }

    /// The next queued frame. What was queued before the order to close still comes out (the
    /// Discord bridge's place relays what its room said before closing it: a deletion, say);
    /// nothing is queued after it. A socket does not read this way: it writes nothing more once
    /// closing ([`Outbox::take`]).
    pub fn pop(&self) -> Option<Frame> {
        self.link.lock().queue.pop_front()
    }

    /// Takes everything queued, under one lock (the queue itself changes hands: nothing is
    /// copied). Why not, once the connection is closing: nothing more is written then.
    pub fn take(&self) -> Result<VecDeque<Frame>, CloseReason> {
        let mut state = self.link.lock();
        match &state.close {
            Some(reason) => Err(CloseReason::clone(reason)),
            None => Ok(std::mem::take(&mut state.queue)),
        }
    }

    /// Whether the connection has been told to close (for tests: the socket learns it from
    /// [`Outbox::take`] and [`Outbox::poll_ready`]).
    #[cfg(test)]
    pub fn closing(&self) -> Option<CloseReason> {
        self.link.lock().close.as_deref().cloned()
    }

    /// Marks the connection closed (it is going away): offers from now on say [`Offer::Gone`],
    /// and queued frames are dropped.
    pub fn close(&self, reason: CloseReason) {
        self.link.close(reason);
        self.link.lock().queue = VecDeque::new();
    }
}

impl State {
    /// Keeps the task's waker for the next frame or the order to close.
    fn wait(&mut self, cx: &Context<'_>) {
        // A connection that waits holds no queue: most wait far longer than they write.
        if self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
        match &mut self.waiting {
            Some(waker) => waker.clone_from(cx.waker()),
            waiting => *waiting = Some(cx.waker().clone()),
        }
    }
}

impl Wake for Link {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let waiting = self.lock().waiting.take();
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.close.is_none() {
            state.close = Some(Box::new(reason));
            let waiting = state.waiting.take();
            drop(state);
            if let Some(waker) = waiting {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::from(text.to_owned())
    }

    #[tokio::test]
    async fn frames_queue_up_to_capacity_then_the_connection_is_closed_as_slow() {
        let (handle, outbox) = ConnHandle::new(1, 2);
        assert_eq!(handle.offer(frame("a")), Offer::Queued);
        assert_eq!(handle.offer(frame("b")), Offer::Queued);
        assert_eq!(handle.offer(frame("c")), Offer::Slow);
        assert_eq!(handle.offer(frame("d")), Offer::Gone);
        assert_eq!(outbox.ready().await, Ready::Close(SLOW));
        assert_eq!(outbox.take(), Err(SLOW), "a socket writes nothing more once closing");
        assert_eq!(outbox.pop().as_deref(), Some("a"), "a reader of its own still has what came before");
        assert_eq!(outbox.pop().as_deref(), Some("b"));
        assert_eq!(outbox.pop(), None);
    }

    #[tokio::test]
    async fn a_frame_offered_before_anyone_waits_is_not_missed() {
        let (handle, outbox) = ConnHandle::new(1, 8);
        handle.offer(frame("early"));
        assert_eq!(outbox.ready().await, Ready::Frames);
        assert_eq!(outbox.pop().as_deref(), Some("early"));
        assert_eq!(outbox.pop(), None);
        let waiter = tokio::spawn(async move { outbox.ready().await });
        tokio::task::yield_now().await;
        handle.offer(frame("late"));
        assert_eq!(waiter.await.expect("joined"), Ready::Frames);
    }

    #[tokio::test]
    async fn the_first_close_reason_wins_and_later_offers_are_refused() {
        let (handle, outbox) = ConnHandle::new(1, 8);
        handle.close(CloseReason::fixed(4102, "replaced"));
        handle.close(SLOW.clone());
        assert_eq!(outbox.ready().await, Ready::Close(CloseReason::fixed(4102, "replaced")));
        assert_eq!(handle.offer(frame("x")), Offer::Gone);
    }

    #[test]
    fn taking_takes_every_frame_in_order_and_nothing_once_closing() {
        let (handle, outbox) = ConnHandle::new(1, 16);
        for text in ["a", "b", "c"] {
            handle.offer(frame(text));
        }
        let taken = outbox.take().expect("open");
        assert_eq!(taken.iter().map(Frame::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(outbox.take().expect("open").is_empty());
        handle.offer(frame("d"));
        handle.close(SLOW.clone());
        assert_eq!(outbox.take(), Err(SLOW), "nothing more is written once closing");
    }

    #[tokio::test]
    async fn a_waiting_connection_holds_no_queue_and_is_woken_by_the_next_frame() {
        let (handle, outbox) = ConnHandle::new(1, 8);
        handle.offer(frame("a"));
        handle.offer(frame("b"));
        assert_eq!(outbox.take().expect("open").len(), 2);
        let waiter = tokio::spawn(async move {
            let ready = outbox.ready().await;
            (ready, outbox)
        });
        tokio::task::yield_now().await;
        assert_eq!(handle.link.lock().queue.capacity(), 0, "waiting, it holds no slots");
        handle.offer(frame("c"));
        let (ready, outbox) = waiter.await.expect("joined");
        assert_eq!(ready, Ready::Frames);
        assert_eq!(outbox.pop().as_deref(), Some("c"));
    }
}
