"""Pool properties whose default means nothing on a local node, through the REST endpoint over
the fake executor: accepted, kept and shown back as the service shows them; the values that
would need Azure's infrastructure refused with 501 naming the property.

Expected values come from the REST reference and its examples: UpgradePolicy (``mode``
automatic, manual or rolling; Update Pool changes it "only when the pool is empty"),
BatchNodePlacementConfiguration (``policy`` regional, the default, or zonal), BatchOsDisk
(caching ``none`` by default for standard storage), and, for api-versions 2022-10-01.16.0 to
2024-07-01.20.0, ``targetNodeCommunicationMode`` (default, classic, simplified; Replace Pool
Properties: "if omitted, the existing setting is default") and ``resourceTags`` (the example
PoolAdd_ResourceTags). ``currentNodeCommunicationMode`` as the service's recorded answers have
it (recordings/network_configuration.json: absent while the pool has no node, ``classic`` for a
pool given no mode once it has one).
"""

from __future__ import annotations

from typing import Any

import anyio

from tests.core.test_endpoint_autoscale import IMAGE, client, pool_body
from tests.endpoint.support import Answer, call

OLDER = {"api-version": "2024-07-01.20.0"}
TAGS = {"TagName1": "TagValue1", "TagName2": "TagValue2"}


def refused_names(answer: Answer) -> list[str]:
    return [
        item["value"] for item in answer.json().get("values", []) if item["key"] == "PropertyName"
    ]


def machine(**properties: Any) -> dict[str, Any]:
    return {**IMAGE, **properties}


async def test_defaults_are_kept_and_shown_back() -> None:
    async with client() as batch:
        body = pool_body(
            "p1",
            upgradePolicy={"mode": "manual"},
            virtualMachineConfiguration=machine(
                nodePlacementConfiguration={"policy": "regional"},
                osDisk={"caching": "none", "writeAcceleratorEnabled": False},
            ),
        )
        assert (await call(batch, "POST", "/pools", body=body)).status == 201
        shown = (await call(batch, "GET", "/pools/p1")).json()
        assert shown["upgradePolicy"] == {"mode": "manual"}
        configuration = shown["virtualMachineConfiguration"]
        assert configuration["nodePlacementConfiguration"] == {"policy": "regional"}
        assert configuration["osDisk"] == {"caching": "none", "writeAcceleratorEnabled": False}
        plain = pool_body("p2")
        assert (await call(batch, "POST", "/pools", body=plain)).status == 201
        shown = (await call(batch, "GET", "/pools/p2")).json()
        assert "upgradePolicy" not in shown
        assert "nodePlacementConfiguration" not in shown["virtualMachineConfiguration"]


async def test_what_needs_azure_is_refused_naming_it() -> None:
    rolling = {"mode": "manual", "rollingUpgradePolicy": {"maxBatchInstancePercent": 20}}
    cases = [
        (pool_body("r1", upgradePolicy={"mode": "automatic"}), "upgradePolicy.mode"),
        (pool_body("r2", upgradePolicy={"mode": "rolling"}), "upgradePolicy.mode"),
        (pool_body("r3", upgradePolicy=rolling), "upgradePolicy.rollingUpgradePolicy"),
        (
            pool_body(
                "r4",
                virtualMachineConfiguration=machine(nodePlacementConfiguration={"policy": "zonal"}),
            ),
            "nodePlacementConfiguration.policy",
        ),
        (
            pool_body("r5", virtualMachineConfiguration=machine(osDisk={"diskSizeGB": 100})),
            "virtualMachineConfiguration.osDisk",  # nothing of it kept: named whole
        ),
        (
            pool_body("r6", virtualMachineConfiguration=machine(osDisk={"caching": "readwrite"})),
            "osDisk.caching",
        ),
    ]
    async with client() as batch:
        for body, name in cases:
            answer = await call(batch, "POST", "/pools", body=body)
            assert (answer.status, answer.json()["code"]) == (501, "NotSupported"), body
            assert name in answer.json()["message"]["value"], answer.json()
        assert [p["id"] for p in (await call(batch, "GET", "/pools")).json()["value"]] == []


async def test_upgrade_policy_is_updated_only_on_an_empty_pool() -> None:
    async with client() as batch:
        body = pool_body("p1", targetDedicatedNodes=1)
        assert (await call(batch, "POST", "/pools", body=body)).status == 201
        await _with_a_node(batch, "p1")
        patch = {"upgradePolicy": {"mode": "manual"}}
        # `manual` is what a pool given no upgradePolicy has (UpgradeMode): no change.
        assert (await call(batch, "PATCH", "/pools/p1", body=patch)).status == 200
        order = {"taskSchedulingPolicy": {"nodeFillType": "spread", "jobDefaultOrder": "none"}}
        assert (await call(batch, "PATCH", "/pools/p1", body=order)).status == 200
        order["taskSchedulingPolicy"]["jobDefaultOrder"] = "creationtime"
        answer = await call(batch, "PATCH", "/pools/p1", body=order)
        assert (answer.status, answer.json()["code"]) == (400, "PropertyCannotBeUpdated")
        assert (await call(batch, "POST", "/pools", body=pool_body("p2"))).status == 201
        assert (await call(batch, "PATCH", "/pools/p2", body=patch)).status == 200
        assert (await call(batch, "GET", "/pools/p2")).json()["upgradePolicy"] == patch[
            "upgradePolicy"
        ]
        answer = await call(
            batch, "PATCH", "/pools/p2", body={"upgradePolicy": {"mode": "rolling"}}
        )
        assert (answer.status, answer.json()["code"]) == (501, "NotSupported")


