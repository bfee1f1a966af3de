"""Enricher: finds email addresses and IPv4/IPv6 addresses in string
property values (at any depth) and in ``context.ip``, and hashes or drops them.

The Python twin of ``plugins/examples/pii-scrubber``: for the same events and
configuration, the event the host makes of the result is the Rust plugin's
(as JSON values), with the same outcomes. Addresses are found as its
``find.rs`` finds them (``pii_find``, a port).

Configuration:
``{"mode": "hash" | "drop", "salt": "...", "fields": ["phone", ...]}``

* ``hash`` (default): each address found inside a string is replaced by
  ``sha256:`` + hex(sha256(salt + address)) (UTF-8); other text in the string
  is kept. A non-empty ``salt`` is required (unsalted hashes of emails and
  IPv4 addresses are easy to reverse).
* ``drop``: a string value containing an address is removed (the object
  member, or the array element).
* ``fields``: extra property names (matched at any depth) whose whole value
  is personal: hashed (non-strings as serde_json's compact JSON text of them,
  keys sorted, as the Rust plugin hashes them) or dropped; ``null`` is kept.
* ``context.ip`` (top-level member of the context) is always treated like a
  ``fields`` entry.

Values already starting with ``sha256:`` are left alone where a value is
personal as a whole, so scrubbing twice changes nothing. Unspecified and
loopback IPs are not personal and are kept. Object keys are not scanned.

An event in which nothing changes is returned ``unchanged``; otherwise a
merge patch: ``{"properties": {...}, "context": {"ip": ...}}`` with the
changed top-level properties (a string or array as its whole new value, a
removed member as ``None``, an object as a merge patch of its own: only its
changed members, since an object in a merge patch is merged, not replaced)
and ``context.ip`` if it changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from pii_find import find_pii, may_hold_address

from sluice_plugin import Enricher, Enriched, Event, InvalidConfig, Patched, export_enricher, failed, patch, unchanged
from sluice_plugin.serde import debug_str, float_text

HASH_PREFIX = "sha256:"

#: What scrubbing did to a value, when it is not a new value.
_KEPT = object()
_REMOVE = object()


class _OutOfRange(ValueError):
    """A number serde_json does not read (beyond the f64 range) in a value
    hashed whole: the Rust plugin fails the event when it is in the
    properties ("invalid value at byte N", N its offset in the raw text,
    which Python does not see) and leaves a context with one unchanged."""

    def __init__(self) -> None:
        super().__init__("invalid value")


@export_enricher
class PiiScrubber(Enricher):
    fields = {"properties", "context"}

    def __init__(self, config: dict[str, Any]) -> None:
        # As serde reads the Rust plugin's `Config` (`deny_unknown_fields`,
        # each member defaulted): members in order, the first problem reported.
        mode, salt, names = "hash", "", []
        for key, value in config.items():
            if key == "mode":
                mode = _mode(value)
            elif key == "salt":
                if type(value) is not str:
                    raise InvalidConfig(f"invalid type: {_unexpected(value)}, expected a string")
                salt = value
            elif key == "fields":
                if type(value) is not list:
                    raise InvalidConfig(f"invalid type: {_unexpected(value)}, expected a sequence")
                for name in value:
                    if type(name) is not str:
                        raise InvalidConfig(f"invalid type: {_unexpected(name)}, expected a string")
                names = value
            else:
                raise InvalidConfig(f"unknown field `{key}`, expected one of `mode`, `salt`, `fields`")
        if mode == "hash" and salt == "":
            raise InvalidConfig(
                "`salt` is required in hash mode: unsalted hashes of emails and IPs are easy to reverse"
            )
        if any(name == "" for name in names):
            raise InvalidConfig("`fields` must not contain empty names")
        self.mode = mode
        self.drop = mode == "drop"
        self.salt = salt
        #: The configured `fields` (property names personal as a whole).
        self.whole: frozenset[str] = frozenset(names)
        self._salted = hashlib.sha256(salt.encode())

    def enrich(self, event: Event) -> Enriched:
        changes: dict[str, Any] = {}
        properties = event.properties
        if type(properties) is dict:
            try:
                members = self._object_patch(properties)
            except _OutOfRange as e:
                return failed(f"properties are not JSON: {e}")
            if members:
                changes["properties"] = members
        context = event.context
        if type(context) is dict and "ip" in context:
            try:
                ip = self._scrub_whole(context["ip"])
            except _OutOfRange:
                # The Rust plugin passes a context it cannot scrub but that
                # is valid JSON (as every context the host sends is).
                ip = _KEPT
            if ip is not _KEPT:
                changes["context"] = {"ip": None if ip is _REMOVE else ip}
        if not changes:
            return unchanged()
        try:
            return patch(changes)
        except ValueError:
            return _patch_with_huge_numbers(changes)

    def hash(self, value: str) -> str:
        """``sha256:`` + lower-case hex of sha256(salt + value)."""
        digest = self._salted.copy()
        digest.update(value.encode())
        return HASH_PREFIX + digest.hexdigest()

    # --- scrubbing ---------------------------------------------------------------

    def _object_patch(self, members: dict[str, Any]) -> dict[str, Any]:
        """The merge patch that scrubs the object ``members`` (properties, or an
        object in them): its changed members only, ``{}`` when none."""
        changes: dict[str, Any] = {}
        for key, value in members.items():
            if key in self.whole:
                new = self._scrub_whole(value)
            elif type(value) is dict:
                nested = self._object_patch(value)
                new = nested if nested else _KEPT
            else:
                new = self._scrub_value(value)
            if new is not _KEPT:
                changes[key] = None if new is _REMOVE else new
        return changes

    def _scrub_value(self, value: Any) -> Any:
        """``value`` scrubbed: its new value, ``_KEPT`` or ``_REMOVE``."""
        kind = type(value)
        if kind is str:
            return self._scrub_string(value)
        if kind is list:
            return self._scrub_array(value)
        if kind is dict:
            return self._scrub_object(value)
        return _KEPT  # numbers, booleans, null

    def _scrub_object(self, members: dict[str, Any]) -> Any:
        """An object in an array: its whole new value (removed members left out)."""
        out: dict[str, Any] = {}
        changed = False
        for key, value in members.items():
            new = self._scrub_whole(value) if key in self.whole else self._scrub_value(value)
            if new is _KEPT:
                out[key] = value
            elif new is _REMOVE:
                changed = True
            else:
                out[key] = new
                changed = True
        return out if changed else _KEPT

    def _scrub_array(self, items: list[Any]) -> Any:
        out = []
        changed = False
        for item in items:
            new = self._scrub_value(item)
            if new is _KEPT:
                out.append(item)
            elif new is _REMOVE:
                changed = True
            else:
                out.append(new)
                changed = True
        return out if changed else _KEPT

    def _scrub_string(self, text: str) -> Any:
        """A string: hashes (in place) or drops the addresses it holds."""
        if not may_hold_address(text):
            return _KEPT
        found = find_pii(text)
        if not found:
            return _KEPT
        if self.drop:
            return _REMOVE
        parts = []
        last = 0
        for start, end in found:
            parts.append(text[last:start])
            parts.append(self.hash(text[start:end]))
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def _scrub_whole(self, value: Any) -> Any:
        """A value that is personal as a whole (``fields``, ``context.ip``)."""
        if value is None:
            return _KEPT
        if type(value) is str:
            if value.startswith(HASH_PREFIX):
                return _KEPT
            if self.drop:
                return _REMOVE
            return self.hash(value)
        if self.drop:
            return _REMOVE
        return self.hash(serde_json_text(value))


def _mode(value: Any) -> str:
    """The ``mode`` member, as serde reads the Rust plugin's ``Mode`` enum."""
    variants = ("hash", "drop")
    if type(value) is str:
        if value in variants:
            return value
        raise InvalidConfig(f"unknown variant `{value}`, expected `hash` or `drop`")
    # serde_json also reads an enum from an object of one member, the
    # variant (a unit variant's value being null).
    if type(value) is dict:
        if len(value) == 1:
            ((variant, payload),) = value.items()
            if variant not in variants:
                raise InvalidConfig(f"unknown variant `{variant}`, expected `hash` or `drop`")
            if payload is None:
                return variant
            raise InvalidConfig(f"invalid type: {_unexpected(payload)}, expected unit")
        raise InvalidConfig("expected value")
    raise InvalidConfig("expected value")


