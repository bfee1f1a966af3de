//! Which events of a partition are retries of an event already kept: the one
//! rule the loader and the aggregator both apply, so that an event is stored
//! once in `events` and counted once in the rollups.
//!
//! ## The rule
//! In one partition of `events.raw`, read in offset order, a record is a
//! **duplicate** when an earlier record *that was kept* has the same
//! `(team_id, event_id)` and a `received_at` at most `window` before its own
//! (whole seconds of the gateway's clock). Duplicates are dropped; the first
//! copy wins, whatever timestamp or properties a retry carries.
//!
//! The decision is a function of the partition's records alone, so two
//! consumers reading the same partition (the loader and the aggregator, or a
//! partition's old and new owner) decide the same for every record. The Kafka
//! key `team:user` puts every retry of an event on its original's partition,
//! as long as the retry names the same user (a retry that changes `user_id`
//! lands elsewhere and is not recognised: documented in `docs/sdk-compat.md`).
//!
//! ## Memory
//! [`SeenIds`] keeps one entry per kept event whose `received_at` is within
//! `window` (+ [`SLACK_SECS`]) of the newest seen: a 128-bit keyed hash of
//! `(team_id, event_id)` and the second it was received, 24 bytes in a
//! SwissTable slot plus one control byte, so 29–57 bytes per event depending
//! on how full the table is ([`SeenIds::memory_bytes`] reports it).
//!
//! The hash is SipHash-1-3 under keys drawn per process: a team that picks
//! its `event_id`s cannot make them collide with another team's (which would
//! drop the other team's events) nor flood one bucket. Two different events
//! collide with probability about 2⁻¹²⁸ per pair.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use uuid::Uuid;

/// How far a record's `received_at` may trail the newest one seen in its
/// partition (gateways' clocks and produce delays) before entries it could
/// match are forgotten. Entries are kept `window + SLACK_SECS`.
pub const SLACK_SECS: u32 = 600;

/// The default window: Segment's documented deduplication window. Browser
/// SDKs keep unsent events for hours, `posthog-js` retries for ~30 minutes.
pub const DEFAULT_WINDOW_SECS: u32 = 24 * 60 * 60;

/// The longest window accepted: the `event_ids` table that rebuilds the
/// state keeps 8 days.
pub const MAX_WINDOW_SECS: u32 = 7 * 24 * 60 * 60;

/// `dedup` in the loader's and the aggregator's configuration. Both must
/// use the same window, or they decide differently near its edge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupSettings {
    /// How long after its first copy a retry is still recognised, in
    /// seconds; 0 turns deduplication off (every record counts).
    pub window_secs: u32,
}

impl Default for DedupSettings {
    fn default() -> Self {
        Self {
            window_secs: DEFAULT_WINDOW_SECS,
        }
    }
}

impl DedupSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.window_secs > MAX_WINDOW_SECS {
            return Err(format!(
                "dedup.window_secs must be at most {MAX_WINDOW_SECS} (7 days: what `event_ids` keeps)"
            ));
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.window_secs > 0
    }

    /// A fresh set for one partition.
    pub fn new_set(&self) -> SeenIds {
        SeenIds::new(self.window_secs)
    }
}

/// Whether a record is the first kept copy of its event or a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    First,
    Duplicate,
}

/// The 128-bit identity of `(team_id, event_id)` under this process's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdKey(u64, u64);

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a keyed hash: one word is a fine bucket index.
        state.write_u64(self.0);
    }
}

/// Passes the key's first word through (see [`IdKey`]'s `Hash`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `IdKey`; folded for completeness.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct BuildPassThrough;

impl BuildHasher for BuildPassThrough {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough::default()
    }
}

/// The kept events of one partition within the window.
#[derive(Debug)]
pub struct SeenIds {
    window_secs: u32,
    keys: (RandomState, RandomState),
    /// Identity → the second the kept copy was received.
    entries: HashMap<IdKey, u32, BuildPassThrough>,
    /// The newest `received_at` seen (seconds): the partition's clock.
    newest: u32,
    /// `newest` at the last sweep.
    swept_at: u32,
}

impl SeenIds {
    pub fn new(window_secs: u32) -> Self {
        Self {
            window_secs,
            keys: (RandomState::new(), RandomState::new()),
            entries: HashMap::with_hasher(BuildPassThrough),
            newest: 0,
            swept_at: 0,
        }
    }

    pub fn window_secs(&self) -> u32 {
        self.window_secs
    }

    /// The identity of an event under this set's keys.
    pub fn key(&self, team_id: &str, event_id: Uuid) -> IdKey {
        let hash = |state: &RandomState| {
            let mut h = state.build_hasher();
            team_id.hash(&mut h);
            h.write_u128(event_id.as_u128());
            h.finish()
        };
        IdKey(hash(&self.keys.0), hash(&self.keys.1))
    }

    /// Whether a record with this identity received at `received_secs` is a
    /// duplicate of a kept one. Does not record it.
    pub fn check(&self, key: IdKey, received_secs: u32) -> Seen {
        match self.entries.get(&key) {
            Some(&first) if received_secs.saturating_sub(first) <= self.window_secs => {
                Seen::Duplicate
            }
            _ => Seen::First,
        }
    }

    /// Records a kept event (a first copy, or one from the stored rows).
    pub fn insert(&mut self, key: IdKey, received_secs: u32) {
        self.entries
            .entry(key)
            .and_modify(|first| {
                // Only a copy older than the window is replaced (the record
                // after it was a new first copy); the earliest kept wins.
                if received_secs.saturating_sub(*first) > self.window_secs {
                    *first = received_secs;
                }
            })
            .or_insert(received_secs);
        if received_secs > self.newest {
            self.newest = received_secs;
            self.sweep_if_due();
        }
    }

