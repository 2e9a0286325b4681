"""Ctrl-C, SIGTERM and SIGKILL at each step of the flow, on a real engine."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO, Ids, labelled, run_cli

STEPS = [
    "Attempting to create pool",
    "Checking for existing job",
    "Submitting tasks and awaiting completion...",
    "Contents of shared/job_prep_and_release.txt",
    "Waiting for job",
]


class App:
    """The app in a child process, its stdout read line by line as it comes."""

    def __init__(self, ids: Ids, state_dir: Path, *extra: str) -> None:
        args = ["--pool-id", ids.pool, "--job-id", ids.job, *extra]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobprep_release", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir)},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def read_until(self, prefix: str, limit: float = 60) -> None:
        """Wait for a line of stdout starting with `prefix`."""
        deadline = time.monotonic() + limit
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith(prefix):
                return
        raise AssertionError(f"never saw {prefix!r}")

    def finish(self) -> tuple[int, str]:
        assert self.process.stderr is not None
        self.process.wait(timeout=120)
        return self.process.returncode, self.process.stderr.read()


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_with_yes_deletes_everything(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, step: str, sent: signal.Signals
) -> None:
    if sent is signal.SIGTERM and step != STEPS[2]:
        pytest.skip("SIGTERM takes the same path as SIGINT: one step is enough")
    with App(ids, state_dir, "--yes") as app:
        app.read_until(step)
        app.process.send_signal(sent)
        status, stderr = app.finish()
    assert status in (130, 0), stderr
    assert "Traceback" not in stderr
    if status == 130:
        assert "interrupted; deleted" in stderr or "deleted nothing" in stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


@pytest.mark.parametrize("step", [*STEPS, "Delete job? [yes] no"])
def test_first_signal_without_yes_stops_cleanly_and_the_next_run_carries_on(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, step: str
) -> None:
    with App(ids, state_dir) as app:
        app.read_until(step)
        app.process.send_signal(signal.SIGINT)
        status, stderr = app.finish()
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert "remain: run again to carry on" in stderr
    again = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
    assert again.returncode in (0, 10), again.stderr
    assert "Traceback" not in again.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_a_second_signal_exits_at_once(ids: Ids, state_dir: Path) -> None:
    with App(ids, state_dir) as app:
        app.read_until("Submitting tasks")
        app.process.send_signal(signal.SIGINT)
        app.process.send_signal(signal.SIGINT)
        status, stderr = app.finish()
    assert status == 130
    assert "Traceback" not in stderr


@pytest.mark.parametrize("step", STEPS[:3])
def test_after_sigkill_the_next_run_finds_pool_and_job(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, step: str
) -> None:
    with App(ids, state_dir) as app:
        app.read_until(step)
        app.process.kill()
    again = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert again.stdout.count("  Prep task exit code:    0") >= 1
    assert labelled(docker_client, ids.pool) == (0, 0)
