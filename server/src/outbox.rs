//! The hub's handle on one connection: a bounded queue of ready-to-send frames and a way to tell
//! the connection to close. Offering never waits.
//!
//! A `VecDeque` behind a mutex rather than a channel: an idle connection then holds an empty
//! queue (no preallocated blocks), and the queue, the close signal and the waiting
//! connection's waker share one allocation. The connection polls it ([`Outbox::poll_ready`])
//! beside its socket, so waiting stores nothing in the connection's own future.
//!
//! On the one-core runtime a socket's frames are written without waking its task: the first
//! frame offered to a waiting socket puts it on the thread's list, and one task, the drainer,
//! writes every socket on the list in its turn — after the other tasks the runtime had queued,
//! so a turn's messages go out together, as uWebSockets does after each turn of its loop. Waking
//! a task per member cost more than the write itself: at 800 msg/s, half of the socket task's own
//! time went to its first look at its own state, which a thousand other tasks had pushed out of
//! the cache (docs/BENCHMARKS.md, "Writing without waking the task").

mod run;

pub use run::{Run, Skip};

use crate::{
    frame::Frame,
    websocket::{frame_texts, write_framed_to, write_texts_to},
};
use run::Entry;
use std::{
    borrow::Cow,
    cell::RefCell,
    collections::VecDeque,
    future::poll_fn,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
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
    /// The connection's id: a run's frame names the connections it is not for by it.
    id: u64,
    state: Mutex<State>,
    /// The connection's other sources woke it ([`Outbox::waker`]) since it last looked.
    woken: AtomicBool,
    /// Frames queued before the client counts as too slow to keep up.
    capacity: usize,
    /// The socket's task is waiting in its loop with nothing unsent ([`Outbox::park`]): its
    /// frames may be written for it ([`drain`]).
    parked: AtomicBool,
    /// The drainer left bytes for the task to send first ([`State::handed`]).
    handed: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Entry>,
    /// The room's run the connection holds, and its place in it: the frames from there on are
    /// for it after everything in `queue`.
    cursor: Option<(Arc<Run>, usize)>,
    /// Frames in `queue` (its room keeps the run within what its members have room for,
    /// [`Run::limit`]).
    counted: usize,
    /// The order to close (boxed: given once, at the end of a connection's life).
    close: Option<Box<CloseReason>>,
    /// The connection waiting for the queue to stop being empty, or for the order to close.
    waiting: Option<Waker>,
    /// A second descriptor of the socket, where the drainer writes ([`Outbox::write_for_the_task`]).
    writer: Option<socket2::Socket>,
    /// What the drainer wrote and the kernel did not take: the task sends it before anything.
    handed: Option<Box<[u8]>>,
}

thread_local! {
    /// The sockets whose frames the drainer of this thread writes next (the one-core runtime,
    /// which Burner drives from one thread: `main`'s `block_on`). A runtime driven by several
    /// threads' `block_on` at once, as the integration tests' shared one is, moves its tasks
    /// between them, and a socket listed on one thread while a pass awaits may wait for the
    /// drainer's next poll there. The drainer takes the list in the poll that finds it
    /// non-empty, never across an await, which keeps that to the pass's own yields (taken
    /// after a yield, a third of the tests' one-core runs lost a frame).
    static DRAIN: RefCell<Drain> = RefCell::new(Drain::default());
    /// What the drainer wrote last, to write again as it is ([`LastWrite`]).
    static LAST_WRITE: RefCell<LastWrite> = RefCell::new(LastWrite::default());
}

/// What the drainer wrote last, laid out as the socket got them. A room's members come one
/// after another in a pass, each with the very same part of the room's run queued: each after
/// the first is sent these bytes as they are, without laying the frames out again. The entries
/// are held here until the pass ends, so that an address names one run or one encoding: one
/// freed meanwhile could leave its address to another.
#[derive(Default)]
struct LastWrite {
    entries: VecDeque<Entry>,
    framed: Vec<u8>,
}

