"""Running the endpoint: a Batch service, its scheduler and the HTTP server, together.

`running_endpoint` starts the service, then the HTTP server on `host:port`, and yields the
endpoint's URL once requests can be served; on exit it stops the server, then the service. By
default the service is the Docker backend's (engine, state lock, node containers): pools, nodes,
jobs and tasks survive, and the next endpoint (or the docker backend) takes them over. Over
HTTP, the endpoint is published to the engine's other users (`docker.sharing`): a CLI run
started while it serves attaches to it rather than waiting for the state. With
`EndpointSettings.executor` set (a `FakeExecutor`, say), the endpoint serves the Batch core over
that executor in process, its state in `EndpointSettings.store` (in memory by default), its
time from `EndpointSettings.clock`: no engine is needed. With `EndpointSettings.https` it
serves HTTPS with its own certificate (`tls.endpoint_certificate`, kept in the state directory)
and accepts Microsoft Entra ID bearer tokens besides Shared Key (`auth`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from aiohttp import web
from aiohttp.typedefs import Middleware

from jobprep_release.backends.docker.core.clock import Clock
from jobprep_release.backends.docker.core.executor import NodeExecutor
from jobprep_release.backends.docker.core.kernel import CoreSettings
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.core.store import MemoryStore, Store, default_state_dir
from jobprep_release.backends.docker.rest.app import build_app
from jobprep_release.backends.docker.rest.auth import SharedKey
from jobprep_release.backends.docker.rest.context import Context, log
from jobprep_release.backends.docker.rest.interface import EndpointService
from jobprep_release.backends.docker.settings import DockerSettings

if TYPE_CHECKING:
    from jobprep_release.backends.docker.rest.tls import Certificate

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8089
DEFAULT_ACCOUNT = "localbatch"


def new_key() -> str:
    """A random account key, base64 as Batch keys are (64 bytes)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """Where the endpoint listens, the account it serves, and what runs its nodes: the Docker
    engine (`docker`), or, when `executor` is set, that executor (with `store` and `clock`).
    `middlewares` run before the endpoint's own (see `app.build_app`)."""

    account: str = DEFAULT_ACCOUNT
    key: str = field(default_factory=new_key, repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    docker: DockerSettings = field(default_factory=DockerSettings)
    executor: NodeExecutor | None = None
    store: Store | None = None
    clock: Clock | None = None
    middlewares: Sequence[Middleware] = ()
    https: bool = False
    """Serve HTTPS (and accept bearer tokens) with the certificate in `certificate_dir`."""
    certificate_dir: Path | None = None
    """Where the certificate is kept (default: the Docker backend's state directory)."""


@dataclass(frozen=True, slots=True)
class RunningEndpoint:
    """A served endpoint: its URL and the account a client signs in to, and the service."""

    url: str
    port: int
    account: str
    key: str = field(repr=False)
    service: EndpointService | None = field(default=None, repr=False, compare=False)
    certificate: Path | None = None
    """With HTTPS, the certificate (PEM) a client trusts."""


@asynccontextmanager
async def _docker_service(
    settings: EndpointSettings, published: list[Callable[[str], None]]
) -> AsyncIterator[EndpointService]:
    # Imported here: an endpoint over another executor never loads docker-py.
    from jobprep_release.backends.docker.backend import DockerBackend

    docker = replace(settings.docker, account_name=settings.account)
    async with DockerBackend(docker, lazy=False) as backend:
        # Other processes using the engine (CLI runs) attach to this endpoint once it serves:
        # over HTTP only, as the app trusts the HTTPS certificate only through SSL_CERT_FILE.
        if not settings.https:
            published.append(partial(backend.publish, account=settings.account, key=settings.key))
        yield backend.service


@asynccontextmanager
async def _core_service(
    settings: EndpointSettings, executor: NodeExecutor
) -> AsyncIterator[EndpointService]:
    core_settings = CoreSettings(
        account_name=settings.account, default_image=None, storage=settings.docker.storage
    )
    service = BatchService(executor, settings.store or MemoryStore(), core_settings, settings.clock)
    group = anyio.create_task_group()
    await group.__aenter__()
    try:
        await group.start(service.run)
        yield service
    finally:
        group.cancel_scope.cancel()
        await group.__aexit__(None, None, None)
        with anyio.CancelScope(shield=True):
            await service.close()


@asynccontextmanager
async def running_endpoint(settings: EndpointSettings) -> AsyncIterator[RunningEndpoint]:
    """Serve the endpoint until the block ends. Enter and leave it in the same task."""
    # ValueError for a key that is not base64
    keys = SharedKey(settings.account, settings.key, bearer_tokens=settings.https)
    certificate: Certificate | None = None
    if settings.https:
        # Imported here: cryptography loads only for an endpoint that serves HTTPS.
        from jobprep_release.backends.docker.rest.tls import endpoint_certificate

        directory = settings.certificate_dir or settings.docker.state_dir or default_state_dir()
        made = partial(endpoint_certificate, directory, settings.host)
        certificate = await anyio.to_thread.run_sync(made)
    published: list[Callable[[str], None]] = []
    services: AbstractAsyncContextManager[EndpointService] = (
        _docker_service(settings, published)
        if settings.executor is None
        else _core_service(settings, settings.executor)
    )
    async with services as service:
        # Entered by hand, as DockerBackend does, so that an error of the block reaches the
        # caller as it is rather than inside an exception group.
        group = anyio.create_task_group()
        await group.__aenter__()
        runner: web.AppRunner | None = None
        try:
            ctx = Context(service=service, keys=keys, group=group)
            runner = web.AppRunner(
                build_app(ctx, settings.middlewares), access_log=None, handle_signals=False
            )
            await runner.setup()
            tls = certificate.server_context() if certificate is not None else None
            await web.TCPSite(runner, settings.host, settings.port, ssl_context=tls).start()
            port = int(runner.addresses[0][1])
            url = f"{'https' if tls else 'http'}://{settings.host}:{port}"
            service.set_account_url(url)  # AZ_BATCH_ACCOUNT_URL: where tasks call the service
            for publish in published:
                await anyio.to_thread.run_sync(publish, url)
            log.info("endpoint serving", url=url, account=settings.account)
            yield RunningEndpoint(
                url=url,
                port=port,
                account=settings.account,
                key=settings.key,
                service=service,
                certificate=certificate.certificate if certificate else None,
            )
        finally:
            with anyio.CancelScope(shield=True):
                if runner is not None:
                    await runner.cleanup()
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)
