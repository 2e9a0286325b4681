"""Keeping the garbage collector's full passes short while a large job's records pile up.

CPython's full collection (generation 2) walks every tracked object, and holds the event loop
while it does: at 10,000 tasks the bench measured passes of 40-150 ms (about 0.45 µs an
object), each a stall of every request and node link. The records of tasks are long-lived and
form no reference cycles (a 5,000-task run, its job and pool deleted, leaves no cyclic garbage:
they are freed by reference counting alone), so they need not be walked at all: `Heap` moves
every object alive into the permanent generation (`gc.freeze`) each time the service saved
`FREEZE_EVERY` more records (a task added, placed, completed: each a row written, each new
long-lived objects), and full passes then walk only what came since. Each of those freezes
follows a full collection (of the objects not frozen yet: a few milliseconds, in a step of the
loop of its own), so no garbage is frozen. The cost: a cycle alive at a freeze that becomes
garbage later is not collected; the service's own objects form none, and the few of a library's
that might are bounded by the number of freezes (one per `FREEZE_EVERY` records saved).

The first freeze, once the state is read (`start`), follows a collection of the young
generations only: a full one there walks every module's objects, 15-25 ms of the loop in a new
process (the one stall over 20 ms the bench's loop check found in the CLI's flow at 10,000
tasks), and start-up leaves no cyclic garbage in the old generation to free (a full collection
at that point found none in the runs measured), so what is frozen unexamined is what is alive.
"""

from __future__ import annotations

import gc

FREEZE_EVERY = 1_000
"""Records saved between two freezes: a full pass walks at most about that many records'
objects (~12,000, ~5 ms)."""


class Heap:
    """Counts the records saved (`added`); `settle` freezes the heap when they reach
    `FREEZE_EVERY`."""

    __slots__ = ("unfrozen",)

    def __init__(self) -> None:
        self.unfrozen = 0

    def start(self) -> None:
        """Freeze what is alive once the state is read (modules, the state), after a collection
        of the young generations only (see the module's docstring)."""
        gc.collect(1)
        gc.freeze()
        self.unfrozen = 0

    def added(self, records: int) -> bool:
        """`records` more records are alive for good (saved); whether `settle` is due (the
        caller runs it in a step of the loop of its own)."""
        self.unfrozen += records
        return self.unfrozen >= FREEZE_EVERY

    def settle(self) -> None:
        """Collect (a full pass over what is not frozen), then freeze what is alive."""
        gc.collect()
        gc.freeze()
        self.unfrozen = 0
