//! A connection's deadlines, in one timer: the next ping, the pong it waits for, and the
//! moment a connection that takes part in nothing is let go. Time is passed in, so the rules
//! are tested without waiting.

use crate::config::Config;
use std::time::Duration;
use tokio::time::Instant;

pub(super) struct Clock {
    ping_every: Duration,
    pong_within: Duration,
    idle_within: Duration,
    next_ping: Instant,
    pong_due: Option<Instant>,
    idle_due: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tick {
    Nothing,
    Ping,
    /// No answer to the last ping in time.
    Dead,
    /// Joined nothing, watched nothing, for too long.
    Idle,
}

impl Clock {
    pub(super) fn new(config: &Config, now: Instant) -> Self {
        Self::with(config.ping_interval, config.pong_timeout, config.idle_timeout, now)
    }

    fn with(ping_every: Duration, pong_within: Duration, idle_within: Duration, now: Instant) -> Self {
        Self {
            ping_every,
            pong_within,
            idle_within,
            next_ping: now + ping_every,
            pong_due: None,
            idle_due: Some(now + idle_within),
        }
    }

    /// When the timer should next fire.
    pub(super) fn next(&self) -> Instant {
        let heartbeat = self.pong_due.unwrap_or(self.next_ping);
        self.idle_due.map_or(heartbeat, |idle| idle.min(heartbeat))
    }

    /// Any frame proves the peer is there.
    pub(super) fn heard(&mut self, now: Instant) {
        if self.pong_due.take().is_some() {
            self.next_ping = now + self.ping_every;
        }
    }

    /// Whether the connection takes part in something (a room, the directory, the console):
    /// only a connection that does not is let go for idling.
    pub(super) fn subscribed(&mut self, subscribed: bool, now: Instant) {
        if subscribed {
            self.idle_due = None;
        } else if self.idle_due.is_none() {
            self.idle_due = Some(now + self.idle_within);
        }
    }

    pub(super) fn tick(&mut self, now: Instant) -> Tick {
        if self.idle_due.is_some_and(|due| due <= now) {
            return Tick::Idle;
        }
        match self.pong_due {
            Some(due) if due <= now => Tick::Dead,
            Some(_) => Tick::Nothing,
            None if self.next_ping <= now => {
                self.pong_due = Some(now + self.pong_within);
                Tick::Ping
            }
            None => Tick::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn clock(now: Instant) -> Clock {
        Clock::with(25 * S, 20 * S, 15 * S, now)
    }

    #[test]
    fn a_connection_that_joins_nothing_is_let_go_after_the_idle_time() {
        let start = Instant::now();
        let mut clock = clock(start);
        assert_eq!(clock.next(), start + 15 * S, "idle comes before the first ping");
        assert_eq!(clock.tick(start + 14 * S), Tick::Nothing);
        assert_eq!(clock.tick(start + 15 * S), Tick::Idle);
    }

    #[test]
    fn taking_part_stops_the_idle_countdown_and_leaving_starts_it_again() {
        let start = Instant::now();
        let mut clock = clock(start);
        clock.subscribed(true, start + 5 * S);
        assert_eq!(clock.next(), start + 25 * S, "only the heartbeat is left");
        assert_eq!(clock.tick(start + 16 * S), Tick::Nothing);
        clock.subscribed(false, start + 20 * S);
        assert_eq!(clock.next(), start + 25 * S);
        assert_eq!(clock.tick(start + 25 * S), Tick::Ping, "the heartbeat goes on meanwhile");
        assert_eq!(clock.tick(start + 34 * S), Tick::Nothing);
        assert_eq!(clock.tick(start + 35 * S), Tick::Idle);
    }

    #[test]
    fn a_ping_waits_for_an_answer_and_silence_means_dead() {
        let start = Instant::now();
        let mut clock = clock(start);
        clock.subscribed(true, start);
        assert_eq!(clock.tick(start + 24 * S), Tick::Nothing);
        assert_eq!(clock.tick(start + 25 * S), Tick::Ping);
        assert_eq!(clock.next(), start + 45 * S, "the pong's deadline");
        assert_eq!(clock.tick(start + 30 * S), Tick::Nothing, "one ping at a time");
        assert_eq!(clock.tick(start + 45 * S), Tick::Dead);
    }

    #[test]
    fn any_frame_answers_a_ping_and_schedules_the_next() {
        let start = Instant::now();
        let mut clock = clock(start);
        clock.subscribed(true, start);
        assert_eq!(clock.tick(start + 25 * S), Tick::Ping);
        clock.heard(start + 26 * S);
        assert_eq!(clock.next(), start + 51 * S);
        assert_eq!(clock.tick(start + 46 * S), Tick::Nothing, "no longer waiting for that pong");
        assert_eq!(clock.tick(start + 51 * S), Tick::Ping);
    }
}
