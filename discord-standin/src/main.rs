//! `discord-standin`: the stand-in as a process, for Playwright runs and manual testing. Prints
//! one JSON line with its URLs on stdout (logs go to stderr), then serves until killed.

use clap::Parser;
use discord_standin::{Config, StandIn};

/// A local stand-in for Discord's REST API and gateway (loopback only).
#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one (the line on stdout says which).
    #[arg(long, env = "DISCORD_STANDIN_PORT", default_value_t = 0)]
    port: u16,
    /// The bot token the stand-in accepts (without the `Bot ` prefix).
    #[arg(long, env = "DISCORD_STANDIN_TOKEN", default_value = "standin-token")]
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let standin = StandIn::start_on(listener, Config { token: args.token, ..Config::default() }).await?;
    let line = serde_json::json!({ "api_url": standin.api_url(), "gateway_url": standin.gateway_url() });
    // The one line a test harness reads to find the stand-in.
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
