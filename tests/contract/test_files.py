"""Node files: reads stay inside the node's root, whatever links a task leaves behind."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import TaskSpec
from jobprep_release.backends.errors import InvalidRequest, NotFound
from tests.contract.harness import BackendOpener, pool

LINKS = (
    'ln -s /etc "$AZ_BATCH_NODE_SHARED_DIR/out"; '
    'echo fine > "$AZ_BATCH_NODE_SHARED_DIR/real"; '
    'mkdir "$AZ_BATCH_NODE_SHARED_DIR/dir"; ln -s ../real "$AZ_BATCH_NODE_SHARED_DIR/dir/in"'
)


async def test_symbolic_links_cannot_lead_a_read_out_of_the_node(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("links", f"/bin/bash -c '{LINKS}'")])
        assert (await batch.tasks_settled(job))["links"].execution_info.exit_code == 0
        node = batch.node_ids[0]
        with pytest.raises((InvalidRequest, NotFound)):
            await batch.backend.read_node_file(batch.pool_id, node, "shared/out/passwd")
        for path in ("../etc/passwd", "/etc/passwd"):
            with pytest.raises(InvalidRequest):
                await batch.backend.read_node_file(batch.pool_id, node, path)
        assert await batch.shared_file(node, "real") == "fine\n"
