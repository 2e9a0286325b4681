"""`core.heap.Heap`: the records saved are frozen out of the collector's full passes, after a
collection, every `FREEZE_EVERY` of them."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from jobprep_release.backends.docker.core.heap import FREEZE_EVERY, Heap


@pytest.fixture
def thawed() -> Iterator[None]:
    """Nothing frozen, and no automatic collection: only the heap's own."""
    gc.unfreeze()
    gc.disable()
    yield
    gc.enable()
    gc.unfreeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_heap_is_frozen_every_freeze_every_records_and_garbage_is_not(thawed: None) -> None:
    heap = Heap()
    heap.added(FREEZE_EVERY - 1)
    assert gc.get_freeze_count() == 0
    dropped = Cycle()
    gone = weakref.ref(dropped)
    del dropped  # cyclic garbage: collected before the freeze, not frozen for good
    assert gone() is not None
    heap.added(1)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert gone() is None
    heap.added(FREEZE_EVERY - 1)
    assert gc.get_freeze_count() == frozen


def test_at_start_the_young_garbage_is_collected_and_everything_alive_frozen(thawed: None) -> None:
    kept = Cycle()
    dropped = Cycle()
    gone = weakref.ref(dropped)
    del dropped  # young cyclic garbage: collected by the young pass before the freeze
    Heap().settle(start=True)
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: out of every generation
