//! Which rooms' own channels this node listens to.
//!
//! Joins, leaves, creations, closes and moderators' decisions of every room reach every node
//! (on `burner:rooms`): each node keeps every room's roster and settings, for the directory and
//! the console. A room's messages and typing go on the room's own channel, and only nodes with
//! members in the room listen to it, so a node carries the traffic of the rooms its members are
//! in, not the whole cluster's.
//!
//! The listener alone subscribes and unsubscribes (the subscription is its connection). A
//! joiner on a node that does not listen to the room yet asks the listener to *warm* it first:
//! subscribe, then read the room from Redis and apply it, in the listener's own order of
//! events, so nothing published in between is missed or applied twice. Then it joins. A room
//! that no member here has needed for [`COOL_AFTER`] is unsubscribed again (*cold*).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, oneshot};

/// How long a room with no member on this node stays subscribed: a member leaving and coming
/// back (a reload, a flaky phone) finds it warm.
pub const COOL_AFTER: Duration = Duration::from_secs(5);
/// How long a joiner waits for the listener to warm a room: a subscribe and a read, each with
/// the call deadline, perhaps behind another room's.
const WARM_TIMEOUT: Duration = Duration::from_secs(2);

/// A joiner's request to listen to a room; told whether the room is warm now.
pub struct Warm {
    pub slug: Arc<str>,
    pub done: oneshot::Sender<bool>,
}

pub struct Interest {
    /// Warm rooms, and when a member here last needed each.
    warm: Mutex<HashMap<Arc<str>, Instant>>,
    requests: mpsc::UnboundedSender<Warm>,
    /// The listener's end, taken once when it starts.
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Warm>>>,
}

impl Default for Interest {
    fn default() -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        Self { warm: Mutex::default(), requests, inbox: Mutex::new(Some(inbox)) }
    }
}

impl Interest {
    fn warm(&self) -> MutexGuard<'_, HashMap<Arc<str>, Instant>> {
        self.warm.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this node hears the room's messages now.
    pub fn is_warm(&self, slug: &str) -> bool {
        self.warm().contains_key(slug)
    }

    /// Makes sure the room is warm before a member here joins it. False if the listener could
    /// not warm it in time (Redis down: the join is refused as unavailable).
    pub async fn ensure(&self, slug: &str) -> bool {
        // Touching a warm room keeps it from cooling while this join is decided.
        if let Some(needed) = self.warm().get_mut(slug) {
            *needed = Instant::now();
            return true;
        }
        let (done, is_done) = oneshot::channel();
        if self.requests.send(Warm { slug: slug.into(), done }).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(WARM_TIMEOUT, is_done).await, Ok(Ok(true)))
    }

    /// The listener's end of the warm requests (once).
    pub fn take_inbox(&self) -> Option<mpsc::UnboundedReceiver<Warm>> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The listener subscribed to the room and applied its state.
    pub fn mark_warm(&self, slug: Arc<str>) {
        self.warm().insert(slug, Instant::now());
    }

    /// The warm rooms, for a new subscription to listen to again.
    pub fn slugs(&self) -> Vec<Arc<str>> {
        self.warm().keys().cloned().collect()
    }

    /// The warm rooms no member here has needed for [`COOL_AFTER`] (`in_use`: a member here
    /// needs it now): cold from this call on, for the listener to unsubscribe. A join that comes
    /// after finds the room cold and asks for it to be warmed again, which the listener does
    /// after this.
    pub fn cool(&self, now: Instant, in_use: impl Fn(&str) -> bool) -> Vec<Arc<str>> {
        let mut warm = self.warm();
        let mut cold = Vec::new();
        for (slug, needed) in warm.iter_mut() {
            if in_use(slug) {
                *needed = now;
            } else if now.saturating_duration_since(*needed) >= COOL_AFTER {
                cold.push(slug.clone());
            }
        }
        for slug in &cold {
            warm.remove(slug);
        }
        cold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_cools_only_when_unused_and_not_needed_lately() {
        let interest = Interest::default();
        interest.mark_warm("a".into());
        interest.mark_warm("b".into());
        let start = Instant::now();
        assert!(interest.cool(start, |_| false).is_empty(), "needed just now");
        let later = start + COOL_AFTER + Duration::from_millis(1);
        let cold = interest.cool(later, |slug| slug == "a");
        assert_eq!(cold, vec![Arc::<str>::from("b")], "a member here holds a");
        assert!(interest.is_warm("a") && !interest.is_warm("b"));
        // The wait counts from when the last member here left, not from when the room warmed.
        let a_bit_later = later + COOL_AFTER / 2;
        assert!(interest.cool(a_bit_later, |_| false).is_empty(), "a was in use until just now");
        assert_eq!(interest.cool(later + COOL_AFTER, |_| false), vec![Arc::<str>::from("a")]);
    }

    #[tokio::test]
    async fn a_warm_room_needs_no_listener_and_a_cold_one_waits_for_it() {
        let interest = Interest::default();
        interest.mark_warm("a".into());
        assert!(interest.ensure("a").await);
        let mut inbox = interest.take_inbox().expect("the inbox, once");
        assert!(interest.take_inbox().is_none());
        let listener = tokio::spawn(async move {
            let request = inbox.recv().await.expect("a request");
            assert_eq!(&*request.slug, "b");
            let _ = request.done.send(false);
        });
        assert!(!interest.ensure("b").await, "the listener could not warm it");
        listener.await.expect("the listener");
    }
}
