//! `burner-bench`: Burner and the servers people would otherwise run, measured side by side in
//! one run by one independent generator. Each server is pinned to core 0 (run this generator
//! under `taskset -c 1`); its CPU seconds come from /proc. Open loop: senders keep a fixed
//! schedule whatever the server does, so latency is free of coordinated omission. Each payload
//! carries its send time and number; what does not arrive is counted as lost.
//!
//! burner-bench [--quick | --smoke] [--only NAME[,NAME…]] [--workloads fanout,fanout1k,idle,big,churn,paired]
//!              [--cluster [--workloads hop,throughput]] [--write FILE] [--rate MSGS [--rooms N]]
//!
//! Workloads (per server): fan-out in rooms of 100 with 100-byte and 1 KB messages, offered
//! rate doubled until p99 passes 50 ms or a message is lost (saturation: the last step that
//! passed; a step that narrowly missed on latency is run once more; in the full run the gap to
//! the step that failed is then halved twice on a fresh server), then latency at half that
//! rate, on a fresh server with its rooms filled again; memory per idle member; one message into a big room; churn (connect + join + leave, as
//! fast as 32 clients can, while the 100-byte fan-out runs at half saturation). Then Burner and Bun.serve at
//! equal load, paired (`paired`: all filled at once, each rate run on one after the other,
//! several rounds; Bun.serve twice, sending messages verbatim and sending Burner's frames).
//! See `scripts/bench.sh` (`make bench`). `--cluster` measures cluster
//! mode instead (see `cluster`; `make bench-cluster`). `--rate` offers the fan-out at that one rate
//! (messages a second) instead of stepping it up, in `--rooms` rooms: the A/B comparison of two
//! builds of one server at equal load (`BENCH_TARGET` picks the build).

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

mod churn;
mod cluster;
mod members;
mod paired;
mod peer;
mod ws;

use members::{Members, Shared, Tally};
use peer::{Paths, Peer};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOM_SIZE: usize = 100;
const SENDERS_PER_ROOM: usize = 4;
/// The message sizes the fan-out is measured with.
const PAYLOADS: [(&str, usize); 2] = [("fanout", 100), ("fanout1k", 1_000)];
/// A step passes with p99 below this and nothing lost.
const P99_LIMIT_MS: f64 = 50.0;
/// Above this the generator's own core, not the server, may be what limits a step.
const GENERATOR_LIMIT: f64 = 0.9;

#[derive(Clone, Copy)]
struct Settings {
    rooms: usize,
    /// Stop after the first step (the smoke run in `make test`: everything builds, starts and
    /// delivers).
    smoke: bool,
    step: Duration,
    /// How long a step waits after its last send for what is still on its way.
    drain: Duration,
    /// The drain ends once every delivery is in (the smoke run). A measured step waits it out
    /// in full, so work a server puts off (a collector, a flush) is inside its CPU figure.
    drain_ends_early: bool,
    first_rate: u64,
    max_rate: u64,
    /// Idle members to measure memory with (in rooms of 100, and in one room of this size
    /// at most 1 000), and the big rooms to reach.
    idle: usize,
    big_rooms: &'static [usize],
    big_trials: usize,
    /// The rates (messages a second) Burner and Bun.serve are paired at, and how many rounds.
    paired_rates: &'static [u64],
    paired_rounds: usize,
    /// How many times the gap between the climb's last rate that passed and the one that failed
    /// is halved ([`refine`]).
    refinements: u32,
}

impl Settings {
    /// A one-second step the figures do not see, that proves only that nothing is lost (JIT
    /// compilers, first allocations, a fresh server's warm-up).
    fn warm_up(&self) -> Self {
        Self { step: Duration::from_secs(1), smoke: true, ..*self }
    }
}

