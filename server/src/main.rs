//! `burner`: parse the configuration, start logging, bind, serve until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use server::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
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
