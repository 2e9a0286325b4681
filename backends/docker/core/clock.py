"""The time the service reads: the system's, or a fake one tests move by hand.

The core never calls `time.time` or `anyio.sleep` for Batch time (start and end times,
retention, transitions); it asks its `Clock`, so a `FakeClock` makes every rule that depends on
time deterministic.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """Wall-clock time in epoch seconds, and sleeping in it."""

    def now(self) -> float:
        """The current time, epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` of this clock's time have passed."""
        ...


class SystemClock:
    """The system's clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told (`advance`, `set`); sleepers wake when it passes
    their deadline. Starts at `start` (epoch seconds; 2026-01-01 by default)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, anyio.Event]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        entry = (self._now + seconds, event)
        self._sleepers.append(entry)
        try:
            await event.wait()
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (not negative) and wake whoever is due."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        """Move the clock to `when` (not earlier than now) and wake whoever is due."""
        if when < self._now:
            raise ValueError("a clock does not go back")
        self._now = when
        for deadline, event in list(self._sleepers):
            if deadline <= when:
                event.set()
