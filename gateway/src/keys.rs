//! API keys: generation, hashed storage, lookup.
//!
//! A key looks like `sk_<id>_<secret>`: `id` (12 hex digits) names the record,
//! `secret` (32 hex digits, 122 random bits) proves possession. Only the
//! SHA-256 of the whole key is stored. A slow password hash is unnecessary
//! for random keys this long (there is nothing to brute-force), and a fast
//! one keeps the check off the latency budget.
//!
//! Records live in the compacted topic `sluice.keys` (see [`sluice_core::table`]),
//! so a key created or revoked through any replica is honoured by all of them
//! within a second. Keys from the config file (`auth.keys`) are for development.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::Timestamp;
use sluice_core::kafka::KafkaSettings;

use sluice_core::table::ReplicatedTable;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Send events for its team.
    Ingest,
    /// Send events and manage its own team's keys, plugins and schemas.
    Admin,
}

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub team: Arc<str>,
    pub role: Role,
    /// Names the key (never the secret): the rate limiter's bucket.
    pub key_id: Arc<str>,
}

/// What a key lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    Valid(Principal),
    Revoked,
    Unknown,
}

/// A stored key. Never contains the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub team_id: String,
    pub role: Role,
    #[serde(default)]
    pub label: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
}

/// A freshly generated key: the only moment the plaintext exists.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub record: KeyRecord,
}

pub fn generate(team_id: &str, role: Role, label: &str, now: Timestamp) -> NewKey {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let key = format!("sk_{id}_{secret}");
    let record = KeyRecord {
        key_id: id,
        team_id: team_id.to_owned(),
        role,
        label: label.to_owned(),
        hash: hash(&key),
        created_at: now,
        revoked_at: None,
    };
    NewKey { key, record }
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The id part of `sk_<id>_<secret>`, if the key has that shape.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("sk_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && !secret.is_empty()).then_some(id)
}

/// Compares two equal-length strings without an early exit.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && std::hint::black_box(
            a.bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y)),
        ) == 0
}

/// Whether a presented secret is the expected one, in time that depends on
/// neither its content nor its length: both are hashed to 64 hex digits
/// first, so a caller cannot learn the expected secret's length either.
pub(crate) fn secret_matches(presented: &str, expected: &str) -> bool {
    constant_time_eq(&hash(presented), &hash(expected))
}

impl KeyRecord {
    fn check(&self, key: &str) -> KeyStatus {
        if !constant_time_eq(&self.hash, &hash(key)) {
            return KeyStatus::Unknown;
        }
        if self.revoked_at.is_some() {
            return KeyStatus::Revoked;
        }
        KeyStatus::Valid(Principal {
            team: Arc::from(self.team_id.as_str()),
            role: self.role,
            key_id: Arc::from(self.key_id.as_str()),
        })
    }
}

/// Key lookup, plus management for stores that support it.
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    fn lookup(&self, key: &str) -> KeyStatus;

    /// Stores a new record. Errors if this store is read-only.
    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, anyhow::Result<()>>;

    fn get(&self, key_id: &str) -> Option<KeyRecord>;

    /// All records of `team` (every team when `None`).
    fn list(&self, team: Option<&str>) -> Vec<KeyRecord>;

    /// True once the store has loaded everything written before start-up.
    fn is_loaded(&self) -> bool {
        true
    }
}

/// Keys from configuration (`auth.keys`: key → team, role `ingest`),
/// consulted before the replicated store.
#[derive(Debug, Default)]
pub struct ConfiguredKeys(BTreeMap<String, Principal>);

impl ConfiguredKeys {
    pub fn new(keys: &BTreeMap<String, String>) -> Self {
        let principal = |key: &str, team: &str| Principal {
            team: Arc::from(team),
            role: Role::Ingest,
            key_id: Arc::from(format!("config-{}", &hash(key)[..12])),
        };
        Self(
            keys.iter()
                .map(|(key, team)| (key.clone(), principal(key, team)))
                .collect(),
        )
    }

    fn lookup(&self, key: &str) -> Option<KeyStatus> {
        self.0.get(key).cloned().map(KeyStatus::Valid)
    }
}

/// The production store: configured keys, then the `sluice.keys` topic.
#[derive(Debug)]
pub struct KafkaKeys {
    configured: ConfiguredKeys,
    table: ReplicatedTable<KeyRecord>,
}

impl KafkaKeys {
    pub fn start(
        configured: ConfiguredKeys,
        kafka: &KafkaSettings,
        topic: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            configured,
            table: ReplicatedTable::start(kafka, topic)?,
        })
    }
}

