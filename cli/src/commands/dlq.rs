//! `sluice dlq list|replay`: the dead-letter topic read back and re-driven
//! through a gateway.

use std::time::Duration;

use clap::Subcommand;
use sluice_core::kafka::{KafkaSettings, TOPIC_REJECTED};

#[derive(Debug, Subcommand)]
pub enum DlqAction {
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
pub struct DlqSelect {
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
pub struct DlqReplayArgs {
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

/// `sluice dlq list|replay`.
pub async fn run(action: DlqAction) -> anyhow::Result<()> {
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
