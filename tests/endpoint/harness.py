"""Opening the local Batch endpoint in process, and the azure backend (real SDK, real HTTP)
connected to it: for the endpoint's own tests and for the contract suite.

    async with azure_on_endpoint(state_dir) as backend:   # an AzureBackend on 127.0.0.1
        ...

`opener(state_dir)` gives the same as a ``BackendOpener`` of ``tests/contract/harness.py``, so
the contract suite can run the ``azure`` backend against this endpoint (Docker underneath).
Enter and leave these in one task (inside a test, not a fixture).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.azure import AzureBackend
from jobprep_release.backends.base import BatchBackend
from jobprep_release.backends.docker import DockerSettings
from jobprep_release.backends.docker.rest import EndpointSettings, RunningEndpoint, running_endpoint

ACCOUNT = "endpointtest"
KEY = base64.b64encode(b"endpoint-test-key-0123456789-abcdefghijklmnopqrstuv").decode()


def serve_process(state_dir: Path, cwd: Path) -> subprocess.Popen[str]:
    """``python -m jobprep_release serve`` on a free loopback port over `state_dir` (run in
    `cwd`), with `ACCOUNT` and `KEY` and no ``AZURE_*`` variables; its first stdout line names
    its URL. The caller stops it."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    environ["JOBPREP_RELEASE_KEY"] = KEY
    return subprocess.Popen(
        [sys.executable, "-m", "jobprep_release", "serve", "--port", "0", "--account", ACCOUNT,
         "--state-dir", str(state_dir)],
        cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


POLL_INTERVAL = 0.1
"""Seconds between the sample's polls on a loopback endpoint (the azure backend's is 10)."""

# Short waits: the endpoint is local, so retries and long-running operations end quickly.
FAST: dict[str, Any] = {"retry_backoff_factor": 0.05, "lro_poll_interval": 1}


@asynccontextmanager
async def endpoint(state_dir: Path, **settings: Any) -> AsyncIterator[RunningEndpoint]:
    """The endpoint on 127.0.0.1, a free port, its state in `state_dir`."""
    options: dict[str, Any] = {"account": ACCOUNT, "key": KEY, "port": 0, **settings}
    options.setdefault("docker", DockerSettings(state_dir=state_dir))
    async with running_endpoint(EndpointSettings(**options)) as running:
        yield running


def credential(running: RunningEndpoint, key: str | None = None) -> AzureNamedKeyCredential:
    return AzureNamedKeyCredential(running.account, key or running.key)


@asynccontextmanager
async def azure_on_endpoint(
    state_dir: Path, docker: DockerSettings | None = None, **backend_options: Any
) -> AsyncIterator[AzureBackend]:
    """An `AzureBackend` signed in to a fresh endpoint (both closed afterwards); `docker`,
    the endpoint's backend settings (default: the state in `state_dir`)."""
    async with endpoint(state_dir, docker=docker or DockerSettings(state_dir=state_dir)) as running:
        options = {**FAST, "poll_interval": POLL_INTERVAL, **backend_options}
        async with AzureBackend(running.url, credential(running), **options) as backend:
            yield backend


@asynccontextmanager
async def sdk_client(
    running: RunningEndpoint, key: str | None = None
) -> AsyncIterator[BatchClient]:
    """azure-batch's own client on the endpoint, for calls the backend interface lacks."""
    async with BatchClient(
        running.url, credential(running, key), retry_total=0, connection_timeout=10
    ) as client:
        yield client


def opener(state_dir: Path) -> Callable[[], AbstractAsyncContextManager[BatchBackend]]:
    """A contract-suite opener: the azure backend through this endpoint."""

    @asynccontextmanager
    async def open_backend() -> AsyncIterator[BatchBackend]:
        async with azure_on_endpoint(state_dir) as backend:
            yield backend

    return open_backend
