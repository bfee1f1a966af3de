"""The Rust example's tests (plugins/examples/bot-filter), for the Python twin.

Not ported: the Rust `properties_are_checked_when_the_context_has_no_match`
case whose properties are not JSON (`{"$user_agent": "Googlebot"`): the host
sends only checked JSON, and the SDK parses the whole batch. The Rust tests
start one plugin with an empty configuration text (`""`, which its
`parse_config` reads as `{}`); the host sends `{}` when there is none, and
that is what these tests send.
"""

import json

import pytest
from bot_filter import DEFAULT_PATTERNS, BotFilter

from sluice_plugin import InvalidConfig, accept, reject
from sluice_plugin.testing import batch_json, run_validator, start, validate

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def with_context_ua(ua, **extra):
    return {"name": "Page Viewed", "context": {"user_agent": ua, **extra}}


def with_property_ua(ua):
    return {"name": "Page Viewed", "properties": {"$user_agent": ua}}


def check(plugin, event):
    """The verdict for one event (sent as the host sends it)."""
    (verdict,) = validate(plugin, [event])
    return verdict


def accepted(plugin, event):
    return check(plugin, event) == accept()


def test_defaults_reject_common_bots_and_accept_browsers():
    verdicts = run_validator(
        BotFilter,
        {},
        [
            with_context_ua(GOOGLEBOT),
            with_context_ua(HEADLESS),
            with_property_ua("Baiduspider/2.0"),
            with_context_ua(FIREFOX),
            {"name": "No Context"},
        ],
    )
    assert [getattr(v, "code", None) for v in verdicts] == ["bot_traffic", "bot_traffic", "bot_traffic", None, None]
    assert verdicts[1] == reject("bot_traffic", "the user agent matches the bot pattern `HeadlessChrome`")


def test_only_the_user_agent_members_are_checked():
    event = {
        "name": "Robot Built",
        "properties": {"kind": "bot"},
        "context": {"page": "/spider-man", "user_agent": FIREFOX},
    }
    assert run_validator(BotFilter, {}, [event]) == [accept()]


def test_case_sensitivity_is_configurable():
    sensitive = start(BotFilter, {"user_agent_patterns": ["HeadlessChrome"], "case_insensitive": False})
    assert not accepted(sensitive, with_context_ua(HEADLESS))
    assert accepted(sensitive, with_context_ua("headlesschrome/1"))

    insensitive = start(BotFilter, {"user_agent_patterns": ["HEADLESSCHROME"]})
    assert not accepted(insensitive, with_context_ua("headlesschrome/1"))


def test_escaped_user_agents_are_parsed():
    plugin = start(BotFilter, {})
    events = r'[{"event_id":"1","name":"x","context":{"user_agent": "Google\u0062ot/2.1"}}]'
    assert [v.code for v in validate(plugin, events)] == ["bot_traffic"]


def test_the_first_configured_pattern_is_named():
    plugin = start(BotFilter, {"user_agent_patterns": ["Spider", "crawl", "bot"]})
    assert check(plugin, with_context_ua("a bot, a Crawler and a spider")) == reject(
        "bot_traffic", "the user agent matches the bot pattern `Spider`"
    )
    assert check(plugin, with_context_ua("BOT then CRAWLER")) == reject(
        "bot_traffic", "the user agent matches the bot pattern `crawl`"
    )
    # A match ending at the last character, and a needle cut off by the end.
    assert not accepted(plugin, with_context_ua("xbot"))
    assert accepted(plugin, with_context_ua("xbo"))


def test_properties_are_checked_when_the_context_has_no_match():
    plugin = start(BotFilter, {})
    event = {"name": "x", "properties": {"$user_agent": GOOGLEBOT}, "context": {"user_agent": FIREFOX}}
    assert not accepted(plugin, event)
    # Not in nested objects, and the last of repeated keys counts.
    cases = [
        ('{"nested": {"$user_agent": "Googlebot"}}', True),
        ('{"$user_agent": "Googlebot", "$user_agent": "Firefox"}', True),
        ('{"$user_agent": "Firefox", "$user_agent": "Googlebot"}', False),
        ('{"$user_agent": ["Googlebot"]}', True),
    ]
    for properties, expected in cases:
        events = f'[{{"event_id":"1","name":"x","properties":{properties}}}]'
        assert (validate(plugin, events) == [accept()]) == expected, properties


def test_the_context_user_agent_must_be_a_top_level_string():
    plugin = start(BotFilter, {})
    for context, expected in [
        ('{"nested": {"user_agent": "Googlebot"}}', True),
        ('{"user_agent": ["Googlebot"]}', True),
        ('{"user_agent": null}', True),
        ('{"user_agent": "Googlebot", "user_agent": "Firefox"}', True),
        ('{"user_agent": "Firefox", "user_agent": "Googlebot"}', False),
    ]:
        events = f'[{{"event_id":"1","name":"x","properties":{{}},"context":{context}}}]'
        assert (validate(plugin, events) == [accept()]) == expected, context