/// What one step of offered load came to.
#[derive(Clone, Debug, Default)]
struct Step {
    rate: u64,
    sent: u64,
    delivered: u64,
    /// The payload bytes of those deliveries.
    delivered_bytes: u64,
    server_cpu: f64,
    /// The part of `server_cpu` spent in the servers' own code, not the kernel's.
    server_user: f64,
    /// Each server process's share of `server_cpu` (a cluster's nodes, then Redis).
    cpu_per_process: Vec<f64>,
    generator_busy: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Step {
    fn lost(&self) -> u64 {
        (self.sent * ROOM_SIZE as u64).saturating_sub(self.delivered)
    }

    fn passed(&self) -> bool {
        self.lost() == 0 && self.p99 < P99_LIMIT_MS
    }

    fn per_second(&self, step: Duration) -> f64 {
        self.delivered as f64 / step.as_secs_f64()
    }

    /// What one delivery's frame weighs (its payload), on average.
    fn bytes_per_delivery(&self) -> f64 {
        self.delivered_bytes as f64 / self.delivered.max(1) as f64
    }

    fn per_cpu_second(&self) -> f64 {
        self.delivered as f64 / self.server_cpu.max(0.01)
    }

    /// The server's own code's time per delivery, in nanoseconds (the rest of its CPU time is
    /// the kernel's: the same for every server per byte sent, so this is where they differ).
    fn user_ns_per_delivery(&self) -> f64 {
        self.server_user * 1e9 / self.delivered.max(1) as f64
    }
}

/// One server's line in the table.
/// p50 and p99 (ms) until the last member of a big room has a message, or why not.
type BigRoom = Result<(f64, f64), String>;

/// The fan-out at one message size.
#[derive(Default)]
struct Fanout {
    payload: usize,
    saturation: Option<Step>,
    half: Option<Step>,
    generator_bound: bool,
    error: Option<String>,
}

#[derive(Default)]
struct Row {
    name: &'static str,
    fanout: Vec<Fanout>,
    /// Connect + join + leave per second, with the fan-out it ran beside.
    churn: Option<Result<churn::Churn, String>>,
    /// KiB per idle joined member: in rooms of 100, in one room of 1 000.
    idle_100: Option<Result<f64, String>>,
    idle_1000: Option<Result<f64, String>>,
    /// Time until the last member of a big room has one message: (size, p50, p99 ms).
    big: Vec<(usize, BigRoom)>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut quick, mut smoke, mut only, mut write) = (false, false, None::<Vec<String>>, None::<PathBuf>);
    let (mut clustered, mut args_named_workloads) = (false, false);
    let (mut fixed_rate, mut rooms) = (None::<u64>, None::<usize>);
    let mut workloads: Vec<String> =
        ["fanout", "fanout1k", "idle", "big", "churn", "paired"].into_iter().map(str::to_owned).collect();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--smoke" => smoke = true,
            "--cluster" => clustered = true,
            "--only" => only = args.next().map(|list| list.split(',').map(str::to_lowercase).collect()),
            "--write" => write = args.next().map(PathBuf::from),
            "--rate" => fixed_rate = Some(number(args.next(), "--rate")?),
            "--rooms" => rooms = Some(number(args.next(), "--rooms")?),
            "--workloads" => {
                args_named_workloads = true;
                workloads = args.next().map(|list| list.split(',').map(str::to_owned).collect()).unwrap_or_default();
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    // Rates start low enough for the slowest peer (Flask-SocketIO: a few thousand deliveries a
    // second) and double.
    let settings = if smoke {
        Settings {
            rooms: 1,
            smoke,
            step: Duration::from_millis(500),
            drain: Duration::from_secs(1),
            drain_ends_early: true,
            first_rate: 20,
            max_rate: 20,
            idle: 0,
            big_rooms: &[],
            big_trials: 0,
            paired_rates: &[20],
            paired_rounds: 1,
            refinements: 0,
        }
    } else if quick {
        Settings {
            rooms: 2,
            smoke,
            step: Duration::from_secs(1),
            drain: Duration::from_millis(250),
            drain_ends_early: false,
            first_rate: 100,
            max_rate: 25_600,
            idle: 500,
            big_rooms: &[],
            big_trials: 0,
            paired_rates: &[3_200],
            paired_rounds: 2,
            refinements: 0,
        }
    } else {
        Settings {
            rooms: 10,
            smoke,
            step: Duration::from_secs(5),
            drain: Duration::from_secs(2),
            drain_ends_early: false,
            first_rate: 25,
            max_rate: 51_200,
            idle: 2_000,
            big_rooms: &[1_000, 5_000],
            big_trials: 50,
            paired_rates: &[800, 1_600, 3_200, 6_400, 12_800],
            paired_rounds: 3,
            refinements: 2,
        }
    };
    // The quick run (under 3 minutes for all six servers) measures the fan-out with 100-byte
    // messages only, unless told otherwise (its settings above have no big room either).
    if quick && !args_named_workloads {
        workloads.retain(|w| w != "fanout1k");
    }
    let mut settings = settings;
    if let Some(rate) = fixed_rate {
        (settings.first_rate, settings.max_rate) = (rate, rate);
    }
    if let Some(rooms) = rooms {
        settings.rooms = rooms.max(1);
    }
    let root = std::env::var("BURNER_ROOT").map(PathBuf::from).unwrap_or_else(|_| ".".into());
    let paths = Paths {
        target: std::env::var("BENCH_TARGET").map(PathBuf::from).unwrap_or_else(|_| root.join("target/release")),
        peers: root.join("bench/peers"),
        venv: std::env::var("BENCH_VENV").map(PathBuf::from).unwrap_or_else(|_| root.join(".venv")),
    };
    let data = std::env::temp_dir().join(format!("burner-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let peers: Vec<Peer> = Peer::all(&paths, &data)
        .into_iter()
        .filter(|peer| only.as_ref().is_none_or(|only| only.iter().any(|o| peer.name.to_lowercase().contains(o))))
        .collect();
    if clustered {
        let chosen = |name: &str| {
            workloads.iter().any(|w| w == name) || !workloads.iter().any(|w| w == "hop" || w == "throughput")
        };
        let table =
            local.block_on(&runtime, cluster::run(&peers, &settings, quick, chosen("hop"), chosen("throughput")));
        let _ = std::fs::remove_dir_all(&data);
        let table = table?;
        println!("\n{table}");
        if let Some(file) = write {
            std::fs::write(file, table)?;
        }
        return Ok(());
    }
    let (rows, paired) = local.block_on(&runtime, async {
        let mut rows = Vec::new();
        for peer in &peers {
            println!("== {}", peer.name);
            let mut row = Row { name: peer.name, ..Row::default() };
            for (workload, payload) in PAYLOADS {
                if workloads.iter().any(|w| w == workload) {
                    row.fanout.push(measure(peer, &settings, payload).await.unwrap_or_else(|error| {
                        println!("  {payload}-byte messages: {error:#}");
                        Fanout { payload, error: Some(format!("{error:#}")), ..Fanout::default() }
                    }));
                }
            }
            if workloads.iter().any(|w| w == "churn") {
                // Beside the 100-byte fan-out at half its saturation (or a light load if that
                // was not measured).
                let rate = row
                    .fanout
                    .first()
                    .and_then(|f| f.saturation.as_ref())
                    .map_or(settings.first_rate * 4, |at| (at.rate / 2).max(1));
                let result = churn::churn(peer, &settings, rate).await.map_err(|error| format!("{error:#}"));
                println!("  churn: {result:?}");
                row.churn = Some(result);
            }
            if settings.idle > 0 && workloads.iter().any(|w| w == "idle") {
                row.idle_100 = Some(
                    with_server(peer, |port, server| async move {
                        members::idle_kib(peer, port, &server, settings.idle, ROOM_SIZE).await
                    })
                    .await,
                );
                let one_room = settings.idle.min(1_000);
                row.idle_1000 = Some(
                    with_server(peer, |port, server| async move {
                        members::idle_kib(peer, port, &server, one_room, one_room).await
                    })
                    .await,
                );
                println!(
                    "  idle member, KiB: rooms of 100 {:?}, one room of {one_room} {:?}",
                    row.idle_100, row.idle_1000
                );
            }
            let big_rooms = if workloads.iter().any(|w| w == "big") { settings.big_rooms } else { &[] };
            for &size in big_rooms {
                let result = with_server(peer, |port, server| async move {
                    let _running = server;
                    members::big_room(peer, port, size, settings.big_trials).await
                })
                .await;
                println!("  room of {size}: {result:?} (p50, p99 ms until the last member has it)");
                row.big.push((size, result));
            }
            rows.push(row);
        }
        let burner = peers.iter().find(|peer| peer.name == "Burner");
        let bun = peers.iter().find(|peer| peer.name.starts_with("Bun"));
        let paired = match (burner, bun) {
            (Some(burner), Some(bun)) if workloads.iter().any(|w| w == "paired") && fixed_rate.is_none() => {
                // Bun.serve as the targets were set and, except in the quick run (which must
                // stay within three minutes), Bun.serve sending Burner's frames.
                let mut others = vec![bun.clone()];
                if !quick {
                    others.push(Peer::bun(&paths, true));
                }
                let names: Vec<&'static str> = others.iter().map(|other| other.name).collect();
                println!("== Burner, {}, paired", names.join(", "));
                Some((names, paired::run(burner, &others, &settings).await))
            }
            _ => None,
        };
        (rows, paired)
    });
    let _ = std::fs::remove_dir_all(&data);
    let mut table = table(&rows, &settings, quick);
    if let Some((others, (paired, error))) = &paired {
        table.push_str(&paired::table(paired, others, &settings));
        if let Some(error) = error {
            table.push_str(&format!("\nEqual load, paired with {}: stopped: {error:#}\n", others.join(" and ")));
        }
    }
    println!("\n{table}");
    if let Some(file) = write {
        std::fs::write(file, table)?;
    }
    if settings.smoke {
        for row in &rows {
            if let Some(failed) = row.fanout.iter().find(|f| f.saturation.is_none()) {
                anyhow::bail!("{}: {}", row.name, failed.error.as_deref().unwrap_or("no step passed"));
            }
            if let Some(Err(error)) = &row.churn {
                anyhow::bail!("{}: churn: {error}", row.name);
            }
        }
        if let Some((others, (_, Some(error)))) = &paired {
            anyhow::bail!("Burner, {}, paired: {error:#}", others.join(", "));
        }
    }
    Ok(())
}

/// Runs `work` against a freshly started server; an error becomes the sentence in the table.
async fn with_server<T, F, Fut>(peer: &Peer, work: F) -> Result<T, String>
where
    F: FnOnce(u16, peer::Running) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let run = async {
        let (server, port) = start(peer).await?;
        tokio::time::timeout(Duration::from_secs(300), work(port, server)).await?
    };
    run.await.map_err(|error| format!("{error:#}"))
}

/// Rooms of 100 filled with members that count what they receive; the members that send.
pub(crate) async fn fill_rooms(
    peer: &Peer,
    port: u16,
    settings: &Settings,
    tally: &Shared,
    base: Instant,
) -> anyhow::Result<(Members, Vec<ws::Writer>)> {
    let mut members = Members::new(tally, base);
    let mut senders = Vec::new();
    for r in 0..settings.rooms {
        let room = peer.room(port, &format!("bench-{r}"), ROOM_SIZE).await?;
        members.join(peer, port, &room, r * ROOM_SIZE, ROOM_SIZE).await?;
        senders.extend(members.writers[r * ROOM_SIZE..r * ROOM_SIZE + SENDERS_PER_ROOM].iter().cloned());
    }
    Ok((members, senders))
}

/// Fills the rooms and steps the load of `payload`-byte messages up to saturation; then measures
/// at half of it on a fresh server with its rooms filled again. A step past saturation can leave
/// a server short of the members it closed as too slow (the half step would then deliver to
/// fewer, and look faster than it is) or busy with what it had queued.
async fn measure(peer: &Peer, settings: &Settings, payload: usize) -> anyhow::Result<Fanout> {
    println!("  {payload}-byte messages");
    let climbed = {
        let rooms = Filled::start(peer, settings).await?;
        climb(&rooms.load(peer, payload), settings).await?
    };
    let (saturation, generator_bound) = match climbed {
        Climbed { passed: Some(passed), failed_at: Some(failed_at), generator_bound } if settings.refinements > 0 => {
            let (at, bound) = refine(peer, settings, payload, passed, (failed_at, generator_bound)).await?;
            (Some(at), bound)
        }
        Climbed { passed, generator_bound, .. } => (passed, generator_bound),
    };
    let half = match &saturation {
        Some(at) if !settings.smoke => {
            let rooms = Filled::start(peer, settings).await?;
            let half = rooms.load(peer, payload).half(at.rate, settings).await?;
            print!("  (half, fresh server)");
            report(&half, settings);
            Some(half)
        }
        _ => None,
    };
    Ok(Fanout { payload, saturation, half, generator_bound, error: None })
}

/// Saturation between the last rate of the climb that passed and the one that failed, halving
/// the gap `settings.refinements` times, on a fresh server with its rooms filled again (the step
/// that failed may have closed members as too slow). Doubling alone puts a server that passes
/// 6 400 msg/s and narrowly fails 12 800 beside one that narrowly passes 12 800 at half its
/// figure. Also whether the generator was over its limit in the lowest step that failed.
async fn refine(
    peer: &Peer,
    settings: &Settings,
    payload: usize,
    passed: Step,
    (mut failed_at, mut generator_bound): (u64, bool),
) -> anyhow::Result<(Step, bool)> {
    let rooms = Filled::start(peer, settings).await?;
    let load = rooms.load(peer, payload);
    load.offer(passed.rate, &settings.warm_up()).await?;
    let mut best = passed;
    for _ in 0..settings.refinements {
        let rate = between(best.rate, failed_at);
        if rate == best.rate {
            break;
        }
        members::settle(load.tally, Duration::from_secs(20)).await;
        print!("  (between)");
        let step = step_at(&load, rate, settings).await?;
        if step.passed() {
            best = step;
        } else {
            (failed_at, generator_bound) = (rate, step.generator_busy > GENERATOR_LIMIT);
            if step.lost() > 0 {
                // Members closed as too slow: later steps would deliver to fewer.
                break;
            }
        }
    }
    Ok((best, generator_bound))
}

/// The rate halfway between one that passed and one that failed, in whole hundreds where
/// there is room for them.
fn between(passed: u64, failed: u64) -> u64 {
    let middle = passed + (failed.saturating_sub(passed)) / 2;
    let rounded = middle / 100 * 100;
    if rounded > passed { rounded } else { middle }
}

/// A freshly started server with its rooms filled. Dropping it closes the members, then stops
/// the server (fields drop in order).
struct Filled {
    /// Held for their connections: they count what they receive into `tally`.
    _members: Members,
    senders: Vec<ws::Writer>,
    tally: Shared,
    base: Instant,
    server: peer::Running,
}

impl Filled {
    async fn start(peer: &Peer, settings: &Settings) -> anyhow::Result<Self> {
        let (server, port) = start(peer).await?;
        let tally = Shared::default();
        let base = Instant::now();
        let (members, senders) = fill_rooms(peer, port, settings, &tally, base).await?;
        Ok(Self { _members: members, senders, tally, base, server })
    }

    fn load<'a>(&'a self, peer: &'a Peer, payload: usize) -> Load<'a> {
        let Self { senders, tally, base, server, .. } = self;
        Load { peer, senders, tally, pids: vec![server.pid()], base: *base, payload }
    }
}

/// The peer's server on a free loopback port.
async fn start(peer: &Peer) -> anyhow::Result<(peer::Running, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Ok((peer.start(port).await?, port))
}

/// A positive whole number given after `flag`.
fn number<T: std::str::FromStr>(value: Option<String>, flag: &str) -> anyhow::Result<T> {
    value.and_then(|value| value.parse().ok()).ok_or_else(|| anyhow::anyhow!("{flag} needs a whole number"))
}

/// Steps the load up to saturation, then measures at half of it on the same members (cluster
/// mode, whose two nodes and Redis are set up once; see `measure` for why one process starts
/// afresh).
pub(crate) async fn saturate(load: &Load<'_>, settings: &Settings) -> anyhow::Result<Fanout> {
    let Climbed { passed: saturation, generator_bound, .. } = climb(load, settings).await?;
    // What a failed step left queued must be through before the next measurement.
    members::settle(load.tally, Duration::from_secs(20)).await;
    let half = match &saturation {
        Some(at) if !settings.smoke => Some(load.offer((at.rate / 2).max(1), settings).await?),
        _ => None,
    };
    Ok(Fanout { payload: load.payload, saturation, half, generator_bound, error: None })
}

/// How a climb ended.
struct Climbed {
    /// The last step that passed.
    passed: Option<Step>,
    /// The rate of the step that failed, if one did.
    failed_at: Option<u64>,
    /// The generator used more than [`GENERATOR_LIMIT`] of its core in the last step (the one
    /// that failed, or one that passed, which then ends the climb): the figure may be the
    /// generator's limit rather than the server's.
    generator_bound: bool,
}

/// Steps the load up until a step fails.
async fn climb(load: &Load<'_>, settings: &Settings) -> anyhow::Result<Climbed> {
    // A warm-up the figures do not see (JIT compilers, first allocations).
    if !settings.smoke {
        load.offer((settings.first_rate * 4).min(settings.max_rate), &settings.warm_up()).await?;
    }
    let mut climbed = Climbed { passed: None, failed_at: None, generator_bound: false };
    let mut rate = settings.first_rate;
    while rate <= settings.max_rate {
        let step = step_at(load, rate, settings).await?;
        // A smoke run proves that every server starts and delivers everything; its latency on a
        // machine busy with other tests is not a test (timings belong to the real runs).
        if settings.smoke && step.lost() > 0 {
            anyhow::bail!("the smoke step lost messages: {} lost, p99 {:.1} ms", step.lost(), step.p99);
        }
        climbed.generator_bound = step.generator_busy > GENERATOR_LIMIT;
        if !step.passed() {
            climbed.failed_at = Some(rate);
            break;
        }
        climbed.passed = Some(step);
        if climbed.generator_bound {
            break;
        }
        rate *= 2;
    }
    Ok(climbed)
}

/// One step at `rate`, reported. This machine is shared: a step that missed only narrowly on
/// latency (a stall of the virtual machine can do that to any server) is run once more before
/// it counts as failed. One that lost messages is not (that server closed members it found too
/// slow), nor one far past the limit (overloaded: a second try only closes members as slow), nor
/// one the generator could not keep up with.
async fn step_at(load: &Load<'_>, rate: u64, settings: &Settings) -> anyhow::Result<Step> {
    let step = load.offer(rate, settings).await?;
    report(&step, settings);
    let near_miss = step.lost() == 0 && !step.passed() && step.p99 < 2.0 * P99_LIMIT_MS;
    if settings.smoke || !near_miss || step.generator_busy > GENERATOR_LIMIT {
        return Ok(step);
    }
    members::settle(load.tally, Duration::from_secs(20)).await;
    let step = load.offer(rate, settings).await?;
    print!("  (again)");
    report(&step, settings);
    Ok(step)
}

/// One step's line of the output.
fn report(step: &Step, settings: &Settings) {
    println!(
        "  {:>6} msg/s: {:>9.0} deliveries/s, lost {}, p50 / p99 / p99.9 {:.1} / {:.1} / {:.1} ms, {:.0} deliveries per server CPU-s (own code {:.0} ns each), generator {:.0} %",
        step.rate,
        step.per_second(settings.step),
        step.lost(),
        step.p50,
        step.p99,
        step.p999,
        step.per_cpu_second(),
        step.user_ns_per_delivery(),
        step.generator_busy * 100.0
    );
    if step.cpu_per_process.len() > 1 {
        let shares: Vec<String> = step.cpu_per_process.iter().map(|cpu| format!("{cpu:.2}")).collect();
        println!("          CPU-s per process (nodes, then Redis): {}", shares.join(", "));
    }
}

/// The send time in a payload `~<micros>~<n>~xxx…`, wherever the protocol put it. Found with
/// `memchr`'s vector scan: a byte-at-a-time search cost a peer whose frames put the payload
/// after a header (Burner's JSON: ~90 bytes in) far more of the generator's core than one
/// whose frames are the bare payload.
pub(crate) fn stamp(text: &[u8]) -> Option<u64> {
    let at = memchr::memchr(b'~', text)?;
    let mut value = 0_u64;
    let mut digits = 0;
    for &b in &text[at + 1..] {
        if !b.is_ascii_digit() {
            break;
        }
        value = value * 10 + u64::from(b - b'0');
        digits += 1;
    }
    (digits > 0).then_some(value)
}

/// A fan-out load: who sends, who counts, whose CPU, and how big each message is.
pub(crate) struct Load<'a> {
    pub peer: &'a Peer,
    pub senders: &'a [ws::Writer],
    pub tally: &'a Shared,
    /// The server's processes (a cluster's nodes and its Redis): their CPU seconds add up.
    pub pids: Vec<u32>,
    pub base: Instant,
    pub payload: usize,
}

impl Load<'_> {
    /// Half of `saturation`, after a warm-up at that rate the figures do not see (a fresh
    /// server: JIT compilers, first allocations).
    async fn half(&self, saturation: u64, settings: &Settings) -> anyhow::Result<Step> {
        let rate = (saturation / 2).max(1);
        self.offer(rate, &settings.warm_up()).await?;
        members::settle(self.tally, Duration::from_secs(20)).await;
        self.offer(rate, settings).await
    }

