//! A ClickHouse cluster as the writers see it: shards, each a list of
//! replicas holding the same rows, and a Kafka partition's one shard.
//!
//! The loader and the aggregator keep everything they decide a partition
//! on (its rows, their progress, the deduplication ids) in one shard:
//! partition `p` is always on shard `p % shards` (see `docs/architecture.md`,
//! "On a ClickHouse cluster"), so one insert stays one atomic block in one
//! shard's replicated tables and their exactly-once arguments hold per shard.
//! A shard is used through one replica at a time; when a call to it fails,
//! the next goes to its twin. One server is one shard of one replica.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::probe::{Capabilities, probe};
use super::{Error, quote, select_client};

/// One replica of a shard (or the one server).
#[derive(Debug)]
pub struct Replica {
    pub url: String,
    /// In the caller's database.
    pub client: clickhouse::Client,
    /// Without a database: for statements that name theirs.
    pub root: clickhouse::Client,
}

/// A shard: the replicas that hold the same rows.
#[derive(Debug)]
pub struct Shard {
    replicas: Vec<Replica>,
    /// The replica used now; moves on when it fails.
    current: AtomicUsize,
}

impl Shard {
    /// The replica to use now.
    pub fn replica(&self) -> &Replica {
        &self.replicas[self.current.load(Ordering::Relaxed) % self.replicas.len()]
    }

    /// Moves to the next replica after `failed` failed (unless another
    /// caller already moved on from it).
    pub fn fail_over(&self, failed: &Replica, error: &str) {
        if self.replicas.len() < 2 {
            return;
        }
        let now = self.current.load(Ordering::Relaxed);
        if std::ptr::eq(&self.replicas[now % self.replicas.len()], failed) {
            self.current.store(now + 1, Ordering::Relaxed);
            let next = &self.replicas[(now + 1) % self.replicas.len()];
            tracing::warn!(failed = %failed.url, next = %next.url, %error, "ClickHouse replica failed; using its twin");
        }
    }

    /// `call` with the current replica's client, then with each other
    /// replica's while they fail; the last error if all did.
    pub async fn each_replica<T, E: Display, F>(
        &self,
        call: impl Fn(clickhouse::Client) -> F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let mut attempts = self.replicas.len();
        loop {
            let replica = self.replica();
            match call(replica.client.clone()).await {
                Ok(value) => return Ok(value),
                Err(err) if attempts > 1 => {
                    self.fail_over(replica, &err.to_string());
                    attempts -= 1;
                }
                Err(err) => {
                    self.fail_over(replica, &err.to_string());
                    return Err(err);
                }
            }
        }
    }
}

/// Each shard's replica URLs as configured: `shards`, or the one server at
/// `url` as one shard of one replica.
pub fn replicas(url: &str, shards: &[Vec<String>]) -> Vec<Vec<String>> {
    if shards.is_empty() {
        vec![vec![url.to_owned()]]
    } else {
        shards.to_vec()
    }
}

/// Every shard of a cluster, in `remote_servers` order.
#[derive(Debug)]
pub struct Shards(Vec<Shard>);

impl Shards {
    /// `replicas`: each shard's replica URLs, none empty; `client` makes a
    /// connection to one URL (credentials, compression); `database` is the
    /// one [`Replica::client`] works in.
    pub fn new(
        replicas: &[Vec<String>],
        database: &str,
        client: impl Fn(&str) -> clickhouse::Client,
    ) -> Self {
        Self(
            replicas
                .iter()
                .filter(|urls| !urls.is_empty())
                .map(|urls| Shard {
                    replicas: urls
                        .iter()
                        .map(|url| Replica {
                            url: url.clone(),
                            client: client(url).with_database(database),
                            root: client(url),
                        })
                        .collect(),
                    current: AtomicUsize::new(0),
                })
                .collect(),
        )
    }

    /// The shard that stores `partition`.
    pub fn for_partition(&self, partition: i32) -> &Shard {
        &self.0[self.index_of(partition)]
    }

    /// Its index: `partition % shards`.
    pub fn index_of(&self, partition: i32) -> usize {
        let n = i32::try_from(self.0.len()).unwrap_or(i32::MAX).max(1);
        partition.rem_euclid(n) as usize
    }

