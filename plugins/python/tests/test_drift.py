"""The SDK's glue uses exactly the names and shapes componentize-py generates
from wit/0.2.0; and these checks notice when the WIT changes (see drift.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from drift import WORLDS, generate, loaded, probe, shape_problems

WIT = Path(__file__).resolve().parents[3] / "wit" / "0.2.0"


@pytest.mark.parametrize("world", WORLDS)
def test_glue_matches_the_generated_bindings(world, tmp_path):
    with loaded(generate(WIT, world, tmp_path / "bindings")) as wit:
        assert shape_problems(world, wit) == []
        probe(world, wit)


# (file, text, replacement, worlds it matters to)
CHANGES = {
    "rejection field renamed": ("types.wit", "        code: string,", "        reason: string,", WORLDS),
    "flag added": ("types.wit", "        context,\n    }", "        context,\n        session,\n    }", WORLDS),
    "verdict case added": (
        "types.wit",
        "        reject(rejection),",
        "        reject(rejection),\n        defer,",
        WORLDS,
    ),
    "payload type changed": ("types.wit", "        failed(string),", "        failed(rejection),", WORLDS),
    "needs field added": (
        "types.wit",
        "        spans: bool,\n    }",
        "        spans: bool,\n        budget: u32,\n    }",
        WORLDS,
    ),
    "batch field retyped": ("types.wit", "        events: string,", "        events: list<u8>,", WORLDS),
    "log level renamed": ("log.wit", "        warn,", "        warning,", WORLDS),
    "export function renamed": (
        "validator.wit",
        "    validate: func(batch: batch) -> list<verdict>;",
        "    check: func(batch: batch) -> list<verdict>;",
        ("validator",),
    ),
    "init parameter retyped": (
        "enricher.wit",
        "    init: func(config: string) -> result<needs, plugin-error>;",
        "    init: func(config: list<u8>) -> result<needs, plugin-error>;",
        ("enricher",),
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_wit_is_noticed(change, tmp_path):
    file, text, replacement, worlds = CHANGES[change]
    wit = tmp_path / "wit"
    shutil.copytree(WIT, wit)
    source = (wit / file).read_text()
    assert source.count(text) == 1, f"{file} no longer has {text!r}: update this test"
    (wit / file).write_text(source.replace(text, replacement))
    for world in worlds:
        with loaded(generate(wit, world, tmp_path / world)) as bindings:
            problems = shape_problems(world, bindings)
        assert problems, f"{change} ({world}) went unnoticed"
