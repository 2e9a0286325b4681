"""Updating a pool on every backend: Update Pool and Replace Pool Properties (start task and
metadata), the start task replaced on the nodes that boot afterwards, and what the service
changes only on an empty pool.

Expected values come from the REST reference (api-version 2025-06-01): BatchPoolUpdateOptions
(each property given replaces the pool's, one omitted is left unchanged; ``displayName``,
``vmSize`` and others "can be updated only when the pool is empty"), BatchPoolReplaceOptions
(``startTask`` omitted removes it; ``metadata`` replaces all of it) and StartTask ("the Task runs
when the Compute Node is added to the Pool or when the Compute Node is restarted").
"""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import PoolUpdate, StartTaskSpec
from jobprep_release.backends.errors import InvalidRequest
from tests.contract.harness import BackendOpener, pool


def mark(word: str) -> StartTaskSpec:
    return StartTaskSpec(f"/bin/bash -c 'echo {word} >> \"$AZ_BATCH_NODE_SHARED_DIR/starts\"'")


async def test_a_replaced_start_task_runs_from_the_next_boot_and_a_removed_one_not(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, start_task=mark("old")) as batch:
        (node_id,) = batch.node_ids
        backend = batch.backend
        await backend.update_pool(batch.pool_id, PoolUpdate(start_task=mark("new")))
        spec = await backend.get_pool_spec(batch.pool_id)
        assert spec.start_task == mark("new")
        assert await batch.shared_file(node_id, "starts") == "old\n"  # not rerun now
        await batch.reboot(node_id)
        assert await batch.shared_file(node_id, "starts") == "old\nnew\n"
        # Replace Pool Properties without a start task removes it; metadata replaced whole.
        await backend.replace_pool_properties(batch.pool_id, None, {"owner": "tests"})
        spec = await backend.get_pool_spec(batch.pool_id)
        assert spec.start_task is None and spec.metadata == {"owner": "tests"}
        node = await batch.reboot(node_id)
        assert node.start_task_info is None
        assert await batch.shared_file(node_id, "starts") == "old\nnew\n"


async def test_update_pool_sets_only_what_it_names(open_backend: BackendOpener) -> None:
    async with pool(open_backend, start_task=mark("kept")) as batch:
        backend = batch.backend
        await backend.update_pool(batch.pool_id, PoolUpdate(metadata={"stage": "one"}))
        spec = await backend.get_pool_spec(batch.pool_id)
        assert spec.metadata == {"stage": "one"} and spec.start_task == mark("kept")
        await backend.update_pool(batch.pool_id, PoolUpdate(metadata={}))
        assert (await backend.get_pool_spec(batch.pool_id)).metadata == {}
        with pytest.raises(InvalidRequest) as refused:
            await backend.update_pool(batch.pool_id, PoolUpdate(display_name="renamed"))
        assert refused.value.code == "PropertyCannotBeUpdated"
