"""Plugin base classes and the batch handling shared by the component glue
and the native test helpers (``sluice_plugin.testing``)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar

from ._types import FIELDS, Enriched, Event, InvalidConfig, Verdict

T = TypeVar("T")


class _Plugin:
    #: What the plugin reads of each event, besides ``event_id`` and ``name``:
    #: any of "user_id", "times", "schema_version", "properties", "context".
    #: The host sends nothing else (undeclared members keep ``Event``'s defaults).
    fields: ClassVar[Collection[str]] = frozenset()

    def __init__(self, config: dict[str, Any]) -> None:
        """Called once per instance with the team's configuration (a JSON
        object, ``{}`` when none). Raise ``InvalidConfig`` when it is unusable.
        The default accepts any configuration."""


class Validator(_Plugin, ABC):
    """Decides, per event, whether it may continue.

    Subclass it, set ``fields``, implement ``validate`` and export the class
    with ``@export_validator``. One instance serves many batches; keep no
    per-request state.
    """

    @abstractmethod
    def validate(self, event: Event) -> Verdict:
        """``accept()`` or ``reject(code, message)`` for one event."""


class Enricher(_Plugin, ABC):
    """Adds to or rewrites events that every validator accepted.

    Subclass it, set ``fields``, implement ``enrich`` and export the class
    with ``@export_enricher``.
    """

    @abstractmethod
    def enrich(self, event: Event) -> Enriched:
        """``unchanged()``, ``patch({...})`` or ``failed(message)`` for one event."""


def declared_fields(cls: type[_Plugin]) -> tuple[str, ...]:
    """The class's ``fields``, checked, in WIT order."""
    fields = cls.fields
    if isinstance(fields, str) or not isinstance(fields, Collection):
        raise TypeError(f'{cls.__qualname__}.fields must be a set of names, e.g. {{"properties"}}, not {fields!r}')
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"{cls.__qualname__}.fields: unknown {unknown} (known: {', '.join(FIELDS)})")
    return tuple(f for f in FIELDS if f in fields)


def instantiate(cls: type[_Plugin], config: str) -> _Plugin:
    """``cls(parsed config)``; ``InvalidConfig`` when the text is not a JSON object."""
    try:
        parsed = json.loads(config)
    except ValueError as e:
        raise InvalidConfig(f"the configuration is not JSON: {e}") from None
    if type(parsed) is not dict:
        raise InvalidConfig(f"the configuration must be a JSON object, not {type(parsed).__name__}")
    return cls(parsed)


def run_batch(
    per_event: Callable[[Event], Any],
    events: str,
    convert: Callable[[Any], T],
    fields: Collection[str] = FIELDS,
    common: tuple[Any, T] | None = None,
) -> list[T]:
    """Parses ``batch.events`` once and returns ``convert(per_event(event))``
    for each event, in order: exactly one result per event, or an exception.

    ``fields``: the declared fields; only their members are read into each
    ``Event`` (the host sends no others). ``common``: ``(result, converted)``
    for the result most events get (``accept()``, ``unchanged()``, shared
    objects): it is taken as ``converted`` without calling ``convert``.

    This loop runs once per event in an interpreter inside Wasm, so it is
    written for CPython's cost model (measured: README, "What a plugin costs
    per event"): no helper call per event (a Python frame costs about as
    much as building the ``Event``), and a member the plugin did not declare
    is not looked up.
    """
    members = json.loads(events)
    if type(members) is not list:
        raise TypeError(f"batch.events must be a JSON array, not {type(members).__name__}")
    user_id = "user_id" in fields
    times = "times" in fields
    schema_version = "schema_version" in fields
    properties = "properties" in fields
    context = "context" in fields
    shared, shared_converted = common if common is not None else (_NOTHING, None)
    new = Event
    out: list[T] = []
    append = out.append
    for member in members:
        get = member.get
        props = get("properties") if properties else None
        result = per_event(
            new(
                member["event_id"],
                member["name"],
                get("user_id") if user_id else None,
                get("timestamp_ms") if times else None,
                get("received_at_ms") if times else None,
                get("schema_version") if schema_version else None,
                {} if props is None else props,
                get("context") if context else None,
            )
        )
        append(shared_converted if result is shared else convert(result))  # type: ignore[arg-type]
    return out


#: Never a plugin's result: ``run_batch``'s ``common`` when none is given.
_NOTHING = object()
