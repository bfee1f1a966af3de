//! The subcommands of `sluice-bench`: each one's arguments, and `run`,
//! which turns them into the library's options and calls it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sluice_bench::baseline::ProducerSetup;
use sluice_bench::results::{OverloadConfig, OverloadResults, ThroughputResults};
use sluice_bench::suite::{
    self, BatchPlan, OverloadOptions, SdkRouteResults, Subject, ThroughputOptions,
};
use sluice_bench::workload::Route;
use sluice_bench::{aggregator, plugins, read_json, report, topics, write_json};

#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[arg(long, default_value = "127.0.0.1:19092")]
    brokers: String,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Only delete.
    #[arg(long)]
    delete: bool,
    /// Create compacted topics (cleanup.policy=compact), like the
    /// gateway's key, plugin and schema registries.
    #[arg(long)]
    compact: bool,
    #[arg(required = true)]
    topics: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ThroughputArgs {
    #[command(flatten)]
    common: Common,
    /// Topic both the baseline and the gateway write to.
    #[arg(long, default_value = "bench.raw")]
    topic: String,
    /// Partitions of that topic (for the report).
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Must equal the gateway's producer.linger_ms.
    #[arg(long, default_value_t = 50)]
    linger_ms: u64,
    /// Must equal the gateway's producer.delivery_timeout_ms.
    #[arg(long, default_value_t = 10_000)]
    delivery_timeout_ms: u64,
    /// Must equal the gateway's producer.queue_max_kbytes.
    #[arg(long, default_value_t = 256 * 1024)]
    queue_max_kbytes: u64,
    /// Batch sizes and concurrency, SIZE:CLIENTS,...
    #[arg(long, value_delimiter = ',', default_value = "1:1024,100:64,1000:8")]
    batches: Vec<BatchPlan>,
    /// Times every batch size is run (interleaved rounds).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 12)]
    duration_secs: u64,
    /// Unmeasured seconds before each gateway scenario.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    #[arg(long, default_value_t = 100)]
    half_load_batch: usize,
    #[arg(long, default_value_t = 20)]
    half_load_secs: u64,
    #[arg(long)]
    out: PathBuf,
    /// Drop-in SDK routes measured after the native one at every batch
    /// size and round (segment, posthog); none by default.
    #[arg(long, value_delimiter = ',')]
    sdk_routes: Vec<Route>,
    /// Where the SDK routes' results go (with --sdk-routes).
    #[arg(long)]
    sdk_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OverloadArgs {
    #[command(flatten)]
    common: Common,
    /// Throughput results to take the capacity from.
    #[arg(long, required_unless_present = "capacity")]
    capacity_from: Option<PathBuf>,
    /// Capacity in events/s (instead of --capacity-from).
    #[arg(long)]
    capacity: Option<f64>,
    #[arg(long, default_value_t = 10.0)]
    factor: f64,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 15)]
    duration_secs: u64,
    /// Most requests the generator keeps open at once.
    #[arg(long, default_value_t = 2000)]
    client_max_in_flight: usize,
    /// The overload gateway's settings, recorded in the report.
    #[arg(long)]
    max_in_flight_requests: u64,
    #[arg(long)]
    memory_budget_bytes: u64,
    #[arg(long)]
    queue_max_kbytes: u64,
    #[arg(long)]
    max_body_bytes: u64,
    /// The gateway's `admission.max_connections`.
    #[arg(long, default_value_t = 4096)]
    max_connections: u64,
    /// Resident memory the gateway must stay under.
    #[arg(long)]
    rss_budget_bytes: u64,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Directory of compiled components (plugins/build.sh OUT).
    #[arg(long)]
    components: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    batches: Vec<usize>,
    /// Interleaved rounds of the throughput comparison.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Measured seconds per throughput cell (setup x batch x round).
    #[arg(long, default_value_t = 2.0)]
    slice_secs: f64,
    /// Measured seconds per plugin and batch size in the latency phase.
    #[arg(long, default_value_t = 3.0)]
    latency_secs: f64,
    /// Iterations of the instantiation probe per plugin.
    #[arg(long, default_value_t = 5000)]
    probe_iterations: usize,
    /// Live instances of each plugin held at once for memory.
    #[arg(long, default_value_t = 16)]
    instances: usize,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Commit being measured (for the report).
    #[arg(long)]
    commit: Option<String>,
    #[command(flatten)]
    files: ResultFiles,
}

