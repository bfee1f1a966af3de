"""The component's exports: the classes componentize-py calls.

componentize-py looks up, in the app module (the one named on its command
line), a class named after the exported interface: ``Validate`` for the
``validator`` world (interface ``validate``), ``Enrich`` for ``enricher``,
and calls its methods on instances it makes itself: what ``init`` sets on
``self`` is not there in ``validate`` (seen with componentize-py 0.25.1).
So the plugin instance lives on the class.

Generated names used here (``componentize-py ... bindings``; kept in step
with the WIT by ``tests/test_drift.py``):

- ``wit_world.imports.types``: ``Fields`` (flag members ``USER_ID``, ``TIMES``,
  ``SCHEMA_VERSION``, ``PROPERTIES``, ``CONTEXT``), ``Needs(fields, spans)``,
  ``Batch.events``, ``Rejection(code, message)``, ``Verdict_Accept()``,
  ``Verdict_Reject(value)``, ``Enriched_Unchanged()``,
  ``Enriched_Patched(value)``, ``Enriched_Failed(value)``,
  ``PluginError_InvalidConfig(value)``, ``PluginError_Other(value)``;
- ``componentize_py_types.Err`` (raised from ``init`` for the error case);
- ``wit_world.imports.log``: ``log(level, message)``, ``Level`` (in ``log.py``).

The ``wit_world`` modules are imported inside ``init``: they exist in the
component (and where bindings were generated), not in a plain Python.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Callable
from typing import Any, ClassVar

from . import log
from ._plugin import Enricher, Validator, _Plugin, declared_fields, instantiate, run_batch
from ._types import _ACCEPT, _UNCHANGED, Accept, Failed, InvalidConfig, Patched, Reject, Unchanged

#: World -> the export class componentize-py looks for in the app module.
EXPORT_CLASS_NAMES = {"validator": "Validate", "enricher": "Enrich"}


def _report(plugin_class: type, where: str) -> None:
    """Sends the exception being handled to the host log (best effort)."""
    try:
        log.error(f"{plugin_class.__qualname__}.{where} raised:\n{traceback.format_exc()}")
    except BaseException:  # noqa: BLE001 - e.g. MemoryError: the caller re-raises anyway
        pass


class _Export:
    """Shared by both exports: ``init`` and the per-instance state."""

    _plugin_class: ClassVar[type[_Plugin]]
    _fields: ClassVar[tuple[str, ...]]
    _plugin: ClassVar[Any] = None
    _convert: ClassVar[Callable[[Any], Any]]
    #: ``run_batch``'s ``common``: the SDK's shared result and its WIT value.
    _common: ClassVar[tuple[Any, Any]]
    #: The SDK's result most events get: ``accept()`` / ``unchanged()``.
    _shared: ClassVar[Any]

    def init(self, config: str) -> Any:
        from componentize_py_types import Err
        from wit_world.imports import types as wit

        cls = type(self)
        cls._plugin = None
        try:
            plugin = instantiate(cls._plugin_class, config)
        except InvalidConfig as e:
            raise Err(wit.PluginError_InvalidConfig(value=str(e))) from None
        except MemoryError:  # a resource fault, not the plugin's answer: trap
            _report(cls._plugin_class, "__init__")
            raise
        except Exception as e:
            _report(cls._plugin_class, "__init__")
            raise Err(wit.PluginError_Other(value=f"{type(e).__name__}: {e}")) from None
        flags = wit.Fields(0)
        for name in cls._fields:
            flags |= wit.Fields[name.upper()]
        cls._convert = cls._converter(wit)
        cls._common = (cls._shared, cls._convert(cls._shared))
        cls._plugin = plugin
        return wit.Needs(fields=flags, spans=False)

    @classmethod
    def _converter(cls, wit: Any) -> Callable[[Any], Any]:
        raise NotImplementedError

    @classmethod
    def _run(cls, method: str, events: str) -> list[Any]:
        try:
            plugin = cls._plugin
            if plugin is None:
                raise RuntimeError(f"{method} called before a successful init")
            return run_batch(getattr(plugin, method), events, cls._convert, cls._fields, cls._common)
        except Exception:
            _report(cls._plugin_class, method)
            raise


#: WIT rejections kept per export (see ``_types._REJECTIONS``, the same idea).
_WIT_REJECTIONS_KEPT = 512


class _ValidateExport(_Export):
    _shared = _ACCEPT

    def validate(self, batch: Any) -> list[Any]:
        return type(self)._run("validate", batch.events)

    @classmethod
    def _converter(cls, wit: Any) -> Callable[[Any], Any]:
        accepted = wit.Verdict_Accept()
        rejected, rejection = wit.Verdict_Reject, wit.Rejection
        where = f"{cls._plugin_class.__qualname__}.validate"
        # The WIT value of each (code, message) seen: the list the host gets
        # may hold one object many times (componentize-py reads, never keeps).
        made: dict[tuple[str, str], Any] = {}

        def convert(verdict: Any) -> Any:
            if verdict is _ACCEPT:
                return accepted
            kind = type(verdict)
            if kind is Reject:
                key = (verdict.code, verdict.message)
                found = made.get(key)
                if found is None:
                    if len(made) >= _WIT_REJECTIONS_KEPT:
                        made.clear()
                    found = made[key] = rejected(value=rejection(code=verdict.code, message=verdict.message))
                return found
            if kind is Accept:
                return accepted
            raise TypeError(f"{where} must return accept() or reject(code, message), not {verdict!r}")

        return convert


class _EnrichExport(_Export):
    _shared = _UNCHANGED

    def enrich(self, batch: Any) -> list[Any]:
        return type(self)._run("enrich", batch.events)

    @classmethod
    def _converter(cls, wit: Any) -> Callable[[Any], Any]:
        unchanged = wit.Enriched_Unchanged()
        patched, failed = wit.Enriched_Patched, wit.Enriched_Failed
        where = f"{cls._plugin_class.__qualname__}.enrich"

        def convert(result: Any) -> Any:
            if result is _UNCHANGED:
                return unchanged
            kind = type(result)
            if kind is Patched:
                return patched(value=result.patch)
            if kind is Failed:
                return failed(value=result.message)
            if kind is Unchanged:
                return unchanged
            raise TypeError(f"{where} must return unchanged(), patch({{...}}) or failed(message), not {result!r}")

        return convert


def _export(cls: type, base: type[_Plugin], export_base: type[_Export], world: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"export_{world}() takes a subclass of {base.__name__}, not {cls!r}")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise TypeError(f"{cls.__qualname__} does not implement {missing}")
    fields = declared_fields(cls)
    name = EXPORT_CLASS_NAMES[world]
    module = sys.modules[cls.__module__]
    existing = module.__dict__.get(name)
    if existing is not None and getattr(existing, "_plugin_class", None) is not None:
        if existing._plugin_class.__qualname__ != cls.__qualname__:
            raise RuntimeError(
                f"module {module.__name__} already exports {existing._plugin_class.__qualname__} as {name}"
            )
    elif existing is not None:
        raise RuntimeError(f"module {module.__name__} already defines {name}, the name the export needs")
    export = type(
        name,
        (export_base,),
        {
            "__module__": module.__name__,
            "__qualname__": name,
            "__doc__": f"componentize-py's entry point for {cls.__qualname__} (made by sluice_plugin).",
            "_plugin_class": cls,
            "_fields": fields,
        },
    )
    setattr(module, name, export)


def export_validator(cls: type[Validator]) -> type[Validator]:
    """Makes ``cls`` the component's validator (a class decorator).

    Defines ``Validate``, the class componentize-py calls, in the module
    that defines ``cls``: build that module as the component's app module.
    Checks ``cls.fields`` now (so a typo fails the build).
    """
    _export(cls, Validator, _ValidateExport, "validator")
    return cls


def export_enricher(cls: type[Enricher]) -> type[Enricher]:
    """Makes ``cls`` the component's enricher (a class decorator); see ``export_validator``."""
    _export(cls, Enricher, _EnrichExport, "enricher")
    return cls
