"""The Rust example's tests (plugins/examples/required-properties), for the Python twin."""

import json

import pytest
from required_properties import RequiredProperties

from sluice_plugin import InvalidConfig, accept, reject
from sluice_plugin.testing import batch_json, run_validator, start, validate

CONFIG = {"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}


def check(events):
    return run_validator(RequiredProperties, CONFIG, events)


def test_accepts_events_with_every_required_property():
    assert check(
        [
            {"name": "Signed Up", "properties": {"plan": "pro", "email": "a@b.c", "app_version": "1.2"}},
            {"name": "Page Viewed", "properties": {"app_version": "1.2"}},
        ]
    ) == [accept(), accept()]


def test_rejects_a_missing_property_naming_it():
    assert check([{"name": "Signed Up", "properties": {"plan": "pro", "app_version": "1.2"}}]) == [
        reject("missing_property", "event `Signed Up` is missing required property `email`")
    ]


def test_wildcard_applies_to_every_event_and_null_counts_as_missing():
    assert check(
        [
            {"name": "Page Viewed", "properties": {"app_version": None}},
            {"name": "Signed Up", "properties": {}},
        ]
    ) == [
        reject("missing_property", "event `Page Viewed` is missing required property `app_version`"),
        reject("missing_property", "event `Signed Up` is missing required properties `plan`, `email`, `app_version`"),
    ]


def test_no_requirement_accepts_without_looking():
    plugin = start(RequiredProperties, {"required": {"Other": ["x"]}})
    # Properties that are not even an object: not looked at.
    events = '[{"event_id":"1","name":"Anything","properties":[]}]'
    assert validate(plugin, events) == [accept()]


def test_nothing_required_at_all_accepts():
    assert run_validator(RequiredProperties, {"required": {}}, [{"name": "x"}]) == [accept()]


def test_properties_that_are_not_an_object_are_rejected_when_something_is_required():
    events = '[{"event_id":"1","name":"Page Viewed","properties":[]}]'
    assert [v.code for v in validate(start(RequiredProperties, CONFIG), events)] == ["invalid_properties"]


def test_only_top_level_members_count_and_the_last_duplicate_wins():
    events = (
        "["
        + ",".join(
            f'{{"event_id":"{i}","name":"Page Viewed","properties":{properties}}}'
            for i, properties in enumerate(
                [
                    r'{"nested": {"app_version": "1"}, "s": "\"app_version\": 1"}',
                    r'{"app_version": "1", "app_version": null}',
                    r'{"app_version": null, "app_version": "1"}',
                    r'{"app\u005fversion": 0}',
                    r'{"app_version": false}',
                ]
            )
        )
        + "]"
    )
    codes = [getattr(v, "code", None) for v in validate(start(RequiredProperties, CONFIG), events)]
    assert codes == ["missing_property", "missing_property", None, None, None]


def test_a_name_required_twice_is_named_once():
    config = {"required": {"x": ["a", "b", "a"], "*": ["a", "c"]}}
    assert run_validator(RequiredProperties, config, [{"name": "x", "properties": {"b": False}}]) == [
        reject("missing_property", "event `x` is missing required properties `a`, `c`")
    ]


def test_an_event_without_an_entry_uses_the_wildcard_and_one_named_star_too():
    assert check([{"name": "*", "properties": {}}, {"name": "Other", "properties": {}}]) == [
        reject("missing_property", "event `*` is missing required property `app_version`"),
        reject("missing_property", "event `Other` is missing required property `app_version`"),
    ]


def test_many_required_names():
    names = [f"p{i}" for i in range(100)]
    plugin = start(RequiredProperties, {"required": {"*": names}})
    everything = {name: 1 for name in names}
    assert validate(plugin, [{"name": "x", "properties": everything}]) == [accept()]
    del everything["p70"]
    assert validate(plugin, [{"name": "x", "properties": everything}]) == [
        reject("missing_property", "event `x` is missing required property `p70`")
    ]


def test_non_ascii_names_and_keys():
    config = {"required": {"Inscrit ✓": ["état"]}}
    assert run_validator(RequiredProperties, config, [{"name": "Inscrit ✓", "properties": {}}]) == [
        reject("missing_property", "event `Inscrit ✓` is missing required property `état`")
    ]


@pytest.mark.parametrize(
    "config",
    [
        "{}",
        '{"requried": {}}',
        '{"required": {}, "extra": 1}',
        '{"required": {"x": "plan"}}',
        '{"required": {"x": [1]}}',
        '{"required": ["x"]}',
        '{"required": {"x": [""]}}',
        "nope",
        "[]",
    ],
)
def test_bad_configs_are_invalid_config(config):
    with pytest.raises(InvalidConfig):
        start(RequiredProperties, config)


def test_invalid_config_messages():
    with pytest.raises(InvalidConfig, match="^property names must not be empty$"):
        start(RequiredProperties, {"required": {"x": ["a"], "*": [""]}})
    with pytest.raises(InvalidConfig, match="^unknown field `requried`, expected `required`$"):
        start(RequiredProperties, {"requried": {}})


def test_one_verdict_per_event():
    assert check([]) == []
    assert len(check([{"name": "x", "properties": {"app_version": 1}}] * 5)) == 5


def test_reads_only_properties():
    assert RequiredProperties.fields == {"properties"}
    # Members it did not declare are not sent (as by the host): user_id is ignored.
    sent = batch_json([{"name": "x", "user_id": "u1", "properties": {}}], RequiredProperties.fields)
    assert json.loads(sent) == [{"event_id": "e0", "name": "x", "properties": {}}]
