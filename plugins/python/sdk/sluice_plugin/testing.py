"""Running a plugin natively, as the host would, for unit tests.

    from sluice_plugin.testing import run_validator
    verdicts = run_validator(RequiredProperties, {"required": {"*": ["plan"]}},
                             [{"name": "Signed Up", "properties": {"plan": "pro"}}])
    assert verdicts == [accept()]

The configuration goes through JSON text and ``__init__`` exactly as in the
component; each event is sent like the host sends it: only ``event_id``
(``"e<n>"`` unless given), ``name`` and the members the class declared in
``fields``, as one compact JSON array, handled by the SDK's batch code. So a
plugin that reads a member it did not declare sees it missing here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ._plugin import Enricher, Validator, _Plugin, declared_fields, instantiate, run_batch
from ._types import Accept, Enriched, Failed, Patched, Reject, Unchanged, Verdict

#: Event members in the host's order, and the declared field that brings each.
_MEMBERS = (
    ("event_id", None),
    ("name", None),
    ("user_id", "user_id"),
    ("timestamp_ms", "times"),
    ("received_at_ms", "times"),
    ("schema_version", "schema_version"),
    ("properties", "properties"),
    ("context", "context"),
)


def batch_json(events: Iterable[dict[str, Any]], fields: Iterable[str]) -> str:
    """``batch.events`` as the host would send these events to a plugin that declared ``fields``."""
    declared = set(fields)
    out = []
    for i, event in enumerate(events):
        event = {"event_id": f"e{i}", **event}
        sent = {}
        for member, field in _MEMBERS:
            if (field is None or field in declared) and event.get(member) is not None:
                sent[member] = event[member]
        out.append(sent)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def start(cls: type[_Plugin], config: dict[str, Any] | str = "{}") -> _Plugin:
    """``init``: the plugin instance, or ``InvalidConfig``. ``config`` may be JSON text."""
    declared_fields(cls)
    return instantiate(cls, config if isinstance(config, str) else json.dumps(config))


def _check_verdict(verdict: Any) -> Verdict:
    if type(verdict) not in (Accept, Reject):
        raise TypeError(f"validate must return accept() or reject(code, message), not {verdict!r}")
    return verdict


def _check_enriched(result: Any) -> Enriched:
    if type(result) not in (Unchanged, Patched, Failed):
        raise TypeError(f"enrich must return unchanged(), patch({{...}}) or failed(message), not {result!r}")
    return result


def _text(plugin: _Plugin, events: Iterable[dict[str, Any]] | str) -> str:
    return events if isinstance(events, str) else batch_json(events, declared_fields(type(plugin)))


def validate(plugin: Validator, events: Iterable[dict[str, Any]] | str) -> list[Verdict]:
    """One verdict per event from a started validator. ``events`` may also be
    ``batch.events`` text, sent as it is (e.g. to test repeated keys)."""
    return run_batch(plugin.validate, _text(plugin, events), _check_verdict, declared_fields(type(plugin)))


def enrich(plugin: Enricher, events: Iterable[dict[str, Any]] | str) -> list[Enriched]:
    """One result per event from a started enricher (``events`` as for ``validate``)."""
    return run_batch(plugin.enrich, _text(plugin, events), _check_enriched, declared_fields(type(plugin)))


def run_validator(
    cls: type[Validator], config: dict[str, Any] | str, events: Iterable[dict[str, Any]] | str
) -> list[Verdict]:
    """``start`` then ``validate``."""
    return validate(start(cls, config), events)  # type: ignore[arg-type]


def run_enricher(
    cls: type[Enricher], config: dict[str, Any] | str, events: Iterable[dict[str, Any]] | str
) -> list[Enriched]:
    """``start`` then ``enrich``."""
    return enrich(start(cls, config), events)  # type: ignore[arg-type]
