"""Tasks' authentication tokens through the endpoint over the fake executor (no engine).

From the REST API reference (``AuthenticationTokenSettings``, api-versions up to
2024-07-01.20.0): a task with ``access: ["job"]`` is given ``AZ_BATCH_AUTHENTICATION_TOKEN``,
which grants "all operations related to the Job which contains the Task" and nothing else
(refused with 403; the endpoint's code is Batch's ``InsufficientAccountPermissions``); the only
access scope is ``job`` (anything else 400). A task sends it as ``Authorization: Bearer``, as
Batch's SDKs send a token credential."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
from azure.batch.aio import BatchClient

from jobprep_release.backends.docker.core import FakeClock, FakeExecutor
from tests.core.harness import fake_endpoint
from tests.endpoint.support import call

KEY = base64.b64encode(b"token-endpoint-test-key-01234567").decode()
OLDER = {"api-version": "2024-07-01.20.0"}
IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


@asynccontextmanager
async def service() -> AsyncIterator[tuple[BatchClient, FakeExecutor, FakeClock, str]]:
    pool = {
        "id": "pool1",
        "vmSize": "standard_d2_v2",
        "targetDedicatedNodes": 1,
        "virtualMachineConfiguration": IMAGE,
    }
    async with fake_endpoint(KEY, pool) as running:
        batch = running.batch
        for job_id in ("job1", "other"):
            job = {"id": job_id, "poolInfo": {"poolId": "pool1"}}
            assert (await call(batch, "POST", "/jobs", body=job)).status == 201
        yield batch, running.executor, running.clock, running.url


async def add_task(batch: BatchClient, task_id: str, **extra: Any) -> int:
    task = {"id": task_id, "commandLine": "/bin/true", **extra}
    answer = await call(batch, "POST", "/jobs/job1/tasks", body=task, params=OLDER)
    return answer.status


async def started_env(executor: FakeExecutor, clock: FakeClock, task_id: str) -> dict[str, str]:
    with anyio.fail_after(10):
        while not any(start.task_id == task_id for start in executor.starts):
            clock.advance(1)
            await anyio.sleep(0.02)
    (start,) = [start for start in executor.starts if start.task_id == task_id]
    return dict(start.environment)


async def with_token(url: str, method: str, path: str, token: str, **body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url + path,
            params={"api-version": "2024-07-01.20.0"},
            headers=headers,
            json=body or None,
        ) as response,
    ):
        document = await response.json(content_type=None) if response.status != 204 else None
        return response.status, document


async def test_the_token_grants_the_tasks_job_and_nothing_else() -> None:
    async with service() as (batch, executor, clock, url):
        assert await add_task(batch, "t1", authenticationTokenSettings={"access": ["job"]}) == 201
        assert await add_task(batch, "plain") == 201
        token = (await started_env(executor, clock, "t1"))["AZ_BATCH_AUTHENTICATION_TOKEN"]
        assert "AZ_BATCH_AUTHENTICATION_TOKEN" not in await started_env(executor, clock, "plain")

        status, job = await with_token(url, "GET", "/jobs/job1", token)
        assert (status, job["id"]) == (200, "job1")
        status, _ = await with_token(url, "GET", "/jobs/job1/tasks", token)
        assert status == 200
        status, _ = await with_token(
            url, "POST", "/jobs/job1/tasks", token, id="byTask", commandLine="/bin/true"
        )
        assert status == 201
        for method, path in (("GET", "/pools"), ("GET", "/jobs/other"), ("GET", "/jobs")):
            status, refused = await with_token(url, method, path, token)
            assert (status, refused["code"]) == (403, "InsufficientAccountPermissions"), path
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        status, refused = await with_token(url, "GET", "/jobs/job1", forged)
        assert (status, refused["code"]) == (401, "InvalidAuthenticationInfo")


async def test_the_settings_are_kept_and_only_job_is_a_scope() -> None:
    async with service() as (batch, _, _, _):
        assert await add_task(batch, "t1", authenticationTokenSettings={"access": ["job"]}) == 201
        older = await call(batch, "GET", "/jobs/job1/tasks/t1", params=OLDER)
        assert older.json()["authenticationTokenSettings"] == {"access": ["job"]}
        latest = await call(batch, "GET", "/jobs/job1/tasks/t1")
        assert "authenticationTokenSettings" not in latest.json()
        refused = await call(
            batch,
            "POST",
            "/jobs/job1/tasks",
            body={
                "id": "t2",
                "commandLine": "x",
                "authenticationTokenSettings": {"access": ["pool"]},
            },
            params=OLDER,
        )
        assert refused.status == 400
        values = {item["key"]: item["value"] for item in refused.json()["values"]}
        assert values["PropertyName"] == "authenticationTokenSettings.access"
