"""Multi-instance tasks through the endpoint over the fake executor (no engine).

Expected values from the REST API reference (``MultiInstanceSettings``, ``BatchSubtask``) and
the article "Use multi-instance tasks to run MPI applications in Batch": the task runs on
``numberOfInstances`` distinct nodes; every instance runs the coordination command with the
common resource files in its task directory; the primary runs the command line only after the
coordination command ended on every node; the variables of multi-instance tasks
(``AZ_BATCH_HOST_LIST`` ``ip,ip``, ``AZ_BATCH_NODE_LIST`` ``ip;ip``, ``AZ_BATCH_MASTER_NODE``
the primary's address and port, ``AZ_BATCH_TASK_SHARED_DIR``,
``AZ_BATCH_IS_CURRENT_NODE_MASTER``); a failed coordination fails the task; List Subtasks
gives the subtasks, ids from 1."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from tests.core.harness import FakeEndpoint, fake_endpoint
from tests.endpoint.support import call

KEY = base64.b64encode(b"multi-instance-test-key-01234567").decode()
IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}
TASK_DIR = "/mnt/batch/tasks/workitems/job1/job-1/mpi"


def outcome(start: FakeStart) -> FakeOutcome:
    """Coordination commands run 30 s (`coord-fail` exits 1); the application 60 s."""
    program = start.argv[0]
    if program == "coord-fail":
        return FakeOutcome(exit_code=1, duration=30)
    return FakeOutcome(duration=30 if program.startswith("coord") else 60)


@asynccontextmanager
async def service(nodes: int = 3) -> AsyncIterator[FakeEndpoint]:
    pool = {
        "id": "pool1",
        "vmSize": "standard_d2_v2",
        "targetDedicatedNodes": nodes,
        "enableInterNodeCommunication": True,
        "virtualMachineConfiguration": IMAGE,
    }
    async with fake_endpoint(KEY, pool) as running:
        running.executor.outcome = outcome
        job = {"id": "job1", "poolInfo": {"poolId": "pool1"}}
        assert (await call(running.batch, "POST", "/jobs", body=job)).status == 201
        yield running


async def add_mpi(running: FakeEndpoint, instances: int, coordination: str = "coord") -> None:
    task: dict[str, Any] = {
        "id": "mpi",
        "commandLine": "main --all",
        "multiInstanceSettings": {
            "numberOfInstances": instances,
            "coordinationCommandLine": coordination,
        },
    }
    answer = await call(running.batch, "POST", "/jobs/job1/tasks", body=task)
    assert answer.status == 201, answer.body


async def advance(running: FakeEndpoint, seconds: int) -> None:
    for _ in range(seconds):
        running.clock.advance(1)
        await anyio.sleep(0.005)
    await anyio.sleep(0.05)


async def task_json(running: FakeEndpoint) -> dict[str, Any]:
    return (await call(running.batch, "GET", "/jobs/job1/tasks/mpi")).json()


async def subtasks(running: FakeEndpoint) -> list[dict[str, Any]]:
    answer = await call(running.batch, "GET", "/jobs/job1/tasks/mpi/subtasksinfo")
    assert answer.status == 200, answer.body
    return list(answer.json()["value"])


async def test_coordination_on_every_node_then_the_primary_runs_the_command_line() -> None:
    async with service() as running:
        await add_mpi(running, 3)
        await advance(running, 5)
        starts = running.executor.starts
        assert [start.argv[0] for start in starts] == ["coord", "coord", "coord"]
        nodes = [start.node_id for start in starts]
        assert len(set(nodes)) == 3
        addresses = [running.executor.node_address(node) for node in nodes]
        for index, start in enumerate(starts):
            env = start.environment
            assert env["AZ_BATCH_HOST_LIST"] == ",".join(str(a) for a in addresses)
            assert env["AZ_BATCH_NODE_LIST"] == ";".join(str(a) for a in addresses)
            assert env["AZ_BATCH_MASTER_NODE"] == f"{addresses[0]}:6000"
            assert env["AZ_BATCH_TASK_SHARED_DIR"] == TASK_DIR
            assert env["AZ_BATCH_IS_CURRENT_NODE_MASTER"] == ("true" if index == 0 else "false")
        running_task = await task_json(running)
        assert running_task["state"] == "running"
        assert running_task["multiInstanceSettings"]["numberOfInstances"] == 3
        listed = await subtasks(running)
        assert [(item["id"], item["state"]) for item in listed] == [(1, "running"), (2, "running")]
        assert [item["nodeInfo"]["nodeId"] for item in listed] == nodes[1:]

        await advance(running, 30)  # every coordination command has ended
        assert [start.argv for start in running.executor.starts[3:]] == [("main", "--all")]
        assert running.executor.starts[3].node_id == nodes[0]
        assert [item["exitCode"] for item in await subtasks(running)] == [0, 0]
        assert (await task_json(running))["state"] == "running"

        await advance(running, 61)
        done = await task_json(running)
        assert done["state"] == "completed"
        assert done["executionInfo"]["exitCode"] == 0
        assert done["nodeInfo"]["nodeId"] == nodes[0]
        assert [item["state"] for item in await subtasks(running)] == ["completed", "completed"]


async def test_a_failed_coordination_fails_the_task_without_the_command_line() -> None:
    async with service() as running:
        await add_mpi(running, 2, coordination="coord-fail")
        await advance(running, 40)
        done = await task_json(running)
        assert done["state"] == "completed"
        assert done["executionInfo"]["exitCode"] == 1
        assert done["executionInfo"]["failureInfo"]["code"] == "FailureExitCode"
        assert all(start.argv[0] == "coord-fail" for start in running.executor.starts)


async def test_the_task_waits_for_enough_nodes() -> None:
    async with service(nodes=2) as running:
        await add_mpi(running, 3)
        await advance(running, 5)
        assert running.executor.starts == []
        assert (await task_json(running))["state"] == "active"
        assert await subtasks(running) == []


async def test_the_subtasks_nodes_are_taken_other_tasks_go_elsewhere() -> None:
    async with service(nodes=3) as running:
        await add_mpi(running, 2)
        await advance(running, 5)
        taken = {start.node_id for start in running.executor.starts}
        plain = {"id": "plain", "commandLine": "coord-other"}
        assert (await call(running.batch, "POST", "/jobs/job1/tasks", body=plain)).status == 201
        await advance(running, 2)
        (other,) = [s for s in running.executor.starts if s.argv[0] == "coord-other"]
        assert other.node_id not in taken
        assert "AZ_BATCH_HOST_LIST" not in other.environment


async def test_terminate_task_ends_the_subtasks() -> None:
    async with service() as running:
        await add_mpi(running, 3)
        await advance(running, 5)
        answer = await call(running.batch, "POST", "/jobs/job1/tasks/mpi/terminate")
        assert answer.status == 204, answer.body
        await advance(running, 1)
        ended = await task_json(running)
        assert ended["state"] == "completed"
        assert ended["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
        assert [item["state"] for item in await subtasks(running)] == ["completed", "completed"]
        await advance(running, 100)  # the coordination commands were stopped: nothing follows
        assert [start.argv[0] for start in running.executor.starts] == ["coord"] * 3


async def test_a_lost_subtask_node_requeues_the_whole_task() -> None:
    async with service(nodes=3) as running:
        await add_mpi(running, 2)
        await advance(running, 35)  # coordination done, the primary runs the command line
        starts = running.executor.starts
        assert [start.argv[0] for start in starts] == ["coord", "coord", "main"]
        running.executor.lose_node(starts[1].node_id)
        await advance(running, 2)
        again = running.executor.starts[3:]
        assert [start.argv[0] for start in again] == ["coord", "coord"]
        assert starts[1].node_id not in {start.node_id for start in again}
        task = await task_json(running)
        assert task["state"] == "running"
        assert task["executionInfo"]["requeueCount"] == 1
        await advance(running, 95)
        assert (await task_json(running))["state"] == "completed"
