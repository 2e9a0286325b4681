"""``resizeTimeout`` through the REST endpoint over the fake executor, its clock moved by hand
(`EndpointSettings.clock`): a resize whose nodes are not all allocated by its timeout ends
``steady`` with the service's ``resizeErrors``.

Expected values come from the REST reference (api-version 2025-06-01): Add Pool and Resize
Pool (``resizeTimeout`` "the default value is 15 minutes. The minimum value is 5 minutes"),
BatchPool (``resizeErrors`` "set only if the pool's allocationState is steady"), and the Batch
SDKs' PoolResizeErrorCodes (``AllocationTimedout``: "the Batch service was unable to allocate
the desired number of compute nodes within the resize timeout"). The clock moves a minute at a
time: the service checks deadlines each minute, so a resize ends within the minute after its
timeout.
"""

from __future__ import annotations

import base64
from typing import Any

import anyio
from azure.batch.aio import BatchClient

from jobprep_release.backends.docker.core import FakeClock
from tests.core.harness import fake_endpoint
from tests.core.test_endpoint_autoscale import pool_body
from tests.endpoint.support import call

KEY = base64.b64encode(b"resize-timeout-endpoint-test-key").decode()
MINUTE = 60.0


async def minutes(clock: FakeClock, count: int) -> None:
    for _ in range(count):
        clock.advance(MINUTE)
        await anyio.sleep(0.02)


async def pool(batch: BatchClient, pool_id: str) -> dict[str, Any]:
    answer = await call(batch, "GET", f"/pools/{pool_id}")
    assert answer.status == 200, answer.json()
    document: dict[str, Any] = answer.json()
    return document


async def test_add_pool_past_its_resize_timeout_ends_with_allocation_timed_out() -> None:
    body = pool_body("p1", targetDedicatedNodes=2, resizeTimeout="PT5M")
    async with fake_endpoint(KEY, body, hold_creation=True) as running:
        batch, clock = running.batch, running.clock
        await minutes(clock, 4)
        shown = await pool(batch, "p1")
        assert shown["allocationState"] == "resizing" and "resizeErrors" not in shown
        await minutes(clock, 2)
        shown = await pool(batch, "p1")
        assert shown["allocationState"] == "steady"
        assert shown["resizeTimeout"] == "PT5M"
        assert [error["code"] for error in shown["resizeErrors"]] == ["AllocationTimedout"]
        assert "dedicated" in shown["resizeErrors"][0]["message"]
        assert (shown["targetDedicatedNodes"], shown["currentDedicatedNodes"]) == (2, 0)


async def test_resize_pool_sets_its_own_timeout() -> None:
    async with fake_endpoint(KEY, pool_body("p1", targetDedicatedNodes=1)) as running:
        batch, executor, clock = running.batch, running.executor, running.clock
        with anyio.fail_after(5):
            while (await pool(batch, "p1"))["allocationState"] != "steady":
                await anyio.sleep(0.01)
        executor.hold_creation = True
        resize = {"targetDedicatedNodes": 2, "resizeTimeout": "PT8M"}
        assert (await call(batch, "POST", "/pools/p1/resize", body=resize)).status == 202
        await minutes(clock, 7)  # past the default's 5 minutes, short of the 8 asked
        shown = await pool(batch, "p1")
        assert shown["allocationState"] == "resizing" and shown["resizeTimeout"] == "PT8M"
        await minutes(clock, 2)
        shown = await pool(batch, "p1")
        assert shown["allocationState"] == "steady"
        assert [error["code"] for error in shown["resizeErrors"]] == ["AllocationTimedout"]
        assert (shown["targetDedicatedNodes"], shown["currentDedicatedNodes"]) == (2, 1)
        # under the service's minimum: 400 naming it
        short = {"targetDedicatedNodes": 3, "resizeTimeout": "PT4M"}
        answer = await call(batch, "POST", "/pools/p1/resize", body=short)
        assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
