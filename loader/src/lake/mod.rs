//! The lake: an immutable copy of every event, for replay and for engines
//! other than ClickHouse.
//!
//! Layout (keys in a local directory or an S3-compatible bucket, through
//! [`store::ObjectStore`]):
//!
//! ```text
//! events/team=<team>/date=<YYYY-MM-DD>/hour=<HH>/<topic>-<partition>-<first>-<last>.jsonl.zst
//! manifests/<topic>/<partition>/<first>-<last>.json
//! ```
//!
//! Files hold the `events.raw` record values as JSON lines, zstd-compressed.
//! Decision: JSON lines rather than Parquet. They are the wire format
//! already (no conversion that could lose an enricher's extra field), need no
//! schema as events evolve, replay by streaming them back, and every engine
//! (ClickHouse, DuckDB, Spark) reads them; Parquet would need the Arrow stack
//! and a schema per team, for a copy that is read rarely.
//!
//! Exactly once per offset range: a range's data objects are written first,
//! each all-or-nothing, then its manifest, last. A manifest's presence is the
//! commit: readers go through manifests only, so data objects of a range
//! whose manifest was never written are invisible. On start the lake finds,
//! per partition, the highest offset a manifest covers and never writes
//! those offsets again. Object names are deterministic (topic, partition,
//! first and last offset), so a crash before the manifest followed by the
//! same range again rewrites the same objects with the same content; a
//! different range leaves the orphans unreferenced.

pub mod s3;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::Event;

#[derive(Debug)]
pub struct Lake {
    store: store::ObjectStore,
    /// Highest offset covered by a manifest, per (topic, partition).
    covered: Mutex<HashMap<(String, i32), i64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub rows: usize,
    pub team_id: String,
    /// The hour the file's events belong to (event time), RFC 3339.
    pub hour: String,
}

impl Lake {
    pub fn new(store: store::ObjectStore) -> Self {
        Self {
            store,
            covered: Mutex::new(HashMap::new()),
        }
    }

    /// A lake in a local directory.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self::new(store::ObjectStore::local(root))
    }

    pub fn store(&self) -> &store::ObjectStore {
        &self.store
    }

    fn manifest_dir(topic: &str, partition: i32) -> String {
        format!("manifests/{topic}/{partition}/")
    }

    /// The highest offset of `partition` already in the lake, if any.
    pub async fn covered(&self, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
        let key = (topic.to_owned(), partition);
        if let Some(known) = self.covered.lock().ok().and_then(|c| c.get(&key).copied()) {
            return Ok(Some(known));
        }
        let mut highest = None;
        for key in self
            .store
            .list(&Self::manifest_dir(topic, partition))
            .await?
        {
            let last = key
                .rsplit('/')
                .next()
                .and_then(|name| name.strip_suffix(".json"))
                .and_then(|stem| stem.split_once('-'))
                .and_then(|(_, last)| last.parse::<i64>().ok());
            highest = highest.max(last);
        }
        if let (Some(h), Ok(mut cache)) = (highest, self.covered.lock()) {
            cache.insert(key, h);
        }
        Ok(highest)
    }

    /// Writes the events of `[first, last]` that no earlier manifest covers.
    pub async fn write_range(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
        events: &[(i64, Event<'_>)],
    ) -> anyhow::Result<()> {
        let covered = self.covered(topic, partition).await?.unwrap_or(-1);
        if last <= covered {
            return Ok(());
        }
        let first = first.max(covered + 1);
        let mut groups: BTreeMap<(String, String, String), Vec<&Event<'_>>> = BTreeMap::new();
        for (offset, event) in events {
            if *offset < first {
                continue;
            }
            let at = DateTime::<Utc>::from_timestamp_millis(event.timestamp.as_millis())
                .unwrap_or_default();
            let key = (
                event.team_id.to_string(),
                at.format("%Y-%m-%d").to_string(),
                at.format("%H").to_string(),
            );
            groups.entry(key).or_default().push(event);
        }
        let mut files = Vec::new();
        for ((team, date, hour), events) in groups {
            let relative = format!(
                "events/team={}/date={date}/hour={hour}/{topic}-{partition}-{first}-{last}.jsonl.zst",
                sanitize(&team)
            );
            let mut lines = Vec::new();
            for event in &events {
                serde_json::to_writer(&mut lines, event)?;
                lines.push(b'\n');
            }
            let compressed = zstd::encode_all(lines.as_slice(), 3)?;
            self.store.put(&relative, compressed).await?;
            files.push(ManifestFile {
                path: relative,
                rows: events.len(),
                team_id: team,
                hour: format!("{date}T{hour}:00:00Z"),
            });
        }
        let manifest = Manifest {
            topic: topic.to_owned(),
            partition,
            first_offset: first,
            last_offset: last,
            files,
        };
        let key = format!(
            "{}{first:020}-{last:020}.json",
            Self::manifest_dir(topic, partition)
        );
        // Last: the manifest commits the range.
        self.store
            .put(&key, serde_json::to_vec_pretty(&manifest)?)
            .await?;
        if let Ok(mut cache) = self.covered.lock() {
            cache.insert((topic.to_owned(), partition), last);
        }
        Ok(())
    }

    /// Every manifest, in (topic, partition, offset) order.
    pub async fn manifests(&self) -> anyhow::Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for key in self.store.list("manifests/").await? {
            if !key.ends_with(".json") {
                continue;
            }
            let bytes = self.store.get(&key).await?;
            out.push(serde_json::from_slice(&bytes).with_context(|| format!("reading {key}"))?);
        }
        Ok(out)
    }

    /// The JSON lines of one data file.
    pub async fn read_file(&self, relative: &str) -> anyhow::Result<Vec<u8>> {
        let compressed = self.store.get(relative).await?;
        Ok(zstd::decode_all(compressed.as_slice())?)
    }
}

