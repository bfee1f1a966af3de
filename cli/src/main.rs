//! `sluice`: parse the command line and dispatch to the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sluice_cli::admin::{AdminClient, key_line};
use sluice_cli::plugin;
use sluice_cli::sample::{self, SampleOptions};
use sluice_core::kafka::{KafkaSettings, TOPIC_RAW, TOPIC_REJECTED};

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
    Tail {
        /// Topic to read, e.g. events.raw or events.rejected.
        topic: String,
        /// Records per partition.
        #[arg(long, default_value_t = 5)]
        last: i64,
        /// Kafka bootstrap servers.
        #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
        brokers: String,
    },
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
    SendSample {
        /// Gateway base URL.
        #[arg(
            long,
            env = "SLUICE_GATEWAY_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        gateway: String,
        /// API key of the team to send as.
        #[arg(long, env = "SLUICE_API_KEY")]
        api_key: String,
        /// Kafka bootstrap servers to read back from.
        #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
        brokers: String,
        /// Topic the gateway produces accepted events to.
        #[arg(long, default_value = TOPIC_RAW)]
        topic: String,
        /// Number of valid events (one invalid event is always added).
        #[arg(long, default_value_t = 10)]
        events: usize,
        /// Seconds to wait for the events to appear in Kafka.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The lake: a directory (the loader's `lake.dir`) or
    /// `s3://bucket/prefix` (its `lake.url`; credentials from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    lake: String,
    /// The S3-compatible server of an `s3://` lake, `http://host:port`.
    #[arg(long, env = "SLUICE_LAKE_ENDPOINT")]
    lake_endpoint: Option<String>,
    /// The region of an `s3://` lake.
    #[arg(long, default_value = "us-east-1")]
    lake_region: String,
    /// Start of the range (event time, RFC 3339, inclusive).
    #[arg(long)]
    from: String,
    /// End of the range (event time, RFC 3339, exclusive).
    #[arg(long)]
    to: String,
    /// Only this team.
    #[arg(long)]
    team: Option<String>,
    #[arg(
        long,
        env = "SLUICE_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:18123"
    )]
    clickhouse_url: String,
    #[arg(long, default_value = "sluice")]
    database: String,
    #[arg(long, default_value = "events")]
    table: String,
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// One line per dead letter (time, partition/offset, team, code,
    /// event_id, event, message), then the counts per team and code.
    List {
        /// Only this team's (the `sluice-team` header, else the JSON's
        /// `team_id`).
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        select: DlqSelect,
    },
    /// Send a team's dead letters through the team's current pipeline
    /// (`POST /admin/v1/teams/{team}/replay`), each with its `event_id`.
    ///
    /// Events ClickHouse already stores are skipped (with --clickhouse-url),
    /// and the loader and aggregator drop copies of events they kept within
    /// their dedup window, so replaying twice stores each event once.
    /// Events answered `failed` are retried with backoff; the command exits
    /// non-zero if some are still failed at the end.
    Replay(DlqReplayArgs),
}

#[derive(Debug, clap::Args)]
struct DlqSelect {
    /// Only this reject code (repeat for more), e.g. plugin_failed.
    #[arg(long = "code", value_name = "CODE")]
    codes: Vec<String>,
    /// Dead-lettered at or after (the Kafka record time): a UTC date
    /// (2026-11-26) or an RFC 3339 instant.
    #[arg(long)]
    from: Option<String>,
    /// Dead-lettered before (the Kafka record time).
    #[arg(long)]
    to: Option<String>,
    /// At most this many dead letters.
    #[arg(long)]
    limit: Option<usize>,
    /// The dead-letter topic.
    #[arg(long, default_value = TOPIC_REJECTED)]
    topic: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    brokers: String,
}

#[derive(Debug, clap::Args)]
struct DlqReplayArgs {
    /// The team whose dead letters to replay.
    #[arg(long)]
    team: String,
    #[command(flatten)]
    select: DlqSelect,
    /// Gateway base URL.
    #[arg(
        long,
        env = "SLUICE_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway: String,
    /// The operator token (`admin.token`).
    #[arg(long, env = "SLUICE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An `admin`-role key of the team (used instead of --token).
    #[arg(long)]
    api_key: Option<String>,
    /// Skip events this ClickHouse already stores in DATABASE.TABLE (without
    /// it, only the consumers' dedup window keeps a replay from storing an
    /// event twice).
    #[arg(long, env = "SLUICE_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    #[arg(long, default_value = "sluice")]
    database: String,
    #[arg(long, default_value = "events")]
    table: String,
    /// Select and check, then print what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Events per request.
    #[arg(long, default_value_t = sluice_cli::dlq::MAX_BATCH_EVENTS)]
    batch_size: usize,
    /// Tries per event answered `failed`, the first included.
    #[arg(long, default_value_t = 4)]
    attempts: u32,
}

