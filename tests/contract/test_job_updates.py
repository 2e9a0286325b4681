"""Updating jobs and tasks, disabling and enabling jobs, job constraints, priority,
maxParallelTasks and preemption, on every backend. Expected values from the REST API reference
(api-version 2025-06-01): Update Job ("replaces only the Job properties specified"), Replace Job
("fully replaces all the updatable properties"), Update Task, Disable Job and its
DisableBatchJobOption (requeue: "The Tasks will run again when the Job is enabled"; terminate:
"completed with failureInfo"; wait: "Allow currently running Tasks to complete"), Enable Job,
BatchJobConstraints (terminate reason ``MaxWallClockTimeExpiry``), TaskExecutionInfo
requeueCount, BatchJob priority, maxParallelTasks and allowTaskPreemption."""

from __future__ import annotations

from datetime import timedelta

import anyio

from jobprep_release.backends.base import (
    DisableJobOption,
    ExecutionResult,
    JobConstraints,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    JobUpdate,
    PrepReleaseTaskState,
    Task,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from tests.contract.harness import BackendOpener, Batch, pool


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


SLEEPS = bash("sleep 60")


def failure_code(task: Task) -> str | None:
    info = task.execution_info.failure_info
    return None if info is None else info.code


async def test_update_job_changes_what_it_gives_and_replace_job_resets_the_rest(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job(max_task_retry_count=2, metadata={"owner": "a"}, priority=10)
        await batch.backend.update_job(job, JobUpdate(priority=900))
        spec = await batch.backend.get_job_spec(job)
        assert (spec.priority, spec.max_task_retry_count, dict(spec.metadata)) == (
            900,
            2,
            {"owner": "a"},
        )
        limits = JobConstraints(max_wall_clock_time=timedelta(hours=1), max_task_retry_count=1)
        await batch.backend.update_job(job, JobUpdate(constraints=limits, max_parallel_tasks=4))
        spec = await batch.backend.get_job_spec(job)
        assert (spec.max_wall_clock_time, spec.max_task_retry_count) == (timedelta(hours=1), 1)
        assert (spec.max_parallel_tasks, spec.priority) == (4, 900)
        await batch.backend.replace_job(job, JobUpdate(priority=500))
        spec = await batch.backend.get_job_spec(job)
        assert spec.priority == 500
        assert (spec.max_task_retry_count, spec.max_wall_clock_time, dict(spec.metadata)) == (
            0,
            None,
            {},
        )
        assert (spec.max_parallel_tasks, spec.pool_id) == (-1, batch.pool_id)


async def runs_written(batch: Batch, text: str) -> None:
    """Wait until the node's shared file ``runs`` holds `text` (a line per run of the task)."""
    with anyio.fail_after(60):
        while await batch.shared_file(batch.node_ids[0], "runs") != text:
            await anyio.sleep(0.2)


async def test_disable_with_requeue_puts_a_running_task_back_and_enable_runs_it_again(
    open_backend: BackendOpener,
) -> None:
    runs = '"$AZ_BATCH_NODE_SHARED_DIR/runs"'
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("t", bash(f"echo run >> {runs}; sleep 60"))])
        await runs_written(batch, "run\n")
        await batch.backend.disable_job(job, DisableJobOption.REQUEUE)
        disabled = await batch.job_in(job, JobState.DISABLED)
        assert disabled.previous_state is JobState.DISABLING
        task = await batch.backend.get_task(job, "t")
        assert task.state is TaskState.ACTIVE
        assert task.execution_info.requeue_count == 1
        await batch.backend.enable_job(job)
        enabled = await batch.job_in(job, JobState.ACTIVE)
        assert enabled.previous_state is JobState.ENABLING
        await runs_written(batch, "run\nrun\n")
        assert (await batch.backend.get_task(job, "t")).state is TaskState.RUNNING
        await batch.backend.terminate_task(job, "t")


