"""Every request body goes through its SDK model: what the endpoint honours is applied (and GET
shows it), any other property is 501 ``NotSupported`` naming it, a value of the wrong type or
outside the service's limits is 400 ``InvalidPropertyValue`` naming it; query parameters the
endpoint does not honour are 501 naming them.

The pool has no nodes (no containers are made); the limits are the REST reference's
(api-version 2025-06-01).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.batch.aio import BatchClient

from jobprep_release.backends.schema.requests import LOCAL_SUBSCRIPTION
from tests.conftest import Ids
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import Answer, call


def pool_body(pool_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": pool_id,
        "vmSize": "standard_d1_v2",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "o", "sku": "s"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
        "targetDedicatedNodes": 0,
        **extra,
    }


def values(answer: Answer) -> dict[str, str]:
    return {value["key"]: value["value"] for value in answer.json().get("values", [])}


def not_supported(answer: Answer, name: str) -> None:
    """501 ``NotSupported`` naming the property `name`."""
    assert answer.status == 501, (answer.status, answer.body)
    assert answer.json()["code"] == "NotSupported"
    assert values(answer).get("PropertyName") == name, answer.body


def invalid(answer: Answer, name: str) -> None:
    """400 ``InvalidPropertyValue`` naming the property `name`, with a reason."""
    assert answer.status == 400, (answer.status, answer.body)
    assert answer.json()["code"] == "InvalidPropertyValue", answer.body
    found = values(answer)
    assert found.get("PropertyName") == name, answer.body
    assert found.get("Reason"), answer.body


async def _pool_and_job(client: BatchClient, ids: Ids) -> None:
    assert (await call(client, "POST", "/pools", body=pool_body(ids.pool))).status == 201
    job = {"id": ids.job, "poolInfo": {"poolId": ids.pool}}
    assert (await call(client, "POST", "/jobs", body=job)).status == 201


async def test_other_bodies_are_honoured_or_refused(ids: Ids, state_dir: Path) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        await _pool_and_job(client, ids)
        resize = f"/pools/{ids.pool}/resize"
        try:
            # Resize Pool: resizeTimeout becomes the pool's (the service sets it on resize).
            answer = await call(
                client, "POST", resize, body={"targetDedicatedNodes": 0, "resizeTimeout": "PT30M"}
            )
            assert answer.status == 202, answer.body
            pool = (await call(client, "GET", f"/pools/{ids.pool}")).json()
            assert pool["resizeTimeout"] == "PT30M"
            body: dict[str, Any] = {"targetDedicatedNodes": 0, "unknownProperty": 1}
            not_supported(await call(client, "POST", resize, body=body), "unknownProperty")
            body = {
                "targetDedicatedNodes": 0,
                "nodeDeallocationOption": "taskcompletion",
                "resizeTimeout": "PT30M",
            }
            assert (await call(client, "POST", resize, body=body)).status == 202
            for short in ("PT0S", "PT1M"):
                body = {"targetDedicatedNodes": 0, "resizeTimeout": short}
                invalid(await call(client, "POST", resize, body=body), "resizeTimeout")
            body = {"targetDedicatedNodes": "many"}
            invalid(await call(client, "POST", resize, body=body), "targetDedicatedNodes")
            pool = (await call(client, "GET", f"/pools/{ids.pool}")).json()
            assert pool["resizeTimeout"] == "PT30M"  # the refused resizes changed nothing

            # Reboot and Reimage Node: the body is read before the node is looked for.
            node = f"/pools/{ids.pool}/nodes/no-such-node"
            for operation in ("reboot", "reimage"):
                answer = await call(client, "POST", f"{node}/{operation}", body={"extra": 1})
                not_supported(answer, "extra")
            answer = await call(
                client, "POST", f"{node}/reimage", body={"nodeReimageOption": "retaineddata"}
            )
            not_supported(answer, "nodeReimageOption")
            answer = await call(client, "POST", f"{node}/reboot", body={"nodeRebootOption": 3})
            invalid(answer, "nodeRebootOption")

            # Add Task Collection: a property beside value.
            tasks = {"value": [{"id": "t1", "commandLine": "/bin/true"}], "extra": True}
            answer = await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=tasks)
            not_supported(answer, "extra")
            answer = await call(client, "GET", f"/jobs/{ids.job}/tasks/t1")
            assert answer.status == 404, answer.body  # nothing of the refused request was added
            tasks = {"value": [{"id": "t1", "commandLine": "/bin/true"}]}
            answer = await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=tasks)
            assert answer.status == 200, answer.body

            # Terminate Task takes no body.
            answer = await call(
                client, "POST", f"/jobs/{ids.job}/tasks/t1/terminate", body={"reason": "x"}
            )
            not_supported(answer, "reason")
            task = (await call(client, "GET", f"/jobs/{ids.job}/tasks/t1")).json()
            assert task["state"] == "active"

            # Terminate Job: terminateReason only.
            terminate = f"/jobs/{ids.job}/terminate"
            answer = await call(client, "POST", terminate, body={"terminateReason": "x", "foo": 1})
            not_supported(answer, "foo")
            assert (await call(client, "GET", f"/jobs/{ids.job}")).json()["state"] == "active"
            answer = await call(client, "POST", terminate, body={"terminateReason": "done"})
            assert answer.status == 202, answer.body
            job = (await call(client, "GET", f"/jobs/{ids.job}")).json()
            assert job["executionInfo"]["terminateReason"] == "done"
        finally:
            await call(client, "DELETE", f"/jobs/{ids.job}")
            await call(client, "DELETE", f"/pools/{ids.pool}")


async def test_query_parameters_are_honoured_or_refused(ids: Ids, state_dir: Path) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        await _pool_and_job(client, ids)
        job = f"/jobs/{ids.job}"
        try:
            answer = await call(client, "DELETE", job, params={"force": "true"})
            assert answer.status == 501, answer.body
            assert values(answer).get("QueryParameterName") == "force"
            assert (await call(client, "GET", job)).json()["state"] == "active"  # not deleted
            for bad in ("abc", "1.5", "-3"):
                answer = await call(client, "GET", job, params={"timeout": bad})
                assert answer.status == 400, answer.body
                assert answer.json()["code"] == "InvalidQueryParameterValue"
                assert values(answer)["QueryParameterName"] == "timeout"
            answer = await call(client, "GET", job, params={"timeout": "30"})
            assert answer.status == 200, answer.body
        finally:
            await call(client, "DELETE", job)
            await call(client, "DELETE", f"/pools/{ids.pool}")


NAT = "networkConfiguration.endpointConfiguration"


def nat(name: str, backend: int, start: int, size: int = 100) -> dict[str, Any]:
    """An inbound NAT pool: tcp, `backend` port, frontend ports `start` to `start + size - 1`."""
    return {
        "name": name,
        "protocol": "tcp",
        "backendPort": backend,
        "frontendPortRangeStart": start,
        "frontendPortRangeEnd": start + size - 1,
    }


def nat_pools(*pools: dict[str, Any]) -> dict[str, Any]:
    return {"networkConfiguration": {"endpointConfiguration": {"inboundNATPools": list(pools)}}}


# (property path, the body's properties beside the minimal ones)
POOL_LIMITS: list[tuple[str, dict[str, Any]]] = [
    ("resizeTimeout", {"resizeTimeout": "PT0S"}),
    ("resizeTimeout", {"resizeTimeout": "PT4M59S"}),
    ("taskSlotsPerNode", {"taskSlotsPerNode": 0}),
    ("taskSlotsPerNode", {"taskSlotsPerNode": 1000}),
    ("displayName", {"displayName": "x" * 1025}),
    ("metadata", {"metadata": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}),
    ("id", {"id": "has a space"}),
    ("id", {"id": "x" * 65}),
    # REST NetworkConfiguration and InboundNATPool: an ARM subnet id; at most 5 NAT pools;
    # names of letters, digits, '_', '.', '-' starting with a letter or digit; backend ports
    # 1-65535 but 29876-29877; frontend ports 1-65534 but 50000-55000, 40 at least, ranges apart.
    ("networkConfiguration.subnetId", {"networkConfiguration": {"subnetId": "subnet1"}}),
    (
        f"{NAT}.inboundNATPools",
        nat_pools(*[nat(f"n{i}", 80 + i, 40000 + 100 * i) for i in range(6)]),
    ),
    (f"{NAT}.inboundNATPools[0].name", nat_pools(nat("-web", 80, 40000))),
    (f"{NAT}.inboundNATPools[0].backendPort", nat_pools(nat("web", 29876, 40000))),
    (f"{NAT}.inboundNATPools[0].backendPort", nat_pools(nat("web", 65536, 40000))),
    (f"{NAT}.inboundNATPools[0].frontendPortRangeStart", nat_pools(nat("web", 80, 50000))),
    (f"{NAT}.inboundNATPools[0].frontendPortRangeEnd", nat_pools(nat("web", 80, 40000, 39))),
    (f"{NAT}.inboundNATPools[1].name", nat_pools(nat("web", 80, 40000), nat("WEB", 81, 41000))),
    (
        f"{NAT}.inboundNATPools[1].backendPort",
        nat_pools(nat("web", 80, 40000), nat("api", 80, 41000)),
    ),
    (
        f"{NAT}.inboundNATPools[1].frontendPortRangeStart",
        nat_pools(nat("web", 80, 40000), nat("api", 81, 40050)),
    ),
]
JOB_LIMITS: list[tuple[str, dict[str, Any]]] = [
    ("priority", {"priority": 5000}),
    ("priority", {"priority": -1001}),
    ("constraints.maxTaskRetryCount", {"constraints": {"maxTaskRetryCount": -2}}),
    ("constraints.maxWallClockTime", {"constraints": {"maxWallClockTime": "PT0S"}}),
    ("displayName", {"displayName": "x" * 1025}),
    ("id", {"id": "job/1"}),
    (
        "commonEnvironmentSettings",
        {"commonEnvironmentSettings": [{"name": "A", "value": "1"}, {"name": "A"}]},
    ),
]
TASK_LIMITS: list[tuple[str, dict[str, Any]]] = [
    ("requiredSlots", {"requiredSlots": 0}),
    ("requiredSlots", {"requiredSlots": 1.5}),
    ("requiredSlots", {"requiredSlots": "1.5"}),
    ("constraints.maxWallClockTime", {"constraints": {"maxWallClockTime": "PT0S"}}),
    ("constraints.maxTaskRetryCount", {"constraints": {"maxTaskRetryCount": -2}}),
    ("environmentSettings", {"environmentSettings": [{"name": "A"}, {"name": "A"}]}),
    ("id", {"id": "a.b"}),
]


async def test_values_outside_the_limits_are_invalid(ids: Ids, state_dir: Path) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        await _pool_and_job(client, ids)
        try:
            for name, extra in POOL_LIMITS:
                answer = await call(
                    client, "POST", "/pools", body=pool_body(f"{ids.pool}x", **extra)
                )
                invalid(answer, name)
            for name, extra in JOB_LIMITS:
                body = {"id": f"{ids.job}x", "poolInfo": {"poolId": ids.pool}, **extra}
                invalid(await call(client, "POST", "/jobs", body=body), name)
            tasks = f"/jobs/{ids.job}/tasks"
            for name, extra in TASK_LIMITS:
                body = {"id": "t1", "commandLine": "/bin/true", **extra}
                invalid(await call(client, "POST", tasks, body=body), name)
            # In a collection the path is the entry's.
            entry = {"id": "t1", "commandLine": "/bin/true", "requiredSlots": 0}
            body = {"value": [entry]}
            answer = await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=body)
            invalid(answer, "value[0].requiredSlots")
            # Nothing refused was made.
            assert (await call(client, "GET", f"/pools/{ids.pool}x")).status == 404
            assert (await call(client, "GET", f"/jobs/{ids.job}x")).status == 404
            assert (await call(client, "GET", f"{tasks}/t1")).status == 404
            # The limits themselves are allowed; an integer written as a string is taken.
            body = {"id": "t2", "commandLine": "/bin/true", "requiredSlots": "2"}
            assert (await call(client, "POST", tasks, body=body)).status == 201
            assert (await call(client, "GET", f"{tasks}/t2")).json()["requiredSlots"] == 2
            body = {"id": f"{ids.job}y", "poolInfo": {"poolId": ids.pool}, "priority": 0}
            body["constraints"] = {"maxTaskRetryCount": -1}
            assert (await call(client, "POST", "/jobs", body=body)).status == 201
            await call(client, "DELETE", f"/jobs/{ids.job}y")
            edge = pool_body(f"{ids.pool}y", resizeTimeout="PT5M", taskSlotsPerNode=256)
            assert (await call(client, "POST", "/pools", body=edge)).status == 201
            await call(client, "DELETE", f"/pools/{ids.pool}y")
        finally:
            await call(client, "DELETE", f"/jobs/{ids.job}")
            await call(client, "DELETE", f"/pools/{ids.pool}")


async def test_a_subnet_is_refused_as_the_service_refuses_it(ids: Ids, state_dir: Path) -> None:
    """A subnet of another subscription: 400 ``InvalidPropertyValue`` naming it with the
    service's recorded reason; one of the subscription the local account is taken to be in:
    501 (local nodes join no virtual network); the other network settings a container cannot
    have: 501."""
    other = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/test/providers/"
        "Microsoft.Network/virtualNetworks/vnet1/subnets/subnet1"
    )
    local = other.replace("00000000-0000-0000-0000-000000000000", LOCAL_SUBSCRIPTION)
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        body = pool_body(ids.pool, networkConfiguration={"subnetId": other})
        answer = await call(client, "POST", "/pools", body=body)
        invalid(answer, "networkConfiguration.subnetId")
        assert values(answer)["Reason"].startswith(
            "The specified subnetId is in a different subscription"
        )
        body = pool_body(ids.pool, networkConfiguration={"subnetId": local})
        not_supported(
            await call(client, "POST", "/pools", body=body), "networkConfiguration.subnetId"
        )
        for name, value in (
            ("dynamicVNetAssignmentScope", "job"),
            ("enableAcceleratedNetworking", True),
            ("publicIPAddressConfiguration", {"provision": "nopublicipaddresses"}),
        ):
            body = pool_body(ids.pool, networkConfiguration={name: value})
            answer = await call(client, "POST", "/pools", body=body)
            assert answer.status == 501, (name, answer.body)
        assert (await call(client, "GET", f"/pools/{ids.pool}")).status == 404


def shown(sent: Any, got: Any) -> bool:
    """Whether `got` (GET's JSON) holds what was `sent`, with the service's defaults beside."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(shown(v, got.get(k)) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(shown, sent, got))
    return bool(sent == got)


async def test_update_pool_bodies_are_honoured_or_refused(ids: Ids, state_dir: Path) -> None:
    """Update Pool (PATCH) and Replace Pool Properties (REST reference, api-version 2025-06-01):
    on an empty pool every property the endpoint keeps is applied and GET shows it; one it
    cannot hold is 501 naming it; a value outside the limits is 400 naming it."""
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        await _pool_and_job(client, ids)
        path = f"/pools/{ids.pool}"
        try:
            start_task = {
                "commandLine": "/bin/true",
                "environmentSettings": [{"name": "A", "value": "1"}],
                "maxTaskRetryCount": 2,
                "waitForSuccess": False,
            }
            update = {
                "displayName": "renamed",
                "vmSize": "standard_d2_v3",
                "taskSlotsPerNode": 3,
                "taskSchedulingPolicy": {"nodeFillType": "pack"},
                "enableInterNodeCommunication": True,
                "metadata": [{"name": "stage", "value": "two"}],
                "startTask": start_task,
                "userAccounts": [{"name": "alice", "password": "p", "elevationLevel": "admin"}],
                "virtualMachineConfiguration": {
                    "imageReference": {"virtualMachineImageId": "debian:bookworm-slim"},
                    "nodeAgentSKUId": "batch.node.debian 12",
                },
            }
            answer = await call(client, "PATCH", path, body=update)
            assert answer.status == 200, answer.body
            assert answer.headers["ETag"] and answer.headers["Last-Modified"]
            pool = (await call(client, "GET", path)).json()
            for name, value in update.items():
                assert shown(value, pool[name]), (name, pool[name])
            assert pool["resizeTimeout"] == "PT15M"  # what the update does not name is kept

            for name, value in (
                (  # a subnet of the local account's subscription (another one's is 400)
                    "networkConfiguration",
                    {
                        "subnetId": f"/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/g/"
                        "providers/Microsoft.Network/virtualNetworks/v/subnets/s"
                    },
                ),
                (
                    "mountConfiguration",
                    [{"nfsMountConfiguration": {"source": "s", "relativeMountPath": "m"}}],
                ),
                ("applicationPackageReferences", [{"applicationId": "app"}]),
            ):
                answer = await call(client, "PATCH", path, body={name: value})
                assert answer.status == 501, answer.body
                assert name in values(answer)["PropertyName"], answer.body
            invalid(
                await call(client, "PATCH", path, body={"taskSlotsPerNode": 0}), "taskSlotsPerNode"
            )

            # Replace Pool Properties: no startTask removes it; metadata is replaced whole.
            replace = {
                "metadata": [{"name": "owner", "value": "me"}],
                "applicationPackageReferences": [],
            }
            answer = await call(client, "POST", f"{path}/updateproperties", body=replace)
            assert answer.status == 204, answer.body
            pool = (await call(client, "GET", path)).json()
            assert "startTask" not in pool and pool["metadata"] == replace["metadata"]
            assert pool["displayName"] == "renamed"
            answer = await call(client, "POST", f"{path}/updateproperties", body={})
            assert answer.status == 400, answer.body
            assert answer.json()["code"] == "MissingRequiredProperty"
        finally:
            await call(client, "DELETE", f"/jobs/{ids.job}")
            await call(client, "DELETE", f"/pools/{ids.pool}")
