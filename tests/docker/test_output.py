"""Output for people and machines: the live display on a terminal, plain lines off one, and
the `--json` document against its schema."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import docker
import jsonschema
import pytest

from jobprep_release.backends.docker.core.store import StateStore
from tests.conftest import REPO, Ids, labelled, run_cli

TOKENS = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)")
TRANSCRIPT_LANDMARKS = [
    "Attempting to create pool: ",
    "Submitting tasks and awaiting completion...",
    "All tasks completed.",
    "Contents of shared/job_prep_and_release.txt on ",
    "-------------------------------------------",
    "Waiting for job ",
    "  Prep task exit code:    0",
    "Delete job? [yes] no",
    "Sample complete, hit ENTER to exit...",
]
SCHEMA = json.loads((REPO / "jobprep_release" / "report.schema.json").read_text())


def final_screen(output: str) -> list[str]:
    """What a terminal shows after `output`: carriage returns, newlines, cursor-up and
    clear-line applied (the sequences a transient live display uses to erase itself)."""
    lines, row, col = [""], 0, 0
    for token in TOKENS.split(output):
        if not token:
            continue
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token.startswith("\x1b["):
            if token.endswith("A"):
                row = max(row - int(token[2:-1] or 1), 0)
            elif token == "\x1b[2K":
                lines[row] = ""
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return [line.rstrip() for line in lines]


def run_in_terminal(args: list[str], state_dir: Path, limit: float = 120) -> tuple[int, str]:
    """Run the app with stdin, stdout and stderr on a pseudo-terminal; all it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobprep_release", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env={**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir), "TERM": "xterm"},
        close_fds=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    return process.returncode, b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_live_display_that_leaves_the_plain_lines(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    status, screen = run_in_terminal(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--yes", "-q"], state_dir
    )
    assert status == 0, screen
    assert "\x1b[" in screen
    assert "Waiting for tasks" in screen
    lines = final_screen(screen)
    transcript = iter(lines)
    for expected in TRANSCRIPT_LANDMARKS:
        assert any(line.startswith(expected) for line in transcript), expected
    last = lines.index("Waiting for job " + ids.job + " to reach state Completed")
    assert re.fullmatch(r"\.+", lines[last + 1]), lines[last + 1]
    assert lines[last + 2] == ""
    assert re.fullmatch(r"tvm-\S+:", lines[last + 3]), lines[last + 3]
    assert not any("Waiting for tasks" in line for line in lines), "the display did not go"
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_off_a_terminal_there_are_no_control_characters(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert all(ch == "\n" or ch.isprintable() for ch in result.stdout)


def test_json_is_one_document_on_stdout_matching_its_schema(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--tasks", "3", "--yes", "--json"],
        state_dir=state_dir,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["succeeded"] is True
    assert [task["id"] for task in document["tasks"]] == ["task001", "task002", "task003"]
    assert all(task["exitCode"] == 0 for task in document["tasks"])
    files = {entry["nodeId"]: entry["text"] for entry in document["nodeFiles"]}
    for task in document["tasks"]:
        assert f"  {task['id']}\n" in files[task["nodeId"]]
    assert {entry["nodeId"] for entry in document["prepRelease"]} == {
        task["nodeId"] for task in document["tasks"]
    }
    assert document["job"]["deleted"] and document["pool"]["deleted"]
    assert "Attempting to create pool" in result.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_json_needs_an_answer_for_the_prompts(state_dir: Path) -> None:
    result = run_cli(["--json"], state_dir=state_dir)
    assert result.returncode == 2
    assert "--json needs --yes or --keep" in result.stderr


@pytest.mark.parametrize("cause", ["engine unreachable", "state unreadable"])
def test_json_of_a_run_that_fails_outright_is_one_document_with_its_error(
    ids: Ids, state_dir: Path, tmp_path: Path, docker_client: docker.DockerClient, cause: str
) -> None:
    env = {}
    if cause == "engine unreachable":
        env["DOCKER_HOST"] = f"unix://{tmp_path}/no.sock"
        status = 3
    else:
        StateStore(state_dir, str(docker_client.info()["ID"])).path.write_text("{cut short")
        status = 9
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--yes", "--json"],
        state_dir=state_dir,
        env=env,
    )
    assert result.returncode == status, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["succeeded"] is False
    (line,) = result.stderr.splitlines()
    assert document["error"] == {"status": status, "message": line.removeprefix("error: ")}
    assert document["pool"] == {
        "id": ids.pool,
        "vmSize": "standard_d1_v2",
        "deleted": False,
        "nodes": [],
    }
    assert document["job"] == {
        "id": ids.job,
        "state": None,
        "terminateReason": None,
        "deleted": False,
    }
    assert document["tasks"] == document["nodeFiles"] == document["prepRelease"] == []
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_json_of_a_run_that_succeeded_has_no_error(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "1", "--yes",
         "--json"],
        state_dir=state_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["error"] is None and document["succeeded"] is True


def test_json_with_debug_prints_the_document_then_the_traceback(
    state_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(
        ["--yes", "--json", "--debug"],
        state_dir=state_dir,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["error"]["status"] == 1
    assert document["error"]["message"].startswith("cannot reach the Docker engine")
