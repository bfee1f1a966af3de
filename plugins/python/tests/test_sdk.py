"""The SDK natively: events, results, batch handling, export checks, logging."""

from __future__ import annotations

import json
import logging
import sys
import types

import pytest

import sluice_plugin._plugin as plugin_module
from sluice_plugin import (
    Enricher,
    Event,
    Failed,
    InvalidConfig,
    Patched,
    Reject,
    Validator,
    accept,
    export_enricher,
    export_validator,
    failed,
    log,
    patch,
    reject,
    unchanged,
)
from sluice_plugin._plugin import declared_fields, instantiate, run_batch
from sluice_plugin.testing import batch_json, run_enricher, run_validator, start, validate


class EveryOther(Validator):
    fields = {"properties"}

    def validate(self, event: Event):
        return accept() if int(event.event_id) % 2 == 0 else reject("odd", f"{event.name} is odd")


class Tagger(Enricher):
    fields = {"user_id", "times"}

    def enrich(self, event: Event):
        if event.name == "keep":
            return unchanged()
        if event.user_id is None:
            return failed("no user")
        return patch({"properties": {"seen_at": event.received_at_ms, "user": event.user_id}})


# --- events -------------------------------------------------------------------


def test_event_from_json_fills_what_was_sent():
    event = Event.from_json(
        {
            "event_id": "e1",
            "name": "n",
            "user_id": "u",
            "timestamp_ms": 1,
            "received_at_ms": 2,
            "schema_version": 3,
            "properties": {"a": 1},
            "context": {"ip": "10.0.0.1"},
        }
    )
    assert event == Event("e1", "n", "u", 1, 2, 3, {"a": 1}, {"ip": "10.0.0.1"})


def test_event_defaults_for_members_not_sent():
    first, second = (Event.from_json({"event_id": "e", "name": "n"}) for _ in range(2))
    assert first == Event("e", "n", None, None, None, None, {}, None)
    first.properties["x"] = 1
    assert second.properties == {}  # a fresh dict per event


# --- results ------------------------------------------------------------------


def test_patch_is_compact_json_with_non_ascii_kept():
    result = patch({"properties": {"email": None, "ville": "Zürich", "n": [1, 2.5, True]}, "context": None})
    assert result == Patched('{"properties":{"email":null,"ville":"Zürich","n":[1,2.5,true]},"context":null}')


def test_an_empty_patch_is_unchanged():
    assert patch({}) is unchanged()


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"event_id": "x"}, ValueError),
        ({"received_at_ms": 1}, ValueError),
        ({"properties": [1]}, ValueError),
        ({"properties": None}, ValueError),
        ({"context": "x"}, ValueError),
        ({"properties": {"x": float("nan")}}, ValueError),
        ('{"properties": {}}', TypeError),
    ],
)
def test_patches_that_break_the_contract_raise(changes, error):
    with pytest.raises(error):
        patch(changes)