impl LastWrite {
    /// Writes what connection `id` has queued on `writer`: what the kernel did not take.
    fn write(&mut self, writer: &socket2::Socket, entries: VecDeque<Entry>, id: u64) -> std::io::Result<Vec<u8>> {
        // A socket that passes over some of its frames gets a layout of its own.
        let shareable = entries.iter().all(|entry| match entry {
            Entry::Run { run, from, to } => !run.skips_any(*from, *to, id),
            Entry::Own(_) => true,
        });
        if !shareable {
            // Its own layout, which leaves the last one for the members after it.
            let mut frames = Vec::new();
            run::frames_of(&entries, id, |frame| frames.push(frame.clone()));
            return write_texts_to(writer, &frames);
        }
        let same = self.entries.len() == entries.len() && self.entries.iter().zip(&entries).all(|(a, b)| a.is(b));
        if !same {
            self.entries.clear();
            self.framed.clear();
            let mut frames = Vec::new();
            run::frames_of(&entries, id, |frame| frames.push(frame.clone()));
            if !frame_texts(&frames, &mut self.framed) {
                // Too much to lay out whole: laid out and written a part at a time, not kept.
                return write_texts_to(writer, &frames);
            }
            self.entries = entries;
        }
        write_framed_to(writer, &self.framed)
    }

    /// Lets the frames go at the end of a pass (the bytes' room is kept, up to a write's worth).
    fn forget(&mut self) {
        self.entries.clear();
        self.framed.clear();
        if self.framed.capacity() > 128 * 1024 {
            self.framed = Vec::new();
        }
    }
}

#[derive(Default)]
struct Drain {
    due: Vec<Arc<Link>>,
    /// Runs that grew: their holders are written in the next pass.
    due_runs: Vec<Arc<Run>>,
    /// The drainer, when it waits for the list to fill.
    waker: Option<Waker>,
    /// Whether this thread's runtime has its drainer.
    running: bool,
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

/// How long the drainer writes before it lets the runtime look at the sockets again: tokio
/// looks for readiness only when its queue empties or every 61 tasks, and a pass over every
/// member of a busy server is a long task. Passes not cut short held arrivals to one look per
/// pass: beside 19 200 msg/s, 700–970 visits a second against ~5 500 with each socket's task
/// writing its own. Measured (docs/BENCHMARKS.md, "Writing without waking the task"): 1 ms,
/// 2 700 visits; 300 µs, 5 300, and 38 400 msg/s still passed.
const DRAIN_BUDGET: Duration = Duration::from_micros(300);
/// Sockets written between two looks at the clock.
const DRAIN_SLICE: usize = 16;
/// How long a pass lets the rest of the runtime in between its slices. Past it, the pass runs
/// to its end: on a server with more to send than its core can, reading (cheap: a message is
/// queued to a hundred members in microseconds) would outrun writing, members' queues would
/// reach their capacity while the drainer was still on its way to them, and members would be
/// closed as too slow for the server's own backlog. Finishing the pass holds reading back
/// instead, and TCP holds back the senders (uWebSockets' loop writes everything it owes
/// between two reads). A pass of a server keeping up takes a few milliseconds.
const DRAIN_YIELDS_FOR: Duration = Duration::from_millis(20);

const SLOW: CloseReason = CloseReason::fixed(app::protocol::close::SLOW, "too slow to keep up");
/// Recorded when the peer went away by itself.
pub const GONE: CloseReason = CloseReason::fixed(1000, "gone");

impl ConnHandle {
    /// The queue is bounded so one client that stops reading costs at most `capacity` frames
    /// (bytes shared with the room) of memory; it is closed instead of buffering without end.
    pub fn new(id: u64, capacity: usize) -> (Self, Outbox) {
        let link = Arc::new(Link {
            id,
            state: Mutex::default(),
            woken: AtomicBool::new(false),
            capacity: capacity.max(1),
            parked: AtomicBool::new(false),
            handed: AtomicBool::new(false),
        });
        (Self { id, link: link.clone() }, Outbox { link })
    }

    /// Queues a frame without waiting. A full queue closes the connection as slow.
    pub fn offer(&self, frame: Frame) -> Offer {
        let mut state = self.link.lock();
        if state.close.is_some() {
            return Offer::Gone;
        }
        // Told whenever its queue was empty: what the run gained may not have been.
        let was_empty = state.queue.is_empty();
        // After what its room's run holds now; the run's later frames come after it.
        state.freeze();
        if state.counted >= self.link.capacity {
            return self.link.slow(state);
        }
        state.queue.push_back(Entry::Own(frame));
        state.counted += 1;
        if let Some((run, from)) = &state.cursor {
            // The run grows no further for it than its room left.
            run.limit(from + (self.link.capacity - state.counted));
        }
        self.link.queued(state, was_empty);
        Offer::Queued
    }

