"""Running the endpoint: the Docker service, its scheduler and the HTTP server, together.

`running_endpoint` opens a `DockerBackend` (engine, state lock, the service's scheduler in a
task group), a second engine client for file access, and the HTTP server on `host:port`; it
yields the endpoint's URL once requests can be served, and on exit stops the server, then the
service. Pools, nodes, jobs and tasks survive: the next endpoint (or the docker backend) takes
them over from the state and the containers.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import anyio
from aiohttp import web

from jobprep_release.backends.docker.backend import DockerBackend
from jobprep_release.backends.docker.engine import Engine
from jobprep_release.backends.docker.rest.app import build_app
from jobprep_release.backends.docker.rest.auth import SharedKey
from jobprep_release.backends.docker.rest.context import Context, log
from jobprep_release.backends.docker.rest.nodefs import NodeFiles
from jobprep_release.backends.docker.service import DockerSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8089
DEFAULT_ACCOUNT = "localbatch"


def new_key() -> str:
    """A random account key, base64 as Batch keys are (64 bytes)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """Where the endpoint listens, the account it serves, and how it reaches Docker."""

    account: str = DEFAULT_ACCOUNT
    key: str = field(default_factory=new_key, repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    docker: DockerSettings = field(default_factory=DockerSettings)


@dataclass(frozen=True, slots=True)
class RunningEndpoint:
    """A served endpoint: its URL and the account a client signs in to."""

    url: str
    port: int
    account: str
    key: str = field(repr=False)


@asynccontextmanager
async def running_endpoint(settings: EndpointSettings) -> AsyncIterator[RunningEndpoint]:
    """Serve the endpoint until the block ends. Enter and leave it in the same task."""
    keys = SharedKey(settings.account, settings.key)  # ValueError for a key that is not base64
    docker = replace(settings.docker, account_name=settings.account)
    async with DockerBackend(docker) as backend:
        engine = await Engine.connect(docker.docker_host)
        # Entered by hand, as DockerBackend does, so that an error of the block reaches the
        # caller as it is rather than inside an exception group.
        group = anyio.create_task_group()
        await group.__aenter__()
        runner: web.AppRunner | None = None
        try:
            ctx = Context(service=backend.service, files=NodeFiles(engine), keys=keys, group=group)
            await ctx.resume_deletions()
            runner = web.AppRunner(build_app(ctx), access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, settings.host, settings.port).start()
            port = int(runner.addresses[0][1])
            url = f"http://{settings.host}:{port}"
            log.info("endpoint serving", url=url, account=settings.account)
            yield RunningEndpoint(url=url, port=port, account=settings.account, key=settings.key)
        finally:
            with anyio.CancelScope(shield=True):
                if runner is not None:
                    await runner.cleanup()
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await engine.close()
