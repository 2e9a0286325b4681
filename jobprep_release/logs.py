"""structlog set-up: logs on stderr, human-readable or JSON, never on the sample's stdout.

The configuration is applied when structlog is first imported (`backends.logger`: at the first
line logged), so that a run that has not logged yet has not paid for structlog's import.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

from jobprep_release.backends import logger

SECRET_KEYS = frozenset({"key", "access_key", "account_key", "password", "token", "secret"})
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make `value` redacted wherever it appears in a log event."""
    if value:
        _secrets.add(value)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name, value in list(event.items()):
        if name.lower() in SECRET_KEYS:
            event[name] = "***"
        elif isinstance(value, str) and _secrets:
            redacted = value
            for secret in _secrets:
                redacted = redacted.replace(secret, "***")
            event[name] = redacted
    return event


def configure(level: int = logging.INFO, fmt: str = "console") -> None:
    """Lines of `level` and above on stderr, as `fmt` (``console`` or ``json``); applied once
    structlog is imported (at once if it is)."""
    stream = sys.stderr  # the stream of now, as if configured now
    logger.when_loaded(lambda: _configure(level, fmt, stream))


def _configure(level: int, fmt: str, stream: TextIO) -> None:
    import structlog

    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
