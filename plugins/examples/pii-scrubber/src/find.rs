//! Finding email and IP addresses in a string.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use sluice_plugin_sdk::scan;

/// Whether `text` can hold an address at all: an email needs an `@`, an IPv4
/// address three dots, an IPv6 address two colons. Most strings have none
/// of these and skip the exact search.
pub(crate) fn may_hold_address(text: &str) -> bool {
    let [at, dots, colons] = scan::count_bytes(text, [b'@', b'.', b':']);
    at > 0 || dots >= 3 || colons >= 2
}

/// Byte ranges of the email and IP addresses in `text`: sorted and
/// non-overlapping (an email wins over an IP inside it).
pub fn find_pii(text: &str) -> Vec<Range<usize>> {
    let mut spans = find_emails(text);
    for ip in find_ips(text) {
        if !spans.iter().any(|s| s.start < ip.end && ip.start < s.end) {
            spans.push(ip);
        }
    }
    spans.sort_by_key(|s| s.start);
    spans
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// `local@domain.tld`: local part of `[A-Za-z0-9._%+-]`, domain labels of
/// `[A-Za-z0-9-]` (not starting or ending with `-`), an alphabetic TLD of two
/// or more letters.
fn find_emails(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut search_from = 0;
    while let Some(offset) = text[search_from..].find('@') {
        let at = search_from + offset;
        search_from = at + 1;
        let mut start = at;
        while start > 0 && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_byte(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || found.last().is_some_and(|r: &Range<usize>| r.end > start) {
            continue;
        }
        let domain = &text[at + 1..end];
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_labels = labels
            .iter()
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if labels.len() >= 2 && valid_labels && tld_ok {
            found.push(start..end);
            search_from = end;
        }
    }
    found
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Maximal runs of bytes matching `in_run`, as ranges.
fn runs(bytes: &[u8], in_run: impl Fn(u8) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if in_run(bytes[i]) {
            let start = i;
            while i < bytes.len() && in_run(bytes[i]) {
                i += 1;
            }
            out.push(start..i);
        } else {
            i += 1;
        }
    }
    out
}

/// IPv4 (dotted quad) and IPv6 addresses standing on their own (not glued
/// to letters, digits or `_`), except unspecified and loopback addresses.
pub fn find_ips(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let standalone = |r: &Range<usize>| {
        (r.start == 0 || !is_word_byte(bytes[r.start - 1]))
            && (r.end == bytes.len() || !is_word_byte(bytes[r.end]))
    };
    let personal = |ip: IpAddr| !ip.is_unspecified() && !ip.is_loopback();
    let mut found = Vec::new();

    // IPv6 first: its runs may contain an embedded IPv4 (`::ffff:10.0.0.1`).
    for run in runs(bytes, |b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
        let mut candidate = run.clone();
        // Trailing punctuation (`…fe80::1.` or `…::1:`) is not part of it.
        if candidate.len() > 2 && matches!(bytes[candidate.end - 1], b'.' | b':') {
            let trimmed = candidate.start..candidate.end - 1;
            if text[trimmed.clone()].parse::<Ipv6Addr>().is_ok() {
                candidate = trimmed;
            }
        }
        let text_of = &text[candidate.clone()];
        if text_of.bytes().filter(|&b| b == b':').count() >= 2
            && standalone(&candidate)
            && text_of
                .parse::<Ipv6Addr>()
                .is_ok_and(|ip| personal(IpAddr::V6(ip)))
        {
            found.push(candidate);
        }
    }

    for run in runs(bytes, |b| b.is_ascii_digit() || b == b'.') {
        let mut candidate = run;
        while candidate.end > candidate.start && bytes[candidate.end - 1] == b'.' {
            candidate.end -= 1;
        }
        while candidate.start < candidate.end && bytes[candidate.start] == b'.' {
            candidate.start += 1;
        }
        if candidate.is_empty()
            || found
                .iter()
                .any(|r| r.start < candidate.end && candidate.start < r.end)
        {
            continue;
        }
        // Not a piece of a longer token such as `v1.2.3.4` (`10.0.0.1:8080` is fine).
        if standalone(&candidate)
            && text[candidate.clone()]
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| personal(IpAddr::V4(ip)))
        {
            found.push(candidate);
        }
    }
    found.sort_by_key(|r| r.start);
    found
}
