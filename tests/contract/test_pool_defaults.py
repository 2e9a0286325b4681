"""Pool settings whose default means nothing on a local node, on every backend: kept and read
back as given, and the values that need Azure's infrastructure refused as not supported.

Expected values come from the REST reference (api-version 2025-06-01): UpgradePolicy ``mode``
(automatic, manual, rolling), BatchNodePlacementConfiguration ``policy`` (regional, the
default, or zonal), BatchOsDisk (caching ``none`` by default for standard storage) and
BatchTaskSchedulingPolicy (``jobDefaultOrder`` none or creationtime; jobs of equal priority get
slots oldest first here).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobprep_release.backends.base import OsDisk, PoolSpec
from jobprep_release.backends.errors import BackendError, NotSupported
from tests.contract.harness import BackendOpener


def spec(**settings: Any) -> PoolSpec:
    return PoolSpec(id=f"Contract-{uuid.uuid4().hex[:8]}", target_dedicated_nodes=0, **settings)


async def test_defaults_are_kept(open_backend: BackendOpener) -> None:
    asked = spec(
        upgrade_policy_mode="manual",
        node_placement_policy="regional",
        os_disk=OsDisk(caching="none", write_accelerator_enabled=False),
        job_default_order="creationtime",
    )
    async with open_backend() as backend:
        await backend.create_pool(asked)
        try:
            kept = await backend.get_pool_spec(asked.id)
            assert kept.upgrade_policy_mode == "manual"
            assert kept.node_placement_policy == "regional"
            assert kept.os_disk == OsDisk(caching="none", write_accelerator_enabled=False)
            assert kept.job_default_order == "creationtime"
        finally:
            await backend.delete_pool(asked.id)


@pytest.mark.parametrize(
    "settings",
    [
        {"upgrade_policy_mode": "automatic"},
        {"upgrade_policy_mode": "rolling"},
        {"node_placement_policy": "zonal"},
        {"os_disk": OsDisk(caching="readwrite")},
    ],
)
async def test_what_needs_azure_is_refused(
    open_backend: BackendOpener, settings: dict[str, Any]
) -> None:
    asked = spec(**settings)
    async with open_backend() as backend:
        # NotSupported on docker; through the endpoint the azure backend's error for a 501
        with pytest.raises(BackendError) as refused:
            await backend.create_pool(asked)
        error = refused.value
        assert isinstance(error, NotSupported) or error.code == "NotSupported", error
        with pytest.raises(BackendError):
            await backend.get_pool_spec(asked.id)