_STRING_OR_INFINITY = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity')


def _patch_with_huge_numbers(changes: dict[str, Any]) -> Patched:
    """The patch, when a changed array or object holds a number beyond the f64
    range (text like ``1e400``, which ``json.loads`` reads as infinity): the
    Rust plugin splices its text through unread, so it is written ``1e400``
    (``-1e400``) rather than failing the event."""
    text = json.dumps(changes, ensure_ascii=False, separators=(",", ":"))
    return Patched(
        _STRING_OR_INFINITY.sub(
            lambda m: m[0] if m[0].startswith('"') else m[0].replace("Infinity", "1e400"),
            text,
        )
    )


# --- serde_json's text of a value (hashed for a non-string whole value) ---------
#
# The Rust plugin parses such a value with serde_json (no `float_roundtrip`,
# no `preserve_order`: keys sorted) and hashes `Value::to_string()`. Floats
# come to Python correctly rounded from their (shortest) text; serde_json
# reads that text with a faster, sometimes inexact method, reproduced here,
# and writes floats with zmij (shortest digits, fixed notation for decimal
# exponents -5 to 15, else `1.5e+20`, `1e-7`).

_U64_MAX = 2**64 - 1
_POW10 = tuple(float(f"1e{i}") for i in range(309))


def serde_json_text(value: Any) -> str:
    """serde_json's compact text of ``value`` (as parsed from its JSON text)."""
    kind = type(value)
    if kind is str:
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return _serde_int(value)
    if kind is float:
        return float_text(_serde_float(value))
    if kind is list:
        return "[" + ",".join(serde_json_text(item) for item in value) + "]"
    if kind is dict:
        return (
            "{"
            + ",".join(json.dumps(key, ensure_ascii=False) + ":" + serde_json_text(value[key]) for key in sorted(value))
            + "}"
        )
    raise TypeError(f"not a JSON value: {value!r}")


