//! The plugin registry: which plugins each team has, which version is
//! active, and the component bytes, shared by every gateway replica.
//!
//! Two compacted topics (see [`crate::table`]):
//! - `sluice.plugins`: one JSON [`PluginRecord`] per `team/name`;
//! - `sluice.plugin-blobs`: component bytes, content-addressed by SHA-256
//!   and split into chunks of [`CHUNK_BYTES`] so any Kafka's default 1 MiB
//!   record limit is enough (a Python plugin is ~18 MB).
//!
//! Blobs are written before the record that references them, so a replica
//! that sees a version always finds (or will shortly find) its bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;
use sluice_core::table::ReplicatedTable;

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

fn chunk_key(sha256: &str, index: usize) -> String {
    format!("{sha256}/{index}")
}

/// The registry as this replica sees it.
#[derive(Debug)]
pub struct Registry {
    pub records: ReplicatedTable<PluginRecord>,
    blobs: ReplicatedTable<BlobChunk>,
}

impl Registry {
    pub fn start(
        kafka: &KafkaSettings,
        records_topic: &str,
        blobs_topic: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            records: ReplicatedTable::start(kafka, records_topic)?,
            blobs: ReplicatedTable::start(kafka, blobs_topic)?,
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.records.is_caught_up() && self.blobs.is_caught_up()
    }

    /// Stores component bytes; returns their SHA-256 and chunk count.
    pub async fn put_blob(&self, bytes: &[u8]) -> anyhow::Result<(String, usize)> {
        let sha = sha256_hex(bytes);
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let key = chunk_key(&sha, i);
            if self.blobs.read(&key, |_| ()).is_none() {
                self.blobs
                    .put(
                        &key,
                        &BlobChunk {
                            data: BASE64.encode(chunk),
                        },
                    )
                    .await?;
            }
        }
        Ok((sha, chunks.len()))
    }

    /// Reassembles and verifies a blob; `None` while chunks are still arriving.
    pub fn blob(&self, version: &VersionInfo) -> Option<anyhow::Result<Vec<u8>>> {
        let mut bytes = Vec::with_capacity(version.size);
        for i in 0..version.chunks {
            let decoded = self.blobs.read(&chunk_key(&version.sha256, i), |chunk| {
                BASE64.decode(&chunk.data)
            })?;
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

    pub async fn remove(&self, team: &str, name: &str) -> anyhow::Result<()> {
        self.records.remove(&PluginRecord::key(team, name)).await
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
