//! What the server can do.
//!
//! The flags come from the version (first release where a feature is
//! generally available) and, where the server can tell us cheaply, from its
//! own catalogue (`system.settings`, `system.merge_tree_settings`,
//! `system.data_type_families`, `system.functions`). A flag is set only when
//! both agree: the version table guards against features that exist but are
//! experimental (18.16 lists `LowCardinality` yet refuses it without a flag),
//! and the catalogue guards against a wrong guess in the version table.
//! `codecs` and `ttl` have no catalogue entry and follow the version alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::rows::RowLayout;
use super::{Error, select_client};

/// `major.minor.patch` of `SELECT version()` (later components are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `18.16.1`, `24.3.1.2672`, `26.9.2.1` and the like.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.').map(|part| {
            let digits = part.bytes().take_while(u8::is_ascii_digit).count();
            part[..digits].parse::<u32>().ok()
        });
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Feature flags that change the rendered schema or the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub version: ServerVersion,
    /// `DateTime64(3, 'UTC')`: millisecond timestamps in one column.
    pub datetime64: bool,
    /// `LowCardinality(String)` without an experimental flag.
    pub low_cardinality: bool,
    /// Per-column `CODEC(...)` (we use `Delta` and `ZSTD`).
    pub codecs: bool,
    /// Table `TTL` expressions.
    pub ttl: bool,
    /// The `insert_deduplication_token` query setting.
    pub insert_dedup_token: bool,
    /// The `non_replicated_deduplication_window` MergeTree setting, without
    /// which a dedup token does nothing on a non-replicated table.
    pub non_replicated_deduplication_window: bool,
    /// `JSONExtract*` functions (older servers only have `visitParamExtract*`).
    pub json_extract: bool,
}

/// First release with each feature generally available, from the release
/// notes. The catalogue probe in [`probe`] double-checks the ones it can.
const DATETIME64: ServerVersion = ServerVersion::new(20, 1, 0);
const LOW_CARDINALITY: ServerVersion = ServerVersion::new(19, 1, 0);
const CODECS: ServerVersion = ServerVersion::new(19, 3, 0);
const TTL: ServerVersion = ServerVersion::new(19, 6, 0);
const JSON_EXTRACT: ServerVersion = ServerVersion::new(19, 5, 0);
const NON_REPLICATED_DEDUP_WINDOW: ServerVersion = ServerVersion::new(20, 10, 0);
const INSERT_DEDUP_TOKEN: ServerVersion = ServerVersion::new(22, 2, 0);

impl Capabilities {
    /// The flags a server of this version has, by the version table alone.
    pub fn from_version(version: ServerVersion) -> Self {
        Self {
            version,
            datetime64: version >= DATETIME64,
            low_cardinality: version >= LOW_CARDINALITY,
            codecs: version >= CODECS,
            ttl: version >= TTL,
            insert_dedup_token: version >= INSERT_DEDUP_TOKEN,
            non_replicated_deduplication_window: version >= NON_REPLICATED_DEDUP_WINDOW,
            json_extract: version >= JSON_EXTRACT,
        }
    }

    /// Rows for a table created on this server (an existing table keeps the
    /// layout it was created with: see [`table_layout`](super::table_layout)).
    pub fn layout(&self) -> RowLayout {
        if self.datetime64 {
            RowLayout::Modern
        } else {
            RowLayout::Legacy
        }
    }

    /// Clears the flags the server's catalogue contradicts.
    pub fn confirm(mut self, catalogue: &Catalogue) -> Self {
        self.datetime64 &= catalogue.types.contains("DateTime64");
        self.low_cardinality &= catalogue.types.contains("LowCardinality")
            // Still experimental while this switch exists and is off.
            && catalogue
                .settings
                .get("allow_experimental_low_cardinality_type")
                .is_none_or(|value| value == "1");
        self.insert_dedup_token &= catalogue
            .settings
            .contains_key("insert_deduplication_token");
        self.non_replicated_deduplication_window &= catalogue
            .merge_tree_settings
            .contains("non_replicated_deduplication_window");
        self.json_extract &= catalogue.functions.contains("JSONExtractString");
        self
    }
}

/// The catalogue entries [`probe`] looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// Query settings by name, with their current value.
    pub settings: BTreeMap<String, String>,
    pub merge_tree_settings: BTreeSet<String>,
    pub types: BTreeSet<String>,
    pub functions: BTreeSet<String>,
}

/// One round trip for the whole catalogue; every name is listed so the
/// answer stays a handful of rows.
const CATALOGUE_SQL: &str = "\
SELECT 'setting', name, value FROM system.settings \
WHERE name IN ('insert_deduplication_token', 'allow_experimental_low_cardinality_type') \
UNION ALL SELECT 'merge_tree_setting', name, value FROM system.merge_tree_settings \
WHERE name = 'non_replicated_deduplication_window' \
UNION ALL SELECT 'type', name, '' FROM system.data_type_families \
WHERE name IN ('DateTime64', 'LowCardinality') \
UNION ALL SELECT 'function', name, '' FROM system.functions \
WHERE name = 'JSONExtractString'";

