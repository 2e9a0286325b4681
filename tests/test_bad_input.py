"""Bad input, one row each: a clear line naming the problem, a documented status, no
traceback, nothing left behind. (The README's "Bad input" table lists the same rows.)"""

from __future__ import annotations

import base64
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli

KEY = base64.b64encode(b"not-the-real-key-but-base64-encoded").decode()
AZURE = ["--backend", "azure", "--account", "acct", "--key", KEY]
NO_AZURE_ENV = {
    "AZURE_BATCH_ENDPOINT": "",
    "AZURE_BATCH_ACCOUNT": "",
    "AZURE_BATCH_ACCESS_KEY": "",
    "AZURE_STORAGE_CONNECTION_STRING": "",
}
LOOPBACK = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
SAS_ONLY = "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2024"

ROWS = [
    ("empty pool id", ["--pool-id", ""], 2, "invalid pool id ''"),
    ("pool id too long", ["--pool-id", "p" * 65], 2, "invalid pool id"),
    ("pool id with bad characters", ["--pool-id", "my pool!"], 2, "invalid pool id"),
    ("job id with bad characters", ["--job-id", "job/1"], 2, "invalid job id"),
    ("no nodes", ["--nodes", "0"], 2, "--nodes must be between 1 and 64"),
    ("negative nodes", ["--nodes", "-3"], 2, "--nodes must be between 1 and 64"),
    ("absurd nodes", ["--nodes", "100000"], 2, "--nodes must be between 1 and 64"),
    ("no tasks", ["--tasks", "0"], 2, "--tasks must be between 1 and 10000"),
    ("100,000 tasks", ["--tasks", "100000"], 2, "--tasks must be between 1 and 10000"),
    ("unknown backend", ["--backend", "gcp"], 2, "invalid choice: 'gcp'"),
    ("bad duration", ["--task-timeout", "soon"], 2, "is not a duration"),
    ("zero task wait", ["--task-timeout", "0"], 2, "--task-timeout must be longer than 0 s"),
    ("zero job wait", ["--job-timeout", "0s"], 2, "--job-timeout must be longer than 0 s"),
    ("empty VM size", ["--vm-size", ""], 2, "--vm-size must not be empty"),
    ("blank node image", ["--image", " "], 2, "--image must not be empty"),
    (
        "node image not a Docker reference",
        ["--image", "UPPER:bad"],
        2,
        "--image 'UPPER:bad' is not a Docker image reference: the repository name must be lower",
    ),
    ("node image with a space", ["--image", "debian bookworm"], 2, "not a Docker image reference"),
    ("azure: no endpoint", ["--backend", "azure"], 2, "AZURE_BATCH_ENDPOINT"),
    ("storage: no account", ["--stage-container", "common"], 2, "--storage-connection-string"),
    ("storage: bad container", ["--logs-container", "Logs_1"], 2, "invalid container name"),
    ("storage: --azurite alone", ["--azurite"], 2, "--azurite is for"),
    (
        "storage: a loopback emulator the nodes cannot reach",
        ["--logs-container", "logs", "--storage-connection-string", LOOPBACK],
        2,
        "cannot reach http://127.0.0.1:10000/devstoreaccount1",
    ),
    (
        "storage: --azurite for Azure's nodes",
        [
            *AZURE,
            "--endpoint",
            "https://a.b.batch.azure.com",
            "--logs-container",
            "logs",
            "--azurite",
        ],
        2,
        "Azure's nodes cannot reach",
    ),
    (
        "storage: no account key",
        ["--logs-container", "logs", "--storage-connection-string", SAS_ONLY],
        2,
        "no AccountKey",
    ),
    ("azure: malformed endpoint", [*AZURE, "--endpoint", "batch.example"], 2, "endpoint"),
    (
        "azure: key without account",
        ["--backend", "azure", "--endpoint", "https://a.b.batch.azure.com", "--key", KEY],
        4,
        "AZURE_BATCH_ACCOUNT",
    ),
    (
        "azure: malformed key",
        [*AZURE[:4], "--key", "not base64!", "--endpoint", "https://a.b.batch.azure.com"],
        4,
        "not valid base64",
    ),
]


@pytest.mark.parametrize(
    ("args", "status", "words"), [row[1:] for row in ROWS], ids=[r[0] for r in ROWS]
)
def test_bad_input(args: list[str], status: int, words: str, state_dir: Path) -> None:
    result = run_cli(args, state_dir=state_dir, env=NO_AZURE_ENV)
    assert result.returncode == status, result.stderr
    assert words in result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_azure_settings_file_that_is_not_json(state_dir: Path, tmp_path: Path) -> None:
    settings = tmp_path / "accountsettings.json"
    settings.write_text("batchServiceUrl = https://x\n")
    settings.chmod(0o600)
    result = run_cli(["--backend", "azure", "--settings", str(settings)], state_dir=state_dir)
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr or "is not JSON" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def refusing_service() -> Iterator[str]:
    """A local HTTP service that answers every request 401, as Batch does a bad key."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            body = b'{"code":"AuthenticationFailed","message":{"lang":"en-US","value":"no"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _refuse

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_azure_rejected_credentials(refusing_service: str, state_dir: Path) -> None:
    result = run_cli([*AZURE, "--endpoint", refusing_service, "--yes"], state_dir=state_dir)
    assert result.returncode == 4, result.stderr
    assert "AZURE_BATCH_ACCESS_KEY" in result.stderr
    assert KEY not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def _storage_at(blob_endpoint: str) -> str:
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint={blob_endpoint}/devstoreaccount1;"
    )


def test_storage_account_that_cannot_be_reached(state_dir: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    args = ["--stage-container", "common", "--storage-connection-string", _storage_at(endpoint)]
    started = time.monotonic()
    result = run_cli([*args, "--yes"], state_dir=state_dir, env=NO_AZURE_ENV)
    assert result.returncode == 3, result.stderr
    assert f"cannot reach the storage account at {endpoint}/devstoreaccount1" in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "", "nothing was created: storage is prepared before the pool"
    assert time.monotonic() - started < 30, "connection retries are bounded"


def test_storage_account_that_refuses_the_key(refusing_service: str, state_dir: Path) -> None:
    connection = _storage_at(refusing_service)
    args = ["--stage-container", "common", "--storage-connection-string", connection]
    result = run_cli([*args, "--yes"], state_dir=state_dir, env=NO_AZURE_ENV)
    assert result.returncode == 4, result.stderr
    assert "refused the account key (HTTP 401" in result.stderr
    assert "AccountKey" in result.stderr and "a2V5" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
