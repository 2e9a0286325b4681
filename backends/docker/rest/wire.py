"""Wire values: times in the service's form and HTTP dates.

Times are ISO 8601 in UTC; durations and request bodies are read through azure-batch's models
(`jobprep_release.backends.schema`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

# --- times ----------------------------------------------------------------------------------


def format_time(value: datetime | None) -> str | None:
    """A time in UTC as the service writes it (``2025-11-22T19:32:02.815531Z``)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def http_date(value: datetime) -> str:
    """An RFC 1123 date for headers (``Last-Modified``, ``ocp-creation-time``)."""
    return format_datetime(value.astimezone(UTC), usegmt=True)


def parse_http_date(text: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)