#[derive(Debug, clap::Args)]
struct StatsArgs {
    #[command(subcommand)]
    query: StatsQuery,
    /// The team whose numbers to show.
    #[arg(long, global = true)]
    team: Option<String>,
    /// Start of the range [default: one period before --to].
    #[arg(long, global = true)]
    from: Option<String>,
    /// End of the range [default: now].
    #[arg(long, global = true)]
    to: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[arg(
        long,
        global = true,
        env = "SLUICE_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:18123"
    )]
    clickhouse_url: String,
    #[arg(long, global = true, default_value = "sluice")]
    database: String,
}

#[derive(Debug, clap::Args)]
struct AdminArgs {
    /// Gateway base URL (the admin API is served under /admin/v1).
    #[arg(
        long,
        env = "SLUICE_ADMIN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    admin_url: String,
    /// Operator token (`admin.token`) or a team admin key.
    #[arg(
        long,
        env = "SLUICE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum PluginAction {
    /// Scaffold a plugin in Rust, TypeScript, JavaScript or Python.
    ///
    /// Creates DIR/NAME with a plugin of the kind that builds and passes its
    /// own unit tests as generated: a validator that rejects the event names
    /// configured as `{"blocked_events": [...]}` (code `blocked_event`), or an
    /// enricher that adds the configured `{"environment": ...}` as a property.
    ///
    /// rust: a crate (Cargo.toml, src/lib.rs). ts / js: package.json naming
    /// the world, src/index.ts (.js), test/index.test.ts (.js), tsconfig.json
    /// (jsconfig.json), package-lock.json. python: NAME_WITH_UNDERSCORES.py,
    /// its test_*.py, sluice.toml naming the world, requirements.txt. Each
    /// depends on its SDK by version and carries the SDK package shipped with
    /// sluice in vendor/, so the directory builds on any machine with the
    /// language's toolchain, without a Sluice checkout.
    #[command(
        after_help = "Then: `sluice plugin test DIR/NAME` and `sluice plugin build DIR/NAME`."
    )]
    New {
        /// Plugin name: lowercase letters, digits and `-`, e.g. `block-test-events`.
        name: String,
        #[arg(long, value_parser = ["validator", "enricher"])]
        kind: String,
        /// The plugin's language.
        #[arg(long, default_value = "rust", value_parser = ["rust", "ts", "js", "python"])]
        lang: String,
        /// Directory to create the plugin in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        sdk: SdkArg,
    },
    /// Build a plugin into a WebAssembly component and print its path.
    ///
    /// The language is detected from the directory: Cargo.toml (Rust:
    /// `cargo build --release --target wasm32-wasip2`, the component in
    /// cargo's target directory); package.json with "sluice" (TypeScript,
    /// JavaScript: `npm ci` from the project's lockfile, then the SDK
    /// package's `sluice-plugin build`, esbuild and componentize-js; needs
    /// Node.js 20 and npm); sluice.toml (Python: a venv in DIR/.venv from
    /// DIR/requirements.txt, then `python -m sluice_plugin_tools build`,
    /// componentize-py; needs Python 3.11). TypeScript, JavaScript and Python
    /// components go to DIR/dist/<dir name, `-` as `_`>.wasm.
    Build {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a plugin's unit tests natively, with its language's toolchain.
    ///
    /// Rust: `cargo test`. TypeScript, JavaScript: tsc (with a tsconfig.json),
    /// then test/*.test.{ts,js} with `node --test`, bundled by esbuild with
    /// the SDK (the SDK package's `sluice-plugin test`). Python: pytest, from
    /// the project's venv (DIR/.venv). Installs the toolchain as `build` does.
    Test {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a component over a JSON file of sample events and print each result.
    ///
    /// Uses the gateway's runtime and limits; needs no Kafka. Exits 1 if any
    /// event was rejected or failed, so it can gate a pull request.
    Run {
        component: PathBuf,
        #[arg(long, value_parser = ["validator", "enricher"])]
        kind: String,
        /// The team's plugin configuration (a JSON object).
        #[arg(long, default_value = "{}")]
        config: String,
        /// A JSON array of events in the ingest API's shape, or {"events": [...]}.
        #[arg(long)]
        events: PathBuf,
    },
    /// Change a plugin's configuration, failure policy, order, enabled state
    /// or the events it runs on.
    Configure(ConfigureArgs),
    /// Upload a component to a gateway and wait until it runs (unless --no-activate).
    Upload {
        component: PathBuf,
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long, value_parser = ["validator", "enricher"])]
        kind: String,
        #[arg(long)]
        no_activate: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Args)]
