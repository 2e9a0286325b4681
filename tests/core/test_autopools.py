"""Auto pools on the core over the fake executor: the pool made with the job (its id the
service's form: an upper-case GUID after the prefix and ``_``, as recorded), the job's tasks run
there, and it goes when the job completes or is deleted, unless ``keepAlive`` (REST Add Job,
poolInfo.autoPoolSpecification)."""

from __future__ import annotations

import re

import pytest

from jobprep_release.backends.base import (
    AutoPoolSpec,
    JobSpec,
    JobState,
    PoolLifetimeOption,
    PoolSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, MemoryStore
from jobprep_release.backends.docker.core.autoscaling import FIRST_EVALUATION_DELAY
from jobprep_release.backends.errors import AlreadyExists, NotSupported
from tests.core.harness import JOB, Core, running_core, tasks

GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"


def auto_job(prefix: str | None = "auto", **options: object) -> JobSpec:
    pool = PoolSpec(id="", target_dedicated_nodes=2, image="fake")
    auto = AutoPoolSpec(pool=pool, id_prefix=prefix, **options)  # type: ignore[arg-type]
    return JobSpec(id=JOB, pool_id="", auto_pool=auto)


async def pool_ids(core: Core) -> list[str]:
    return [pool.id for pool in await core.service.list_pools()]


async def test_the_pool_is_made_with_the_job_runs_its_tasks_and_goes_with_it() -> None:
    async with running_core() as core:
        await core.service.create_job(auto_job())
        job = await core.service.get_job(JOB)
        assert re.fullmatch(f"auto_{GUID}", job.pool_id), job.pool_id
        assert await pool_ids(core) == [job.pool_id]
        await core.settle()
        await core.service.add_tasks(JOB, tasks(2))
        await core.advance(5)
        ran = [await core.task(task) for task in ("task001", "task002")]
        assert all(task.state is TaskState.COMPLETED for task in ran)
        assert {task.node_id for task in ran} <= set(await core.node_ids(job.pool_id))
        await core.service.terminate_job(JOB)
        await core.advance(1)
        assert (await core.service.get_job(JOB)).state is JobState.COMPLETED
        assert await pool_ids(core) == []


async def test_without_a_prefix_the_id_is_a_guid_and_deleting_the_job_deletes_the_pool() -> None:
    async with running_core() as core:
        await core.service.create_job(auto_job(prefix=None))
        pool_id = (await core.service.get_job(JOB)).pool_id
        assert re.fullmatch(GUID, pool_id), pool_id
        await core.settle()
        await core.service.delete_job(JOB)
        await core.settle()
        assert await pool_ids(core) == []


async def test_keep_alive_keeps_the_pool() -> None:
    async with running_core() as core:
        await core.service.create_job(auto_job(keep_alive=True))
        pool_id = (await core.service.get_job(JOB)).pool_id
        await core.settle()
        await core.service.terminate_job(JOB)
        await core.advance(1)
        assert (await core.service.get_job(JOB)).state is JobState.COMPLETED
        assert await pool_ids(core) == [pool_id]


async def test_what_is_refused_creates_no_pool() -> None:
    async with running_core() as core:
        with pytest.raises(NotSupported) as schedule:
            await core.service.create_job(auto_job(lifetime=PoolLifetimeOption.JOB_SCHEDULE))
        assert "jobschedule" in str(schedule.value)
        await core.service.create_job(auto_job())
        with pytest.raises(AlreadyExists) as exists:
            await core.service.create_job(auto_job())
        assert exists.value.code == "JobExists"
        assert len(await pool_ids(core)) == 1


async def test_a_restarted_core_still_deletes_the_pool_with_its_job() -> None:
    fake = FakeExecutor(FakeClock())
    store = MemoryStore()
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_job(auto_job())
        await core.settle()
    async with running_core(fake=fake, store=store) as core:
        assert len(await pool_ids(core)) == 1
        await core.service.terminate_job(JOB)
        await core.advance(1)
        assert await pool_ids(core) == []


async def test_an_auto_pool_can_autoscale() -> None:
    pool = PoolSpec(
        id="",
        image="fake",
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 2",
    )
    async with running_core() as core:
        await core.service.create_job(
            JobSpec(id=JOB, pool_id="", auto_pool=AutoPoolSpec(pool=pool))
        )
        pool_id = (await core.service.get_job(JOB)).pool_id
        await core.advance(FIRST_EVALUATION_DELAY)
        scaled = await core.service.get_pool(pool_id)
        assert scaled.target_dedicated_nodes == 2
        assert scaled.auto_scale_run is not None
