"""Autoscale through the REST endpoint over the fake executor (no engine), as azure-batch 15
sends it and as the service answers: the recorded Enable, Evaluate and Disable Pool Auto Scale
exchange (`recordings/scale_pools.json`, 2024-07-01.20.0), Add Pool with ``enableAutoScale``,
and the service's refusals with their codes and values."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.docker.core import FakeClock, FakeExecutor
from jobprep_release.backends.docker.core.autoscaling import FIRST_EVALUATION_DELAY
from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint
from tests.endpoint.support import Answer, call

KEY = base64.b64encode(b"autoscale-endpoint-test-key-0123").decode()
IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


def pool_body(pool_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": pool_id,
        "vmSize": "standard_d2_v2",
        "virtualMachineConfiguration": IMAGE,
        **properties,
    }


CLOCK = FakeClock()


@asynccontextmanager
async def client() -> AsyncIterator[BatchClient]:
    executor = FakeExecutor(CLOCK)
    settings = EndpointSettings(
        account="fakebatch", key=KEY, port=0, executor=executor, clock=CLOCK
    )
    async with running_endpoint(settings) as running:
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential, retry_total=0) as batch:
            yield batch


async def first_run() -> None:
    """Move the fake clock past the first evaluation after enabling, and let it happen."""
    CLOCK.advance(FIRST_EVALUATION_DELAY)
    await anyio.sleep(0.05)


def values(answer: Answer) -> dict[str, str]:
    return {item["key"]: item["value"] for item in answer.json().get("values", [])}


async def test_the_recorded_enable_evaluate_disable_exchange() -> None:
    async with client() as batch:
        added = await call(batch, "POST", "/pools", body=pool_body("f50021c2"))
        assert added.status == 201
        enabled = await call(
            batch,
            "POST",
            "/pools/f50021c2/enableautoscale",
            body={
                "autoScaleFormula": "$TargetDedicatedNodes=2",
                "autoScaleEvaluationInterval": "PT06M00S",
            },
        )
        assert enabled.status == 200 and not enabled.body
        assert enabled.headers["ETag"].startswith("0x8D")
        again = await call(
            batch,
            "POST",
            "/pools/f50021c2/enableautoscale",
            body={"autoScaleFormula": "$TargetDedicatedNodes=1"},
        )
        # Not more than once every 30 seconds (REST Enable Pool Auto Scale; the error table).
        assert (again.status, again.json()["code"]) == (503, "TooManyEnableAutoScaleRequests")
        evaluated = await call(
            batch,
            "POST",
            "/pools/f50021c2/evaluateautoscale",
            body={"autoScaleFormula": "$TargetDedicatedNodes=3"},
        )
        assert evaluated.status == 200
        run = evaluated.json()
        assert run["odata.metadata"].endswith(
            "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"
        )
        assert run["results"] == (
            "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
        )
        assert set(run) == {"odata.metadata", "timestamp", "results"}
        pool = (await call(batch, "GET", "/pools/f50021c2")).json()
        # As recorded: read at once, the pool has no run yet and its old target.
        assert "autoScaleRun" not in pool and pool["targetDedicatedNodes"] == 0
        await first_run()
        pool = (await call(batch, "GET", "/pools/f50021c2")).json()
        assert pool["enableAutoScale"] is True
        assert pool["autoScaleFormula"] == "$TargetDedicatedNodes=2"
        assert pool["autoScaleEvaluationInterval"] == "PT6M"
        assert pool["targetDedicatedNodes"] == 2  # applied, not the evaluated 3
        assert pool["autoScaleRun"]["results"].startswith("$TargetDedicatedNodes=2;")
        disabled = await call(batch, "POST", "/pools/f50021c2/disableautoscale")
        assert disabled.status == 200 and not disabled.body
        pool = (await call(batch, "GET", "/pools/f50021c2")).json()
        assert pool["enableAutoScale"] is False
        assert "autoScaleFormula" not in pool and "autoScaleEvaluationInterval" not in pool
        assert pool["targetDedicatedNodes"] == 2


async def test_add_pool_with_autoscale_and_the_sdk_reads_it() -> None:
    async with client() as batch:
        body = pool_body(
            "scaled", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes = 1"
        )
        assert (await call(batch, "POST", "/pools", body=body)).status == 201
        await first_run()
        pool = await batch.get_pool("scaled")
        assert pool.enable_auto_scale is True
        assert pool.auto_scale_evaluation_interval is not None
        assert pool.auto_scale_evaluation_interval.total_seconds() == 15 * 60  # the default
        assert pool.target_dedicated_nodes == 1
        assert pool.auto_scale_run is not None
        assert pool.auto_scale_run.results == (
            "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
        )
        resized = await call(
            batch, "POST", "/pools/scaled/resize", body={"targetDedicatedNodes": 3}
        )
        assert resized.status == 409
        assert resized.json()["code"] == "OperationInvalidForCurrentState"


async def test_add_pool_refuses_what_the_service_refuses() -> None:
    async with client() as batch:
        both = pool_body(
            "p1",
            enableAutoScale=True,
            autoScaleFormula="$TargetDedicatedNodes=1",
            targetDedicatedNodes=2,
        )
        answer = await call(batch, "POST", "/pools", body=both)
        assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
        assert values(answer)["PropertyName"] == "targetDedicatedNodes"
        no_formula = pool_body("p2", enableAutoScale=True)
        answer = await call(batch, "POST", "/pools", body=no_formula)
        assert (answer.status, answer.json()["code"]) == (400, "MissingRequiredProperty")
        assert values(answer)["PropertyName"] == "autoScaleFormula"
        short = pool_body(
            "p3",
            enableAutoScale=True,
            autoScaleFormula="$TargetDedicatedNodes=1",
            autoScaleEvaluationInterval="PT4M",
        )
        answer = await call(batch, "POST", "/pools", body=short)
        assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
        assert values(answer)["PropertyName"] == "autoScaleEvaluationInterval"
        bad = pool_body("p4", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=(")
        answer = await call(batch, "POST", "/pools", body=bad)
        assert (answer.status, answer.json()["code"]) == (400, "AutoScalingFormulaSyntaxError")
        assert answer.json()["message"]["value"].startswith(
            "The specified auto-scaling formula has a syntax error.\nRequestId:"
        )
        assert values(answer)["Message"] == (
            "Line 1, Col 24: expected a value, found the end of the formula"
        )
        listed = [pool.id async for pool in batch.list_pools()]
        assert listed == []


async def test_enable_and_evaluate_refusals() -> None:
    async with client() as batch:
        await call(batch, "POST", "/pools", body=pool_body("fixed", targetDedicatedNodes=0))
        answer = await call(
            batch,
            "POST",
            "/pools/fixed/evaluateautoscale",
            body={"autoScaleFormula": "$TargetDedicatedNodes=1"},
        )
        assert (answer.status, answer.json()["code"]) == (409, "OperationInvalidForCurrentState")
        answer = await call(
            batch,
            "POST",
            "/pools/fixed/enableautoscale",
            body={"autoScaleFormula": "$TargetDedicatedNodes = avg($CPUPercent.GetSample(4))"},
        )
        assert (answer.status, answer.json()["code"]) == (501, "NotSupported")
        assert "$CPUPercent" in answer.json()["message"]["value"]
        answer = await call(
            batch,
            "POST",
            "/pools/fixed/enableautoscale",
            body={
                "autoScaleFormula": "$TargetDedicatedNodes=1",
                "autoScaleEvaluationInterval": "PT169H",
            },
        )
        assert (answer.status, answer.json()["code"]) == (400, "InvalidPropertyValue")
        answer = await call(
            batch, "POST", "/pools/nosuch/enableautoscale", body={"autoScaleFormula": "a=1"}
        )
        assert (answer.status, answer.json()["code"]) == (404, "PoolNotFound")
        enabled = await call(
            batch,
            "POST",
            "/pools/fixed/enableautoscale",
            body={"autoScaleFormula": "$TargetDedicatedNodes=0"},
        )
        assert enabled.status == 200
        # An evaluation error is an answer, not a refusal: the run's error.
        answer = await call(
            batch,
            "POST",
            "/pools/fixed/evaluateautoscale",
            body={"autoScaleFormula": "a = $PendingTasks.GetSample(TimeInterval_Minute * 10, 90)"},
        )
        assert answer.status == 200
        error = answer.json()["error"]
        assert error["code"] == "InsufficientSampleData"
        assert error["message"] == "Autoscale evaluation failed due to insufficient sample data"
        assert error["values"] == [
            {
                "name": "Message",
                "value": "Line 1, Col 19: Insufficient data from data set: $PendingTasks "
                "wanted 90%, received 5%",
            }
        ]
        assert "results" not in answer.json()