    /// [`check`](Self::check), and [`insert`](Self::insert) if it is a first copy.
    pub fn observe(&mut self, key: IdKey, received_secs: u32) -> Seen {
        let seen = self.check(key, received_secs);
        if seen == Seen::First {
            self.insert(key, received_secs);
        }
        seen
    }

    /// Forgets entries no future record can match, every 1/24 of the window
    /// of the partition's clock (an O(n) pass, so not on every record).
    fn sweep_if_due(&mut self) {
        let every = (self.window_secs / 24).max(60);
        if self.newest.saturating_sub(self.swept_at) < every {
            return;
        }
        self.swept_at = self.newest;
        let oldest = self
            .newest
            .saturating_sub(self.window_secs.saturating_add(SLACK_SECS));
        self.entries.retain(|_, first| *first >= oldest);
    }

    /// The oldest `received_at` (seconds) that still matters when the
    /// newest kept record was received at `newest_secs`: what a rebuild
    /// loads from the stored rows.
    pub fn horizon(window_secs: u32, newest_secs: u32) -> u32 {
        newest_secs.saturating_sub(window_secs.saturating_add(SLACK_SECS))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes of the table: slots of 24 bytes and a control byte each.
    pub fn memory_bytes(&self) -> usize {
        let slots = if self.entries.capacity() == 0 {
            0
        } else {
            // SwissTable: capacity is 7/8 of a power-of-two bucket count.
            (self.entries.capacity() * 8 / 7).next_power_of_two()
        };
        slots * (std::mem::size_of::<(IdKey, u32)>() + 1)
    }
}

/// Seconds of a millisecond instant, clamped to `u32` (ClickHouse `DateTime`).
pub fn secs(millis: i64) -> u32 {
    u32::try_from(millis.div_euclid(1000).max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u32 = 86_400;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_retry_within_the_window_is_a_duplicate_and_the_first_copy_wins() {
        let mut seen = SeenIds::new(DAY);
        let key = seen.key("team-a", id(1));
        assert_eq!(seen.observe(key, 1_000), Seen::First);
        assert_eq!(seen.observe(key, 1_000), Seen::Duplicate, "same second");
        assert_eq!(
            seen.observe(key, 1_000 + DAY),
            Seen::Duplicate,
            "at the edge"
        );
        assert_eq!(
            seen.observe(key, 1_001 + DAY),
            Seen::First,
            "a copy one second past the window is a new event"
        );
        assert_eq!(seen.observe(key, 1_002 + DAY), Seen::Duplicate);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn teams_do_not_share_ids() {
        let mut seen = SeenIds::new(DAY);
        let (a, b) = (seen.key("a", id(7)), seen.key("b", id(7)));
        assert_ne!(a, b);
        assert_eq!(seen.observe(a, 10), Seen::First);
        assert_eq!(seen.observe(b, 10), Seen::First, "another team, same id");
        // `team:id` boundaries cannot be shifted: "ab" + id ≠ "a" + "b…".
        assert_ne!(seen.key("ab", id(1)), seen.key("a", id(1)));
    }

    #[test]
    fn check_does_not_record() {
        let mut seen = SeenIds::new(60);
        let key = seen.key("t", id(3));
        assert_eq!(seen.check(key, 5), Seen::First);
        assert_eq!(seen.check(key, 5), Seen::First);
        seen.insert(key, 5);
        assert_eq!(seen.check(key, 6), Seen::Duplicate);
    }

    #[test]
    fn old_entries_are_swept_by_the_partition_clock_not_the_wall_clock() {
        let window = 3_600;
        let mut seen = SeenIds::new(window);
        let old = seen.key("t", id(1));
        seen.insert(old, 100_000);
        // Within window + slack of the newest: kept.
        let mut t = 100_000;
        for n in 2..200u128 {
            t += 10;
            seen.insert(seen.key("t", id(n)), t);
        }
        assert!(t < 100_000 + window);
        assert_eq!(seen.check(old, t), Seen::Duplicate, "inside the window");
        assert_eq!(
            seen.check(old, 100_000 + window + 1),
            Seen::First,
            "past the window"
        );
        assert_eq!(seen.len(), 199, "nothing is old enough to forget");
        // Far past window + slack: the first entries are gone.
        let late = 100_000 + window + SLACK_SECS + 3_600;
        seen.insert(seen.key("t", id(999)), late);
        assert!(seen.len() < 199, "swept: {}", seen.len());
        assert_eq!(seen.check(old, 100_000), Seen::First);
    }

    #[test]
    fn a_duplicate_never_extends_the_first_copys_life() {
        let mut seen = SeenIds::new(100);
        let key = seen.key("t", id(1));
        seen.observe(key, 0);
        assert_eq!(seen.observe(key, 90), Seen::Duplicate);
        // Measured from the first copy (0), not the retry (90).
        assert_eq!(seen.observe(key, 150), Seen::First);
    }

    #[test]
    fn memory_is_reported_per_slot() {
        let mut seen = SeenIds::new(DAY);
        assert_eq!(seen.memory_bytes(), 0);
        for n in 0..10_000u128 {
            seen.insert(seen.key("t", id(n)), 1);
        }
        let per_event = seen.memory_bytes() as f64 / seen.len() as f64;
        assert!(
            (25.0..=60.0).contains(&per_event),
            "{per_event} bytes/event"
        );
    }

    #[test]
    fn seconds_clamp() {
        assert_eq!(secs(1_999), 1);
        assert_eq!(secs(-5), 0);
        assert_eq!(secs(i64::MAX), u32::MAX);
    }
}
