//! Event-time tumbling windows for one Kafka partition.
//!
//! Every event counts once towards the 5-minute window of its `timestamp`,
//! under the key (team, event name, user). Because the gateway keys records
//! by team and user, all events of one key are in one partition, so each
//! partition's windows are complete on their own: partitions never wait for
//! each other, and an idle partition cannot hold back a busy one.
//!
//! ## Watermark
//! The partition's watermark is the highest event time seen, where each
//! event counts at most as far as its gateway receive time (a client with a
//! clock running ahead cannot push it into the future). A window
//! `[start, start + 5 min)` closes once the watermark passes
//! `start + 5 min + allowed lateness`; it is then emitted as one row per key.
//! When a partition receives nothing, the caller advances its watermark by
//! the wall clock ([`PartitionWindows::advance_to`]), so its last windows
//! close even if no later event ever arrives.
//!
//! ## Late events
//! An event whose window has already closed is not dropped: it becomes a
//! *correction*, a row for the same window and key flagged `late`, emitted at
//! the next flush. Rollups are sums, so the window's total becomes exact; the
//! `late` flag and a metric show how often it happens.
//!
//! ## What makes a re-read exact
//! Events of one key are counted in offset order, so the rows emitted for a
//! key always cover a prefix of its events: the last row's `max_offset` says
//! which. A recovering instance loads those offsets
//! ([`PartitionWindows::skip_emitted`]) and skips every event at or below
//! them; everything above is counted again from the re-read. The offset that
//! may be committed ([`PartitionWindows::commit_offset`]) is the first offset
//! still held only in memory.

use std::collections::{BTreeMap, HashMap};

/// Hash maps keyed by user-controlled strings: foldhash is several times
/// faster than SipHash on short keys and seeds itself per map, which keeps
/// crafted user ids from being a cheap collision attack.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Window length: 5 minutes.
pub use sluice_clickhouse::rollups::WINDOW_MS;

/// Start of the window containing `ms`.
pub fn window_start(ms: i64) -> i64 {
    ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// What a rollup counts by, within one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub team_id: String,
    pub event: String,
    pub user_id: String,
}

/// A key borrowed from the record being counted: looking it up costs no
/// allocation; only a key seen for the first time in a window is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub team_id: &'a str,
    pub event: &'a str,
    pub user_id: &'a str,
}

impl RollupKey {
    pub fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            team_id: &self.team_id,
            event: &self.event,
            user_id: &self.user_id,
        }
    }
}

/// The three parts as one string, each of the first two prefixed by its
/// length (so no choice of separator can make two keys collide), e.g.
/// `4:team5:eventuser`.
fn pack(key: KeyRef<'_>, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    let _ = write!(out, "{}:", key.team_id.len());
    out.push_str(key.team_id);
    let _ = write!(out, "{}:", key.event.len());
    out.push_str(key.event);
    out.push_str(key.user_id);
}

fn unpack(packed: &str) -> RollupKey {
    fn part(text: &str) -> (&str, &str) {
        let (len, rest) = text.split_once(':').unwrap_or(("0", text));
        let len = len.parse::<usize>().unwrap_or(0).min(rest.len());
        rest.split_at(len)
    }
    let (team_id, rest) = part(packed);
    let (event, user_id) = part(rest);
    RollupKey {
        team_id: team_id.to_owned(),
        event: event.to_owned(),
        user_id: user_id.to_owned(),
    }
}

/// One row for the rollup table: `events` events of `key` in the window
/// starting at `window_start_ms`, the last of them at `max_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    pub window_start_ms: i64,
    pub key: RollupKey,
    pub events: u64,
    pub max_offset: i64,
    /// A correction for a window that had already closed.
    pub late: bool,
}

/// What [`PartitionWindows::observe`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Counted in an open window.
    Counted,
    /// Its window had closed: counted as a correction.
    Late,
    /// Already in a row stored before a restart: skipped.
    AlreadyEmitted,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    events: u64,
    max_offset: i64,
}

#[derive(Debug, Default)]
struct OpenWindow {
    /// Offset of the first event counted here: nothing from it on may be
    /// committed while the window is open.
    first_offset: i64,
    keys: Map<Box<str>, Tally>,
}