/// Asks the server for its version and catalogue and derives the flags.
pub async fn probe(client: &clickhouse::Client) -> Result<Capabilities, Error> {
    let client = select_client(client);
    let text: String = client
        .query("SELECT version()")
        .fetch_one()
        .await
        .map_err(|e| Error::clickhouse("version query failed", e))?;
    let version = ServerVersion::parse(&text)
        .ok_or_else(|| Error::Unexpected(format!("server version `{text}`")))?;
    let rows: Vec<(String, String, String)> = client
        .query_raw(CATALOGUE_SQL)
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("catalogue query failed", e))?;
    let mut catalogue = Catalogue::default();
    for (kind, name, value) in rows {
        match kind.as_str() {
            "setting" => {
                catalogue.settings.insert(name, value);
            }
            "merge_tree_setting" => {
                catalogue.merge_tree_settings.insert(name);
            }
            "type" => {
                catalogue.types.insert(name);
            }
            _ => {
                catalogue.functions.insert(name);
            }
        }
    }
    Ok(Capabilities::from_version(version).confirm(&catalogue))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(version: &str) -> Capabilities {
        Capabilities::from_version(ServerVersion::parse(version).unwrap())
    }

    #[test]
    fn parses_versions() {
        assert_eq!(
            ServerVersion::parse("18.16.1"),
            Some(ServerVersion::new(18, 16, 1))
        );
        assert_eq!(
            ServerVersion::parse("26.9.2.1"),
            Some(ServerVersion::new(26, 9, 2))
        );
        assert_eq!(
            ServerVersion::parse("24.8.4.13-lts\n"),
            Some(ServerVersion::new(24, 8, 4))
        );
        assert_eq!(
            ServerVersion::parse("21.3"),
            Some(ServerVersion::new(21, 3, 0))
        );
        assert_eq!(ServerVersion::parse("banana"), None);
        assert_eq!(ServerVersion::new(18, 16, 1).to_string(), "18.16.1");
        assert!(ServerVersion::new(19, 16, 0) < ServerVersion::new(20, 1, 0));
    }

    #[test]
    fn debian_18_16_has_none_of_the_features() {
        let c = caps("18.16.1");
        assert!(
            !(c.datetime64
                || c.low_cardinality
                || c.codecs
                || c.ttl
                || c.insert_dedup_token
                || c.non_replicated_deduplication_window
                || c.json_extract)
        );
        assert_eq!(c.layout(), RowLayout::Legacy);
    }

    #[test]
    fn current_servers_have_all_of_them() {
        for version in ["22.2.1", "24.8.4.13", "26.9.2.1"] {
            let c = caps(version);
            assert!(
                c.datetime64
                    && c.low_cardinality
                    && c.codecs
                    && c.ttl
                    && c.insert_dedup_token
                    && c.non_replicated_deduplication_window
                    && c.json_extract,
                "{version}: {c:?}"
            );
            assert_eq!(c.layout(), RowLayout::Modern);
        }
    }

    #[test]
    fn features_arrive_one_release_at_a_time() {
        let flags = |v: &str| {
            let c = caps(v);
            (
                c.low_cardinality,
                c.codecs,
                c.json_extract,
                c.ttl,
                c.datetime64,
                c.non_replicated_deduplication_window,
                c.insert_dedup_token,
            )
        };
        assert_eq!(
            flags("18.16.1"),
            (false, false, false, false, false, false, false)
        );
        assert_eq!(
            flags("19.1.6"),
            (true, false, false, false, false, false, false)
        );
        assert_eq!(
            flags("19.3.4"),
            (true, true, false, false, false, false, false)
        );
        assert_eq!(
            flags("19.5.2"),
            (true, true, true, false, false, false, false)
        );
        assert_eq!(
            flags("19.6.1"),
            (true, true, true, true, false, false, false)
        );
        assert_eq!(
            flags("20.1.2"),
            (true, true, true, true, true, false, false)
        );
        assert_eq!(
            flags("20.10.3"),
            (true, true, true, true, true, true, false)
        );
        assert_eq!(flags("22.1.3"), (true, true, true, true, true, true, false));
        assert_eq!(flags("22.2.2"), (true, true, true, true, true, true, true));
    }

    #[test]
    fn the_catalogue_can_only_take_flags_away() {
        // What 18.16 answers: LowCardinality listed but behind its switch.
        let old = Catalogue {
            settings: [("allow_experimental_low_cardinality_type".into(), "0".into())].into(),
            types: ["LowCardinality".to_owned()].into(),
            ..Catalogue::default()
        };
        let c = caps("18.16.1").confirm(&old);
        assert!(!c.low_cardinality && !c.datetime64);

        // A modern version whose catalogue lacks the dedup token setting.
        let modern = Catalogue {
            settings: BTreeMap::new(),
            merge_tree_settings: ["non_replicated_deduplication_window".to_owned()].into(),
            types: ["DateTime64".to_owned(), "LowCardinality".to_owned()].into(),
            functions: ["JSONExtractString".to_owned()].into(),
        };
        let c = caps("24.8.1").confirm(&modern);
        assert!(c.datetime64 && c.low_cardinality && c.json_extract && c.codecs && c.ttl);
        assert!(!c.insert_dedup_token);
        assert!(c.non_replicated_deduplication_window);

        // The switch turned on counts as available.
        let switched = Catalogue {
            settings: [("allow_experimental_low_cardinality_type".into(), "1".into())].into(),
            types: ["LowCardinality".to_owned()].into(),
            ..Catalogue::default()
        };
        assert!(caps("19.1.6").confirm(&switched).low_cardinality);
    }
}
