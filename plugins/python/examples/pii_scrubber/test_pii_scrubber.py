"""The Rust example's tests (plugins/examples/pii-scrubber/src/tests.rs), for
the Python twin.

Results are checked as the host makes them: the event with the patch
applied (RFC 7396), compared as JSON values.

Not ported, as they cannot apply to a plugin that gets its events parsed
(``json.loads``) rather than as raw text:

- ``broken_properties_fail_the_event``, ``invalid_text_without_anything_to_scrub_is_unchanged``:
  properties or context that are not JSON (the host sends only checked JSON;
  the SDK parses the whole batch);
- the raw-text halves of ``replacements_are_spliced_into_the_original_text``
  and ``drop_mode_removes_with_one_comma`` (spacing, number spelling and key
  order kept; one comma removed): their values and patches are checked here;
- ``the_quick_look_never_misses_an_address``: a pre-check on the raw text
  the Python plugin does not have (its counterpart, ``may_hold_address``, is
  checked the same way);
- ``repeated_keys_end_as_the_0_1_plugin_left_them``: an object that repeats a
  key reaches Python with its last member only, so an earlier member that
  dropping the last one uncovers is not seen (see
  ``test_repeated_keys_are_patched_by_their_last_member``).

``same_results_as_parsing_and_reserialising`` is ported against a port of
the Rust tests' tree-based ``Reference`` implementation.
"""

import hashlib
import json

import pytest
from pii_find import find_ips, find_pii, may_hold_address, parse_ipv4, parse_ipv6
from pii_scrubber import PiiScrubber, serde_json_text

from sluice_plugin import Failed, InvalidConfig, Patched, unchanged
from sluice_plugin.testing import batch_json, enrich, start


def found(text):
    return [text[start:end] for start, end in find_pii(text)]


def scrubber(config):
    return start(PiiScrubber, config)


def event(properties, context=None):
    return {"name": "Signed Up", "event_id": "e1", "properties": properties, "context": context}


def raw(properties, context=None):
    """``batch.events`` text for one event with these raw members."""
    text = '{"event_id":"e1","name":"x","properties":' + properties
    if context is not None:
        text += ',"context":' + context
    return "[" + text + "}]"


def scrub(plugin, one):
    """The result for one event (a dict, or raw text from ``raw``)."""
    results = enrich(plugin, one if isinstance(one, str) else [one])
    assert len(results) == 1
    return results[0]


def merge(target, patch):
    """RFC 7396 ``MergePatch(target, patch)``."""
    if type(patch) is not dict:
        return patch
    out = dict(target) if type(target) is dict else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def apply(properties, context, result):
    """(properties, context) as the host makes them of ``result``, a patch."""
    assert type(result) is Patched, result
    patch = json.loads(result.patch)
    assert set(patch) <= {"properties", "context"}, result.patch
    if "properties" in patch:
        assert type(patch["properties"]) is dict
        properties = merge(properties, patch["properties"])
    if "context" in patch:
        context = None if patch["context"] is None else merge(context or {}, patch["context"])
    return properties, context


def changed(one, result):
    """``apply`` for an event dict."""
    return apply(one["properties"], one.get("context"), result)


# --- finding addresses ----------------------------------------------------------


def test_finds_emails():
    assert found("a@b.co") == ["a@b.co"]
    assert found("Mail jane.doe+x@mail.example.com, or bob@ex-ample.org.") == [
        "jane.doe+x@mail.example.com",
        "bob@ex-ample.org",
    ]
    assert found("<.x@y.io>") == ["x@y.io"]
    for none in ["@", "a@b", "a@b.c", "a@-b.com", "a@b..com", "@b.com", "a@b.c0m", "x @ y.com"]:
        assert found(none) == [], none


def test_finds_ipv4():
    assert found("10.0.0.1") == ["10.0.0.1"]
    assert found("from 192.168.1.20, then 8.8.8.8.") == ["192.168.1.20", "8.8.8.8"]
    assert found("[203.0.113.9]:443") == ["203.0.113.9"]
    assert found("peer=198.51.100.4:8080") == ["198.51.100.4"]
    for none in ["1.2.3", "v1.2.3.4", "1.2.3.4.5", "256.1.1.1", "0.0.0.0", "127.0.0.1", "1.2.3.4x", "01.2.3.4"]:
        assert found(none) == [], none


