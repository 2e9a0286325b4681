"""Many CLI runs started together on one engine, sharing the default state directory.

The docker backend's state is one file per engine, driven by one process at a time: a run
started while another holds it waits its turn and says so on stderr, instead of failing. Each
run must exit 0 with its own transcript, leave nothing behind with `--yes`, and the state must
end readable and empty (no run lost or overwrote another's records).
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from jobprep_release.backends.docker.core.store import StateStore
from tests.conftest import Ids, gone, labelled, remove_labelled, run_cli
from tests.docker.test_interrupts import App

RUNS = 10
WAITING = "waiting for the docker backend's state"


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
    state_dir: Path, docker_client: docker.DockerClient
) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool = f"TestPool-{suffix}"
    try:
        with ThreadPoolExecutor(2) as runner:
            first = _start(runner, pool, f"TestJob-{suffix}-a", state_dir, "--keep")
            time.sleep(0.5)  # the first has the state by now (it takes it before anything else)
            second = _start(runner, pool, f"TestJob-{suffix}-b", state_dir, "--yes")
            kept, shared = first.result(), second.result()
        assert kept.returncode == 0, kept.stderr
        assert shared.returncode == 0, shared.stderr
        assert WAITING in shared.stderr and "pid " in shared.stderr
        # Batch allows many jobs on one pool: the second run reuses the pool the first kept.
        assert "The pool already existed when we tried to create it" in shared.stdout
        assert f"Job TestJob-{suffix}-b not found, creating..." in shared.stdout
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