    /// Queues a room's new run ([`Run`]): its frames, and whatever its room adds to it until it
    /// is sealed. How many frames more the connection has room for, or why not.
    pub fn offer_run(&self, run: &Arc<Run>) -> Result<usize, Offer> {
        let mut state = self.link.lock();
        if state.close.is_some() {
            return Err(Offer::Gone);
        }
        let was_empty = state.queue.is_empty();
        // What the run before it held (a connection is in one room, which seals its run before
        // it starts the next).
        state.freeze();
        state.cursor = None;
        if state.counted >= self.link.capacity {
            return Err(self.link.slow(state));
        }
        let room = self.link.capacity - state.counted;
        state.cursor = Some((run.clone(), 0));
        run.hold(&self.link);
        self.link.queued(state, was_empty);
        Ok(room)
    }

    /// Tells the connection to close. The first reason wins: a client closed as slow stays so.
    pub fn close(&self, reason: CloseReason) {
        self.link.close(reason);
    }
}

impl Outbox {
    /// Whether sockets' frames are written by a drainer here: on the one-core runtime, where
    /// it runs in the same thread as every socket's task (on several worker threads each task
    /// writes its own).
    pub fn drained() -> bool {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
    }

    /// Lets the drainer write this socket's frames, on `writer`, while its task waits (where
    /// [`Outbox::drained`]).
    pub fn write_for_the_task(&self, writer: socket2::Socket) {
        start_drainer();
        self.link.lock().writer = Some(writer);
    }

    /// The task waits in its loop now, with nothing unsent: its frames may be written for it
    /// until it runs again ([`Outbox::unpark`]).
    pub fn park(&self) {
        self.link.parked.store(true, Ordering::Relaxed);
    }

    /// The task runs: only it writes to its socket until it waits again.
    pub fn unpark(&self) {
        self.link.parked.store(false, Ordering::Relaxed);
    }

    /// What the drainer wrote for the task and the kernel did not take, to send before anything
    /// else.
    pub fn take_handed(&self) -> Option<Box<[u8]>> {
        if !self.link.handed.load(Ordering::Relaxed) {
            return None;
        }
        self.link.handed.store(false, Ordering::Relaxed);
        self.link.lock().handed.take()
    }

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
        if state.has_frames() {
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
        if state.has_frames() {
            return Poll::Ready(Taken::Frames(state.take(self.link.id)));
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
        let mut state = self.link.lock();
        // As a socket reads: off the drainer, reading seals the run, so what the room says next
        // starts a new run, which wakes this reader (nothing wakes it for a run that grows).
        state.read_cursor();
        while let Some(entry) = state.queue.pop_front() {
            match entry {
                Entry::Own(frame) => {
                    state.counted = state.counted.saturating_sub(1);
                    return Some(frame);
                }
                Entry::Run { run, from, to } => {
                    let (next, end) = run.next_for(from, to, self.link.id);
                    let past = next.as_ref().map_or(end, |(at, _)| at + 1);
                    state.counted = state.counted.saturating_sub(past - from);
                    if past < end {
                        state.queue.push_front(Entry::Run { run, from: past, to });
                    }
                    if let Some((_, frame)) = next {
                        return Some(frame);
                    }
                }
            }
        }
        None
    }

    /// Takes everything queued, under one lock (the queue itself changes hands: nothing is
    /// copied). Why not, once the connection is closing: nothing more is written then.
    pub fn take(&self) -> Result<VecDeque<Frame>, CloseReason> {
        let mut state = self.link.lock();
        match &state.close {
            Some(reason) => Err(CloseReason::clone(reason)),
            None => Ok(state.take(self.link.id)),
        }
    }

    /// Whether the connection has been told to close (for tests: the socket learns it from
    /// [`Outbox::take`] and [`Outbox::poll_ready`]).
    #[cfg(test)]
    pub fn closing(&self) -> Option<CloseReason> {
        self.link.lock().close.as_deref().cloned()
    }

    /// Marks the connection closed (it is going away): offers from now on say [`Offer::Gone`],
    /// and queued frames are dropped, as is the drainer's descriptor of the socket (so that the
    /// socket really closes when its task drops it).
    pub fn close(&self, reason: CloseReason) {
        self.link.close(reason);
        let mut state = self.link.lock();
        state.queue = VecDeque::new();
        state.cursor = None;
        state.counted = 0;
        state.writer = None;
        state.handed = None;
    }
}

impl State {
    /// Keeps the task's waker for the next frame or the order to close.
    fn wait(&mut self, cx: &Context<'_>) {
        // A connection that waits holds no queue: most wait far longer than they write.
        if self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
        // Nor a run it has read to its end that grows no more (one of a room it left, say).
        if let Some((run, from)) = &self.cursor
            && run.extent() == (*from, false)
        {
            self.cursor = None;
        }
        match &mut self.waiting {
            Some(waker) => waker.clone_from(cx.waker()),
            waiting => *waiting = Some(cx.waker().clone()),
        }
    }

