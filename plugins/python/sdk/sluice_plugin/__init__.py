"""Sluice plugin SDK for Python (``sluice:plugin@0.2.0``).

A validator::

    from sluice_plugin import Event, InvalidConfig, Validator, accept, export_validator, reject

    @export_validator
    class DenyNames(Validator):
        fields = set()  # reads only event_id and name (always sent)

        def __init__(self, config: dict) -> None:
            names = config.get("names", [])
            if not all(isinstance(n, str) for n in names):
                raise InvalidConfig("names must be strings")
            self.names = frozenset(names)

        def validate(self, event: Event):
            if event.name in self.names:
                return reject("denied_name", f"`{event.name}` is not accepted")
            return accept()

An enricher subclasses ``Enricher``, implements ``enrich(event)`` returning
``unchanged()``, ``patch({...})`` or ``failed(message)``, and is exported
with ``@export_enricher``.

The SDK parses each batch once, calls the method per event and returns one
result per event. An exception in ``validate``/``enrich`` is logged to the
host (with its traceback) and traps the call; one in ``__init__`` becomes
``plugin-error.invalid-config`` (``InvalidConfig``) or, logged,
``plugin-error.other`` ("TypeName: message"), except ``MemoryError``, which
traps. Tests run plugins natively with ``sluice_plugin.testing``.
"""

from . import log
from ._glue import export_enricher, export_validator
from ._plugin import Enricher, Validator
from ._types import (
    FIELDS,
    Accept,
    Enriched,
    Event,
    Failed,
    InvalidConfig,
    Patched,
    Reject,
    Unchanged,
    Verdict,
    accept,
    failed,
    patch,
    reject,
    unchanged,
)

__all__ = [
    "FIELDS",
    "Accept",
    "Enriched",
    "Enricher",
    "Event",
    "Failed",
    "InvalidConfig",
    "Patched",
    "Reject",
    "Unchanged",
    "Validator",
    "Verdict",
    "accept",
    "export_enricher",
    "export_validator",
    "failed",
    "log",
    "patch",
    "reject",
    "unchanged",
]
