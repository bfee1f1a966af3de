//! The aggregator: 5-minute rollups from `events.raw` (issue: Aggregator). Not built yet.