def _serde_int(value: int) -> str:
    # u64, or a negative i64 (`-0` is read as a float by serde_json, but
    # reaches Python as the integer 0: the one spelling that differs).
    if 0 <= value <= _U64_MAX or -(2**63) <= value < 0:
        return str(value)
    digits = str(abs(value))
    if len(digits) <= 20 and int(digits) <= _U64_MAX:  # negative beyond i64: `-(u64 as f64)`
        return float_text(-float(int(digits)))
    # Longer than a u64: the digits that fit, the rest only counted.
    significand, used = 0, 0
    for digit in map(int, digits):
        if _overflows(significand, digit):
            break
        significand = significand * 10 + digit
        used += 1
    return float_text(_f64_from_parts(value > 0, significand, len(digits) - used))


def _overflows(significand: int, digit: int) -> bool:
    return significand >= _U64_MAX // 10 and (significand > _U64_MAX // 10 or digit > _U64_MAX % 10)


def _serde_float(value: float) -> float:
    """What serde_json reads from the shortest text of ``value``."""
    if value != value or value in (math.inf, -math.inf):
        raise _OutOfRange()
    text = repr(value)
    positive = not text.startswith("-")
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    return _f64_from_parts(positive, int(whole + fraction), (int(exponent) if exponent else 0) - len(fraction))


def _f64_from_parts(positive: bool, significand: int, exponent: int) -> float:
    """serde_json's ``f64_from_parts`` (without ``float_roundtrip``)."""
    f = float(significand)
    while True:
        if abs(exponent) < len(_POW10):
            if exponent >= 0:
                f *= _POW10[exponent]
                if math.isinf(f):
                    raise _OutOfRange()
            else:
                f /= _POW10[-exponent]
            break
        if f == 0.0:
            break
        if exponent >= 0:
            raise _OutOfRange()
        f /= 1e308
        exponent += 308
    return f if positive else -f


# --- serde's wording for a value of the wrong type (config errors) -------------


def _unexpected(value: Any) -> str:
    """How serde names an unexpected JSON value (``serde::de::Unexpected``)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return f"boolean `{'true' if value else 'false'}`"
    if type(value) is int and -(2**63) <= value <= _U64_MAX:
        return f"integer `{value}`"
    if type(value) in (int, float):  # serde_json writes it as it would a value
        number = float(value)
        if math.isfinite(number) and type(value) is float:
            number = _serde_float(number)
        return f"floating point `{float_text(number) if math.isfinite(number) else number}`"
    if type(value) is str:
        return f"string {debug_str(value)}"
    return "sequence" if type(value) is list else "map"