    /// One step: `rate` messages a second spread over the senders for the step, then a drain.
    async fn offer(&self, rate: u64, settings: &Settings) -> anyhow::Result<Step> {
        let Self { peer, senders, tally, base, payload: payload_bytes, .. } = *self;
        *tally.borrow_mut() = Tally::default();
        let (cpu0, user0, own0, t0) =
            (self.cpu_per_process()?, self.user_seconds()?, cpu_seconds(std::process::id())?, Instant::now());
        let tick = Duration::from_millis(5);
        let per_tick = rate as f64 * tick.as_secs_f64();
        let mut interval = tokio::time::interval(tick);
        let (mut owed, mut sent, mut next) = (0.0, 0_u64, 0_usize);
        while t0.elapsed() < settings.step {
            interval.tick().await;
            owed += per_tick;
            while owed >= 1.0 {
                let stamp = base.elapsed().as_micros();
                let mut payload = format!("~{stamp}~{sent}~");
                payload.extend(std::iter::repeat_n('x', payload_bytes.saturating_sub(payload.len())));
                // A sender the server is not reading from would hold up the schedule: the
                // message is counted as sent (and lost) instead of waiting.
                let writer = &senders[next % senders.len()];
                next += 1;
                let frame = peer.say(&payload);
                let writer = writer.clone();
                tokio::task::spawn_local(async move {
                    let _ = ws::send(&writer, &frame).await;
                });
                sent += 1;
                owed -= 1.0;
            }
        }
        let drain_started = Instant::now();
        while drain_started.elapsed() < settings.drain {
            if settings.drain_ends_early && tally.borrow().delivered >= sent * ROOM_SIZE as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (cpu1, user1, own1, elapsed) =
            (self.cpu_per_process()?, self.user_seconds()?, cpu_seconds(std::process::id())?, t0.elapsed());
        let cpu_per_process: Vec<f64> = cpu1.iter().zip(cpu0).map(|(after, before)| after - before).collect();
        let mut tally = std::mem::take(&mut *tally.borrow_mut());
        tally.latencies.sort_unstable();
        let pick = |q: f64| {
            let at = ((tally.latencies.len() as f64 * q) as usize).min(tally.latencies.len().saturating_sub(1));
            tally.latencies.get(at).map_or(f64::INFINITY, |us| f64::from(*us) / 1000.0)
        };
        Ok(Step {
            rate,
            sent,
            delivered: tally.delivered,
            delivered_bytes: tally.delivered_bytes,
            server_cpu: cpu_per_process.iter().sum(),
            server_user: user1 - user0,
            cpu_per_process,
            // Busy over the step itself (the drain is mostly idle).
            generator_busy: (own1 - own0) / elapsed.min(settings.step + Duration::from_millis(500)).as_secs_f64(),
            p50: pick(0.5),
            p99: pick(0.99),
            p999: pick(0.999),
        })
    }
}

impl Load<'_> {
    fn cpu_per_process(&self) -> anyhow::Result<Vec<f64>> {
        self.pids.iter().map(|pid| cpu_seconds(*pid)).collect()
    }

