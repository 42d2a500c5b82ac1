//! The broker: how a room event reaches the members of its room on every node. This file is
//! only the contract and its position type; the engines sit beside it (`memory` today: one
//! process; a Redis engine for several processes plugs in here, behind the same trait).
//!
//! The path is the same whatever the engine: the room decides an event under its lock and
//! publishes it; the engine delivers it to [`LocalMembers::deliver`] of that room on every node,
//! this one included, in the order it was published. Publishing never waits: an engine that
//! talks to another process queues and returns.

mod memory;

pub use memory::MemoryBroker;

use crate::{event::RoomEvent, hub::LocalMembers};
use std::sync::Arc;

/// A place in a room's history: the room's incarnation (`epoch`, new each time the room is
/// created or restored) and the message number within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub epoch: Arc<str>,
    pub seq: u64,
}

pub trait Broker: Send + Sync + 'static {
    /// Delivers `event` to its room's members on every node; `here` is this node's. Called
    /// under the room's lock, so what one room publishes is delivered in that order.
    fn publish(&self, event: &RoomEvent, here: &LocalMembers);
}
