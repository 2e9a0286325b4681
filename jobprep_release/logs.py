"""structlog set-up: logs on stderr, human-readable or JSON, never on the sample's stdout."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

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
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
