//! Rate limits (token buckets; per address via governor): per connection for messages and raw frames, per IP
//! address for new connections, joins, messages and room creation; and the cap on connections one address
//! may hold open. IPv6 addresses are limited per /64, the block one subscriber usually gets, so
//! rotating addresses within it buys nothing.

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};
use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc, LazyLock, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

/// The one clock every bucket reads. Making a clock is not free (quanta asks the CPU what it
/// can do and calibrates): when each bucket made its own, that was ~15 % of the server's CPU
/// in a connect-join-leave churn, two buckets per connection.
static CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);

type Keyed = RateLimiter<IpKey, DefaultKeyedStateStore<IpKey>, DefaultClock>;

/// What shared limits are counted under: an IPv4 address, or the /64 prefix of an IPv6
/// address; or, for a sender that has no address of its own (a bridged author), an id its
/// source gives it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum IpKey {
    V4(u32),
    /// The upper 64 bits.
    V6(u64),
    Other(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.to_bits()),
                None => Self::V6((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

impl IpKey {
    /// The address (or, for IPv6, the /64 network) the key stands for; `None` for an outside
    /// author's id.
    pub fn network(self) -> Option<IpAddr> {
        match self {
            Self::V4(bits) => Some(IpAddr::V4(std::net::Ipv4Addr::from_bits(bits))),
            Self::V6(upper) => Some(IpAddr::V6(std::net::Ipv6Addr::from_bits(u128::from(upper) << 64))),
            Self::Other(_) => None,
        }
    }
}

/// `burst` at once, then one more every `interval`.
pub fn quota(burst: u32, interval: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(interval.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// Refused; try again after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

/// What [`Bucket`]s count time from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// One bucket, e.g. one connection's messages: a token every `interval`, up to a burst. Kept as
/// the time at which the bucket will be full again (GCRA, as governor does it), in three words:
/// every socket holds two of these for its whole life, where a governor limiter takes 72 bytes.
pub struct Bucket {
    /// When every token taken so far will have come back, in nanoseconds since [`EPOCH`].
    full_at: AtomicU64,
    /// Nanoseconds per token.
    interval: u64,
    /// Nanoseconds the whole burst takes to come back.
    span: u64,
}

impl Bucket {
    pub fn new(quota: Quota) -> Self {
        let interval = u64::try_from(quota.replenish_interval().as_nanos()).unwrap_or(u64::MAX).max(1);
        let span = interval.saturating_mul(u64::from(quota.burst_size().get()));
        Self { full_at: AtomicU64::new(0), interval, span }
    }

    /// Takes `cost` tokens, or says when they will be there.
    pub fn take(&self, cost: u32) -> Result<(), RetryAfter> {
        let needed = self.interval.saturating_mul(u64::from(cost.max(1)));
        if needed > self.span {
            // More than the burst can ever hold: never possible with our costs, refuse for long.
            return Err(RetryAfter(Duration::from_secs(60)));
        }
        let now = u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut full_at = self.full_at.load(Relaxed);
        loop {
            let after = full_at.max(now).saturating_add(needed);
            // Holding more than the burst: wait until enough of it has come back.
            if after - now > self.span {
                return Err(RetryAfter(Duration::from_nanos(after - now - self.span)));
            }
            match self.full_at.compare_exchange_weak(full_at, after, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(now_held) => full_at = now_held,
            }
        }
    }
}

/// One bucket per IP key.
pub struct PerIp(Keyed);

impl PerIp {
    pub fn new(quota: Quota) -> Self {
        Self(RateLimiter::new(quota, DefaultKeyedStateStore::default(), CLOCK.clone()))
    }

    pub fn take(&self, key: impl Into<IpKey>, cost: u32) -> Result<(), RetryAfter> {
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.0.check_key_n(&key.into(), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(RetryAfter(not_until.wait_time_from(CLOCK.now()))),
            Err(_) => Err(RetryAfter(Duration::from_secs(60))),
        }
    }

    /// Forgets addresses whose buckets are full again, so memory follows the active set.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }

    pub fn tracked(&self) -> usize {
        self.0.len()
    }
}

/// The per-IP limits of one server.
pub struct IpLimits {
    /// New WebSocket connections.
    pub connects: PerIp,
    /// WebSocket connections open at once.
    pub open: Arc<OpenPerIp>,
    pub room_creation: PerIp,
    /// Moderator sign-in attempts: a token cannot be guessed at speed.
    pub sign_ins: PerIp,
}

impl IpLimits {
    /// Forgets addresses whose buckets are full again.
    pub fn forget_idle(&self) {
        self.connects.forget_idle();
        self.room_creation.forget_idle();
        self.sign_ins.forget_idle();
    }
}

/// How many connections each IP key has open, against a cap.
pub struct OpenPerIp {
    counts: Mutex<HashMap<IpKey, u32>>,
    max: u32,
}

/// One open connection of an address; gives its place back when dropped, unless kept.
pub struct IpSlot {
    /// `None` once kept ([`IpSlot::keep`]).
    owner: Option<Arc<OpenPerIp>>,
    key: IpKey,
}

impl OpenPerIp {
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self { counts: Mutex::default(), max })
    }

    /// A place for one more connection from `ip`, unless it has `max` open already.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = IpKey::from(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot { owner: Some(self.clone()), key })
    }

    /// Gives back a place `ip` opened with [`OpenPerIp::try_open`] and kept by [`IpSlot::keep`]
    /// (counted by the same key).
    pub fn close(&self, ip: IpAddr) {
        self.release(IpKey::from(ip));
    }

    fn release(&self, key: IpKey) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }
}

