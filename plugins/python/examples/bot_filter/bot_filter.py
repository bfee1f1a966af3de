"""Validator: rejects events whose user agent looks like a bot.

The Python twin of ``plugins/examples/bot-filter`` (same configuration,
defaults, code and message).

Configuration (every key optional):
``{"user_agent_patterns": ["bot", "crawler", "spider", "HeadlessChrome"], "case_insensitive": true}``

The user agent is ``context.user_agent``, else ``properties.$user_agent``
(both are checked, the context first; only a string counts, and only a
top-level member). A pattern is a plain substring. Ignoring case, patterns
and user agent are lower-cased (``str.lower``: ASCII folding for ASCII
text, full Unicode lower-casing otherwise, e.g. the Kelvin sign is ``k``,
as Rust's ``to_lowercase``). A matching event is rejected with code
``bot_traffic``, naming the first matching pattern in configured order (as
configured, not lower-cased). An empty pattern list disables the filter.
"""

from __future__ import annotations

from typing import Any

from sluice_plugin import Event, InvalidConfig, Validator, Verdict, accept, export_validator, reject
from sluice_plugin.serde import debug_str, float_text

#: The patterns used when the configuration names none.
DEFAULT_PATTERNS: tuple[str, ...] = (
    "bot",
    "crawler",
    "spider",
    "HeadlessChrome",
    "PhantomJS",
    "Slurp",
    "facebookexternalhit",
)


@export_validator
class BotFilter(Validator):
    fields = {"context", "properties"}

    def __init__(self, config: dict[str, Any]) -> None:
        # As serde reads the Rust plugin's `Config` (`deny_unknown_fields`,
        # defaults): members in order, the first problem reported.
        patterns: list[str] = list(DEFAULT_PATTERNS)
        case_insensitive = True
        for key, value in config.items():
            if key == "user_agent_patterns":
                if type(value) is not list:
                    raise InvalidConfig(f"invalid type: {_unexpected(value)}, expected a sequence")
                for pattern in value:
                    if type(pattern) is not str:
                        raise InvalidConfig(f"invalid type: {_unexpected(pattern)}, expected a string")
                patterns = value
            elif key == "case_insensitive":
                if type(value) is not bool:
                    raise InvalidConfig(f"invalid type: {_unexpected(value)}, expected a boolean")
                case_insensitive = value
            else:
                raise InvalidConfig(f"unknown field `{key}`, expected `user_agent_patterns` or `case_insensitive`")
        if any(pattern == "" for pattern in patterns):
            raise InvalidConfig("`user_agent_patterns` must not contain an empty pattern (it would match everything)")
        self.case_insensitive = case_insensitive
        #: (what is searched for, the pattern as configured), in order.
        self.needles: tuple[tuple[str, str], ...] = tuple(
            (pattern.lower() if case_insensitive else pattern, pattern) for pattern in patterns
        )

    def validate(self, event: Event) -> Verdict:
        if not self.needles:
            return accept()
        found = None
        context = event.context
        if type(context) is dict:
            user_agent = context.get("user_agent")
            if type(user_agent) is str:
                found = self.matching(user_agent)
        if found is None:
            properties = event.properties
            if type(properties) is dict:
                user_agent = properties.get("$user_agent")
                if type(user_agent) is str:
                    found = self.matching(user_agent)
        if found is None:
            return accept()
        return reject("bot_traffic", f"the user agent matches the bot pattern `{found}`")

    def matching(self, haystack: str) -> str | None:
        """The first pattern (in configured order) that occurs in ``haystack``."""
        if self.case_insensitive:
            haystack = haystack.lower()
        for needle, pattern in self.needles:
            if needle in haystack:
                return pattern
        return None


# --- serde's wording for a value of the wrong type (config errors) -------------


def _unexpected(value: Any) -> str:
    """How serde names an unexpected JSON value (``serde::de::Unexpected``)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return f"boolean `{'true' if value else 'false'}`"
    if type(value) is int and -(2**63) <= value < 2**64:
        return f"integer `{value}`"
    if type(value) in (int, float):
        return f"floating point `{float_text(float(value))}`"
    if type(value) is str:
        return f"string {debug_str(value)}"
    return "sequence" if type(value) is list else "map"
