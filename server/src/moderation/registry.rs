//! Every open WebSocket connection with its address, so a ban can close them at once.
//!
//! A slab, not a map by connection id: each connection keeps its own place (a `Place`) and
//! gives it back when it closes, so the table is one dense array of entries, the size of the
//! most connections open at once, with no hashing and no empty buckets held per connection.

use crate::outbox::{CloseReason, ConnHandle};
use slab::Slab;
use std::{
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

#[derive(Default)]
pub struct Registry {
    conns: Mutex<Slab<Entry>>,
}

/// A connection's place in the registry, given back with [`Registry::remove`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place(usize);

struct Entry {
    ip: IpAddr,
    ip_hash: Arc<str>,
    /// Opened with a moderator's session: a ban on the address leaves it open.
    moderator: bool,
    handle: ConnHandle,
}

impl Registry {
    pub fn add(&self, ip: IpAddr, ip_hash: Arc<str>, moderator: bool, handle: ConnHandle) -> Place {
        let entry = Entry { ip, ip_hash, moderator, handle };
        Place(self.conns.lock().unwrap_or_else(PoisonError::into_inner).insert(entry))
    }

    pub fn remove(&self, place: Place) {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner).try_remove(place.0);
    }

    /// Tells every visitor's connection whose address `matches` to close (moderators' stay open);
    /// how many there were.
    pub fn close_where(&self, matches: impl Fn(IpAddr, &str) -> bool, reason: &CloseReason) -> usize {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        let mut closed = 0;
        for (_, entry) in conns.iter().filter(|(_, e)| !e.moderator && matches(e.ip, &e.ip_hash)) {
            entry.handle.close(reason.clone());
            closed += 1;
        }
        closed
    }

    /// Tells every connection to close (the server is stopping), moderators' too.
    pub fn close_all(&self, reason: &CloseReason) {
        for (_, entry) in self.conns.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            entry.handle.close(reason.clone());
        }
    }

    /// The address behind a hash, if someone with it is connected now.
    pub fn address_of(&self, hash: &str) -> Option<IpAddr> {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns.iter().find(|(_, e)| &*e.ip_hash == hash).map(|(_, e)| e.ip)
    }
}