def test_unicode_user_agents_are_lower_cased_fully():
    plugin = start(BotFilter, {"user_agent_patterns": ["kit", "ünï"]})
    # U+212A KELVIN SIGN lower-cases to an ASCII `k`.
    assert not accepted(plugin, with_context_ua("Web\u212aIT"))
    assert not accepted(plugin, with_context_ua("ÜNÏcode"))
    assert accepted(plugin, with_context_ua("UNIcode"))
    sensitive = start(BotFilter, {"user_agent_patterns": ["kit"], "case_insensitive": False})
    assert accepted(sensitive, with_context_ua("Web\u212ait"))
    assert not accepted(sensitive, with_context_ua("ÜNÏ kit"))


def test_more_than_64_patterns():
    patterns = [f"pattern{i:02}x" for i in range(70)] + ["Bot"]
    plugin = start(BotFilter, {"user_agent_patterns": patterns})
    assert check(plugin, with_context_ua("PATTERN66X and pattern65x")) == reject(
        "bot_traffic", "the user agent matches the bot pattern `pattern65x`"
    )
    assert check(plugin, with_context_ua("a bot")) == reject(
        "bot_traffic", "the user agent matches the bot pattern `Bot`"
    )
    assert accepted(plugin, with_context_ua(FIREFOX))


def test_matching_agrees_with_lower_casing_and_contains():
    # The Rust test's generator (the same sequence of configs and user agents).
    alphabet = "abAB/o0 "
    state = 99

    def random(n):
        nonlocal state
        state = (state * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) % 2**64
        return (state >> 33) % n

    def text(longest):
        return "".join(alphabet[random(len(alphabet))] for _ in range(random(longest + 1)))

    for round_ in range(3000):
        count = 1 + (round_ % 4) * 30
        patterns = [alphabet[round_ % len(alphabet)] + text(2) for _ in range(count)]
        case_insensitive = round_ % 2 == 0
        haystack = text(40)
        plugin = start(BotFilter, {"user_agent_patterns": patterns, "case_insensitive": case_insensitive})
        folded = haystack.lower() if case_insensitive else haystack
        expected = next((p for p in patterns if (p.lower() if case_insensitive else p) in folded), None)
        assert plugin.matching(haystack) == expected, (haystack, patterns, case_insensitive)
        verdict = check(plugin, with_context_ua(haystack))
        if expected is None:
            assert verdict == accept()
        else:
            assert verdict == reject("bot_traffic", f"the user agent matches the bot pattern `{expected}`")


def test_empty_pattern_list_accepts_everything():
    plugin = start(BotFilter, {"user_agent_patterns": []})
    assert accepted(plugin, with_context_ua(GOOGLEBOT))
    assert accepted(plugin, with_property_ua(GOOGLEBOT))


@pytest.mark.parametrize(
    "config",
    [
        '{"user_agent_patterns": [""]}',
        '{"user_agent_patterns": "bot"}',
        '{"case_insensitive": "yes"}',
        '{"patterns": ["bot"]}',
        '{"user_agent_patterns": null}',
        '{"user_agent_patterns": ["bot", 1]}',
        '{"case_insensitive": null}',
    ],
)
def test_bad_configs_are_invalid_config(config):
    with pytest.raises(InvalidConfig):
        start(BotFilter, config)


def test_invalid_config_messages():
    # serde's messages (without the Rust plugin's " at line 1 column N").
    for config, message in [
        (
            {"user_agent_patterns": [""]},
            "`user_agent_patterns` must not contain an empty pattern (it would match everything)",
        ),
        ({"patterns": ["bot"]}, "unknown field `patterns`, expected `user_agent_patterns` or `case_insensitive`"),
        ({"user_agent_patterns": "bot"}, 'invalid type: string "bot", expected a sequence'),
        ({"user_agent_patterns": ["bot", 7]}, "invalid type: integer `7`, expected a string"),
        ({"user_agent_patterns": [2.5]}, "invalid type: floating point `2.5`, expected a string"),
        ({"user_agent_patterns": [1e20]}, "invalid type: floating point `1e+20`, expected a string"),
        ({"case_insensitive": "yes"}, 'invalid type: string "yes", expected a boolean'),
        ({"case_insensitive": None}, "invalid type: null, expected a boolean"),
        ({"case_insensitive": {}}, "invalid type: map, expected a boolean"),
        # The first problem, in the order of the members.
        ({"case_insensitive": 1, "x": 1}, "invalid type: integer `1`, expected a boolean"),
    ]:
        with pytest.raises(InvalidConfig) as error:
            start(BotFilter, config)
        assert str(error.value) == message


def test_defaults():
    plugin = start(BotFilter, {})
    assert [pattern for _, pattern in plugin.needles] == list(DEFAULT_PATTERNS)
    assert plugin.case_insensitive
    for pattern in DEFAULT_PATTERNS:
        assert not accepted(plugin, with_context_ua(f"x {pattern.upper()} y"))
    assert accepted(start(BotFilter, {"case_insensitive": False}), with_context_ua("GOOGLEBOT"))


def test_one_verdict_per_event():
    assert run_validator(BotFilter, {}, []) == []
    assert len(run_validator(BotFilter, {}, [with_context_ua(GOOGLEBOT), {"name": "x"}] * 3)) == 6


def test_reads_only_context_and_properties():
    assert BotFilter.fields == {"context", "properties"}
    sent = batch_json([{"name": "x", "user_id": "u1", "timestamp_ms": 1, "context": {}}], BotFilter.fields)
    assert json.loads(sent) == [{"event_id": "e0", "name": "x", "context": {}}]
