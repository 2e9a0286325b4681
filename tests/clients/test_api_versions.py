"""Every api-version the Batch service accepts is answered, each in its own shape where the
shapes differ; any other version gets the service's 400."""

from __future__ import annotations

from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY
from tests.endpoint.support import call

# The service's history of Batch service API versions from 2018 on (written out here, not
# read from the endpoint, so that a version dropped there fails this test).
ACCEPTED = [
    "2018-03-01.6.1",
    "2018-08-01.7.0",
    "2018-12-01.8.0",
    "2019-06-01.9.0",
    "2019-08-01.10.0",
    "2020-03-01.11.0",
    "2020-09-01.12.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
]
BEFORE_SLOTS = ACCEPTED[: ACCEPTED.index("2020-09-01.12.0")]
POOL = {
    "id": "vpool",
    "vmSize": "standard_d1_v2",
    "targetDedicatedNodes": 1,
    "taskSlotsPerNode": 2,
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "24_04"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    },
}


def client(emulator: Emulator) -> BatchClient:
    return BatchClient(emulator.url, AzureNamedKeyCredential(ACCOUNT, KEY))


async def test_every_accepted_version_is_answered_in_its_shape(emulator: Emulator) -> None:
    async with client(emulator) as batch:
        created = await call(batch, "POST", "/pools", body=POOL)
        assert created.status == 201, created.body
        job = {"id": "vjob", "poolInfo": {"poolId": "vpool"}}
        assert (await call(batch, "POST", "/jobs", body=job)).status == 201
        task = {"id": "t1", "commandLine": "/bin/true"}
        assert (await call(batch, "POST", "/jobs/vjob/tasks", body=task)).status == 201
        await emulator.settle()
        for version in ACCEPTED:
            params = {"api-version": version}
            pool = await call(batch, "GET", "/pools/vpool", params=params)
            assert pool.status == 200, (version, pool.body)
            counts = await call(batch, "GET", "/jobs/vjob/taskcounts", params=params)
            assert counts.status == 200, (version, counts.body)
            got = await call(batch, "GET", "/jobs/vjob/tasks/t1", params=params)
            if version in BEFORE_SLOTS:
                assert pool.json()["maxTasksPerNode"] == 2 and "taskSlotsPerNode" not in pool.json()
                assert counts.json()["completed"] == 1 and "taskCounts" not in counts.json()
                assert "requiredSlots" not in got.json()
            else:
                assert pool.json()["taskSlotsPerNode"] == 2 and "maxTasksPerNode" not in pool.json()
                assert counts.json()["taskCounts"]["completed"] == 1
                assert counts.json()["taskSlotCounts"]["completed"] == 1
                assert got.json()["requiredSlots"] == 1
            # Certificates left the API with 2025-06-01; before it, pools and nodes carry none.
            nodes = await call(batch, "GET", "/pools/vpool/nodes", params=params)
            for shown in (pool.json(), *nodes.json()["value"]):
                if version == "2025-06-01":
                    assert "certificateReferences" not in shown
                else:
                    assert shown["certificateReferences"] == []


async def test_an_older_version_writes_max_tasks_per_node(emulator: Emulator) -> None:
    old = {k: v for k, v in POOL.items() if k != "taskSlotsPerNode"} | {"maxTasksPerNode": 3}
    async with client(emulator) as batch:
        params = {"api-version": "2019-08-01.10.0"}
        assert (await call(batch, "POST", "/pools", body=old, params=params)).status == 201
        pool = await call(batch, "GET", "/pools/vpool")
        assert pool.json()["taskSlotsPerNode"] == 3


async def test_unknown_and_retired_versions_get_the_services_400(emulator: Emulator) -> None:
    async with client(emulator) as batch:
        for version in ("2017-09-01.6.0", "2016-07-01.3.1", "2025-13-01", "latest", ""):
            answer = await call(batch, "GET", "/pools", params={"api-version": version})
            assert answer.status == 400, (version, answer.body)
            error = answer.json()
            assert error["code"] == "InvalidQueryParameterValue"
            assert error["message"]["value"].startswith(
                "Value for one of the query parameters specified in the request URI is invalid."
            )
            values = {item["key"]: item["value"] for item in error["values"]}
            assert values["QueryParameterName"] == "api-version"
            assert values["QueryParameterValue"] == version