    /// Queues what the run holds past the cursor now (what is queued next comes after it).
    fn freeze(&mut self) {
        if let Some((run, _)) = &self.cursor {
            let (len, open) = run.extent();
            self.push_run_part(len, open);
        }
    }

    /// Moves the cursor to `len`, queueing the frames it passes; drops it if the run is sealed.
    fn push_run_part(&mut self, len: usize, open: bool) {
        let Some((run, from)) = &mut self.cursor else { return };
        if len > *from {
            self.queue.push_back(Entry::Run { run: run.clone(), from: *from, to: len });
            self.counted += len - *from;
            *from = len;
        }
        if !open {
            self.cursor = None;
        }
    }

    /// Whether anything is queued or the run has grown past the cursor.
    fn has_frames(&self) -> bool {
        !self.queue.is_empty() || self.cursor.as_ref().is_some_and(|(run, from)| run.extent().0 > *from)
    }

    /// Everything there is to write, in order (the cursor moves to the run's end).
    fn take_entries(&mut self) -> VecDeque<Entry> {
        self.read_cursor();
        self.counted = 0;
        std::mem::take(&mut self.queue)
    }

    /// Queues what the run holds past the cursor, as a reader (see [`Run::reach`]).
    fn read_cursor(&mut self) {
        if let Some((run, _)) = &self.cursor {
            let (len, open) = run.reach();
            self.push_run_part(len, open);
        }
    }

