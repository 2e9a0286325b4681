"""Wire values: ISO 8601 durations and times, HTTP dates, and a typed reader of JSON bodies.

The REST API writes durations as ISO 8601 (``PT15M``, ``P7D``; "unlimited" as .NET's
``TimeSpan.MaxValue``, ``P10675199DT2H48M5.4775807S``) and times as ISO 8601 in UTC. `Body`
reads request properties with the service's refusals: ``MissingRequiredProperty`` for an absent
required property and ``InvalidPropertyValue`` for a value of the wrong type or form, each
naming the property by its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypeVar

from jobprep_release.backends.docker.rest.errors import RestError

UNLIMITED = "P10675199DT2H48M5.4775807S"
_UNLIMITED_DAYS = 10675199
_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)

E = TypeVar("E", bound=StrEnum)


# --- durations and times ---------------------------------------------------------------------


def parse_duration(text: str) -> timedelta | None:
    """An ISO 8601 duration; None for the service's "unlimited". `ValueError` when malformed."""
    match = _DURATION.fullmatch(text.strip().upper())
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT15M or P1DT2H")
    weeks, days, hours, minutes = (int(match[name] or 0) for name in "wdhm")
    seconds = float(match["s"] or 0)
    value = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return None if value.days >= _UNLIMITED_DAYS else value


def format_duration(value: timedelta | None) -> str:
    """A duration as the service writes it; None is "unlimited"."""
    if value is None:
        return UNLIMITED
    days, seconds, micros = value.days, value.seconds, value.microseconds
    text = "P" + (f"{days}D" if days else "")
    hours, rest = divmod(seconds, 3600)
    minutes, whole = divmod(rest, 60)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if whole or micros:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        clock += f"{whole}{fraction}S"
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


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


# --- request bodies --------------------------------------------------------------------------


def _missing(path: str) -> RestError:
    return RestError(
        400,
        "MissingRequiredProperty",
        f"A required property was not specified in the request body: {path}",
        [("PropertyName", path)],
    )


def invalid(path: str, why: str) -> RestError:
    return RestError(
        400,
        "InvalidPropertyValue",
        f"The value provided for {path} is invalid: {why}",
        [("PropertyName", path), ("Reason", why)],
    )


class Body:
    """A JSON object of a request body, read property by property with typed refusals."""

    def __init__(self, document: Mapping[str, Any], path: str = "") -> None:
        self._document = document
        self._path = path

    @classmethod
    def parse(cls, document: Any) -> Body:
        if not isinstance(document, Mapping):
            raise RestError(400, "InvalidRequestBody", "The request body must be a JSON object")
        return cls(document)

    def where(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def __contains__(self, name: str) -> bool:
        return self._document.get(name) is not None

    def names(self) -> Iterator[str]:
        return (name for name, value in self._document.items() if value is not None)

    def raw(self, name: str) -> Any:
        return self._document.get(name)

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._document.get(name)
        if value is None:
            if required or default is None:
                raise _missing(self.where(name))
            return default
        if not isinstance(value, str):
            raise invalid(self.where(name), "expected a string")
        if required and not value.strip():
            raise _missing(self.where(name))
        return value

    def optional_text(self, name: str) -> str | None:
        return self.text(name) if name in self else None

    def integer(self, name: str, default: int) -> int:
        """An integer; a string of one is taken too, as the service's JSON reader does (the
        az CLI sends ``"targetDedicatedNodes": "1"``)."""
        value = self._document.get(name)
        if value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(self.where(name), "expected an integer")
        return value

    def optional_integer(self, name: str) -> int | None:
        return self.integer(name, 0) if name in self else None

    def boolean(self, name: str, default: bool) -> bool:
        value = self._document.get(name)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise invalid(self.where(name), "expected true or false")
        return value

    def duration(self, name: str) -> timedelta | None:
        """A duration property; None when absent or "unlimited"."""
        value = self._document.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(self.where(name), "expected an ISO 8601 duration string")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise invalid(self.where(name), str(exc)) from None

    def choice(self, name: str, cls: type[E], default: E) -> E:
        value = self._document.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        allowed = ", ".join(member.value for member in cls)
        raise invalid(self.where(name), f"expected one of {allowed}")

    def child(self, name: str, *, required: bool = False) -> Body | None:
        value = self._document.get(name)
        if value is None:
            if required:
                raise _missing(self.where(name))
            return None
        if not isinstance(value, Mapping):
            raise invalid(self.where(name), "expected an object")
        return Body(value, self.where(name))

    def children(self, name: str) -> list[Body]:
        value = self._document.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise invalid(self.where(name), "expected an array of objects")
        return [Body(item, f"{self.where(name)}[{index}]") for index, item in enumerate(value)]
