"""`python -m jobprep_release serve`: its flags and their errors (one line, the app's statuses)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import run_cli


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
    for args in (["--account", "Bad_Name"], ["--port", "70000"], ["--nonsense"]):
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
