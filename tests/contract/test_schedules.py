"""Job schedules on every backend. Expected values from the REST API reference (api-version
2025-06-01): Add, Get, Exists, List, Disable, Enable, Terminate and Delete Job Schedule;
BatchJobScheduleConfiguration (without doNotRunUntil "the schedule becomes ready to create Jobs
immediately"; without recurrenceInterval one job is created), BatchJobScheduleExecutionInfo
(recentJob), the job's terminateReason ``TerminateJobSchedule``. Recurrence (at least a minute
apart) is held to the documentation on the fake executor (tests/core/test_schedules.py)."""

from __future__ import annotations

import contextlib

import anyio

from jobprep_release.backends.base import (
    JobScheduleSpec,
    JobScheduleState,
    JobSpec,
    JobState,
    Schedule,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.errors import NotFound
from tests.contract.harness import WAIT_LIMIT, BackendOpener, pool


async def test_a_schedule_creates_its_job_and_ends_with_it(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        schedule_id = f"{batch.pool_id}-sched"
        spec = JobScheduleSpec(
            id=schedule_id,
            schedule=Schedule(),
            job=JobSpec(id="", pool_id=batch.pool_id, priority=7),
            metadata={"kind": "contract"},
        )
        backend = batch.backend
        await backend.create_job_schedule(spec)
        try:
            job_id = f"{schedule_id}:job-1"
            with anyio.fail_after(WAIT_LIMIT):
                while not await backend.list_jobs_from_schedule(schedule_id):
                    await anyio.sleep(backend.poll_interval)
            (made,) = await backend.list_jobs_from_schedule(schedule_id)
            assert made.id == job_id
            assert (await backend.get_job_spec(job_id)).priority == 7
            await backend.add_tasks(job_id, [TaskSpec("t", "/bin/true")])
            await batch.task_in(job_id, "t", TaskState.COMPLETED)
            schedule = await backend.get_job_schedule(schedule_id)
            assert (schedule.state, schedule.recent_job_id) == (JobScheduleState.ACTIVE, job_id)
            assert await backend.job_schedule_exists(schedule_id)
            assert schedule_id in [found.id for found in await backend.list_job_schedules()]
            await backend.disable_job_schedule(schedule_id)
            disabled = await backend.get_job_schedule(schedule_id)
            assert disabled.state is JobScheduleState.DISABLED
            await backend.enable_job_schedule(schedule_id)
            assert (await backend.get_job_schedule(schedule_id)).state is JobScheduleState.ACTIVE
            await backend.terminate_job_schedule(schedule_id)
            ended = await batch.job_in(job_id, JobState.COMPLETED)
            assert ended.terminate_reason == "TerminateJobSchedule"
            with anyio.fail_after(WAIT_LIMIT):
                while (
                    await backend.get_job_schedule(schedule_id)
                ).state is not JobScheduleState.COMPLETED:
                    await anyio.sleep(backend.poll_interval)
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(NotFound):
                await backend.delete_job_schedule(schedule_id)
        with anyio.fail_after(WAIT_LIMIT):
            while await backend.job_schedule_exists(schedule_id):
                await anyio.sleep(backend.poll_interval)