    /// User-space CPU seconds of every server process together.
    fn user_seconds(&self) -> anyhow::Result<f64> {
        self.pids.iter().map(|pid| Ok(cpu_times(*pid)?.0)).sum()
    }
}

fn table(rows: &[Row], settings: &Settings, quick: bool) -> String {
    let mut out = String::new();
    for (_, payload) in PAYLOADS {
        if rows.iter().any(|r| r.fanout.iter().any(|f| f.payload == payload)) {
            let title = format!(
                "Fan-out, {} rooms of {ROOM_SIZE}, {payload}-byte messages, {SENDERS_PER_ROOM} senders per room, {:.1} s steps{}",
                settings.rooms,
                settings.step.as_secs_f64(),
                if quick { " (quick run)" } else { "" }
            );
            out.push_str(&fanout_table(rows, &title, payload, settings.step));
        }
    }
    if rows.iter().any(|r| r.churn.is_some()) {
        out.push_str(&format!(
            "\nChurn: connect + join + leave by {} clients in a loop for {:.1} s, beside the 100-byte fan-out at half its saturation\n\n",
            churn::WORKERS,
            settings.step.as_secs_f64()
        ));
        out.push_str(
            "| server | connect + join + leave per second | per server CPU-second | × Burner (per CPU-second) | fan-out beside it: deliveries/s, lost, p99 |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|\n");
        let burner = rows
            .iter()
            .find(|r| r.name == "Burner")
            .and_then(|r| r.churn.as_ref()?.as_ref().ok())
            .map(|c| c.per_cpu_second);
        for row in rows {
            match &row.churn {
                Some(Ok(churn)) => {
                    let ratio = burner.map_or("—".into(), |b| format!("{:.2}", churn.per_cpu_second / b.max(0.001)));
                    let failed = if churn.failed > 0 { format!(" ({} failed)", churn.failed) } else { String::new() };
                    out.push_str(&format!(
                        "| {} | {:.0}{failed} | {:.0} | {ratio} | {:.0}, {}, {:.1} ms |\n",
                        row.name,
                        churn.per_second,
                        churn.per_cpu_second,
                        churn.beside.per_second(settings.step),
                        churn.beside.lost(),
                        churn.beside.p99
                    ));
                }
                Some(Err(error)) => {
                    out.push_str(&format!(
                        "| {} | failed: {} | — | — | — |\n",
                        row.name,
                        error.lines().next().unwrap_or_default()
                    ));
                }
                None => {}
            }
        }
    }
    // The memory and big-room table has the columns that were measured, if any were.
    let sizes: Vec<usize> = rows
        .iter()
        .find(|r| !r.big.is_empty())
        .map(|r| r.big.iter().map(|(size, _)| *size).collect())
        .unwrap_or_default();
    if settings.idle == 0 || (sizes.is_empty() && rows.iter().all(|r| r.idle_100.is_none())) {
        return out;
    }
    let one_room = settings.idle.min(1_000);
    let big_room = if sizes.is_empty() {
        String::new()
    } else {
        format!(
            ", and one message into a big room (time until the last member has it, p50 / p99 over {} trials)",
            settings.big_trials
        )
    };
    out.push_str(&format!(
        "\nMemory per idle joined member ({} members in rooms of 100; {one_room} in one room){big_room}\n\n",
        settings.idle
    ));
    out.push_str(&format!(
        "| server | KiB per idle member, rooms of 100 | KiB per idle member, one room of {one_room} |"
    ));
    for size in &sizes {
        out.push_str(&format!(" room of {size} |"));
    }
    out.push_str("\n|---|---:|---:|");
    out.push_str(&"---:|".repeat(sizes.len()));
    out.push('\n');
    let cell = |value: &Option<Result<f64, String>>| match value {
        Some(Ok(kib)) => format!("{kib:.1}"),
        Some(Err(error)) => format!("failed: {}", error.lines().next().unwrap_or_default()),
        None => "—".into(),
    };
    for row in rows {
        out.push_str(&format!("| {} | {} | {} |", row.name, cell(&row.idle_100), cell(&row.idle_1000)));
        for (_, result) in &row.big {
            match result {
                Ok((p50, p99)) => out.push_str(&format!(" {p50:.1} / {p99:.1} ms |")),
                Err(error) => out.push_str(&format!(" failed: {} |", error.lines().next().unwrap_or_default())),
            }
        }
        out.push('\n');
    }
    out
}

