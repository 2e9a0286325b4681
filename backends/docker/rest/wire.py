"""Wire values: times, HTTP dates, and a typed reader of small JSON bodies.

Times are ISO 8601 in UTC; durations, and the bodies of Add Pool, Add Job and Add Task, are read
through azure-batch's models (`jobprep_release.backends.schema`). `Body` reads the properties of
the other operations' bodies (resize, terminate, reboot, task collections) with the service's
refusals: ``MissingRequiredProperty`` for an absent required property and
``InvalidPropertyValue`` for a value of the wrong type or form, each naming the property by its
path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from jobprep_release.backends.docker.rest.errors import RestError

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

    @property
    def document(self) -> Mapping[str, Any]:
        """The object as sent."""
        return self._document

    @property
    def path(self) -> str:
        """Where the object is in the request body (``value[2]``; empty for the body)."""
        return self._path

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

    def boolean(self, name: str, default: bool) -> bool:
        value = self._document.get(name)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise invalid(self.where(name), "expected true or false")
        return value

    def children(self, name: str) -> list[Body]:
        value = self._document.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise invalid(self.where(name), "expected an array of objects")
        return [Body(item, f"{self.where(name)}[{index}]") for index, item in enumerate(value)]
