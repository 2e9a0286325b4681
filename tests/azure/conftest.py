"""Fixtures for the azure backend's tests: the Batch stand-in and a backend pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobprep_release.backends.azure import AzureBackend
from tests.azure.batch_standin import BatchStandIn
from tests.azure.support import ACCOUNT, KEY, make_backend


@pytest.fixture
async def standin() -> AsyncIterator[BatchStandIn]:
    service = BatchStandIn(ACCOUNT, KEY)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
async def backend(standin: BatchStandIn) -> AsyncIterator[AzureBackend]:
    async with make_backend(standin.endpoint) as opened:
        yield opened
