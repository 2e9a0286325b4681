"""Every kind of answer of the endpoint parses into azure-batch's own models, each property of its
declared type: the shape checks that need no reference data (tests/endpoint/test_examples.py
also compares with the official REST examples, where they are at hand). Requests are signed and
sent by azure-batch's pipeline; nodes are real containers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from azure.batch import models
from azure.batch.aio import BatchClient

from tests.conftest import Ids, labelled
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import Answer, call, is_time, wait_until, walk_model

BASH = "/bin/bash -c '{}'"


def shaped(
    answer: Answer, status: int, model: Callable[[Any], Any], *, listing: bool = False
) -> Any:
    """The answer has `status`, and its JSON body builds `model` (each item of its ``value``,
    for a `listing`), every property read back with its declared type."""
    assert answer.status == status, (answer.status, answer.body)
    document = answer.json()
    built = [model(item) for item in (document["value"] if listing else [document])]
    assert built, document
    for item in built:
        walk_model(item)
    return built if listing else built[0]


async def no_body(client: BatchClient, method: str, path: str, status: int, **kw: Any) -> None:
    answer = await call(client, method, path, **kw)
    assert answer.status == status, (answer.status, answer.body)
    assert not answer.body, answer.body


async def test_every_answer_parses_into_the_sdk_models(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        pool_request = {
            "id": ids.pool,
            "vmSize": "standard_d1_v2",
            "virtualMachineConfiguration": {
                "imageReference": {"virtualMachineImageId": "debian:bookworm-slim"},
                "nodeAgentSKUId": "batch.node.debian 12",
            },
            "targetDedicatedNodes": 1,
            "taskSlotsPerNode": 2,
        }
        await no_body(client, "POST", "/pools", 201, body=pool_request)
        pool = shaped(await call(client, "GET", f"/pools/{ids.pool}"), 200, models.BatchPool)
        assert (pool.id, pool.vm_size, pool.task_slots_per_node) == (ids.pool, "standard_d1_v2", 2)
        assert is_time(pool.creation_time)
        query = {"$filter": f"id eq '{ids.pool}'"}
        listed = shaped(
            await call(client, "GET", "/pools", params=query), 200, models.BatchPool, listing=True
        )
        assert [p.id for p in listed] == [ids.pool]

        async def idle() -> bool:
            nodes = (await call(client, "GET", f"/pools/{ids.pool}/nodes")).json()["value"]
            return len(nodes) == 1 and nodes[0]["state"] == "idle"

        await wait_until(idle)
        answer = await call(client, "GET", f"/pools/{ids.pool}/nodes")
        (node,) = shaped(answer, 200, models.BatchNode, listing=True)
        answer = await call(client, "GET", f"/pools/{ids.pool}/nodes/{node.id}")
        assert shaped(answer, 200, models.BatchNode).id == node.id
        answer = await call(client, "GET", "/nodecounts")
        counts = shaped(answer, 200, models.BatchPoolNodeCounts, listing=True)
        (mine,) = [entry for entry in counts if entry.pool_id == ids.pool]
        assert (mine.dedicated.idle, mine.dedicated.total, mine.low_priority.total) == (1, 1, 0)
        answer = await call(client, "GET", "/supportedimages")
        images = shaped(answer, 200, models.BatchSupportedImage, listing=True)
        assert all(image.os_type == "linux" and image.node_agent_sku_id for image in images)
        for operation in ("disablescheduling", "enablescheduling"):
            path = f"/pools/{ids.pool}/nodes/{node.id}/{operation}"
            await no_body(client, "POST", path, 200)

        job_request = {
            "id": ids.job,
            "poolInfo": {"poolId": ids.pool},
            "jobPreparationTask": {
                "commandLine": BASH.format('echo prepared > "$AZ_BATCH_NODE_SHARED_DIR/prep.txt"')
            },
            "jobReleaseTask": {"commandLine": "/bin/true"},
        }
        await no_body(client, "POST", "/jobs", 201, body=job_request)
        job = shaped(await call(client, "GET", f"/jobs/{ids.job}"), 200, models.BatchJob)
        assert job.state == "active" and job.pool_info.pool_id == ids.pool
        answer = await call(client, "GET", "/jobs", params={"$filter": f"id eq '{ids.job}'"})
        assert [j.id for j in shaped(answer, 200, models.BatchJob, listing=True)] == [ids.job]

        collection = {
            "value": [
                {"id": "one", "commandLine": BASH.format("echo one")},
                {"id": "two", "commandLine": BASH.format("exit 3")},
            ]
        }
        answer = await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=collection)
        added = shaped(answer, 200, models.BatchCreateTaskCollectionResult)
        assert [(r.task_id, r.status) for r in added.result_values] == [
            ("one", "success"),
            ("two", "success"),
        ]
        single = {"id": "three", "commandLine": "no-such-program"}
        await no_body(client, "POST", f"/jobs/{ids.job}/tasks", 201, body=single)

        async def all_completed() -> bool:
            counts = (await call(client, "GET", f"/jobs/{ids.job}/taskcounts")).json()
            return bool(counts["taskCounts"]["completed"] == 3)

        await wait_until(all_completed)
        answer = await call(client, "GET", f"/jobs/{ids.job}/taskcounts")
        counts = shaped(answer, 200, models.BatchTaskCountsResult)
        assert (counts.task_counts.succeeded, counts.task_counts.failed) == (1, 2)
        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks")
        tasks = {t.id: t for t in shaped(answer, 200, models.BatchTask, listing=True)}
        assert sorted(tasks) == ["one", "three", "two"]
        assert tasks["one"].execution_info.exit_code == 0
        assert tasks["two"].execution_info.failure_info.code == "FailureExitCode"
        assert tasks["three"].execution_info.failure_info.code == "CommandProgramNotFound"
        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks/one")
        task = shaped(answer, 200, models.BatchTask)
        assert is_time(task.execution_info.start_time) and task.node_info.node_id == node.id

        files = f"/jobs/{ids.job}/tasks/one/files"
        answer = await call(client, "GET", files, params={"recursive": "true"})
        names = {f.name for f in shaped(answer, 200, models.BatchNodeFile, listing=True)}
        assert {"stdout.txt", "stderr.txt", "wd"} <= names
        answer = await call(client, "GET", f"{files}/stdout.txt")
        assert (answer.status, answer.body) == (200, b"one\n")
        properties = await client.get_task_file_properties(ids.job, "one", "stdout.txt")
        assert properties.content_length == 4 and is_time(properties.last_modified)

        node_files = f"/pools/{ids.pool}/nodes/{node.id}/files"
        answer = await call(client, "GET", node_files, params={"recursive": "true"})
        names = {f.name for f in shaped(answer, 200, models.BatchNodeFile, listing=True)}
        assert "shared/prep.txt" in names
        properties = await client.get_node_file_properties(ids.pool, node.id, "shared/prep.txt")
        assert properties.content_length == len(b"prepared\n")

        await no_body(client, "POST", f"/jobs/{ids.job}/tasks/one/terminate", 204)
        await no_body(client, "POST", f"/jobs/{ids.job}/terminate", 202)

        async def completed() -> bool:
            answer = await call(client, "GET", f"/jobs/{ids.job}")
            return bool(answer.json()["state"] == "completed")

        await wait_until(completed)
        job = shaped(await call(client, "GET", f"/jobs/{ids.job}"), 200, models.BatchJob)
        assert job.execution_info.termination_reason == "UserTerminate"
        answer = await call(client, "GET", f"/jobs/{ids.job}/jobpreparationandreleasetaskstatus")
        (status,) = shaped(
            answer, 200, models.BatchJobPreparationAndReleaseTaskStatus, listing=True
        )
        assert status.node_id == node.id
        assert status.job_preparation_task_execution_info.exit_code == 0
        assert status.job_release_task_execution_info.exit_code == 0

        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks/nope")
        assert shaped(answer, 404, models.BatchError).code == "TaskNotFound"
        await no_body(client, "DELETE", f"/jobs/{ids.job}", 202)
        await no_body(client, "DELETE", f"/pools/{ids.pool}", 202)

        async def pool_gone() -> bool:
            answer = await call(client, "GET", f"/pools/{ids.pool}")
            return answer.status == 404

        await wait_until(pool_gone)
        answer = await call(client, "GET", f"/pools/{ids.pool}")
        assert shaped(answer, 404, models.BatchError).code == "PoolNotFound"
    assert labelled(docker_client, ids.pool) == (0, 0)
