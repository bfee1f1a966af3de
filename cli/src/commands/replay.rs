//! `sluice replay`: re-load a range of the lake into ClickHouse.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
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

/// `sluice replay`: the lake's events in a range that ClickHouse lacks.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
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
