//! Discord's REST rate limits as a pure state machine: per-route buckets, the global
//! per-second limit, and a global block (a global 429 that must be waited out). Time is passed
//! in, so the tests read as the rules.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

/// Which bucket a request counts against. Discord keys buckets by route *and* major parameter
/// (the channel id), and names the route's bucket with one opaque hash shared by all channels.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub(crate) struct BucketKey {
    pub method: String,
    pub route: String,
    pub major: u64,
}

impl BucketKey {
    /// `X-RateLimit-Bucket`: opaque, stable per route (FNV-1a, so it does not change between runs).
    pub(crate) fn hash(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.method.bytes().chain(*b" ").chain(self.route.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

/// What the `X-RateLimit-*` headers of one response say.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: Duration,
    pub bucket: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Serve it; the snapshot already counts this request.
    Allowed(Snapshot),
    /// The route's bucket is empty until `snapshot.reset_after`.
    Route(Snapshot),
    /// The global limit (or a global block) holds for `retry_after`.
    Global { snapshot: Snapshot, retry_after: Duration },
}

/// A fixed window: Discord's buckets refill all at once at their reset time.
#[derive(Debug)]
struct Window {
    resets_at: Instant,
    used: u32,
}

#[derive(Debug)]
pub(crate) struct Limits {
    route_limit: u32,
    route_window: Duration,
    global_per_sec: u32,
    buckets: HashMap<BucketKey, Window>,
    /// Arrival times of requests served in the last second (a sliding window).
    served: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

const GLOBAL_WINDOW: Duration = Duration::from_secs(1);

impl Limits {
    pub(crate) fn new(route_limit: u32, route_window: Duration, global_per_sec: u32) -> Self {
        Self {
            route_limit: route_limit.max(1),
            route_window,
            global_per_sec: global_per_sec.max(1),
            buckets: HashMap::new(),
            served: VecDeque::new(),
            blocked_until: None,
        }
    }

    /// The bucket's state without counting a request: for responses that were not served
    /// (401, faults, unknown routes) but still carry the headers.
    pub(crate) fn peek(&self, key: &BucketKey, now: Instant) -> Snapshot {
        match self.buckets.get(key) {
            Some(window) if window.resets_at > now => Snapshot {
                limit: self.route_limit,
                remaining: self.route_limit.saturating_sub(window.used),
                reset_after: window.resets_at - now,
                bucket: key.hash(),
            },
            _ => Snapshot {
                limit: self.route_limit,
                remaining: self.route_limit,
                reset_after: self.route_window,
                bucket: key.hash(),
            },
        }
    }

    /// Until when a global 429 holds, if one does now.
    pub(crate) fn global_block(&self, now: Instant) -> Option<Duration> {
        self.blocked_until.filter(|until| *until > now).map(|until| until - now)
    }

    /// A global 429 was answered: refuse everything until it has been waited out, as Discord
    /// does (and so a test can tell a client that waited from one that did not).
    pub(crate) fn block_globally(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |old| old.max(until)));
    }

    /// Decide one request and, if allowed, count it.
    pub(crate) fn take(&mut self, key: &BucketKey, now: Instant) -> Verdict {
        if let Some(retry_after) = self.global_block(now) {
            return Verdict::Global { snapshot: self.peek(key, now), retry_after };
        }
        while self.served.front().is_some_and(|at| now.duration_since(*at) >= GLOBAL_WINDOW) {
            self.served.pop_front();
        }
        if self.served.len() >= self.global_per_sec as usize {
            let oldest = self.served.front().copied().unwrap_or(now);
            let retry_after = GLOBAL_WINDOW.saturating_sub(now.duration_since(oldest));
            return Verdict::Global { snapshot: self.peek(key, now), retry_after };
        }
        let window = self.buckets.entry(key.clone()).or_insert(Window { resets_at: now, used: 0 });
        if window.resets_at <= now {
            *window = Window { resets_at: now + self.route_window, used: 0 };
        }
        let reset_after = window.resets_at - now;
        if window.used >= self.route_limit {
            return Verdict::Route(Snapshot { limit: self.route_limit, remaining: 0, reset_after, bucket: key.hash() });
        }
        window.used += 1;
        self.served.push_back(now);
        Verdict::Allowed(Snapshot {
            limit: self.route_limit,
            remaining: self.route_limit - window.used,
            reset_after,
            bucket: key.hash(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(major: u64) -> BucketKey {
        BucketKey { method: "POST".into(), route: "channels/{id}/messages".into(), major }
    }

    fn remaining(verdict: &Verdict) -> Option<u32> {
        match verdict {
            Verdict::Allowed(s) => Some(s.remaining),
            _ => None,
        }
    }

    #[test]
    fn a_bucket_counts_down_then_refuses_until_its_reset() {
        let mut limits = Limits::new(2, Duration::from_secs(5), 50);
        let t0 = Instant::now();
        assert_eq!(remaining(&limits.take(&key(600), t0)), Some(1));
        assert_eq!(remaining(&limits.take(&key(600), t0)), Some(0));
        match limits.take(&key(600), t0 + Duration::from_secs(1)) {
            Verdict::Route(s) => {
                assert_eq!(s.remaining, 0);
                assert_eq!(s.reset_after, Duration::from_secs(4));
            }
            other => panic!("expected a route 429, got {other:?}"),
        }
        assert_eq!(remaining(&limits.take(&key(600), t0 + Duration::from_secs(5))), Some(1));
    }

    #[test]
    fn each_channel_has_its_own_bucket_under_one_route_hash() {
        let mut limits = Limits::new(1, Duration::from_secs(5), 50);
        let t0 = Instant::now();
        assert!(matches!(limits.take(&key(600), t0), Verdict::Allowed(_)));
        assert!(matches!(limits.take(&key(601), t0), Verdict::Allowed(_)));
        assert!(matches!(limits.take(&key(600), t0), Verdict::Route(_)));
        assert_eq!(key(600).hash(), key(601).hash());
        assert_ne!(key(600).hash(), BucketKey { method: "PATCH".into(), ..key(600) }.hash());
    }

    #[test]
    fn the_global_limit_slides_over_the_last_second() {
        let mut limits = Limits::new(100, Duration::from_secs(5), 3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(matches!(limits.take(&key(i + 1), t0 + Duration::from_millis(i * 100)), Verdict::Allowed(_)));
        }
        match limits.take(&key(9), t0 + Duration::from_millis(400)) {
            Verdict::Global { retry_after, .. } => assert_eq!(retry_after, Duration::from_millis(600)),
            other => panic!("expected a global 429, got {other:?}"),
        }
        assert!(matches!(limits.take(&key(9), t0 + Duration::from_millis(1000)), Verdict::Allowed(_)));
    }

    #[test]
    fn a_global_block_refuses_everything_until_it_has_passed() {
        let mut limits = Limits::new(100, Duration::from_secs(5), 50);
        let t0 = Instant::now();
        limits.block_globally(t0 + Duration::from_secs(2));
        assert!(matches!(limits.take(&key(1), t0 + Duration::from_millis(1999)), Verdict::Global { .. }));
        assert!(matches!(limits.take(&key(1), t0 + Duration::from_secs(2)), Verdict::Allowed(_)));
    }

    #[test]
    fn peeking_counts_nothing() {
        let mut limits = Limits::new(2, Duration::from_secs(5), 50);
        let t0 = Instant::now();
        assert_eq!(limits.peek(&key(1), t0).remaining, 2);
        limits.take(&key(1), t0);
        assert_eq!(limits.peek(&key(1), t0).remaining, 1);
        assert_eq!(limits.peek(&key(1), t0).remaining, 1);
    }
}
