"""Exactly once on a real engine: the app SIGKILLed at the instants that matter, then run again.

Each case is a one-node pool and one task that appends ``run`` to a file on the node, sleeps
and exits 3. The app dies (SIGKILL) while the task runs, right after recording a launch and
before telling the node, or while the release task runs; then the app is run again, as a user
would, and carries on. Whatever the instant, the node ran the task once (the file holds one
``run``) and the release task once; the task completed with its process's own exit code (3);
and no requeue is counted: the REST API reference's TaskExecutionInformation.requeueCount
counts the times the service requeued the task for a user's request (nodes removed, a job
disabled with requeue), and this backend also counts a node's loss or reboot; none happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.conftest import POOL_LABEL, REPO, Ids, run_cli
from tests.docker.crashing_app import POINTS, RELEASES_FILE
from tests.docker.test_interrupts import App

RUNS_FILE = "/mnt/batch/tasks/shared/runs.txt"
TASK_COMMAND = "/bin/bash -c 'echo run >> \"$AZ_BATCH_NODE_SHARED_DIR/runs.txt\"; sleep 4; exit 3'"
TASK_EXIT_CODE = 3
EXIT_TASK_FAILED = 10


def _args(ids: Ids, *extra: str) -> list[str]:
    return [
        "--pool-id",
        ids.pool,
        "--job-id",
        ids.job,
        "--nodes",
        "1",
        "--tasks",
        "1",
        "--task-command",
        TASK_COMMAND,
        "--no-progress",
        *extra,
    ]


def _node_file(client: docker.DockerClient, pool_id: str, path: str) -> str:
    """The file's text on the pool's one node; "" when it or the node does not exist yet."""
    containers = client.containers.list(filters={"label": f"{POOL_LABEL}={pool_id}"})
    if not containers:
        return ""
    (container,) = containers
    result = container.exec_run(["cat", path])
    return str(result.output.decode()) if result.exit_code == 0 else ""


def _run_again_and_check(
    client: docker.DockerClient, ids: Ids, state_dir: Path, *, releases: int
) -> None:
    """Run the app again (`--keep --json`), check what the node ran and what the service
    recorded, then remove the pool."""
    try:
        again = run_cli(_args(ids, "--keep", "--json"), state_dir=state_dir, timeout=180)
        assert again.returncode == EXIT_TASK_FAILED, again.stderr
        assert "Traceback" not in again.stderr
        report = json.loads(again.stdout)
        (task,) = report["tasks"]
        assert task["state"] == "completed", task
        assert task["exitCode"] == TASK_EXIT_CODE, task
        assert task["failureCode"] == "FailureExitCode", task
        assert task["requeueCount"] == 0, task
        assert task["retryCount"] == 0, task
        (status,) = report["prepRelease"]
        assert status["release"]["state"] == "completed", status
        assert status["release"]["exitCode"] == 0, status
        assert _node_file(client, ids.pool, RUNS_FILE).split() == ["run"]
        assert _node_file(client, ids.pool, RELEASES_FILE).split() == ["release"] * releases
    finally:
        cleanup = run_cli(["cleanup", "--pool-id", ids.pool, "--yes"], state_dir=state_dir)
    assert cleanup.returncode == 0, cleanup.stderr


def test_sigkill_while_the_task_runs_then_the_app_again_runs_it_exactly_once(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    # The repro: the app killed as soon as the task is running on its node.
    with App(ids, state_dir, *_args(ids, "--yes")) as app:
        app.read_until("Submitting tasks", limit=120)
        deadline = time.monotonic() + 60
        while "run" not in _node_file(docker_client, ids.pool, RUNS_FILE):
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        app.process.kill()
    # The default release task removes the sample's file, leaving none of its own trace.
    _run_again_and_check(docker_client, ids, state_dir, releases=0)


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_each_launch_instant_then_the_app_again_runs_each_once(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, point: str
) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "tests.docker.crashing_app", point, *_args(ids, "--yes")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir)},
        timeout=180,
        check=False,
    )
    assert child.returncode == -9, f"the app did not die at {point}: {child.stderr}"
    if point == "task-journaled":
        # Recorded, never sent: the node has not run it.
        assert _node_file(docker_client, ids.pool, RUNS_FILE) == ""
    _run_again_and_check(docker_client, ids, state_dir, releases=1)
