"""The SDK's own types: events in, verdicts and enrichment results out.

Plain Python, independent of the generated bindings (``wit_world``), so
plugin logic runs and is tested natively; ``_glue`` converts these to the
WIT types inside the component.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: The event parts a plugin may declare in its ``fields`` (the WIT
#: ``fields`` flags, in WIT order). ``event_id`` and ``name`` always come.
FIELDS: tuple[str, ...] = ("user_id", "times", "schema_version", "properties", "context")

#: Members an enricher's patch may touch (anything else breaks the contract).
PATCHABLE: frozenset[str] = frozenset({"name", "user_id", "timestamp_ms", "properties", "context"})


class InvalidConfig(Exception):
    """Raise from a plugin's ``__init__`` when the team's configuration is unusable.

    The host gets ``plugin-error.invalid-config`` with this message.
    """


@dataclass(slots=True)
class Event:
    """One event of a batch.

    Only the members the plugin declared in ``fields`` are filled; the others
    keep these defaults (``times`` fills both ``timestamp_ms`` and
    ``received_at_ms``). ``context`` is ``None`` also for an event that has
    none. Times are milliseconds since the Unix epoch (UTC).
    """

    event_id: str
    name: str
    user_id: str | None = None
    timestamp_ms: int | None = None
    received_at_ms: int | None = None
    schema_version: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, member: dict[str, Any]) -> Event:
        """The event for one object of ``batch.events`` (already parsed)."""
        get = member.get
        properties = get("properties")
        return cls(
            member["event_id"],
            member["name"],
            get("user_id"),
            get("timestamp_ms"),
            get("received_at_ms"),
            get("schema_version"),
            {} if properties is None else properties,
            get("context"),
        )


# --- validators ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accept:
    """The event may continue."""


@dataclass(frozen=True, slots=True)
class Reject:
    """The event is refused; the client sees ``plugin_rejected`` with this reason."""

    code: str
    """A stable, machine-readable code, e.g. ``missing_plan``."""
    message: str
    """A sentence for the developer who sent the event."""

    def __post_init__(self) -> None:
        if type(self.code) is not str or type(self.message) is not str:
            raise TypeError(f"reject(code, message) takes two str, got {self.code!r}, {self.message!r}")


Verdict = Accept | Reject
"""A validator's decision about one event: ``accept()`` or ``reject(code, message)``."""

_ACCEPT = Accept()


def accept() -> Accept:
    """The event may continue."""
    return _ACCEPT


#: Rejections already made, by (code, message): plugins refuse many events
#: for the same few reasons, and building a frozen dataclass per event cost
#: about as much as the rest of the SDK's per-event work (README, "What a
#: plugin costs per event"). Bounded: emptied when full, so a plugin whose
#: messages name each event pays only the lookup.
_REJECTIONS: dict[tuple[str, str], Reject] = {}
_REJECTIONS_KEPT = 512


def reject(code: str, message: str) -> Reject:
    """The event is refused with this code and message."""
    key = (code, message)
    try:
        found = _REJECTIONS.get(key)
    except TypeError:  # unhashable, so not two str: Reject says what is wrong
        return Reject(code, message)
    if found is None:
        found = Reject(code, message)  # checks the types
        if len(_REJECTIONS) >= _REJECTIONS_KEPT:
            _REJECTIONS.clear()
        _REJECTIONS[key] = found
    return found


# --- enrichers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Pass the event on as it came in."""


@dataclass(frozen=True, slots=True)
class Patched:
    """Apply this JSON merge patch (RFC 7396), as JSON text; made by ``patch(dict)``."""

    patch: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The plugin could not process this event (its failure policy decides)."""

    message: str

    def __post_init__(self) -> None:
        if type(self.message) is not str:
            raise TypeError(f"failed(message) takes a str, got {self.message!r}")


Enriched = Unchanged | Patched | Failed
"""An enricher's result for one event: ``unchanged()``, ``patch({...})`` or ``failed(message)``."""

_UNCHANGED = Unchanged()


def unchanged() -> Unchanged:
    """Pass the event on as it came in (nothing is copied back)."""
    return _UNCHANGED


def patch(changes: dict[str, Any]) -> Patched | Unchanged:
    """A JSON merge patch (RFC 7396) over the event, e.g.
    ``patch({"properties": {"email": None, "email_hash": "sha256:..."}})``.

    ``None`` removes a member. Top-level keys may only be ``name``,
    ``user_id``, ``timestamp_ms``, ``properties`` (an object, merged) and
    ``context`` (an object, or ``None`` to remove it); anything else raises
    ``ValueError``, as does a value JSON cannot hold (NaN, infinity). An
    empty patch is ``unchanged()``. Serialised compactly, non-ASCII kept.
    """
    if type(changes) is not dict:
        raise TypeError(f"patch() takes a dict (a JSON merge patch), got {type(changes).__name__}")
    if not changes:
        return _UNCHANGED
    if not PATCHABLE.issuperset(changes):
        bad = ", ".join(sorted(str(k) for k in changes if k not in PATCHABLE))
        raise ValueError(f"a patch may not touch {bad} (only {', '.join(sorted(PATCHABLE))})")
    if type(changes.get("properties", {})) is not dict:
        raise ValueError("a patch's properties must be an object (its members are merged)")
    context = changes.get("context")
    if context is not None and type(context) is not dict:
        raise ValueError("a patch's context must be an object, or None to remove it")
    text = json.dumps(changes, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Patched(text)


def failed(message: str) -> Failed:
    """The plugin could not process this event."""
    return Failed(message)
