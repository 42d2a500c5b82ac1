//! The hub: which rooms exist, who may create them, and the live room directory. Each room
//! decides its events and publishes them through the broker (`crate::broker`); each room's
//! [`LocalMembers`] is where they end on this node.
//!
//! Locking: the room table (`rooms`) is a short `RwLock` section to find or add a room; each room
//! has its own `Mutex` (see [`room`]), and under it the room's local members have theirs; the
//! watcher list has its own. A room lock is never taken while the table is write-locked except in
//! expiry, which takes them in that order (table, then room); nothing takes them the other way
//! round, and delivering an event (under the room lock) never touches the table. No lock is held
//! across an `.await`: the hub has no `.await` at all, it only queues frames.

mod local;
mod room;

pub use local::LocalMembers;
pub use room::{
    Accepted, JoinRequest, Joiner, MAX_SLOW_MODE, Membership, Relayed, ReplicaMember, ReplicaPost, Room, RoomSpec,
    Snapshot, valid_session,
};

use crate::{
    broker::Broker,
    error::Refusal,
    frame::Frame,
    outbox::{ConnHandle, Offer},
    store::RoomRecord,
};
use app::{
    api::RoomPreview,
    protocol::{LOBBY_SLUG, RoomSettings, RoomSummary, ServerMsg},
    rules,
};
use rand::Rng;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock, atomic::AtomicU64},
    time::{Duration, Instant},
};

/// Adds to a room's list of members, growing it no further than the room's limit: a full room
/// of 100 keeps 100 places, not the 128 that doubling would leave (a quarter more of every
/// member's entry, for as long as the room is full).
fn push_within<T>(list: &mut Vec<T>, item: T, limit: u32) {
    if list.len() == list.capacity() {
        let left = (limit as usize).saturating_sub(list.len());
        let doubling = list.len().max(4);
        list.reserve_exact(if left > 0 { doubling.min(left) } else { doubling });
    }
    list.push(item);
}

/// Room directory snapshots stop at this many rooms (most occupied first): a list people can read.
const DIRECTORY_SNAPSHOT_MAX: usize = 200;
/// Rooms in the moderators' console: the busiest, where moderation is needed.
const MOD_ROOMS: usize = 30;
/// Rooms per `directory_changed` frame, so a burst of changes never makes one huge frame.
const DIRECTORY_CHUNK: usize = 200;

/// A room as someone asks for it: what the creation form describes.
pub use app::api::NewRoom;

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub max_room_limit: u32,
    pub lobby_limit: u32,
    pub room_expiry: Duration,
    pub max_rooms: usize,
}

pub struct Hub {
    config: HubConfig,
    /// Carries every room's events to the members (see `crate::broker`).
    broker: Arc<dyn Broker>,
    /// In cluster mode, where rooms are decided (Redis) and applied (see `crate::cluster::rooms`).
    cluster: Option<Arc<crate::cluster::Rooms>>,
    rooms: RwLock<Rooms>,
    watchers: Mutex<Watchers>,
    /// Member ids are unique for the life of the process and never reused.
    next_member_id: AtomicU64,
}

#[derive(Default)]
struct Rooms {
    by_slug: HashMap<Arc<str>, Arc<Room>>,
    /// Confusable keys of room names: two rooms may not look alike in the directory.
    names: HashMap<String, Arc<str>>,
}

#[derive(Default)]
struct Watchers {
    conns: HashMap<u64, ConnHandle>,
    /// Rooms removed since the last directory update.
    removed: Vec<Arc<str>>,
}

impl Hub {
    pub fn new(config: HubConfig, broker: Arc<dyn Broker>, cluster: Option<Arc<crate::cluster::Rooms>>) -> Self {
        let hub = Self {
            cluster,
            rooms: RwLock::default(),
            watchers: Mutex::default(),
            next_member_id: AtomicU64::new(1),
            config,
            broker,
        };
        let lobby = hub.new_room(RoomSpec {
            slug: LOBBY_SLUG.into(),
            name: "Lobby".into(),
            name_key: rules::confusable_key("Lobby"),
            limit: hub.config.lobby_limit,
            one_way: false,
            listed: true,
            permanent: true,
            settings: RoomSettings::default(),
            created_at: room::now_ms(),
        });
        hub.insert(Arc::new(lobby));
        hub
    }

    fn new_room(&self, spec: RoomSpec) -> Room {
        Room::new(spec, self.broker.clone(), self.cluster.clone())
    }

