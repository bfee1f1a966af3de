//! The schema registry's storage and its compiled view.
//!
//! Records live in the compacted topic `sluice.schemas` (like Confluent's
//! `_schemas`), read by every replica through [`ReplicatedTable`]:
//! - `v/{team}/{subject}/{version}` → a [`VersionRecord`] (the schema document);
//! - `c/{team}` and `c/{team}/{subject}` → a [`ConfigRecord`];
//! - `g` → the global [`ConfigRecord`].
//!
//! Team ids contain no `/` and versions are digits, so keys never collide
//! even when an event name contains `/`. Versions are never deleted: an event
//! may name any version it was written with.
//!
//! The ingest path reads a [`View`]: every schema parsed once and indexed by
//! team and event name, swapped atomically whenever the table changes, so a
//! lookup is two hash probes and no parsing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::kafka::KafkaSettings;
use sluice_core::{Event, Reject, RejectCode, Timestamp};
use sluice_schemas::{Compatibility, Dialect, Origin, Schema};

use sluice_core::table::ReplicatedTable;

/// One registered version of a subject (a team's event name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub team_id: String,
    pub subject: String,
    pub version: u32,
    /// The JSON Schema document as registered.
    pub schema: Value,
    pub registered_at: Timestamp,
    /// How `schema` was read at registration (plain JSON Schema, Iglu,
    /// Segment), stored so that it is always read the same way; absent in
    /// plain records, so they are as before.
    #[serde(default, skip_serializing_if = "is_plain")]
    pub format: Dialect,
}

fn is_plain(format: &Dialect) -> bool {
    *format == Dialect::JsonSchema
}

/// What happens to events whose name has no registered schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnregisteredEvents {
    /// Accepted unchecked (the default: schemas are opt-in per event name).
    #[default]
    Accept,
    /// Rejected with `unregistered_event`.
    Reject,
}

/// Settings at one level (global, team or subject); unset fields inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<Compatibility>,
    /// Team level only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unregistered_events: Option<UnregisteredEvents>,
}

/// A record of `sluice.schemas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Version(VersionRecord),
    Config(ConfigRecord),
}

/// Where a config record applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level<'a> {
    Global,
    Team(&'a str),
    Subject(&'a str, &'a str),
}

impl Level<'_> {
    fn key(self) -> String {
        match self {
            Self::Global => "g".to_owned(),
            Self::Team(team) => format!("c/{team}"),
            Self::Subject(team, subject) => format!("c/{team}/{subject}"),
        }
    }
}

fn version_key(team: &str, subject: &str, version: u32) -> String {
    format!("v/{team}/{subject}/{version}")
}

/// A version, parsed.
#[derive(Debug)]
pub struct Compiled {
    pub record: VersionRecord,
    /// What events' `properties` are checked against: the document, or
    /// the part of it its format says (`sluice_schemas::import`).
    pub schema: Schema,
    /// The format's reading: an Iglu `self` block, a Segment section.
    pub origin: Origin,
}

#[derive(Debug, Default)]
pub struct SubjectView {
    /// By version, ascending.
    pub versions: BTreeMap<u32, Arc<Compiled>>,
}

#[derive(Debug, Default)]
pub struct TeamView {
    pub subjects: HashMap<String, SubjectView>,
    pub config: ConfigRecord,
    pub subject_configs: HashMap<String, ConfigRecord>,
}

/// Everything registered, parsed and indexed.
#[derive(Debug, Default)]
pub struct View {
    pub teams: HashMap<String, TeamView>,
    pub global: ConfigRecord,
}

impl View {
    fn build(entries: Vec<(String, Entry)>) -> Self {
        let mut view = Self::default();
        for (key, entry) in entries {
            match entry {
                Entry::Version(record) => match sluice_schemas::import::import(
                    record.format,
                    &record.schema,
                    &record.subject,
                ) {
                    Ok(imported) => {
                        let team = view.teams.entry(record.team_id.clone()).or_default();
                        let subject = team.subjects.entry(record.subject.clone()).or_default();
                        let compiled = Compiled {
                            record,
                            schema: imported.schema,
                            origin: imported.origin,
                        };
                        subject
                            .versions
                            .insert(compiled.record.version, Arc::new(compiled));
                    }
                    // Only parsable schemas are written; a record that no
                    // longer parses (an older gateway's) is skipped loudly.
                    Err(err) => {
                        tracing::error!(key, error = %err, "skipping a schema this gateway cannot parse");
                    }
                },
                Entry::Config(config) => {
                    let mut parts = key.splitn(3, '/');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some("g"), None, None) => view.global = config,
                        (Some("c"), Some(team), None) => {
                            view.teams.entry(team.to_owned()).or_default().config = config;
                        }
                        (Some("c"), Some(team), Some(subject)) => {
                            view.teams
                                .entry(team.to_owned())
                                .or_default()
                                .subject_configs
                                .insert(subject.to_owned(), config);
                        }
                        _ => tracing::warn!(key, "skipping a config record with an unknown key"),
                    }
                }
            }
        }
        view
    }

    pub fn subject(&self, team: &str, subject: &str) -> Option<&SubjectView> {
        self.teams.get(team)?.subjects.get(subject)
    }

    /// The mode that applies to `subject`: its own, else the team's, else
    /// the global one, else BACKWARD.
    pub fn compatibility(&self, team: &str, subject: Option<&str>) -> Compatibility {
        let team_view = self.teams.get(team);
        subject
            .and_then(|s| team_view?.subject_configs.get(s)?.compatibility)
            .or_else(|| team_view?.config.compatibility)
            .or(self.global.compatibility)
            .unwrap_or_default()
    }

    pub fn unregistered_events(&self, team: &str) -> UnregisteredEvents {
        self.teams
            .get(team)
            .and_then(|t| t.config.unregistered_events)
            .unwrap_or_default()
    }

    /// Checks one admitted event's `properties` against the schema its
    /// `schema_version` names for its team and event name.
    pub fn check(&self, team: &str, event: &Event<'_>) -> Result<(), Reject> {
        let Some(subject) = self.subject(team, &event.event) else {
            return match self.unregistered_events(team) {
                UnregisteredEvents::Accept => Ok(()),
                UnregisteredEvents::Reject => Err(Reject::new(
                    RejectCode::UnregisteredEvent,
                    format!(
                        "event `{}` has no registered schema and this team rejects unregistered events",
                        event.event
                    ),
                )),
            };
        };
        let Some(compiled) = subject.versions.get(&event.schema_version) else {
            let known: Vec<String> = subject.versions.keys().map(u32::to_string).collect();
            return Err(Reject::new(
                RejectCode::UnknownSchemaVersion,
                format!(
                    "`schema_version` {} is not registered for event `{}` (registered: {})",
                    event.schema_version,
                    event.event,
                    known.join(", ")
                ),
            ));
        };
        compiled
            .schema
            .validate_text(event.properties.get(), "properties")
            .map_err(|violation| {
                Reject::new(
                    RejectCode::SchemaViolation,
                    format!(
                        "{violation} (schema version {} of `{}`)",
                        event.schema_version, event.event
                    ),
                )
            })
    }
}

