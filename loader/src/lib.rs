//! The loader: `events.raw` to ClickHouse and the lake (issue: Loader). Not built yet.
