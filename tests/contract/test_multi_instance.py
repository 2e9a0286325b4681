"""A multi-instance task on the real engine, through the endpoint (the backend interface does not
express it): two node containers each run the coordination command, then the primary runs the
command line; the variables are the service's (REST ``MultiInstanceSettings``; the article "Use
multi-instance tasks to run MPI applications in Batch": ``AZ_BATCH_HOST_LIST`` the nodes'
addresses joined by commas, ``AZ_BATCH_MASTER_NODE`` the primary's address and port,
``AZ_BATCH_IS_CURRENT_NODE_MASTER``), and List Subtasks gives the subtask on the other node.
The nodes' addresses come from the engine (``docker inspect`` of each node container)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import docker
from azure.batch import models

from tests.conftest import Ids
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import linux_pool, wait_until

LIMIT = 180.0
SHARED = "$AZ_BATCH_NODE_SHARED_DIR/coord.txt"


def engine_address(client: docker.DockerClient, node_id: str) -> str:
    (container,) = client.containers.list(
        all=True, filters={"label": f"jobprep_release.node={node_id}"}
    )
    networks = container.attrs["NetworkSettings"]["Networks"]
    return str(next(net["IPAddress"] for net in networks.values() if net.get("IPAddress")))


async def _read(stream: AsyncIterator[bytes]) -> str:
    return b"".join([chunk async for chunk in stream]).decode()


async def test_a_multi_instance_task_coordinates_two_nodes(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        await client.create_pool(linux_pool(ids.pool, nodes=2))
        try:
            await client.create_job(
                models.BatchJobCreateOptions(
                    id=ids.job, pool_info=models.BatchPoolInfo(pool_id=ids.pool)
                )
            )
            settings = models.MultiInstanceSettings(
                number_of_instances=2,
                coordination_command_line=(
                    "/bin/bash -c 'echo $AZ_BATCH_IS_CURRENT_NODE_MASTER $AZ_BATCH_HOST_LIST"
                    f" > {SHARED}'"
                ),
            )
            await client.create_task(
                ids.job,
                models.BatchTaskCreateOptions(
                    id="mpi",
                    command_line=f"/bin/bash -c 'echo $AZ_BATCH_MASTER_NODE; cat {SHARED}'",
                    multi_instance_settings=settings,
                ),
            )

            async def done() -> bool:
                task = await client.get_task(ids.job, "mpi")
                return task.state == models.BatchTaskState.COMPLETED

            await wait_until(done, limit=LIMIT, every=0.5)
            task = await client.get_task(ids.job, "mpi")
            assert task.execution_info is not None and task.execution_info.exit_code == 0
            assert task.node_info is not None and task.node_info.node_id is not None
            primary = task.node_info.node_id
            (subtask,) = [item async for item in client.list_subtasks(ids.job, "mpi")]
            assert subtask.id == 1 and subtask.exit_code == 0
            assert subtask.state == models.BatchSubtaskState.COMPLETED
            assert subtask.node_info is not None and subtask.node_info.node_id is not None
            other = subtask.node_info.node_id
            assert other != primary
            hosts = (
                f"{engine_address(docker_client, primary)},{engine_address(docker_client, other)}"
            )
            master = f"{engine_address(docker_client, primary)}:6000"
            stdout = await _read(await client.download_task_file(ids.job, "mpi", "stdout.txt"))
            assert stdout == f"{master}\ntrue {hosts}\n"
            on_other = await _read(
                await client.download_node_file(ids.pool, other, "shared/coord.txt")
            )
            assert on_other == f"false {hosts}\n"
        finally:
            await (await client.begin_delete_job(ids.job)).result()
            await (await client.begin_delete_pool(ids.pool)).result()