impl KeyStore for KafkaKeys {
    fn lookup(&self, key: &str) -> KeyStatus {
        if let Some(status) = self.configured.lookup(key) {
            return status;
        }
        let Some(id) = key_id(key) else {
            return KeyStatus::Unknown;
        };
        self.table
            .read(id, |record| record.check(key))
            .unwrap_or(KeyStatus::Unknown)
    }

    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { self.table.put(&record.key_id.clone(), &record).await })
    }

    fn get(&self, key_id: &str) -> Option<KeyRecord> {
        self.table.get(key_id)
    }

    fn list(&self, team: Option<&str>) -> Vec<KeyRecord> {
        filter_sorted(self.table.entries().into_iter().map(|(_, r)| r), team)
    }

    fn is_loaded(&self) -> bool {
        self.table.is_caught_up()
    }
}

/// An in-memory store for tests and single-process development.
#[derive(Debug, Default)]
pub struct MemoryKeys {
    configured: ConfiguredKeys,
    records: std::sync::RwLock<BTreeMap<String, KeyRecord>>,
}

impl MemoryKeys {
    pub fn new(configured: ConfiguredKeys) -> Self {
        Self {
            configured,
            records: Default::default(),
        }
    }
}

impl KeyStore for MemoryKeys {
    fn lookup(&self, key: &str) -> KeyStatus {
        if let Some(status) = self.configured.lookup(key) {
            return status;
        }
        key_id(key)
            .and_then(|id| self.get(id))
            .map_or(KeyStatus::Unknown, |record| record.check(key))
    }

    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let mut records = self
                .records
                .write()
                .map_err(|_| anyhow::anyhow!("key store lock poisoned"))?;
            records.insert(record.key_id.clone(), record);
            Ok(())
        })
    }

    fn get(&self, key_id: &str) -> Option<KeyRecord> {
        self.records.read().ok()?.get(key_id).cloned()
    }

    fn list(&self, team: Option<&str>) -> Vec<KeyRecord> {
        let records: Vec<KeyRecord> = match self.records.read() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        filter_sorted(records.into_iter(), team)
    }
}

fn filter_sorted(records: impl Iterator<Item = KeyRecord>, team: Option<&str>) -> Vec<KeyRecord> {
    let mut out: Vec<KeyRecord> = records
        .filter(|r| team.is_none_or(|t| r.team_id == t))
        .collect();
    out.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_compared_whole_whatever_their_lengths() {
        let token = "test-operator-token-0123456789";
        assert!(secret_matches(token, token));
        for other in [
            "",
            "t",
            &token[..token.len() - 1],
            &format!("{token}0"),
            "test-operator-token-0123456788",
        ] {
            assert!(!secret_matches(other, token), "{other:?}");
        }
        // Both sides are hashed to the same length before the comparison,
        // so the loop always runs over 64 digits.
        assert_eq!(hash("").len(), hash(&"x".repeat(10_000)).len());
    }

    #[tokio::test]
    async fn generated_keys_verify_and_revoke() {
        let store = MemoryKeys::default();
        let new = generate("acme", Role::Admin, "ci", Timestamp::from_millis(1));
        assert!(
            !new.record.hash.contains(&new.key[15..]),
            "the key itself is never stored"
        );
        store.insert(new.record.clone()).await.unwrap();
        assert!(matches!(
            store.lookup(&new.key),
            KeyStatus::Valid(p) if &*p.team == "acme" && p.role == Role::Admin && *p.key_id == new.record.key_id
        ));
        // Right id, wrong secret.
        let forged = format!("sk_{}_{}", new.record.key_id, "0".repeat(32));
        assert_eq!(store.lookup(&forged), KeyStatus::Unknown);
        let mut revoked = new.record.clone();
        revoked.revoked_at = Some(Timestamp::from_millis(2));
        store.insert(revoked).await.unwrap();
        assert_eq!(store.lookup(&new.key), KeyStatus::Revoked);
    }

    #[test]
    fn key_ids_parse_only_from_well_formed_keys() {
        assert_eq!(key_id("sk_0123456789ab_secret"), Some("0123456789ab"));
        assert_eq!(key_id("sk_short_secret"), None);
        assert_eq!(key_id("pk_0123456789ab_secret"), None);
        assert_eq!(key_id("sk_0123456789ab_"), None);
    }

    #[test]
    fn configured_keys_come_first() {
        let configured =
            ConfiguredKeys::new(&BTreeMap::from([("sk_dev_key_1".into(), "dev".into())]));
        let store = MemoryKeys::new(configured);
        assert!(matches!(store.lookup("sk_dev_key_1"), KeyStatus::Valid(p) if &*p.team == "dev"));
        assert_eq!(store.lookup("nope"), KeyStatus::Unknown);
    }
}
