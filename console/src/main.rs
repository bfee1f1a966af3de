//! `sluice-console`: parse configuration, start logging, bind, serve.

use std::path::PathBuf;

use clap::Parser;
use sluice_console::config::{ConsoleConfig, ENV_PREFIX, OPTIONS_HELP};
use sluice_core::service::ServiceFlags;

/// The Sluice console: dashboards from the rollups, an event explorer, the
/// live events of a team, traces, pipeline health and team administration
/// (keys, plugins, schemas), in the browser. Sign in with a team's admin key
/// or the operator token.
#[derive(Debug, Parser)]
#[command(version, after_long_help = OPTIONS_HELP)]
struct Args {
    /// TOML configuration file (see the key list in --help).
    #[arg(long, short, env = "SLUICE_CONSOLE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: ServiceFlags,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    sluice_core::service::run_main(
        "sluice-console",
        env!("CARGO_PKG_VERSION"),
        (args.config.as_deref(), &args.flags),
        ENV_PREFIX,
        (ConsoleConfig::validate, |config: &ConsoleConfig| {
            config.listen
        }),
        sluice_console::serve,
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
