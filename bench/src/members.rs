//! Rooms full of members, and the workloads that need only members: memory per idle member,
//! and how long one message takes to reach everyone in a big room.

use crate::{
    peer::{Peer, Running},
    stamp, ws,
};
use std::{
    cell::RefCell,
    rc::Rc,
    time::{Duration, Instant},
};
use tokio::task::JoinHandle;

/// What every member's reader adds to.
#[derive(Default)]
pub struct Tally {
    /// Text frames of any kind (join notices included).
    pub frames: u64,
    pub delivered: u64,
    /// The payload bytes of the stamped frames (what each server's frames weigh, told apart).
    pub delivered_bytes: u64,
    /// Send → receive, microseconds.
    pub latencies: Vec<u32>,
    /// When the latest stamped frame arrived (microseconds on the generator's clock).
    pub last_at: u64,
}

pub type Shared = Rc<RefCell<Tally>>;

/// Connected members; their connections close when this is dropped.
pub struct Members {
    pub writers: Vec<ws::Writer>,
    readers: Vec<JoinHandle<()>>,
    /// What every member counts into, and the clock send times are read on.
    tally: Shared,
    base: Instant,
}

impl Members {
    pub fn new(tally: &Shared, base: Instant) -> Self {
        Self { writers: Vec::new(), readers: Vec::new(), tally: tally.clone(), base }
    }

    pub fn len(&self) -> usize {
        self.readers.len()
    }

    /// Adds `count` members to `room` (member numbers from `first`), each counting what it
    /// receives.
    pub async fn join(&mut self, peer: &Peer, port: u16, room: &str, first: usize, count: usize) -> anyhow::Result<()> {
        let base = self.base;
        for n in first..first + count {
            let conn = peer.join(port, room, n).await?;
            self.writers.push(conn.writer.clone());
            let tally = self.tally.clone();
            self.readers.push(tokio::task::spawn_local(conn.reader.run(conn.writer, move |text, read_at| {
                tally.borrow_mut().frames += 1;
                if let Some(sent) = stamp(text) {
                    let mut tally = tally.borrow_mut();
                    tally.delivered += 1;
                    tally.delivered_bytes += text.len() as u64;
                    let now = read_at.saturating_duration_since(base).as_micros() as u64;
                    tally.last_at = now;
                    tally.latencies.push(u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX));
                    return None;
                }
                // Engine.IO pings ("2") want a pong ("3"); nothing else asks for an answer.
                (text == b"2").then_some(&b"3"[..])
            })));
        }
        Ok(())
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Resident memory per idle member: the slope of the server's RSS between a fifth of
/// `total` members and all of them, in `room_size` rooms, after they settle.
pub async fn idle_kib(peer: &Peer, port: u16, server: &Running, total: usize, room_size: usize) -> anyhow::Result<f64> {
    let tally = Shared::default();
    let base = Instant::now();
    let mut members = Members::new(&tally, base);
    let (mut samples, mut rooms) = (Vec::new(), Vec::new());
    for target in [total / 5, total] {
        while members.len() < target {
            let room_number = members.len() / room_size;
            if rooms.len() == room_number {
                rooms.push(peer.room(port, &format!("idle-{room_size}-{room_number}"), room_size).await?);
            }
            let count = (room_size - members.len() % room_size).min(target - members.len());
            members.join(peer, port, &rooms[room_number], members.len(), count).await?;
        }
        // Until the join notices have all arrived, then a moment for the server to give back
        // what delivering them took.
        settle(&tally, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push((members.len(), rss_kib(server.pid())?));
    }
    let ((n1, r1), (n2, r2)) = (samples[0], samples[1]);
    Ok((r2 as f64 - r1 as f64) / (n2 - n1) as f64)
}

/// One message into a room of `size`: how long until the last member has it, p50 and p99
/// over `trials` (ms).
pub async fn big_room(peer: &Peer, port: u16, size: usize, trials: usize) -> anyhow::Result<(f64, f64)> {
    let tally = Shared::default();
    let base = Instant::now();
    let room = peer.room(port, &format!("big-{size}"), size).await?;
    let mut members = Members::new(&tally, base);
    members.join(peer, port, &room, 0, size).await?;
    // Joining told everyone of everyone (in a big room, millions of frames): measure once
    // that has all arrived.
    settle(&tally, Duration::from_secs(240)).await;
    let mut times = Vec::with_capacity(trials);
    for trial in 0..trials {
        *tally.borrow_mut() = Tally::default();
        // Timed by this clock alone (one message in flight): the payload's own stamp may be
        // starred out by a room's profanity filter, which sees some digit runs as codes.
        let sent_at = base.elapsed().as_micros() as u64;
        let payload = format!("~{sent_at}~{trial}~big");
        ws::send(&members.writers[0], &peer.say(&payload)).await?;
        let started = Instant::now();
        while tally.borrow().delivered < size as u64 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let (delivered, last_at) = {
            let tally = tally.borrow();
            (tally.delivered, tally.last_at)
        };
        anyhow::ensure!(delivered == size as u64, "{delivered} of {size} members got the message");
        times.push(last_at.saturating_sub(sent_at) as f64 / 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Ok((pick(0.5), pick(0.99)))
}

/// Waits until no frame has arrived for a second (at most `limit`).
pub async fn settle(tally: &Shared, limit: Duration) {
    let started = Instant::now();
    let mut last = tally.borrow().frames;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = tally.borrow().frames;
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        }
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
