"""Task dependencies on the fake executor. Expected values from the REST API reference
(api-version 2025-06-01): BatchTaskDependencies ("All Tasks in this list must complete
successfully before the dependent Task can be scheduled"; taskIds "limited to 64000 characters
total", else ``TaskDependencyListTooLong``), BatchTaskCreateOptions dependsOn (without
usesTaskDependencies, ``TaskDependenciesNotSpecifiedOnJob``), ExitOptions dependencyAction
(satisfy, block)."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import (
    DependencyAction,
    ExitCodeMapping,
    ExitConditions,
    ExitOptions,
    TaskDependencies,
    TaskIdRange,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from jobprep_release.backends.errors import InvalidRequest
from tests.core.harness import JOB, job_spec, pool_spec, running_core


def exits_with_its_argument(start: FakeStart) -> FakeOutcome:
    """``/bin/exit N`` runs 5 seconds and exits with N."""
    return FakeOutcome(exit_code=int(start.argv[1]), duration=5)


def task(task_id: str, code: int = 0, **options: object) -> TaskSpec:
    return TaskSpec(task_id, f"/bin/exit {code}", **options)  # type: ignore[arg-type]


def after(*ids: str, ranges: tuple[TaskIdRange, ...] = ()) -> TaskDependencies:
    return TaskDependencies(task_ids=ids, task_id_ranges=ranges)


async def test_a_task_waits_active_until_its_dependencies_succeeded() -> None:
    async with running_core(exits_with_its_argument) as core:
        await core.service.create_pool(pool_spec(2))
        await core.service.create_job(job_spec(uses_task_dependencies=True))
        await core.service.add_tasks(
            JOB, [task("a"), task("b"), task("c", depends_on=after("a", "b"))]
        )
        await core.settle()
        assert (await core.task("c")).state is TaskState.ACTIVE  # a free node, and it waits
        await core.advance(5)
        c = await core.task("c")
        assert c.state is TaskState.RUNNING
        a = await core.task("a")
        assert a.execution_info.end_time is not None and c.execution_info.start_time is not None
        assert c.execution_info.start_time >= a.execution_info.end_time


async def test_a_failed_dependency_blocks_and_satisfy_lets_it_through() -> None:
    satisfy = ExitConditions(
        exit_codes=(ExitCodeMapping(2, ExitOptions(dependency_action=DependencyAction.SATISFY)),)
    )
    async with running_core(exits_with_its_argument) as core:
        await core.service.create_pool(pool_spec(2))
        await core.service.create_job(job_spec(uses_task_dependencies=True))
        await core.service.add_tasks(
            JOB,
            [
                task("fails", 1),
                task("forgiven", 2, exit_conditions=satisfy),
                task("blocked", depends_on=after("fails")),
                task("through", depends_on=after("forgiven")),
            ],
        )
        await core.advance(5)
        await core.advance(5)
        assert (await core.task("blocked")).state is TaskState.ACTIVE
        assert (await core.task("through")).state is TaskState.COMPLETED
        assert core.starts_of("blocked") == []


async def test_block_keeps_dependents_of_a_successful_task_waiting() -> None:
    block = ExitConditions(
        exit_codes=(ExitCodeMapping(0, ExitOptions(dependency_action=DependencyAction.BLOCK)),)
    )
    async with running_core(exits_with_its_argument) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(uses_task_dependencies=True))
        await core.service.add_tasks(
            JOB, [task("first", exit_conditions=block), task("then", depends_on=after("first"))]
        )
        await core.advance(5)
        await core.advance(5)
        assert (await core.task("then")).state is TaskState.ACTIVE


async def test_an_id_range_waits_for_every_task_in_it() -> None:
    async with running_core(exits_with_its_argument) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(uses_task_dependencies=True))
        ranged = task("last", depends_on=after(ranges=(TaskIdRange(1, 3),)))
        await core.service.add_tasks(JOB, [ranged, task("1"), task("2")])
        for _ in range(4):
            await core.advance(5)
        assert (await core.task("last")).state is TaskState.ACTIVE  # task 3 is not there yet
        await core.service.add_tasks(JOB, [task("3")])
        await core.advance(5)
        await core.advance(5)
        assert (await core.task("last")).state is TaskState.COMPLETED


async def test_dependencies_need_a_job_that_uses_them() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        with pytest.raises(InvalidRequest) as refused:
            await core.service.add_tasks(JOB, [task("a"), task("b", depends_on=after("a"))])
        assert refused.value.code == "TaskDependenciesNotSpecifiedOnJob"


async def test_task_ids_are_limited_to_64000_characters() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(uses_task_dependencies=True))
        fits = tuple(f"t{n:063}" for n in range(1000))  # 64 characters each: 64,000
        await core.service.add_tasks(JOB, [task("fits", depends_on=after(*fits))])
        too_long = (*fits, "x")
        with pytest.raises(InvalidRequest) as refused:
            await core.service.add_tasks(JOB, [task("over", depends_on=after(*too_long))])
        assert refused.value.code == "TaskDependencyListTooLong"