async def _pool(batch: Any, pool_id: str, version: dict[str, str] = OLDER) -> dict[str, Any]:
    answer = await call(batch, "GET", f"/pools/{pool_id}", params=version)
    assert answer.status == 200, answer.json()
    document: dict[str, Any] = answer.json()
    return document


async def _with_a_node(batch: Any, pool_id: str) -> dict[str, Any]:
    with anyio.fail_after(5):
        while (shown := await _pool(batch, pool_id))["currentDedicatedNodes"] < 1:
            await anyio.sleep(0.01)
    return shown


async def test_node_communication_mode_and_resource_tags_before_2025_06_01() -> None:
    async with client() as batch:
        body = pool_body(
            "p1", targetDedicatedNodes=1, targetNodeCommunicationMode="classic", resourceTags=TAGS
        )
        answer = await call(batch, "POST", "/pools", body=body, params=OLDER)
        assert answer.status == 201, answer.json()
        shown = await _pool(batch, "p1")
        assert shown["targetNodeCommunicationMode"] == "classic"
        assert shown["resourceTags"] == TAGS
        shown = await _with_a_node(batch, "p1")
        assert shown["currentNodeCommunicationMode"] == "classic"
        # 2025-06-01 has none of the three.
        latest = await _pool(batch, "p1", {})
        assert not {"targetNodeCommunicationMode", "currentNodeCommunicationMode"} & set(latest)
        assert "resourceTags" not in latest
        # Update Pool sets the mode; Replace Pool Properties without it sets it back to default.
        patch = {"targetNodeCommunicationMode": "simplified"}
        assert (await call(batch, "PATCH", "/pools/p1", body=patch, params=OLDER)).status == 200
        shown = await _pool(batch, "p1")
        assert shown["targetNodeCommunicationMode"] == "simplified"
        assert shown["currentNodeCommunicationMode"] == "simplified"
        replace: dict[str, Any] = {"applicationPackageReferences": [], "metadata": []}
        answer = await call(batch, "POST", "/pools/p1/updateproperties", body=replace, params=OLDER)
        assert answer.status == 204, answer.json()
        shown = await _pool(batch, "p1")
        assert shown["targetNodeCommunicationMode"] == "default"
        assert shown["currentNodeCommunicationMode"] == "classic"
        # A pool given no mode shows none, and classic once it has a node (as recorded).
        body = pool_body("p2", targetDedicatedNodes=1)
        assert (await call(batch, "POST", "/pools", body=body, params=OLDER)).status == 201
        shown = await _with_a_node(batch, "p2")
        assert "targetNodeCommunicationMode" not in shown
        assert shown["currentNodeCommunicationMode"] == "classic"


async def test_bad_modes_and_tags_are_400_naming_them() -> None:
    async with client() as batch:
        for extra, name in (
            ({"targetNodeCommunicationMode": "fast"}, "targetNodeCommunicationMode"),
            ({"resourceTags": {"a": 1}}, "resourceTags"),
        ):
            answer = await call(batch, "POST", "/pools", body=pool_body("p1", **extra))
            assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
            assert refused_names(answer) == [name]
        answer = await call(
            batch, "PATCH", "/pools/none", body={"resourceTags": TAGS}, params=OLDER
        )
        assert (answer.status, answer.json()["code"]) == (501, "NotSupported")
        assert refused_names(answer) == ["resourceTags"]


async def test_an_auto_pools_node_communication_mode_is_kept() -> None:
    """The reference's JobSchedules_CreateJobSchedule_Complex example gives its auto pool
    ``targetNodeCommunicationMode`` ``default``: Add Job and Add Job Schedule take it, and the
    pool made with the job shows it (at an api-version that has it)."""
    auto = {
        "autoPoolIdPrefix": "auto",
        "poolLifetimeOption": "job",
        "pool": {
            "vmSize": "standard_d2_v2",
            "virtualMachineConfiguration": IMAGE,
            "targetNodeCommunicationMode": "default",
        },
    }
    async with client() as batch:
        job = {"id": "j1", "poolInfo": {"autoPoolSpecification": auto}}
        assert (await call(batch, "POST", "/jobs", body=job)).status == 201
        pool_id = (await call(batch, "GET", "/jobs/j1")).json()["executionInfo"]["poolId"]
        shown = await _pool(batch, pool_id)
        assert shown["targetNodeCommunicationMode"] == "default"
        scheduled = {**auto, "poolLifetimeOption": "jobschedule"}
        schedule = {
            "id": "s1",
            "schedule": {"recurrenceInterval": "PT1H"},
            "jobSpecification": {"poolInfo": {"autoPoolSpecification": scheduled}},
        }
        answer = await call(batch, "POST", "/jobschedules", body=schedule)
        assert answer.status == 201, answer.json()