#[derive(Debug, Args)]
pub struct PluginsGatewayArgs {
    #[arg(long, default_value = "http://127.0.0.1:18090")]
    gateway_url: String,
    /// The gateway's pid, for its CPU time.
    #[arg(long)]
    gateway_pid: u32,
    /// The gateway's admin.token.
    #[arg(long)]
    admin_token: String,
    /// Directory of compiled components (plugins/build.sh OUT).
    #[arg(long)]
    components: PathBuf,
    /// A team as LABEL=TEAM:API_KEY:PLUGINS (PLUGINS = how many of the
    /// three examples, in chain order, optionally followed by @EVENT to
    /// run the enricher only on that event name); repeat for each team,
    /// the first with 0 plugins.
    #[arg(long, required = true)]
    setups: Vec<String>,
    /// Batch sizes and concurrency, SIZE:CLIENTS,...
    #[arg(long, value_delimiter = ',', default_value = "100:64,1000:8")]
    batches: Vec<BatchPlan>,
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    #[command(flatten)]
    workload: WorkloadArgs,
    #[arg(long)]
    commit: Option<String>,
    #[command(flatten)]
    files: ResultFiles,
}

#[derive(Debug, Args)]
pub struct PluginsNeighbourArgs {
    #[arg(long, default_value = "http://127.0.0.1:18090")]
    gateway_url: String,
    #[arg(long)]
    admin_token: String,
    /// Directory of compiled components (with ts_fixture_infinite_loop).
    #[arg(long)]
    components: PathBuf,
    /// The team without plugins, TEAM:API_KEY.
    #[arg(long)]
    quiet: String,
    /// The team that gets a TypeScript validator, TEAM:API_KEY.
    #[arg(long)]
    with_plugin: String,
    /// The team that gets the spinning plugin, TEAM:API_KEY.
    #[arg(long)]
    hostile: String,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 16)]
    hostile_clients: usize,
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// The gateway's plugins.runtime.max_instances_per_team, for the report.
    #[arg(long, default_value = "default")]
    per_team_slots: String,
    /// Results of earlier configurations; this run is added to them.
    #[arg(long)]
    results: PathBuf,
    #[arg(long)]
    doc: Option<PathBuf>,
    #[arg(long)]
    commit: Option<String>,
}

#[derive(Debug, Args)]
pub struct PluginsUploadArgs {
    #[arg(long, default_value = "http://127.0.0.1:18090")]
    gateway_url: String,
    #[arg(long)]
    admin_token: String,
    /// The component (a validator) to upload.
    #[arg(long)]
    component: PathBuf,
    #[arg(long)]
    team: String,
    #[arg(long, default_value = "upload-timed")]
    name: String,
    /// The plugin's configuration (JSON object).
    #[arg(long, default_value = "{}")]
    config: String,
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// When the restarted gateway process was spawned (`date +%s%N`).
    #[arg(long)]
    restart_since_unix_ns: Option<u128>,
    #[arg(long)]
    results: PathBuf,
    #[arg(long)]
    doc: Option<PathBuf>,
    #[arg(long)]
    commit: Option<String>,
}

#[derive(Debug, Args)]
pub struct AggregatorArgs {
    #[arg(long, default_value = "127.0.0.1:19092")]
    brokers: String,
    #[arg(long, default_value = "http://127.0.0.1:18123")]
    clickhouse_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Interleaved rounds of each throughput comparison (best kept).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Window boundaries crossed in the delay phase (about 30 s each).
    #[arg(long, default_value_t = 3)]
    delay_phases: usize,
    #[arg(long)]
    commit: Option<String>,
    #[command(flatten)]
    files: ResultFiles,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long)]
    throughput: Option<PathBuf>,
    #[arg(long)]
    overload: Option<PathBuf>,
    /// SDK route results (`throughput --sdk-out`), for their own section.
    #[arg(long)]
    sdk_routes: Option<PathBuf>,
    /// Throughput results on one broker, one file per round
    /// (`scripts/bench-brokers`), for the brokers section with
    /// --brokers-three.
    #[arg(long, value_delimiter = ',', requires = "brokers_three")]
    brokers_one: Vec<PathBuf>,
    /// The same rounds on three brokers.
    #[arg(long, value_delimiter = ',', requires = "brokers_one")]
    brokers_three: Vec<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks.md")]
    doc: PathBuf,
}

