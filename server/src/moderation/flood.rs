//! Graduated flood control for one connection. A message over the rate is refused with the time
//! to wait; one sent before that time was up is a strike (a client that waits as told never
//! gets one); enough strikes in a short window mute the connection for a while; trying on and on
//! while muted ends it.

use crate::limits::RetryAfter;
use std::time::Duration;
use tokio::time::Instant;

const EARLY_IS_FINE: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug)]
pub struct FloodPolicy {
    pub strikes_to_mute: u32,
    pub strike_window: Duration,
    pub mute: Duration,
    pub tries_while_muted: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the rate: try again after this long.
    RateLimited(RetryAfter),
    /// Muted for flooding, for this much longer.
    Muted(RetryAfter),
    /// Flooding on regardless: close the connection.
    Disconnect,
}

#[derive(Debug, Default)]
pub struct Flood {
    strikes: u32,
    window_start: Option<Instant>,
    muted_until: Option<Instant>,
    tries_while_muted: u32,
    /// When the last refusal said sending would be allowed again.
    told_to_wait_until: Option<Instant>,
}

impl Flood {
    /// [`Flood::judge`] for a sender whose record is made only when first needed: a sender never
    /// over the rate has none (a socket keeps its sender for its whole life, and most never are).
    pub fn judge_kept(
        record: &mut Option<Box<Flood>>,
        policy: &FloodPolicy,
        now: Instant,
        rate: Result<(), RetryAfter>,
    ) -> Verdict {
        match (record, rate) {
            // What an empty record says to a message within the rate.
            (None, Ok(())) => Verdict::Allow,
            (record, rate) => record.get_or_insert_default().judge(policy, now, rate),
        }
    }

    /// Judges one message, given what the rate limits said about it.
    pub fn judge(&mut self, policy: &FloodPolicy, now: Instant, rate: Result<(), RetryAfter>) -> Verdict {
        if let Some(until) = self.muted_until {
            if until > now {
                self.tries_while_muted += 1;
                if self.tries_while_muted >= policy.tries_while_muted {
                    return Verdict::Disconnect;
                }
                return Verdict::Muted(RetryAfter(until - now));
            }
            self.muted_until = None;
            self.strikes = 0;
        }
        let Err(retry) = rate else { return Verdict::Allow };
        // A little early is waiting all the same: times are rounded to milliseconds, timers jitter.
        let ignored_the_wait = self.told_to_wait_until.is_some_and(|until| now + EARLY_IS_FINE < until);
        self.told_to_wait_until = Some(now + retry.0);
        if !ignored_the_wait {
            return Verdict::RateLimited(retry);
        }
        if self.window_start.is_none_or(|start| now.duration_since(start) > policy.strike_window) {
            self.window_start = Some(now);
            self.strikes = 0;
        }
        self.strikes += 1;
        if self.strikes >= policy.strikes_to_mute {
            self.muted_until = Some(now + policy.mute);
            self.tries_while_muted = 0;
            return Verdict::Muted(RetryAfter(policy.mute));
        }
        Verdict::RateLimited(retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: FloodPolicy = FloodPolicy {
        strikes_to_mute: 3,
        strike_window: Duration::from_secs(10),
        mute: Duration::from_secs(60),
        tries_while_muted: 4,
    };
    const OVER: Result<(), RetryAfter> = Err(RetryAfter(Duration::from_secs(1)));

    #[test]
    fn strikes_lead_to_a_mute_and_flooding_on_to_a_disconnect() {
        let mut flood = Flood::default();
        let now = Instant::now();
        assert_eq!(flood.judge(&POLICY, now, Ok(())), Verdict::Allow);
        // The first refusal tells the client to wait; not waiting is what counts.
        assert_eq!(flood.judge(&POLICY, now, OVER), Verdict::RateLimited(RetryAfter(Duration::from_secs(1))));
        assert_eq!(flood.judge(&POLICY, now, OVER), Verdict::RateLimited(RetryAfter(Duration::from_secs(1))));
        assert_eq!(flood.judge(&POLICY, now, OVER), Verdict::RateLimited(RetryAfter(Duration::from_secs(1))));
        assert_eq!(flood.judge(&POLICY, now, OVER), Verdict::Muted(RetryAfter(Duration::from_secs(60))));
        // Even a message the rate would allow is refused while muted.
        assert!(matches!(flood.judge(&POLICY, now, Ok(())), Verdict::Muted(_)));
        assert!(matches!(flood.judge(&POLICY, now, Ok(())), Verdict::Muted(_)));
        assert!(matches!(flood.judge(&POLICY, now, Ok(())), Verdict::Muted(_)));
        assert_eq!(flood.judge(&POLICY, now, Ok(())), Verdict::Disconnect);
    }

    #[test]
    fn a_record_is_made_at_the_first_message_over_the_rate_and_judges_alike() {
        let now = Instant::now();
        let mut kept = None;
        let mut always = Flood::default();
        for (i, rate) in
            [Ok(()), Ok(()), OVER, OVER, Ok(()), OVER, OVER, Ok(()), Ok(()), Ok(()), Ok(())].into_iter().enumerate()
        {
            let verdict = Flood::judge_kept(&mut kept, &POLICY, now, rate);
            assert_eq!(verdict, always.judge(&POLICY, now, rate), "message {i}");
            assert_eq!(kept.is_some(), i >= 2, "a record only from the first message over the rate");
        }
    }

    #[test]
    fn a_client_that_waits_as_told_is_never_muted() {
        let mut flood = Flood::default();
        let mut now = Instant::now();
        for _ in 0..100 {
            assert_eq!(flood.judge(&POLICY, now, OVER), Verdict::RateLimited(RetryAfter(Duration::from_secs(1))));
            now += Duration::from_secs(1);
        }
    }

    #[test]
    fn a_mute_ends_and_old_strikes_are_forgotten() {
        let mut flood = Flood::default();
        let start = Instant::now();
        flood.judge(&POLICY, start, OVER);
        flood.judge(&POLICY, start, OVER);
        flood.judge(&POLICY, start, OVER);
        // The window passes: the count starts over.
        let later = start + Duration::from_secs(11);
        assert!(matches!(flood.judge(&POLICY, later, OVER), Verdict::RateLimited(_)), "waited: no strike");
        assert!(matches!(flood.judge(&POLICY, later, OVER), Verdict::RateLimited(_)));
        assert!(matches!(flood.judge(&POLICY, later, OVER), Verdict::RateLimited(_)));
        assert!(matches!(flood.judge(&POLICY, later, OVER), Verdict::Muted(_)));
        let after_mute = later + Duration::from_secs(61);
        assert_eq!(flood.judge(&POLICY, after_mute, Ok(())), Verdict::Allow);
    }
}
