//! `sluice-aggregator`: parse configuration, start logging, bind, aggregate.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sluice_aggregator::config::{AggregatorConfig, ENV_PREFIX, OPTIONS_HELP};
use sluice_core::config::Next;

/// The Sluice aggregator: consumes `events.raw` and writes 5-minute rollups
/// per team, event and user to ClickHouse, each event counted exactly once;
/// ClickHouse views build hourly and daily counts and daily active users.
#[derive(Debug, Parser)]
#[command(version, after_long_help = OPTIONS_HELP)]
struct Args {
    /// TOML configuration file (see the key list in --help).
    #[arg(long, short, env = "SLUICE_AGGREGATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Validate the configuration and exit without connecting anywhere.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sluice_core::shutdown::exit_code(run().await.map_err(|err| format!("{err:#}")))
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: AggregatorConfig = match sluice_core::config::startup(
        args.config.as_deref(),
        ENV_PREFIX,
        args.print_config,
        args.check_config,
        AggregatorConfig::validate,
    )? {
        Next::Run(config) => config,
        Next::Exit => return Ok(()),
    };
    let telemetry = sluice_core::trace::init("sluice-aggregator", env!("CARGO_PKG_VERSION"));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let served = sluice_aggregator::serve(config, listener, sluice_core::shutdown::signal()).await;
    // Spans of the last requests and batches are still buffered.
    telemetry.shutdown().await;
    served
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Args;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