/// The windows of one partition. Feed events in offset order.
#[derive(Debug)]
pub struct PartitionWindows {
    lateness_ms: i64,
    watermark_ms: i64,
    open: BTreeMap<i64, OpenWindow>,
    open_keys: usize,
    corrections: BTreeMap<i64, Map<Box<str>, Tally>>,
    corrections_first_offset: Option<i64>,
    /// `max_offset` of rows stored before this instance took over, by
    /// window start and packed key.
    emitted: BTreeMap<i64, Map<Box<str>, i64>>,
    emitted_until: i64,
    next_offset: Option<i64>,
    /// Reused buffer for packing the key being looked up.
    scratch: String,
}

impl PartitionWindows {
    pub fn new(lateness_ms: i64) -> Self {
        Self {
            lateness_ms: lateness_ms.max(0),
            watermark_ms: i64::MIN,
            open: BTreeMap::new(),
            open_keys: 0,
            corrections: BTreeMap::new(),
            corrections_first_offset: None,
            emitted: BTreeMap::new(),
            emitted_until: -1,
            next_offset: None,
            scratch: String::with_capacity(64),
        }
    }

    /// Rows already stored for this partition (window start, key, highest
    /// offset included): events at or below those offsets are skipped.
    pub fn skip_emitted(&mut self, rows: impl IntoIterator<Item = (i64, RollupKey, i64)>) {
        for (start, key, max_offset) in rows {
            self.emitted_until = self.emitted_until.max(max_offset);
            pack(key.as_ref(), &mut self.scratch);
            let entry = self
                .emitted
                .entry(start)
                .or_default()
                .entry(self.scratch.as_str().into())
                .or_insert(max_offset);
            *entry = (*entry).max(max_offset);
        }
    }

    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// Keys held in open windows (the memory this partition uses).
    pub fn open_keys(&self) -> usize {
        self.open_keys
    }

    /// Counts one event. `received_ms` caps how far it moves the watermark.
    pub fn observe(
        &mut self,
        offset: i64,
        event_ms: i64,
        received_ms: i64,
        key: KeyRef<'_>,
    ) -> Observed {
        self.next_offset = Some(self.next_offset.map_or(offset + 1, |n| n.max(offset + 1)));
        let start = window_start(event_ms);
        pack(key, &mut self.scratch);
        if offset <= self.emitted_until {
            let stored = self
                .emitted
                .get(&start)
                .and_then(|keys| keys.get(self.scratch.as_str()));
            if stored.is_some_and(|max| offset <= *max) {
                return Observed::AlreadyEmitted;
            }
        } else if !self.emitted.is_empty() {
            // Past every stored row: the recovery map is no longer needed.
            self.emitted = BTreeMap::new();
        }
        self.watermark_ms = self.watermark_ms.max(event_ms.min(received_ms));
        if self.is_closed(start) {
            let tally = tally_for(
                self.corrections.entry(start).or_default(),
                &self.scratch,
                offset,
            );
            tally.events += 1;
            tally.max_offset = offset;
            self.corrections_first_offset.get_or_insert(offset);
            return Observed::Late;
        }
        let window = self.open.entry(start).or_insert_with(|| OpenWindow {
            first_offset: offset,
            keys: Map::default(),
        });
        let before = window.keys.len();
        let tally = tally_for(&mut window.keys, &self.scratch, offset);
        tally.events += 1;
        tally.max_offset = offset;
        self.open_keys += window.keys.len() - before;
        Observed::Counted
    }

    fn is_closed(&self, start: i64) -> bool {
        start
            .saturating_add(WINDOW_MS)
            .saturating_add(self.lateness_ms)
            <= self.watermark_ms
    }

    /// Moves the watermark forward (never back), e.g. by the wall clock when
    /// the partition is idle.
    pub fn advance_to(&mut self, watermark_ms: i64) {
        self.watermark_ms = self.watermark_ms.max(watermark_ms);
    }

    /// Closes every window the watermark has passed and returns its rows and
    /// the pending corrections. If more than `max_open_keys` keys would stay
    /// open, the oldest windows are closed early too (their later events
    /// become corrections), which bounds memory.
    pub fn take_closed(&mut self, max_open_keys: usize) -> Vec<Emission> {
        let mut out = Vec::new();
        while let Some(&start) = self.open.keys().next() {
            let forced = self.open_keys > max_open_keys;
            if !forced && !self.is_closed(start) {
                break;
            }
            let Some(window) = self.open.remove(&start) else {
                break;
            };
            self.open_keys -= window.keys.len();
            out.extend(window.keys.into_iter().map(|(key, tally)| Emission {
                window_start_ms: start,
                key: unpack(&key),
                events: tally.events,
                max_offset: tally.max_offset,
                late: false,
            }));
            if forced {
                // Events of this window seen from now on are corrections.
                self.watermark_ms = self.watermark_ms.max(start + WINDOW_MS + self.lateness_ms);
            }
        }
        for (start, keys) in std::mem::take(&mut self.corrections) {
            out.extend(keys.into_iter().map(|(key, tally)| Emission {
                window_start_ms: start,
                key: unpack(&key),
                events: tally.events,
                max_offset: tally.max_offset,
                late: true,
            }));
        }
        self.corrections_first_offset = None;
        out
    }

