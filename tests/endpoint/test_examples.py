"""Every answer of the endpoint, checked against the official REST examples (api-version
2025-06-01): the same status, every property the example has (where it applies on a Linux node
emulated by a container) with the same JSON type, and each body deserializes into azure-batch's
model. Requests are signed and sent by azure-batch's own pipeline; nodes are real containers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import docker
from azure.batch import models
from azure.batch.aio import BatchClient

from tests.conftest import Ids, labelled
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import (
    Answer,
    assert_headers_like,
    assert_like,
    call,
    example,
    example_response,
    example_status,
    is_time,
    needs_examples,
    wait_until,
    walk_model,
)

pytestmark = needs_examples

LINUX_ONLY = frozenset({"ocp-creation-time"})
"""Linux nodes report no file creation time (the REST reference says so)."""

BASH = "/bin/bash -c '{}'"


def body_of(name: str) -> Any:
    return example_response(name)["body"]


def checked(
    answer: Answer, name: str, model: Callable[[Any], Any] | None = None, *, single: bool = False
) -> Any:
    """`answer` has the example's status; its body (each listed item, for a list unless
    `single`) deserializes into `model`."""
    assert answer.status == example_status(name), (answer.status, answer.body)
    if model is None:
        return None
    document = answer.json()
    listing = "value" in document and not single
    built = [model(item) for item in (document["value"] if listing else [document])]
    for item in built:
        walk_model(item)
    return built if listing else built[0]


async def wait_for_nodes(client: BatchClient, pool: str, count: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []

    async def ready() -> bool:
        nonlocal nodes
        nodes = (await call(client, "GET", f"/pools/{pool}/nodes")).json()["value"]
        return len(nodes) == count and all(node["state"] == "idle" for node in nodes)

    await wait_until(ready)
    return nodes


async def wait_gone(client: BatchClient, path: str, code: str) -> Answer:
    answer: Answer | None = None

    async def gone() -> bool:
        nonlocal answer
        answer = await call(client, "GET", path)
        return answer.status == 404

    await wait_until(gone)
    assert answer is not None and answer.json()["code"] == code
    return answer


async def test_pools_and_nodes(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        # Add Pool: the official example's request, unchanged but for the id and node count.
        name = "Pools_CreatePool_VirtualMachineConfiguration"
        request = {**example(name)["parameters"]["pool"], "id": ids.pool, "targetDedicatedNodes": 1}
        added = await call(client, "POST", "/pools", body=request)
        checked(added, name)
        assert_headers_like(added, name, set())

        name = "Pools_GetPool_VirtualMachineConfigurationWithOSDisk"
        answer = await call(client, "GET", f"/pools/{ids.pool}")
        assert_like(
            answer.json(),
            body_of(name),
            not_applicable=frozenset({"virtualMachineConfiguration.osDisk"}),
        )
        pool = checked(answer, name, models.BatchPool)
        assert pool.id == ids.pool and pool.state == "active"
        assert pool.vm_size == "standard_a1" and pool.task_slots_per_node == 3
        assert pool.task_scheduling_policy.node_fill_type == "spread"
        assert pool.virtual_machine_configuration.image_reference.sku == "20_04-lts"
        assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 20.04"
        assert is_time(pool.creation_time) and answer.headers["ETag"] == pool.etag

        name = "Pool_ListPools_Basic"
        answer = await call(client, "GET", "/pools", params={"$filter": f"id eq '{ids.pool}'"})
        assert_like(answer.json(), body_of(name), not_applicable=frozenset({"value[].startTask"}))
        assert [p.id for p in checked(answer, name, models.BatchPool)] == [ids.pool]

        await wait_for_nodes(client, ids.pool, 1)
        name = "Nodes_ListNodes"
        answer = await call(client, "GET", f"/pools/{ids.pool}/nodes")
        windows_vm = {"ipAddress", "ipv6Address", "startTask", "startTaskInfo"}
        assert_like(
            answer.json(),
            body_of(name),
            not_applicable=frozenset(f"value[].{key}" for key in windows_vm),
        )
        (node,) = checked(answer, name, models.BatchNode)
        assert node.state == "idle" and node.is_dedicated and is_time(node.last_boot_time)

        name = "Nodes_GetNode"
        answer = await call(client, "GET", f"/pools/{ids.pool}/nodes/{node.id}")
        assert_like(answer.json(), body_of(name), not_applicable=frozenset(windows_vm))
        assert checked(answer, name, models.BatchNode).id == node.id

        # Resize up and down: 202, and the nodes follow.
        for target in (2, 1):
            answer = await call(
                client, "POST", f"/pools/{ids.pool}/resize", body={"targetDedicatedNodes": target}
            )
            assert answer.status == 202, answer.body
            await wait_for_nodes(client, ids.pool, target)
        assert labelled(docker_client, ids.pool) == (1, 1)

        # Reboot (the example's request) and reimage: 202, and the node is idle again.
        name = "Nodes_RebootNode"
        answer = await call(
            client,
            "POST",
            f"/pools/{ids.pool}/nodes/{node.id}/reboot",
            body=example(name)["parameters"]["nodeRebootParameter"],
        )
        checked(answer, name)
        await wait_for_nodes(client, ids.pool, 1)
        answer = await call(client, "POST", f"/pools/{ids.pool}/nodes/{node.id}/reimage")
        assert answer.status == 202, answer.body
        await wait_for_nodes(client, ids.pool, 1)

        name = "Pools_DeletePool"
        checked(await call(client, "DELETE", f"/pools/{ids.pool}"), name)
        error = await wait_gone(client, f"/pools/{ids.pool}", "PoolNotFound")
        walk_model(models.BatchError(error.json()))
    assert labelled(docker_client, ids.pool) == (0, 0)


async def test_jobs_tasks_and_files(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    basic_job = f"{ids.job}-basic"
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        pool_request = {
            "id": ids.pool,
            "vmSize": "standard_d1_v2",
            "virtualMachineConfiguration": {
                "imageReference": {"virtualMachineImageId": "debian:bookworm-slim"},
                "nodeAgentSKUId": "batch.node.debian 12",
            },
            "targetDedicatedNodes": 1,
        }
        assert (await call(client, "POST", "/pools", body=pool_request)).status == 201

        # Add Job: the basic example as it is; then one with preparation and release tasks.
        name = "Jobs_CreateJob_Basic"
        request = {**example(name)["parameters"]["job"], "id": basic_job}
        request["poolInfo"] = {"poolId": ids.pool}
        checked(await call(client, "POST", "/jobs", body=request), name)
        job_request = {
            "id": ids.job,
            "poolInfo": {"poolId": ids.pool},
            "jobPreparationTask": {
                "commandLine": BASH.format('echo prepared > "$AZ_BATCH_NODE_SHARED_DIR/prep.txt"')
            },
            "jobReleaseTask": {"commandLine": "/bin/true", "maxWallClockTime": "PT15M"},
        }
        assert (await call(client, "POST", "/jobs", body=job_request)).status == 201

        name = "Jobs_ListJobs"
        answer = await call(client, "GET", "/jobs", params={"$filter": f"id eq '{basic_job}'"})
        never_disabled = {"value[].previousState", "value[].previousStateTransitionTime"}
        assert_like(answer.json(), body_of(name), not_applicable=frozenset(never_disabled))
        assert [job.id for job in checked(answer, name, models.BatchJob)] == [basic_job]
        both = f"state eq 'active' and (id eq '{ids.job}' or id eq '{basic_job}')"
        answer = await call(client, "GET", "/jobs", params={"$filter": both})
        assert sorted(job["id"] for job in answer.json()["value"]) == sorted([ids.job, basic_job])
        answer = await call(client, "GET", "/jobs", params={"$filter": "state eq 'completed'"})
        assert ids.job not in [job["id"] for job in answer.json()["value"]]

        # Add Task Collection: the basic example (a Linux command line), then the complex one,
        # which asks for what is not emulated (task affinity) and is refused, named.
        name = "Tasks_CreateTaskCollection_Basic"
        collection = example(name)["parameters"]["taskCollection"]
        for task in collection["value"]:
            task["commandLine"] = BASH.format(f"echo {task['id']}")
        answer = await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=collection)
        assert_like(answer.json(), body_of(name))
        result = checked(answer, name, models.BatchCreateTaskCollectionResult, single=True)
        assert [(r.task_id, r.status) for r in result.result_values] == [
            ("simple1", "success"),
            ("simple2", "success"),
        ]
        complex_request = example("Tasks_CreateTaskCollection_Complex")["parameters"]
        answer = await call(
            client,
            "POST",
            f"/jobs/{ids.job}/addtaskcollection",
            body=complex_request["taskCollection"],
        )
        assert answer.status == 501 and answer.json()["code"] == "NotSupported"
        assert "affinityInfo" in answer.json()["message"]["value"]

        # Add Task (one): 201, as azure-batch expects.
        single = {
            "id": "single",
            "commandLine": BASH.format("echo single $AZ_BATCH_ACCOUNT_NAME; echo oops >&2"),
        }
        assert (await call(client, "POST", f"/jobs/{ids.job}/tasks", body=single)).status == 201

        async def all_completed() -> bool:
            counts = (await call(client, "GET", f"/jobs/{ids.job}/taskcounts")).json()
            return bool(counts["taskCounts"]["completed"] == 3)

        await wait_until(all_completed)
        name = "Jobs_GetJobTaskCounts"
        answer = await call(client, "GET", f"/jobs/{ids.job}/taskcounts")
        assert_like(answer.json(), body_of(name))
        assert set(answer.json()["taskCounts"]) == set(body_of(name)["taskCounts"])
        counts = checked(answer, name, models.BatchTaskCountsResult)
        assert (counts.task_counts.succeeded, counts.task_slot_counts.completed) == (3, 3)

        name = "Tasks_GetTask"
        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks/simple1")
        assert_like(
            answer.json(), body_of(name), not_applicable=frozenset({"multiInstanceSettings"})
        )
        task = checked(answer, name, models.BatchTask)
        assert task.state == "completed" and task.execution_info.exit_code == 0
        assert task.execution_info.result == "success" and is_time(task.execution_info.end_time)
        assert task.constraints.retention_time.days == 7 and task.node_info.node_id

        name = "TaskList"
        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks")
        assert_like(answer.json(), body_of(name))
        assert [t.id for t in checked(answer, name, models.BatchTask)] == [
            "simple1",
            "simple2",
            "single",
        ]
        query = {"$filter": "state eq 'completed' and executionInfo/exitCode eq 0"}
        answer = await call(
            client, "GET", f"/jobs/{ids.job}/tasks", params={**query, "$select": "id,state"}
        )
        assert [sorted(t) for t in answer.json()["value"]] == [["id", "state"]] * 3
        # Paging: a page of one, and the SDK follows odata.nextLink to the end.
        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks", params={"maxresults": "1"})
        assert len(answer.json()["value"]) == 1
        assert "$skiptoken=1" in answer.json()["odata.nextLink"]
        listed = [t.id async for t in client.list_tasks(ids.job, max_results=1, select=["id"])]
        assert listed == ["simple1", "simple2", "single"]

        # Task files: list, get, properties.
        name = "Tasks_ListTaskFiles"
        answer = await call(
            client, "GET", f"/jobs/{ids.job}/tasks/single/files", params={"recursive": "true"}
        )
        # 2025-06-01 writes contentLength as a string (Nodes_ListNodeFiles); this example is
        # 2024-02-01's, with a number. Linux files have no creation time.
        linux = {"value[].properties.contentLength", "value[].properties.creationTime"}
        files = [f for f in answer.json()["value"] if not f["isDirectory"]]
        assert_like({"value": files}, body_of(name), not_applicable=frozenset(linux))
        built = checked(answer, name, models.BatchNodeFile)
        sizes = {f.name: f.properties.content_length for f in built if not f.is_directory}
        assert sizes == {"stdout.txt": 20, "stderr.txt": 5}
        assert {f.name for f in built if f.is_directory} == {"wd"}

        name = "Task_GetTaskFile"
        answer = await call(client, "GET", f"/jobs/{ids.job}/tasks/single/files/stdout.txt")
        checked(answer, name)
        assert_headers_like(answer, name, set(LINUX_ONLY))
        # The task saw the endpoint's account name.
        assert answer.body == b"single endpointtest\n" and answer.headers["Content-Length"] == "20"
        properties = await client.get_task_file_properties(ids.job, "single", "stderr.txt")
        assert properties.content_length == 5 and properties.is_directory is False
        assert is_time(properties.last_modified) and properties.file_mode == "100644"
        stream = await client.download_task_file(ids.job, "simple2", "stdout.txt")
        assert b"".join([chunk async for chunk in stream]) == b"simple2\n"

        # Node files: list, get (also a range of bytes), properties.
        node_id = task.node_info.node_id
        node_files = f"/pools/{ids.pool}/nodes/{node_id}/files"
        name = "Nodes_ListNodeFiles"
        answer = await call(client, "GET", node_files)
        assert_like(answer.json(), {"value": body_of(name)["value"][:1]})
        assert {"shared", "startup", "workitems"} <= {f["name"] for f in answer.json()["value"]}
        checked(answer, name, models.BatchNodeFile)
        answer = await call(
            client,
            "GET",
            node_files,
            params={"recursive": "true", "$filter": "startswith(name,'shared')"},
        )
        (prep_file,) = [f for f in answer.json()["value"] if f["name"] == "shared/prep.txt"]
        assert_like(
            prep_file,
            body_of(name)["value"][1],
            not_applicable=frozenset({"properties.creationTime"}),
        )
        assert all(f["name"].startswith("shared") for f in answer.json()["value"])

        name = "Nodes_GetNodeFile"
        answer = await call(client, "GET", f"{node_files}/shared/prep.txt")
        checked(answer, name)
        assert_headers_like(answer, name, set(LINUX_ONLY))
        assert answer.body == b"prepared\n"
        answer = await call(
            client, "GET", f"{node_files}/shared/prep.txt", headers={"ocp-range": "bytes=0-3"}
        )
        assert answer.body == b"prep"
        name = "Nodes_GetNodeFileProperties"
        answer = await call(client, "HEAD", f"{node_files}/shared/prep.txt")
        checked(answer, name)
        assert_headers_like(answer, name, set(LINUX_ONLY))
        properties = await client.get_node_file_properties(ids.pool, node_id, "shared/prep.txt")
        # The service sends the URL percent-encoded whole (recorded), and the SDK passes it on.
        assert properties.content_length == 9
        assert unquote(str(properties.url)).endswith("/shared/prep.txt")
        assert (await call(client, "HEAD", f"{node_files}/shared")).headers[
            "ocp-batch-file-isdirectory"
        ] == "True"

        # Terminate Task (a completed one: nothing to do), Terminate Job, Get Job.
        name = "Tasks_TerminateTask"
        checked(await call(client, "POST", f"/jobs/{ids.job}/tasks/simple1/terminate"), name)
        name = "Jobs_TerminateJob"
        reason = example(name)["parameters"]["jobTerminateParameter"]
        checked(await call(client, "POST", f"/jobs/{ids.job}/terminate", body=reason), name)

        async def completed() -> bool:
            job = (await call(client, "GET", f"/jobs/{ids.job}")).json()
            return bool(job["state"] == "completed")

        await wait_until(completed)
        name = "Job_GetJob"
        answer = await call(client, "GET", f"/jobs/{ids.job}")
        assert_like(answer.json(), body_of(name))
        job = checked(answer, name, models.BatchJob)
        assert job.execution_info.termination_reason == "User supplied termination reason"
        assert is_time(job.execution_info.end_time) and job.previous_state in (
            "active",
            "terminating",
        )
        assert job.job_release_task.max_wall_clock_time.total_seconds() == 900

        name = "Jobs_ListJobPreparationAndReleaseTaskStatus"
        answer = await call(client, "GET", f"/jobs/{ids.job}/jobpreparationandreleasetaskstatus")
        assert_like(answer.json(), body_of(name), not_applicable=frozenset({"odata.nextLink"}))
        (status,) = checked(answer, name, models.BatchJobPreparationAndReleaseTaskStatus)
        assert status.node_id == node_id and status.pool_id == ids.pool
        assert status.job_preparation_task_execution_info.exit_code == 0
        assert status.job_release_task_execution_info.state == "completed"
        assert status.job_release_task_execution_info.exit_code == 0

        name = "Jobs_DeleteJob"
        for job_id in (basic_job, ids.job):
            checked(await call(client, "DELETE", f"/jobs/{job_id}"), name)
            await wait_gone(client, f"/jobs/{job_id}", "JobNotFound")
        checked(await call(client, "DELETE", f"/pools/{ids.pool}"), "Pools_DeletePool")
        await wait_gone(client, f"/pools/{ids.pool}", "PoolNotFound")
    assert labelled(docker_client, ids.pool) == (0, 0)
