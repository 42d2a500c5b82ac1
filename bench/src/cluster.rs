//! `burner-bench --cluster`: cluster mode measured. Everything on the server side (the nodes and
//! Redis) shares core 0 and the generator has core 1, as in the one-process runs, so the figures
//! per CPU-second count Redis's work too.
//!
//! - **The Redis hop**: rooms of one sender and four receivers; the sender on node A, the
//!   receivers on node B (or on A as well), at 1 000 and 10 000 messages a second in;
//!   send→receive p50 and p99 beside the same load on one process with no Redis.
//! - **Cluster throughput**: two nodes and one Redis; rooms of 100 with half the members on each
//!   node and senders on both; the fan-out stepped up to saturation, with deliveries per
//!   CPU-second of both nodes and Redis together, for Burner and for Socket.IO with its Redis
//!   adapter (npm `@socket.io/redis-adapter`) against the same kind of redis-server.

use crate::{
    Fanout, Load, ROOM_SIZE, Row, SENDERS_PER_ROOM, Settings, Step, fanout_table,
    members::{self, Members, Shared},
    peer::{Peer, Protocol, Running},
};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const HOP_ROOMS: usize = 100;
const HOP_RECEIVERS: usize = 4;
const HOP_RATES: [u64; 2] = [1_000, 10_000];
/// The hop's target: what crossing Redis to another node may add to p99.
const HOP_TARGET_MS: f64 = 1.0;

/// A redis-server of the benchmark's own, on core 0, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start() -> anyhow::Result<Self> {
        let port = crate::free_port()?;
        let child = Command::new("taskset")
            .args(["-c", "0", "redis-server", "--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let redis = Self { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("redis-server did not start (is it installed?)")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nodes of one peer sharing one fresh Redis.
struct Cluster {
    nodes: Vec<(u16, Running)>,
    redis: Redis,
}

impl Cluster {
    async fn start(peer: &Peer, count: usize) -> anyhow::Result<Self> {
        let redis = Redis::start().await?;
        let mut nodes = Vec::with_capacity(count);
        for n in 0..count {
            let node =
                peer.clustered(&redis.url(), n).ok_or_else(|| anyhow::anyhow!("{} has no cluster mode", peer.name))?;
            let port = crate::free_port()?;
            nodes.push((port, node.start(port).await?));
        }
        Ok(Self { nodes, redis })
    }

    fn port(&self, node: usize) -> u16 {
        self.nodes[node].0
    }

    /// Every process doing the server's work: the nodes and Redis.
    fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|(_, node)| node.pid()).chain([self.redis.child.id()]).collect()
    }
}

