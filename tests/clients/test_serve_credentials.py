"""`serve` takes the account and key from the variables Batch clients read
(``AZURE_BATCH_ACCOUNT``, ``AZURE_BATCH_ACCESS_KEY``), after its flags and its own variables."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from tests.conftest import REPO, run_cli

URL_LINE = re.compile(r"^Azure Batch endpoint \(local, Docker\) at (http://127\.0\.0\.1:\d+)$")
KEY = base64.b64encode(b"serve-credentials-test-key-0123456789").decode()


def _environment(**variables: str) -> dict[str, str]:
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AZURE_", "JOBPREP_RELEASE_ACCOUNT", "JOBPREP_RELEASE_KEY"))
    }
    return {**kept, **variables}


def test_one_set_of_azure_batch_variables_serves_client_and_endpoint(state_dir: Path) -> None:
    environ = _environment(AZURE_BATCH_ACCOUNT="sharedvars", AZURE_BATCH_ACCESS_KEY=KEY)
    server = subprocess.Popen(
        [sys.executable, "-m", "jobprep_release", "serve", "--port", "0",
         "--state-dir", str(state_dir)],
        cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stderr is not None
        first = server.stdout.readline().strip()
        match = URL_LINE.fullmatch(first)
        assert match, first + (server.stderr.read() if server.poll() is not None else "")
        banner = "".join(server.stdout.readline() for _ in range(6))
        assert "account: sharedvars" in banner
        assert KEY not in banner and "<as given by AZURE_BATCH_ACCESS_KEY>" in banner
        # The client reads the same variables.
        credential = AzureNamedKeyCredential(
            environ["AZURE_BATCH_ACCOUNT"], environ["AZURE_BATCH_ACCESS_KEY"]
        )
        with BatchClient(match[1], credential) as client:
            # A key or account the endpoint does not hold raises ClientAuthenticationError.
            pools = list(client.list_pools())
        assert pools == [], "a fresh state directory holds no pools"
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr


def test_the_projects_variables_win_over_azure_batch_ones(state_dir: Path) -> None:
    environ = _environment(JOBPREP_RELEASE_KEY="not base64!", AZURE_BATCH_ACCESS_KEY=KEY)
    result = run_cli(["serve", "--port", "0"], state_dir=state_dir, env=environ)
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("error: the account key from JOBPREP_RELEASE_KEY is not base64")
    environ = _environment(AZURE_BATCH_ACCESS_KEY="not base64 either!")
    result = run_cli(["serve", "--port", "0", "--key", KEY, "--account", "Bad_Name"],
                     state_dir=state_dir, env=environ)  # fmt: skip
    assert result.returncode == 2, "the --key flag wins, so the account is what is refused"
    assert "invalid account name 'Bad_Name'" in result.stderr
    result = run_cli(["serve", "--port", "0"], state_dir=state_dir, env=environ)
    assert result.returncode == 4, result.stderr
    assert "the account key from AZURE_BATCH_ACCESS_KEY is not base64" in result.stderr


def test_an_azure_batch_account_name_is_checked(state_dir: Path) -> None:
    environ = _environment(AZURE_BATCH_ACCOUNT="Not_An_Account")
    result = run_cli(["serve", "--port", "0"], state_dir=state_dir, env=environ)
    assert result.returncode == 2, result.stderr
    assert "invalid account name 'Not_An_Account'" in result.stderr
    environ["JOBPREP_RELEASE_ACCOUNT"] = "Also_Bad"
    result = run_cli(["serve", "--port", "0"], state_dir=state_dir, env=environ)
    assert "invalid account name 'Also_Bad'" in result.stderr, "the project's variable wins"
