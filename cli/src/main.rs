//! `sluice`: parse the command line and dispatch to a command's module.
//!
//! The command groups live in [`commands`], each with its clap definitions
//! next to the code that runs it; the work itself is in the library
//! (`sluice_cli`).

mod commands;

use clap::{Parser, Subcommand};

use commands::AdminArgs;
use commands::dlq::DlqAction;
use commands::keys::KeysAction;
use commands::plugin::PluginAction;
use commands::replay::ReplayArgs;
use commands::sample::SampleArgs;
use commands::schema::SchemaAction;
use commands::stats::StatsArgs;
use commands::tail::TailArgs;

/// Sluice: a WebAssembly-extensible analytics ingest pipeline.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Re-load a time range from the lake into ClickHouse, idempotently.
    ///
    /// Only events ClickHouse does not already hold are inserted, so
    /// replaying a range twice, or a range the loader loaded, adds nothing.
    Replay(ReplayArgs),
    /// What dashboards show, read from the aggregator's rollups in ClickHouse.
    ///
    /// Ranges are UTC, `--from` inclusive, `--to` exclusive; each accepts a
    /// date (2026-11-26) or an RFC 3339 instant.
    Stats(StatsArgs),
    /// Dead-lettered events (`events.rejected`): list them, and replay them
    /// through a gateway once their cause is fixed.
    ///
    /// Reads the topic by offsets, from its first record to its end when the
    /// command started, without a consumer group (nothing is committed, no
    /// consumer is disturbed).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Print the last records of a topic (key, headers, value).
    Tail(TailArgs),
    /// Develop, try and ship WebAssembly plugins (Rust, TypeScript, JavaScript, Python).
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Create, list and revoke API keys through a gateway's admin API.
    Keys {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Register event schemas and check changes against the registry.
    ///
    /// Exit codes: 0 compatible/registered, 1 refused (the reasons are
    /// printed), 2 usage or connection error.
    Schema {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// Send a sample batch through a gateway and read it back from Kafka.
    ///
    /// Exits non-zero unless every event the gateway acknowledged is found in
    /// the topic exactly once.
    SendSample(SampleArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Schema { admin, action } = cli.command {
        return commands::schema::run(admin, action).await;
    }
    // `{:#}` of an anyhow error includes its causes.
    sluice_core::shutdown::exit_code(run(cli).await.map_err(|err| format!("{err:#}")))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugin { action } => commands::plugin::run(action).await,
        Command::Stats(args) => commands::stats::run(args).await,
        Command::Replay(args) => commands::replay::run(args).await,
        Command::Dlq { action } => commands::dlq::run(action).await,
        Command::Tail(args) => commands::tail::run(args).await,
        Command::Keys { admin, action } => commands::keys::run(admin, action).await,
        // Handled in `main` (it has its own exit codes).
        Command::Schema { .. } => Ok(()),
        Command::SendSample(args) => commands::sample::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
