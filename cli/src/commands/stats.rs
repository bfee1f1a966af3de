//! `sluice stats`: the dashboards' numbers from the rollups.

use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
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
    /// The rollups are on a cluster: read every shard through the
    /// `Distributed` tables (`<table>_all`) from the node at --clickhouse-url.
    #[arg(long, global = true)]
    cluster: bool,
}

#[derive(Debug, Subcommand)]
pub enum StatsQuery {
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

/// `sluice stats`: one dashboard query, printed as a table or JSON.
pub async fn run(args: StatsArgs) -> anyhow::Result<()> {
    use sluice_clickhouse::dashboard::Dashboard;
    const DAY_MS: i64 = 86_400_000;
    let team = args
        .team
        .ok_or_else(|| anyhow::anyhow!("--team is required"))?;
    let mut dashboard = Dashboard::new(&args.clickhouse_url, &args.database)?;
    if args.cluster {
        dashboard = dashboard.over_cluster();
    }
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
