"""Job schedules on the fake executor. Expected values from the REST API reference
(api-version 2025-06-01): BatchJobScheduleConfiguration (doNotRunUntil, doNotRunAfter: "The
schedule will move to the completed state as soon as this deadline is past and there is no
active Job"; startWindow: a job not created within it is skipped; recurrenceInterval: "at most
one active Job ... the Batch service will not create the new Job until the previous Job
finishes"; without it "one Job is created ... and the schedule is complete as soon as that Job
finishes"), BatchJobScheduleExecutionInfo (nextRunTime, recentJob), BatchJobExecutionInfo
terminateReason ``TerminateJobSchedule``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobprep_release.backends.base import (
    JobScheduleSpec,
    JobScheduleState,
    JobSpec,
    JobState,
    Schedule,
)
from jobprep_release.backends.errors import AlreadyExists, NotFound
from tests.core.harness import POOL, Core, pool_spec, running_core

MINUTE = timedelta(minutes=1)


def schedule_spec(schedule: Schedule, **job: object) -> JobScheduleSpec:
    return JobScheduleSpec(
        id="nightly",
        schedule=schedule,
        job=JobSpec(id="", pool_id=POOL, **job),  # type: ignore[arg-type]
    )


async def minutes(core: Core, count: int) -> None:
    for _ in range(count):
        await core.advance(60)  # the sweeper looks once a minute in these tests


async def test_a_schedule_without_recurrence_creates_one_job_and_completes_after_it() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job_schedule(schedule_spec(Schedule()))
        made = await core.service.list_jobs_from_schedule("nightly")
        assert [job.id for job in made] == ["nightly:job-1"]
        schedule = await core.service.get_job_schedule("nightly")
        assert (schedule.state, schedule.recent_job_id) == (
            JobScheduleState.ACTIVE,
            "nightly:job-1",
        )
        await minutes(core, 3)
        assert len(await core.service.list_jobs_from_schedule("nightly")) == 1
        await core.service.terminate_job("nightly:job-1")
        await minutes(core, 1)
        done = await core.service.get_job_schedule("nightly")
        assert done.state is JobScheduleState.COMPLETED and done.end_time is not None


async def test_a_recurring_schedule_waits_for_its_active_job() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job_schedule(
            schedule_spec(Schedule(recurrence_interval=2 * MINUTE))
        )
        await core.service.terminate_job("nightly:job-1")
        await minutes(core, 2)
        made = [job.id for job in await core.service.list_jobs_from_schedule("nightly")]
        assert made == ["nightly:job-1", "nightly:job-2"]
        # job-3 is due two minutes later; it waits while job-2 is still active.
        await minutes(core, 4)
        assert len(await core.service.list_jobs_from_schedule("nightly")) == 2
        await core.service.terminate_job("nightly:job-2")
        await minutes(core, 1)
        made = [job.id for job in await core.service.list_jobs_from_schedule("nightly")]
        assert made[-1] == "nightly:job-3"
        schedule = await core.service.get_job_schedule("nightly")
        assert schedule.recent_job_id == "nightly:job-3"


async def test_do_not_run_until_and_do_not_run_after() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        start = datetime.fromtimestamp(core.clock.now(), UTC)
        window = Schedule(
            do_not_run_until=start + 3 * MINUTE,
            do_not_run_after=start + 5 * MINUTE,
            recurrence_interval=MINUTE,
        )
        await core.service.create_job_schedule(schedule_spec(window))
        await minutes(core, 2)
        assert await core.service.list_jobs_from_schedule("nightly") == []
        nxt = (await core.service.get_job_schedule("nightly")).next_run_time
        assert nxt == start + 3 * MINUTE
        await minutes(core, 2)
        made = await core.service.list_jobs_from_schedule("nightly")
        assert [job.id for job in made] == ["nightly:job-1"]  # job-1 still active
        await core.service.terminate_job("nightly:job-1")
        await minutes(core, 3)
        # Past doNotRunAfter with no active job: completed, no new job.
        schedule = await core.service.get_job_schedule("nightly")
        assert schedule.state is JobScheduleState.COMPLETED
        ids = [job.id for job in await core.service.list_jobs_from_schedule("nightly")]
        assert "nightly:job-3" not in ids


async def test_a_job_not_created_within_the_start_window_is_skipped() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job_schedule(
            schedule_spec(Schedule(recurrence_interval=2 * MINUTE, start_window=MINUTE))
        )
        await minutes(core, 5)  # job-1 stays active: the runs due meanwhile are lost
        await core.service.terminate_job("nightly:job-1")
        await minutes(core, 1)
        assert len(await core.service.list_jobs_from_schedule("nightly")) == 1
        await minutes(core, 2)
        ids = [job.id for job in await core.service.list_jobs_from_schedule("nightly")]
        assert ids == ["nightly:job-1", "nightly:job-2"]


async def test_disable_enable_terminate_and_delete() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job_schedule(schedule_spec(Schedule(recurrence_interval=MINUTE)))
        with pytest.raises(AlreadyExists) as exists:
            await core.service.create_job_schedule(schedule_spec(Schedule()))
        assert exists.value.code == "JobScheduleExists"
        await core.service.disable_job_schedule("nightly")
        await core.service.terminate_job("nightly:job-1")
        await minutes(core, 3)
        assert len(await core.service.list_jobs_from_schedule("nightly")) == 1
        await core.service.enable_job_schedule("nightly")
        await minutes(core, 1)
        assert len(await core.service.list_jobs_from_schedule("nightly")) == 2
        await core.service.terminate_job_schedule("nightly")
        await core.settle()
        job = await core.service.get_job("nightly:job-2")
        assert (job.state, job.terminate_reason) == (JobState.COMPLETED, "TerminateJobSchedule")
        await minutes(core, 1)
        assert (await core.service.get_job_schedule("nightly")).state is JobScheduleState.COMPLETED
        await core.service.delete_job_schedule("nightly")
        await minutes(core, 1)
        with pytest.raises(NotFound) as gone:
            await core.service.get_job_schedule("nightly")
        assert gone.value.code == "JobScheduleNotFound"
        with pytest.raises(NotFound):
            await core.service.get_job("nightly:job-1")
