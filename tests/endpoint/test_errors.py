"""Refusals: the service's status codes and error bodies for the project's errors, for bad
requests, for operations the endpoint does not emulate, and for bad credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from jobprep_release.backends.azure import AzureBackend
from jobprep_release.backends.errors import AuthenticationFailed
from tests.conftest import Ids
from tests.endpoint.harness import FAST, KEY, credential, endpoint, sdk_client
from tests.endpoint.support import API_VERSION, Answer, call, walk_model

OTHER_KEY = "b3RoZXIta2V5LXRoYXQtaXMtbm90LXRoZS1lbmRwb2ludHM="


def refused(answer: Answer, status: int, code: str) -> str:
    """The answer is the service's error body with that status and code; its message."""
    assert answer.status == status, (answer.status, answer.body)
    body = answer.json()
    assert body["code"] == code, body
    assert body["odata.metadata"].endswith(
        "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
    )
    assert body["message"]["lang"] == "en-US"
    error = models.BatchError(body)
    walk_model(error)
    assert error.code == code and error.message is not None
    assert "RequestId:" in str(error.message.value)
    return str(body["message"]["value"])


def pool_body(pool_id: str, nodes: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": pool_id,
        "vmSize": "standard_d1_v2",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "o", "sku": "s"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
        "targetDedicatedNodes": nodes,
        **extra,
    }


async def test_the_projects_errors_have_the_services_codes(ids: Ids, state_dir: Path) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        refused(await call(client, "GET", f"/pools/{ids.pool}"), 404, "PoolNotFound")
        refused(await call(client, "GET", f"/jobs/{ids.job}"), 404, "JobNotFound")
        refused(await call(client, "GET", f"/jobs/{ids.job}/tasks/t"), 404, "JobNotFound")

        assert (await call(client, "POST", "/pools", body=pool_body(ids.pool))).status == 201
        refused(await call(client, "POST", "/pools", body=pool_body(ids.pool)), 409, "PoolExists")
        refused(
            await call(client, "GET", f"/pools/{ids.pool}/nodes/tvm-1_1-20250101t000000z"),
            404,
            "NodeNotFound",
        )
        refused(
            await call(client, "POST", "/pools", body=pool_body("bad id!")),
            400,
            "InvalidPropertyValue",
        )
        message = refused(
            await call(
                client,
                "POST",
                "/pools",
                body=pool_body(
                    "p2",
                    mountConfiguration=[
                        {"nfsMountConfiguration": {"source": "s", "relativeMountPath": "m"}}
                    ],
                ),
            ),
            501,
            "NotSupported",
        )
        assert "mountConfiguration" in message

        job = {"id": ids.job, "poolInfo": {"poolId": ids.pool}}
        refused(
            await call(client, "POST", "/jobs", body={"id": "j"}), 400, "MissingRequiredProperty"
        )
        refused(await call(client, "POST", "/jobs", body=[1]), 400, "InvalidRequestBody")
        assert (await call(client, "POST", "/jobs", body=job)).status == 201
        refused(await call(client, "POST", "/jobs", body=job), 409, "JobExists")
        refused(
            await call(client, "GET", f"/jobs/{ids.job}/jobpreparationandreleasetaskstatus"),
            409,
            "JobPreparationTaskNotSpecified",
        )

        task = {"id": "t1", "commandLine": "/bin/true"}
        assert (await call(client, "POST", f"/jobs/{ids.job}/tasks", body=task)).status == 201
        refused(await call(client, "POST", f"/jobs/{ids.job}/tasks", body=task), 409, "TaskExists")
        refused(await call(client, "GET", f"/jobs/{ids.job}/tasks/nope"), 404, "TaskNotFound")
        refused(
            await call(client, "GET", f"/jobs/{ids.job}/tasks/t1/files/stdout.txt"),
            404,
            "FileNotFound",  # the pool has no node: the task never ran
        )
        collection = {"value": [task, {"id": "t2", "commandLine": "x"}, {"id": "T2"}]}
        refused(
            await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=collection),
            400,
            "MissingRequiredProperty",  # T2 has no commandLine: nothing was added
        )
        collection["value"][2]["commandLine"] = "x"
        answer = await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=collection)
        assert answer.status == 200
        results = models.BatchCreateTaskCollectionResult(answer.json()).result_values or []
        assert [(r.task_id, r.status, r.error.code if r.error else None) for r in results] == [
            ("t1", "clienterror", "TaskExists"),
            ("t2", "success", None),
            ("T2", "clienterror", "DuplicateTaskId"),
        ]
        many = {"value": [{"id": f"m{n}", "commandLine": "x"} for n in range(101)]}
        refused(
            await call(client, "POST", f"/jobs/{ids.job}/addtaskcollection", body=many),
            413,
            "RequestBodyTooLarge",
        )

        refused(
            await call(client, "GET", "/jobs", params={"$filter": "id eq"}),
            400,
            "InvalidQueryParameterValue",
        )
        refused(
            await call(client, "GET", "/jobs", params={"maxresults": "0"}),
            400,
            "InvalidQueryParameterValue",
        )
        refused(
            await call(client, "GET", "/jobs", params={"api-version": "2019-01-01.8.0"}),
            400,
            "InvalidQueryParameterValue",
        )

        assert (await call(client, "POST", f"/jobs/{ids.job}/terminate")).status == 202
        refused(await call(client, "POST", f"/jobs/{ids.job}/terminate"), 409, "JobCompleted")
        refused(
            await call(client, "POST", f"/jobs/{ids.job}/tasks", body={**task, "id": "late"}),
            409,
            "JobCompleted",
        )
        assert (await call(client, "DELETE", f"/jobs/{ids.job}")).status == 202
        assert (await call(client, "DELETE", f"/pools/{ids.pool}")).status == 202


