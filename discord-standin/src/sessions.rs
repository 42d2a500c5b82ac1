//! Gateway sessions and the sockets attached to them: per-session sequence numbers, the replay
//! buffer a RESUME draws on, and the fan-out of dispatches. A session outlives its socket (a
//! dropped connection keeps it resumable), which is the behaviour the bridge is tested against.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use tokio::sync::{Notify, mpsc};
use twilight_model::gateway::event::{DispatchEvent, GatewayEvent};

/// Discord keeps a bounded backlog per session; a RESUME from further back is refused (op 9).
const REPLAY_CAP: usize = 1000;

/// A socket's outbox is bounded: the whole replay buffer fits, and a socket that falls further
/// behind is dropped (the session stays resumable), as Discord drops a client that stops reading.
const OUTBOX: usize = REPLAY_CAP * 4;

/// What a socket task is asked to do, in order.
#[derive(Debug)]
pub(crate) enum Out {
    Frame(String),
    Close(u16, &'static str),
}

#[derive(Debug)]
struct Conn {
    tx: mpsc::Sender<Out>,
    /// Notified to drop the TCP connection without a close frame.
    kill: Arc<Notify>,
    session: Option<String>,
}

#[derive(Debug, Default)]
struct Session {
    seq: u64,
    buffer: VecDeque<(u64, String)>,
    /// The highest sequence pushed out of `buffer`: a RESUME from before it would miss events.
    evicted_upto: u64,
    conn: Option<u64>,
}

/// What a new socket gets when it registers.
pub(crate) struct Registration {
    pub conn: u64,
    pub rx: mpsc::Receiver<Out>,
    pub kill: Arc<Notify>,
}

#[derive(Debug)]
pub(crate) struct Sessions {
    conns: HashMap<u64, Conn>,
    sessions: HashMap<String, Session>,
    next_conn: u64,
    next_session: u64,
    /// Makes session ids unique across stand-in runs, so a session a bridge saved from an
    /// earlier run is unknown here (op 9) rather than mistaken for a new one.
    instance: u64,
}

/// Serialises one frame; `GatewayEvent` always serialises, but a failure must not panic a socket.
pub(crate) fn encode(event: &GatewayEvent) -> Option<String> {
    serde_json::to_string(event).map_err(|error| tracing::error!(%error, "cannot encode a gateway frame")).ok()
}

impl Sessions {
    pub(crate) fn new(instance: u64) -> Self {
        Self { conns: HashMap::new(), sessions: HashMap::new(), next_conn: 0, next_session: 0, instance }
    }

    pub(crate) fn register(&mut self) -> Registration {
        self.next_conn += 1;
        let (tx, rx) = mpsc::channel(OUTBOX);
        let kill = Arc::new(Notify::new());
        self.conns.insert(self.next_conn, Conn { tx, kill: kill.clone(), session: None });
        Registration { conn: self.next_conn, rx, kill }
    }

    /// The socket is gone. Its session stays resumable unless the client closed normally
    /// (1000/1001), which on Discord ends the session.
    pub(crate) fn unregister(&mut self, conn: u64, client_closed_normally: bool) {
        let Some(gone) = self.conns.remove(&conn) else { return };
        let Some(session_id) = gone.session else { return };
        if client_closed_normally {
            self.sessions.remove(&session_id);
        } else if let Some(session) = self.sessions.get_mut(&session_id)
            && session.conn == Some(conn)
        {
            session.conn = None;
        }
    }

