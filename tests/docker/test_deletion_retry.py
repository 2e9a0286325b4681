"""A pool deletion the engine refuses is retried while the service runs, on a real engine: a
container of the test's own keeps the node's volume in use, so the engine refuses to remove the
volume (409, "volume is in use"); the pool stays ``deleting``, and once the volume is free the
next retry (`deletions.FIRST_RETRY` seconds later) removes everything."""

from __future__ import annotations

from pathlib import Path

import anyio
import docker
import pytest

from jobprep_release.backends.base import NodeState, PoolSpec, PoolState
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.docker.core.deletions import FIRST_RETRY
from jobprep_release.backends.errors import BackendError, NotFound
from tests.conftest import POOL_LABEL, Ids, labelled

IMAGE = "debian:bookworm-slim"


async def test_a_refused_pool_deletion_is_retried_until_it_succeeds(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await backend.create_pool(PoolSpec(id=ids.pool, target_dedicated_nodes=1))
        with anyio.fail_after(60):
            while [n.state for n in await backend.list_nodes(ids.pool)] != [NodeState.IDLE]:
                await anyio.sleep(0.2)
        (volume,) = docker_client.volumes.list(filters={"label": f"{POOL_LABEL}={ids.pool}"})
        blocker = docker_client.containers.run(
            IMAGE,
            ["sleep", "600"],
            detach=True,
            volumes={volume.name: {"bind": "/held", "mode": "rw"}},
            labels={POOL_LABEL: ids.pool, "jobprep_release.test": "deletion-retry"},
        )
        try:
            with pytest.raises(BackendError):
                await backend.delete_pool(ids.pool)
            assert (await backend.get_pool(ids.pool)).state is PoolState.DELETING
        finally:
            blocker.remove(force=True)
        with anyio.fail_after(FIRST_RETRY + 30):
            while True:
                try:
                    await backend.get_pool(ids.pool)
                except NotFound:
                    break
                await anyio.sleep(0.2)
        assert labelled(docker_client, ids.pool) == (0, 0)
