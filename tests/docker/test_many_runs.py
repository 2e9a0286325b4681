"""Many CLI runs started together on one engine, sharing the default state directory.

The docker backend's state is one file per engine, driven by one process at a time: a run
started while another holds it waits its turn and says so on stderr, instead of failing. Each
run must exit 0 with its own transcript, leave nothing behind with `--yes`, and the state must
end readable and empty (no run lost or overwrote another's records).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from jobprep_release.backends.docker.core.store import StateStore
from tests.conftest import REPO, Ids, gone, labelled, remove_labelled, run_cli
from tests.docker.test_interrupts import App

RUNS = 10
WAITING = "waiting for the docker backend's state"
CLI = (sys.executable, "-m", "jobprep_release")


def _start(
    runner: ThreadPoolExecutor, pool: str, job: str, state_dir: Path, *extra: str
) -> Future[subprocess.CompletedProcess[str]]:
    """The CLI on the pool and job, in a thread of `runner`."""
    args = ["--pool-id", pool, "--job-id", job, "--nodes", "1", "--tasks", "2", "--no-progress"]
    return runner.submit(run_cli, [*args, *extra], state_dir=state_dir, timeout=600)


def _transcript_is_the_samples(stdout: str, pool: str, job: str) -> None:
    lines = stdout.splitlines()
    assert lines[0] == f"Attempting to create pool: {pool}", stdout
    assert f"Created pool {pool} with 1 dedicated and 0 low priority standard_d1_v2 nodes" in lines
    assert f"Job {job} not found, creating..." in lines
    assert "All tasks completed." in lines
    assert lines.count("  task001") + lines.count("  task002") == 2, stdout
    assert lines.count("  Prep task exit code:    0") == 1
    assert lines.count("  Release task exit code: 0") == 1
    assert "Delete pool? [yes] no" in lines


@pytest.mark.slow
def test_ten_runs_started_together_each_complete_with_their_own_transcript(
    state_dir: Path, docker_client: docker.DockerClient
) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = [(f"TestPool-{suffix}-{n}", f"TestJob-{suffix}-{n}") for n in range(RUNS)]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(RUNS) as runner:
            runs = [_start(runner, pool, job, state_dir, "--yes") for pool, job in names]
            results = [run.result() for run in runs]
        elapsed = time.monotonic() - started
        waited = 0
        for result, (pool, job) in zip(results, names, strict=True):
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
            _transcript_is_the_samples(result.stdout, pool, job)
            waited += WAITING in result.stderr
        print(f"{RUNS} runs in {elapsed:.1f} s; {waited} waited their turn")
        # Started together, all but the first find the state held, and say so.
        assert waited >= 1
        for pool, _ in names:
            assert gone(docker_client, pool), f"{pool} left behind"
        engine_id = str(docker_client.info()["ID"])
        state = StateStore(state_dir, engine_id).load_now()
        assert not state.pools and not state.jobs, "the state kept what was deleted"
    finally:
        for pool, _ in names:
            remove_labelled(docker_client, pool)


def test_a_second_run_naming_the_same_pool_waits_then_shares_it(
    state_dir: Path, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool = f"TestPool-{suffix}"
    args = ["--pool-id", pool, "--nodes", "1", "--tasks", "2", "--no-progress"]
    try:
        kept = run_cli([*args, "--job-id", f"TestJob-{suffix}-a", "--keep"], state_dir=state_dir)
        assert kept.returncode == 0, kept.stderr
        # Another process holds the state while the second run starts: it must wait, say so,
        # and go on once the state is free. (Holding it here, rather than racing a first run
        # that may end before the second starts, makes the wait certain.)
        holder = StateStore(state_dir, str(docker_client.info()["ID"]))
        assert holder.try_acquire()
        stderr_path = tmp_path / "stderr"
        with stderr_path.open("w") as stderr_file:
            second = subprocess.Popen(
                [*CLI, *args, "--job-id", f"TestJob-{suffix}-b", "--yes"],
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                text=True,
                env={**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir)},
                cwd=REPO,
            )
            try:
                deadline = time.monotonic() + 120
                while WAITING not in stderr_path.read_text() and time.monotonic() < deadline:
                    assert second.poll() is None, stderr_path.read_text()
                    time.sleep(0.1)
                assert WAITING in stderr_path.read_text()
            finally:
                holder.release()
            stdout, _ = second.communicate(timeout=300)
        stderr = stderr_path.read_text()
        assert second.returncode == 0, stderr
        assert "pid " in stderr
        # Batch allows many jobs on one pool: the second run reuses the pool the first kept.
        assert "The pool already existed when we tried to create it" in stdout
        assert f"Job TestJob-{suffix}-b not found, creating..." in stdout
        assert gone(docker_client, pool)
    finally:
        remove_labelled(docker_client, pool)


def test_a_run_waiting_for_the_state_stops_at_the_first_signal(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    engine_id = str(docker_client.info()["ID"])
    holder = StateStore(state_dir, engine_id)
    assert holder.try_acquire()  # as another process would hold it
    try:
        with App(ids, state_dir, "--yes", "--no-progress") as app:
            app.read_until(WAITING, limit=60, stderr=True, anywhere=True)
            signalled = time.monotonic()
            app.process.send_signal(signal.SIGINT)
            status, stderr = app.finish()
            exited = time.monotonic() - signalled
    finally:
        holder.release()
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert exited < 2.0, f"exited {exited:.2f} s after the signal"
    assert labelled(docker_client, ids.pool) == (0, 0)
