//! `sluice-aggregator`: parse configuration, start logging, bind, aggregate.

use std::path::PathBuf;

use clap::Parser;
use sluice_aggregator::config::{AggregatorConfig, ENV_PREFIX, OPTIONS_HELP};
use sluice_core::service::ServiceFlags;

/// The Sluice aggregator: consumes `events.raw` and writes 5-minute rollups
/// per team, event and user to ClickHouse, each event counted exactly once;
/// ClickHouse views build hourly and daily counts and daily active users.
#[derive(Debug, Parser)]
#[command(version, after_long_help = OPTIONS_HELP)]
struct Args {
    /// TOML configuration file (see the key list in --help).
    #[arg(long, short, env = "SLUICE_AGGREGATOR_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: ServiceFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    sluice_core::service::run_main(
        "sluice-aggregator",
        env!("CARGO_PKG_VERSION"),
        (args.config.as_deref(), &args.flags),
        ENV_PREFIX,
        (AggregatorConfig::validate, |config: &AggregatorConfig| {
            config.listen
        }),
        sluice_aggregator::serve,
    )
    .await
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
