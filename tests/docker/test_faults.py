"""Faults survived on a real engine: a node killed mid-task, a flood of output."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import docker

from backends.base import JobPreparationTaskSpec, JobSpec, NodeState, PoolSpec, TaskSpec, TaskState
from backends.docker import DockerBackend, DockerSettings
from tests.conftest import POOL_LABEL, Ids
from tests.docker.helpers import only, wait_for_tasks


@asynccontextmanager
async def one_node(ids: Ids, state_dir: Path) -> AsyncIterator[DockerBackend]:
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await backend.create_pool(PoolSpec(id=ids.pool, target_dedicated_nodes=1))
        prep = JobPreparationTaskSpec("/bin/true")
        await backend.create_job(JobSpec(id=ids.job, pool_id=ids.pool, preparation=prep))
        try:
            yield backend
        finally:
            await backend.delete_job(ids.job)
            await backend.delete_pool(ids.pool)


async def until_running(backend: DockerBackend, ids: Ids, task_id: str) -> None:
    with anyio.fail_after(60):
        while (await backend.get_task(ids.job, task_id)).state is not TaskState.RUNNING:
            await anyio.sleep(0.05)
    await anyio.sleep(0.3)


async def test_a_killed_node_requeues_its_task_which_completes_after_recovery(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with one_node(ids, state_dir) as backend:
        await backend.add_tasks(ids.job, [TaskSpec("slow", "/bin/bash -c 'sleep 2'")])
        await until_running(backend, ids, "slow")
        (node,) = docker_client.containers.list(filters={"label": f"{POOL_LABEL}={ids.pool}"})
        node.kill()
        with anyio.fail_after(30):
            while (await backend.list_nodes(ids.pool))[0].state is not NodeState.UNUSABLE:
                await anyio.sleep(0.02)
        task = only(await wait_for_tasks(backend, ids.job), "slow")
        assert task.execution_info.exit_code == 0
        assert task.execution_info.requeue_count >= 1
        assert (await backend.list_nodes(ids.pool))[0].state is NodeState.IDLE


async def test_a_flood_of_output_goes_to_its_file_not_the_app_s_memory(
    ids: Ids, state_dir: Path
) -> None:
    async with one_node(ids, state_dir) as backend:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        flood = "/bin/bash -c 'head -c 300000000 /dev/zero; echo tail >&2'"
        await backend.add_tasks(ids.job, [TaskSpec("flood", flood)])
        task = only(await wait_for_tasks(backend, ids.job), "flood")
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert task.execution_info.exit_code == 0
        assert task.node_id is not None
        stderr = f"workitems/{ids.job}/job-1/flood/stderr.txt"
        assert await backend.read_node_file(ids.pool, task.node_id, stderr) == b"tail\n"
        assert grown_kib < 50 * 1024
