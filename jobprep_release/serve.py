"""`python -m jobprep_release serve`: a local Azure Batch endpoint backed by Docker (issue 8).

Serves the Batch data-plane REST API (api-versions 2018-03-01.6.1 to 2025-06-01) on
127.0.0.1 (or ``--host``) for pools, nodes, jobs, tasks and files, each node a container on the
local Docker engine, until Ctrl-C or SIGTERM. Clients sign requests with the account's Shared
Key: the account name and key come from ``--account``/``--key``, else
``JOBPREP_RELEASE_ACCOUNT``/``JOBPREP_RELEASE_KEY``, else
``AZURE_BATCH_ACCOUNT``/``AZURE_BATCH_ACCESS_KEY`` (the variables Batch clients read, so one set
serves client and endpoint), else ``localbatch`` and a random key printed at start; each of the
two is looked up on its own. The storage account linked to the Batch account (the containers
``autoStorageContainerName`` names) comes from ``--storage-connection-string`` or
``AZURE_STORAGE_CONNECTION_STRING``, else ``--storage-account-url``/``--storage-account-key``
or ``AZURE_STORAGE_ACCOUNT_URL``/``AZURE_STORAGE_KEY``; none by default. The first line on
stdout names the URL
(``--port 0`` picks a free port); logs go to stderr.

With ``--https`` it serves HTTPS with a certificate it makes once and keeps in the state
directory (``endpoint-cert.pem``; the banner names it and the variables that make clients trust
it), and accepts Microsoft Entra ID bearer tokens for the Batch resource besides Shared Key:
Azure SDKs send tokens over TLS only (`jobprep_release.backends.docker.rest.auth`).

Exit statuses are the app's (``python -m jobprep_release --help``); stopping it with Ctrl-C or
SIGTERM is a normal end (0). Pools, nodes, jobs and tasks stay for the next start.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog

from jobprep_release import logs
from jobprep_release.backends.errors import (
    AuthenticationFailed,
    JobPrepReleaseError,
    UsageError,
    find_project_error,
)
from jobprep_release.options import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from jobprep_release.backends.docker.core.storage import LinkedStorage

log = structlog.get_logger("jobprep_release.serve")

ENV_ACCOUNT = "JOBPREP_RELEASE_ACCOUNT"
ENV_KEY = "JOBPREP_RELEASE_KEY"
AZURE_ACCOUNT = "AZURE_BATCH_ACCOUNT"
AZURE_KEY = "AZURE_BATCH_ACCESS_KEY"
STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
STORAGE_ACCOUNT_URL = "AZURE_STORAGE_ACCOUNT_URL"
STORAGE_KEY = "AZURE_STORAGE_KEY"
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see serve --help)")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("--port must be 0 (any free port) to 65535")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    from jobprep_release.backends.docker.rest import DEFAULT_ACCOUNT, DEFAULT_PORT

    parser = _Parser(
        prog="python -m jobprep_release serve",
        description="A local Azure Batch endpoint (REST API 2018-03-01.6.1 to 2025-06-01) whose "
        "nodes are containers on the local Docker engine.",
        epilog="example:\n"
        "  python -m jobprep_release serve --port 8089\n"
        "  python -m jobprep_release --backend azure --endpoint http://127.0.0.1:8089 \\\n"
        "      --account localbatch --key <the key it printed> --yes\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); the engine's bridge gateway (docker "
        "network inspect bridge, e.g. 172.17.0.1) lets tasks on the nodes call the endpoint "
        "with their authentication token",
    )
    parser.add_argument(
        "--account",
        default=os.environ.get(ENV_ACCOUNT) or os.environ.get(AZURE_ACCOUNT) or DEFAULT_ACCOUNT,
        help=f"Batch account name (default ${ENV_ACCOUNT}, else ${AZURE_ACCOUNT}, "
        f"else {DEFAULT_ACCOUNT})",
    )
    parser.add_argument(
        "--key",
        help=f"account key, base64 (default ${ENV_KEY}, else ${AZURE_KEY}, "
        "else a random one, printed)",
    )
    parser.add_argument(
        "--https",
        action="store_true",
        help="serve HTTPS with a generated certificate (kept in the state directory) and "
        "accept Microsoft Entra ID tokens too",
    )
    parser.add_argument(
        "--image", help="Docker image of pools' nodes (default debian:bookworm-slim)"
    )
    parser.add_argument("--docker-host", help="engine URL (default: $DOCKER_HOST or the socket)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the service keeps its state (default $XDG_STATE_HOME/jobprep_release)",
    )
    parser.add_argument(
        "--storage-connection-string",
        default=os.environ.get(STORAGE_CONNECTION_STRING),
        help="the storage account linked to the Batch account, for autoStorageContainerName "
        f"(default ${STORAGE_CONNECTION_STRING}); Azurite's works",
    )
    parser.add_argument(
        "--storage-account-url",
        default=os.environ.get(STORAGE_ACCOUNT_URL),
        help=f"or the linked account's blob URL (default ${STORAGE_ACCOUNT_URL}) ...",
    )
    parser.add_argument(
        "--storage-account-key",
        default=os.environ.get(STORAGE_KEY),
        help=f"... and its key (default ${STORAGE_KEY})",
    )
    parser.add_argument("--log-format", choices=("console", "json"), default="console")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _key(args: argparse.Namespace) -> tuple[str, str | None]:
    """The key, and where it came from (None: generated here)."""
    from jobprep_release.backends.docker.rest import new_key
    from jobprep_release.backends.docker.rest.auth import decode_key

    given = (
        (args.key, "--key"),
        (os.environ.get(ENV_KEY), ENV_KEY),
        (os.environ.get(AZURE_KEY), AZURE_KEY),
    )
    for value, origin in given:
        if value and value.strip():
            try:
                decode_key(value.strip())
            except ValueError:
                raise AuthenticationFailed(
                    f"the account key from {origin} is not base64",
                    hint="give a base64 key, or leave it out to have one generated",
                ) from None
            return value.strip(), origin
    return new_key(), None


def _linked_storage(args: argparse.Namespace) -> LinkedStorage | None:
    """The storage account linked to the Batch account, from the flags or variables."""
    from jobprep_release.backends.docker.core.storage import LinkedStorage

    if args.storage_connection_string:
        for part in args.storage_connection_string.split(";"):
            if part.lower().startswith("accountkey="):
                logs.register_secret(part.split("=", 1)[1])
        return LinkedStorage(connection_string=args.storage_connection_string)
    if args.storage_account_url:
        if not args.storage_account_key:
            raise UsageError(
                "--storage-account-url needs --storage-account-key "
                f"(or ${STORAGE_KEY}), or give --storage-connection-string"
            )
        logs.register_secret(args.storage_account_key)
        return LinkedStorage(
            account_url=args.storage_account_url, account_key=args.storage_account_key
        )
    return None


def _trust(certificate: Path | None) -> str:
    """How a client trusts the endpoint's certificate (nothing without HTTPS)."""
    if certificate is None:
        return ""
    return (
        f"  certificate: {certificate}\n"
        "Trust it in clients (Python's ssl and aiohttp, requests, Node.js):\n"
        f"  export SSL_CERT_FILE={certificate} REQUESTS_CA_BUNDLE={certificate} "
        f"NODE_EXTRA_CA_CERTS={certificate}\n"
        "Microsoft Entra ID tokens for https://batch.core.windows.net/ are accepted (form, "
        "audience, issuer and lifetime checked, not the signature).\n"
    )