async def test_unemulated_operations_are_named(state_dir: Path) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        message = refused(
            await call(client, "POST", "/pools/p/nodes/n/deallocate", body={}), 501, "NotSupported"
        )
        assert "Deallocate Node" in message
        assert "Certificates" in refused(
            await call(client, "GET", "/certificates"), 501, "NotSupported"
        )
        assert "List Node Extensions" in refused(
            await call(client, "GET", "/pools/p/nodes/n/extensions"), 501, "NotSupported"
        )
        # Node users and remote login: nodes have no login service; the refusal says what to
        # use instead (README, "Not emulated").
        user = {"name": "u", "password": "p"}
        for method, path, body in (
            ("POST", "/pools/p/nodes/n/users", user),
            ("PUT", "/pools/p/nodes/n/users/u", {"password": "p"}),
            ("DELETE", "/pools/p/nodes/n/users/u", None),
            ("GET", "/pools/p/nodes/n/remoteloginsettings", None),
        ):
            message = refused(await call(client, method, path, body=body), 501, "NotSupported")
            assert "login service" in message and "userAccounts" in message, message
        assert "Certificates" in refused(
            await call(client, "GET", "/certificates"), 501, "NotSupported"
        )
        refused(await call(client, "GET", "/no/such/thing"), 400, "InvalidUri")
        # Options that would change an answer are refused too, not ignored.
        refused(
            await call(client, "GET", "/jobs", params={"$expand": "stats"}), 501, "NotSupported"
        )
        # $expand: metadata is honoured on Get and List of pools and jobs, stats is not (no
        # statistics are kept), an expansion the REST API does not name is 400, and $expand
        # elsewhere stays refused.
        for path in ("/jobs", "/pools"):
            listed = await call(client, "GET", path, params={"$expand": "metadata"})
            assert listed.status == 200, (path, listed.body)
        refused(
            await call(client, "GET", "/pools", params={"$expand": "metadata,stats"}),
            501,
            "NotSupported",
        )
        # Unless a $select leaves stats out: the expansion adds nothing (azure-batch's own
        # suite asks $select=id,state with $expand=stats).
        for path in ("/jobs", "/pools"):
            selected = await call(
                client, "GET", path, params={"$select": "id,state", "$expand": "stats"}
            )
            assert selected.status == 200, (path, selected.body)
        refused(
            await call(client, "GET", "/pools", params={"$select": "id,stats", "$expand": "stats"}),
            501,
            "NotSupported",
        )
        refused(
            await call(client, "GET", "/jobs", params={"$expand": "tasks"}),
            400,
            "InvalidQueryParameterValue",
        )
        refused(
            await call(client, "GET", "/jobs/j/tasks", params={"$expand": "stats"}),
            501,
            "NotSupported",
        )
        refused(
            await call(client, "GET", "/pools", headers={"If-None-Match": "0x8D0"}),
            501,
            "NotSupported",
        )
        # And through the SDK: a clear error, never a silent success.
        with pytest.raises(HttpResponseError) as raised:
            [metrics async for metrics in client.list_pool_usage_metrics()]
        assert raised.value.status_code == 501
        assert raised.value.error is not None and raised.value.error.code == "NotSupported"


async def test_bad_signatures_are_refused(state_dir: Path) -> None:
    async with endpoint(state_dir) as running:
        async with sdk_client(running, key=OTHER_KEY) as client:
            answer = await call(client, "GET", "/pools")
            refused(answer, 403, "AuthenticationFailed")
            with pytest.raises(HttpResponseError) as raised:
                await client.get_pool("p")
            assert raised.value.status_code == 403
            assert raised.value.error is not None
            assert raised.value.error.code == "AuthenticationFailed"

        async with sdk_client(running) as client:
            stale = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
            refused(
                await call(client, "GET", "/pools", headers={"ocp-date": stale}),
                403,
                "AuthenticationFailed",
            )
            assert (await call(client, "GET", "/pools")).status == 200

        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"Authorization": "Bearer token"}):
                async with session.get(
                    f"{running.url}/pools", params={"api-version": API_VERSION}, headers=headers
                ) as response:
                    assert response.status == 401
                    assert (await response.json())["code"] == "AuthenticationFailed"

        # The azure backend reports it as the project's error, without the key.
        backend = AzureBackend(running.url, credential(running, OTHER_KEY), **FAST)
        async with backend:
            with pytest.raises(AuthenticationFailed) as failed:
                await backend.find_job("job")
        assert OTHER_KEY not in failed.value.one_line() and KEY not in failed.value.one_line()

        # Another account's name is refused too.
        other = AzureNamedKeyCredential("someoneelse", running.key)
        async with BatchClient(running.url, other, retry_total=0) as client:
            with pytest.raises(HttpResponseError) as raised:
                await client.get_pool("p")
            assert raised.value.status_code == 403
