"""Pool sizes and node administration on every backend, with the values of the REST reference:
``allocationState`` ``resizing`` after Add Pool until the nodes exist, then ``steady``; Resize
Pool refused with 409 ``PoolBeingResized`` meanwhile; Stop Pool Resize (``ResizeStopped`` in
``resizeErrors``, the nodes the pool has kept); Remove Nodes with ``requeue``, ``terminate`` and
``taskcompletion``; Disable/Enable Node Scheduling (``offline``, ``schedulingState``); List Pool
Node Counts; spot/low-priority nodes and their preemption (``preempted``, tasks requeued)."""

from __future__ import annotations

import random
import uuid

import anyio
import pytest
from azure.core.rest import HttpRequest

from jobprep_release.backends.administration import NodeAdministration
from jobprep_release.backends.base import (
    AllocationState,
    BatchBackend,
    ComputeNode,
    DisableSchedulingOption,
    ExecutionResult,
    InboundNatPool,
    NodeDeallocationOption,
    NodeState,
    Pool,
    PoolSpec,
    SchedulingState,
    Task,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.errors import Conflict
from tests.contract.harness import WAIT_LIMIT, BackendOpener, Batch, pool

LONG = "/bin/bash -c 'sleep 600'"
SHORT = "/bin/bash -c 'sleep 4'"


def admin(backend: BatchBackend) -> NodeAdministration:
    assert isinstance(backend, NodeAdministration), type(backend)
    return backend


async def steady(backend: BatchBackend, pool_id: str, limit: float = WAIT_LIMIT) -> Pool:
    with anyio.fail_after(limit):
        while (found := await backend.get_pool(pool_id)).allocation_state not in (
            AllocationState.STEADY,
        ):
            await anyio.sleep(backend.poll_interval)
    return found


async def node_in(batch: Batch, node_id: str, *states: NodeState) -> ComputeNode:
    with anyio.fail_after(WAIT_LIMIT):
        while (node := await admin(batch.backend).get_node(batch.pool_id, node_id)).state not in (
            states
        ):
            await anyio.sleep(batch.backend.poll_interval)
    return node


async def running_task(batch: Batch, command: str) -> tuple[str, Task]:
    """A job with task ``t`` running `command`; (job id, the task once running)."""
    job = await batch.create_job()
    await batch.backend.add_tasks(job, [TaskSpec("t", command)])
    return job, await batch.task_in(job, "t", TaskState.RUNNING)


async def test_a_new_pool_is_resizing_until_its_nodes_exist_and_refuses_a_resize(
    open_backend: BackendOpener,
) -> None:
    pool_id = f"Contract-{uuid.uuid4().hex[:8]}"
    async with open_backend() as backend:
        await backend.create_pool(PoolSpec(id=pool_id, target_dedicated_nodes=4))
        try:
            # At once, while the containers are being made (the refusal says the pool was
            # resizing; the core's tests read the state itself on a clock that waits).
            with pytest.raises(Conflict) as refused:
                await admin(backend).set_pool_targets(pool_id, 1)
            assert refused.value.code == "PoolBeingResized"
            created = await backend.get_pool(pool_id)
            done = await steady(backend, pool_id, limit=WAIT_LIMIT * 5)
            assert (done.target_dedicated_nodes, done.current_dedicated_nodes) == (4, 4)
            assert done.resize_errors == ()
            assert created.creation_time is not None
            assert done.allocation_state_transition_time is not None
            assert done.allocation_state_transition_time >= created.creation_time
            assert len(await backend.list_nodes(pool_id)) == 4
        finally:
            await backend.delete_pool(pool_id)


async def test_stop_resize_keeps_the_nodes_the_pool_has(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        await admin(batch.backend).set_pool_targets(batch.pool_id, 4)
        await admin(batch.backend).stop_pool_resize(batch.pool_id)
        stopped = await steady(batch.backend, batch.pool_id)
        assert [error.code for error in stopped.resize_errors] == ["ResizeStopped"]
        assert stopped.target_dedicated_nodes == 4
        nodes = await batch.backend.list_nodes(batch.pool_id)
        assert stopped.current_dedicated_nodes == len(nodes) < 4
        assert batch.node_ids[0] in {node.id for node in nodes}


async def test_remove_nodes_requeue_runs_the_task_again_elsewhere(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, nodes=2) as batch:
        job, task = await running_task(batch, SHORT)
        assert task.node_id is not None
        await admin(batch.backend).remove_nodes(batch.pool_id, [task.node_id])
        done = await batch.tasks_settled(job)
        again = done["t"]
        assert again.execution_info.requeue_count >= 1
        assert again.execution_info.result is ExecutionResult.SUCCESS
        assert again.node_id not in (None, task.node_id)
        after = await steady(batch.backend, batch.pool_id)
        assert (after.target_dedicated_nodes, after.current_dedicated_nodes) == (1, 1)
        assert [node.id for node in await batch.backend.list_nodes(batch.pool_id)] == [
            again.node_id
        ]


async def test_remove_nodes_terminate_ends_the_task(open_backend: BackendOpener) -> None:
    async with pool(open_backend, nodes=2) as batch:
        job, task = await running_task(batch, LONG)
        assert task.node_id is not None
        await admin(batch.backend).remove_nodes(
            batch.pool_id, [task.node_id], deallocation=NodeDeallocationOption.TERMINATE
        )
        ended = (await batch.tasks_settled(job))["t"]
        info = ended.execution_info
        assert ended.state is TaskState.COMPLETED and info.result is ExecutionResult.FAILURE
        assert info.failure_info is not None and info.failure_info.code == "TaskEnded"
        assert info.requeue_count == 0
        await steady(batch.backend, batch.pool_id)
        assert task.node_id not in {n.id for n in await batch.backend.list_nodes(batch.pool_id)}


async def test_remove_nodes_taskcompletion_lets_the_task_finish(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, nodes=2) as batch:
        job, task = await running_task(batch, SHORT)
        assert task.node_id is not None
        await admin(batch.backend).remove_nodes(
            batch.pool_id, [task.node_id], deallocation=NodeDeallocationOption.TASK_COMPLETION
        )
        leaving = await admin(batch.backend).get_node(batch.pool_id, task.node_id)
        assert leaving.state is NodeState.LEAVING_POOL
        assert (await batch.backend.get_pool(batch.pool_id)).target_dedicated_nodes == 1
        finished = (await batch.tasks_settled(job))["t"]
        assert finished.execution_info.result is ExecutionResult.SUCCESS
        assert (finished.node_id, finished.execution_info.requeue_count) == (task.node_id, 0)
        after = await steady(batch.backend, batch.pool_id)
        assert after.current_dedicated_nodes == 1
        assert task.node_id not in {n.id for n in await batch.backend.list_nodes(batch.pool_id)}


async def test_disabled_scheduling_requeues_and_the_node_is_offline_until_enabled(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        (node_id,) = batch.node_ids
        job, _ = await running_task(batch, SHORT)
        nodes = admin(batch.backend)
        await nodes.disable_node_scheduling(batch.pool_id, node_id, DisableSchedulingOption.REQUEUE)
        offline = await node_in(batch, node_id, NodeState.OFFLINE)
        assert offline.scheduling_state is SchedulingState.DISABLED
        waiting = await batch.backend.get_task(job, "t")
        assert waiting.state is TaskState.ACTIVE
        assert waiting.execution_info.requeue_count == 1
        await anyio.sleep(1)  # nothing is placed on a disabled node
        assert (await batch.backend.get_task(job, "t")).state is TaskState.ACTIVE
        await nodes.enable_node_scheduling(batch.pool_id, node_id)
        done = (await batch.tasks_settled(job))["t"]
        assert done.execution_info.result is ExecutionResult.SUCCESS
        enabled = await node_in(batch, node_id, NodeState.IDLE)
        assert enabled.scheduling_state is SchedulingState.ENABLED


async def preempt(backend: BatchBackend, pool_id: str, node_id: str) -> None:
    """The local Preempt Node: the docker backend's method, or the endpoint's own route."""
    method = getattr(backend, "preempt_node", None)
    if method is not None:
        await method(pool_id, node_id)
        return
    client = backend._client  # type: ignore[attr-defined]
    request = HttpRequest(
        "POST", f"/pools/{pool_id}/nodes/{node_id}/preempt", params={"api-version": "2025-06-01"}
    )
    response = await client.send_request(request)
    assert response.status_code == 202, response.text()


async def test_spot_nodes_are_counted_apart_and_a_preempted_one_requeues_its_task(
    open_backend: BackendOpener, backend_name: str
) -> None:
    if backend_name == "azure":
        pytest.skip("a real account's spot nodes are preempted by Azure, not on request")
    async with pool(open_backend, nodes=1, low_priority=1) as batch:
        nodes = {node.id: node for node in await batch.backend.list_nodes(batch.pool_id)}
        spot = next(node for node in nodes.values() if not node.is_dedicated)
        created = await batch.backend.get_pool(batch.pool_id)
        assert (created.target_low_priority_nodes, created.current_low_priority_nodes) == (1, 1)
        assert created.current_dedicated_nodes == 1
        counts = {c.pool_id: c for c in await admin(batch.backend).list_pool_node_counts()}
        mine = counts[batch.pool_id]
        assert (mine.dedicated.idle, mine.dedicated.total) == (1, 1)
        assert (mine.low_priority.idle, mine.low_priority.total) == (1, 1)

        dedicated = next(node_id for node_id in nodes if node_id != spot.id)
        await admin(batch.backend).disable_node_scheduling(batch.pool_id, dedicated)
        job, task = await running_task(batch, LONG)
        assert task.node_id == spot.id
        await admin(batch.backend).enable_node_scheduling(batch.pool_id, dedicated)
        await preempt(batch.backend, batch.pool_id, spot.id)
        preempted = await node_in(batch, spot.id, NodeState.PREEMPTED)
        assert preempted.is_dedicated is False
        moved = await batch.task_in(job, "t", TaskState.RUNNING)
        assert moved.node_id == dedicated and moved.execution_info.requeue_count == 1
        counts = {c.pool_id: c for c in await admin(batch.backend).list_pool_node_counts()}
        mine = counts[batch.pool_id]
        assert (mine.low_priority.preempted, mine.low_priority.total) == (1, 1)
        assert (mine.dedicated.running, mine.dedicated.total) == (1, 1)
        assert (await batch.backend.get_pool(batch.pool_id)).current_low_priority_nodes == 1


async def test_every_supported_image_is_taken_by_add_pool(
    open_backend: BackendOpener, backend_name: str
) -> None:
    if backend_name == "azure":
        pytest.skip("pools of every image a real account supports would cost too much")
    async with open_backend() as backend:
        images = await admin(backend).list_supported_images()
        assert images and all(image.os_type == "linux" for image in images)
        for index, image in enumerate(images):
            pool_id = f"Contract-{uuid.uuid4().hex[:8]}-{index}"
            spec = PoolSpec(
                id=pool_id,
                target_dedicated_nodes=1 if index == 0 else 0,
                image_reference=image.image_reference,
                node_agent_sku_id=image.node_agent_sku_id,
            )
            await backend.create_pool(spec)
            try:
                if index == 0:
                    batch = Batch(backend=backend, pool_id=pool_id, node_ids=[])
                    assert len(await batch.nodes_idle(limit=WAIT_LIMIT * 5)) == 1
                else:
                    assert (await backend.get_pool(pool_id)).id == pool_id
            finally:
                await backend.delete_pool(pool_id)


LISTEN = (
    "perl -MIO::Socket::INET -e '"
    "$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 1, ReuseAddr => 1) or die $!; "
    '$c = $s->accept; print $c "hello from $ENV{AZ_BATCH_NODE_ID}\\n"; close $c\''
)


async def test_an_inbound_nat_pool_reaches_each_node_on_its_frontend_port(
    open_backend: BackendOpener, backend_name: str
) -> None:
    if backend_name == "azure":
        pytest.skip("a real node's public address is reached over the internet, not here")
    start = random.randrange(30000, 39000, 100)
    nat = InboundNatPool("web", "tcp", 8080, start, start + 99)
    pool_id = f"Contract-{uuid.uuid4().hex[:8]}"
    async with open_backend() as backend:
        await backend.create_pool(
            PoolSpec(id=pool_id, target_dedicated_nodes=1, inbound_nat_pools=(nat,))
        )
        batch = Batch(backend=backend, pool_id=pool_id, node_ids=[])
        try:
            (node_id,) = await batch.nodes_idle(limit=WAIT_LIMIT * 5)
            node = await admin(backend).get_node(pool_id, node_id)
            # REST InboundEndpoint: "<NAT pool name>.<n>", the first node on the range's start.
            (endpoint,) = node.inbound_endpoints
            assert (endpoint.name, endpoint.protocol) == ("web.0", "tcp")
            assert (endpoint.frontend_port, endpoint.backend_port) == (start, 8080)
            job = await batch.create_job()
            await backend.add_tasks(job, [TaskSpec("listen", LISTEN)])
            await batch.task_in(job, "listen", TaskState.RUNNING)
            answer = await read_line(endpoint.public_ip_address, endpoint.frontend_port)
            assert answer == f"hello from {node_id}"
            done = (await batch.tasks_settled(job))["listen"]
            assert done.execution_info.exit_code == 0
        finally:
            for job_id in batch.jobs:
                await backend.delete_job(job_id)
            await backend.delete_pool(pool_id)


async def read_line(host: str, port: int) -> str:
    """The first line served at host:port, trying until something listens there."""
    with anyio.fail_after(WAIT_LIMIT):
        while True:
            try:
                async with await anyio.connect_tcp(host, port) as stream:
                    data = b""
                    while not data.endswith(b"\n"):
                        data += await stream.receive()
                    return data.decode().strip()
            except (OSError, anyio.EndOfStream, anyio.BrokenResourceError):
                await anyio.sleep(0.2)
