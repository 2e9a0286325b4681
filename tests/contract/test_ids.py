"""Ids: Batch's rules, case-insensitive uniqueness, reserved and duplicate task ids."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import JobSpec, PoolSpec, TaskSpec
from jobprep_release.backends.errors import AlreadyExists, InvalidRequest
from tests.contract.harness import BackendOpener, pool


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "dot.ted", "slash/ed", "ünï"])
async def test_invalid_ids_are_refused(open_backend: BackendOpener, bad: str) -> None:
    async with open_backend() as backend:
        with pytest.raises(InvalidRequest):
            await backend.create_pool(PoolSpec(id=bad))
        with pytest.raises(InvalidRequest):
            await backend.create_job(JobSpec(id=bad, pool_id="any"))


async def test_ids_are_unique_without_regard_to_case(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        with pytest.raises(AlreadyExists) as pool_exists:
            await batch.backend.create_pool(PoolSpec(id=batch.pool_id.upper()))
        assert pool_exists.value.code == "PoolExists"
        job = await batch.create_job("/bin/true", "/bin/true")
        with pytest.raises(AlreadyExists) as job_exists:
            await batch.backend.create_job(JobSpec(id=job.upper(), pool_id=batch.pool_id))
        assert job_exists.value.code == "JobExists"
        await batch.backend.add_tasks(job, [TaskSpec("Task-1", "/bin/true")])
        with pytest.raises(AlreadyExists) as task_exists:
            await batch.backend.add_tasks(job, [TaskSpec("task-1", "/bin/true")])
        assert task_exists.value.code == "TaskExists"


async def test_reserved_and_duplicate_task_ids(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job("/bin/true", "/bin/true")
        with pytest.raises(InvalidRequest) as prep:
            await batch.backend.add_tasks(job, [TaskSpec("JobPreparation", "/bin/true")])
        assert prep.value.code == "TaskIdSameAsJobPreparationTask"
        with pytest.raises(InvalidRequest) as release:
            await batch.backend.add_tasks(job, [TaskSpec("jobrelease", "/bin/true")])
        assert release.value.code == "TaskIdSameAsJobReleaseTask"
        with pytest.raises(InvalidRequest):
            await batch.backend.add_tasks(
                job, [TaskSpec("a", "/bin/true"), TaskSpec("A", "/bin/true")]
            )
        assert await batch.backend.list_tasks(job) == []