/// The fan-out table for one message size.
fn fanout_table(rows: &[Row], title: &str, payload: usize, step: Duration) -> String {
    fn at_size(row: &Row, payload: usize) -> Option<&Fanout> {
        row.fanout.iter().find(|f| f.payload == payload)
    }
    let of = |row| at_size(row, payload);
    let burner =
        rows.iter().find(|r| r.name == "Burner").and_then(|r| of(r)?.saturation.as_ref()).map(Step::per_cpu_second);
    let mut out = format!("{title}\n\n");
    out.push_str("| server | saturation, deliveries/s | deliveries per server CPU-second | × Burner | p50 / p99 / p99.9 at half saturation |\n");
    out.push_str("|---|---:|---:|---:|---:|\n");
    for row in rows {
        let Some(fanout) = of(row) else { continue };
        let Some(at) = &fanout.saturation else {
            let why = fanout.error.clone().unwrap_or_else(|| "no step passed".into());
            out.push_str(&format!("| {} | — | — | — | {why} |\n", row.name));
            continue;
        };
        let per_cpu = at.per_cpu_second();
        let ratio = burner.map_or("—".into(), |b| format!("{:.2}", per_cpu / b));
        let bound = if fanout.generator_bound { " (generator-bound)" } else { "" };
        let half =
            fanout.half.as_ref().map_or("—".into(), |h| format!("{:.1} / {:.1} / {:.1} ms", h.p50, h.p99, h.p999));
        out.push_str(&format!(
            "| {} | {:.0}{bound} | {:.0} | {ratio} | {half} |\n",
            row.name,
            at.per_second(step),
            per_cpu
        ));
    }
    out.push('\n');
    out
}

/// User + system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let (user, system) = cpu_times(pid)?;
    Ok(user + system)
}

/// User and system CPU seconds a process has used so far (`/proc`'s clock ticks, sampled by
/// the kernel: over a step of seconds, accurate to a few per cent).
fn cpu_times(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |at: usize| fields.get(at).unwrap_or(&"0").parse::<f64>();
    Ok((ticks(11)? / 100.0, ticks(12)? / 100.0))
}

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One HTTP/1.1 request with a form body; the raw answer.
pub(crate) async fn http(port: u16, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::between;

    #[test]
    fn between_halves_the_gap_in_whole_hundreds_while_there_is_one() {
        assert_eq!(between(6_400, 12_800), 9_600);
        assert_eq!(between(9_600, 12_800), 11_200);
        assert_eq!(between(6_400, 9_600), 8_000);
        assert_eq!(between(25_600, 51_200), 38_400);
        // Below a hundred the middle itself; no gap left, the rate that passed.
        assert_eq!(between(50, 100), 75);
        assert_eq!(between(150, 200), 175);
        assert_eq!(between(25, 26), 25);
    }
}