async def test_disable_with_terminate_ends_running_tasks_and_wait_lets_them_finish(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, slots=2) as batch:
        ended = await batch.create_job()
        waited = await batch.create_job()
        await batch.backend.add_tasks(ended, [TaskSpec("t", SLEEPS)])
        await batch.backend.add_tasks(waited, [TaskSpec("t", bash("sleep 4"))])
        await batch.task_in(ended, "t", TaskState.RUNNING)
        await batch.task_in(waited, "t", TaskState.RUNNING)
        await batch.backend.disable_job(ended, DisableJobOption.TERMINATE)
        await batch.backend.disable_job(waited, DisableJobOption.WAIT)
        assert (await batch.backend.get_job(waited)).state is JobState.DISABLING
        await batch.job_in(ended, JobState.DISABLED)
        task = await batch.task_in(ended, "t", TaskState.COMPLETED)
        assert task.execution_info.result is ExecutionResult.FAILURE
        assert failure_code(task) == "TaskEnded"
        await batch.job_in(waited, JobState.DISABLED)
        task = await batch.backend.get_task(waited, "t")
        assert (task.state, task.execution_info.result) == (
            TaskState.COMPLETED,
            ExecutionResult.SUCCESS,
        )


async def test_update_task_sets_the_retries_of_a_task_added_to_a_disabled_job(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        await batch.backend.disable_job(job, DisableJobOption.WAIT)
        await batch.job_in(job, JobState.DISABLED)
        await batch.backend.add_tasks(job, [TaskSpec("t", "/bin/false")])
        await batch.backend.update_task(job, "t", TaskConstraints(max_task_retry_count=2))
        assert (await batch.backend.get_task(job, "t")).state is TaskState.ACTIVE
        await batch.backend.enable_job(job)
        task = (await batch.tasks_settled(job))["t"]
        assert (task.execution_info.retry_count, task.execution_info.exit_code) == (2, 1)


async def test_a_job_past_its_max_wall_clock_time_ends_with_max_wall_clock_time_expiry(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        job = await batch.create_job(
            JobPreparationTaskSpec("/bin/true"),
            JobReleaseTaskSpec("/bin/true"),
            max_wall_clock_time=timedelta(seconds=5),
        )
        await batch.backend.add_tasks(job, [TaskSpec("t", SLEEPS)])
        completed = await batch.job_in(job, JobState.COMPLETED, limit=60)
        assert completed.terminate_reason == "MaxWallClockTimeExpiry"
        task = await batch.backend.get_task(job, "t")
        assert (task.state, failure_code(task)) == (TaskState.COMPLETED, "TaskEnded")
        release = (await batch.prep_release(job))[node].release
        assert release is not None and release.state is PrepReleaseTaskState.COMPLETED
        assert release.execution_info.exit_code == 0


async def test_priority_orders_jobs_and_max_parallel_tasks_caps_one(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, slots=2) as batch:
        blocker = await batch.create_job()
        await batch.backend.add_tasks(
            blocker, [TaskSpec("b1", bash("sleep 4")), TaskSpec("b2", bash("sleep 4"))]
        )
        await batch.task_in(blocker, "b2", TaskState.RUNNING)
        low = await batch.create_job(priority=-10)
        high = await batch.create_job(priority=10, max_parallel_tasks=1)
        short = [TaskSpec("t1", bash("sleep 2")), TaskSpec("t2", bash("sleep 2"))]
        await batch.backend.add_tasks(low, short)
        await batch.backend.add_tasks(high, short)
        lows, highs = await batch.tasks_settled(low), await batch.tasks_settled(high)
        start = {f"low{t}": lows[t].execution_info.start_time for t in lows}
        start |= {f"high{t}": highs[t].execution_info.start_time for t in highs}
        end = highs["t1"].execution_info.end_time
        low_end = lows["t1"].execution_info.end_time
        assert all(start.values()) and end is not None and low_end is not None
        # The higher priority job takes the first free slot, but never runs more than one task
        # at once: its first task starts with the low job's first (both placed when the
        # blocker's slots free up, so their start times may be in either order by a few ms),
        # not after it; the low job's second waits for a slot.
        assert start["hight1"] < low_end  # type: ignore[operator]
        assert start["lowt1"] < start["lowt2"]  # type: ignore[operator]
        assert start["hight2"] >= end  # type: ignore[operator]


async def test_a_higher_priority_job_preempts_a_job_that_allows_it(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        yielding = await batch.create_job(allow_task_preemption=True)
        await batch.backend.add_tasks(yielding, [TaskSpec("long", SLEEPS)])
        await batch.task_in(yielding, "long", TaskState.RUNNING)
        urgent = await batch.create_job(priority=100)
        await batch.backend.add_tasks(urgent, [TaskSpec("quick", "/bin/true")])
        quick = (await batch.tasks_settled(urgent))["quick"]
        assert quick.execution_info.result is ExecutionResult.SUCCESS
        preempted = await batch.backend.get_task(yielding, "long")
        assert preempted.execution_info.requeue_count == 1
        await batch.backend.terminate_task(yielding, "long")
