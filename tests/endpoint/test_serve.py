"""`python -m jobprep_release serve`: its flags and their errors (one line, the app's statuses)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.test_bad_input import NO_AZURE_ENV


def test_help_names_the_flags(state_dir: Path) -> None:
    result = run_cli(["serve", "--help"], state_dir=state_dir)
    assert result.returncode == 0
    for flag in ("--port", "--account", "--key", "--image", "--state-dir"):
        assert flag in result.stdout


def test_a_key_that_is_not_base64_is_refused(state_dir: Path) -> None:
    result = run_cli(["serve", "--port", "0", "--key", "not base64!"], state_dir=state_dir)
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("error: the account key from --key is not base64")
    assert "not base64!" not in result.stdout


def test_bad_flags_are_usage_errors(state_dir: Path) -> None:
    for args in (
        ["--account", "Bad_Name"],
        ["--port", "70000"],
        ["--nonsense"],
        ["--port", "0", "--image", "UPPER:bad"],
    ):
        result = run_cli(["serve", *args], state_dir=state_dir)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_a_port_in_use_is_named(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--port", str(port)], state_dir=state_dir)
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr


def test_the_run_help_example_for_serve_names_the_account_it_serves(state_dir: Path) -> None:
    # A newcomer copies the example from `--help` with the key `serve` printed: the account
    # must be the one serve takes by default, or every request is refused (status 4).
    shown = run_cli(["--help"], state_dir=state_dir).stdout
    (example,) = re.findall(r"--endpoint http://127\.0\.0\.1:8089 \\\n\s+--account (\S+)", shown)
    # No account or key from the environment: serve's defaults, its key printed.
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AZURE_", "JOBPREP_RELEASE_"))
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "jobprep_release", "serve", "--port", "0", "--state-dir",
         str(state_dir)],
        cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        banner = [server.stdout.readline() for _ in range(3)]
        url = banner[0].split(" at ")[-1].strip()
        key = banner[2].split()[-1]
        status = run_cli(
            ["status", "--backend", "azure", "--endpoint", url, "--account", example,
             "--key", key, "--job-id", "NoSuchJob"],
            state_dir=state_dir,
            env=NO_AZURE_ENV,
        )  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert status.returncode == 5, status.stderr  # accepted: only the job does not exist
    assert "does not exist" in status.stderr
