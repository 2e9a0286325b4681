"""Auto pools through the REST endpoint over the fake executor: the recorded Add Job with an
auto pool (`recordings/jobs.json`) answered in the recorded shape, the pool there and gone with
the job, and the refusals (REST Add Job)."""

from __future__ import annotations

import re
from typing import Any

import anyio

from tests.core.test_endpoint_autoscale import IMAGE, client, values
from tests.endpoint.support import call

GUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"


def auto_pool(**options: Any) -> dict[str, Any]:
    pool = {"vmSize": "standard_d2_v2", "virtualMachineConfiguration": IMAGE}
    return {"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": pool, **options}}


async def test_the_recorded_auto_pool_job() -> None:
    async with client() as batch:
        body = {"id": "batch_job1_bb11edc", "poolInfo": auto_pool()}
        assert (await call(batch, "POST", "/jobs", body=body)).status == 201
        job = (await call(batch, "GET", "/jobs/batch_job1_bb11edc")).json()
        # As recorded: the specification with the service's defaults, no poolId beside it,
        # and the pool's id (an upper-case GUID) in executionInfo.
        spec = job["poolInfo"]["autoPoolSpecification"]
        assert set(job["poolInfo"]) == {"autoPoolSpecification"}
        assert (spec["poolLifetimeOption"], spec["keepAlive"]) == ("job", False)
        pool = spec["pool"]
        assert (pool["taskSlotsPerNode"], pool["resizeTimeout"]) == (1, "PT15M")
        assert (pool["targetDedicatedNodes"], pool["enableAutoScale"]) == (0, False)
        assert pool["taskSchedulingPolicy"]["nodeFillType"].lower() == "spread"
        pool_id = job["executionInfo"]["poolId"]
        assert re.fullmatch(GUID, pool_id)
        assert (await call(batch, "GET", f"/pools/{pool_id}")).status == 200
        assert (await call(batch, "POST", "/jobs/batch_job1_bb11edc/terminate")).status == 202
        with anyio.fail_after(5):
            while (await call(batch, "GET", f"/pools/{pool_id}")).status != 404:
                await anyio.sleep(0.02)


async def test_auto_pool_refusals() -> None:
    async with client() as batch:
        schedule = {"id": "j1", "poolInfo": auto_pool(poolLifetimeOption="jobschedule")}
        answer = await call(batch, "POST", "/jobs", body=schedule)
        assert (answer.status, answer.json()["code"]) == (501, "NotSupported")
        long_prefix = {"id": "j2", "poolInfo": auto_pool(autoPoolIdPrefix="p" * 21)}
        answer = await call(batch, "POST", "/jobs", body=long_prefix)
        assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
        assert values(answer)["PropertyName"] == "poolInfo.autoPoolSpecification.autoPoolIdPrefix"
        both = {"id": "j3", "poolInfo": {**auto_pool(), "poolId": "other"}}
        answer = await call(batch, "POST", "/jobs", body=both)
        assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
        assert (await call(batch, "GET", "/pools")).json()["value"] == []
        kept = {"id": "j4", "poolInfo": auto_pool(autoPoolIdPrefix="mine", keepAlive=True)}
        assert (await call(batch, "POST", "/jobs", body=kept)).status == 201
        (listed,) = (await call(batch, "GET", "/pools")).json()["value"]
        assert re.fullmatch(f"mine_{GUID}", listed["id"])