#[derive(Debug, Args)]
struct Common {
    #[arg(long, default_value = "http://127.0.0.1:18090")]
    gateway_url: String,
    #[arg(long, default_value = "sk_bench_0123456789")]
    api_key: String,
    /// The gateway's pid, for its CPU time and memory.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// The Kafka brokers' pids (comma separated), for their CPU time.
    #[arg(long, value_delimiter = ',')]
    kafka_pid: Vec<u32>,
    #[arg(long, default_value = "127.0.0.1:19092")]
    brokers: String,
    /// Commit being measured (for the report).
    #[arg(long)]
    commit: Option<String>,
    #[command(flatten)]
    workload: WorkloadArgs,
}

/// Where a subcommand's results come from and go: measured now (and saved to
/// --out), or rendered again from an earlier run's file (--from); --doc
/// rewrites the subcommand's generated section of the benchmarks document.
#[derive(Debug, Args)]
struct ResultFiles {
    /// Render these results instead of measuring.
    #[arg(long, conflicts_with = "out")]
    from: Option<PathBuf>,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Document whose generated section to rewrite.
    #[arg(long)]
    doc: Option<PathBuf>,
}

impl ResultFiles {
    /// The results of --from, or those `measure` produces, saved to --out.
    async fn load_or_measure<T>(
        &self,
        measure: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        if let Some(path) = &self.from {
            return read_json(path);
        }
        let results = measure.await?;
        if let Some(out) = &self.out {
            write_json(out, &results)?;
        }
        Ok(results)
    }
}

/// The generated events: how many distinct ones, over how many users, from
/// which seed (the same for every subcommand, so runs are comparable).
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Distinct events generated before timing.
    #[arg(long, default_value_t = 4096)]
    distinct_events: usize,
    #[arg(long, default_value_t = 5000)]
    users: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl WorkloadArgs {
    fn options(&self) -> suite::WorkloadOptions {
        suite::WorkloadOptions {
            distinct_events: self.distinct_events,
            users: self.users,
            seed: self.seed,
        }
    }
}

impl Common {
    fn subject(&self) -> Subject {
        Subject {
            gateway_url: self.gateway_url.clone(),
            api_key: self.api_key.clone(),
            gateway_pid: self.gateway_pid,
            kafka_pids: self.kafka_pid.clone(),
            commit: self.commit.clone(),
            brokers: self.brokers.clone(),
        }
    }

    fn workload(&self) -> suite::WorkloadOptions {
        self.workload.options()
    }
}

impl TopicsArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            brokers,
            partitions,
            delete,
            compact,
            topics: names,
        } = self;
        if delete {
            topics::delete(&brokers, &names).await
        } else {
            topics::recreate(&brokers, &names, partitions, compact).await
        }
    }
}

impl ThroughputArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            common,
            topic,
            partitions,
            linger_ms,
            delivery_timeout_ms,
            queue_max_kbytes,
            batches,
            rounds,
            duration_secs,
            warmup_secs,
            half_load_batch,
            half_load_secs,
            out,
            sdk_routes,
            sdk_out,
        } = self;
        if !sdk_routes.is_empty() && sdk_out.is_none() {
            anyhow::bail!("--sdk-routes needs --sdk-out");
        }
        let options = ThroughputOptions {
            producer: ProducerSetup {
                brokers: common.brokers.clone(),
                topic,
                linger_ms,
                delivery_timeout_ms,
                queue_max_kbytes,
            },
            partitions,
            plans: batches,
            rounds,
            duration: Duration::from_secs(duration_secs),
            warmup: Duration::from_secs(warmup_secs),
            half_load_batch,
            half_load_duration: Duration::from_secs(half_load_secs),
            sdk_routes,
        };
        let brokers = topics::broker_count(&common.brokers)?;
        let (results, sdk) =
            suite::throughput(&common.subject(), &common.workload(), &options, brokers).await?;
        if let Some(sdk_out) = sdk_out {
            write_json(&sdk_out, &sdk)?;
        }
        write_json(&out, &results)
    }
}