    /// In cluster mode, the rooms' link to Redis.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Rooms>> {
        self.cluster.as_ref()
    }

    /// The slug of every room here, the lobby included.
    pub fn slugs(&self) -> Vec<Arc<str>> {
        self.rooms.read().unwrap_or_else(PoisonError::into_inner).by_slug.keys().cloned().collect()
    }

    /// Brings back the rooms a previous run stored (with fresh epochs: their history is gone),
    /// and the lobby's moderation settings.
    pub fn restore(&self, records: Vec<RoomRecord>) {
        for record in records {
            let settings = RoomSettings {
                profanity: record.profanity,
                slow_mode_secs: record.slow_mode_secs,
                locked: record.locked,
            };
            if record.slug == LOBBY_SLUG {
                if let Some(lobby) = self.room(LOBBY_SLUG) {
                    lobby.update_settings(|s| *s = settings);
                }
                continue;
            }
            let Ok(name) = rules::room_name(&record.name) else { continue };
            if self.room(&record.slug).is_some() {
                continue;
            }
            let room = self.new_room(RoomSpec {
                slug: record.slug.into(),
                name: name.display().into(),
                name_key: name.key().to_owned(),
                limit: record.limit.clamp(rules::ROOM_LIMIT_MIN, self.config.max_room_limit.max(rules::ROOM_LIMIT_MIN)),
                one_way: record.one_way,
                listed: record.listed,
                permanent: false,
                settings,
                created_at: record.created_at,
            });
            self.insert(Arc::new(room));
        }
    }

    fn insert(&self, room: Arc<Room>) {
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        rooms.names.insert(room.name_key().to_owned(), room.slug.clone());
        rooms.by_slug.insert(room.slug.clone(), room);
    }

    pub fn room(&self, slug: &str) -> Option<Arc<Room>> {
        self.rooms.read().unwrap_or_else(PoisonError::into_inner).by_slug.get(slug).cloned()
    }

    /// Creates a room with a fresh slug derived from its name. The caller has rate-limited the
    /// creator already, and stores the room.
    pub fn create_room(&self, request: NewRoom) -> Result<Arc<Room>, Refusal> {
        let NewRoom { name, limit, one_way, listed, profanity } = request;
        let name = rules::room_name(&name).map_err(Refusal::room_name)?;
        let max = self.config.max_room_limit;
        if !(rules::ROOM_LIMIT_MIN..=max).contains(&limit) {
            return Err(Refusal::limit_invalid(max));
        }
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        if rooms.by_slug.len() >= self.config.max_rooms {
            return Err(Refusal::too_many_rooms());
        }
        if rooms.names.contains_key(name.key()) {
            return Err(Refusal::room_name_taken());
        }
        let slug = loop {
            let candidate = slug_for(name.display());
            if !rooms.by_slug.contains_key(candidate.as_str()) {
                break Arc::<str>::from(candidate);
            }
        };
        let key = name.key().to_owned();
        let room = Arc::new(self.new_room(RoomSpec {
            slug: slug.clone(),
            name: name.display().into(),
            name_key: key.clone(),
            limit,
            one_way,
            listed,
            permanent: false,
            settings: RoomSettings { profanity, ..RoomSettings::default() },
            created_at: room::now_ms(),
        }));
        rooms.names.insert(key, slug.clone());
        rooms.by_slug.insert(slug, room.clone());
        Ok(room)
    }

    /// Closes a room for good (a moderator's decision): everyone in it is let go.
    pub fn close_room(&self, slug: &str, reason: &str) -> bool {
        slug != LOBBY_SLUG && self.remove_replica(slug, reason)
    }

    /// Removes a room from this node and lets its members here go: a moderator's close, or, in
    /// cluster mode, a room Redis removed (closed or expired on whichever node).
    pub fn remove_replica(&self, slug: &str, reason: &str) -> bool {
        let Some(room) = ({
            let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
            let room = rooms.by_slug.remove(slug);
            if let Some(room) = &room {
                rooms.names.remove(room.name_key());
            }
            room
        }) else {
            return false;
        };
        room.close(reason);
        if room.listed {
            self.watchers.lock().unwrap_or_else(PoisonError::into_inner).removed.push(room.slug.clone());
        }
        true
    }

    /// The busiest rooms as the console shows them (at most `MOD_ROOMS`: the snapshot is sent
    /// to every console each time it changes).
    pub fn mod_rooms(&self) -> Vec<app::protocol::ModRoom> {
        let mut rooms: Vec<(u32, Arc<Room>)> = self
            .rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_slug
            .values()
            .map(|room| (room.summary().members, room.clone()))
            .collect();
        rooms.sort_by(|(a, ra), (b, rb)| b.cmp(a).then_with(|| ra.name.cmp(&rb.name)));
        rooms.into_iter().take(MOD_ROOMS).map(|(_, room)| room.mod_view()).collect()
    }

    /// Listed rooms, most occupied first.
    pub fn listed_rooms(&self) -> Vec<RoomSummary> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        let mut listed: Vec<(&Arc<Room>, RoomSummary)> =
            rooms.by_slug.values().filter(|r| r.listed).map(|r| (r, r.summary())).collect();
        listed.sort_by(|(ra, a), (rb, b)| {
            rb.permanent.cmp(&ra.permanent).then(b.members.cmp(&a.members)).then(ra.created.cmp(&rb.created))
        });
        listed.into_iter().take(DIRECTORY_SNAPSHOT_MAX).map(|(_, s)| s).collect()
    }

    /// What the room page shows before joining. A one-way room shows no messages: the page
    /// cannot know which of them the visitor wrote, and must never show an author their own.
    /// In cluster mode, a node that does not listen to the room's messages reads them from Redis.
    pub async fn preview(&self, slug: &str) -> Option<RoomPreview> {
        let room = self.room(slug)?;
        let recent = match self.cluster() {
            _ if room.one_way => None,
            Some(rooms) if !rooms.hears(slug) => Some(rooms.recent(slug).await),
            _ => Some(room.recent_messages()),
        };
        // None said yet: nothing to show, as in a one-way room.
        let recent = recent.filter(|recent| !recent.is_empty());
        Some(RoomPreview { room: room.summary(), recent, bridged_to: None })
    }

    pub fn join(&self, slug: &str, conn: &ConnHandle, request: JoinRequest<'_>) -> Result<Membership, Refusal> {
        let room = self.room(slug).ok_or_else(Refusal::room_not_found)?;
        room.join(conn, request, &self.next_member_id)
    }

    /// Sends the directory to `conn` now and its changes from then on. The snapshot is taken
    /// under the watchers lock, so no update can fall between it and the watcher's registration.
    pub fn watch_directory(&self, conn: &ConnHandle) {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        let snapshot = Frame::encode(&ServerMsg::Directory { rooms: self.listed_rooms() });
        if conn.offer(snapshot) == Offer::Queued {
            watchers.conns.insert(conn.id, conn.clone());
        }
    }

    pub fn unwatch_directory(&self, conn_id: u64) {
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner).conns.remove(&conn_id);
    }

    /// Sends one `directory_changed` with every room whose occupancy changed since the last call.
    /// Called on a timer, so a burst of joins costs watchers one frame, not one per join.
    pub fn flush_directory(&self) {
        let updated: Vec<RoomSummary> = {
            let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
            rooms.by_slug.values().filter(|r| r.take_dirty() && r.listed).map(|r| r.summary()).collect()
        };
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        let removed: Vec<String> = watchers.removed.drain(..).map(|s| s.to_string()).collect();
        if watchers.conns.is_empty() {
            return;
        }
        let (mut updated, mut removed) = (updated.into_iter().peekable(), removed.into_iter().peekable());
        while updated.peek().is_some() || removed.peek().is_some() {
            let frame = Frame::encode(&ServerMsg::DirectoryChanged {
                updated: updated.by_ref().take(DIRECTORY_CHUNK).collect(),
                removed: removed.by_ref().take(DIRECTORY_CHUNK).collect(),
            });
            watchers.conns.retain(|_, conn| conn.offer(frame.clone()) == Offer::Queued);
        }
    }

    /// Removes rooms that have been empty for longer than the expiry delay (the lobby stays);
    /// returns their slugs, for the store to forget them too.
    pub fn expire_rooms(&self, now: Instant) -> Vec<Arc<str>> {
        let expired: Vec<Arc<Room>> = {
            let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
            let expired: Vec<Arc<Room>> = rooms
                .by_slug
                .values()
                .filter(|room| !room.permanent && room.close_if_expired(now, self.config.room_expiry))
                .cloned()
                .collect();
            for room in &expired {
                rooms.by_slug.remove(&room.slug);
                rooms.names.remove(room.name_key());
            }
            expired
        };
        let listed = expired.iter().filter(|r| r.listed).map(|r| r.slug.clone());
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner).removed.extend(listed);
        expired.into_iter().map(|r| r.slug.clone()).collect()
    }

    /// Rooms empty for longer than the expiry delay (the lobby aside), with their name keys: in
    /// cluster mode each is removed by Redis, once, if it is empty on every node too.
    pub fn idle_rooms(&self, now: Instant) -> Vec<(Arc<str>, String)> {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        rooms
            .by_slug
            .values()
            .filter(|room| !room.permanent && room.idle_for(now, self.config.room_expiry))
            .map(|room| (room.slug.clone(), room.name_key().to_owned()))
            .collect()
    }

    /// Rooms that exist now, the lobby included.
    pub fn room_count(&self) -> usize {
        self.rooms.read().unwrap_or_else(PoisonError::into_inner).by_slug.len()
    }
}

/// `Rust talk!` → `rust-talk-k3x9q`: the name's Latin letters and digits, lower-cased, plus a
/// random suffix so slugs never collide and unlisted rooms cannot be guessed from their name.
fn slug_for(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut base = String::new();
    for c in name.nfkd() {
        if c.is_ascii_alphanumeric() {
            base.push(c.to_ascii_lowercase());
        } else if (c.is_whitespace() || c.is_ascii_punctuation()) && !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
        if base.len() >= 40 {
            break;
        }
    }
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "room" } else { base };
    let mut rng = rand::rng();
    let suffix: String =
        (0..5).map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)])).collect();
    format!("{base}-{suffix}")
}

#[cfg(test)]
mod tests;
