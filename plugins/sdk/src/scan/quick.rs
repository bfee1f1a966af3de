//! Quick looks at raw text (eight bytes at a time), for deciding whether a
//! text needs scanning at all.

use super::lex::{HIGHS, ONES, zero_bytes};

/// Whether some object in `text` may have a member named `key`: `false`
/// guarantees that none has (at any depth), without scanning the structure.
/// A cheap test before [`find_member`](super::find_member) when the key is usually absent: it
/// looks for `"key"` written out, and answers `true` at the first backslash
/// (an escape could spell the key differently).
pub fn may_contain_key(text: &str, key: &str) -> bool {
    let bytes = text.as_bytes();
    let key = key.as_bytes();
    if key.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        return bytes.contains(&b'\\'); // such a key is always written escaped
    }
    // Look for one byte of the key, preferably a rarer one than a
    // lower-case letter (`$` in `$user_agent`, `_` in `user_agent`).
    let Some(at) = key
        .iter()
        .position(|b| !b.is_ascii_lowercase())
        .or((!key.is_empty()).then_some(0))
    else {
        return bytes.windows(2).any(|w| w == b"\"\"") || bytes.contains(&b'\\');
    };
    let mut from = 0;
    while let Some(found) = find_any(bytes, from, [key[at], b'\\']) {
        if bytes[found] == b'\\' && key[at] != b'\\' {
            return true;
        }
        // `found - at - 1` is where the opening quote would be.
        if let Some(quote) = found.checked_sub(at + 1) {
            let end = quote + 1 + key.len();
            if bytes[quote] == b'"'
                && bytes.get(quote + 1..end) == Some(key)
                && bytes.get(end) == Some(&b'"')
            {
                return true;
            }
        }
        from = found + 1;
    }
    false
}

/// The offset of the first byte at or after `from` that is one of
/// `targets`, looking at eight bytes at a time: a quick way to the few
/// places of a text worth a closer look.
pub fn find_any_byte<const N: usize>(text: &str, from: usize, targets: [u8; N]) -> Option<usize> {
    find_any(text.as_bytes(), from, targets)
}

fn find_any<const N: usize>(bytes: &[u8], mut pos: usize, targets: [u8; N]) -> Option<usize> {
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let mask = targets.iter().fold(0, |mask, &t| {
            mask | zero_bytes(word ^ (ONES * u64::from(t)))
        });
        if mask != 0 {
            return Some(pos + (mask.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    let rest = bytes.get(pos..)?;
    rest.iter()
        .position(|b| targets.contains(b))
        .map(|i| pos + i)
}

/// How many bytes of `text` are each of `targets` (exact counts, eight
/// bytes at a time): a quick look at what a string could contain.
pub fn count_bytes<const N: usize>(text: &str, targets: [u8; N]) -> [usize; N] {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let mut counts = [0; N];
    let (chunks, rest) = text.as_bytes().as_chunks::<8>();
    for chunk in chunks {
        let word = u64::from_le_bytes(*chunk);
        for (count, target) in counts.iter_mut().zip(targets) {
            // Exact per byte: the high bit is set where the byte is `target`.
            let x = word ^ (ONES * u64::from(target));
            let equal = !(((x & LOW7) + LOW7) | x) & HIGHS;
            *count += equal.count_ones() as usize;
        }
    }
    if !rest.is_empty() {
        // The last few bytes as one zero-padded word, padding masked off.
        // (Byte by byte: a `copy_from_slice` of a variable length is a
        // `memory.copy`, which wasmtime runs as a call out of the guest.)
        let word = rest
            .iter()
            .rev()
            .fold(0u64, |word, &byte| word << 8 | u64::from(byte));
        let valid = HIGHS >> (8 * (8 - rest.len()));
        for (count, target) in counts.iter_mut().zip(targets) {
            let x = word ^ (ONES * u64::from(target));
            let equal = !(((x & LOW7) + LOW7) | x) & valid;
            *count += equal.count_ones() as usize;
        }
    }
    counts
}