impl OverloadArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            common,
            capacity_from,
            capacity,
            factor,
            batch,
            duration_secs,
            client_max_in_flight,
            max_in_flight_requests,
            memory_budget_bytes,
            queue_max_kbytes,
            max_body_bytes,
            max_connections,
            rss_budget_bytes,
            out,
        } = self;
        let capacity = match (capacity, capacity_from) {
            (Some(capacity), _) => capacity,
            (None, Some(path)) => {
                let results: ThroughputResults = read_json(&path)?;
                sluice_bench::capacity(&results, batch)
                    .with_context(|| format!("no gateway throughput in {}", path.display()))?
            }
            (None, None) => anyhow::bail!("give --capacity or --capacity-from"),
        };
        let options = OverloadOptions {
            capacity_events_per_second: capacity,
            factor,
            batch,
            duration: Duration::from_secs(duration_secs),
            client_max_in_flight,
            config: OverloadConfig {
                max_in_flight_requests,
                memory_budget_bytes,
                queue_max_kbytes,
                max_body_bytes,
                max_connections,
                rss_budget_bytes,
            },
        };
        let brokers = topics::broker_count(&common.brokers)?;
        let results =
            suite::overload(&common.subject(), &common.workload(), &options, brokers).await?;
        write_json(&out, &results)
    }
}

impl PluginsArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            components,
            batches,
            rounds,
            slice_secs,
            latency_secs,
            probe_iterations,
            instances,
            workload,
            commit,
            files,
        } = self;
        let results = files
            .load_or_measure(async {
                let options = plugins::Options {
                    components,
                    batches,
                    rounds,
                    slice: Duration::from_secs_f64(slice_secs),
                    latency_time: Duration::from_secs_f64(latency_secs),
                    probe_iterations,
                    instances,
                    workload: workload.options(),
                    commit,
                };
                // CPU-bound and synchronous: keep it off the async workers.
                tokio::task::spawn_blocking(move || plugins::run(&options)).await?
            })
            .await?;
        if let Some(doc) = &files.doc {
            plugins::update_doc(doc, &results)?;
        }
        Ok(())
    }
}

impl PluginsGatewayArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            gateway_url,
            gateway_pid,
            admin_token,
            components,
            setups,
            batches,
            rounds,
            duration_secs,
            warmup_secs,
            workload,
            commit,
            files,
        } = self;
        let results: plugins::gateway::GatewayPluginResults = files
            .load_or_measure(async {
                let setups = setups
                    .iter()
                    .map(|text| parse_setup(text))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                anyhow::ensure!(
                    setups.first().is_some_and(|s| s.plugins == 0),
                    "the first setup is the baseline and must have 0 plugins"
                );
                let options = plugins::gateway::GatewayOptions {
                    gateway_url,
                    gateway_pid,
                    admin_token,
                    components,
                    setups,
                    plans: batches,
                    rounds,
                    duration: Duration::from_secs(duration_secs),
                    warmup: Duration::from_secs(warmup_secs),
                    workload: workload.options(),
                };
                plugins::gateway::run(&options).await
            })
            .await?;
        if let Some(doc) = &files.doc {
            let commit = commit.as_deref().unwrap_or("unknown");
            plugins::gateway::update_doc(doc, &results, commit)?;
        }
        Ok(())
    }
}

impl PluginsNeighbourArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            gateway_url,
            admin_token,
            components,
            quiet,
            with_plugin,
            hostile,
            batch,
            clients,
            hostile_clients,
            rounds,
            duration_secs,
            warmup_secs,
            workload,
            per_team_slots,
            results,
            doc,
            commit,
        } = self;
        let pair = |text: &str| -> anyhow::Result<(String, String)> {
            text.split_once(':')
                .map(|(team, key)| (team.to_owned(), key.to_owned()))
                .with_context(|| format!("`{text}` is not TEAM:API_KEY"))
        };
        let options = plugins::neighbour::NeighbourOptions {
            gateway_url,
            admin_token,
            components,
            quiet: pair(&quiet)?,
            with_plugin: pair(&with_plugin)?,
            hostile: pair(&hostile)?,
            batch,
            clients,
            hostile_clients,
            rounds,
            duration: Duration::from_secs(duration_secs),
            warmup: Duration::from_secs(warmup_secs),
            workload: workload.options(),
            per_team_slots,
        };
        let mut all: plugins::neighbour::NeighbourResults = if results.exists() {
            read_json(&results)?
        } else {
            Default::default()
        };
        all.runs.push(plugins::neighbour::run(&options).await?);
        write_json(&results, &all)?;
        if let Some(doc) = &doc {
            let commit = commit.as_deref().unwrap_or("unknown");
            plugins::neighbour::update_doc(doc, &all, commit)?;
        }
        Ok(())
    }
}

