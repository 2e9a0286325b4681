"""The REST endpoint over the core and the fake executor: no engine, the real HTTP app, the
azure backend (azure-batch's own client) as the caller."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from jobprep_release.backends.azure import AzureBackend
from jobprep_release.backends.base import TaskState
from jobprep_release.backends.docker.core import FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.docker.rest import (
    EndpointSettings,
    RunningEndpoint,
    running_endpoint,
)
from tests.core.harness import JOB, POOL, job_spec, pool_spec, tasks

KEY = base64.b64encode(b"core-endpoint-test-key-0123456789").decode()


@asynccontextmanager
async def sample_run(
    fake: FakeExecutor, count: int
) -> AsyncIterator[tuple[RunningEndpoint, AzureBackend]]:
    """The endpoint over `fake`, the azure backend signed in to it, and a one-node pool whose
    job's `count` tasks have completed."""
    settings = EndpointSettings(account="fakebatch", key=KEY, port=0, executor=fake)
    async with running_endpoint(settings) as running:
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with AzureBackend(running.url, credential, poll_interval=0.05) as backend:
            await backend.create_pool(pool_spec(1, image=None))
            await backend.create_job(job_spec())
            await backend.add_tasks(JOB, tasks(count))
            with anyio.fail_after(10):
                while (await backend.get_task_counts(JOB)).completed < count:
                    await anyio.sleep(0.05)
            yield running, backend


def script(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(stdout=f"hello from {start.node_id}\n".encode())


async def test_the_endpoint_serves_the_core_over_the_fake_executor() -> None:
    fake = FakeExecutor(outcome=script)
    async with sample_run(fake, 2) as (_, backend):
        task = await backend.get_task(JOB, "task001")
        assert task.state is TaskState.COMPLETED
        assert task.node_id is not None
        path = f"workitems/{JOB}/job-1/task001/stdout.txt"
        data = await backend.read_node_file(POOL, task.node_id, path)
        assert data == f"hello from {task.node_id}\n".encode()
    assert [start.task_id for start in fake.starts] == ["task001", "task002"]


async def test_a_nodes_task_counts_outlive_its_jobs_deletion() -> None:
    fake = FakeExecutor(outcome=lambda start: FakeOutcome(exit_code=int(start.task_id[-1]) % 2))
    async with sample_run(fake, 3) as (running, backend):
        (node_id,) = [node.id for node in await backend.list_nodes(POOL)]
        await backend.delete_job(JOB)
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential) as client:
            node = await client.get_node(POOL, node_id)
            listed = [node async for node in client.list_nodes(POOL)]
    # task001 and task003 exit 1, task002 exits 0
    for seen in (node, *listed):
        assert (seen.total_tasks_run, seen.total_tasks_succeeded) == (3, 1)
        assert (seen.running_tasks_count, seen.running_task_slots_count) == (0, 0)


async def test_add_task_collection_answers_each_tasks_etag_and_last_modified() -> None:
    """Add Task Collection's result per task carries the task's eTag and lastModified (REST
    TaskAddResult), the same values Get Task then answers for the unchanged task."""
    fake = FakeExecutor(outcome=lambda start: FakeOutcome(duration=None))  # tasks stay put
    settings = EndpointSettings(account="fakebatch", key=KEY, port=0, executor=fake)
    async with running_endpoint(settings) as running:
        service = running.service
        assert service is not None
        await service.create_pool(pool_spec(1))
        await service.create_job(job_spec())
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential) as client:
            url = f"{running.url}/jobs/{JOB}/addtaskcollection"
            value = [{"id": "a1", "commandLine": "/bin/true"}, {"id": "a2", "commandLine": "x"}]
            request = HttpRequest(
                "POST",
                url,
                params={"api-version": "2025-06-01"},
                json={"value": value},
                headers={"Content-Type": "application/json; odata=minimalmetadata"},
            )
            answer = (await client.send_request(request)).json()["value"]
            compared = 0
            for result in answer:
                got = await client.send_request(
                    HttpRequest(
                        "GET",
                        f"{running.url}/jobs/{JOB}/tasks/{result['taskId']}",
                        params={"api-version": "2025-06-01"},
                    )
                )
                task = got.json()
                if task["state"] != "active":
                    continue  # placed on the node meanwhile: a new version
                assert result["status"] == "success"
                assert result["eTag"] == task["eTag"] == got.headers["ETag"]
                assert result["lastModified"] == task["lastModified"]
                compared += 1
            assert compared >= 1, "both tasks were placed: nothing left to compare"
