//! The plugin registry: which plugins each team has, which version is
//! active, and the component bytes, shared by every gateway replica.
//!
//! Two compacted topics (see [`sluice_core::table`]):
//! - `sluice.plugins`: one JSON [`PluginRecord`] per `team/name`;
//! - `sluice.plugin-blobs`: component bytes, split into chunks of
//!   [`CHUNK_BYTES`] so any Kafka's default 1 MiB record limit is enough (a
//!   Python plugin is ~18 MB), keyed `team/plugin/sha256/index`.
//!
//! Blobs are written before the record that references them, so a replica
//! that sees a version always finds (or will shortly find) its bytes.
//!
//! Replicas keep only where each chunk is, not its bytes: a component is
//! read from Kafka when it has to be compiled (once per replica and version;
//! restarts load the compiled code from the artifact cache), so uploads cost
//! every replica an index entry, not their size in memory. Chunks are keyed
//! per plugin so that deleting a version or a plugin can tombstone its
//! chunks without asking whether another team's plugin has the same bytes,
//! and compaction then gives the space back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;
use sluice_core::table::{Location, ReplicatedTable};

use crate::kind::PluginKind;

/// Bytes per blob chunk (before base64).
pub const CHUNK_BYTES: usize = 512 * 1024;

/// What happens to a batch's events when a plugin fails on them (trap, CPU or
/// memory limit, broken contract).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Refuse the events: the client sees `plugin_failed` (retryable later).
    #[default]
    Reject,
    /// Let the events continue as if the plugin had accepted them unchanged.
    Pass,
    /// Accept the events but write them to `events.rejected` instead of
    /// `events.raw`, for replay once the plugin is fixed.
    DeadLetter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: String,
    pub sha256: String,
    pub size: usize,
    pub chunks: usize,
    pub uploaded_at: Timestamp,
    /// The `sluice:plugin` version the component implements (`0.1.0`,
    /// `0.2.0`); empty in records written before versions were recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wit_version: String,
    /// Key prefix of the version's chunks in the blob topic
    /// (`team/plugin/sha256`); empty in records written before chunks were
    /// kept per plugin, whose chunks are under the bare SHA-256.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub blob: String,
}

impl VersionInfo {
    fn chunk_key(&self, index: usize) -> String {
        if self.blob.is_empty() {
            format!("{}/{index}", self.sha256)
        } else {
            format!("{}/{index}", self.blob)
        }
    }
}

/// Component bytes as stored by [`Registry::put_blob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub chunks: usize,
    /// [`VersionInfo::blob`].
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    pub reason: String,
    pub at: Timestamp,
}

/// One plugin of one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub team_id: String,
    pub name: String,
    pub kind: PluginKind,
    /// Uploaded versions, oldest first.
    pub versions: Vec<VersionInfo>,
    /// The version that runs; `None` until one is activated.
    pub active_version: Option<String>,
    /// Previously active versions, most recent last (for rollback).
    #[serde(default)]
    pub history: Vec<String>,
    #[serde(default)]
    pub policy: FailurePolicy,
    /// The team's configuration for this plugin (JSON text handed to `init`).
    #[serde(default = "empty_config")]
    pub config: String,
    /// Position in the team's chain (validators always run before enrichers).
    #[serde(default)]
    pub order: i32,
    /// Event names the plugin runs on; empty: every event. Other events pass
    /// it as if it had accepted them unchanged, without a call, so a plugin
    /// that matters for a few events costs nothing on the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Set when the plugin was disabled (automatically after repeated
    /// failures, or by an operator); cleared by re-enabling.
    #[serde(default)]
    pub disabled: Option<Disabled>,
}

fn empty_config() -> String {
    "{}".to_owned()
}

impl PluginRecord {
    pub fn key(team: &str, name: &str) -> String {
        format!("{team}/{name}")
    }

    pub fn active(&self) -> Option<&VersionInfo> {
        let active = self.active_version.as_deref()?;
        self.versions.iter().find(|v| v.version == active)
    }
}

/// A chunk of component bytes, base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobChunk {
    pub data: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The registry as this replica sees it.
#[derive(Debug)]
pub struct Registry {
    pub records: ReplicatedTable<PluginRecord>,
    /// Where each chunk is; its bytes stay in Kafka until they are needed.
    blobs: ReplicatedTable<Location>,
}

impl Registry {
    pub fn start(
        kafka: &KafkaSettings,
        records_topic: &str,
        blobs_topic: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            records: ReplicatedTable::start(kafka, records_topic)?,
            blobs: ReplicatedTable::start_with(kafka, blobs_topic, |_, at| Ok(at))?,
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.records.is_caught_up() && self.blobs.is_caught_up()
    }