struct SdkArg {
    /// The directory holding the SDK packages (scripts/package-sdks makes
    /// them) [default: SLUICE_SDK_DIR, else <dir of sluice>/../share/sluice/sdk,
    /// else ${SLUICE_CACHE:-~/.cache/sluice}/sdk]. For developing the Rust SDK
    /// itself, its sources (plugins/sdk): the project then depends on them by
    /// path and builds only on this machine.
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ConfigureArgs {
    #[arg(long)]
    team: String,
    #[arg(long)]
    name: String,
    /// The team's configuration for the plugin (a JSON object).
    #[arg(long)]
    config: Option<String>,
    /// What happens to events when the plugin fails.
    #[arg(long, value_parser = ["reject", "pass", "dead_letter"])]
    policy: Option<String>,
    /// Position in the chain (validators always run before enrichers).
    #[arg(long)]
    order: Option<i32>,
    /// Re-enable (true) or disable (false) the plugin.
    #[arg(long)]
    enabled: Option<bool>,
    /// Run the plugin only on events with this name (repeat for more);
    /// the others pass it unchanged, without a call.
    #[arg(long = "event", value_name = "NAME")]
    events: Vec<String>,
    /// Run the plugin on every event again (clears --event).
    #[arg(long, conflicts_with = "events")]
    all_events: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, Subcommand)]