impl IpSlot {
    /// Keeps the place as a count, without the guard: whoever keeps it gives it back with
    /// [`OpenPerIp::close`] and the address it was opened for.
    pub fn keep(mut self) {
        self.owner = None;
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            owner.release(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv6_addresses_share_a_key_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(IpKey::from(a), IpKey::from(b));
        assert_ne!(IpKey::from(a), IpKey::from(other));
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(IpKey::from(v4), IpKey::from(mapped));
        assert_ne!(IpKey::from(v4), IpKey::from(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_when() {
        let bucket = Bucket::new(quota(3, Duration::from_secs(10)));
        for _ in 0..3 {
            assert_eq!(bucket.take(1), Ok(()));
        }
        let retry = bucket.take(1).expect_err("burst spent");
        assert!(retry.0 > Duration::from_secs(8) && retry.0 <= Duration::from_secs(10), "{retry:?}");
    }

    #[test]
    fn a_bucket_counts_costs_and_refills_at_its_rate() {
        let bucket = Bucket::new(quota(4, Duration::from_millis(20)));
        assert_eq!(bucket.take(3), Ok(()));
        let retry = bucket.take(2).expect_err("one token left, two asked");
        assert!(retry.0 > Duration::from_millis(10) && retry.0 <= Duration::from_millis(20), "{retry:?}");
        assert_eq!(bucket.take(1), Ok(()), "a refusal takes nothing");
        assert!(bucket.take(5).is_err_and(|retry| retry.0 == Duration::from_secs(60)), "more than the burst, ever");
        std::thread::sleep(Duration::from_millis(45));
        assert_eq!(bucket.take(2), Ok(()), "two came back in 40 ms");
    }

    #[test]
    fn open_connections_are_capped_per_address_and_given_back() {
        let open = OpenPerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let first = open.try_open(a).expect("first");
        let _second = open.try_open(a).expect("second");
        assert!(open.try_open(a).is_none(), "third refused");
        assert!(open.try_open("192.0.2.2".parse().expect("ip")).is_some(), "other addresses unaffected");
        drop(first);
        assert!(open.try_open(a).is_some(), "a closed connection gives its place back");
    }

    #[test]
    fn per_ip_buckets_are_separate() {
        let limits = PerIp::new(quota(1, Duration::from_secs(60)));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(limits.take(a, 1).is_ok());
        assert!(limits.take(a, 1).is_err());
        assert!(limits.take(b, 1).is_ok());
    }
}
