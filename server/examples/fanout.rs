//! Fan-out throughput: starts the release `burner` pinned to one core (`taskset -c 0`), fills
//! rooms of 100 members over real WebSockets, and offers messages at fixed rates (open loop: the
//! senders keep their schedule whatever the server does, so latency is not hidden by waiting).
//! Every member counts what it receives; each message carries its send time and number, so
//! losses and latency are measured, not assumed. Per step it prints deliveries/s, the server's
//! CPU seconds (from /proc) and deliveries per server CPU-second, send→receive p50/p99, and how
//! busy this generator was (when it is near 100 %, the figures are the generator's, not the
//! server's).
//!
//! taskset -c 1 cargo run --release -p server --example fanout -- [ROOMS] [RATES…]
//! e.g. `… -- 10 1000 2000 4000` (messages per second offered across all rooms; ×100 deliveries).
//! `BURNER_BIN` picks the binary (default: the `burner` next to this example). Results are
//! recorded in docs/BENCHMARKS.md.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

mod support;

use futures_util::{SinkExt, StreamExt};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use support::{Server, Socket, cpu_seconds};
use tokio_tungstenite::tungstenite::Message;

const ROOM_SIZE: usize = 100;
/// Members per room that also send (the rest only read).
const SENDERS_PER_ROOM: usize = 4;
const STEP: Duration = Duration::from_secs(5);
/// Time for what is in flight to arrive before a step is counted.
const DRAIN: Duration = Duration::from_secs(2);
/// Message text length, as in the peers' comparison: 100 bytes.
const TEXT_BYTES: usize = 100;

/// What every reader adds to.
#[derive(Default)]
struct Tally {
    delivered: AtomicU64,
    /// Latencies in microseconds, sampled (every message of one reader per room).
    latencies: Mutex<Vec<u32>>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rooms: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10);
    let mut rates: Vec<u64> = args.map(|n| n.parse()).collect::<Result<_, _>>()?;
    if rates.is_empty() {
        rates = vec![1_000, 2_000, 4_000];
    }
    let server = Server::start(Some(0), &[]).await?;
    measure(&server, rooms, &rates).await
}

async fn measure(server: &Server, rooms: usize, rates: &[u64]) -> anyhow::Result<()> {
    let pid = server.pid();
    let base = Instant::now();
    let tally = Arc::new(Tally::default());
    let mut senders = Vec::new();
    for r in 0..rooms {
        let slug = server.create_room(&format!("fanout {r}"), ROOM_SIZE).await?;
        for m in 0..ROOM_SIZE {
            let ws = server.join(&slug, r * ROOM_SIZE + m).await?;
            let (sink, stream) = ws.split();
            if m < SENDERS_PER_ROOM {
                senders.push(sink);
            } else {
                drop(sink);
            }
            tokio::spawn(read(stream, tally.clone(), base, m == ROOM_SIZE - 1));
        }
    }
    println!("{rooms} rooms of {ROOM_SIZE}, {} senders, {TEXT_BYTES}-byte messages; server on core 0", senders.len());
    println!(
        "offered msg/s  deliveries/s  expected   lost  server CPU  deliveries/CPU-s   p50 ms   p99 ms  generator CPU"
    );
    let senders = Arc::new(tokio::sync::Mutex::new(senders));
    for &rate in rates {
        tally.delivered.store(0, Ordering::Relaxed);
        tally.latencies.lock().map(|mut l| l.clear()).ok();
        let (cpu0, own0, t0) = (cpu_seconds(pid)?, own_cpu_seconds()?, Instant::now());
        let sent = offer(&senders, rate, base).await?;
        tokio::time::sleep(DRAIN).await;
        let (cpu1, own1, elapsed) = (cpu_seconds(pid)?, own_cpu_seconds()?, t0.elapsed());
        let delivered = tally.delivered.load(Ordering::Relaxed);
        let expected = sent * ROOM_SIZE as u64;
        let server_cpu = cpu1 - cpu0;
        let mut latencies = tally.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        latencies.sort_unstable();
        let pick =
            |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)));
        let ms = |v: Option<&u32>| v.map_or(f64::NAN, |us| f64::from(*us) / 1000.0);
        println!(
            "{rate:>13}  {:>12.0}  {expected:>8}  {:>5}  {server_cpu:>8.2} s  {:>16.0}  {:>7.2}  {:>7.2}  {:>11.0} %",
            delivered as f64 / STEP.as_secs_f64(),
            expected.saturating_sub(delivered),
            delivered as f64 / server_cpu.max(0.001),
            ms(pick(0.5)),
            ms(pick(0.99)),
            (own1 - own0) / elapsed.as_secs_f64() * 100.0,
        );
    }
    Ok(())
}

/// Sends `rate` messages a second, spread over the senders, for one step; how many went out.
async fn offer(senders: &tokio::sync::Mutex<Vec<SplitSink>>, rate: u64, base: Instant) -> anyhow::Result<u64> {
    let mut senders = senders.lock().await;
    let tick = Duration::from_millis(10);
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0);
    let mut interval = tokio::time::interval(tick);
    let started = Instant::now();
    let (mut owed, mut sent, mut next) = (0.0, 0_u64, 0_usize);
    let count = senders.len().max(1);
    while started.elapsed() < STEP {
        interval.tick().await;
        owed += per_tick;
        while owed >= 1.0 {
            let sender = &mut senders[next % count];
            next += 1;
            let stamp = base.elapsed().as_micros();
            let mut text = format!("t{stamp} n{sent} ");
            text.extend(std::iter::repeat_n('x', TEXT_BYTES.saturating_sub(text.len())));
            let frame = format!(r#"{{"type":"send_message","text":"{text}"}}"#);
            sender.feed(Message::text(frame)).await?;
            sent += 1;
            owed -= 1.0;
        }
        for sender in senders.iter_mut() {
            sender.flush().await?;
        }
    }
    Ok(sent)
}

type SplitSink = futures_util::stream::SplitSink<Socket, Message>;

/// Counts every `message_posted`; the last member of each room also records latencies.
async fn read(mut stream: futures_util::stream::SplitStream<Socket>, tally: Arc<Tally>, base: Instant, sample: bool) {
    let mut local = Vec::new();
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else { continue };
        let Some(at) = text.find("\"text\":\"t") else { continue };
        tally.delivered.fetch_add(1, Ordering::Relaxed);
        if sample {
            let digits = &text[at + 9..];
            let end = digits.find(' ').unwrap_or(0);
            if let Ok(sent) = digits[..end].parse::<u128>() {
                let now = base.elapsed().as_micros();
                local.push(u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX));
                if local.len() >= 64
                    && let Ok(mut all) = tally.latencies.lock()
                {
                    all.append(&mut local);
                }
            }
        }
    }
}

fn own_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds(std::process::id())
}
