//! `sluice-gateway`: parse configuration, start logging, bind, serve.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sluice_core::config::Next;
use sluice_gateway::config::{ENV_PREFIX, GatewayConfig, OPTIONS_HELP};

/// The Sluice ingest gateway: accepts analytics event batches over HTTP and
/// answers per event once Kafka has acknowledged them.
#[derive(Debug, Parser)]
#[command(version, after_long_help = OPTIONS_HELP)]
struct Args {
    /// TOML configuration file (see the key list in --help).
    #[arg(long, short, env = "SLUICE_GATEWAY_CONFIG")]
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
    // `{:#}` of an anyhow error includes its causes.
    sluice_core::shutdown::exit_code(run().await.map_err(|err| format!("{err:#}")))
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: GatewayConfig = match sluice_core::config::startup(
        args.config.as_deref(),
        ENV_PREFIX,
        args.print_config,
        args.check_config,
        GatewayConfig::validate,
    )? {
        Next::Run(config) => config,
        Next::Exit => return Ok(()),
    };
    let telemetry = sluice_core::trace::init("sluice-gateway", env!("CARGO_PKG_VERSION"));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let served = sluice_gateway::serve(config, listener, sluice_core::shutdown::signal()).await;
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
