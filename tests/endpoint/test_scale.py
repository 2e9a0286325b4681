"""The local endpoint holds 200 nodes across four pools on a real engine, every node runs a
task, and the endpoint's process stays within its fixed resources: worker threads (docker-py's
calls at most `ENGINE_THREADS` at once, anyio's pool never grown) and file descriptors (one
socket per node's agent link, far under the process's limit)."""

from __future__ import annotations

import resource
import threading
import time
import uuid
from pathlib import Path

import anyio
import docker
import pytest

from jobprep_release.backends.base import BatchBackend, JobSpec, NodeState, PoolSpec, TaskSpec
from jobprep_release.backends.docker.node.engine import ENGINE_THREADS
from tests.conftest import gone, remove_labelled
from tests.endpoint.harness import azure_on_endpoint

POOLS = 4
NODES = 50
"""Per pool: 200 in all (a local pool holds at most 64)."""
ANYIO_THREADS = 40
"""anyio's default worker threads: the endpoint never needs more."""


def _open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


async def _delete(backend: BatchBackend, pool: str) -> None:
    await backend.delete_job(f"{pool}-job")
    await backend.delete_pool(pool)


@pytest.mark.slow
async def test_the_endpoint_holds_200_nodes_across_four_pools(
    state_dir: Path, docker_client: docker.DockerClient
) -> None:
    suffix = uuid.uuid4().hex[:8]
    pools = [f"TestPool-{suffix}-{n}" for n in range(POOLS)]
    started = time.monotonic()
    descriptors_before, threads_before = _open_descriptors(), threading.active_count()
    peak_descriptors = peak_threads = 0
    try:
        async with azure_on_endpoint(state_dir) as backend:
            for pool in pools:
                spec = PoolSpec(id=pool, vm_size="standard_d1_v2", target_dedicated_nodes=NODES)
                await backend.create_pool(spec)
            with anyio.fail_after(600):
                while True:
                    states = [n.state for p in pools for n in await backend.list_nodes(p)]
                    peak_descriptors = max(peak_descriptors, _open_descriptors())
                    peak_threads = max(peak_threads, threading.active_count())
                    if len(states) == POOLS * NODES and set(states) == {NodeState.IDLE}:
                        break
                    await anyio.sleep(1)
            up = time.monotonic() - started
            for pool in pools:
                job = f"{pool}-job"
                await backend.create_job(JobSpec(id=job, pool_id=pool))
                work = [TaskSpec(id=f"task{n:03}", command_line="/bin/true") for n in range(NODES)]
                for first in range(0, NODES, 100):
                    await backend.add_tasks(job, work[first : first + 100])
            with anyio.fail_after(600):
                for pool in pools:
                    job = f"{pool}-job"
                    while (counts := await backend.get_task_counts(job)).completed < NODES:
                        peak_descriptors = max(peak_descriptors, _open_descriptors())
                        peak_threads = max(peak_threads, threading.active_count())
                        await anyio.sleep(0.5)
                    assert counts.failed == 0, counts
            ran = time.monotonic() - started - up
            # Deleted inside the endpoint, waited for: a deletion left running would stop
            # with the endpoint.
            async with anyio.create_task_group() as group:
                for pool in pools:
                    group.start_soon(_delete, backend, pool)
            removed = time.monotonic() - started - up - ran
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(
            f"{POOLS * NODES} nodes up in {up:.0f} s, {POOLS * NODES} tasks in {ran:.0f} s, "
            f"removed in {removed:.0f} s; "
            f"descriptors {descriptors_before} -> peak {peak_descriptors} (limit {soft}); "
            f"threads {threads_before} -> peak {peak_threads}"
        )
        # One agent link a node, plus the engine's connections and the endpoint's own.
        assert peak_descriptors - descriptors_before <= POOLS * NODES + 3 * ENGINE_THREADS + 50
        assert peak_threads - threads_before <= ENGINE_THREADS + ANYIO_THREADS
        for pool in pools:
            assert gone(docker_client, pool, limit=30), f"{pool} left behind"
    finally:
        for pool in pools:
            remove_labelled(docker_client, pool)
