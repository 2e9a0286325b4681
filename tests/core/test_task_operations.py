"""Task operations on the fake executor: Reactivate Task, Delete Task, Delete Task File and
Delete Node File. Expected values from the REST API reference (api-version 2025-06-01):
Reactivate Task ("Each time a Task is reactivated, its retry count is reset to 0"; it fails for
tasks "not completed or that previously completed successfully", or when the job has
completed), Delete Task ("all of the files in its directory on the Compute Node where it ran are
also deleted (regardless of the retention time)"), Delete Task File and Delete Node File
("If recursive is false then the directory must be empty or deletion will fail")."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    JobState,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from jobprep_release.backends.docker.core.environment import task_dir
from jobprep_release.backends.errors import Conflict, NotFound
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core, tasks

RETRY_ONCE = TaskConstraints(max_task_retry_count=1)


def fails(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(exit_code=5, files={"out/a.txt": b"a", "out/b.txt": b"b"})


async def test_reactivate_runs_a_failed_task_again_with_its_retries_reset() -> None:
    async with running_core(fails) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1, constraints=RETRY_ONCE))
        await core.settle()
        failed = await core.task("task001")
        assert (failed.state, failed.execution_info.retry_count) == (TaskState.COMPLETED, 1)
        await core.service.reactivate_task(JOB, "task001")
        active = await core.task("task001")
        assert active.state is TaskState.ACTIVE
        info = active.execution_info
        assert (info.retry_count, info.exit_code, info.failure_info) == (0, None, None)
        await core.settle()
        again = await core.task("task001")
        assert again.state is TaskState.COMPLETED
        assert again.execution_info.retry_count == 1  # up to its max retry count again
        assert len(core.starts_of("task001")) == 4


async def test_reactivate_refuses_a_task_that_succeeded_or_runs_and_a_completed_job() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        with pytest.raises(Conflict):
            await core.service.reactivate_task(JOB, "task001")  # running
        await core.service.terminate_task(JOB, "task001")
        await core.service.terminate_job(JOB)
        await core.settle()
        assert (await core.service.get_job(JOB)).state is JobState.COMPLETED
        with pytest.raises(Conflict) as refused:
            await core.service.reactivate_task(JOB, "task001")
        assert refused.value.code == "JobCompleted"
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        assert (await core.task("task001")).execution_info.result is ExecutionResult.SUCCESS
        with pytest.raises(Conflict):
            await core.service.reactivate_task(JOB, "task001")


async def test_delete_task_ends_it_and_removes_its_files() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        (node,) = await core.node_ids()
        await core.service.delete_task(JOB, "task001")
        with pytest.raises(NotFound) as gone:
            await core.service.get_task(JOB, "task001")
        assert gone.value.code == "TaskNotFound"
        assert (node, task_dir(JOB, "task001")) in core.fake.removed_trees
        await core.settle()
        # Its slot is free: the next task runs.
        assert (await core.task("task002")).state is TaskState.RUNNING


async def test_delete_files_of_a_task_and_of_a_node() -> None:
    async with running_core(fails) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, [TaskSpec("t", "/bin/x")])
        await core.settle()
        (node,) = await core.node_ids()
        directory = f"{task_dir(JOB, 't')}/wd/out".removeprefix("/mnt/batch/tasks/")
        await core.service.delete_task_file(JOB, "t", "wd/out/a.txt")
        with pytest.raises(NotFound):
            await core.service.read_node_file(POOL, node, f"{directory}/a.txt")
        with pytest.raises(Conflict):
            await core.service.delete_node_file(POOL, node, directory)  # b.txt is still there
        await core.service.delete_node_file(POOL, node, directory, recursive=True)
        with pytest.raises(NotFound) as missing:
            await core.service.delete_node_file(POOL, node, directory)
        assert missing.value.code == "FileNotFound"
