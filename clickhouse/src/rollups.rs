//! What the aggregator writes and every dashboard reads: the rollup tables'
//! names and the window they count in. The aggregator creates the tables
//! (its migrations); readers ([`crate::dashboard`]) only need these names.

/// Width of a rollup window: 5 minutes, aligned to the epoch (UTC).
pub const WINDOW_MS: i64 = 5 * 60 * 1000;

/// One row per (window, team, event, user) and correction.
pub const ROLLUPS_5M: &str = "rollups_5m";
/// Events per team and hour, fed from `rollups_5m` by a view.
pub const ROLLUPS_HOURLY: &str = "rollups_hourly";
/// Events per team and day, fed from `rollups_5m` by a view.
pub const ROLLUPS_DAILY: &str = "rollups_daily";
/// Unique users per team and day, fed from `rollups_5m` by a view.
pub const DAU_DAILY: &str = "dau_daily";
