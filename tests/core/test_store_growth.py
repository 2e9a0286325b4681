"""The saved state grows linearly with the tasks it holds, and the journal does not grow at all
once the state is written (on the fake executor, the in-memory store: the documents the file
store would write)."""

from __future__ import annotations

from jobprep_release.backends.base import TaskState
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor
from tests.core.harness import JOB, job_spec, pool_spec, running_core, tasks

SIZES = (200, 400, 800)


async def _saved_size(count: int) -> tuple[int, int]:
    """Bytes of the state saved after `count` tasks completed, and journal entries left."""
    async with running_core(fake=FakeExecutor(FakeClock())) as core:
        service = core.service
        await service.create_pool(pool_spec(4, task_slots_per_node=4))
        await service.create_job(job_spec())
        specs = tasks(count)
        for first in range(0, count, 100):
            await service.add_tasks(JOB, specs[first : first + 100])
        for _ in range(200):
            await core.advance(1)
            counts = await service.get_task_counts(JOB)
            if counts.completed == count:
                break
        assert all(t.state is TaskState.COMPLETED for t in await service.list_tasks(JOB))
        await service.close()
        assert core.store.document is not None
        return len(core.store.document.encode()), len(core.store.entries)


async def test_the_saved_state_grows_linearly_and_the_journal_is_emptied() -> None:
    measured = {count: await _saved_size(count) for count in SIZES}
    sizes = {count: size for count, (size, _) in measured.items()}
    assert all(left == 0 for _, left in measured.values()), measured
    small, middle, large = SIZES
    first = (sizes[middle] - sizes[small]) / (middle - small)
    second = (sizes[large] - sizes[middle]) / (large - middle)
    print(f"saved state: {sizes}; {first:.0f} then {second:.0f} bytes a task")
    assert abs(second - first) <= 0.05 * first, (first, second)
