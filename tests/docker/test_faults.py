"""Faults survived on a real engine: a node killed mid-task, a flood of output, an engine
restart in the middle of a run."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import docker
import pytest
import requests.exceptions

from jobprep_release.backends.base import (
    JobPreparationTaskSpec,
    JobSpec,
    NodeState,
    PoolSpec,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from tests.conftest import POOL_LABEL, Ids
from tests.docker.helpers import only, wait_for_tasks

DOCKERD_PID = Path("/run/jobprep-dockerd.pid")


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


def _engine_up(client: docker.DockerClient) -> bool:
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False


def _restart_engine(client: docker.DockerClient) -> None:
    pid = int(DOCKERD_PID.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    log = Path("/var/log/jobprep-dockerd.log").open("a")  # noqa: SIM115
    process = subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    DOCKERD_PID.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 60
    while not _engine_up(client) and time.monotonic() < deadline:
        time.sleep(0.2)


def _engine_we_started() -> bool:
    try:
        os.kill(int(DOCKERD_PID.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.mark.skipif(
    not _engine_we_started(),
    reason="restarts the engine only when scripts/ensure-docker.sh started it",
)
async def test_an_engine_restart_mid_run_is_survived_and_reconciled(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    settings = DockerSettings(state_dir=state_dir)
    async with DockerBackend(settings) as backend:
        await backend.create_pool(PoolSpec(id=ids.pool, target_dedicated_nodes=1))
        await backend.create_job(JobSpec(id=ids.job, pool_id=ids.pool))
        await backend.add_tasks(ids.job, [TaskSpec("across", "/bin/bash -c 'sleep 3'")])
        await until_running(backend, ids, "across")
        await anyio.to_thread.run_sync(_restart_engine, docker_client)
        finished = only(await wait_for_tasks(backend, ids.job, limit=180), "across")
        assert finished.execution_info.exit_code == 0
        assert finished.execution_info.requeue_count >= 1
    # The next run reconciles from the same state: one task, its execution info intact.
    async with DockerBackend(settings) as again:
        (task,) = await again.list_tasks(ids.job)
        assert task == finished
        await again.delete_job(ids.job)
        await again.delete_pool(ids.pool)
