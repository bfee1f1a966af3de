"""End-to-end smoke test: the built components in a real component host
(wasmtime's Python bindings, the `wasmtime` package), with WASI and a `log`
import that records what the guest logs.

Needs components built by build.sh: set SLUICE_PY_COMPONENTS to their
directory (test.sh --e2e does); skipped otherwise. Compiling a ~19 MB
component takes seconds, so each is compiled once per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

wasmtime = pytest.importorskip("wasmtime")
from wasmtime.component import Component, Linker, Record  # noqa: E402

COMPONENTS = os.environ.get("SLUICE_PY_COMPONENTS")
pytestmark = pytest.mark.skipif(not COMPONENTS, reason="SLUICE_PY_COMPONENTS not set (test.sh --e2e)")

VALIDATE = "sluice:plugin/validate@0.2.0"
ENRICH = "sluice:plugin/enrich@0.2.0"
CONFIG = {"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}


class Plugin:
    """One instance of a validator (or enricher) component, with its log lines."""

    def __init__(self, engine: Any, component: Any, linker: Any, interface: str = VALIDATE) -> None:
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.instance = linker.instantiate(self.store, component)
        export = self.instance.get_export_index(self.store, interface)
        self._init = self.instance.get_func(self.store, self.instance.get_export_index(self.store, "init", export))
        method = "validate" if interface == VALIDATE else "enrich"
        self._run = self.instance.get_func(self.store, self.instance.get_export_index(self.store, method, export))

    def call(self, func: Any, *args: Any) -> Any:
        result = func(self.store, *args)
        func.post_return(self.store)
        return result

    def init(self, config: dict[str, Any]) -> Any:
        return self.call(self._init, json.dumps(config))

    def run(self, events: list[dict[str, Any]]) -> list[Any]:
        batch = Record()
        batch.events = json.dumps(events, separators=(",", ":"), ensure_ascii=False)
        batch.spans = []
        return self.call(self._run, batch)

    validate = enrich = run


@pytest.fixture(scope="module")
def host():
    engine = wasmtime.Engine()
    logs: list[tuple[str, str]] = []
    compiled: dict[str, Any] = {}
    linkers: dict[str, Any] = {}

    def load(file: str) -> Any:
        if file not in compiled:
            start = time.perf_counter()
            compiled[file] = Component.from_file(engine, str(Path(COMPONENTS) / file))
            print(f"\n{file}: compiled in {time.perf_counter() - start:.1f} s")
            linker = Linker(engine)
            linker.add_wasip2()
            with linker.root() as root:
                with root.add_instance("sluice:plugin/log@0.2.0") as log:
                    log.add_func("log", lambda _store, level, message: logs.append((level, message)))
            linkers[file] = linker
        return compiled[file]

    def start(file: str, interface: str = VALIDATE) -> Plugin:
        component = load(file)
        return Plugin(engine, component, linkers[file], interface)

    start.engine = engine  # type: ignore[attr-defined]
    start.load = load  # type: ignore[attr-defined]
    start.logs = logs  # type: ignore[attr-defined]
    return start


def test_imports_and_exports(host):
    component = host.load("py_required_properties.wasm")
    imports = sorted(component.type.imports(host.engine))
    exports = sorted(component.type.exports(host.engine))
    print("imports:", imports, "\nexports:", exports)
    assert [i for i in imports if not i.startswith("wasi:")] == [
        "sluice:plugin/log@0.2.0",
        "sluice:plugin/types@0.2.0",
    ]
    # componentize-py also exports its own pre-initialisation hook, "exports".
    assert VALIDATE in exports


def test_required_properties(host):
    plugin = host("py_required_properties.wasm")
    needs = plugin.init(CONFIG)
    assert (needs.fields, needs.spans) == ({"properties"}, False)
    verdicts = plugin.validate(
        [
            {"event_id": "1", "name": "Signed Up", "properties": {"plan": "pro", "email": "a@b.c", "app_version": "1"}},
            {"event_id": "2", "name": "Signed Up", "properties": {"plan": "pro", "app_version": None}},
            {"event_id": "3", "name": "Page Viewed", "properties": {}},
        ]
    )
    # wasmtime-py: `accept` (no payload) is None, `reject` its rejection record.
    assert [None if v is None else (v.code, v.message) for v in verdicts] == [
        None,
        ("missing_property", "event `Signed Up` is missing required properties `email`, `app_version`"),
        ("missing_property", "event `Page Viewed` is missing required property `app_version`"),
    ]
    assert plugin.validate([]) == []


def test_state_survives_between_calls_and_throughput(host):
    plugin = host("py_required_properties.wasm")
    plugin.init(CONFIG)
    event = {
        "event_id": "0190",
        "name": "Signed Up",
        "properties": {"plan": "pro", "email": "a@b.c", "app_version": "1.2", "x": "y" * 200},
    }
    batch = [event] * 1000
    plugin.validate(batch)  # warm
    start = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        assert plugin.validate(batch) == [None] * 1000
    seconds = time.perf_counter() - start
    print(f"\nrequired_properties: {rounds * 1000 / seconds:,.0f} events/s (1000-event batches, one instance)")


def test_invalid_config(host):
    plugin = host("py_required_properties.wasm")
    error = plugin.init({"requried": {}})
    # wasmtime-py: the result's err case, a plugin-error variant.
    assert (error.tag, error.payload) == ("invalid-config", "unknown field `requried`, expected `required`")


def test_validate_before_init_traps(host):
    plugin = host("py_required_properties.wasm")
    del host.logs[:]
    with pytest.raises(wasmtime.WasmtimeError):
        plugin.validate([{"event_id": "1", "name": "x"}])
    assert "RuntimeError: validate called before a successful init" in host.logs[0][1]


def test_an_exception_is_logged_then_traps(host):
    plugin = host("py_fixture_raises.wasm")
    plugin.init({})
    del host.logs[:]
    with pytest.raises(wasmtime.WasmtimeError):
        plugin.validate([{"event_id": "1", "name": "x"}])
    assert len(host.logs) == 1, host.logs
    level, message = host.logs[0]
    assert level == "error"
    assert message.startswith("Raises.validate raised:\nTraceback")
    assert "FixtureError: fixture: validate raises on purpose" in message


def test_an_exception_in_init_is_plugin_error_other(host):
    plugin = host("py_fixture_raises.wasm")
    error = plugin.init({"in": "init"})
    assert (error.tag, error.payload) == ("other", "FixtureError: fixture: __init__ raises on purpose")


def test_bot_filter(host):
    plugin = host("py_bot_filter.wasm")
    needs = plugin.init({})
    assert (needs.fields, needs.spans) == ({"context", "properties"}, False)
    verdicts = plugin.validate(
        [
            {"event_id": "1", "name": "x", "context": {"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}},
            {"event_id": "2", "name": "x", "properties": {"$user_agent": "Baiduspider/2.0"}, "context": {}},
            {"event_id": "3", "name": "x", "properties": {"kind": "bot"}, "context": {"user_agent": "Firefox/128.0"}},
            {"event_id": "4", "name": "x", "properties": {}},
        ]
    )
    assert [None if v is None else (v.code, v.message) for v in verdicts] == [
        ("bot_traffic", "the user agent matches the bot pattern `bot`"),
        ("bot_traffic", "the user agent matches the bot pattern `spider`"),
        None,
        None,
    ]
    # Full Unicode lower-casing in the component's Python too (U+212A KELVIN SIGN is `k`).
    plugin = host("py_bot_filter.wasm")
    plugin.init({"user_agent_patterns": ["kit"]})
    verdict = plugin.validate([{"event_id": "1", "name": "x", "context": {"user_agent": "Web\u212aIT"}}])
    assert [(v.code, v.message) for v in verdict] == [("bot_traffic", "the user agent matches the bot pattern `kit`")]
    error = host("py_bot_filter.wasm").init({"user_agent_patterns": [""]})
    assert (error.tag, error.payload) == (
        "invalid-config",
        "`user_agent_patterns` must not contain an empty pattern (it would match everything)",
    )


def test_pii_scrubber(host):
    plugin = host("py_pii_scrubber.wasm", ENRICH)
    needs = plugin.init({"salt": "s", "fields": ["phone"]})
    assert (needs.fields, needs.spans) == ({"context", "properties"}, False)

    def digest(text: str) -> str:  # hashlib natively: checks the component's
        return "sha256:" + hashlib.sha256(("s" + text).encode()).hexdigest()

    results = plugin.enrich(
        [
            {"event_id": "1", "name": "x", "properties": {"plan": "pro", "v": "1.2.3"}, "context": {"ip": None}},
            {
                "event_id": "2",
                "name": "x",
                "properties": {"e": "mail a@b.io", "phone": [1, 2], "d": {"l": ["2001:db8::5", 3], "k": 1}},
                "context": {"ip": "10.0.0.1", "locale": "en"},
            },
            {"event_id": "3", "name": "x", "properties": {"e": "sha256:" + "0" * 64, "f": 1.5e300}},
        ]
    )
    # wasmtime-py: a variant, `unchanged` without payload.
    assert [(r.tag, r.payload) for r in results] == [
        ("unchanged", None),
        (
            "patched",
            '{"properties":{"e":"mail %s","phone":"%s","d":{"l":["%s",3]}},"context":{"ip":"%s"}}'
            % (digest("a@b.io"), digest("[1,2]"), digest("2001:db8::5"), digest("10.0.0.1")),
        ),
        ("unchanged", None),
    ]
    dropping = host("py_pii_scrubber.wasm", ENRICH)
    dropping.init({"mode": "drop"})
    event = {"event_id": "1", "name": "x", "properties": {"l": ["a@b.io", 1]}, "context": {"ip": "1"}}
    results = dropping.enrich([event])
    assert [(r.tag, r.payload) for r in results] == [("patched", '{"properties":{"l":[1]},"context":{"ip":null}}')]
    error = host("py_pii_scrubber.wasm", ENRICH).init({"mode": "hash"})
    assert (error.tag, error.payload) == (
        "invalid-config",
        "`salt` is required in hash mode: unsalted hashes of emails and IPs are easy to reverse",
    )

