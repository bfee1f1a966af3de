//! The lake: an immutable copy of every event, for replay and for engines
//! other than ClickHouse.
//!
//! Layout (a local directory today; the same layout suits any object store):
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
//! Exactly once per offset range: a range's data files are written first,
//! each atomically (temp file + rename), then its manifest. On start the lake
//! finds, per partition, the highest offset a manifest covers and never
//! writes those offsets again; a crash before the manifest rewrites the same
//! files with the same content.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_core::Event;

#[derive(Debug)]
pub struct Lake {
    root: PathBuf,
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
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            covered: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn manifest_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.root
            .join("manifests")
            .join(topic)
            .join(partition.to_string())
    }

    /// The highest offset of `partition` already in the lake, if any.
    pub fn covered(&self, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
        let key = (topic.to_owned(), partition);
        if let Some(known) = self.covered.lock().ok().and_then(|c| c.get(&key).copied()) {
            return Ok(Some(known));
        }
        let dir = self.manifest_dir(topic, partition);
        let mut highest = None;
        if dir.is_dir() {
            for entry in std::fs::read_dir(&dir)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                let last = name
                    .strip_suffix(".json")
                    .and_then(|stem| stem.split_once('-'))
                    .and_then(|(_, last)| last.parse::<i64>().ok());
                highest = highest.max(last);
            }
        }
        if let (Some(h), Ok(mut cache)) = (highest, self.covered.lock()) {
            cache.insert(key, h);
        }
        Ok(highest)
    }

    /// Writes the events of `[first, last]` that no earlier manifest covers.
    pub fn write_range(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
        events: &[(i64, Event<'_>)],
    ) -> anyhow::Result<()> {
        let covered = self.covered(topic, partition)?.unwrap_or(-1);
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
            write_atomically(&self.root.join(&relative), &compressed)?;
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
        let path = self
            .manifest_dir(topic, partition)
            .join(format!("{first:020}-{last:020}.json"));
        write_atomically(&path, &serde_json::to_vec_pretty(&manifest)?)?;
        if let Ok(mut cache) = self.covered.lock() {
            cache.insert((topic.to_owned(), partition), last);
        }
        Ok(())
    }

    /// Every manifest, in (topic, partition, offset) order.
    pub fn manifests(&self) -> anyhow::Result<Vec<Manifest>> {
        let mut out = Vec::new();
        let root = self.root.join("manifests");
        if !root.is_dir() {
            return Ok(out);
        }
        let mut paths = Vec::new();
        for topic in std::fs::read_dir(&root)? {
            for partition in std::fs::read_dir(topic?.path())? {
                for file in std::fs::read_dir(partition?.path())? {
                    let path = file?.path();
                    // A crash between writing and renaming leaves a complete
                    // `.<id>.tmp` file: it is not a manifest, and counting it
                    // would report its range twice.
                    if is_manifest(&path) {
                        paths.push(path);
                    }
                }
            }
        }
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path)?;
            out.push(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
        Ok(out)
    }

    /// The JSON lines of one data file.
    pub fn read_file(&self, relative: &str) -> anyhow::Result<Vec<u8>> {
        let compressed = std::fs::read(self.root.join(relative))?;
        Ok(zstd::decode_all(compressed.as_slice())?)
    }
}

/// A committed manifest: `<first>-<last>.json`, never a temp file.
fn is_manifest(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.') && n.ends_with(".json"))
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

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("lake path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
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

    #[test]
    fn ranges_are_written_once_and_partitioned_by_team_and_hour() {
        let dir = std::env::temp_dir().join(format!("lake-{}", uuid::Uuid::new_v4().simple()));
        let lake = Lake::new(dir.clone());
        let hour = 3_600_000;
        let events = vec![
            (10, event(1, "a", 1_800_000_000_000)),
            (11, event(2, "b", 1_800_000_000_000)),
            (12, event(3, "a", 1_800_000_000_000 + hour)),
        ];
        lake.write_range("events.raw", 0, 10, 12, &events).unwrap();
        // The same range again, and an overlapping one after a "crash".
        let fresh = Lake::new(dir.clone());
        assert_eq!(fresh.covered("events.raw", 0).unwrap(), Some(12));
        fresh.write_range("events.raw", 0, 10, 12, &events).unwrap();
        let mut more = events.clone();
        more.push((13, event(4, "a", 1_800_000_000_000)));
        fresh.write_range("events.raw", 0, 10, 13, &more).unwrap();

        // A crash between write and rename leaves a complete temp file.
        let dir0 = dir.join("manifests/events.raw/0");
        let committed = std::fs::read_dir(&dir0)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::copy(&committed, dir0.join(".left-by-a-crash.tmp")).unwrap();
        let manifests = fresh.manifests().unwrap();
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
        let text = String::from_utf8(fresh.read_file(&first[0].path).unwrap()).unwrap();
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
