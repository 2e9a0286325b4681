"""Azurite, Microsoft's Azure Storage emulator, run for the app (`--azurite`) and the tests.

The pinned release (`AZURITE_VERSION`, the newest that runs on Node.js 20) is installed once
from the npm registry under the cache directory (``$JOBPREP_RELEASE_CLIENT_CACHE``, else
``$XDG_CACHE_HOME/jobprep_release/clients``, else ``~/.cache/jobprep_release/clients``; an
install counts once its marker file is written) and started as its blob service only, on a
free 127.0.0.1 port, with ``--skipApiVersionCheck`` (azure-storage-blob speaks a newer storage
API version than this release knows) and ``--disableTelemetry`` (it would reach the internet).
The account is Azurite's well-known development account.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

AZURITE_VERSION = "3.35.0"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""Azurite's published development key (not a secret)."""
DONE = ".installed"
START_TIMEOUT = 30.0


class AzuriteUnavailable(RuntimeError):
    """Azurite cannot be installed or started here (the message says why and what to do)."""


def cache_dir() -> Path:
    explicit = os.environ.get("JOBPREP_RELEASE_CLIENT_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jobprep_release" / "clients"


async def install() -> Path:
    """The ``azurite-blob`` program of the pinned release, installed with npm when missing."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise AzuriteUnavailable(
                f"{tool} is not installed: Azurite needs Node.js 20 and npm "
                "(Debian: apt-get install nodejs npm)"
            )
    where = cache_dir() / "npm-azurite"
    program = where / "node_modules" / ".bin" / "azurite-blob"
    if (where / DONE).is_file() and program.exists():
        return program
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    (where / "package.json").write_text('{"name": "azurite-install", "private": true}\n')
    with anyio.fail_after(900):
        result = await anyio.run_process(
            ["npm", "install", "--no-audit", "--no-fund", f"azurite@{AZURITE_VERSION}"],
            cwd=where,
            check=False,
        )
    if result.returncode != 0 or not program.exists():
        tail = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
        raise AzuriteUnavailable(
            f"npm could not install azurite@{AZURITE_VERSION}: {' / '.join(tail[-3:])}"
        )
    (where / DONE).write_text(f"azurite@{AZURITE_VERSION}\n")
    return program


def arguments(program: Path, host: str, port: int, location: Path) -> list[str]:
    """The command line of Azurite's blob service on `host`:`port`, data in `location`."""
    return [
        str(program),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(host: str = "127.0.0.1") -> AsyncIterator[Azurite]:
    """Azurite's blob service on a free port of `host` (an address of this machine: the
    loopback, or the Docker bridge's gateway so that node containers reach it too), its data in
    a temporary directory; stopped and removed when the block ends. For the app (`--azurite`)."""
    program = await install()
    with tempfile.TemporaryDirectory(prefix="azurite-") as location:
        port = free_port(host)
        process = await anyio.open_process(
            arguments(program, host, port, Path(location)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with anyio.fail_after(START_TIMEOUT):
                while True:
                    if process.returncode is not None:
                        raise AzuriteUnavailable(
                            f"Azurite exited at start with status {process.returncode}"
                        )
                    try:
                        stream = await anyio.connect_tcp(host, port)
                    except OSError:
                        await anyio.sleep(0.1)
                        continue
                    await stream.aclose()
                    break
            yield Azurite(port=port, host=host)
        finally:
            with anyio.CancelScope(shield=True):
                process.terminate()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


@dataclass(frozen=True, slots=True)
class Azurite:
    """A running Azurite blob service: its URL, account and key."""

    port: int
    account: str = ACCOUNT
    key: str = ACCOUNT_KEY
    host: str = "127.0.0.1"

    @property
    def account_url(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.account_url};"
        )


def container_sas_url(
    connection_string: str, container: str, permission: str, hours: float = 24.0
) -> str:
    """The URL of `container` with a SAS granting `permission` (``rl``: read, list; ``w``:
    write; ...) for `hours`, signed with the account key from `connection_string`."""
    from azure.storage.blob import (
        BlobServiceClient,
        ContainerSasPermissions,
        generate_container_sas,
    )

    service = BlobServiceClient.from_connection_string(connection_string)
    credential = service.credential
    token = generate_container_sas(
        account_name=service.account_name or "",
        container_name=container,
        account_key=credential.account_key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + timedelta(hours=hours),
    )
    return f"{service.url.rstrip('/')}/{container}?{token}"


@contextlib.contextmanager
def running(location: Path | None = None, port: int | None = None) -> Iterator[Azurite]:
    """Azurite's blob service on 127.0.0.1 (a free port unless `port`), its data in
    `location` (a temporary directory, removed afterwards, unless given); stopped on exit.
    For the tests' session, outside any event loop (`serving` is the app's)."""
    program = anyio.run(install)
    with contextlib.ExitStack() as stack:
        if location is None:
            location = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="azurite-")))
        chosen = port or free_port()
        log = stack.enter_context((location / "azurite.log").open("wb"))
        process = subprocess.Popen(
            arguments(program, "127.0.0.1", chosen, location),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_for(process, chosen)
            yield Azurite(port=chosen)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AzuriteUnavailable(f"Azurite exited at start with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise AzuriteUnavailable(f"Azurite did not listen on 127.0.0.1:{port} within {START_TIMEOUT} s")