    pub(crate) fn is_identified(&self, conn: u64) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.session.is_some())
    }

    /// Queues an item for one socket; a socket whose outbox is full is dropped.
    pub(crate) fn send(&mut self, conn: u64, out: Out) {
        let Some(target) = self.conns.get(&conn) else { return };
        if target.tx.try_send(out).is_err() {
            tracing::warn!(conn, "gateway outbox full or closed; dropping the connection");
            target.kill.notify_one();
        }
    }

    pub(crate) fn send_event(&mut self, conn: u64, event: &GatewayEvent) {
        if let Some(frame) = encode(event) {
            self.send(conn, Out::Frame(frame));
        }
    }

    /// A new session for an IDENTIFY on `conn`; READY is built by the caller with the returned id
    /// and sent with `s` = 1.
    pub(crate) fn identify(&mut self, conn: u64, ready: impl FnOnce(String) -> DispatchEvent) {
        self.next_session += 1;
        let id = format!("{:016x}{:016x}", self.instance, self.next_session);
        self.sessions.insert(id.clone(), Session { seq: 1, conn: Some(conn), ..Session::default() });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id.clone());
        }
        self.send_event(conn, &GatewayEvent::Dispatch(1, ready(id)));
    }

    /// Replays what the session missed after `seq`, then RESUMED. `false` if it cannot be
    /// resumed (unknown, forgotten, or `seq` older than the replay buffer); the session is then
    /// forgotten, as Discord does.
    pub(crate) fn resume(&mut self, conn: u64, session_id: &str, seq: u64) -> bool {
        let resumable = self.sessions.get(session_id).is_some_and(|s| seq >= s.evicted_upto && seq <= s.seq);
        if !resumable {
            self.sessions.remove(session_id);
            return false;
        }
        let Some(session) = self.sessions.get_mut(session_id) else { return false };
        // A session lives on one socket: an older socket still attached stops receiving.
        if let Some(old) = session.conn.replace(conn)
            && let Some(old_conn) = self.conns.get_mut(&old)
        {
            old_conn.session = None;
        }
        let missed: Vec<String> =
            session.buffer.iter().filter(|(s, _)| *s > seq).map(|(_, frame)| frame.clone()).collect();
        // RESUMED takes a sequence number but is not replayed itself.
        session.seq += 1;
        let resumed_seq = session.seq;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(session_id.to_owned());
        }
        for frame in missed {
            self.send(conn, Out::Frame(frame));
        }
        self.send_event(conn, &GatewayEvent::Dispatch(resumed_seq, DispatchEvent::Resumed));
        true
    }

    /// Sends `event` to every session: buffered for replay, and delivered at once to those with
    /// a socket. Each session numbers it with its own sequence, so each encodes its own frame.
    pub(crate) fn dispatch(&mut self, event: &DispatchEvent) {
        let mut deliveries = Vec::new();
        for session in self.sessions.values_mut() {
            session.seq += 1;
            let Some(frame) = encode(&GatewayEvent::Dispatch(session.seq, event.clone())) else { continue };
            session.buffer.push_back((session.seq, frame.clone()));
            if session.buffer.len() > REPLAY_CAP
                && let Some((evicted, _)) = session.buffer.pop_front()
            {
                session.evicted_upto = evicted;
            }
            if let Some(conn) = session.conn {
                deliveries.push((conn, frame));
            }
        }
        for (conn, frame) in deliveries {
            self.send(conn, Out::Frame(frame));
        }
    }

    /// Op 7 or op 9 to every socket, identified or not.
    pub(crate) fn broadcast(&mut self, event: &GatewayEvent) {
        let Some(frame) = encode(event) else { return };
        let conns: Vec<u64> = self.conns.keys().copied().collect();
        for conn in conns {
            self.send(conn, Out::Frame(frame.clone()));
        }
    }

    /// Forgets every session: a later RESUME gets op 9 `false`.
    pub(crate) fn forget_all(&mut self) {
        self.sessions.clear();
        for conn in self.conns.values_mut() {
            conn.session = None;
        }
    }

    /// Drops every socket without a close frame; sessions stay resumable.
    pub(crate) fn drop_all(&mut self) {
        for conn in self.conns.values() {
            conn.kill.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilight_model::gateway::payload::incoming::MessageDelete;

    fn delete(n: u64) -> DispatchEvent {
        DispatchEvent::MessageDelete(MessageDelete {
            channel_id: crate::model::id(600),
            guild_id: None,
            id: crate::model::id(n),
        })
    }

    fn frames(rx: &mut mpsc::Receiver<Out>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Out::Frame(frame)) = rx.try_recv() {
            out.push(frame);
        }
        out
    }

    fn ready(_: String) -> DispatchEvent {
        DispatchEvent::Resumed // the payload does not matter to the session bookkeeping
    }

    #[test]
    fn a_dropped_session_buffers_and_replays_what_it_missed_then_resumed() {
        let mut sessions = Sessions::new(1);
        let mut first = sessions.register();
        sessions.identify(first.conn, ready);
        let session_id = sessions.sessions.keys().next().cloned().expect("session");
        sessions.dispatch(&delete(1)); // s = 2
        assert_eq!(frames(&mut first.rx).len(), 2);
        sessions.unregister(first.conn, false);
        sessions.dispatch(&delete(2)); // s = 3, buffered only
        let mut second = sessions.register();
        assert!(sessions.resume(second.conn, &session_id, 2));
        let replay = frames(&mut second.rx);
        assert_eq!(replay.len(), 2);
        assert!(replay[0].contains(r#""s":3"#) && replay[0].contains("MESSAGE_DELETE"));
        assert!(replay[1].contains(r#""t":"RESUMED","s":4"#));
        sessions.dispatch(&delete(3));
        assert!(frames(&mut second.rx)[0].contains(r#""s":5"#));
    }

    #[test]
    fn a_normal_close_ends_the_session_and_an_unknown_one_cannot_resume() {
        let mut sessions = Sessions::new(1);
        let first = sessions.register();
        sessions.identify(first.conn, ready);
        let session_id = sessions.sessions.keys().next().cloned().expect("session");
        sessions.unregister(first.conn, true);
        let second = sessions.register();
        assert!(!sessions.resume(second.conn, &session_id, 1));
        assert!(!sessions.resume(second.conn, "nope", 1));
    }

    #[test]
    fn a_resume_from_beyond_the_replay_buffer_is_refused() {
        let mut sessions = Sessions::new(1);
        let first = sessions.register();
        sessions.identify(first.conn, ready);
        let session_id = sessions.sessions.keys().next().cloned().expect("session");
        sessions.unregister(first.conn, false);
        for n in 0..=REPLAY_CAP as u64 {
            sessions.dispatch(&delete(n + 1));
        }
        let second = sessions.register();
        assert!(!sessions.resume(second.conn, &session_id, 1));
    }
}
