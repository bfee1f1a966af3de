"""Validator: rejects events that lack required properties.

The Python twin of ``plugins/examples/required-properties`` (same
configuration, codes and messages).

Configuration: event name -> property names, ``"*"`` for every event:
``{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}``.
A property is missing when it is absent or ``null``. A rejection has code
``missing_property`` and names every missing property.
"""

from __future__ import annotations

from typing import Any

from sluice_plugin import Event, InvalidConfig, Validator, Verdict, accept, export_validator, reject


@export_validator
class RequiredProperties(Validator):
    fields = {"properties"}

    def __init__(self, config: dict[str, Any]) -> None:
        for key in config:
            if key != "required":
                raise InvalidConfig(f"unknown field `{key}`, expected `required`")
        if "required" not in config:
            raise InvalidConfig("missing field `required`")
        required = config["required"]
        if type(required) is not dict:
            raise InvalidConfig("`required` must be an object: event name (or `*`) -> property names")
        for event, names in required.items():
            if type(names) is not list or not all(type(name) is str for name in names):
                raise InvalidConfig(f"`required.{event}` must be a list of property names")
        if any(name == "" for names in required.values() for name in names):
            raise InvalidConfig("property names must not be empty")

        for_all: list[str] = required.get("*", [])
        # Per configured event: its names, then the `*` ones, without repeats
        # (first occurrence kept: the order of the message).
        self.per_event: dict[str, tuple[str, ...]] = {
            event: tuple(dict.fromkeys([*names, *for_all])) for event, names in required.items() if event != "*"
        }
        self.wildcard: tuple[str, ...] = tuple(dict.fromkeys(for_all))

    def validate(self, event: Event) -> Verdict:
        names = self.per_event.get(event.name, self.wildcard)
        if not names:
            return accept()  # nothing required: no need to look
        properties = event.properties
        if type(properties) is not dict:
            return reject("invalid_properties", "properties are not a JSON object")
        missing = [name for name in names if properties.get(name) is None]
        if not missing:
            return accept()
        noun = "property" if len(missing) == 1 else "properties"
        listed = "`" + "`, `".join(missing) + "`"  # no generator per event
        return reject("missing_property", f"event `{event.name}` is missing required {noun} {listed}")
