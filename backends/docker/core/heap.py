"""Keeping the garbage collector's full passes short while a large job's records pile up.

CPython's full collection (generation 2) walks every tracked object, and holds the event loop
while it does: at 10,000 tasks the bench measured passes of 40-150 ms (about 0.45 µs an
object), each a stall of every request and node link. The records of tasks are long-lived and
form no reference cycles (a 5,000-task run, its job and pool deleted, leaves no cyclic garbage:
they are freed by reference counting alone), so they need not be walked at all: `Heap` moves
every object alive into the permanent generation (`gc.freeze`) each time the service saved
`FREEZE_EVERY` more records (a task added, placed, completed: each a row written, each new
long-lived objects), and full passes then walk only what came since. Each freeze follows a
collection (of the objects not frozen yet: a few milliseconds), so no garbage is frozen. The
cost: a cycle alive at a freeze that becomes garbage later is not collected; the service's own
objects form none, and the few of a library's that might are bounded by the number of freezes
(one per `FREEZE_EVERY` records saved).
"""

from __future__ import annotations

import gc

FREEZE_EVERY = 1_000
"""Records saved between two freezes: a full pass walks at most about that many records'
objects (~12,000, ~5 ms)."""


class Heap:
    """Counts the records saved (`added`) and freezes the heap every `FREEZE_EVERY` of them."""

    __slots__ = ("unfrozen",)

    def __init__(self) -> None:
        self.unfrozen = 0

    def added(self, records: int) -> None:
        """`records` more records are alive for good (saved)."""
        self.unfrozen += records
        if self.unfrozen >= FREEZE_EVERY:
            self.settle()

    def settle(self, *, start: bool = False) -> None:
        """Collect, then freeze what is alive: at `start` (the modules imported, the state read,
        before the loop has work), and every `FREEZE_EVERY` records. At start only the young
        generations are collected: nothing is frozen yet, so a full pass would walk every
        module's objects (20 ms and more of a CLI run's start-up, before its first pool) to
        find the few dozen objects of garbage the imports left in the old generation (31 in the
        CLI's imports here), which are frozen with the rest instead."""
        gc.collect(1 if start else 2)
        gc.freeze()
        self.unfrozen = 0
