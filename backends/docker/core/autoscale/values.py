"""The formula's value types and how the service writes them in ``results``: double (a
`float`), doubleVec (`Vector`), string (`str`), timestamp (`Timestamp`) and timeinterval
(`Interval`).

Written forms: a double as a number (``10``, ``2.5``), a doubleVec as ``[1,2,3]``, a
timestamp as ``2016-10-14T18:36:43.282Z`` (the documentation's ``results`` examples); a time
interval as .NET writes a TimeSpan (``00:05:00``, ``1.02:00:00``; inferred, the
documentation shows none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Vector:
    """A doubleVec."""

    items: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A point in time, epoch seconds (UTC)."""

    epoch: float

    def member(self, name: str) -> float:
        """year, month (1-12), day (1-31), weekday (0 Sunday, 1 Monday, ... 6), hour (0-23),
        minute, second."""
        moment = datetime.fromtimestamp(self.epoch, UTC)
        if name == "weekday":
            return float(moment.isoweekday() % 7)
        return float(getattr(moment, name))


@dataclass(frozen=True, slots=True)
class Interval:
    """A timeinterval, in seconds."""

    seconds: float


Value = float | Vector | str | Timestamp | Interval


def type_name(value: Value) -> str:
    """The documentation's name of the value's type."""
    if isinstance(value, float):
        return "double"
    if isinstance(value, Vector):
        return "doubleVec"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Timestamp):
        return "timestamp"
    return "timeinterval"


def number(value: float) -> str:
    """A double as ``results`` writes it: whole numbers without a point."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}"


def written(value: Value) -> str:
    """`value` as the service writes it in ``results``."""
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Vector):
        return "[" + ",".join(number(item) for item in value.items) + "]"
    if isinstance(value, str):
        return value
    if isinstance(value, Timestamp):
        moment = datetime.fromtimestamp(value.epoch, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    ticks = round(abs(value.seconds) * 10_000_000)
    days, ticks = divmod(ticks, 86_400 * 10_000_000)
    seconds, fraction = divmod(ticks, 10_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{'-' if value.seconds < 0 else ''}{f'{days}.' if days else ''}"
    text += f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{fraction:07d}" if fraction else "")
