"""Auto pools on every backend (the docker backend, and the azure backend through the local
endpoint): a job made with ``poolInfo.autoPoolSpecification`` gets a pool of its own, its tasks
run there, and the pool goes when the job completes (REST Add Job; BatchAutoPoolSpecification
with ``poolLifetimeOption`` job, ``keepAlive`` false)."""

from __future__ import annotations

import contextlib
import re
import uuid

import anyio

from jobprep_release.backends.base import (
    AutoPoolSpec,
    BatchBackend,
    JobSpec,
    JobState,
    PoolSpec,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.errors import NotFound
from tests.contract.harness import WAIT_LIMIT, BackendOpener, Batch

GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"


async def _exists(backend: BatchBackend, pool_id: str) -> bool:
    try:
        await backend.get_pool(pool_id)
    except NotFound:
        return False
    return True


async def test_a_job_with_an_auto_pool(open_backend: BackendOpener) -> None:
    job_id = f"Contract-{uuid.uuid4().hex[:8]}-auto"
    auto = AutoPoolSpec(pool=PoolSpec(id="", target_dedicated_nodes=1), id_prefix="contract")
    async with open_backend() as backend:
        await backend.create_job(JobSpec(id=job_id, pool_id="", auto_pool=auto))
        pool_id = (await backend.get_job(job_id)).pool_id
        try:
            assert re.fullmatch(f"contract_{GUID}", pool_id), pool_id
            batch = Batch(backend=backend, pool_id=pool_id, node_ids=[])
            (node_id,) = await batch.nodes_idle(limit=WAIT_LIMIT * 5)
            await backend.add_tasks(job_id, [TaskSpec("t1", "/bin/true")])
            task = (await batch.tasks_settled(job_id))["t1"]
            assert (task.state, task.node_id) == (TaskState.COMPLETED, node_id)
            await backend.terminate_job(job_id)
            await batch.job_in(job_id, JobState.COMPLETED)
            with anyio.fail_after(WAIT_LIMIT):
                while await _exists(backend, pool_id):
                    await anyio.sleep(backend.poll_interval)
        finally:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(NotFound):
                    await backend.delete_job(job_id)
                with contextlib.suppress(NotFound):
                    await backend.delete_pool(pool_id)