    /// Stores component bytes for `team`'s plugin `name`.
    pub async fn put_blob(
        &self,
        team: &str,
        name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<StoredBlob> {
        let sha256 = sha256_hex(bytes);
        let stored = StoredBlob {
            key: format!("{team}/{name}/{sha256}"),
            chunks: bytes.chunks(CHUNK_BYTES).len(),
            sha256,
        };
        for (i, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            let key = format!("{}/{i}", stored.key);
            // Uploading the same bytes again (a retried upload) writes nothing.
            if self.blobs.read(&key, |_| ()).is_none() {
                let payload = serde_json::to_vec(&BlobChunk {
                    data: BASE64.encode(chunk),
                })?;
                self.blobs.put_bytes(&key, &payload).await?;
            }
        }
        Ok(stored)
    }

    /// Reads a version's bytes back from Kafka and verifies them. Blocking.
    /// `None` while chunks are still arriving or cannot be read just now (a
    /// broker away, a chunk compacted under a reader): asked again later.
    pub fn blob(&self, version: &VersionInfo) -> Option<anyhow::Result<Vec<u8>>> {
        let mut bytes = Vec::with_capacity(version.size);
        for i in 0..version.chunks {
            let key = version.chunk_key(i);
            let at = self.blobs.read(&key, |at| *at)?;
            let payload = match self.blobs.fetch(&key, at) {
                Ok(payload) => payload,
                Err(err) => {
                    tracing::warn!(chunk = %key, error = %format!("{err:#}"), "cannot read a plugin chunk yet; trying again");
                    return None;
                }
            };
            let decoded = serde_json::from_slice::<BlobChunk>(&payload)
                .map_err(anyhow::Error::from)
                .and_then(|chunk| Ok(BASE64.decode(chunk.data)?));
            match decoded {
                Ok(data) => bytes.extend_from_slice(&data),
                Err(err) => {
                    return Some(Err(anyhow::anyhow!(
                        "corrupt chunk {i} of {}: {err}",
                        version.sha256
                    )));
                }
            }
        }
        if sha256_hex(&bytes) != version.sha256 {
            return Some(Err(anyhow::anyhow!(
                "blob {} does not match its hash",
                version.sha256
            )));
        }
        Some(Ok(bytes))
    }

    /// Tombstones the chunks of `gone`, versions no longer in `team`'s
    /// records, unless a version still there has the same chunks (the same
    /// bytes uploaded twice under one plugin, or, for chunks written before
    /// they were kept per plugin, by any plugin). Compaction then drops them.
    pub async fn forget_blobs(&self, team: &str, gone: &[VersionInfo]) -> anyhow::Result<()> {
        let records = self.all();
        let kept = |version: &VersionInfo| {
            records.iter().any(|record| {
                (version.blob.is_empty() || record.team_id == team)
                    && record
                        .versions
                        .iter()
                        .any(|v| v.sha256 == version.sha256 && v.blob == version.blob)
            })
        };
        let mut done = std::collections::HashSet::new();
        for version in gone {
            if kept(version) || !done.insert((&version.sha256, &version.blob)) {
                continue;
            }
            for i in 0..version.chunks {
                self.blobs.remove(&version.chunk_key(i)).await?;
            }
        }
        Ok(())
    }

    pub fn get(&self, team: &str, name: &str) -> Option<PluginRecord> {
        self.records.get(&PluginRecord::key(team, name))
    }

    pub fn list(&self, team: &str) -> Vec<PluginRecord> {
        let mut out: Vec<PluginRecord> = self
            .records
            .entries()
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.team_id == team)
            .collect();
        out.sort_by(|a, b| {
            (a.kind == PluginKind::Enricher, a.order, &a.name).cmp(&(
                b.kind == PluginKind::Enricher,
                b.order,
                &b.name,
            ))
        });
        out
    }

    pub fn all(&self) -> Vec<PluginRecord> {
        self.records.entries().into_iter().map(|(_, r)| r).collect()
    }

    pub async fn put(&self, record: &PluginRecord) -> anyhow::Result<()> {
        self.records
            .put(&PluginRecord::key(&record.team_id, &record.name), record)
            .await
    }

    /// Deletes a plugin, then its versions' chunks.
    pub async fn remove(&self, team: &str, name: &str) -> anyhow::Result<()> {
        let versions = self.get(team, name).map(|r| r.versions).unwrap_or_default();
        self.records.remove(&PluginRecord::key(team, name)).await?;
        self.forget_blobs(team, &versions).await
    }

    /// A receiver that changes whenever the record table applies a write.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<std::collections::BTreeMap<i32, i64>> {
        self.records.changes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_an_event_filter_read_and_write_as_before() {
        // A record written before `events` existed.
        let stored = r#"{"team_id":"t","name":"scrub","kind":"enricher","versions":[],
            "active_version":null,"history":[],"policy":"reject","config":"{}","order":0,
            "disabled":null}"#;
        let record: PluginRecord = serde_json::from_str(stored).unwrap();
        assert!(record.events.is_empty(), "every event");
        let written = serde_json::to_value(&record).unwrap();
        assert!(written.get("events").is_none(), "{written}");

        let filtered = PluginRecord {
            events: vec!["Signed Up".to_owned()],
            ..record
        };
        let written = serde_json::to_string(&filtered).unwrap();
        let back: PluginRecord = serde_json::from_str(&written).unwrap();
        assert_eq!(back.events, ["Signed Up"]);
    }
}
