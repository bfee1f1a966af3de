"""Finding email and IP addresses in a string: a line-by-line port of the
Rust plugin's ``find.rs`` (and of the Rust standard library's IPv4/IPv6
address parsers it relies on).

Spans are ``(start, end)`` indices into the ``str``. Rust works on UTF-8
bytes; every character these rules look at is ASCII, and a non-ASCII
character is, like each of its UTF-8 bytes, none of them (not a letter,
digit, ``_``, ``.``, ...), so the same addresses are found.
"""

from __future__ import annotations

import re

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LOCAL = frozenset(_ALNUM + "._%+-")  # an email's local part
_DOMAIN = frozenset(_ALNUM + ".-")  # an email's domain
_WORD = frozenset(_ALNUM + "_")  # what an IP must not be glued to
_DECIMAL = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")

#: Maximal runs of hex digits, `:` and `.` (IPv6 candidates), and of digits
#: and `.` (IPv4 candidates). ASCII classes: `re`'s `[0-9]` is ASCII only.
_V6_RUN = re.compile(r"[0-9A-Fa-f:.]+")
_V4_RUN = re.compile(r"[0-9.]+")

Span = tuple[int, int]


def may_hold_address(text: str) -> bool:
    """Whether ``text`` can hold an address at all: an email needs an ``@``,
    an IPv4 address three dots, an IPv6 address two colons."""
    return "@" in text or text.count(".") >= 3 or text.count(":") >= 2


def find_pii(text: str) -> list[Span]:
    """The spans of the email and IP addresses in ``text``: sorted and
    non-overlapping (an email wins over an IP inside it)."""
    spans = find_emails(text)
    for ip in find_ips(text):
        start, end = ip
        if not any(s < end and start < e for s, e in spans):
            spans.append(ip)
    spans.sort(key=lambda span: span[0])
    return spans


def find_emails(text: str) -> list[Span]:
    """``local@domain.tld``: local part of ``[A-Za-z0-9._%+-]`` (not starting
    with ``.``), domain labels of ``[A-Za-z0-9-]`` (not empty, not starting or
    ending with ``-``), an ASCII alphabetic TLD of two or more letters."""
    found: list[Span] = []
    length = len(text)
    search_from = 0
    while True:
        at = text.find("@", search_from)
        if at < 0:
            return found
        search_from = at + 1
        start = at
        while start > 0 and text[start - 1] in _LOCAL:
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        end = at + 1
        while end < length and text[end] in _DOMAIN:
            end += 1
        while end > at + 1 and text[end - 1] in (".", "-"):
            end -= 1
        if start == at or (found and found[-1][1] > start):
            continue
        labels = text[at + 1 : end].split(".")
        tld = labels[-1]
        if (
            len(labels) >= 2
            and all(label and label[0] != "-" and label[-1] != "-" for label in labels)
            and len(tld) >= 2
            and tld.isascii()
            and tld.isalpha()
        ):
            found.append((start, end))
            search_from = end


def find_ips(text: str) -> list[Span]:
    """IPv4 (dotted quad) and IPv6 addresses standing on their own (not glued
    to letters, digits or ``_``), except unspecified and loopback addresses."""
    length = len(text)

    def standalone(start: int, end: int) -> bool:
        return (start == 0 or text[start - 1] not in _WORD) and (end == length or text[end] not in _WORD)

    found: list[Span] = []
    # IPv6 first: its runs may contain an embedded IPv4 (`::ffff:10.0.0.1`).
    # Every IPv6 address has two colons: a run with fewer is skipped (the
    # Rust code parses it and fails, with the same result).
    if text.count(":") >= 2:
        for run in _V6_RUN.finditer(text):
            start, end = run.span()
            if text.count(":", start, end) < 2:
                continue
            # Trailing punctuation (`…fe80::1.` or `…::1:`) is not part of it.
            if end - start > 2 and text[end - 1] in (".", ":") and parse_ipv6(text[start : end - 1]) is not None:
                end -= 1
            candidate = text[start:end]
            if candidate.count(":") >= 2 and standalone(start, end):
                groups = parse_ipv6(candidate)
                if groups is not None and _personal_v6(groups):
                    found.append((start, end))

    # An IPv4 address has three dots.
    if text.count(".") >= 3:
        for run in _V4_RUN.finditer(text):
            start, end = run.span()
            while end > start and text[end - 1] == ".":
                end -= 1
            while start < end and text[start] == ".":
                start += 1
            if start == end or any(s < end and start < e for s, e in found):
                continue
            # Not a piece of a longer token such as `v1.2.3.4` (`10.0.0.1:8080` is fine).
            if standalone(start, end):
                octets = parse_ipv4(text[start:end])
                if octets is not None and _personal_v4(octets):
                    found.append((start, end))
    found.sort(key=lambda span: span[0])
    return found


