#!/usr/bin/env python3
"""Generates corpus.json: random schemas over the supported keywords and
random instances, each with the verdict of Python's `jsonschema` (the
reference implementation, Draft 2020-12, formats asserted).
schemas/tests/differential.rs checks that sluice-schemas agrees.

    pip install jsonschema==4.26.0
    python3 schemas/tests/differential/generate.py > schemas/tests/differential/corpus.json

Patterns and numbers are drawn from pools where Python's `re` and
ECMA-262, and exact and binary arithmetic, agree, so a disagreement is a
bug and not a dialect difference."""

import json
import random
import sys
from importlib.metadata import version

from jsonschema import Draft202012Validator

rng = random.Random(24)

STRINGS = ["", "a", "ab", "abc", "ba", "x", "12", "123", "2026-12-07", "2026-13-07",
           "10.0.0.1", "300.0.0.1", "5f0c1c9e-7d6a-4d2b-9a5e-1f2e3d4c5b6a", "A"]
NUMBERS = [0, 1, 2, 3, 4, 6, 9, -2, 1.5, 2.5, 4.5, 10, 100]
KEYS = ["a", "b", "x_1", "x_2", "zb"]
PATTERNS = ["^[a-c]+$", "^a", "b$", "^[0-9]{2,3}$", "^x_", "[0-9]", "^(a|b)*$"]
FORMATS = ["date", "ipv4", "uuid"]


def value(depth=0):
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(STRINGS)
    if roll < 0.55:
        return rng.choice(NUMBERS)
    if roll < 0.62:
        return rng.choice([None, True, False])
    if depth >= 2:
        return rng.choice(NUMBERS)
    if roll < 0.8:
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): value(depth + 1) for _ in range(rng.randint(0, 3))}


def leaf():
    kind = rng.randint(0, 13)
    if kind == 0:
        return {"type": rng.choice(["string", "integer", "number", "null", "boolean", "array", "object"])}
    if kind == 1:
        return {"type": rng.sample(["string", "integer", "null", "array"], 2)}
    if kind == 2:
        return {"enum": rng.sample(STRINGS + NUMBERS, 3)}
    if kind == 3:
        return {"const": rng.choice(STRINGS + NUMBERS + [[1, 2], {"a": 1}])}
    if kind == 4:
        return {rng.choice(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]): rng.choice([0, 2, 4.5])}
    if kind == 5:
        return {"multipleOf": rng.choice([1, 2, 3, 0.5, 1.5])}
    if kind == 6:
        return {rng.choice(["minLength", "maxLength"]): rng.randint(0, 3)}
    if kind == 7:
        return {"pattern": rng.choice(PATTERNS)}
    if kind == 8:
        return {"format": rng.choice(FORMATS)}
    if kind == 9:
        return {"uniqueItems": True, rng.choice(["minItems", "maxItems"]): rng.randint(0, 3)}
    if kind == 10:
        return {"items": {"type": rng.choice(["integer", "string"])}}
    if kind == 11:
        return {rng.choice(["minProperties", "maxProperties"]): rng.randint(0, 3)}
    if kind == 12:
        return {"dependentRequired": {"a": ["b"]}}
    return {}


def schema(depth=0):
    s = leaf()
    if depth < 2:
        roll = rng.random()
        if roll < 0.15:
            s["properties"] = {k: schema(depth + 1) for k in rng.sample(KEYS, 2)}
            if rng.random() < 0.5:
                s["additionalProperties"] = rng.choice([False, schema(depth + 1)])
            if rng.random() < 0.5:
                s["required"] = rng.sample(KEYS, 1)
        elif roll < 0.25:
            s["patternProperties"] = {rng.choice(PATTERNS): schema(depth + 1)}
            if rng.random() < 0.5:
                s["additionalProperties"] = False
        elif roll < 0.45:
            s[rng.choice(["allOf", "anyOf", "oneOf"])] = [schema(depth + 1) for _ in range(rng.randint(1, 3))]
        elif roll < 0.52:
            s["not"] = schema(depth + 1)
        elif roll < 0.6:
            s["if"] = schema(depth + 1)
            s[rng.choice(["then", "else"])] = schema(depth + 1)
            if rng.random() < 0.5:
                s["then"] = schema(depth + 1)
    return s


def with_defs(s):
    if rng.random() < 0.25:
        return {"$defs": {"d": s}, "$ref": "#/$defs/d", "properties": {"a": {"$ref": "#/$defs/d"}}}
    return s


def main():
    cases = []
    for _ in range(400):
        s = with_defs(schema())
        validator = Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)
        instances = [value() for _ in range(12)]
        cases.append({"schema": s, "instances": [[i, validator.is_valid(i)] for i in instances]})
    json.dump({"generator": f"jsonschema {version('jsonschema')}, seed 24", "cases": cases},
              sys.stdout, separators=(",", ":"))


main()
