//! `sluice-bench`: parse the command line and dispatch to the library.
//! `scripts/bench` runs the subcommands in order; each can also be run alone.

use clap::{Parser, Subcommand};

mod commands;

use commands::{
    AggregatorArgs, OverloadArgs, PluginsArgs, PluginsGatewayArgs, PluginsNeighbourArgs,
    PluginsUploadArgs, ReportArgs, ThroughputArgs, TopicsArgs,
};

/// Load generator and benchmark for the Sluice gateway (see docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Delete and recreate the benchmark topics (or only delete them).
    Topics(TopicsArgs),
    /// Raw-producer baseline and gateway at each batch size, then latency at
    /// half load; writes JSON results.
    Throughput(ThroughputArgs),
    /// Offer a multiple of the measured capacity to a gateway configured with
    /// small limits; watch its memory; check it recovers. Writes JSON results.
    Overload(OverloadArgs),
    /// The plugin host's costs, in this process with the gateway's own
    /// runtime: ingest-stage throughput with 0, 1 and 3 plugins, latency per
    /// plugin, instantiation and call overhead, memory. Writes JSON and,
    /// with --doc, the `## Plugins` section of the benchmarks document.
    Plugins(PluginsArgs),
    /// Plugins in a running gateway: uploads 1 and 3 of the example plugins
    /// for two teams through the admin API, then closed-loop load per team
    /// (and a team without plugins) at each batch size; gateway events/s
    /// and CPU per event, as ratios to the team without plugins.
    PluginsGateway(PluginsGatewayArgs),
    /// A hostile neighbour: a team without plugins and one with a plugin,
    /// alone, then while a third team's TypeScript plugin spins on every
    /// batch; p50/p99 and events/s of each.
    PluginsNeighbour(PluginsNeighbourArgs),
    /// Upload → `active` through a running gateway's admin API (a new
    /// plugin, nothing cached), or with --restart-since-unix-ns, how soon a
    /// restarted gateway runs it again; results kept in --results, and with
    /// --doc rendered into the plugin section.
    PluginsUpload(PluginsUploadArgs),
    /// The aggregator: events per CPU second in memory and through Kafka
    /// (each against its baseline), and how soon a closed window is visible
    /// in ClickHouse; with --doc, the `## Aggregator` section.
    Aggregator(AggregatorArgs),
    /// Render results into the marked section of the benchmarks document.
    Report(ReportArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Topics(args) => args.run().await,
        Command::Throughput(args) => args.run().await,
        Command::Overload(args) => args.run().await,
        Command::Plugins(args) => args.run().await,
        Command::PluginsGateway(args) => args.run().await,
        Command::PluginsNeighbour(args) => args.run().await,
        Command::PluginsUpload(args) => args.run().await,
        Command::Aggregator(args) => args.run().await,
        Command::Report(args) => args.run().await,
    }
}
