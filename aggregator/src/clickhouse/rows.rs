//! RowBinary for `rollups_5m`: the exact bytes the aggregator inserts, in
//! [`ROLLUP_COLUMNS`](super::schema::ROLLUP_COLUMNS) order. The chdb suite
//! inserts these bytes into the modern engine; the legacy tests into 18.16.

use sluice_clickhouse::rowbinary::put_str;

use crate::window::Emission;

/// One emission of `topic`/`partition`, stamped with `emitted_at_secs`.
#[derive(Debug, Clone, Copy)]
pub struct RollupRow<'a> {
    pub emission: &'a Emission,
    pub topic: &'a str,
    pub partition: i32,
    pub emitted_at_secs: u32,
}

/// Appends one row. Times are whole seconds (`DateTime`): window starts are
/// multiples of five minutes, so nothing is lost.
pub fn encode_row(row: &RollupRow<'_>, out: &mut Vec<u8>) {
    let e = row.emission;
    out.extend_from_slice(&seconds(e.window_start_ms).to_le_bytes());
    put_str(out, &e.key.team_id);
    put_str(out, &e.key.event);
    put_str(out, &e.key.user_id);
    out.extend_from_slice(&e.events.to_le_bytes());
    out.push(u8::from(e.late));
    put_str(out, row.topic);
    out.extend_from_slice(&(row.partition.max(0) as u32).to_le_bytes());
    out.extend_from_slice(&(e.max_offset.max(0) as u64).to_le_bytes());
    out.extend_from_slice(&row.emitted_at_secs.to_le_bytes());
}

/// Milliseconds since the epoch as `DateTime` seconds, clamped to its range
/// (1970 to 2106); the gateway's timestamp rules keep real events inside it.
pub fn seconds(ms: i64) -> u32 {
    ms.div_euclid(1000).clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::RollupKey;

    #[test]
    fn golden_bytes() {
        let emission = Emission {
            window_start_ms: 1_795_651_200_000,
            key: RollupKey {
                team_id: "t".into(),
                event: "ev".into(),
                user_id: "u".into(),
            },
            events: 3,
            max_offset: 258,
            late: true,
        };
        let mut out = Vec::new();
        encode_row(
            &RollupRow {
                emission: &emission,
                topic: "raw",
                partition: 2,
                emitted_at_secs: 1_795_651_560,
            },
            &mut out,
        );
        let mut expect = Vec::new();
        expect.extend_from_slice(&1_795_651_200u32.to_le_bytes());
        expect.extend_from_slice(b"\x01t\x02ev\x01u");
        expect.extend_from_slice(&3u64.to_le_bytes());
        expect.push(1);
        expect.extend_from_slice(b"\x03raw");
        expect.extend_from_slice(&2u32.to_le_bytes());
        expect.extend_from_slice(&258u64.to_le_bytes());
        expect.extend_from_slice(&1_795_651_560u32.to_le_bytes());
        assert_eq!(out, expect);
    }
}