    /// The offset to commit once every emission taken so far is stored: the
    /// first offset whose event is held only in memory, or one past the last
    /// event seen. `None` before any event.
    pub fn commit_offset(&self) -> Option<i64> {
        let held = self
            .open
            .values()
            .map(|w| w.first_offset)
            .chain(self.corrections_first_offset)
            .min();
        match (held, self.next_offset) {
            (Some(held), Some(next)) => Some(held.min(next)),
            (None, next) => next,
            (Some(held), None) => Some(held),
        }
    }
}

/// The tally of `packed` in `keys`, created (one allocation) if new.
fn tally_for<'m>(keys: &'m mut Map<Box<str>, Tally>, packed: &str, offset: i64) -> &'m mut Tally {
    if !keys.contains_key(packed) {
        keys.insert(
            packed.into(),
            Tally {
                events: 0,
                max_offset: offset,
            },
        );
    }
    keys.get_mut(packed)
        .unwrap_or_else(|| unreachable!("inserted above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    /// 2026-11-26T00:00:00Z, a window boundary.
    const T0: i64 = 1_795_651_200_000;

    fn key(user: &str) -> RollupKey {
        RollupKey {
            team_id: "t".into(),
            event: "e".into(),
            user_id: user.into(),
        }
    }

    /// Feeds `(offset, event minute after T0, user)` with receive time =
    /// event time, and returns what each did.
    fn feed(w: &mut PartitionWindows, events: &[(i64, i64, &str)]) -> Vec<Observed> {
        events
            .iter()
            .map(|(offset, minute, user)| {
                let t = T0 + minute * MIN;
                w.observe(*offset, t, t, key(user).as_ref())
            })
            .collect()
    }

    fn rows(emissions: &[Emission]) -> Vec<(i64, String, u64, i64, bool)> {
        let mut rows: Vec<_> = emissions
            .iter()
            .map(|e| {
                (
                    (e.window_start_ms - T0) / MIN,
                    e.key.user_id.clone(),
                    e.events,
                    e.max_offset,
                    e.late,
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn packed_keys_round_trip_and_never_collide() {
        let mut a = String::new();
        let mut b = String::new();
        let k1 = RollupKey {
            team_id: "a:1".into(),
            event: "b".into(),
            user_id: "c".into(),
        };
        let k2 = RollupKey {
            team_id: "a".into(),
            event: "1b".into(),
            user_id: "c".into(),
        };
        pack(k1.as_ref(), &mut a);
        pack(k2.as_ref(), &mut b);
        assert_ne!(a, b);
        assert_eq!(unpack(&a), k1);
        assert_eq!(unpack(&b), k2);
        let odd = RollupKey {
            team_id: "".into(),
            event: "ü\0".into(),
            user_id: "9:x".into(),
        };
        pack(odd.as_ref(), &mut a);
        assert_eq!(unpack(&a), odd);
    }

    #[test]
    fn window_boundaries_are_half_open() {
        assert_eq!(window_start(T0), T0);
        assert_eq!(window_start(T0 + 5 * MIN - 1), T0);
        assert_eq!(window_start(T0 + 5 * MIN), T0 + 5 * MIN);
        assert_eq!(window_start(-1), -WINDOW_MS);
    }

    #[test]
    fn a_window_closes_only_after_its_lateness() {
        let mut w = PartitionWindows::new(2 * MIN);
        feed(&mut w, &[(0, 0, "a"), (1, 4, "a"), (2, 6, "b")]);
        assert!(w.take_closed(usize::MAX).is_empty(), "watermark at 6 min");
        feed(&mut w, &[(3, 7, "b")]);
        // 7 min = 5 + 2: the first window closes.
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(0, "a".into(), 2, 1, false)]
        );
        assert_eq!(w.commit_offset(), Some(2), "offset 2 is still open");
    }

    #[test]
    fn out_of_order_events_inside_the_lateness_are_counted_in_their_window() {
        let mut w = PartitionWindows::new(2 * MIN);
        let seen = feed(
            &mut w,
            &[
                (0, 3, "a"),
                (1, 6, "a"),
                (2, 1, "a"),
                (3, 6, "a"),
                (4, 4, "b"),
            ],
        );
        assert!(seen.iter().all(|s| *s == Observed::Counted));
        w.advance_to(T0 + 7 * MIN);
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(0, "a".into(), 2, 2, false), (0, "b".into(), 1, 4, false)]
        );
    }

    #[test]
    fn events_beyond_the_lateness_become_corrections_not_losses() {
        let mut w = PartitionWindows::new(MIN);
        feed(&mut w, &[(0, 1, "a"), (1, 7, "a")]);
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(0, "a".into(), 1, 0, false)]
        );
        let seen = feed(&mut w, &[(2, 2, "a"), (3, 4, "a"), (4, 8, "a")]);
        assert_eq!(seen, [Observed::Late, Observed::Late, Observed::Counted]);
        assert_eq!(w.commit_offset(), Some(1), "window 5 still holds offset 1");
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(0, "a".into(), 2, 3, true)]
        );
        w.advance_to(T0 + 11 * MIN);
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(5, "a".into(), 2, 4, false)]
        );
        assert_eq!(w.commit_offset(), Some(5));
    }

    #[test]
    fn an_idle_partition_closes_its_windows_by_the_clock() {
        let mut w = PartitionWindows::new(MIN);
        feed(&mut w, &[(0, 2, "a")]);
        assert!(w.take_closed(usize::MAX).is_empty());
        w.advance_to(T0 + 6 * MIN - 1);
        assert!(w.take_closed(usize::MAX).is_empty());
        w.advance_to(T0 + 6 * MIN);
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(0, "a".into(), 1, 0, false)]
        );
        assert_eq!(w.commit_offset(), Some(1));
    }

    #[test]
    fn a_client_clock_ahead_does_not_move_the_watermark_past_receive_time() {
        let mut w = PartitionWindows::new(0);
        // Event claims +1 hour but was received at minute 1.
        w.observe(0, T0 + 60 * MIN, T0 + MIN, key("a").as_ref());
        assert_eq!(w.watermark_ms(), T0 + MIN);
        assert_eq!(
            w.observe(1, T0 + 2 * MIN, T0 + 2 * MIN, key("b").as_ref()),
            Observed::Counted
        );
    }

    #[test]
    fn a_reread_skips_exactly_what_was_stored() {
        // First life: window 0 closed and stored with a's events up to offset 2;
        // window 5 open (offsets 3.. not stored). Crash; re-read from offset 1.
        let mut w = PartitionWindows::new(0);
        w.skip_emitted([(T0, key("a"), 2)]);
        let seen = feed(
            &mut w,
            &[(1, 1, "a"), (2, 2, "a"), (3, 6, "a"), (4, 3, "b")],
        );
        assert_eq!(
            seen,
            [
                Observed::AlreadyEmitted,
                Observed::AlreadyEmitted,
                Observed::Counted,
                // b's event in window 0 was never stored: it is a correction.
                Observed::Late,
            ]
        );
        assert_eq!(
            rows(&w.take_closed(usize::MAX)),
            [(0, "b".into(), 1, 4, true)]
        );
    }

    #[test]
    fn the_commit_offset_never_passes_an_event_held_in_memory() {
        let mut w = PartitionWindows::new(2 * MIN);
        assert_eq!(w.commit_offset(), None);
        feed(&mut w, &[(10, 1, "a"), (11, 6, "a"), (12, 8, "a")]);
        assert_eq!(w.commit_offset(), Some(10));
        w.take_closed(usize::MAX);
        assert_eq!(w.commit_offset(), Some(11));
        w.advance_to(T0 + 20 * MIN);
        w.take_closed(usize::MAX);
        assert_eq!(w.commit_offset(), Some(13));
    }

    #[test]
    fn too_many_open_keys_close_the_oldest_window_early() {
        let mut w = PartitionWindows::new(10 * MIN);
        feed(&mut w, &[(0, 0, "a"), (1, 0, "b"), (2, 5, "c")]);
        assert_eq!(w.open_keys(), 3);
        let early = w.take_closed(2);
        assert_eq!(
            rows(&early),
            [(0, "a".into(), 1, 0, false), (0, "b".into(), 1, 1, false)]
        );
        assert_eq!(w.open_keys(), 1);
        assert_eq!(feed(&mut w, &[(3, 1, "a")]), [Observed::Late]);
    }
}
