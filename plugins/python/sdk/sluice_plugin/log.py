"""Structured logging through the host (the WIT ``log`` import).

    from sluice_plugin import log
    log.info("loaded 12 rules")

The host tags each line with the plugin's name, version and team, and
rate-limits them. Inside the component the lines go to the host; in a plain
Python (tests) they go to the standard ``logging`` logger ``sluice_plugin``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Literal

Level = Literal["trace", "debug", "info", "warn", "error"]

#: The WIT ``level`` enum's cases, in order.
LEVELS: tuple[str, ...] = ("trace", "debug", "info", "warn", "error")

_PYTHON_LEVELS = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

_sink: Callable[[str, str], None] | None = None


def _host_sink() -> Callable[[str, str], None]:
    from wit_world.imports import log as wit_log

    levels = {name: wit_log.Level[name.upper()] for name in LEVELS}
    write = wit_log.log

    def sink(level: str, message: str) -> None:
        write(levels[level], message)

    return sink


def _python_sink() -> Callable[[str, str], None]:
    logger = logging.getLogger("sluice_plugin")

    def sink(level: str, message: str) -> None:
        logger.log(_PYTHON_LEVELS[level], message)

    return sink


def log(level: Level, message: str) -> None:
    """Writes one log line at ``level`` ("trace", "debug", "info", "warn" or "error")."""
    global _sink
    if level not in _PYTHON_LEVELS:
        raise ValueError(f"unknown log level {level!r} (known: {', '.join(LEVELS)})")
    if _sink is None:
        _sink = _host_sink() if sys.platform == "wasi" else _python_sink()
    _sink(level, str(message))


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)
