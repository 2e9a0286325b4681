"""Fixtures of the client tests: the endpoint over the fake executor (no engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.azure.emulator import Emulator, serve_in_own_task


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The project's endpoint over the fake executor."""
    served, close = await serve_in_own_task()
    try:
        yield served
    finally:
        await close()