enum SchemaAction {
    /// Register a JSON Schema file as the next version of TEAM/EVENT.
    ///
    /// Needs the team's admin key (or the operator token).
    Register {
        /// TEAM/EVENT, e.g. `acme/Signup Completed`.
        subject: String,
        /// The JSON Schema file (it describes the event's `properties`).
        #[arg(long)]
        file: PathBuf,
    },
    /// Check a JSON Schema file against TEAM/EVENT's versions without
    /// registering it (any key of the team will do).
    Check {
        /// TEAM/EVENT, e.g. `acme/Signup Completed`.
        subject: String,
        /// The JSON Schema file (it describes the event's `properties`).
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum StatsQuery {
    /// Events over time [default range: the last 24 hours].
    Events {
        /// Bucket size: 5m, hour or day.
        #[arg(long, default_value = "hour")]
        by: sluice_clickhouse::dashboard::Granularity,
        /// Only this event name.
        #[arg(long)]
        event: Option<String>,
    },
    /// Daily active users [default range: the last 7 days].
    Dau,
    /// The most frequent events [default range: the last 7 days].
    Top {
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create a key and print it (shown once; only its hash is stored).
    Create {
        /// Team the key sends events for.
        #[arg(long)]
        team: String,
        /// `ingest` (send events) or `admin` (also manage the team's keys, plugins, schemas).
        #[arg(long, default_value = "ingest", value_parser = ["ingest", "admin"])]
        role: String,
        /// Free text to recognise the key by (e.g. "ios app").
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys (a team admin sees only its own team).
    List {
        #[arg(long)]
        team: Option<String>,
    },
    /// Revoke a key by id; every gateway refuses it within a second.
    Revoke { key_id: String },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Schema { admin, action } = cli.command {
        return schema_command(admin, action).await;
    }
    // `{:#}` of an anyhow error includes its causes.
    sluice_core::shutdown::exit_code(run(cli).await.map_err(|err| format!("{err:#}")))
}

/// Exit codes for pull-request checks: 0 accepted, 1 refused with the
/// reasons printed, 2 usage or connection error.
async fn schema_command(admin: AdminArgs, action: SchemaAction) -> std::process::ExitCode {
    let result = async {
        let token = admin
            .token
            .ok_or_else(|| anyhow::anyhow!("a token is required: --token or SLUICE_ADMIN_TOKEN"))?;
        let client = sluice_cli::schema::SchemaClient::new(&admin.admin_url, &token)?;
        let (subject, file, register) = match &action {
            SchemaAction::Register { subject, file } => (subject, file, true),
            SchemaAction::Check { subject, file } => (subject, file, false),
        };
        let (team, event) = sluice_cli::schema::parse_subject(subject)?;
        let text = sluice_cli::schema::read_schema(file)?;
        let decision = if register {
            client.register(team, event, &text).await?
        } else {
            client.check(team, event, &text).await?
        };
        anyhow::Ok((subject.clone(), file.clone(), register, decision))
    }
    .await;
    match result {
        Ok((subject, file, register, decision)) => {
            match &decision {
                sluice_cli::schema::Decision::Accepted { version } if register => println!(
                    "registered {} as {subject} version {}",
                    file.display(),
                    version.map_or("?".to_owned(), |v| v.to_string())
                ),
                sluice_cli::schema::Decision::Accepted { .. } => {
                    println!("{} is compatible with {subject}", file.display());
                }
                sluice_cli::schema::Decision::Refused { reasons } => {
                    println!("{} is refused for {subject}:", file.display());
                    for reason in reasons {
                        println!("  - {reason}");
                    }
                }
            }
            std::process::ExitCode::from(decision.exit_code())
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugin { action } => return plugin_command(action).await,
        Command::Stats(args) => stats(args).await?,
        Command::Replay(args) => replay(args).await?,
        Command::Dlq { action } => dlq(action).await?,
        Command::Tail {
            topic,
            last,
            brokers,
        } => {
            let kafka = KafkaSettings {
                brokers,
                ..KafkaSettings::default()
            };
            let records = tokio::task::spawn_blocking(move || {
                sluice_core::readback::tail(&kafka, &topic, last, Duration::from_secs(10))
            })
            .await??;
            for record in records {
                let headers: Vec<String> = record
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "p{} @{} key={} {}\n    {}",
                    record.partition,
                    record.offset,
                    record.key,
                    headers.join(" "),
                    String::from_utf8_lossy(&record.payload)
                );
            }
        }
        Command::Keys { admin, action } => {
            let Some(token) = admin.token else {
                anyhow::bail!("an admin token is required: --token or SLUICE_ADMIN_TOKEN");
            };
            let client = AdminClient::new(&admin.admin_url, &token);
            match action {
                KeysAction::Create { team, role, label } => {
                    let created = client.create_key(&team, &role, &label).await?;
                    println!("{}", created["key"].as_str().unwrap_or("?"));
                    eprintln!(
                        "created key {} for team {} (role {}); it is not shown again",
                        created["key_id"].as_str().unwrap_or("?"),
                        team,
                        role
                    );
                }
                KeysAction::List { team } => {
                    for key in client.list_keys(team.as_deref()).await? {
                        println!("{}", key_line(&key));
                    }
                }
                KeysAction::Revoke { key_id } => {
                    let revoked = client.revoke_key(&key_id).await?;
                    println!("{}", key_line(&revoked));
                }
            }
        }
        // Handled in `main` (it has its own exit codes).
        Command::Schema { .. } => {}
        Command::SendSample {
            gateway,
            api_key,
            brokers,
            topic,
            events,
            timeout_secs,
        } => {
            let options = SampleOptions {
                gateway,
                api_key,
                kafka: KafkaSettings {
                    brokers,
                    ..KafkaSettings::default()
                },
                topic,
                events,
                timeout: Duration::from_secs(timeout_secs),
            };
            sample::run(&options).await?;
        }
    }
    Ok(())
}

/// `sluice stats`: one dashboard query, printed as a table or JSON.
async fn stats(args: StatsArgs) -> anyhow::Result<()> {
    use sluice_clickhouse::dashboard::Dashboard;
    const DAY_MS: i64 = 86_400_000;
    let team = args
        .team
        .ok_or_else(|| anyhow::anyhow!("--team is required"))?;
    let dashboard = Dashboard::new(&args.clickhouse_url, &args.database)?;
    let span = match args.query {
        StatsQuery::Events { .. } => DAY_MS,
        StatsQuery::Dau | StatsQuery::Top { .. } => 7 * DAY_MS,
    };
    let (from, to) = sluice_cli::stats::range(args.from.as_deref(), args.to.as_deref(), span)?;
    let points = match args.query {
        StatsQuery::Events { by, event } => {
            dashboard
                .event_counts(&team, from, to, by, event.as_deref())
                .await?
        }
        StatsQuery::Dau => dashboard.dau(&team, from, to).await?,
        StatsQuery::Top { limit } => dashboard.top_events(&team, from, to, limit).await?,
    };
    println!("{}", sluice_cli::stats::render(&points, args.json));
    Ok(())
}

/// `sluice replay`: the lake's events in a range that ClickHouse lacks.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let parse = |text: &str| {
        sluice_core::Timestamp::parse_rfc3339(text).map_err(|e| anyhow::anyhow!("`{text}`: {e}"))
    };
    let range = sluice_loader::replay::ReplayRange {
        from: parse(&args.from)?,
        to: parse(&args.to)?,
        team: args.team,
    };
    let settings = sluice_loader::config::ClickHouseSettings {
        url: args.clickhouse_url,
        database: args.database,
        table: args.table,
        ..Default::default()
    };
    let sink = sluice_loader::sink::ClickHouseSink::connect(&settings).await?;
    let lake_settings = if args.lake.starts_with("s3://") {
        sluice_loader::config::LakeSettings {
            url: Some(args.lake),
            endpoint: args.lake_endpoint,
            region: args.lake_region,
            ..Default::default()
        }
    } else {
        sluice_loader::config::LakeSettings {
            dir: Some(PathBuf::from(args.lake)),
            ..Default::default()
        }
    };
    let store = lake_settings
        .store()
        .map_err(anyhow::Error::msg)?
        .ok_or_else(|| anyhow::anyhow!("--lake is empty"))?;
    let lake = sluice_loader::lake::Lake::new(store);
    let files = sluice_loader::replay::files_in_range(&lake, &range)
        .await?
        .len();
    let bar = indicatif::ProgressBar::new(files as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = sluice_loader::replay::replay(&lake, &sink, &range, |r| {
        bar.inc(1);
        bar.set_message(format!(
            "{} inserted, {} already present",
            r.inserted, r.already_present
        ));
    })
    .await?;
    bar.finish();
    println!(
        "replayed {} files: {} events in range, {} inserted, {} already present",
        report.files, report.events_in_range, report.inserted, report.already_present
    );
    Ok(())
}

/// `sluice dlq list|replay`.
async fn dlq(action: DlqAction) -> anyhow::Result<()> {
    use sluice_cli::dlq::{self, Filter, ReplayOptions, StoredCheck};
    let (team, select) = match &action {
        DlqAction::List { team, select } => (team.clone(), select),
        DlqAction::Replay(args) => (Some(args.team.clone()), &args.select),
    };
    let filter = Filter::new(
        team,
        select.codes.clone(),
        select.from.as_deref(),
        select.to.as_deref(),
        select.limit,
    )?;
    let kafka = KafkaSettings {
        brokers: select.brokers.clone(),
        ..KafkaSettings::default()
    };
    let topic = select.topic.clone();
    let DlqAction::Replay(args) = action else {
        return tokio::task::spawn_blocking(move || {
            dlq::list(&kafka, &topic, &filter, &mut std::io::stdout().lock()).map(|_| ())
        })
        .await?;
    };
    let token = args.api_key.or(args.token).ok_or_else(|| {
        anyhow::anyhow!("--token (the operator token) or --api-key (a team admin key) is required")
    })?;
    if args.clickhouse_url.is_none() {
        eprintln!(
            "note: without --clickhouse-url, events already stored are skipped only within the consumers' dedup window"
        );
    }
    let options = ReplayOptions {
        gateway: args.gateway,
        token,
        stored: args.clickhouse_url.map(|url| StoredCheck {
            url,
            database: args.database,
            table: args.table,
        }),
        dry_run: args.dry_run,
        batch_size: args.batch_size,
        attempts: args.attempts,
        backoff: Duration::from_secs(1),
        progress: true,
    };
    let letters =
        tokio::task::spawn_blocking(move || dlq::select(&kafka, &topic, &filter)).await??;
    let report = dlq::replay(&args.team, &letters, &options).await?;
    println!("{}", report.render());
    dlq::ensure_complete(&report)
}

/// `sluice plugin configure`: changes a plugin's record through the admin API.
async fn configure(args: ConfigureArgs) -> anyhow::Result<()> {
    let ConfigureArgs {
        team,
        name,
        config,
        policy,
        order,
        enabled,
        events,
        all_events,
        admin,
    } = args;
    let client = admin_client(admin)?;
    let mut change = serde_json::Map::new();
    if let Some(config) = config {
        let value: serde_json::Value = serde_json::from_str(&config)
            .map_err(|e| anyhow::anyhow!("--config is not JSON: {e}"))?;
        change.insert("config".into(), value);
    }
    if let Some(policy) = policy {
        change.insert("policy".into(), policy.into());
    }
    if let Some(order) = order {
        change.insert("order".into(), order.into());
    }
    if let Some(enabled) = enabled {
        change.insert("enabled".into(), enabled.into());
    }
    if all_events || !events.is_empty() {
        change.insert("events".into(), events.into());
    }
    let mut updated = client.update_plugin(&team, &name, change.into()).await?;
    // Return once the change is in force on the gateway (its chain rebuilt),
    // so that the next request sees it; a disabled or inactive plugin has
    // nothing to wait for.
    if let Some(version) = updated["active_version"].as_str().map(str::to_owned)
        && updated["state"] != "disabled"
    {
        updated = client
            .wait_active(&team, &name, &version, Duration::from_secs(120))
            .await?;
    }
    let runs_on = match updated["events"].as_array() {
        Some(names) => names
            .iter()
            .filter_map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        None => "every event".to_owned(),
    };
    println!(
        "{team}/{name}: state {}, policy {}, config {}, runs on {runs_on}",
        updated["state"].as_str().unwrap_or("?"),
        updated["policy"].as_str().unwrap_or("?"),
        updated["config"].as_str().unwrap_or("?")
    );
    Ok(())
}

fn admin_client(admin: AdminArgs) -> anyhow::Result<AdminClient> {
    let token = admin.token.ok_or_else(|| {
        anyhow::anyhow!("an admin token is required: --token or SLUICE_ADMIN_TOKEN")
    })?;
    Ok(AdminClient::new(&admin.admin_url, &token))
}

async fn plugin_command(action: PluginAction) -> anyhow::Result<()> {
    match action {
        PluginAction::New {
            name,
            kind,
            lang,
            dir,
            sdk,
        } => {
            let kind = plugin::parse_kind(&kind)?;
            let lang: plugin::Lang = lang.parse()?;
            let root = plugin::scaffold(&dir, &name, kind, lang, sdk.sdk.as_deref())?;
            println!("created {}", root.display());
            println!("next: sluice plugin test {}", root.display());
            println!("      sluice plugin build {}", root.display());
        }
        PluginAction::Build { dir } => {
            let path = plugin::build(&dir)?;
            let size = std::fs::metadata(&path)?.len();
            println!("{} ({} KiB)", path.display(), size / 1024);
        }
        PluginAction::Test { dir } => plugin::test(&dir)?,
        PluginAction::Run {
            component,
            kind,
            config,
            events,
        } => {
            let kind = plugin::parse_kind(&kind)?;
            // Off the async workers, as the gateway runs plugins: WASI's
            // blocking stdio (a guest's panic message, a Python traceback)
            // enters the runtime itself, which it may not from a task.
            let refused = tokio::task::spawn_blocking(move || {
                plugin::run(&component, kind, &config, &events)
            })
            .await??;
            if refused > 0 {
                std::process::exit(1);
            }
        }
        PluginAction::Configure(args) => configure(args).await?,
        PluginAction::Upload {
            component,
            team,
            name,
            version,
            kind,
            no_activate,
            admin,
        } => {
            let client = admin_client(admin)?;
            let bytes = std::fs::read(&component)?;
            let mut uploaded = client
                .upload_plugin(&team, &name, &version, &kind, !no_activate, bytes)
                .await?;
            if !no_activate {
                uploaded = client
                    // A TypeScript or Python component compiles in seconds
                    // to tens of seconds on a cold replica.
                    .wait_active(&team, &name, &version, Duration::from_secs(120))
                    .await?;
            }
            println!(
                "uploaded {team}/{name} {version}: state {}, active version {}",
                uploaded["state"].as_str().unwrap_or("?"),
                uploaded["active_version"].as_str().unwrap_or("none")
            );
        }
    }
    Ok(())
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
