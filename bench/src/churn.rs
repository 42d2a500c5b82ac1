//! Churn: people arriving and leaving while a room's conversation goes on. [`WORKERS`] clients,
//! each in a loop, connect, join one of the churn rooms, and leave (closing the connection),
//! while the 100-byte fan-out load runs beside them at a fixed rate; how many such visits a
//! second the server takes, and what it did to the conversation meanwhile.

use crate::{
    Load, Settings, Step, fill_rooms,
    members::Shared,
    peer::{Peer, Protocol},
};
use anyhow::Context;
use std::{cell::Cell, time::Instant};

/// Clients arriving and leaving at once.
pub const WORKERS: usize = 32;
/// Rooms they arrive in (created up front where the server needs that).
const ROOMS: usize = 8;
/// Member numbers of churning clients start here, far from the fan-out's members.
const FIRST_MEMBER: usize = 1_000_000;

#[derive(Clone, Debug)]
pub struct Churn {
    pub per_second: f64,
    /// Visits per CPU-second of the server (the fan-out beside them included: at half
    /// saturation it is a small share).
    pub per_cpu_second: f64,
    /// Visits that failed (refused, or the connection broke).
    pub failed: u64,
    /// The fan-out load that ran beside the churn.
    pub beside: Step,
}

/// Runs the churn for one step beside a fan-out of `rate` messages a second.
pub async fn churn(peer: &Peer, settings: &Settings, rate: u64) -> anyhow::Result<Churn> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = peer.start(port).await?;
    let tally = Shared::default();
    let base = Instant::now();
    let (members, senders) = fill_rooms(peer, port, settings, &tally, base).await?;
    let mut rooms = Vec::with_capacity(ROOMS);
    for r in 0..ROOMS {
        rooms.push(peer.room(port, &format!("churn-{r}"), 1_000).await?);
    }
    let load = Load { peer, senders: &senders, tally: &tally, pids: vec![server.pid()], base, payload: 100 };
    let (visits, failed) = (Cell::new(0_u64), Cell::new(0_u64));
    let started = Instant::now();
    let visitors = futures_util::future::join_all((0..WORKERS).map(|worker| {
        let (rooms, visits, failed) = (&rooms, &visits, &failed);
        async move {
            let mut n = 0;
            while started.elapsed() < settings.step {
                let member = FIRST_MEMBER + worker * 1_000_000 + n;
                n += 1;
                match peer.join(port, &rooms[worker % ROOMS], member).await {
                    // Dropped: the connection closes, and the member leaves.
                    Ok(_joined) => visits.set(visits.get() + 1),
                    Err(_) => failed.set(failed.get() + 1),
                }
            }
            started.elapsed()
        }
    }));
    let (beside, took) = tokio::join!(load.offer(rate, settings), visitors);
    let elapsed = took.into_iter().max().unwrap_or(settings.step);
    if matches!(peer.protocol, Protocol::Burner) {
        log_kept_up(port).await.with_context(|| format!("after {} visits", visits.get()))?;
    }
    drop(members);
    drop(server);
    let beside = beside?;
    Ok(Churn {
        per_second: visits.get() as f64 / elapsed.as_secs_f64(),
        per_cpu_second: visits.get() as f64 / beside.server_cpu.max(0.01),
        failed: failed.get(),
        beside,
    })
}

/// Burner logs every visit (its connection log, for moderators); visits are only counted as
/// taken if that log took them too: none dropped, and nothing left waiting a moment later.
async fn log_kept_up(port: u16) -> anyhow::Result<()> {
    let mut waiting = u64::MAX;
    for _ in 0..50 {
        let response = crate::http(port, "GET", "/healthz", "").await?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let health: serde_json::Value = serde_json::from_str(body)?;
        let dropped = health["connection_log"]["dropped"].as_u64().unwrap_or(u64::MAX);
        anyhow::ensure!(dropped == 0, "the connection log dropped {dropped} events");
        waiting = health["connection_log"]["waiting"].as_u64().unwrap_or(u64::MAX);
        if waiting == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the connection log still had {waiting} events waiting 5 s after the churn")
}