def test_finds_ipv6():
    assert found("2001:db8::1") == ["2001:db8::1"]
    assert found("[2001:db8:0:0:1:0:0:1]:443") == ["2001:db8:0:0:1:0:0:1"]
    assert found("peer fe80::1ff:fe23:4567:890a.") == ["fe80::1ff:fe23:4567:890a"]
    assert found("mapped ::ffff:10.1.2.3") == ["::ffff:10.1.2.3"]
    for none in ["::", "::1", "12:30:45", "aa:bb:cc:dd:ee:ff", "Foo::bar", "std::fs", "sha256:abcdef0123"]:
        assert found(none) == [], none


def test_emails_win_over_ips_inside_them():
    assert found("x@10.0.0.1") == ["10.0.0.1"]
    assert found("a@b.io 10.0.0.1") == ["a@b.io", "10.0.0.1"]


def test_addresses_next_to_non_ascii_text():
    # Non-ASCII characters are no letters or digits for these rules (as
    # each of their UTF-8 bytes is not, in Rust): the addresses stand alone.
    assert found("é10.0.0.1é") == ["10.0.0.1"]
    assert found("😀a@b.io😀") == ["a@b.io"]
    assert found("ü2001:db8::5ü") == ["2001:db8::5"]
    assert found("a@bü.io") == []  # the domain stops at `ü`: `b` has no TLD


def test_ip_parsers_follow_rusts():
    assert parse_ipv4("1.2.3.4") == [1, 2, 3, 4]
    for bad in ["1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256", "1..2.3", "1.2.3.0004", "", "1.2.3.4."]:
        assert parse_ipv4(bad) is None, bad
    assert parse_ipv6("::") == [0] * 8
    assert parse_ipv6("1:2:3:4:5:6:7::") == [1, 2, 3, 4, 5, 6, 7, 0]
    assert parse_ipv6("::2:3:4:5:6:7:8") == [0, 2, 3, 4, 5, 6, 7, 8]
    assert parse_ipv6("1:2:3:4:5:6:1.2.3.4") == [1, 2, 3, 4, 5, 6, 0x102, 0x304]
    assert parse_ipv6("::ffff:10.1.2.3") == [0, 0, 0, 0, 0, 0xFFFF, 0x0A01, 0x0203]
    assert parse_ipv6("0000:0:0:0:0:0:0:00ff") == [0] * 7 + [255]
    for bad in [
        "1:2:3:4:5:6:7:8:9",
        "1::2:3:4:5:6:7:8",  # `::` must stand for at least one group
        "1.2.3.4::",
        "::1.2.3.4:5",
        "12345::",
        "1:::2",
        ":1::2",
        "::01.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4",
        "1:2",
    ]:
        assert parse_ipv6(bad) is None, bad
    # Only `::1` is loopback: the IPv4-mapped loopback is personal.
    assert found("::ffff:127.0.0.1") == ["::ffff:127.0.0.1"]
    assert found("0:0:0:0:0:0:0:1 and 0::0") == []


def test_may_hold_address_never_misses_one():
    # The Rust test's generator (`the_quick_look_never_misses_an_address`).
    alphabet = ["0", "1", "25", "9", "a", "f", "g", ":", ".", " ", "@", "x", "::"]
    random = Random(11)
    for _ in range(20_000):
        text = "".join(random.pick(alphabet) for _ in range(random.below(14)))
        if find_pii(text):
            assert may_hold_address(text), text
        if find_ips(text):
            assert text.count(".") >= 3 or text.count(":") >= 2, text


# --- scrubbing --------------------------------------------------------------------


def test_hash_mode_replaces_addresses_recursively_and_keeps_other_text():
    plugin = scrubber({"salt": "s3"})
    one = event(
        {
            "email": "jane@example.com",
            "note": "call 10.0.0.7 now",
            "nested": {"list": ["ok", "2001:db8::5", 3]},
            "plan": "pro",
        }
    )
    result = scrub(plugin, one)
    assert result.patch.startswith('{"properties":{'), result
    props, context = changed(one, result)
    assert props["email"] == plugin.hash("jane@example.com")
    assert props["note"] == f"call {plugin.hash('10.0.0.7')} now"
    assert props["nested"] == {"list": ["ok", plugin.hash("2001:db8::5"), 3]}
    assert props["plan"] == "pro"
    assert context is None


