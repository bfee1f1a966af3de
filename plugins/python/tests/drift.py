"""Checks the SDK's component glue against the Python bindings componentize-py
generates from a WIT directory (``componentize-py -d WIT -w WORLD bindings``).

Two kinds of check, both run by ``test_drift.py`` on ``wit/0.2.0`` (must
pass) and on altered copies of it (must fail):

- ``shape_problems``: the generated names, dataclass fields and their types,
  flag and enum members, variant cases and export signatures are exactly
  those the glue was written for (``EXPECTED`` below, plus the SDK's own
  ``FIELDS``, ``LEVELS`` and ``EXPORT_CLASS_NAMES``);
- ``probe``: the glue itself runs against the generated modules (a probe
  plugin exported with the SDK, its ``init``/``validate``/``enrich`` called
  with generated ``Batch`` values, results checked for the generated classes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
import json
import subprocess
import sys
import types as pytypes
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from sluice_plugin import (
    FIELDS,
    Enricher,
    InvalidConfig,
    Validator,
    accept,
    export_enricher,
    export_validator,
    failed,
    patch,
    reject,
    unchanged,
)
from sluice_plugin import log as sdk_log
from sluice_plugin._glue import EXPORT_CLASS_NAMES

WORLDS = ("validator", "enricher")
EXPORT_METHOD = {"validator": "validate", "enricher": "enrich"}

# What the glue constructs or reads, as generated in wit_world.imports.types:
# record -> (field, type) in order; variant -> case -> payload type (None: no payload).
EXPECTED: dict[str, Any] = {
    "records": {
        "Needs": [("fields", "Fields"), ("spans", "bool")],
        "Batch": [("events", "str"), ("spans", "typing.List[int]")],
        "Rejection": [("code", "str"), ("message", "str")],
    },
    "variants": {
        "Verdict": {"Accept": None, "Reject": "Rejection"},
        "Enriched": {"Unchanged": None, "Patched": "str", "Failed": "str"},
        "PluginError": {"InvalidConfig": "str", "Other": "str"},
    },
    "flags": {"Fields": [f.upper() for f in FIELDS]},
    "exports": {
        "init": ([("config", "str")], "Needs"),
        "validate": ([("batch", "Batch")], "typing.List[typing.Union[Verdict_Accept, Verdict_Reject]]"),
        "enrich": (
            [("batch", "Batch")],
            "typing.List[typing.Union[Enriched_Unchanged, Enriched_Patched, Enriched_Failed]]",
        ),
    },
}

_GENERATED_TOP = ("wit_world", "componentize_py_types", "componentize_py_async_support", "poll_loop")


def componentize_py() -> str:
    """The componentize-py next to this Python (the venv's)."""
    return str(Path(sys.executable).parent / "componentize-py")


def generate(wit: Path, world: str, out: Path) -> Path:
    subprocess.run(
        [componentize_py(), "-q", "-d", str(wit), "-w", world, "bindings", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


@contextlib.contextmanager
def loaded(bindings: Path) -> Iterator[pytypes.SimpleNamespace]:
    """Imports the generated modules from ``bindings``; forgets them after."""

    def forget() -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in _GENERATED_TOP:
                del sys.modules[name]

    forget()
    sys.path.insert(0, str(bindings))
    try:
        import componentize_py_types
        import wit_world.exports
        import wit_world.imports.log
        import wit_world.imports.types

        yield pytypes.SimpleNamespace(
            types=wit_world.imports.types,
            log=wit_world.imports.log,
            exports=wit_world.exports,
            Err=componentize_py_types.Err,
        )
    finally:
        sys.path.remove(str(bindings))
        forget()


def _name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return repr(annotation).replace("wit_world.imports.types.", "")


def _members(module: Any, kind: type) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, kind) and value.__module__ == module.__name__
    }


def shape_problems(world: str, wit: pytypes.SimpleNamespace) -> list[str]:
    problems: list[str] = []
    t = wit.types

    def expect(what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            problems.append(f"{what}: generated {actual!r}, the glue expects {expected!r}")

    dataclass_names = {
        name for name, value in vars(t).items() if dataclasses.is_dataclass(value) and value.__module__ == t.__name__
    }
    expected_names = set(EXPECTED["records"]) | {
        f"{variant}_{case}" for variant, cases in EXPECTED["variants"].items() for case in cases
    }
    expect("types: records and variant cases", sorted(dataclass_names), sorted(expected_names))
    for record, fields in EXPECTED["records"].items():
        cls = getattr(t, record, None)
        if cls is not None and dataclasses.is_dataclass(cls):
            expect(f"record {record}", [(f.name, _name(f.type)) for f in dataclasses.fields(cls)], fields)
    for variant, cases in EXPECTED["variants"].items():
        for case, payload in cases.items():
            cls = getattr(t, f"{variant}_{case}", None)
            if cls is not None and dataclasses.is_dataclass(cls):
                actual = [(f.name, _name(f.type)) for f in dataclasses.fields(cls)]
                expect(f"variant case {variant}_{case}", actual, [] if payload is None else [("value", payload)])

    flags = _members(t, enum.Flag)
    expect("types: flags", sorted(flags), sorted(EXPECTED["flags"]))
    for name, members in EXPECTED["flags"].items():
        if name in flags:
            expect(f"flags {name}", [m.name for m in flags[name]], members)
    expect("types: enums", sorted(set(_members(t, enum.Enum)) - set(flags)), [])

    levels = _members(wit.log, enum.Enum)
    expect("log: enums", sorted(levels), ["Level"])
    if "Level" in levels:
        expect("log: Level", [m.name for m in levels["Level"]], [level.upper() for level in sdk_log.LEVELS])
    log_function = getattr(wit.log, "log", None)
    if log_function is None:
        problems.append("log: no log function")
    else:
        signature = inspect.signature(log_function)
        expect(
            "log: log()",
            [(p.name, _name(p.annotation)) for p in signature.parameters.values()],
            [("level", "Level"), ("message", "str")],
        )

    protocols = sorted(
        name
        for name, value in vars(wit.exports).items()
        if isinstance(value, type)
        and value.__module__ == wit.exports.__name__
        and getattr(value, "_is_protocol", False)
    )
    export_class = EXPORT_CLASS_NAMES[world]
    expect(f"exports of the {world} world", protocols, [export_class])
    protocol = getattr(wit.exports, export_class, None)
    if protocol is not None:
        methods = sorted(protocol.__abstractmethods__)
        expect(f"{export_class} methods", methods, sorted(["init", EXPORT_METHOD[world]]))
        for method in methods:
            if method in EXPECTED["exports"]:
                signature = inspect.signature(getattr(protocol, method))
                params = [(p.name, _name(p.annotation)) for p in signature.parameters.values() if p.name != "self"]
                expect(
                    f"{export_class}.{method}",
                    (params, _name(signature.return_annotation)),
                    EXPECTED["exports"][method],
                )
    return problems


def _probe_module(name: str) -> pytypes.ModuleType:
    module = pytypes.ModuleType(name)
    sys.modules[name] = module
    return module


def probe(world: str, wit: pytypes.SimpleNamespace) -> None:
    """Runs the SDK glue against the generated modules; raises on any mismatch."""
    t = wit.types
    module = _probe_module(f"sluice_drift_probe_{world}")
    try:
        if world == "validator":

            class ProbeValidator(Validator):
                fields = {"user_id", "properties", "context"}

                def __init__(self, config: dict[str, Any]) -> None:
                    if config.get("bad"):
                        raise InvalidConfig("bad on purpose")
                    if config.get("crash"):
                        raise KeyError("crash")

                def validate(self, event: Any) -> Any:
                    return accept() if event.properties.get("ok") else reject("not_ok", f"{event.name} not ok")

            ProbeValidator.__module__ = module.__name__
            export_validator(ProbeValidator)
        else:

            class ProbeEnricher(Enricher):
                fields = {"times", "schema_version"}

                def enrich(self, event: Any) -> Any:
                    if event.name == "same":
                        return unchanged()
                    if event.name == "fail":
                        return failed("cannot")
                    return patch({"properties": {"seen": event.timestamp_ms}})

            ProbeEnricher.__module__ = module.__name__
            export_enricher(ProbeEnricher)

        export = getattr(module, EXPORT_CLASS_NAMES[world])
        needs = export().init("{}")
        assert isinstance(needs, t.Needs), needs
        expected_flags = (
            t.Fields.USER_ID | t.Fields.PROPERTIES | t.Fields.CONTEXT
            if world == "validator"
            else t.Fields.TIMES | t.Fields.SCHEMA_VERSION
        )
        assert needs.fields == expected_flags and needs.spans is False, needs

        if world == "validator":
            for config, case, text in [
                ('{"bad": 1}', t.PluginError_InvalidConfig, "bad on purpose"),
                ("[]", t.PluginError_InvalidConfig, "the configuration must be a JSON object, not list"),
                ('{"crash": 1}', t.PluginError_Other, "KeyError: 'crash'"),
            ]:
                try:
                    export().init(config)
                except wit.Err as e:
                    assert type(e.value) is case and e.value.value == text, e.value
                else:
                    raise AssertionError(f"init({config}) did not raise Err")
            export().init("{}")
            events = [
                {"event_id": "1", "name": "a", "properties": {"ok": True}},
                {"event_id": "2", "name": "b", "properties": {}},
            ]
            results = export().validate(t.Batch(events=json.dumps(events), spans=[]))
            assert [type(r) for r in results] == [t.Verdict_Accept, t.Verdict_Reject], results
            assert type(results[1].value) is t.Rejection, results
            assert (results[1].value.code, results[1].value.message) == ("not_ok", "b not ok"), results
        else:
            events = [
                {"event_id": "1", "name": "same"},
                {"event_id": "2", "name": "fail"},
                {"event_id": "3", "name": "x", "timestamp_ms": 5},
            ]
            results = export().enrich(t.Batch(events=json.dumps(events), spans=[]))
            assert [type(r) for r in results] == [t.Enriched_Unchanged, t.Enriched_Failed, t.Enriched_Patched]
            assert results[1].value == "cannot" and results[2].value == '{"properties":{"seen":5}}', results

        # The log helper's host side, with the generated Level.
        written: list[tuple[Any, str]] = []
        original = wit.log.log
        wit.log.log = lambda level, message: written.append((level, message))
        try:
            sink = sdk_log._host_sink()
            for level in sdk_log.LEVELS:
                sink(level, level)
        finally:
            wit.log.log = original
        assert written == [(wit.log.Level[level.upper()], level) for level in sdk_log.LEVELS], written
    finally:
        del sys.modules[module.__name__]
