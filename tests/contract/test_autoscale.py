"""Autoscale on every backend (the docker backend, and the azure backend through the local
endpoint): a pool made with a formula gets its target from it soon after; Enable Autoscale on
a fixed pool, Evaluate (answered, not applied), Disable (targets kept), and the refusals, with
the service's codes (REST Enable/Evaluate/Disable Pool Auto Scale; the autoscale article)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import pytest

from jobprep_release.backends.base import AllocationState, BatchBackend, Pool, PoolSpec
from jobprep_release.backends.errors import BackendError, Conflict, InvalidRequest, NotFound
from tests.contract.harness import WAIT_LIMIT, BackendOpener, pool

SERVICE_DEFAULTS = ";$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"


async def evaluated(backend: BatchBackend, pool_id: str) -> Pool:
    """The pool once its first autoscale evaluation is recorded."""
    with anyio.fail_after(WAIT_LIMIT):
        while (found := await backend.get_pool(pool_id)).auto_scale_run is None:
            await anyio.sleep(backend.poll_interval)
    return found


async def node_count(backend: BatchBackend, pool_id: str, count: int) -> None:
    """Wait for the pool to have `count` nodes and be steady (no node coming or going)."""
    with anyio.fail_after(WAIT_LIMIT):
        while (
            len(await backend.list_nodes(pool_id)) != count
            or (await backend.get_pool(pool_id)).allocation_state is not AllocationState.STEADY
        ):
            await anyio.sleep(backend.poll_interval)


@asynccontextmanager
async def autoscaled_pool(
    open_backend: BackendOpener, formula: str
) -> AsyncIterator[tuple[BatchBackend, str]]:
    pool_id = f"Contract-{uuid.uuid4().hex[:8]}"
    async with open_backend() as backend:
        spec = PoolSpec(
            id=pool_id,
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval=timedelta(minutes=5),
        )
        await backend.create_pool(spec)
        try:
            yield backend, pool_id
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(NotFound):
                await backend.delete_pool(pool_id)


async def test_a_pool_made_with_a_formula_takes_its_target(open_backend: BackendOpener) -> None:
    async with autoscaled_pool(open_backend, "$TargetDedicatedNodes = 1") as (backend, pool_id):
        found = await evaluated(backend, pool_id)
        assert found.auto_scale_run is not None and found.auto_scale_run.error is None
        assert found.auto_scale_run.results == "$TargetDedicatedNodes=1" + SERVICE_DEFAULTS
        assert found.target_dedicated_nodes == 1
        await node_count(backend, pool_id, 1)
        with pytest.raises(Conflict) as refused:
            await backend.resize_pool(pool_id, 2)
        assert refused.value.code == "OperationInvalidForCurrentState"


async def test_enable_evaluate_disable_on_a_fixed_pool(open_backend: BackendOpener) -> None:
    async with pool(open_backend, nodes=1) as batch:
        backend, pool_id = batch.backend, batch.pool_id
        with pytest.raises(Conflict) as not_enabled:
            await backend.evaluate_auto_scale(pool_id, "$TargetDedicatedNodes = 0")
        assert not_enabled.value.code == "OperationInvalidForCurrentState"
        formula = "$TargetDedicatedNodes = $CurrentDedicatedNodes + 1"
        await backend.enable_auto_scale(pool_id, formula, timedelta(minutes=5))
        found = await evaluated(backend, pool_id)
        assert found.target_dedicated_nodes == 2  # one node, plus one
        await node_count(backend, pool_id, 2)
        # Evaluate answers the run of another formula, and applies nothing.
        run = await backend.evaluate_auto_scale(
            pool_id, "n = $PendingTasks; $TargetDedicatedNodes = 0"
        )
        assert run.error is None
        assert run.results == "$TargetDedicatedNodes=0" + SERVICE_DEFAULTS + ";n=0"
        failed = await backend.evaluate_auto_scale(
            pool_id, "x = $ActiveTasks.GetSample(TimeInterval_Hour, 100)"
        )
        assert failed.results is None and failed.error is not None
        assert failed.error.code == "InsufficientSampleData"
        assert (await backend.get_pool(pool_id)).target_dedicated_nodes == 2
        await backend.disable_auto_scale(pool_id)
        disabled = await backend.get_pool(pool_id)
        assert disabled.target_dedicated_nodes == 2 and disabled.auto_scale_run is None
        await backend.resize_pool(pool_id, 1)
        await node_count(backend, pool_id, 1)


async def test_formulas_and_intervals_the_service_refuses(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        backend, pool_id = batch.backend, batch.pool_id
        with pytest.raises(InvalidRequest) as syntax:
            await backend.enable_auto_scale(pool_id, "$TargetDedicatedNodes = ")
        assert syntax.value.code == "AutoScalingFormulaSyntaxError"
        with pytest.raises(InvalidRequest) as interval:
            await backend.enable_auto_scale(
                pool_id, "$TargetDedicatedNodes = 0", timedelta(minutes=4)
            )
        assert interval.value.code == "InvalidPropertyValue"
        with pytest.raises(BackendError) as cpu:
            await backend.enable_auto_scale(
                pool_id, "$TargetDedicatedNodes = max($CPUPercent.GetSample(4)) > 70 ? 1 : 0"
            )
        assert cpu.value.code == "NotSupported"
        assert (await backend.get_pool(pool_id)).auto_scale_run is None