def test_hash_is_salted_sha256_hex():
    plugin = scrubber({"salt": "pepper"})
    # sha256("pepper" + "a@b.io")
    expected = "sha256:cf8d5f081801f7543fbd1436cca03cecb4b4d9bc1f425ac232ae2e56cc76a6ff"
    assert plugin.hash("a@b.io") == expected
    assert expected == "sha256:" + hashlib.sha256(b"peppera@b.io").hexdigest()
    assert len(plugin.hash("a@b.io")) == 7 + 64
    assert plugin.hash("a@b.io") != scrubber({"salt": "salt"}).hash("a@b.io")
    # UTF-8, salt and value.
    assert scrubber({"salt": "é"}).hash("ü") == "sha256:" + hashlib.sha256("éü".encode()).hexdigest()


def test_drop_mode_removes_members_and_elements():
    plugin = scrubber({"mode": "drop"})
    one = event(
        {"email": "jane@example.com", "tags": ["a", "from 10.0.0.7"], "deep": {"ip": "10.1.1.1", "k": 1}},
        {"ip": "203.0.113.1", "user_agent": "UA"},
    )
    result = scrub(plugin, one)
    # The nested object is patched (a merge), not replaced.
    assert '"deep":{"ip":null}' in result.patch, result
    assert changed(one, result) == ({"tags": ["a"], "deep": {"k": 1}}, {"user_agent": "UA"})


def test_context_ip_and_extra_fields_are_scrubbed_whole():
    plugin = scrubber({"salt": "s", "fields": ["phone", "address"]})
    one = event(
        {"phone": "+1 555 0100", "profile": {"address": {"city": "Oslo"}}, "n": 1},
        {"ip": "10.9.8.7", "locale": "en"},
    )
    props, context = changed(one, scrub(plugin, one))
    assert props["phone"] == plugin.hash("+1 555 0100")
    assert props["profile"]["address"] == plugin.hash('{"city":"Oslo"}')
    assert context["ip"] == plugin.hash("10.9.8.7")
    assert context["locale"] == "en"


def test_nothing_found_is_unchanged_and_scrubbing_is_idempotent():
    plugin = scrubber({"salt": "s", "fields": ["phone"]})
    clean = event({"plan": "pro", "version": "1.2.3", "at": "12:30:45"}, {"locale": "en"})
    assert scrub(plugin, clean) == unchanged()

    dirty = event({"email": "a@b.io", "phone": "123"}, {"ip": "10.0.0.1"})
    properties, context = changed(dirty, scrub(plugin, dirty))
    assert scrub(plugin, event(properties, context)) == unchanged()


def test_escaped_text_is_still_found():
    plugin = scrubber({"salt": "s"})
    properties, _ = apply({"e": "a@b.io"}, None, scrub(plugin, raw(r'{"e": "a\u0040b.io"}')))
    assert properties["e"] == plugin.hash("a@b.io")


def test_enrich_returns_one_result_per_event():
    plugin = scrubber({"salt": "s"})
    results = enrich(plugin, [event({"a": 1}), event({"e": "x@y.io"})])
    assert len(results) == 2
    assert results[0] == unchanged()
    assert type(results[1]) is Patched
    assert enrich(plugin, []) == []