enum Store {
    Kafka(ReplicatedTable<Entry>),
    /// Tests and single-process development.
    Memory(RwLock<HashMap<String, Entry>>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kafka(table) => table.fmt(f),
            Self::Memory(_) => f.write_str("Memory"),
        }
    }
}

/// The registry as this replica sees it.
#[derive(Debug)]
pub struct SchemaRegistry {
    store: Store,
    view: RwLock<Arc<View>>,
    /// Set once a view was built from a table that had read everything
    /// written before start-up: until then events could pass unchecked.
    loaded: AtomicBool,
    /// Serialises registrations on this replica, so two concurrent requests
    /// cannot both take the same version number. Across replicas concurrent
    /// registrations of one subject are last-writer-wins (docs/schemas.md).
    writes: tokio::sync::Mutex<()>,
}

impl SchemaRegistry {
    /// Reads `topic` from the beginning and keeps following it.
    pub fn start(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<Self> {
        Ok(Self::with_store(Store::Kafka(ReplicatedTable::start(
            kafka, topic,
        )?)))
    }

    pub fn in_memory() -> Self {
        Self::with_store(Store::Memory(RwLock::default()))
    }

    fn with_store(store: Store) -> Self {
        Self {
            store,
            view: RwLock::default(),
            loaded: AtomicBool::new(false),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// True once every record written before start-up is in the view.
    pub fn is_loaded(&self) -> bool {
        match &self.store {
            Store::Kafka(_) => self.loaded.load(Ordering::Relaxed),
            Store::Memory(_) => true,
        }
    }

    /// The current view; cheap (one `Arc` clone). Take it once per batch.
    pub fn view(&self) -> Arc<View> {
        self.view
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|_| Arc::new(View::default()))
    }

    /// Rebuilds the view from the table.
    pub fn refresh(&self) {
        // Read the flag before the entries: if the table was caught up
        // then, the entries hold everything written before start-up.
        let caught_up = match &self.store {
            Store::Kafka(table) => table.is_caught_up(),
            Store::Memory(_) => true,
        };
        let entries = match &self.store {
            Store::Kafka(table) => table.entries(),
            Store::Memory(map) => match map.read() {
                Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                Err(_) => return,
            },
        };
        let view = Arc::new(View::build(entries));
        if let Ok(mut current) = self.view.write() {
            *current = view;
        }
        if caught_up {
            self.loaded.store(true, Ordering::Relaxed);
        }
    }

    async fn put(&self, key: &str, entry: &Entry) -> anyhow::Result<()> {
        match &self.store {
            Store::Kafka(table) => table.put(key, entry).await?,
            Store::Memory(map) => {
                map.write()
                    .map_err(|_| anyhow::anyhow!("schema store lock poisoned"))?
                    .insert(key.to_owned(), entry.clone());
            }
        }
        // Read-your-writes: the table has applied the record; make the view
        // show it before answering.
        self.refresh();
        Ok(())
    }

    /// Holds this replica's registration lock.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    pub async fn put_version(&self, record: &VersionRecord) -> anyhow::Result<()> {
        let key = version_key(&record.team_id, &record.subject, record.version);
        self.put(&key, &Entry::Version(record.clone())).await
    }

    pub async fn put_config(&self, level: Level<'_>, config: &ConfigRecord) -> anyhow::Result<()> {
        self.put(&level.key(), &Entry::Config(config.clone())).await
    }

    /// Keeps the view in step with the table until the registry is dropped.
    pub async fn sync(self: Arc<Self>) {
        let Store::Kafka(table) = &self.store else {
            self.refresh();
            return;
        };
        let mut changes = table.changes();
        loop {
            self.refresh();
            // A watch never misses a change; records applied while a refresh
            // runs are coalesced into one wake-up, so loading a long topic
            // at start-up rebuilds the view a few times, not once per record.
            // Until loaded, also poll: the table turns "caught up" without a
            // change when the topic is empty, or just after its last record.
            let changed = if self.is_loaded() {
                changes.changed().await
            } else {
                tokio::time::timeout(Duration::from_millis(100), changes.changed())
                    .await
                    .unwrap_or(Ok(()))
            };
            if changed.is_err() {
                return; // the reader stopped
            }
        }
    }
}