    /// Everything there is to write for connection `id`, as frames in order.
    fn take(&mut self, id: u64) -> VecDeque<Frame> {
        let entries = self.take_entries();
        let mut frames = VecDeque::with_capacity(entries.len());
        run::frames_of(&entries, id, |frame| frames.push_back(frame.clone()));
        frames
    }
}

/// Puts a socket on this thread's list for the drainer, and wakes the drainer if the list was
/// empty. False on a thread without a drainer (a blocking task's, say): the frame then wakes
/// the socket's task as it would anywhere else.
fn due(link: &Arc<Link>) -> bool {
    DRAIN.with_borrow_mut(|drain| {
        if !drain.running {
            return false;
        }
        drain.due.push(link.clone());
        if drain.due.len() == 1
            && drain.due_runs.is_empty()
            && let Some(waker) = &drain.waker
        {
            waker.wake_by_ref();
        }
        true
    })
}

/// Whether this thread has a drainer (runs offered here are written by it as they grow).
fn drainer_here() -> bool {
    DRAIN.try_with(|drain| drain.borrow().running).unwrap_or(false)
}

/// Puts a run that grew on this thread's list for the drainer, and wakes the drainer if the
/// list was empty. False on a thread without a drainer.
fn due_run(run: &Arc<Run>) -> bool {
    DRAIN.with_borrow_mut(|drain| {
        if !drain.running {
            return false;
        }
        drain.due_runs.push(run.clone());
        if drain.due.is_empty()
            && drain.due_runs.len() == 1
            && let Some(waker) = &drain.waker
        {
            waker.wake_by_ref();
        }
        true
    })
}

/// Spawns this thread's drainer, once per runtime: it ends with its runtime, and the next
/// runtime on the thread (tests) spawns its own.
fn start_drainer() {
    let start = DRAIN.with_borrow_mut(|drain| !std::mem::replace(&mut drain.running, true));
    if start {
        tokio::spawn(drainer());
    }
}

/// Writes the frames of every socket on this thread's list, a turn at a time.
async fn drainer() {
    /// Marks the thread as without a drainer when this one's runtime drops it.
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = DRAIN.try_with(|drain| {
                let mut drain = drain.borrow_mut();
                drain.running = false;
                drain.waker = None;
                drain.due.clear();
                // A run left on the list is off it: should it grow again, the next frame does
                // not wait for a drainer that is gone.
                for run in drain.due_runs.drain(..) {
                    run.leave_list();
                }
            });
            // A pass cut short by the runtime's end lets its frames go too.
            let _ = LAST_WRITE.try_with(|last| last.borrow_mut().forget());
        }
    }
    let _running = Running;
    let mut turn: Vec<Arc<Link>> = Vec::new();
    let mut runs: Vec<Arc<Run>> = Vec::new();
    loop {
        poll_fn(|cx| {
            DRAIN.with_borrow_mut(|drain| {
                if drain.due.is_empty() && drain.due_runs.is_empty() {
                    match &mut drain.waker {
                        Some(waker) => waker.clone_from(cx.waker()),
                        waker => *waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                } else {
                    std::mem::swap(&mut drain.due, &mut turn);
                    std::mem::swap(&mut drain.due_runs, &mut runs);
                    // Sockets listed during the pass wait for the next one, not for a wake-up.
                    drain.waker = None;
                    Poll::Ready(())
                }
            })
        })
        .await;
        // The pass starts once the runtime has looked at the sockets again (tokio defers a
        // yield until it has): messages that came in while the tasks woken with the first one
        // ran (a burst from several senders, a room's conversation) are read and join this
        // pass, instead of costing each member of their room a write of its own in the next.
        // uWebSockets likewise writes what a loop's reads published after all of them. In rooms
        // of 100, writes per delivery went from 0.19-0.21 to 0.18-0.19 at 3 200 msg/s (Bun's:
        // 0.19), from 0.20 to 0.17-0.19 at 6 400 (Bun's: 0.17) and from 0.12 to 0.09 at 12 800
        // (docs/BENCHMARKS.md, "A pass after one more look").
        tokio::task::yield_now().await;
        DRAIN.with_borrow_mut(|drain| {
            turn.append(&mut drain.due);
            runs.append(&mut drain.due_runs);
        });
        // A slice at a time, with a look at the sockets between slices: the runtime looks for
        // readiness only between tasks (or every 61 of them), and a pass over a thousand members
        // takes milliseconds, which every arrival, read and timer would wait for.
        // A run that grew: every member holding it.
        for run in runs.drain(..) {
            run.take_due(&mut turn);
        }
        let pass = Instant::now();
        let mut started = pass;
        let mut done = 0;
        while done < turn.len() {
            let slice = done..turn.len().min(done + DRAIN_SLICE);
            done = slice.end;
            turn[slice].iter().for_each(|link| link.drain());
            if done < turn.len() && started.elapsed() >= DRAIN_BUDGET && pass.elapsed() < DRAIN_YIELDS_FOR {
                // Resumed once the runtime has looked at the sockets (tokio defers a yield).
                tokio::task::yield_now().await;
                started = Instant::now();
            }
        }
        turn.clear();
        LAST_WRITE.with_borrow_mut(LastWrite::forget);
        // A list that grew very long once does not stay that size.
        if turn.capacity() > 4_096 {
            turn = Vec::new();
        }
    }
}

impl Link {
    /// Writes what is queued for a socket whose task waits with nothing unsent. What the kernel
    /// does not take is handed to the task, which is woken to send it first; a write that fails
    /// closes the connection as gone.
    fn drain(self: &Arc<Self>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.close.is_some() {
            return;
        }
        if state.writer.is_none() || !self.parked.load(Ordering::Relaxed) {
            // Not a socket (a bridge's place in its room), one not written for its task yet, or
            // a task busy elsewhere (a flush, a request to Redis): the task takes its frames
            // itself, and is told they are there, as a first frame tells it.
            if state.has_frames()
                && let Some(waker) = state.waiting.take()
            {
                drop(guard);
                waker.wake();
            }
            return;
        }
        let entries = state.take_entries();
        if entries.is_empty() {
            return;
        }
        let Some(writer) = &state.writer else { return };
        #[cfg(test)]
        tests::DRAIN_WRITES.set(tests::DRAIN_WRITES.get() + 1);
        let unsent = match LAST_WRITE.with_borrow_mut(|last| last.write(writer, entries, self.id)) {
            Ok(unsent) if unsent.is_empty() => return,
            Ok(unsent) => unsent,
            Err(_) => {
                // The connection is gone, as the task's own write would have found.
                drop(guard);
                self.close(GONE);
                return;
            }
        };
        state.handed = Some(unsent.into_boxed_slice());
        self.handed.store(true, Ordering::Relaxed);
        self.parked.store(false, Ordering::Relaxed);
        let waiting = state.waiting.take();
        drop(guard);
        if let Some(waker) = waiting {
            waker.wake();
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

    /// The queue is full: the connection is closed as too slow to keep up.
    fn slow(&self, state: MutexGuard<'_, State>) -> Offer {
        Self::close_locked(state, SLOW.clone());
        Offer::Slow
    }

    /// Something was queued: if the queue was empty, whoever writes it is told.
    fn queued(self: &Arc<Self>, mut state: MutexGuard<'_, State>, was_empty: bool) {
        if !was_empty {
            // Whoever writes the first frame writes this one with it.
            return;
        }
        // A waiting socket with a writer has its frames written by the drainer, without a
        // wake-up; otherwise the first frame wakes the task, which takes everything queued when
        // it runs. (A connection that has not polled yet finds the frames when it first looks.)
        if state.writer.is_some() && self.parked.load(Ordering::Relaxed) && due(self) {
            return;
        }
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    fn close(&self, reason: CloseReason) {
        Self::close_locked(self.lock(), reason);
    }

    /// The order to close, unless one was given before, and the waiting task woken for it.
    fn close_locked(mut state: MutexGuard<'_, State>, reason: CloseReason) {
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

    /// A waker that notes it was used.
    struct Noted(AtomicBool);

    impl Wake for Noted {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A socket whose task waits parked with nothing to do, so the drainer writes its frames
    /// for it; dropped, the socket closes.
    struct Parked {
        socket: crate::websocket::Socket,
        client: tokio::net::TcpStream,
        handle: ConnHandle,
        outbox: Outbox,
        /// Whether the task was woken.
        woken: Arc<Noted>,
    }

    impl Parked {
        async fn new(id: u64, capacity: usize) -> Self {
            let (socket, client) = crate::websocket::Socket::loopback().await;
            let (handle, outbox) = ConnHandle::new(id, capacity);
            outbox.write_for_the_task(socket.writer().expect("a second descriptor"));
            let woken = Arc::new(Noted(AtomicBool::new(false)));
            assert!(outbox.poll_take(&mut Context::from_waker(&Waker::from(woken.clone()))).is_pending());
            outbox.park();
            Self { socket, client, handle, outbox, woken }
        }

        fn woken(&self) -> bool {
            self.woken.0.load(Ordering::SeqCst)
        }
    }

    /// The next `len` bytes the client is sent, within five seconds.
    async fn read(client: &mut tokio::net::TcpStream, len: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut bytes = vec![0; len];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut bytes))
            .await
            .expect("written in time")
            .expect("read");
        bytes
    }

    #[tokio::test]
    async fn a_waiting_sockets_frames_are_written_for_it_without_waking_it() {
        assert!(Outbox::drained(), "a test's runtime has one thread");
        let mut end = Parked::new(1, 8).await;
        end.handle.offer(frame("one"));
        end.handle.offer(frame("two"));
        assert_eq!(
            read(&mut end.client, 10).await,
            b"\x81\x03one\x81\x03two",
            "two text frames, in order, in one turn"
        );
        assert!(!end.woken(), "the task was not woken");
        assert!(end.outbox.take_handed().is_none());

        // A task that runs writes its own: the next frame wakes it.
        end.outbox.unpark();
        end.handle.offer(frame("three"));
        assert!(end.woken(), "a running task is woken as before");
        assert_eq!(end.outbox.take().expect("open").len(), 1, "and finds the frame queued");
    }

    thread_local! {
        /// Writes the drainer made on this thread.
        pub(super) static DRAIN_WRITES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A pass starts once the runtime has looked at the sockets: a frame that a socket's task
    /// offers on what had come in by then goes out with the frame that woke the drainer, in its
    /// one write. Started at once, the pass wrote the first frame alone, and the second took a
    /// write of its own.
    #[tokio::test]
    async fn what_came_in_before_a_pass_starts_goes_out_in_its_one_write() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut end = Parked::new(1, 8).await;
        let (mut sender, mut arrival) = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let sender = tokio::net::TcpStream::connect(listener.local_addr().expect("address"));
            let (sender, accepted) = tokio::join!(sender, listener.accept());
            (sender.expect("connect"), accepted.expect("accept").0)
        };
        let handle = end.handle.clone();
        // A socket's task, as a sender's: what it reads, it offers to the member.
        let reader = tokio::spawn(async move {
            let mut byte = [0; 1];
            arrival.read_exact(&mut byte).await.expect("a byte");
            handle.offer(frame("two"));
        });
        // It waits for its socket; then its byte is in, which the runtime learns at its next look.
        tokio::task::yield_now().await;
        sender.write_all(b"x").await.expect("write");
        let before = DRAIN_WRITES.get();
        end.handle.offer(frame("one"));
        assert_eq!(read(&mut end.client, 10).await, b"\x81\x03one\x81\x03two", "both frames, in order");
        assert_eq!(DRAIN_WRITES.get() - before, 1, "written at once");
        reader.await.expect("the reader ends");
    }

    /// The drainer ends with its runtime, and the next runtime on the same thread (a server
    /// started again, the next test) spawns its own, even with a socket left on the list of the
    /// one that ended. Were the thread still counted as having a drainer, the second round's
    /// frame would be listed for a drainer that is gone and never written.
    #[test]
    fn a_drainer_ends_with_its_runtime_and_the_next_runtime_on_the_thread_has_its_own() {
        // A thread of its own: the test's thread may have run other tests' runtimes.
        std::thread::spawn(|| {
            for round in 0..2 {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                runtime.block_on(async {
                    let mut end = Parked::new(round, 8).await;
                    end.handle.offer(frame("hello"));
                    assert_eq!(read(&mut end.client, 7).await, b"\x81\x05hello", "written by this runtime's drainer");
                    // Listed for the drainer, which the runtime's end takes before it runs.
                    end.handle.offer(frame("late"));
                });
            }
        })
        .join()
        .expect("both rounds written");
    }

    /// A room's members come one after another in a pass with the same frames queued: the
    /// second is sent the bytes laid out for the first ([`LastWrite`]). What a socket is sent is
    /// always what it has queued: not a frame of the same length that merely follows the same
    /// frames, nor, in a later pass, a new frame where a freed one was.
    #[tokio::test]
    async fn sockets_with_the_same_frames_share_one_layout_and_every_other_gets_its_own() {
        let mut ends = Vec::new();
        for id in 0..4 {
            ends.push(Parked::new(id, 8).await);
        }
        // One pass: the first two share two encodings; the third has a frame of the same length
        // as the first of them, with other text.
        let (first, second) = (frame("shared"), frame("both"));
        for end in &ends[..2] {
            end.handle.offer(first.clone());
            end.handle.offer(second.clone());
        }
        ends[2].handle.offer(frame("single"));
        ends[2].handle.offer(second.clone());
        drop((first, second));
        assert_eq!(read(&mut ends[0].client, 14).await, b"\x81\x06shared\x81\x04both");
        assert_eq!(read(&mut ends[1].client, 14).await, b"\x81\x06shared\x81\x04both");
        assert_eq!(read(&mut ends[2].client, 14).await, b"\x81\x06single\x81\x04both");
        // The next pass: every frame above is freed once the pass ends, and one of the same
        // length may well be given the place one of them had.
        tokio::task::yield_now().await;
        ends[3].handle.offer(frame("latest"));
        assert_eq!(read(&mut ends[3].client, 8).await, b"\x81\x06latest");
    }

    /// A room's run with a frame not for one member (a one-way room's author): the member
    /// before it in the pass is sent both frames, and it only the other, not the layout it
    /// would otherwise share: were the frames' skips not looked at ([`Run::skips_any`]), the
    /// author would be sent their own message.
    #[tokio::test]
    async fn a_frame_not_for_a_member_is_left_out_of_the_layout_it_would_share() {
        let mut ends = Vec::new();
        for id in 0..2 {
            ends.push(Parked::new(id, 8).await);
        }
        let run = Run::start(frame("all"), None);
        for end in &ends {
            end.handle.offer_run(&run).expect("room for it");
        }
        run.append(frame("not-1"), Some(Box::new([1]))).expect("the run grows");
        assert_eq!(read(&mut ends[0].client, 12).await, b"\x81\x03all\x81\x05not-1");
        assert_eq!(read(&mut ends[1].client, 5).await, b"\x81\x03all");
        // Nothing more comes for the skipped member: the next frame for everyone is next.
        tokio::task::yield_now().await;
        run.append(frame("next"), None).expect("the run grows");
        assert_eq!(read(&mut ends[1].client, 6).await, b"\x81\x04next");
        assert_eq!(read(&mut ends[0].client, 6).await, b"\x81\x04next");
    }

    /// A member behind by more than one ordinary write (here 100 frames of 1 KB) is sent the
    /// layout of the member before it, not frames laid out again for itself: at 1 KB a room
    /// falls that far behind in a few dozen milliseconds, and laying the frames out again for
    /// each member then made the server slower the further behind it was.
    #[tokio::test]
    async fn a_backlog_past_one_write_is_laid_out_once_for_every_member() {
        let frames: Vec<Frame> = (0..100).map(|n| frame(&format!("{n:04}").repeat(250))).collect();
        let mut expected = Vec::new();
        for frame in &frames {
            expected.extend_from_slice(&[0x81, 126, 0x03, 0xe8]);
            expected.extend_from_slice(frame.as_ref());
        }
        let mut last = LastWrite::default();
        for id in 0..2 {
            let (socket, mut client) = crate::websocket::Socket::loopback().await;
            let entries = frames.iter().cloned().map(Entry::Own).collect();
            let unsent = last.write(&socket.writer().expect("a second descriptor"), entries, id).expect("written");
            assert_eq!(last.entries.len(), frames.len(), "the layout is kept for the next member");
            let mut written = read(&mut client, expected.len() - unsent.len()).await;
            written.extend_from_slice(&unsent);
            assert!(written == expected, "every frame, whole and in order");
        }
        last.forget();
    }

    /// A pass over many sockets is cut into slices of [`DRAIN_BUDGET`], and between them the
    /// runtime looks at the sockets: a connection that arrives meanwhile is taken before the
    /// last socket of the pass is written, not after.
    #[tokio::test]
    async fn a_long_pass_lets_an_arrival_in_before_it_ends() {
        const SOCKETS: u64 = 200;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let mut ends = Vec::new();
        for id in 0..SOCKETS {
            ends.push(Parked::new(id, 64).await);
        }
        // Whether anything reached the last socket's client yet (looked at directly, not
        // through the runtime's note of readiness).
        let Parked { socket: _last_socket, client: last, handle: last_handle, outbox: _last_outbox, .. } =
            ends.pop().expect("sockets");
        let last = last.into_std().expect("a std socket");
        let acceptor = tokio::spawn(async move {
            listener.accept().await.expect("accept");
            last.peek(&mut [0; 1]).is_ok_and(|read| read > 0)
        });
        // The acceptor waits in the runtime's registry.
        tokio::task::yield_now().await;
        // Every socket gets 32 KB: a pass of milliseconds. Someone connects right after (the
        // kernel completes the handshake at once); the runtime hears of it when it next looks.
        let big = "x".repeat(8_000);
        for handle in ends.iter().map(|end| &end.handle).chain([&last_handle]) {
            for _ in 0..4 {
                handle.offer(frame(&big));
            }
        }
        let _visitor = std::net::TcpStream::connect(address).expect("connect");
        let last_written_first = acceptor.await.expect("acceptor");
        assert!(!last_written_first, "the arrival was taken while the pass went on");
    }

    #[tokio::test]
    async fn what_the_kernel_does_not_take_is_handed_to_the_task() {
        let end = Parked::new(1, 4_096).await;
        // The client reads nothing: far more than the two sockets' buffers hold.
        let big = "x".repeat(30_000);
        for _ in 0..2_000 {
            end.handle.offer(frame(&big));
        }
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(end.woken(), "the task is woken to send the rest");
        let handed = end.outbox.take_handed().expect("bytes handed over");
        assert!(!handed.is_empty());
        assert!(end.outbox.take_handed().is_none(), "handed over once");
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