def _banner(
    url: str, account: str, key: str, key_origin: str | None, certificate: Path | None = None
) -> str:
    shown = key if key_origin is None else f"<as given by {key_origin}>"
    key_arg = key if key_origin is None else "<the key>"
    # The app's client (aiohttp) trusts the certificate only through SSL_CERT_FILE: without it
    # the command as shown would fail certificate verification.
    trusting = "" if certificate is None else f"SSL_CERT_FILE={shlex.quote(str(certificate))} "
    return (
        f"Azure Batch endpoint (local, Docker) at {url}\n"
        f"  account: {account}\n"
        f"  key:     {shown}\n"
        "  api-versions: 2018-03-01.6.1 to 2025-06-01\n"
        f"{_trust(certificate)}"
        "Run the sample against it:\n"
        f"  {trusting}python -m jobprep_release --backend azure --endpoint {url} "
        f"--account {account} --key {key_arg}\n"
        "Ctrl-C stops it; pools, nodes and jobs stay for the next start.\n"
    )


async def _serve(args: argparse.Namespace) -> int:
    from jobprep_release.backends.docker import DockerSettings
    from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint

    key, key_origin = _key(args)
    logs.register_secret(key)
    docker = DockerSettings(
        state_dir=args.state_dir, docker_host=args.docker_host, storage=_linked_storage(args)
    )
    if args.image:
        from jobprep_release.cli import check_docker_image

        check_docker_image(args.image)
        docker = replace(docker, image=args.image)
    settings = EndpointSettings(
        account=args.account,
        key=key,
        host=args.host,
        port=args.port,
        docker=docker,
        https=args.https,
    )
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with running_endpoint(settings) as endpoint:
                banner = _banner(
                    endpoint.url, endpoint.account, key, key_origin, endpoint.certificate
                )
                sys.stdout.write(banner)
                sys.stdout.flush()
                async for received in signals:
                    log.info("stopping", signal=signal.Signals(received).name)
                    break
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {args.port} on {args.host} is in use: choose another with --port "
                "(0 picks a free one)"
            ) from None
        raise
    return 0


def main(argv: Sequence[str]) -> int:
    words = list(argv)
    debug = "--debug" in words
    try:
        args = build_parser().parse_args(words)
        if not _ACCOUNT_NAME.fullmatch(args.account):
            raise UsageError(
                f"invalid account name {args.account!r}: use 3 to 24 lower-case letters and digits"
            )
        level = logging.INFO + 10 * (args.quiet - args.verbose)
        logs.configure(level=max(level, logging.DEBUG), fmt=args.log_format)
        return anyio.run(_serve, args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (JobPrepReleaseError, BaseExceptionGroup) as exc:
        error = find_project_error(exc)
        if debug or error is None:
            raise
        print(f"error: {error.one_line()}", file=sys.stderr)
        return error.exit_status
    except SystemExit as exc:
        return int(exc.code or 0)
