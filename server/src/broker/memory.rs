//! The in-memory engine: one process, so every member is local and publishing is delivering.

use super::Broker;
use crate::{event::RoomEvent, hub::LocalMembers};

#[derive(Debug, Default)]
pub struct MemoryBroker;

impl Broker for MemoryBroker {
    fn publish(&self, event: &RoomEvent, here: &LocalMembers) {
        here.deliver(event);
    }
}
