//! `burner`: parse the configuration, pick the runtime, start logging, bind, serve until SIGTERM
//! or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use server::config::Config;
use tracing_subscriber::EnvFilter;

// jemalloc keeps allocations of one size together, so the short-lived buffers of a connection's
// upgrade and join leave no holes between the few bytes each idle member keeps: 2.30-2.63 KiB per
// idle member in rooms of 100 against glibc's 2.82-2.87, fan-out and churn a few per cent faster
// (docs/BENCHMARKS.md, "Memory per idle WebSocket"). Its background thread (the crate's
// `background_threads` feature) returns the pages a burst freed (a big room's joins, a flood)
// while the server is idle; without it jemalloc returns them only while the program allocates.
// How soon, and which blocks a thread keeps for reuse, is set where jemalloc is built
// (`.cargo/config.toml`); the C code linked in (SQLite) allocates from it too (`server/Cargo.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    // Given one core (a small machine, a container's quota, `taskset`), the single-threaded
    // scheduler runs every socket: nothing to steal work from, and its plain first-in first-out
    // queue halved the slowest deliveries' wait under load against the multi-threaded one with
    // one worker (p99 at 12 800 msg/s in 10 rooms of 100: 29-35 ms against 52-71 ms, at the
    // same CPU per delivery; docs/BENCHMARKS.md).
    let one_core = std::thread::available_parallelism().map_or(true, |cores| cores.get() == 1);
    let runtime = if one_core {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    };
    runtime.context("cannot start the runtime")?.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).context("BURNER_LOG is not a valid log filter")?)
        .compact()
        .init();
    // Every socket is a file descriptor: take all the operating system allows, not the usual 1024.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    server::run(listener, config, server::shutdown::signal()).await
}
