"""Long loops that hand the event loop back: work in slices of a few milliseconds.

The service runs on one event loop; a loop over every task of a large job (a save, a sweep,
a page of a list, a collection of tasks) would hold it for tens of milliseconds, stalling every
request and node link meanwhile. `Pace` lets such a loop check cheaply whether its slice is
spent and, only then, let the loop run.
"""

from __future__ import annotations

import time

import anyio.lowlevel


class Pace:
    """Slices of at most `seconds` (default 2 ms) of work.

    `due` says whether the slice is spent (a clock read: no coroutine is created, which in
    asyncio's debug mode - the bench's stall check - would cost a traceback each), `pause` lets
    the loop run and starts the next slice, and `step` does both.
    """

    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float = 0.002) -> None:
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    def due(self) -> bool:
        return time.perf_counter() > self.deadline

    async def pause(self) -> None:
        """Let the loop run, then start the next slice."""
        await anyio.lowlevel.checkpoint()
        self.deadline = time.perf_counter() + self.seconds

    async def step(self) -> None:
        """`pause` if the slice is spent (`due`); nothing otherwise."""
        if self.due():
            await self.pause()