def test_repeated_keys_are_patched_by_their_last_member():
    plugin = scrubber({"mode": "drop"})
    for properties, patch in [
        # The later member hides the scrubbed one: nothing to patch.
        ('{"a": "x@y.io", "a": 1}', None),
        ('{"a": "x@y.io", "a": "x@y.io"}', '{"properties":{"a":null}}'),
        (
            '{"d": {"a": {"k": 1, "ip": "10.0.0.1"}, "a": {"ip": "10.0.0.2"}}}',
            '{"properties":{"d":{"a":{"ip":null}}}}',
        ),
        (r'{"ph\u006fne": 1, "a": "x@y.io", "phone": 2}', '{"properties":{"a":null}}'),
        # The one difference: in the Rust plugin, dropping the last member
        # uncovers the earlier one (patch `{"a":1}`); Python never sees it.
        ('{"a": 1, "a": "x@y.io"}', '{"properties":{"a":null}}'),
    ]:
        result = scrub(plugin, raw(properties))
        if patch is None:
            assert result == unchanged(), properties
        else:
            assert result == Patched(patch), (properties, result)
    # Hashing never removes: the last member's scrubbed value is the Rust
    # plugin's too.
    hashing = scrubber({"salt": "s"})
    result = scrub(hashing, raw('{"a": 1, "a": "x@y.io"}'))
    assert result == Patched('{"properties":{"a":"%s"}}' % hashing.hash("x@y.io"))


def test_only_the_changed_members_are_patched():
    # `replacements_are_spliced_into_the_original_text`, as values: only the
    # changed members (the same patch text as the Rust plugin's here).
    plugin = scrubber({"salt": "s", "fields": ["phone"]})
    events = raw(
        '{ "z": 1.50,\n  "note": "mail a@b.io or 10.0.0.7", "phone": [1, 2], "a": {} }',
        '{"locale": "en", "ip": "10.9.8.7", "x": 1e3}',
    )
    assert scrub(plugin, events) == Patched(
        '{"properties":{"note":"mail %s or %s","phone":"%s"},"context":{"ip":"%s"}}'
        % (plugin.hash("a@b.io"), plugin.hash("10.0.0.7"), plugin.hash("[1,2]"), plugin.hash("10.9.8.7"))
    )


def test_drop_mode_removes_members_and_array_elements_as_values():
    # `drop_mode_removes_with_one_comma`, as values (the spliced spacing aside).
    plugin = scrubber({"mode": "drop"})
    for before, after, patch in [
        ({"a": "x@y.io"}, {}, {"a": None}),
        ({"a": "x@y.io", "b": 1}, {"b": 1}, {"a": None}),
        ({"b": 1, "a": "x@y.io"}, {"b": 1}, {"a": None}),
        (
            {"a": "x@y.io", "c": "10.0.0.1", "b": 1, "d": "x@y.io", "e": 2, "f": "x@y.io"},
            {"b": 1, "e": 2},
            {"a": None, "c": None, "d": None, "f": None},
        ),
        ({"l": ["x@y.io", "10.0.0.1"]}, {"l": []}, {"l": []}),
        ({"l": [1, "x@y.io", 2, "x@y.io"]}, {"l": [1, 2]}, {"l": [1, 2]}),
        ({"l": [{"a": "x@y.io", "b": 1}]}, {"l": [{"b": 1}]}, {"l": [{"b": 1}]}),
    ]:
        result = scrub(plugin, event(before))
        assert json.loads(result.patch) == {"properties": patch}, before
        assert changed(event(before), result)[0] == after, before


def test_nested_objects_are_patched_not_replaced():
    # An object in a merge patch is merged: a nested object's patch names
    # only its changed members, so `null` members and others stay.
    plugin = scrubber({"salt": "s"})
    one = event({"user": {"email": "a@b.io", "note": None, "n": 1, "deep": {"x": "10.0.0.1", "y": None}}})
    result = scrub(plugin, one)
    assert json.loads(result.patch) == {
        "properties": {"user": {"email": plugin.hash("a@b.io"), "deep": {"x": plugin.hash("10.0.0.1")}}}
    }
    assert changed(one, result)[0] == {
        "user": {
            "email": plugin.hash("a@b.io"),
            "note": None,
            "n": 1,
            "deep": {"x": plugin.hash("10.0.0.1"), "y": None},
        }
    }
    # In an array, an object is part of the array's new value (arrays are replaced).
    one = event({"l": [{"e": "a@b.io", "z": None}]})
    assert json.loads(scrub(plugin, one).patch) == {"properties": {"l": [{"e": plugin.hash("a@b.io"), "z": None}]}}


