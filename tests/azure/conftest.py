"""Fixtures for the azure backend's tests: the Batch emulator and a backend pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobprep_release.backends.azure import AzureBackend
from tests.azure.emulator import Emulator, serve_in_own_task
from tests.azure.support import make_backend


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The project's endpoint over the fake executor, with faults on demand."""
    served, close = await serve_in_own_task()
    try:
        yield served
    finally:
        await close()


@pytest.fixture
async def backend(emulator: Emulator) -> AsyncIterator[AzureBackend]:
    async with make_backend(emulator.url) as opened:
        yield opened
