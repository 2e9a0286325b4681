"""`core.heap.Heap`: the records saved are frozen out of the collector's full passes, after a
collection, every `FREEZE_EVERY` of them; at start, after a collection of the young generations
only."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from jobprep_release.backends.docker.core import FakeClock, FakeExecutor
from jobprep_release.backends.docker.core.heap import FREEZE_EVERY, Heap
from tests.core.harness import JOB, job_spec, pool_spec, running_core, tasks


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
    assert not heap.added(FREEZE_EVERY - 1)
    assert gc.get_freeze_count() == 0
    old = Cycle()
    gc.collect()  # `old` survives a full pass: it is in the oldest generation now
    gone = weakref.ref(old)
    del old  # cyclic garbage: collected before the freeze, not frozen for good
    assert gone() is not None
    assert heap.added(1)
    assert gc.get_freeze_count() == 0  # due, not done: the caller settles in a step of its own
    heap.settle()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert gone() is None
    assert not heap.added(FREEZE_EVERY - 1)
    assert gc.get_freeze_count() == frozen


def test_start_collects_the_young_generations_only_then_freezes(thawed: None) -> None:
    """At start a full pass would walk every module's objects; the old generation's garbage is
    the price (the module's docstring: start-up leaves none)."""
    old = Cycle()
    gc.collect()
    old_ref = weakref.ref(old)
    del old
    young = Cycle()
    young_ref = weakref.ref(young)
    del young
    heap = Heap()
    heap.added(FREEZE_EVERY - 1)
    heap.start()
    assert young_ref() is None
    assert old_ref() is not None  # frozen unexamined
    assert gc.get_freeze_count() > 0
    assert heap.unfrozen == 0


async def test_the_service_freezes_at_start_and_once_it_saved_freeze_every_records(
    thawed: None,
) -> None:
    """Through the service's saves (`Core.persist`): frozen once the state is read, not again
    before `FREEZE_EVERY` records are saved, then again."""
    async with running_core(fake=FakeExecutor(FakeClock())) as core:
        service = core.service
        heap = core.service._core.heap
        started = gc.get_freeze_count()
        assert started > 0
        await service.create_pool(pool_spec(1))
        await service.create_job(job_spec())
        specs = tasks(FREEZE_EVERY)
        half = FREEZE_EVERY // 2
        await service.add_tasks(JOB, specs[:half])
        assert half <= heap.unfrozen < FREEZE_EVERY  # counted, not frozen yet
        await service.add_tasks(JOB, specs[half:])
        assert heap.unfrozen < half  # settled since (a save of a placement may follow)
        assert gc.get_freeze_count() > started + FREEZE_EVERY  # a task's records at least
