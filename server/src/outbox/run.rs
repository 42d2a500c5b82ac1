//! A room's run of frames, queued once for all of its members.
//!
//! Offering each message to each member cost more than writing it: per member and message, a
//! lock on the member's queue, a slot in it, and a count on the frame taken and given back
//! (three quarters of the offer's time went to the lock's two atomic instructions alone; in
//! all, 18 % of the server's time at 38 400 msg/s, docs/BENCHMARKS.md, "One run per room").
//! Instead, a room offers its members a run, once, and the messages that follow are added to
//! the run, not to each member. Each member holds its place in the run (its cursor) and is sent
//! what was added since. On the one-core runtime a run that grows goes on the drainer's list,
//! which writes every member holding it in its next pass (uWebSockets drains a topic so); the
//! run stays open until it holds [`RUN_FRAMES`] or its members change. Elsewhere (no drainer to
//! write the members), a socket that reads a run seals it, and the next message starts a new
//! run, offered to every member again.
//!
//! What a member is sent stays in order: a frame of its own (a receipt, a reply) queued while
//! it holds a run comes after the frames the run holds then, and the run's later frames after
//! it ([`super::State::freeze`]). A frame not for some members (a one-way room's author, a
//! joiner's own notice) names their connections, and they pass over it.

use super::Link;
use crate::frame::Frame;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// The most frames a run holds: past it, the next message starts a new run. A run's frames
/// are freed with the run, once no member holds it: a room that goes quiet keeps up to this
/// many in its last run (its history keeps 50 messages anyway). At 38 400 msg/s a room gains
/// about 20 between two passes of the drainer, so a new run, offered to each member, comes
/// every third pass or so.
pub const RUN_FRAMES: usize = 64;

/// The frames a room offered its members as one, in order.
#[derive(Debug)]
pub struct Run {
    state: Mutex<RunState>,
}

#[derive(Debug)]
struct RunState {
    frames: Vec<(Frame, Skip)>,
    /// No frame is added any more: a socket has read the run, the room's members changed, or
    /// it holds as many frames as its fullest member had room for.
    sealed: bool,
    /// How many frames it may hold.
    limit: usize,
    /// Written by this thread's drainer as it grows, rather than sealed when read.
    drained: bool,
    /// On the drainer's list since it last grew.
    due: bool,
    /// The connections holding it, for the drainer to write (only where `drained`).
    holders: Vec<Weak<Link>>,
}

/// The connections (by id) a frame of a run is not for. Most frames are for everyone.
pub type Skip = Option<Box<[u64]>>;

/// What a connection has queued: frames of a run, or one frame of its own.
#[derive(Debug)]
pub(super) enum Entry {
    Own(Frame),
    /// The run's frames `from..to`.
    Run {
        run: Arc<Run>,
        from: usize,
        to: usize,
    },
}

impl Run {
    /// A run of one frame, for as many as its room offers it to ([`Run::limit`]).
    pub fn start(frame: Frame, skip: Skip) -> Arc<Run> {
        Arc::new(Run {
            state: Mutex::new(RunState {
                frames: vec![(frame, skip)],
                sealed: false,
                limit: RUN_FRAMES,
                drained: super::drainer_here(),
                due: false,
                holders: Vec::new(),
            }),
        })
    }

    /// Adds a frame for everyone holding the run, unless it is sealed (the frame is given back).
    pub fn append(self: &Arc<Self>, frame: Frame, skip: Skip) -> Result<(), (Frame, Skip)> {
        let mut state = self.lock();
        if state.sealed {
            return Err((frame, skip));
        }
        if state.drained && !state.due {
            if !super::due_run(self) {
                // Not on the drainer's thread: nobody would write the members. A new run is
                // offered to each instead.
                state.seal();
                return Err((frame, skip));
            }
            state.due = true;
        }
        state.frames.push((frame, skip));
        if state.frames.len() >= state.limit {
            state.seal();
        }
        Ok(())
    }

