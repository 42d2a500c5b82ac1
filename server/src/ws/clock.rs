//! A connection's deadlines, in one timer: the next ping, the pong it waits for, and the
//! moment a connection that takes part in nothing is let go. Time is passed in, so the rules
//! are tested without waiting.

use crate::config::Config;
use tokio::time::Instant;

/// The deadlines only: the spans they are set from are read from the config when needed (a
/// socket keeps its clock for its whole life, so it holds no copy of them).
pub(super) struct Clock {
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
        Self { next_ping: now + config.ping_interval, pong_due: None, idle_due: Some(now + config.idle_timeout) }
    }

    /// When the timer should next fire.
    pub(super) fn next(&self) -> Instant {
        let heartbeat = self.pong_due.unwrap_or(self.next_ping);
        self.idle_due.map_or(heartbeat, |idle| idle.min(heartbeat))
    }

    /// Any frame proves the peer is there.
    pub(super) fn heard(&mut self, now: Instant, config: &Config) {
        if self.pong_due.take().is_some() {
            self.next_ping = now + config.ping_interval;
        }
    }

    /// Whether the connection takes part in something (a room, the directory, the console):
    /// only a connection that does not is let go for idling.
    pub(super) fn subscribed(&mut self, subscribed: bool, now: Instant, config: &Config) {
        if subscribed {
            self.idle_due = None;
        } else if self.idle_due.is_none() {
            self.idle_due = Some(now + config.idle_timeout);
        }
    }

    pub(super) fn tick(&mut self, now: Instant, config: &Config) -> Tick {
        if self.idle_due.is_some_and(|due| due <= now) {
            return Tick::Idle;
        }
        match self.pong_due {
            Some(due) if due <= now => Tick::Dead,
            Some(_) => Tick::Nothing,
            None if self.next_ping <= now => {
                self.pong_due = Some(now + config.pong_timeout);
                Tick::Ping
            }
            None => Tick::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    fn config() -> Config {
        Config { ping_interval: 25 * S, pong_timeout: 20 * S, idle_timeout: 15 * S, ..Config::defaults() }
    }

    #[test]
    fn a_connection_that_joins_nothing_is_let_go_after_the_idle_time() {
        let start = Instant::now();
        let config = config();
        let mut clock = Clock::new(&config, start);
        assert_eq!(clock.next(), start + 15 * S, "idle comes before the first ping");
        assert_eq!(clock.tick(start + 14 * S, &config), Tick::Nothing);
        assert_eq!(clock.tick(start + 15 * S, &config), Tick::Idle);
    }

    #[test]
    fn taking_part_stops_the_idle_countdown_and_leaving_starts_it_again() {
        let start = Instant::now();
        let config = config();
        let mut clock = Clock::new(&config, start);
        clock.subscribed(true, start + 5 * S, &config);
        assert_eq!(clock.next(), start + 25 * S, "only the heartbeat is left");
        assert_eq!(clock.tick(start + 16 * S, &config), Tick::Nothing);
        clock.subscribed(false, start + 20 * S, &config);
        assert_eq!(clock.next(), start + 25 * S);
        assert_eq!(clock.tick(start + 25 * S, &config), Tick::Ping, "the heartbeat goes on meanwhile");
        assert_eq!(clock.tick(start + 34 * S, &config), Tick::Nothing);
        assert_eq!(clock.tick(start + 35 * S, &config), Tick::Idle);
    }

    #[test]
    fn a_ping_waits_for_an_answer_and_silence_means_dead() {
        let start = Instant::now();
        let config = config();
        let mut clock = Clock::new(&config, start);
        clock.subscribed(true, start, &config);
        assert_eq!(clock.tick(start + 24 * S, &config), Tick::Nothing);
        assert_eq!(clock.tick(start + 25 * S, &config), Tick::Ping);
        assert_eq!(clock.next(), start + 45 * S, "the pong's deadline");
        assert_eq!(clock.tick(start + 30 * S, &config), Tick::Nothing, "one ping at a time");
        assert_eq!(clock.tick(start + 45 * S, &config), Tick::Dead);
    }

    #[test]
    fn any_frame_answers_a_ping_and_schedules_the_next() {
        let start = Instant::now();
        let config = config();
        let mut clock = Clock::new(&config, start);
        clock.subscribed(true, start, &config);
        assert_eq!(clock.tick(start + 25 * S, &config), Tick::Ping);
        clock.heard(start + 26 * S, &config);
        assert_eq!(clock.next(), start + 51 * S);
        assert_eq!(clock.tick(start + 46 * S, &config), Tick::Nothing, "no longer waiting for that pong");
        assert_eq!(clock.tick(start + 51 * S, &config), Tick::Ping);
    }
}
