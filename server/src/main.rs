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
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    server::run(listener, config, server::shutdown::signal()).await
}
