#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target under fuzz/corpus/<target>/
from the repository's own test data (run from anywhere; rerun to refresh):

- native_batch: the native request bodies of tests/cases/bad-input, plus a few
  events at the contract's edges;
- json_text: the `properties`/`context` texts of those bodies, each behind a
  depth byte, plus the edges json_text's unit tests name;
- schema_parse: the import fixtures of gateway/tests/schemas-import, and the
  schemas of the JSON Schema test suite (schemas/tests/suite) and of the
  differential corpus (schemas/tests/differential);
- schema_validate: schema NUL instance, from the suite and the differential
  corpus;
- schema_compat: old NUL new NUL instance, from consecutive import fixtures
  and pairs of suite schemas.

File names are content hashes, as libFuzzer names its own finds. The corpus
libFuzzer grows while running stays in $SLUICE_CACHE (scripts/fuzz); only
these seeds are committed.
"""
import glob
import hashlib
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX_BYTES = 16 * 1024


def tracked(pattern):
    files = subprocess.run(
        ["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(os.path.join(ROOT, f) for f in files)


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_BYTES:
        return
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def request_bodies():
    """Every request body of the committed bad-input cases (any shape)."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("body"), str):
                out.append(node["body"].encode())
            if isinstance(node.get("body_hex"), str):
                out.append(bytes.fromhex(node["body_hex"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in tracked("tests/cases/bad-input/*/case.json"):
        with open(path) as f:
            walk(json.load(f))
    return out


EDGE_EVENTS = [
    {"event_id": "0190d6a8-0000-7000-8000-000000000001", "event": "Signed Up", "user_id": "u-1",
     "timestamp": 1799999999000, "schema_version": 3,
     "properties": {"plan": "pro", "seats": 3, "tags": ["a", "b"], "nested": {"x": [1.5, None, True]}},
     "context": {"ip": "203.0.113.9"}},
    {"event": "Opened", "user_id": "u-2", "timestamp": "2027-01-15T07:59:59.123+02:00"},
    {"event": "say \"hi\" \u00e9", "user_id": "u\u00e9", "properties": {"emoji": "\U0001F680"}},
]
EDGE_TEXTS = [
    '{"event":"e","user_id":"u","properties":{"s":"\\ud83d\\ude80"}}',
    '{"event":"e","user_id":"u","properties":{"s":"\\udc00"}}',
    '{"event":"e","user_id":"u","properties":{"n":1e400}}',
    '{"event":"e","user_id":"u","properties":{"n":1.7976931348623157e308}}',
    '{"event":"e","user_id":"u","properties":{"d":' + "[" * 63 + "]" * 63 + "}}",
    '{"event":"   ","user_id":"u"}',
    '{"event":"e","user_id":"u\\u0000"}',
    '{"event_id":"00000000-0000-0000-0000-000000000000","event":"e","user_id":"u"}',
]


def native_batch(bodies):
    for body in bodies:
        if body.lstrip().startswith(b'{"events"') or body.lstrip().startswith(b'[{"event"'):
            write("native_batch", body)
    write("native_batch", compact({"events": EDGE_EVENTS}))
    write("native_batch", '{"events":[' + ",".join(EDGE_TEXTS) + "]}")


def json_text(bodies):
    depth_byte = bytes([63])  # limit 64, the default
    texts = set()
    for body in bodies + ['{"events":[' + ",".join(EDGE_TEXTS) + "]}", compact({"events": EDGE_EVENTS})]:
        try:
            batch = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            continue
        events = batch.get("events") if isinstance(batch, dict) else batch
        for event in events if isinstance(events, list) else []:
            for field in ("properties", "context"):
                if isinstance(event, dict) and isinstance(event.get(field), dict):
                    # ASCII escapes keep lone surrogates as the client wrote them.
                    texts.add(json.dumps(event[field], separators=(",", ":")))
    texts.update([
        '{"a": [1, -2.5, 3e10, 1E-300, 0], "b": {"c": null}, "d": true}',
        '{"emoji": "\\ud83d\\ude80", "quote": "\\"\\\\", "u": "\\u00e9"}',
        '{"big": 1.7976931348623157e308, "small": 5e-324, "neg": -1e308}',
        '{"s": "not a number: 1e400", "k": "[[[[[[[["}',
        '{"x": [1, 1e400]}',
        '{"x": ' + "9" * 400 + "}",
        '{"pad": "' + "y" * 97 + '", "x": 1' + "0" * 250 + "e90}",
        '{"a": "\\ud800\\ud800"}',
        '{"\\udfff": 1}',
        '{"a":' + "[" * 70 + "]" * 70 + "}",
    ])
    for text in texts:
        write("json_text", depth_byte + text.encode())


def suite_groups():
    for path in sorted(glob.glob(os.path.join(ROOT, "schemas/tests/suite/draft2020-12/*.json"))):
        with open(path) as f:
            yield from json.load(f)


def differential_cases(limit):
    with open(os.path.join(ROOT, "schemas/tests/differential/corpus.json")) as f:
        return json.load(f)["cases"][:limit]


def schemas():
    imports = []
    for path in tracked("gateway/tests/schemas-import/*.json"):
        with open(path) as f:
            text = f.read()
        imports.append(text)
        write("schema_parse", text)
    groups = list(suite_groups())
    for group in groups:
        schema = compact(group["schema"])
        write("schema_parse", schema)
        for test in group["tests"][:4]:
            write("schema_validate", schema + "\0" + compact(test["data"]))
    for case in differential_cases(40):
        schema = compact(case["schema"])
        write("schema_parse", schema)
        for instance, _valid in case["instances"][:3]:
            write("schema_validate", schema + "\0" + compact(instance))
    # Consecutive versions of the same event, and neighbouring suite schemas.
    for old, new in zip(imports, imports[1:]):
        write("schema_compat", old + "\0" + new + "\0{}")
    for a, b in zip(groups, groups[1:]):
        instance = compact(a["tests"][0]["data"]) if a["tests"] else "{}"
        write("schema_compat", compact(a["schema"]) + "\0" + compact(b["schema"]) + "\0" + instance)
    write("schema_compat", '{"type":"object","properties":{"a":{"type":"integer"}}}\0'
          '{"type":"object","properties":{"a":{"type":"number"}},"required":["a"]}\0{"a":1}')


def main():
    bodies = request_bodies()
    native_batch(bodies)
    json_text(bodies)
    schemas()
    for target in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, target))
        size = sum(os.path.getsize(os.path.join(OUT, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