    pub fn iter(&self) -> impl Iterator<Item = &Shard> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The retention job of `settings`' table, one per shard on its current
    /// replica (a partition dropped there is dropped on the twin by
    /// replication); `dropped` and `runs` name the caller's metrics.
    pub fn retention(
        &self,
        settings: &super::SchemaSettings,
        dropped: &'static str,
        runs: &'static str,
    ) -> Vec<super::Retention> {
        self.0
            .iter()
            .map(|shard| {
                super::Retention::new(
                    shard.replica().root.clone(),
                    settings.clone(),
                    dropped,
                    runs,
                )
            })
            .collect()
    }

    /// The first replica, in shard and replica order, that answers the
    /// probe, and what it can do: where migrations run.
    pub async fn first_answer(&self) -> Result<(&Replica, Capabilities), Error> {
        let mut errors = Vec::new();
        for replica in self.0.iter().flat_map(|s| &s.replicas) {
            match probe(&replica.root).await {
                Ok(caps) => return Ok((replica, caps)),
                Err(err) => errors.push(format!("{}: {err}", replica.url)),
            }
        }
        Err(Error::Unexpected(format!(
            "no ClickHouse node answered the probe ({})",
            errors.join("; ")
        )))
    }

    /// Checks, after the migrations ran, that every replica that answers
    /// has the same tables and columns in `database` as the first one that
    /// does. A replica created by hand from other DDL, or left behind by an
    /// older version, would otherwise take inserts into another shape, or
    /// refuse them only when its twin fails. Replicas that do not answer are
    /// skipped (they are checked at the next start); disagreement that
    /// outlasts `grace` is refused with an error naming the setting,
    /// `clickhouse.shards[i][j]`, and the first differences.
    pub async fn check_same_schema(
        &self,
        database: &str,
        grace: std::time::Duration,
    ) -> Result<(), Error> {
        let deadline = std::time::Instant::now() + grace;
        loop {
            match self.schema_difference(database).await {
                None => return Ok(()),
                Some(difference) if std::time::Instant::now() >= deadline => {
                    return Err(Error::InvalidSettings(difference));
                }
                Some(difference) => {
                    tracing::warn!(%difference, "ClickHouse replicas differ; waiting for DDL to reach them");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The first replica whose columns differ from the first answering
    /// replica's, described; None when all that answer agree.
    async fn schema_difference(&self, database: &str) -> Option<String> {
        let mut first: Option<(String, BTreeSet<String>)> = None;
        for (i, shard) in self.0.iter().enumerate() {
            for (j, replica) in shard.replicas.iter().enumerate() {
                let name = format!("clickhouse.shards[{i}][{j}] ({})", replica.url);
                let columns = match columns(&replica.root, database).await {
                    Ok(columns) => columns,
                    Err(error) => {
                        tracing::warn!(replica = %name, %error, "not checking the schema of a replica that does not answer");
                        continue;
                    }
                };
                let Some((first_name, expected)) = &first else {
                    first = Some((name, columns));
                    continue;
                };
                if &columns != expected {
                    let lacks: Vec<_> = expected.difference(&columns).take(3).collect();
                    let extra: Vec<_> = columns.difference(expected).take(3).collect();
                    return Some(format!(
                        "{name} has another schema in database `{database}` than {first_name}: \
                         it lacks {lacks:?} and has {extra:?} (the first three of each); give it \
                         the tables of its twin (docs/operations.md, \"A new replica\")"
                    ));
                }
            }
        }
        None
    }
}

/// How long [`Shards::check_same_schema`] lets replicas disagree before it
/// refuses: a replica that was away while `ON CLUSTER` DDL ran replays the
/// queue when it is back, and may answer a moment before it has.
pub const SCHEMA_AGREEMENT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// `table.column type` of every column in `database`.
async fn columns(
    client: &clickhouse::Client,
    database: &str,
) -> Result<BTreeSet<String>, clickhouse::error::Error> {
    let sql = format!(
        "SELECT concat(table, '.', name, ' ', type) FROM system.columns WHERE database = {}",
        quote(database)
    );
    let rows: Vec<String> = select_client(client).query(&sql).fetch_all().await?;
    Ok(rows.into_iter().collect())
}

/// Checks that the servers know `cluster` with `shards` shards: otherwise
/// `ON CLUSTER` DDL would create the schema elsewhere than where the
/// services write.
pub async fn check_cluster(
    client: &clickhouse::Client,
    cluster: &str,
    shards: usize,
) -> Result<(), Error> {
    let sql = format!(
        "SELECT count(DISTINCT shard_num) FROM system.clusters WHERE cluster = {}",
        quote(cluster)
    );
    let found: u64 = select_client(client)
        .query(&sql)
        .fetch_one()
        .await
        .map_err(|e| Error::clickhouse("reading system.clusters failed", e))?;
    if found != shards as u64 {
        return Err(Error::InvalidSettings(format!(
            "cluster `{cluster}` has {found} shard(s) on the server; {shards} are configured"
        )));
    }
    Ok(())
}

/// The configuration rule for `shards` and `cluster` (both services use
/// it, with `prefix` naming their settings): a cluster name with shards,
/// neither without; each shard lists at least one http(s) URL.
pub fn check_settings(prefix: &str, shards: &[Vec<String>], cluster: &str) -> Result<(), String> {
    if shards.is_empty() {
        return match cluster.is_empty() {
            true => Ok(()),
            false => Err(format!("{prefix}.cluster needs {prefix}.shards")),
        };
    }
    if !super::is_identifier(cluster) {
        return Err(format!(
            "{prefix}.shards needs {prefix}.cluster, the cluster's name in remote_servers (A-Z, a-z, 0-9, _)"
        ));
    }
    for (i, replicas) in shards.iter().enumerate() {
        if replicas.is_empty() {
            return Err(format!("{prefix}.shards[{i}] lists no replica"));
        }
        for url in replicas {
            sluice_core::config::check_http_url(&format!("{prefix}.shards[{i}]"), url)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_always_lands_on_the_same_shard() {
        let urls = |n: usize| -> Vec<Vec<String>> {
            (0..n)
                .map(|s| vec![format!("http://s{s}r1:8123"), format!("http://s{s}r2:8123")])
                .collect()
        };
        let shards = Shards::new(&urls(2), "db", |url| {
            clickhouse::Client::default().with_url(url)
        });
        assert_eq!(shards.len(), 2);
        for partition in 0..8 {
            let shard = shards.for_partition(partition);
            let expected = format!("http://s{}r1:8123", partition % 2);
            assert_eq!(shard.replica().url, expected);
        }
        // Failing over moves one shard to its twin, once per failure seen.
        let shard = shards.for_partition(1);
        let first = shard.replica();
        shard.fail_over(first, "down");
        shard.fail_over(first, "down (seen late by another caller)");
        assert_eq!(shard.replica().url, "http://s1r2:8123");
        assert_eq!(shards.for_partition(0).replica().url, "http://s0r1:8123");
        let one = Shards::new(&[vec!["http://one:8123".to_owned()]], "db", |url| {
            clickhouse::Client::default().with_url(url)
        });
        assert_eq!(one.for_partition(-3).replica().url, "http://one:8123");
    }

    #[test]
    fn settings_need_a_cluster_name_with_shards() {
        let two = vec![vec!["http://a:8123".to_owned()], vec![]];
        assert!(check_settings("clickhouse", &[], "").is_ok());
        assert!(
            check_settings("clickhouse", &[], "x")
                .unwrap_err()
                .contains("needs clickhouse.shards")
        );
        assert!(
            check_settings("clickhouse", &two, "")
                .unwrap_err()
                .contains("clickhouse.cluster")
        );
        assert!(
            check_settings("clickhouse", &two, "sluice")
                .unwrap_err()
                .contains("shards[1] lists no replica")
        );
        let bad = vec![vec!["ftp://a".to_owned()]];
        assert!(
            check_settings("clickhouse", &bad, "sluice")
                .unwrap_err()
                .contains("shards[0]")
        );
    }
}