def test_whole_values_and_what_is_kept():
    plugin = scrubber({"salt": "s", "fields": ["phone"]})
    one = event(
        {
            "phone": None,  # kept
            "a": {"phone": "sha256:already"},  # kept
            "b": [{"phone": 5}, {"phone": True}, {"phone": "x"}],  # at any depth, in arrays too
            "c": "127.0.0.1 0.0.0.0 :: ::1",  # not personal
            "k@b.io": "keys are not scanned",
            "d": "sha256:abc a@b.io",  # a string is searched whatever its start
        },
        {"ip": None, "nested": {"ip": "10.0.0.1"}},
    )
    props, context = changed(one, scrub(plugin, one))
    assert props == {
        "phone": None,
        "a": {"phone": "sha256:already"},
        "b": [{"phone": plugin.hash("5")}, {"phone": plugin.hash("true")}, {"phone": plugin.hash("x")}],
        "c": "127.0.0.1 0.0.0.0 :: ::1",
        "k@b.io": "keys are not scanned",
        "d": "sha256:abc " + plugin.hash("a@b.io"),
    }
    assert context == {"ip": None, "nested": {"ip": "10.0.0.1"}}
    # context.ip is hashed whole, whatever it holds (even a loopback address).
    for ip, hashed in [
        ("127.0.0.1", "127.0.0.1"),
        ("not an ip", "not an ip"),
        ([1, {"b": 2, "a": 1}], '[1,{"a":1,"b":2}]'),
    ]:
        result = scrub(plugin, event({}, {"ip": ip}))
        assert result == Patched('{"context":{"ip":"%s"}}' % plugin.hash(hashed))
    assert scrub(plugin, event({}, {"ip": "sha256:x"})) == unchanged()
    dropping = scrubber({"mode": "drop"})
    assert scrub(dropping, event({}, {"ip": [1]})) == Patched('{"context":{"ip":null}}')
    assert scrub(dropping, event({}, {"ip": "sha256:x"})) == unchanged()


def test_whole_numbers_are_hashed_as_serde_json_writes_them():
    # serde_json reads the number's text (inexactly, without its
    # `float_roundtrip` feature) and writes it back (zmij): these are the
    # Rust plugin's texts (checked against its component).
    for text, written in [
        ("0.30000000000000004", "0.30000000000000004"),
        ("1e-5", "0.00001"),
        ("1e-6", "1e-6"),
        ("1E5", "100000.0"),
        ("-2.5e-7", "-2.5e-7"),
        ("1e16", "1e+16"),
        ("1e15", "1000000000000000.0"),
        ("1.50", "1.5"),
        ("-0.0", "-0.0"),
        ("7.718835079162389e-05", "0.00007718835079162389"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("18446744073709551615", "18446744073709551615"),
        ("18446744073709551616", "1.8446744073709552e+19"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("-9223372036854775809", "-9.223372036854776e+18"),
        ("100000000000000000000000000000", "1e+29"),
        # serde_json's inexact reading:
        ("9.493954730932435e+31", "9.493954730932437e+31"),
        ("1.6448842406653133e-16", "1.644884240665313e-16"),
        ("906593649.8975611", "906593649.8975612"),
        (
            '{"b": [1, 2.0, null, true], "a": "x\\n\\u0001é\\"", "é": {}, "Z": []}',
            '{"Z":[],"a":"x\\n\\u0001é\\"","b":[1,2.0,null,true],"é":{}}',
        ),
    ]:
        assert serde_json_text(json.loads(text)) == written, text
    plugin = scrubber({"salt": "s", "fields": ["f"]})
    assert scrub(plugin, raw('{"f": 906593649.8975611}')) == Patched(
        '{"properties":{"f":"%s"}}' % plugin.hash("906593649.8975612")
    )


def test_numbers_out_of_range():
    # Text like 1e400 (read by `json.loads` as infinity): hashed whole, the
    # Rust plugin cannot read it and fails the event (properties) or leaves
    # the context; elsewhere it is kept, as its text.
    plugin = scrubber({"salt": "s", "fields": ["f"]})
    result = scrub(plugin, raw('{"f": 1e400}'))
    assert type(result) is Failed and result.message.startswith("properties are not JSON: invalid value")
    assert scrub(plugin, raw("{}", '{"ip": 1e400}')) == unchanged()
    result = scrub(plugin, raw('{"l": [1e400, -1e400, "Infinity", "a@b.io"]}'))
    assert result == Patched('{"properties":{"l":[1e400,-1e400,"Infinity","%s"]}}' % plugin.hash("a@b.io"))


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"mode": "hash", "salt": ""},
        {"mode": "shred", "salt": "s"},
        {"salt": "s", "fields": [""]},
        {"salt": "s", "feilds": []},
        {"mode": None},
        {"salt": None},
        {"mode": "drop", "fields": "phone"},
        {"mode": "drop", "fields": [1]},
    ],
)
def test_config_validation(config):
    with pytest.raises(InvalidConfig):
        scrubber(config)


