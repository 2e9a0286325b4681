"""Job release tasks: on terminate and delete, where they run, their limits, no slot."""

from __future__ import annotations

from datetime import timedelta

import anyio

from jobprep_release.backends.base import (
    ExecutionResult,
    JobReleaseTaskSpec,
    JobState,
    PrepReleaseTaskState,
    TaskSpec,
    TaskState,
)
from tests.contract.harness import BackendOpener, pool


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


COUNT_RELEASE = bash('echo "$AZ_BATCH_JOB_ID" >> "$AZ_BATCH_NODE_SHARED_DIR/releases"')


async def test_release_runs_on_terminate_only_where_tasks_ran(open_backend: BackendOpener) -> None:
    async with pool(open_backend, nodes=2) as batch:
        job = await batch.create_job("/bin/true", bash("sleep 1; exit 4"))
        await batch.backend.add_tasks(job, [TaskSpec("only", "/bin/true")])
        ran_on = (await batch.tasks_settled(job))["only"].node_id
        assert ran_on is not None
        await batch.backend.terminate_job(job)
        assert (await batch.backend.get_job(job)).state is JobState.TERMINATING
        completed = await batch.job_in(job, JobState.COMPLETED)
        assert completed.terminate_reason == "UserTerminate"
        statuses = await batch.prep_release(job)
        assert list(statuses) == [ran_on]
        release = statuses[ran_on].release
        assert release is not None
        assert release.state is PrepReleaseTaskState.COMPLETED
        assert release.execution_info.exit_code == 4
        assert release.execution_info.result is ExecutionResult.FAILURE


async def test_release_runs_on_delete_of_an_active_job_and_never_twice(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        active = await batch.create_job("/bin/true", COUNT_RELEASE)
        ended = await batch.create_job("/bin/true", COUNT_RELEASE)
        for job in (active, ended):
            await batch.backend.add_tasks(job, [TaskSpec("t", "/bin/true")])
            await batch.tasks_settled(job)
        await batch.backend.delete_job(active)
        await batch.backend.terminate_job(ended)
        await batch.job_in(ended, JobState.COMPLETED)
        await batch.backend.delete_job(ended)
        batch.jobs.clear()
        assert await batch.shared_file(node, "releases") == f"{active}\n{ended}\n"


async def test_release_is_ended_at_its_wall_clock_and_the_job_completes(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        release = JobReleaseTaskSpec(bash("sleep 600"), max_wall_clock_time=timedelta(seconds=1))
        job = await batch.create_job("/bin/true", release)
        await batch.backend.add_tasks(job, [TaskSpec("t", "/bin/true")])
        await batch.tasks_settled(job)
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED, limit=30)
        info = (await batch.prep_release(job))[batch.node_ids[0]].release
        assert info is not None
        assert info.execution_info.result is ExecutionResult.FAILURE
        assert info.execution_info.retry_count == 0


async def test_release_uses_no_task_slot(open_backend: BackendOpener) -> None:
    async with pool(open_backend, nodes=1, slots=1) as batch:
        slow_release = await batch.create_job("/bin/true", bash("sleep 3"))
        await batch.backend.add_tasks(slow_release, [TaskSpec("t", "/bin/true")])
        await batch.tasks_settled(slow_release)
        await batch.backend.terminate_job(slow_release)
        other = await batch.create_job()
        await batch.backend.add_tasks(other, [TaskSpec("meanwhile", "/bin/true")])
        await batch.task_in(other, "meanwhile", TaskState.COMPLETED)
        assert (await batch.backend.get_job(slow_release)).state is JobState.TERMINATING
        await batch.job_in(slow_release, JobState.COMPLETED)


async def test_terminate_ends_running_tasks_and_leaves_active_ones(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, nodes=1, slots=1) as batch:
        job = await batch.create_job("/bin/true", "/bin/true")
        await batch.backend.add_tasks(
            job, [TaskSpec("long", bash("sleep 600")), TaskSpec("queued", "/bin/true")]
        )
        await batch.task_in(job, "long", TaskState.RUNNING)
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED)
        long = await batch.backend.get_task(job, "long")
        assert long.state is TaskState.COMPLETED
        assert long.execution_info.result is ExecutionResult.FAILURE
        await anyio.sleep(1)
        assert (await batch.backend.get_task(job, "queued")).state is TaskState.ACTIVE
