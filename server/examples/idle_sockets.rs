//! Memory per idle WebSocket: starts the release `burner`, opens sockets that join rooms of 100
//! and then stay quiet, and reads the server's resident memory (VmRSS) as they pile up. The
//! cost per socket is the slope between two counts, so fixed start-up memory does not count.
//!
//! cargo run --release -p server --example idle_sockets -- [SOCKETS, default 2000]
//! Results are recorded in docs/BENCHMARKS.md.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

mod support;

use std::time::Duration;
use support::{Server, rss_kib};

const ROOM_SIZE: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let server = Server::start(None, &[]).await?;
    let pid = server.pid();
    let mut rooms = Vec::new();
    for i in 0..total.div_ceil(ROOM_SIZE) {
        rooms.push(server.create_room(&format!("bench {i}"), ROOM_SIZE).await?);
    }
    let mut sockets = Vec::with_capacity(total);
    let first = (total / 5).max(1);
    println!("sockets  server VmRSS");
    let mut samples = Vec::new();
    for target in [first, total] {
        while sockets.len() < target {
            let n = sockets.len();
            sockets.push(server.join(&rooms[n / ROOM_SIZE], n).await?);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_kib(pid)?;
        println!("{:>7}  {:>8} KiB", sockets.len(), rss);
        samples.push((sockets.len(), rss));
    }
    let ((n1, r1), (n2, r2)) = (samples[0], samples[1]);
    let per_socket = (r2 as f64 - r1 as f64) / (n2 - n1) as f64;
    println!("per idle joined socket: {per_socket:.1} KiB ({:.0} bytes)", per_socket * 1024.0);
    println!("10 000 idle sockets would add {:.1} MiB", per_socket * 10_000.0 / 1024.0);
    drop(sockets);
    Ok(())
}
