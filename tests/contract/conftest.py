"""Runs every contract test on each backend that can run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.harness import BackendOpener, azure_configured, opener


@pytest.fixture(params=["docker", "endpoint", "azure"])
def backend_name(request: pytest.FixtureRequest) -> str:
    """docker: the backend itself; endpoint: the azure backend (real SDK, real HTTP) against
    `python -m jobprep_release serve` in process; azure: a real account when configured."""
    name: str = request.param
    if name == "azure" and not azure_configured():
        pytest.skip("set AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY")
    return name


@pytest.fixture
def open_backend(backend_name: str, tmp_path: Path) -> BackendOpener:
    return opener(backend_name, tmp_path / "state")