/// Rooms made through the node at `port`, once every node has heard of them.
async fn rooms(peer: &Peer, port: u16, prefix: &str, count: usize, limit: usize) -> anyhow::Result<Vec<String>> {
    let mut slugs = Vec::with_capacity(count);
    for r in 0..count {
        slugs.push(peer.room(port, &format!("{prefix}-{r}"), limit).await?);
    }
    if peer.protocol == Protocol::Burner {
        // A room made on one node reaches the others through Redis in about a millisecond.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(slugs)
}

/// One path of the hop measured at each rate.
struct Hop {
    path: &'static str,
    steps: Vec<Step>,
}

impl Hop {
    fn lost(step: &Step) -> u64 {
        (step.sent * HOP_RECEIVERS as u64).saturating_sub(step.delivered)
    }
}

/// The hop's rooms: senders in through `sender_port`, receivers through `receiver_port`.
async fn hop(
    peer: &Peer,
    (sender_port, receiver_port): (u16, u16),
    pids: Vec<u32>,
    first_member: usize,
    rates: &[u64],
    settings: &Settings,
) -> anyhow::Result<Vec<Step>> {
    let (tally, own) = (Shared::default(), Shared::default());
    let base = Instant::now();
    // The senders hear their own messages back: counted apart, so only the receivers' count.
    let (mut senders, mut receivers) = (Members::new(&own, base), Members::new(&tally, base));
    let prefix = format!("hop-{first_member}");
    for (r, room) in rooms(peer, sender_port, &prefix, HOP_ROOMS, 1 + HOP_RECEIVERS).await?.iter().enumerate() {
        let first = first_member + r * (1 + HOP_RECEIVERS);
        senders.join(peer, sender_port, room, first, 1).await?;
        receivers.join(peer, receiver_port, room, first + 1, HOP_RECEIVERS).await?;
    }
    members::settle(&tally, Duration::from_secs(10)).await;
    let load = Load { peer, senders: &senders.writers, tally: &tally, pids, base, payload: 100 };
    if !settings.smoke {
        load.offer(rates[0], &Settings { step: Duration::from_secs(1), ..*settings }).await?;
    }
    let mut steps = Vec::with_capacity(rates.len());
    for &rate in rates {
        let step = load.offer(rate, settings).await?;
        let busy: Vec<String> = step.cpu_per_process.iter().map(|cpu| format!("{cpu:.2}")).collect();
        println!(
            "  {rate:>6} msg/s in: p50 {:.2} ms, p99 {:.2} ms, lost {}; CPU-s per process (nodes, then Redis): {}",
            step.p50,
            step.p99,
            Hop::lost(&step),
            busy.join(", ")
        );
        steps.push(step);
        members::settle(&tally, Duration::from_secs(10)).await;
    }
    Ok(steps)
}

/// The Redis hop, Burner only: one process without Redis, then two nodes with the receivers
/// on the sender's node and on the other one.
async fn hops(peer: &Peer, settings: &Settings) -> anyhow::Result<Vec<Hop>> {
    let rates: &[u64] = if settings.smoke { &[settings.first_rate] } else { &HOP_RATES };
    println!("== the Redis hop");
    let alone = {
        let port = crate::free_port()?;
        let server = peer.start(port).await?;
        println!(" one process, no Redis");
        hop(peer, (port, port), vec![server.pid()], 0, rates, settings).await?
    };
    let cluster = Cluster::start(peer, 2).await?;
    let (a, b) = (cluster.port(0), cluster.port(1));
    println!(" two nodes: sender and receivers on A");
    let same = hop(peer, (a, a), cluster.pids(), 1_000, rates, settings).await?;
    println!(" two nodes: sender on A, receivers on B");
    let across = hop(peer, (a, b), cluster.pids(), 2_000, rates, settings).await?;
    Ok(vec![
        Hop { path: "one process, no Redis", steps: alone },
        Hop { path: "two nodes: sender and receivers on node A", steps: same },
        Hop { path: "two nodes: sender on A, receivers on B", steps: across },
    ])
}

/// Two nodes and Redis, rooms of 100 with half their members on each node, senders on both.
async fn throughput(peer: &Peer, settings: &Settings) -> anyhow::Result<Fanout> {
    println!("== {}: two nodes and Redis", peer.name);
    let cluster = Cluster::start(peer, 2).await?;
    let (a, b) = (cluster.port(0), cluster.port(1));
    let tally = Shared::default();
    let base = Instant::now();
    let mut members = Members::new(&tally, base);
    let mut senders = Vec::new();
    let half = ROOM_SIZE / 2;
    for (r, room) in rooms(peer, a, "cluster", settings.rooms, ROOM_SIZE).await?.iter().enumerate() {
        let first = r * ROOM_SIZE;
        members.join(peer, a, room, first, half).await?;
        members.join(peer, b, room, first + half, ROOM_SIZE - half).await?;
        for node_first in [first, first + half] {
            senders.extend(members.writers[node_first..node_first + SENDERS_PER_ROOM / 2].iter().cloned());
        }
    }
    members::settle(&tally, Duration::from_secs(20)).await;
    let load = Load { peer, senders: &senders, tally: &tally, pids: cluster.pids(), base, payload: 100 };
    crate::saturate(&load, settings).await
}

/// Every cluster measurement, as the section of docs/BENCHMARKS.md it becomes.
pub async fn run(
    peers: &[Peer],
    settings: &Settings,
    quick: bool,
    hop: bool,
    clustered: bool,
) -> anyhow::Result<String> {
    let burner = peers.iter().find(|p| p.protocol == Protocol::Burner);
    let hops = match burner {
        Some(burner) if hop => hops(burner, settings).await?,
        _ => Vec::new(),
    };
    let mut rows = Vec::new();
    for peer in peers.iter().filter(|p| clustered && p.clustered("redis://127.0.0.1:1", 0).is_some()) {
        let fanout = throughput(peer, settings).await?;
        rows.push(Row { name: peer.name, fanout: vec![fanout], ..Row::default() });
    }
    if settings.smoke {
        anyhow::ensure!(
            hops.iter().all(|h| h.steps.iter().all(|s| Hop::lost(s) == 0)),
            "the hop lost messages in the smoke run"
        );
        // The throughput steps were judged in `saturate`: a smoke step fails on a lost message, not
        // on its latency on a machine busy with other tests (a p99 of 50.6 ms at 20 msg/s ended one
        // CI run here).
    }
    let step = format!("{:.1} s", settings.step.as_secs_f64());
    let mut out = String::new();
    if !hops.is_empty() {
        out.push_str(&format!(
            "The Redis hop: {HOP_ROOMS} rooms of 1 sender and {HOP_RECEIVERS} receivers, 100-byte messages, {step} per rate; \
             every server process and Redis on one core, the generator on the other\n\n"
        ));
        out.push_str(
            "| path | messages/s in | p50 | p99 | p99 added to one process | lost |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for hop in &hops {
            for (at, step) in hop.steps.iter().enumerate() {
                let added = hops[0].steps.get(at).map_or("—".into(), |alone| {
                    let added = step.p99 - alone.p99;
                    let mark = if added <= HOP_TARGET_MS { "" } else { " (over the 1 ms target)" };
                    format!("{added:+.2} ms{mark}")
                });
                out.push_str(&format!(
                    "| {} | {} | {:.2} ms | {:.2} ms | {added} | {} |\n",
                    hop.path,
                    step.rate,
                    step.p50,
                    step.p99,
                    Hop::lost(step)
                ));
            }
        }
        out.push('\n');
    }
    if !rows.is_empty() {
        let title = format!(
            "Cluster throughput: two nodes and one redis-server, {} rooms of {ROOM_SIZE} with half the members on each \
             node, 100-byte messages, {SENDERS_PER_ROOM} senders per room (half on each node), {step} steps{}; \
             per CPU-second of both nodes and Redis together",
            settings.rooms,
            if quick { " (quick run)" } else { "" }
        );
        out.push_str(&fanout_table(&rows, &title, 100, settings.step));
    }
    Ok(out)
}
