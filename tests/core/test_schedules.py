"""Job schedules through the endpoint over the fake executor (no engine), azure-batch 15's own
calls, the clock moved through several recurrences. Expected values from the REST API
reference (api-version 2025-06-01): ``BatchJobScheduleConfiguration`` (doNotRunUntil,
doNotRunAfter, startWindow, recurrenceInterval and "at most one active job"),
``JobScheduleState``, ``BatchJobScheduleExecutionInfo``, the error codes of ``BatchErrorCode``
(JobScheduleExists, JobScheduleNotFound, JobScheduleCompleted), 400 for a window or interval
under a minute; the jobs' ids as the service names them (``{scheduleId}:job-{n}``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError

from jobprep_release.backends.base import JobSpec, OnAllTasksComplete
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, MemoryStore
from jobprep_release.backends.schedules import JobScheduleSpec, Schedule
from tests.core.harness import fake_endpoint, running_core
from tests.endpoint.support import call

KEY = base64.b64encode(b"schedules-endpoint-test-key-0123").decode()
IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}
MINUTE = 60.0


@dataclass
class Service:
    batch: BatchClient
    clock: FakeClock

    async def advance(self, seconds: float) -> None:
        """Move the clock, a second at a time past each minute, and let the service act."""
        self.clock.advance(seconds)
        await anyio.sleep(0.05)

    def at(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(self.clock.now() + seconds, UTC)

    async def schedule(self, schedule_id: str) -> models.BatchJobSchedule:
        return await self.batch.get_job_schedule(schedule_id)

    async def job_ids(self, schedule_id: str) -> list[str]:
        return [job.id async for job in self.batch.list_jobs_from_schedule(schedule_id)]

    async def job_state(self, job_id: str) -> str:
        state = (await self.batch.get_job(job_id)).state
        return str(getattr(state, "value", state))


@asynccontextmanager
async def service() -> AsyncIterator[Service]:
    pool = {"id": "pool1", "vmSize": "standard_d2_v2", "virtualMachineConfiguration": IMAGE}
    async with fake_endpoint(KEY, pool) as running:
        yield Service(running.batch, running.clock)


def job_schedule(
    schedule_id: str, *, on_complete: str = "noaction", **schedule: Any
) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "schedule": schedule,
        "jobSpecification": {"poolInfo": {"poolId": "pool1"}, "onAllTasksComplete": on_complete},
    }


async def add(svc: Service, body: dict[str, Any]) -> int:
    return (await call(svc.batch, "POST", "/jobschedules", body=body)).status


async def test_a_recurring_schedule_creates_a_job_each_interval_named_as_the_service() -> None:
    async with service() as svc:
        # Jobs with terminatejob and no tasks complete at once, so every recurrence runs.
        body = job_schedule("every5", on_complete="terminatejob", recurrenceInterval="PT5M")
        assert await add(svc, body) == 201
        start = svc.at(0)
        first = await svc.schedule("every5")
        assert first.state == "active"
        recent = first.execution_info.recent_job
        assert recent is not None and recent.url is not None
        assert recent.id == "every5:job-1"
        assert recent.url.endswith("/jobs/every5:job-1")
        assert first.execution_info.next_run_time == start + timedelta(minutes=5)
        for minute in range(1, 16):
            await svc.advance(MINUTE)
            ids = await svc.job_ids("every5")
            assert len(ids) == 1 + minute // 5, (minute, ids)
        assert await svc.job_ids("every5") == [f"every5:job-{n}" for n in (1, 2, 3, 4)]
        last = await svc.schedule("every5")
        assert last.execution_info.next_run_time == start + timedelta(minutes=20)
        assert await svc.batch.job_schedule_exists("every5")
        missing = await call(svc.batch, "HEAD", "/jobschedules/nosuchschedule")
        assert missing.status == 404


async def test_a_due_job_waits_for_the_active_one_within_its_start_window() -> None:
    async with service() as svc:
        body = job_schedule("wait", recurrenceInterval="PT5M")
        assert await add(svc, body) == 201
        await svc.advance(7 * MINUTE)  # due at 5 min: job-1 is still active
        assert await svc.job_ids("wait") == ["wait:job-1"]
        await call(svc.batch, "POST", "/jobs/wait:job-1/terminate")
        await svc.advance(1)
        # The window of a recurring schedule reaches the next recurrence: created now.
        assert await svc.job_ids("wait") == ["wait:job-1", "wait:job-2"]
        assert (await svc.schedule("wait")).execution_info.next_run_time == svc.at(3 * MINUTE - 1)


async def test_a_due_job_not_created_within_its_start_window_is_lost() -> None:
    async with service() as svc:
        body = job_schedule("lost", recurrenceInterval="PT5M", startWindow="PT1M")
        start = svc.at(0)
        assert await add(svc, body) == 201
        await svc.advance(7 * MINUTE)  # due at 5 min, window to 6 min: lost
        assert (await svc.schedule("lost")).execution_info.next_run_time == start + timedelta(
            minutes=10
        )
        await call(svc.batch, "POST", "/jobs/lost:job-1/terminate")
        await svc.advance(1)
        assert await svc.job_ids("lost") == ["lost:job-1"]
        await svc.advance(3 * MINUTE)  # at 10 min
        assert await svc.job_ids("lost") == ["lost:job-1", "lost:job-2"]


async def test_do_not_run_until_and_after_and_completion() -> None:
    async with service() as svc:
        body = job_schedule(
            "window",
            on_complete="terminatejob",
            doNotRunUntil=svc.at(10 * MINUTE).isoformat(),
            doNotRunAfter=svc.at(21 * MINUTE).isoformat(),
            recurrenceInterval="PT5M",
        )
        assert await add(svc, body) == 201
        waiting = await svc.schedule("window")
        assert waiting.execution_info.next_run_time == svc.at(10 * MINUTE)
        assert waiting.execution_info.recent_job is None
        assert await svc.job_ids("window") == []
        for _ in range(25):
            await svc.advance(MINUTE)
        # Due at 10, 15 and 20 min; none after 21 min; completed once the last job completed.
        assert await svc.job_ids("window") == ["window:job-1", "window:job-2", "window:job-3"]
        done = await svc.schedule("window")
        assert done.state == "completed"
        assert done.execution_info.end_time is not None
        assert done.execution_info.next_run_time is None
        refused = await call(svc.batch, "PATCH", "/jobschedules/window", body={"metadata": []})
        assert (refused.status, refused.json()["code"]) == (409, "JobScheduleCompleted")


async def test_without_a_recurrence_one_job_and_completed_when_it_completes() -> None:
    async with service() as svc:
        assert await add(svc, job_schedule("once")) == 201
        await svc.advance(10 * MINUTE)
        assert await svc.job_ids("once") == ["once:job-1"]
        assert (await svc.schedule("once")).state == "active"
        await call(svc.batch, "POST", "/jobs/once:job-1/terminate")
        await svc.advance(1)
        assert (await svc.schedule("once")).state == "completed"


async def test_disabled_creates_nothing_enable_creates_the_due_job() -> None:
    async with service() as svc:
        body = job_schedule(
            "pause",
            on_complete="terminatejob",
            doNotRunUntil=svc.at(MINUTE).isoformat(),
            recurrenceInterval="PT5M",
        )
        assert await add(svc, body) == 201
        await svc.batch.disable_job_schedule("pause")
        assert (await svc.schedule("pause")).state == "disabled"
        assert (
            await add(svc, job_schedule("other", doNotRunUntil=svc.at(MINUTE).isoformat())) == 201
        )
        every = sorted([found.id async for found in svc.batch.list_job_schedules()])
        assert every == ["other", "pause"]
        listed = svc.batch.list_job_schedules(filter="state eq 'disabled'")
        assert [found.id async for found in listed] == ["pause"]
        await svc.advance(2 * MINUTE)
        assert await svc.job_ids("pause") == []
        await svc.batch.enable_job_schedule("pause")
        enabled = await svc.schedule("pause")
        assert (enabled.state, enabled.previous_state) == ("active", "disabled")
        assert await svc.job_ids("pause") == ["pause:job-1"]


async def test_terminate_ends_the_active_job_then_completes() -> None:
    async with service() as svc:
        assert await add(svc, job_schedule("stop", recurrenceInterval="PT5M")) == 201
        answer = await call(svc.batch, "POST", "/jobschedules/stop/terminate")
        assert answer.status == 202
        await svc.advance(1)
        assert await svc.job_state("stop:job-1") == "completed"
        stopped = await svc.schedule("stop")
        assert stopped.state == "completed"
        assert stopped.execution_info.end_time is not None
        await svc.advance(10 * MINUTE)
        assert await svc.job_ids("stop") == ["stop:job-1"]


async def test_delete_removes_the_schedule_and_its_jobs() -> None:
    async with service() as svc:
        assert await add(svc, job_schedule("gone", recurrenceInterval="PT5M")) == 201
        answer = await call(svc.batch, "DELETE", "/jobschedules/gone")
        assert answer.status == 202
        with anyio.fail_after(10):
            while (await call(svc.batch, "HEAD", "/jobschedules/gone")).status == 200:
                await svc.advance(1)
        missing = await call(svc.batch, "GET", "/jobschedules/gone")
        assert (missing.status, missing.json()["code"]) == (404, "JobScheduleNotFound")
        job = await call(svc.batch, "GET", "/jobs/gone:job-1")
        assert (job.status, job.json()["code"]) == (404, "JobNotFound")


async def test_update_keeps_what_is_not_given_and_replace_removes_it() -> None:
    async with service() as svc:
        body = job_schedule("change", recurrenceInterval="PT5M")
        body["metadata"] = [{"name": "owner", "value": "a"}]
        assert await add(svc, body) == 201
        await svc.batch.update_job_schedule(
            "change",
            models.BatchJobScheduleUpdateOptions(
                metadata=[models.BatchMetadataItem(name="owner", value="b")]
            ),
        )
        updated = await svc.schedule("change")
        assert [(m.name, m.value) for m in updated.metadata or []] == [("owner", "b")]
        assert updated.schedule is not None
        assert updated.schedule.recurrence_interval == timedelta(minutes=5)
        replaced = await call(
            svc.batch,
            "PUT",
            "/jobschedules/change",
            body={
                "schedule": {"recurrenceInterval": "PT10M"},
                "jobSpecification": {"poolInfo": {"poolId": "pool1"}},
            },
        )
        assert replaced.status == 200
        renamed = await call(svc.batch, "PATCH", "/jobschedules/change", body={"displayName": "x"})
        assert (renamed.status, renamed.json()["code"]) == (400, "PropertyCannotBeUpdated")
        now = await svc.schedule("change")
        assert not now.metadata
        assert now.schedule is not None
        assert now.schedule.recurrence_interval == timedelta(minutes=10)


async def test_the_service_refusals() -> None:
    async with service() as svc:
        assert await add(svc, job_schedule("dup")) == 201
        again = await call(svc.batch, "POST", "/jobschedules", body=job_schedule("dup"))
        assert (again.status, again.json()["code"]) == (409, "JobScheduleExists")
        # The service's sentence, as for pools, jobs and tasks, with no detail values.
        assert again.json()["message"]["value"].startswith(
            "The specified job schedule already exists.\nRequestId:"
        )
        assert "values" not in again.json()
        missing = await call(svc.batch, "GET", "/jobschedules/nosuch")
        assert (missing.status, missing.json()["code"]) == (404, "JobScheduleNotFound")
        assert missing.json()["message"]["value"].startswith(
            "The specified job schedule does not exist.\nRequestId:"
        )
        assert "values" not in missing.json()
        for name in ("startWindow", "recurrenceInterval"):
            short = await call(
                svc.batch, "POST", "/jobschedules", body=job_schedule("short", **{name: "PT30S"})
            )
            assert short.status == 400, short.body
            values = {v["key"]: v["value"] for v in short.json()["values"]}
            assert values["PropertyName"] == f"schedule.{name}"
        manager = job_schedule("manager")
        manager["jobSpecification"]["jobManagerTask"] = {"id": "m", "commandLine": "m"}
        refused = await call(svc.batch, "POST", "/jobschedules", body=manager)
        assert (refused.status, refused.json()["code"]) == (501, "NotSupported")
        try:
            await svc.batch.get_job_schedule("nosuch")
        except HttpResponseError as error:
            assert error.status_code == 404
        else:
            raise AssertionError("a missing schedule was found")
        stats = await call(svc.batch, "GET", "/jobschedules/dup", params={"$expand": "stats"})
        assert stats.status == 501


async def test_conditional_headers_on_a_schedule() -> None:
    """The operations take If-Match and the others (REST: BatchJobScheduleHeaders), against
    the schedule's ETag: 412 ConditionNotMet for a write, 304 for a read."""
    async with service() as svc:
        assert await add(svc, job_schedule("cond", recurrenceInterval="PT5M")) == 201
        etag = (await svc.schedule("cond")).etag
        assert etag is not None
        stale = await call(
            svc.batch, "POST", "/jobschedules/cond/disable", headers={"If-Match": '"0x8D0"'}
        )
        assert (stale.status, stale.json()["code"]) == (412, "ConditionNotMet")
        same = await call(svc.batch, "GET", "/jobschedules/cond", headers={"If-None-Match": etag})
        assert same.status == 304
        fresh = await call(
            svc.batch, "POST", "/jobschedules/cond/disable", headers={"If-Match": etag}
        )
        assert fresh.status == 204
        assert (await svc.schedule("cond")).etag != etag