impl PluginsUploadArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            gateway_url,
            admin_token,
            component,
            team,
            name,
            config,
            timeout_secs,
            restart_since_unix_ns,
            results,
            doc,
            commit,
        } = self;
        let options = plugins::upload::UploadOptions {
            gateway_url,
            admin_token,
            component,
            team,
            name,
            config,
            timeout: Duration::from_secs(timeout_secs),
        };
        let commit = commit.as_deref().unwrap_or("unknown");
        plugins::upload::run(
            &options,
            restart_since_unix_ns,
            &results,
            doc.as_deref(),
            commit,
        )
        .await
    }
}

impl AggregatorArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            brokers,
            clickhouse_url,
            events,
            partitions,
            rounds,
            delay_phases,
            commit,
            files,
        } = self;
        let results: aggregator::Results = files
            .load_or_measure(async {
                let options = aggregator::Options {
                    brokers,
                    clickhouse_url,
                    events,
                    partitions,
                    rounds,
                    delay_phases,
                    commit,
                };
                aggregator::run(&options).await
            })
            .await?;
        println!("{}", aggregator::render(&results));
        if let Some(doc) = &files.doc {
            sluice_bench::report::update_section(
                doc,
                aggregator::BEGIN_MARKER,
                aggregator::END_MARKER,
                &aggregator::render(&results),
            )?;
        }
        Ok(())
    }
}

impl ReportArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            throughput,
            overload,
            sdk_routes,
            brokers_one,
            brokers_three,
            doc,
        } = self;
        let throughput: Option<ThroughputResults> =
            throughput.as_deref().map(read_json).transpose()?;
        let overload: Option<OverloadResults> = overload.as_deref().map(read_json).transpose()?;
        if throughput.is_some() || overload.is_some() {
            sluice_bench::update_doc(&doc, throughput.as_ref(), overload.as_ref())?;
        }
        if let Some(path) = sdk_routes {
            let sdk: SdkRouteResults = read_json(&path)?;
            report::update_section(
                &doc,
                report::SDK_BEGIN_MARKER,
                report::SDK_END_MARKER,
                &report::render_sdk_routes(&sdk),
            )?;
        }
        if !brokers_one.is_empty() {
            let read_all = |paths: &[PathBuf]| -> anyhow::Result<Vec<ThroughputResults>> {
                paths.iter().map(|p| read_json(p)).collect()
            };
            let (one, three) = (read_all(&brokers_one)?, read_all(&brokers_three)?);
            report::update_section(
                &doc,
                sluice_bench::brokers::BEGIN_MARKER,
                sluice_bench::brokers::END_MARKER,
                &sluice_bench::brokers::render(&one, &three),
            )?;
        }
        Ok(())
    }
}

/// `LABEL=TEAM:API_KEY:PLUGINS` for `plugins-gateway --setups`.
fn parse_setup(text: &str) -> anyhow::Result<plugins::gateway::Setup> {
    let parse = || -> Option<plugins::gateway::Setup> {
        let (label, rest) = text.split_once('=')?;
        let mut parts = rest.splitn(3, ':');
        let (team, api_key, plugins) = (parts.next()?, parts.next()?, parts.next()?);
        let (count, only_on) = match plugins.split_once('@') {
            Some((count, event)) if !event.is_empty() => (count, Some(event.to_owned())),
            Some(_) => return None,
            None => (plugins, None),
        };
        Some(plugins::gateway::Setup {
            label: label.to_owned(),
            team: team.to_owned(),
            api_key: api_key.to_owned(),
            plugins: count
                .parse()
                .ok()
                .filter(|n| *n <= plugins::PLUGINS.len())?,
            enricher_only_on: only_on,
        })
    };
    parse().with_context(|| {
        format!(
            "--setups: `{text}` is not LABEL=TEAM:API_KEY:PLUGINS (0 to 3, optionally @EVENT: the enricher runs only on that event name)"
        )
    })
}
