"""A child process for `test_scale`: a pool of `NODES` nodes under a file descriptor limit that
leaves room for `NODES - 2` of them.

``python -m tests.docker.capacity_child POOL`` (the state directory from
``JOBPREP_RELEASE_STATE_DIR``) prints the pool's node states, sorted, once none is settling,
then deletes the pool.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import anyio

from jobprep_release.backends.base import NodeState, PoolSpec
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.docker.node.executor import RESERVED_DESCRIPTORS

NODES = 6
ROOM = NODES - 2


async def main(pool_id: str) -> None:
    state_dir = Path(os.environ["JOBPREP_RELEASE_STATE_DIR"])
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await backend.create_pool(
            PoolSpec(id=pool_id, vm_size="standard_d1_v2", target_dedicated_nodes=NODES)
        )
        settled = {NodeState.IDLE, NodeState.UNUSABLE}
        with anyio.fail_after(120):
            while True:
                nodes = await backend.list_nodes(pool_id)
                if len(nodes) == NODES and {n.state for n in nodes} <= settled:
                    break
                await anyio.sleep(0.2)
        print(" ".join(sorted(n.state.value for n in nodes)), flush=True)
        await backend.delete_pool(pool_id)


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (RESERVED_DESCRIPTORS + ROOM, hard))
    anyio.run(main, sys.argv[1])
