//! RowBinary encoding of [`EventRow`]s.
//!
//! The `clickhouse` crate keeps its RowBinary serialiser private, so the
//! loader writes the bytes itself: [`insert_batch`](super::insert_batch)
//! streams them to the server and [`encode_rows`] hands them to tests, which
//! compare them with what 18.16 and chdb read back. The format is small:
//! fixed-width integers little-endian, strings as a LEB128 length and the
//! bytes, `UUID` as its high then its low 64 bits (each little-endian),
//! `DateTime` as `u32` seconds and `DateTime64(3)` as `i64` milliseconds.
//! `LowCardinality(String)` columns take plain strings in RowBinary.

use uuid::Uuid;

use super::rows::{EventRow, LegacyRow, ModernRow};

/// The exact RowBinary bytes of `rows`, in order.
pub fn encode_rows(rows: &[EventRow<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 256);
    for row in rows {
        encode_row(row, &mut out);
    }
    out
}

/// Appends one row's bytes to `out`.
pub fn encode_row(row: &EventRow<'_>, out: &mut Vec<u8>) {
    match row {
        EventRow::Modern(row) => encode_modern(row, out),
        EventRow::Legacy(row) => encode_legacy(row, out),
    }
}

fn encode_modern(row: &ModernRow<'_>, out: &mut Vec<u8>) {
    put_uuid(out, row.event_id);
    put_str(out, &row.team_id);
    put_str(out, &row.event);
    put_str(out, &row.user_id);
    out.extend_from_slice(&row.timestamp.to_le_bytes());
    out.extend_from_slice(&row.received_at.to_le_bytes());
    out.extend_from_slice(&row.schema_version.to_le_bytes());
    put_str(out, &row.properties);
    put_str(out, &row.context);
    put_str(out, &row.kafka_topic);
    out.extend_from_slice(&row.kafka_partition.to_le_bytes());
    out.extend_from_slice(&row.kafka_offset.to_le_bytes());
    out.extend_from_slice(&row.loaded_at.to_le_bytes());
}

fn encode_legacy(row: &LegacyRow<'_>, out: &mut Vec<u8>) {
    put_uuid(out, row.event_id);
    put_str(out, &row.team_id);
    put_str(out, &row.event);
    put_str(out, &row.user_id);
    out.extend_from_slice(&row.timestamp.to_le_bytes());
    out.extend_from_slice(&row.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&row.received_at.to_le_bytes());
    out.extend_from_slice(&row.received_at_ms.to_le_bytes());
    out.extend_from_slice(&row.schema_version.to_le_bytes());
    put_str(out, &row.properties);
    put_str(out, &row.context);
    put_str(out, &row.kafka_topic);
    out.extend_from_slice(&row.kafka_partition.to_le_bytes());
    out.extend_from_slice(&row.kafka_offset.to_le_bytes());
    out.extend_from_slice(&row.loaded_at.to_le_bytes());
}

fn put_uuid(out: &mut Vec<u8>, id: Uuid) {
    // ClickHouse stores a UUID as two UInt64 halves, high first; this is what
    // the crate's `serde::uuid` helper writes and what 18.16 and 26.9 emit.
    let (high, low) = id.as_u64_pair();
    out.extend_from_slice(&high.to_le_bytes());
    out.extend_from_slice(&low.to_le_bytes());
}

/// A RowBinary `String`: its length as LEB128, then its bytes. Public so
/// other tables' encoders (the aggregator's rollups) write strings the same way.
pub fn put_str(out: &mut Vec<u8>, text: &str) {
    let mut len = text.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn legacy() -> LegacyRow<'static> {
        LegacyRow {
            event_id: Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff),
            team_id: Cow::Borrowed("t"),
            event: Cow::Borrowed("e"),
            user_id: Cow::Borrowed("u"),
            timestamp: 0x0102_0304,
            timestamp_ms: 999,
            received_at: 1,
            received_at_ms: 2,
            schema_version: 3,
            properties: Cow::Borrowed("{}"),
            context: Cow::Borrowed(""),
            kafka_topic: Cow::Borrowed("k"),
            kafka_partition: -1,
            kafka_offset: 258,
            loaded_at: 5,
        }
    }

    #[test]
    fn legacy_row_bytes() {
        let bytes = encode_rows(&[EventRow::Legacy(legacy())]);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            // event_id: high half LE, then low half LE
            &[0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00][..],
            &[0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88],
            &[1, b't'], &[1, b'e'], &[1, b'u'],
            &[0x04, 0x03, 0x02, 0x01], &[0xe7, 0x03],   // timestamp, timestamp_ms = 999
            &[1, 0, 0, 0], &[2, 0],                     // received_at, received_at_ms
            &[3, 0, 0, 0],                              // schema_version
            &[2, b'{', b'}'], &[0],                     // properties, empty context
            &[1, b'k'],                                 // kafka_topic
            &[0xff, 0xff, 0xff, 0xff],                  // kafka_partition = -1
            &[0x02, 0x01, 0, 0, 0, 0, 0, 0],            // kafka_offset = 258
            &[5, 0, 0, 0],                              // loaded_at
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn modern_row_bytes() {
        let l = legacy();
        let row = ModernRow {
            event_id: l.event_id,
            team_id: l.team_id,
            event: l.event,
            user_id: l.user_id,
            timestamp: 1_764_125_907_123,
            received_at: -1,
            schema_version: 3,
            properties: l.properties,
            context: Cow::Borrowed("{\"a\":1}"),
            kafka_topic: l.kafka_topic,
            kafka_partition: 7,
            kafka_offset: 1,
            loaded_at: 5,
        };
        let bytes = encode_rows(&[EventRow::Modern(row)]);
        let mut expected = bytes[..16].to_vec();
        expected.extend_from_slice(&[1, b't', 1, b'e', 1, b'u']);
        expected.extend_from_slice(&1_764_125_907_123_i64.to_le_bytes());
        expected.extend_from_slice(&[0xff; 8]);
        expected.extend_from_slice(&[3, 0, 0, 0, 2, b'{', b'}', 7]);
        expected.extend_from_slice(b"{\"a\":1}");
        expected.extend_from_slice(&[1, b'k', 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(bytes, expected);
        assert_eq!(
            bytes[..16],
            encode_rows(&[EventRow::Legacy(legacy())])[..16]
        );
    }

    #[test]
    fn string_lengths_are_leb128() {
        let mut out = Vec::new();
        put_str(&mut out, &"x".repeat(300));
        assert_eq!(&out[..2], &[0xac, 0x02]);
        assert_eq!(out.len(), 302);
        out.clear();
        put_str(&mut out, &"y".repeat(127));
        assert_eq!(out[0], 127);
        out.clear();
        put_str(&mut out, &"z".repeat(128));
        assert_eq!(&out[..2], &[0x80, 0x01]);
    }

    #[test]
    fn long_strings_get_multi_byte_lengths() {
        let mut out = Vec::new();
        put_str(&mut out, &"x".repeat(300));
        assert_eq!(&out[..2], &[0xac, 0x02]);
        assert_eq!(out.len(), 302);
    }
}