def test_valid_configs():
    assert scrubber({"mode": "drop"}).drop
    assert not scrubber({"salt": "s"}).drop
    # serde_json also reads an enum as an object of one member (unit: null).
    assert scrubber({"mode": {"drop": None}}).drop


def test_invalid_config_messages():
    # serde's messages (without the Rust plugin's " at line 1 column N").
    for config, message in [
        ({}, "`salt` is required in hash mode: unsalted hashes of emails and IPs are easy to reverse"),
        ({"mode": "drop", "fields": ["a", ""]}, "`fields` must not contain empty names"),
        ({"mode": "shred", "salt": "s"}, "unknown variant `shred`, expected `hash` or `drop`"),
        ({"salt": "s", "feilds": []}, "unknown field `feilds`, expected one of `mode`, `salt`, `fields`"),
        ({"mode": None}, "expected value"),
        ({"mode": {"drop": 1}}, "invalid type: integer `1`, expected unit"),
        ({"salt": 5}, "invalid type: integer `5`, expected a string"),
        ({"fields": "a", "salt": "s"}, 'invalid type: string "a", expected a sequence'),
        ({"fields": [2.5e-9], "salt": "s"}, "invalid type: floating point `2.5e-9`, expected a string"),
    ]:
        with pytest.raises(InvalidConfig) as error:
            scrubber(config)
        assert str(error.value) == message


def test_reads_only_properties_and_context():
    assert PiiScrubber.fields == {"properties", "context"}
    sent = batch_json([{"name": "x", "user_id": "u1", "properties": {}}], PiiScrubber.fields)
    assert json.loads(sent) == [{"event_id": "e0", "name": "x", "properties": {}}]


# --- randomized comparison with the Rust tests' `Reference` ---------------------


class Random:
    """The Rust tests' generator (same sequence for the same seed)."""

    def __init__(self, state, repeats=False):
        self.state = state
        self.repeats = repeats

    def below(self, n):
        self.state = (self.state * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) % 2**64
        return (self.state >> 33) % n

    def pick(self, items):
        return items[self.below(len(items))]

    def space(self):
        return self.pick(["", "", " ", "\n  "])

    SCALARS = [
        r'"a@b.io"',
        r'"x \u0040y.io, z@w.org"',
        r'"call 10.0.0.7 now"',
        r'"2001:db8::5"',
        r'"sha256:abc"',
        r'"plain text"',
        r'"q\"uote 10.0.0.9 \\ end"',
        r'"tab\t8.8.8.8\n"',
        r'"\u00e9 10.0.0.1 \ud83d\ude00"',
        r'"1.2.3.4.5"',
        r'"::ffff:10.1.2.3"',
        r'"v1.2.3 12:30:45"',
        r'"https://shop.example.com/p/x?y=1"',
        r'"127.0.0.1"',
        r'""',
        "1.50",
        "-0",
        "1e3",
        "12345678901234567890",
        "true",
        "null",
    ]
    KEYS = [r'"email"', r'"phone"', r'"ph\u006fne"', r'"address"', r'"ip"', r'"note"', r'"tags"', r'"n"']

    def value(self, depth):
        """A JSON value as raw text (escapes and spacing included)."""
        kind = self.below(1 if depth == 0 else 4)
        if kind in (0, 1):
            return self.pick(self.SCALARS)
        if kind == 2:
            items = []
            for _ in range(self.below(4)):
                before, value, after = self.space(), self.value(depth - 1), self.space()
                items.append(before + value + after)
            return "[" + ",".join(items) + "]"
        keys, members = [], []
        for _ in range(self.below(5)):
            key = self.pick(self.KEYS)
            if (not self.repeats and key in keys) or ("ph" in key and any("ph" in k for k in keys)):
                continue
            keys.append(key)
            value = self.value(depth - 1)
            members.append(f"{self.space()}{key}{self.space()}:{self.space()}{value}{self.space()}")
        return "{" + ",".join(members) + "}"

    def event(self):
        """A random event's raw properties (an object) and context."""
        properties = self.value(4)
        if not properties.startswith("{"):
            properties = '{"v": ' + properties + "}"
        kind = self.below(5)
        if kind == 0:
            context = None
        elif kind == 1:
            context = '{"locale": "en", "ip": ' + self.value(1) + "}"
        elif kind == 2:
            context = '{ "ip" : ' + self.value(0) + ' , "n": [1]}'
        elif kind == 3 and self.repeats:
            context = '{"ip": ' + self.value(0) + ', "locale": "en", "i\\u0070": ' + self.value(0) + "}"
        else:
            context = '{"locale": "en"}'
        return properties, context


