"""Task dependencies on every backend. Expected values from the REST API reference
(api-version 2025-06-01): BatchTaskDependencies (a dependent task is scheduled once every task
it names or ranges over completed successfully), ExitOptions dependencyAction, Add Task
``dependsOn`` without usesTaskDependencies (``TaskDependenciesNotSpecifiedOnJob``)."""

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
from jobprep_release.backends.errors import InvalidRequest
from tests.contract.harness import BackendOpener, pool


def exits(task_id: str, code: int, **options: object) -> TaskSpec:
    return TaskSpec(task_id, f"/bin/bash -c 'sleep 1; exit {code}'", **options)  # type: ignore[arg-type]


async def test_dependent_tasks_run_after_their_dependencies_succeed(
    open_backend: BackendOpener,
) -> None:
    satisfy = ExitConditions(
        exit_codes=(ExitCodeMapping(2, ExitOptions(dependency_action=DependencyAction.SATISFY)),)
    )
    async with pool(open_backend, slots=4) as batch:
        job = await batch.create_job(uses_task_dependencies=True)
        ranged = TaskDependencies(task_id_ranges=(TaskIdRange(1, 2),))
        await batch.backend.add_tasks(
            job,
            [
                exits("after", 0, depends_on=ranged),
                exits("1", 0),
                exits("2", 2, exit_conditions=satisfy),
                exits("fails", 1),
                exits("blocked", 0, depends_on=TaskDependencies(task_ids=("fails",))),
            ],
        )
        after = await batch.task_in(job, "after", TaskState.COMPLETED)
        tasks = {task.id: task for task in await batch.backend.list_tasks(job)}
        for first in ("1", "2"):
            end = tasks[first].execution_info.end_time
            assert end is not None and after.execution_info.start_time is not None
            assert after.execution_info.start_time >= end
        assert tasks["fails"].state is TaskState.COMPLETED
        blocked = await batch.backend.get_task(job, "blocked")
        assert (blocked.state, blocked.execution_info.start_time) == (TaskState.ACTIVE, None)
        spec = await batch.backend.get_job_spec(job)
        assert spec.uses_task_dependencies is True


async def test_depends_on_needs_a_job_that_uses_task_dependencies(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        depends = TaskDependencies(task_ids=("a",))
        with pytest.raises(InvalidRequest) as refused:
            await batch.backend.add_tasks(job, [exits("b", 0, depends_on=depends)])
        assert refused.value.code == "TaskDependenciesNotSpecifiedOnJob"