async def test_a_schedule_carries_on_after_the_service_restarts() -> None:
    """The schedule, its due time and its job count are the service's state: a new service on
    the same store creates the next recurrence's job, numbered after the last."""
    fake = FakeExecutor(FakeClock())
    store = MemoryStore()
    spec = JobScheduleSpec(
        id="kept",
        job_specification=JobSpec(
            id="", pool_id="pool", on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB
        ),
        schedule=Schedule(recurrence_interval=timedelta(minutes=5)),
    )
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_job_schedule(spec)
        await core.settle()
        assert [job.id for job in await core.service.list_schedule_jobs("kept")] == ["kept:job-1"]
    async with running_core(fake=fake, store=store) as core:
        await core.advance(5 * MINUTE)
        ids = [job.id for job in await core.service.list_schedule_jobs("kept")]
        assert ids == ["kept:job-1", "kept:job-2"]
        found = await core.service.get_job_schedule("kept")
        assert found.recent_job_id == "kept:job-2"


def auto_pool_schedule(schedule_id: str, lifetime: str) -> dict[str, Any]:
    body = job_schedule(schedule_id, on_complete="terminatejob", recurrenceInterval="PT5M")
    body["jobSpecification"]["poolInfo"] = {
        "autoPoolSpecification": {
            "autoPoolIdPrefix": "sched",
            "poolLifetimeOption": lifetime,
            "pool": {"vmSize": "standard_d2_v2", "virtualMachineConfiguration": IMAGE},
        }
    }
    return body


