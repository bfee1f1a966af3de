//! `sluice-loader`: parse configuration, start logging, bind, load.

use std::path::PathBuf;

use clap::Parser;
use sluice_core::service::ServiceFlags;
use sluice_loader::config::{ENV_PREFIX, LoaderConfig, OPTIONS_HELP};

/// The Sluice loader: consumes `events.raw` and inserts every event into
/// ClickHouse exactly once (and into the lake, when configured).
#[derive(Debug, Parser)]
#[command(version, after_long_help = OPTIONS_HELP)]
struct Args {
    /// TOML configuration file (see the key list in --help).
    #[arg(long, short, env = "SLUICE_LOADER_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: ServiceFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    sluice_core::service::run_main(
        "sluice-loader",
        env!("CARGO_PKG_VERSION"),
        (args.config.as_deref(), &args.flags),
        ENV_PREFIX,
        (LoaderConfig::validate, |config: &LoaderConfig| {
            config.listen
        }),
        sluice_loader::serve,
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
