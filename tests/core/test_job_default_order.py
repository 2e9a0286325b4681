"""The pool's taskSchedulingPolicy.jobDefaultOrder on the fake executor. Expected behaviour from
the REST API reference (BatchJobDefaultOrder): `none`, the default, "Tasks should be scheduled
uniformly from all equal-priority jobs for the pool"; `creationtime`, "If jobs have equal
priority, tasks from jobs that were created earlier should be scheduled first"."""

from __future__ import annotations

from jobprep_release.backends.base import JobSpec, TaskSpec
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from tests.core.harness import POOL, Core, pool_spec, running_core


def ten_seconds(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(duration=10.0)


async def _start_order(order: str | None) -> list[str]:
    """Two jobs of equal priority, three tasks each, on one node with one slot: the jobs of
    the tasks in the order they started."""
    async with running_core(ten_seconds) as core:
        await core.service.create_pool(pool_spec(1, job_default_order=order))
        for job in ("older", "newer"):
            await core.service.create_job(JobSpec(id=job, pool_id=POOL))
        for job in ("older", "newer"):
            specs = [TaskSpec(id=f"{job}{n}", command_line="/bin/work") for n in range(3)]
            await core.service.add_tasks(job, specs)
        await _run_all(core, 6)
        return [start.task_id[:-1] for start in core.fake.starts]


async def _run_all(core: Core, count: int) -> None:
    await core.settle()
    for _ in range(count):
        await core.advance(10)


async def test_none_takes_a_task_from_each_equal_priority_job_in_turn() -> None:
    order = await _start_order(None)
    assert order[:1] == ["older"]  # the slot was free when the older job's tasks came
    assert order[1:] == ["newer", "older", "newer", "older", "newer"]


async def test_creationtime_runs_the_older_jobs_tasks_first() -> None:
    order = await _start_order("creationtime")
    assert order == ["older"] * 3 + ["newer"] * 3