def test_results_check_their_types():
    with pytest.raises(TypeError):
        reject("code", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        failed(None)  # type: ignore[arg-type]
    assert accept() is accept() and unchanged() is unchanged()
    assert reject("c", "m") == Reject("c", "m") and failed("m") == Failed("m")


# --- batches ------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 1000])
def test_one_result_per_event_in_order(count):
    events = [{"event_id": str(i), "name": f"n{i}", "properties": {}} for i in range(count)]
    verdicts = run_validator(EveryOther, {}, events)
    assert len(verdicts) == count
    assert verdicts == [accept() if i % 2 == 0 else reject("odd", f"n{i} is odd") for i in range(count)]


def test_the_batch_is_parsed_once(monkeypatch):
    calls = []
    real = json.loads
    monkeypatch.setattr(plugin_module.json, "loads", lambda text: calls.append(text) or real(text))
    text = batch_json([{"name": "a"}, {"name": "b"}, {"name": "c"}], ["properties"])
    assert len(run_batch(lambda event: event.name, text, lambda r: r)) == 3
    assert calls == [text]


def test_an_exception_gives_no_results_at_all():
    def per_event(event):
        if event.name == "b":
            raise RuntimeError("boom")
        return accept()

    with pytest.raises(RuntimeError, match="boom"):
        run_batch(per_event, batch_json([{"name": "a"}, {"name": "b"}], []), lambda r: r)


def test_a_wrong_result_type_raises():
    class Sloppy(Validator):
        def validate(self, event):
            return True

    with pytest.raises(TypeError, match="must return accept"):
        run_validator(Sloppy, {}, [{"name": "x"}])


def test_batch_events_must_be_an_array():
    with pytest.raises(TypeError):
        run_batch(lambda e: e, '{"event_id": "1"}', lambda r: r)


def test_each_declared_member_is_read_and_only_those():
    text = json.dumps(
        [
            {
                "event_id": "1",
                "name": "n",
                "user_id": "u",
                "timestamp_ms": 3,
                "received_at_ms": 4,
                "schema_version": 2,
                "properties": {"a": 1},
                "context": {"ip": "1"},
            },
            {"event_id": "2", "name": "m"},
        ]
    )
    seen = run_batch(lambda event: event, text, lambda r: r, ("user_id", "times", "schema_version", "properties", "context"))
    assert seen == [
        Event("1", "n", "u", 3, 4, 2, {"a": 1}, {"ip": "1"}),
        Event("2", "m", None, None, None, None, {}, None),
    ]
    assert run_batch(lambda event: event, text, lambda r: r) == seen  # all fields by default
    only_context = run_batch(lambda event: event, text, lambda r: r, ("context",))
    assert only_context[0] == Event("1", "n", context={"ip": "1"})
    assert only_context[0].properties == {} and only_context[0] is not only_context[1]
    assert only_context[0].properties is not only_context[1].properties


def test_the_common_result_is_not_converted():
    converted = []

    def convert(result):
        converted.append(result)
        return ("converted", result)

    text = batch_json([{"name": "a"}, {"name": "b"}, {"name": "a"}], [])
    common = ("common", "as is")
    out = run_batch(lambda event: "common" if event.name == "a" else event.name, text, convert, (), common)
    assert out == ["as is", ("converted", "b"), "as is"] and converted == ["b"]


def test_reject_reuses_equal_rejections_and_still_checks_types():
    first = reject("code", "the same reason")
    assert reject("code", "the same reason") is first and first == Reject("code", "the same reason")
    assert reject("code", "another reason") is not first
    with pytest.raises(TypeError):
        reject("code", ["not", "a", "str"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        reject("code", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        reject("code", 42)  # type: ignore[arg-type]  (not kept by the first failure)


def test_the_rejection_cache_is_bounded():
    from sluice_plugin import _types

    for i in range(_types._REJECTIONS_KEPT * 2 + 1):
        assert reject("c", f"m{i}") == Reject("c", f"m{i}")
    assert len(_types._REJECTIONS) <= _types._REJECTIONS_KEPT


def test_enricher_results():
    results = run_enricher(
        Tagger,
        "{}",
        [
            {"name": "keep", "user_id": "u"},
            {"name": "x"},
            {"name": "y", "user_id": "u1", "timestamp_ms": 1, "received_at_ms": 2, "properties": {"p": 1}},
        ],
    )
    assert results == [unchanged(), failed("no user"), Patched('{"properties":{"seen_at":2,"user":"u1"}}')]


def test_batch_json_sends_declared_members_in_the_hosts_order():
    event = {
        "context": {"ip": "1"},
        "properties": {"a": 1},
        "schema_version": 2,
        "received_at_ms": 4,
        "timestamp_ms": 3,
        "user_id": "u",
        "name": "n",
        "event_id": "id",
    }
    assert batch_json([event], ["context", "times", "user_id", "properties", "schema_version"]) == (
        '[{"event_id":"id","name":"n","user_id":"u","timestamp_ms":3,"received_at_ms":4,'
        '"schema_version":2,"properties":{"a":1},"context":{"ip":"1"}}]'
    )
    assert batch_json([event], ["times"]) == '[{"event_id":"id","name":"n","timestamp_ms":3,"received_at_ms":4}]'
    assert batch_json([{"name": "n", "context": None}], ["context"]) == '[{"event_id":"e0","name":"n"}]'


# --- configuration ------------------------------------------------------------


@pytest.mark.parametrize("config", ["", "nope", "[]", "1", "null", '"{}"'])
def test_a_configuration_must_be_a_json_object(config):
    with pytest.raises(InvalidConfig):
        instantiate(EveryOther, config)


def test_the_default_init_takes_any_object():
    assert isinstance(start(EveryOther, {"anything": [1]}), EveryOther)
    assert isinstance(start(EveryOther), EveryOther)


# --- fields and exports -------------------------------------------------------


def test_declared_fields_are_checked_and_ordered():
    assert declared_fields(Tagger) == ("user_id", "times")

    class Typo(Validator):
        fields = {"propreties"}

        def validate(self, event):
            return accept()

    with pytest.raises(ValueError, match="propreties"):
        declared_fields(Typo)
    Typo.fields = "properties"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        declared_fields(Typo)


@pytest.fixture
def module():
    """A throwaway module for classes to export from."""
    mod = types.ModuleType("sluice_test_plugin")
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


def make(base, module, name="Plugin", **body):
    return type(name, (base,), {"__module__": module.__name__, **body})


def test_export_validator_defines_validate_in_the_plugins_module(module):
    cls = make(Validator, module, validate=lambda self, e: accept(), fields={"context"})
    assert export_validator(cls) is cls
    assert module.Validate._plugin_class is cls and module.Validate._fields == ("context",)
    assert callable(module.Validate.init) and callable(module.Validate.validate)


def test_export_enricher_defines_enrich(module):
    cls = make(Enricher, module, enrich=lambda self, e: unchanged())
    export_enricher(cls)
    assert module.Enrich._plugin_class is cls


def test_exports_are_checked(module):
    with pytest.raises(TypeError):
        export_validator(make(Enricher, module, enrich=lambda self, e: unchanged()))
    with pytest.raises(TypeError, match="does not implement validate"):
        export_validator(make(Validator, module))
    with pytest.raises(ValueError):
        export_validator(make(Validator, module, validate=lambda self, e: accept(), fields={"nope"}))
    export_validator(make(Validator, module, "First", validate=lambda self, e: accept()))
    with pytest.raises(RuntimeError, match="already exports"):
        export_validator(make(Validator, module, "Second", validate=lambda self, e: accept()))


def test_an_export_does_not_overwrite_a_users_name(module):
    module.Validate = object()
    with pytest.raises(RuntimeError, match="already defines Validate"):
        export_validator(make(Validator, module, validate=lambda self, e: accept()))


def test_validate_before_a_successful_init_raises(module):
    export_validator(make(Validator, module, validate=lambda self, e: accept()))

    class Batch:
        events = "[]"

    with pytest.raises(RuntimeError, match="before a successful init"):
        module.Validate().validate(Batch())


# --- logging ------------------------------------------------------------------


def test_log_goes_to_python_logging_natively(caplog):
    caplog.set_level(1, logger="sluice_plugin")
    log.trace("t")
    log.info("i")
    log.warn("w")
    log.log("error", "e")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG - 5, "t"),
        (logging.INFO, "i"),
        (logging.WARNING, "w"),
        (logging.ERROR, "e"),
    ]
    with pytest.raises(ValueError):
        log.log("fatal", "x")  # type: ignore[arg-type]


def test_validate_helper_accepts_raw_batch_text():
    assert validate(start(EveryOther), '[{"event_id":"1","name":"x"}]') == [reject("odd", "x is odd")]