def _personal_v4(octets: list[int]) -> bool:
    # Not unspecified (0.0.0.0), not loopback (127.0.0.0/8).
    return octets[0] != 127 and octets != [0, 0, 0, 0]


def _personal_v6(groups: list[int]) -> bool:
    # Not unspecified (::), not loopback (::1 only: Rust's `Ipv6Addr::is_loopback`).
    return groups != [0] * 8 and groups != [0] * 7 + [1]


# --- Rust's `Ipv4Addr` / `Ipv6Addr` `FromStr` (core::net::parser) ---------------
#
# Each reader takes the text and a position and returns the value and the
# position after it, or None (Rust's `read_atomically`: nothing consumed).


def parse_ipv4(text: str) -> list[int] | None:
    """The four octets of ``text``, as ``"a.b.c.d".parse::<Ipv4Addr>()`` reads it, or None."""
    if len(text) > 15:  # Rust: "don't try to parse if too long"
        return None
    read = _read_ipv4(text, 0)
    if read is None or read[1] != len(text):
        return None
    return read[0]


def parse_ipv6(text: str) -> list[int] | None:
    """The eight groups of ``text``, as ``.parse::<Ipv6Addr>()`` reads it, or None."""
    length = len(text)
    head, at, head_ipv4 = _read_groups(text, 0, 8)
    if len(head) == 8:
        return head if at == length else None
    # IPv4 part is not allowed before `::`.
    if head_ipv4:
        return None
    if text[at : at + 2] != "::":
        return None
    at += 2
    # The `::` stands for at least one group of zeros: at most 7 more.
    tail, at, _ = _read_groups(text, at, 8 - (len(head) + 1))
    if at != length:
        return None
    return head + [0] * (8 - len(head) - len(tail)) + tail


def _read_number(text: str, at: int, digits: frozenset[str], max_digits: int, allow_zero_prefix: bool):
    """Rust's ``read_number`` (radix given by ``digits``): up to ``max_digits`` digits."""
    length = len(text)
    start = at
    while at < length and text[at] in digits:
        at += 1
        if at - start > max_digits:
            return None
    count = at - start
    if count == 0:
        return None
    if not allow_zero_prefix and text[start] == "0" and count > 1:
        return None
    return int(text[start:at], 16 if digits is _HEX else 10), at


def _read_ipv4(text: str, at: int):
    octets = []
    for i in range(4):
        if i > 0:
            if text[at : at + 1] != ".":
                return None
            at += 1
        # Disallow octal numbers (a leading zero).
        read = _read_number(text, at, _DECIMAL, 3, False)
        if read is None or read[0] > 255:  # `u8::try_from`
            return None
        octet, at = read
        octets.append(octet)
    return octets, at


def _read_groups(text: str, at: int, limit: int):
    """Up to ``limit`` colon-separated groups with an optional trailing
    embedded IPv4 address: (groups, position, whether an IPv4 ended them)."""
    groups: list[int] = []
    for i in range(limit):
        # A trailing embedded IPv4 address needs two groups' room.
        if i < limit - 1:
            start = at
            if i == 0 or text[at : at + 1] == ":":
                read = _read_ipv4(text, at if i == 0 else at + 1)
                if read is not None:
                    (a, b, c, d), end = read
                    groups += [(a << 8) | b, (c << 8) | d]
                    return groups, end, True
            at = start
        if i > 0:
            if text[at : at + 1] != ":":
                return groups, at, False
            read = _read_number(text, at + 1, _HEX, 4, True)
        else:
            read = _read_number(text, at, _HEX, 4, True)
        if read is None:
            return groups, at, False
        group, at = read
        groups.append(group)
    return groups, at, False