async def pools_of(svc: Service, schedule_id: str) -> list[str]:
    found = []
    for job_id in await svc.job_ids(schedule_id):
        job = await svc.batch.get_job(job_id)
        assert job.execution_info is not None
        found.append(str(job.execution_info.pool_id))
    return found


async def pool_ids(svc: Service) -> set[str]:
    return {str(pool.id) async for pool in svc.batch.list_pools()} - {"pool1"}


async def test_an_auto_pool_for_the_schedule_lives_as_long_as_it() -> None:
    """BatchPoolLifetimeOption jobschedule: the pool is made with the schedule's first job,
    its jobs all run there, and it goes when the schedule ends."""
    async with service() as svc:
        assert await add(svc, auto_pool_schedule("shared", "jobschedule")) == 201
        await svc.advance(5 * MINUTE)
        pools = await pools_of(svc, "shared")
        assert len(pools) == 2 and pools[0] == pools[1] and pools[0].startswith("sched_")
        assert await pool_ids(svc) == {pools[0]}
        assert (await call(svc.batch, "POST", "/jobschedules/shared/terminate")).status == 202
        with anyio.fail_after(10):
            while await pool_ids(svc):
                await svc.advance(1)


async def test_an_auto_pool_per_job_goes_with_its_job() -> None:
    """BatchPoolLifetimeOption job on a schedule: a new auto pool for every job it creates,
    deleted when that job completes."""
    async with service() as svc:
        assert await add(svc, auto_pool_schedule("each", "job")) == 201
        await svc.advance(5 * MINUTE)
        pools = await pools_of(svc, "each")
        assert len(set(pools)) == 2 and all(p.startswith("sched_") for p in pools)
        with anyio.fail_after(10):
            while await pool_ids(svc):
                await svc.advance(1)
