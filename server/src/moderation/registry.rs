//! Every open WebSocket connection with its address, so a ban can close them at once.

use crate::outbox::{CloseReason, ConnHandle};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<u64, Entry>>,
}

struct Entry {
    ip: IpAddr,
    ip_hash: Arc<str>,
    /// Opened with a moderator's session: a ban on the address leaves it open.
    moderator: bool,
    handle: ConnHandle,
}

impl Registry {
    pub fn add(&self, ip: IpAddr, ip_hash: Arc<str>, moderator: bool, handle: ConnHandle) {
        let entry = Entry { ip, ip_hash, moderator, handle };
        self.conns.lock().unwrap_or_else(PoisonError::into_inner).insert(entry.handle.id, entry);
    }

    pub fn remove(&self, id: u64) {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Tells every visitor's connection whose address `matches` to close (moderators' stay open);
    /// how many there were.
    pub fn close_where(&self, matches: impl Fn(IpAddr, &str) -> bool, reason: &CloseReason) -> usize {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        let mut closed = 0;
        for entry in conns.values().filter(|e| !e.moderator && matches(e.ip, &e.ip_hash)) {
            entry.handle.close(reason.clone());
            closed += 1;
        }
        closed
    }

    /// Tells every connection to close (the server is stopping), moderators' too.
    pub fn close_all(&self, reason: &CloseReason) {
        for entry in self.conns.lock().unwrap_or_else(PoisonError::into_inner).values() {
            entry.handle.close(reason.clone());
        }
    }

    /// The address behind a hash, if someone with it is connected now.
    pub fn address_of(&self, hash: &str) -> Option<IpAddr> {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns.values().find(|e| &*e.ip_hash == hash).map(|e| e.ip)
    }
}
