"""A node's task counts (REST BatchNode totalTasksRun, totalTasksSucceeded, runningTasksCount,
runningTaskSlotsCount) are recorded on the node where tasks start and end: cumulative over
every job, deleted ones too, kept in the saved state, and 0 for a state file written before
they were recorded."""

from __future__ import annotations

import json

from jobprep_release.backends.base import ComputeNode, TaskState
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.docker.core.store import MemoryStore
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core, tasks


def script(start: FakeStart) -> FakeOutcome:
    """task001 and task003 fail (exit 3), the others succeed; each runs 5 s."""
    failing = start.task_id in ("task001", "task003")
    return FakeOutcome(duration=5, exit_code=3 if failing else 0)


def counts(node: ComputeNode) -> tuple[int, int, int, int]:
    return (
        node.total_tasks_run,
        node.total_tasks_succeeded,
        node.running_tasks_count,
        node.running_task_slots_count,
    )


async def test_counts_are_recorded_and_survive_the_jobs_deletion_and_a_restart() -> None:
    fake = FakeExecutor(FakeClock(), script)
    store = MemoryStore()
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_pool(pool_spec(1, task_slots_per_node=2))
        await core.settle()
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(4))
        await core.settle()
        (node,) = await core.service.list_nodes(POOL)
        assert counts(node) == (0, 0, 2, 2)
        for _ in range(3):
            await core.advance(5)
        states = {task.state for task in await core.service.list_tasks(JOB)}
        assert states == {TaskState.COMPLETED}
        (node,) = await core.service.list_nodes(POOL)
        assert counts(node) == (4, 2, 0, 0)
        await core.service.delete_job(JOB)
        await core.settle()
        assert await core.service.find_job(JOB) is None
        assert counts(await core.service.get_node(POOL, node.id)) == (4, 2, 0, 0)
    async with running_core(fake=fake, store=store) as again:
        assert counts(await again.service.get_node(POOL, node.id)) == (4, 2, 0, 0)


async def test_a_state_file_without_counts_reads_them_as_zero() -> None:
    fake = FakeExecutor(FakeClock(), script)
    store = MemoryStore()
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        (node,) = await core.service.list_nodes(POOL)
    assert store.document is not None
    document = json.loads(store.document)
    (saved,) = document["pools"][POOL]["nodes"]
    for name in ("total_tasks_run", "total_tasks_succeeded", "running_tasks", "running_task_slots"):
        del saved[name]
    store.document = json.dumps(document)
    async with running_core(fake=fake, store=store) as again:
        assert counts(await again.service.get_node(POOL, node.id)) == (0, 0, 0, 0)
