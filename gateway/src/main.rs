//! `sluice-gateway`: parse configuration, start logging, bind, serve.

use std::path::PathBuf;

use clap::Parser;
use sluice_core::service::ServiceFlags;
use sluice_gateway::config::{ENV_PREFIX, GatewayConfig, OPTIONS_HELP};
use sluice_gateway::memory::{self, AllocatorStats};

/// jemalloc instead of glibc's malloc: the ingest path allocates and frees
/// per event across threads (HTTP workers, the plugin pool, librdkafka's
/// delivery thread), where glibc spent a fifth of the gateway's CPU in
/// malloc/free and consolidation (docs/benchmarks.md). jemalloc also
/// replaces `malloc` for the C code linked in (librdkafka, zstd), so one
/// allocator, with one background purge, holds all of the process's heap and
/// its statistics cover all of it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Sluice ingest gateway: accepts analytics event batches over HTTP and
/// answers per event once Kafka has acknowledged them.
#[derive(Debug, Parser)]
#[command(version, after_long_help = OPTIONS_HELP)]
struct Args {
    /// TOML configuration file (see the key list in --help).
    #[arg(long, short, env = "SLUICE_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: ServiceFlags,
}

/// jemalloc's own account of its memory, for `/metrics`.
fn jemalloc_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // Statistics are a snapshot taken when the epoch advances.
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    memory::install_allocator_probe(jemalloc_stats);
    sluice_core::service::run_main(
        "sluice-gateway",
        env!("CARGO_PKG_VERSION"),
        (args.config.as_deref(), &args.flags),
        ENV_PREFIX,
        (GatewayConfig::validate, |config: &GatewayConfig| {
            config.listen
        }),
        sluice_gateway::serve,
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