/// Team ids are validated upstream; this keeps a path a path regardless.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128, team: &'static str, ts: i64) -> Event<'static> {
        Event {
            event_id: uuid::Uuid::from_u128(id),
            team_id: team.into(),
            event: "e".into(),
            user_id: "u".into(),
            timestamp: sluice_core::Timestamp::from_millis(ts),
            received_at: sluice_core::Timestamp::from_millis(ts),
            schema_version: 1,
            properties: sluice_core::event::empty_object(),
            context: None,
        }
    }

    #[tokio::test]
    async fn ranges_are_written_once_and_partitioned_by_team_and_hour() {
        let dir = std::env::temp_dir().join(format!("lake-{}", uuid::Uuid::new_v4().simple()));
        let lake = Lake::local(dir.clone());
        let hour = 3_600_000;
        let events = vec![
            (10, event(1, "a", 1_800_000_000_000)),
            (11, event(2, "b", 1_800_000_000_000)),
            (12, event(3, "a", 1_800_000_000_000 + hour)),
        ];
        lake.write_range("events.raw", 0, 10, 12, &events)
            .await
            .unwrap();
        // The same range again, and an overlapping one after a "crash".
        let fresh = Lake::local(dir.clone());
        assert_eq!(fresh.covered("events.raw", 0).await.unwrap(), Some(12));
        fresh
            .write_range("events.raw", 0, 10, 12, &events)
            .await
            .unwrap();
        let mut more = events.clone();
        more.push((13, event(4, "a", 1_800_000_000_000)));
        fresh
            .write_range("events.raw", 0, 10, 13, &more)
            .await
            .unwrap();

        // A crash between write and rename leaves a complete temp file.
        let dir0 = dir.join("manifests/events.raw/0");
        let committed = std::fs::read_dir(&dir0)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::copy(&committed, dir0.join(".left-by-a-crash.tmp")).unwrap();
        let manifests = fresh.manifests().await.unwrap();
        assert_eq!(manifests.len(), 2, "temp files are not manifests");
        assert_eq!(
            (manifests[1].first_offset, manifests[1].last_offset),
            (13, 13)
        );
        let rows: usize = manifests
            .iter()
            .flat_map(|m| &m.files)
            .map(|f| f.rows)
            .sum();
        assert_eq!(rows, 4, "every event once");
        let first = &manifests[0].files;
        assert_eq!(first.len(), 3, "team a hour 1, team a hour 2, team b");
        let text = String::from_utf8(fresh.read_file(&first[0].path).await.unwrap()).unwrap();
        assert!(
            first[0]
                .path
                .starts_with("events/team=a/date=2027-01-15/hour=08/"),
            "{}",
            first[0].path
        );
        assert_eq!(text.lines().count(), first[0].rows);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