    /// The run holds at most `room` frames: what its fullest member has room for.
    pub fn limit(&self, room: usize) {
        let mut state = self.lock();
        state.limit = state.limit.min(room);
        if state.frames.len() >= state.limit {
            state.seal();
        }
    }

    /// No more frames: the next start a new run.
    pub fn seal(&self) {
        self.lock().seal();
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connection `link` holds the run: the drainer writes it as the run grows.
    pub(super) fn hold(&self, link: &Arc<Link>) {
        let mut state = self.lock();
        if state.drained && !state.sealed {
            state.holders.push(Arc::downgrade(link));
        }
    }

    /// Off the drainer's list: the connections holding it, to write, at the end of `into`.
    pub(super) fn take_due(&self, into: &mut Vec<Arc<Link>>) {
        let mut state = self.lock();
        into.extend(state.holders.iter().filter_map(Weak::upgrade));
        state.off_list();
    }

    /// Off the drainer's list without its holders written: the drainer's runtime ended. Should
    /// it grow again, [`Run::append`] finds no drainer and starts a new run.
    pub(super) fn leave_list(&self) {
        self.lock().off_list();
    }

    /// How many frames it holds, and whether it may still grow.
    pub(super) fn extent(&self) -> (usize, bool) {
        let state = self.lock();
        (state.frames.len(), !state.sealed)
    }

    /// Where a socket reading the run now reads to, and whether it may grow after. Where no
    /// drainer writes its members as it grows, reading seals it: nothing may be added behind
    /// the reader's back.
    pub(super) fn reach(&self) -> (usize, bool) {
        let mut state = self.lock();
        if !state.drained {
            state.seal();
        }
        (state.frames.len(), !state.sealed)
    }

    /// Whether any frame of `from..to` is not for connection `id`.
    pub(super) fn skips_any(&self, from: usize, to: usize, id: u64) -> bool {
        let state = self.lock();
        let end = to.min(state.frames.len());
        state.frames[from.min(end)..end].iter().any(|(_, skip)| skips(skip, id))
    }

    /// The first frame of `from..to` for connection `id`, with its place, and where `from..to`
    /// ends.
    pub(super) fn next_for(&self, from: usize, to: usize, id: u64) -> (Option<(usize, Frame)>, usize) {
        let state = self.lock();
        let end = to.min(state.frames.len());
        let next =
            (from.min(end)..end).find(|at| !skips(&state.frames[*at].1, id)).map(|at| (at, state.frames[at].0.clone()));
        (next, end)
    }

    /// The frames `from..to` that are for connection `id`, in order.
    pub(super) fn each(&self, from: usize, to: usize, id: u64, mut each: impl FnMut(&Frame)) {
        let state = self.lock();
        let end = to.min(state.frames.len());
        for (frame, skip) in &state.frames[from.min(end)..end] {
            if !skips(skip, id) {
                each(frame);
            }
        }
    }
}

impl RunState {
    fn off_list(&mut self) {
        self.due = false;
        if self.sealed {
            // Its last frames are written (or nobody is left to write them): it grows no more.
            self.holders = Vec::new();
        }
    }

    fn seal(&mut self) {
        self.sealed = true;
        if !self.due {
            self.holders = Vec::new();
        }
    }
}

fn skips(skip: &Skip, id: u64) -> bool {
    skip.as_deref().is_some_and(|ids| ids.contains(&id))
}

impl Entry {
    /// Whether both are the very same frames (the same encodings, not merely the same text).
    pub(super) fn is(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Own(a), Entry::Own(b)) => a.is(b),
            (Entry::Run { run: a, from: af, to: at }, Entry::Run { run: b, from: bf, to: bt }) => {
                Arc::ptr_eq(a, b) && (af, at) == (bf, bt)
            }
            _ => false,
        }
    }
}

/// The frames of `entries` for connection `id`, in order.
pub(super) fn frames_of<'a>(entries: impl IntoIterator<Item = &'a Entry>, id: u64, mut each: impl FnMut(&Frame)) {
    for entry in entries {
        match entry {
            Entry::Own(frame) => each(frame),
            Entry::Run { run, from, to } => run.each(*from, *to, id, &mut each),
        }
    }
}