class Reference:
    """A port of the Rust tests' ``Reference``: parse, scrub the tree in
    place, report whether anything changed."""

    def __init__(self, plugin):
        self.plugin = plugin

    def scrub_event(self, properties, context):
        changed = False
        if self.scrub_value(properties) != "kept":
            changed = True
        if type(context) is dict and "ip" in context:
            outcome = self.scrub_whole(context, "ip")
            if outcome == "remove":
                del context["ip"]
            changed = changed or outcome != "kept"
        return changed

    def scrub_value(self, value):
        if type(value) is list:
            outcome, kept = "kept", []
            for item in value:
                if type(item) is str:
                    new = self.scrub_string(item)
                    if new is None:
                        outcome = "changed"
                        continue
                    if new != item:
                        outcome = "changed"
                    kept.append(new)
                else:
                    if self.scrub_value(item) != "kept":
                        outcome = "changed"
                    kept.append(item)
            value[:] = kept
            return outcome
        if type(value) is dict:
            outcome = "kept"
            for key in list(value):
                if key in self.plugin.whole:
                    member = self.scrub_whole(value, key)
                elif type(value[key]) is str:
                    new = self.scrub_string(value[key])
                    member = "remove" if new is None else ("kept" if new == value[key] else "changed")
                    if new is not None:
                        value[key] = new
                else:
                    member = self.scrub_value(value[key])
                if member == "remove":
                    del value[key]
                if member != "kept":
                    outcome = "changed"
            return outcome
        return "kept"

    def scrub_string(self, text):
        """The new string, or None to remove it."""
        spans = find_pii(text)
        if not spans:
            return text
        if self.plugin.drop:
            return None
        out, last = [], 0
        for start, end in spans:
            out += [text[last:start], self.plugin.hash(text[start:end])]
            last = end
        return "".join(out) + text[last:]

    def scrub_whole(self, parent, key):
        value = parent[key]
        if value is None or (type(value) is str and value.startswith("sha256:")):
            return "kept"
        if self.plugin.drop:
            return "remove"
        parent[key] = self.plugin.hash(value if type(value) is str else serde_json_text(value))
        return "changed"


PLUGINS = [
    {"salt": "s"},
    {"salt": "s", "fields": ["phone", "address"]},
    {"mode": "drop"},
    {"mode": "drop", "fields": ["phone", "address", "tags"]},
]


def test_same_results_as_parsing_and_reserialising():
    plugins = [scrubber(config) for config in PLUGINS]
    random = Random(7)
    changes = {True: 0, False: 0}
    for _ in range(4000):
        properties, context = random.event()
        for plugin in plugins:
            result = scrub(plugin, raw(properties, context))
            theirs = json.loads(properties), None if context is None else json.loads(context)
            if Reference(plugin).scrub_event(*theirs):
                assert type(result) is Patched, (properties, context)
                ours = apply(json.loads(properties), None if context is None else json.loads(context), result)
                assert ours == theirs, (properties, context, result)
                # Scrubbing again changes nothing.
                assert scrub(plugin, event(*ours)) == unchanged(), ours
                changes[True] += 1
            else:
                assert result == unchanged(), (properties, context, result)
                changes[False] += 1
    assert changes[True] > 1000 and changes[False] > 1000, changes
