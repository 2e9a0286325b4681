"""Many CLI runs started together on one engine, sharing the default state directory.

One process at a time holds an engine's state and serves it (`backends.docker.sharing`): a run
started while another holds it attaches to the holder's service and runs at once, saying so in
one line; the holder waits for the runs attached to it before it ends. Each run must exit 0 with
the sample's transcript (checked against ../shared/reference/sample-flow.md where it is
present), leave nothing behind with `--yes`, and the state must end readable and empty (no run
lost or overwrote another's records). A holder that publishes no service (here: the test holding
the lock itself) is waited for, as before.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker

from jobprep_release.backends.docker.core.store import StateStore
from tests.conftest import REPO, Ids, gone, labelled, remove_labelled, run_cli
from tests.docker.test_interrupts import App

RUNS = 10
WAITING = "waiting for the docker backend's state"
ATTACHED = re.compile(
    r"^The docker backend's state is held by pid (\d+): this run uses that process's Batch "
    r"service at http://127\.0\.0\.1:\d+$",
    re.MULTILINE,
)
LINGERING = re.compile(
    r"^Other runs are using this run's docker service \(pid (\d+)\): waiting for them to end "
    r"\(Ctrl-C stops waiting\)$",
    re.MULTILINE,
)
CLI = (sys.executable, "-m", "jobprep_release")
REFERENCE = REPO.parent / "shared" / "reference" / "sample-flow.md"
NODE_LINE = re.compile(
    r"^Contents of shared/job_prep_and_release\.txt on (tvm-\d{10}_1-\d{8}t\d{6}z):$"
)


def _start(
    runner: ThreadPoolExecutor, pool: str, job: str, state_dir: Path, *extra: str
) -> Future[subprocess.CompletedProcess[str]]:
    """The CLI on the pool and job, in a thread of `runner`."""
    args = ["--pool-id", pool, "--job-id", job, "--nodes", "1", "--tasks", "2", "--no-progress"]
    return runner.submit(run_cli, [*args, *extra], state_dir=state_dir, timeout=600)


def reference_transcript(
    pool: str, job: str, files: list[tuple[str, list[str]]], *, echoed: bool = True
) -> list[str] | None:
    """The sample's transcript for a pool whose nodes ran the tasks `files` lists (node id,
    the tasks in its file), every node in that order, answering yes (`echoed`: with `--yes`,
    which writes the answers; typed answers are not), each line in the reference's wording
    (for the sample's ids, which are then replaced by the run's); None when the reference is
    absent."""
    if not REFERENCE.exists():
        return None
    text = REFERENCE.read_text()
    sample_pool, sample_job = "JobPrepReleaseSamplePool", "JobPrepReleaseSampleJob"
    wordings = [
        f"Attempting to create pool: {sample_pool}",
        f"Created pool {sample_pool} with 2 dedicated and 0 low priority standard_d1_v2 nodes",
        f"Checking for existing job {sample_job}...",
        f"Job {sample_job} not found, creating...",
        "Submitting tasks and awaiting completion...",
        "All tasks completed.",
        "shared/job_prep_and_release.txt",
        f"Waiting for job {sample_job} to reach state Completed",
        "  Prep task exit code:    <code>",
        "  Release task exit code: <code>",
        "Delete job? [yes] no",
        "Delete pool? [yes] no",
        "Sample complete, hit ENTER to exit...",
        "<node id> tasks:",
        "43 dashes",
    ]
    for wording in wordings:
        assert wording in text, f"the reference no longer says {wording!r}"

    def ours(line: str) -> str:
        return line.replace(sample_pool, pool).replace(sample_job, job)

    answer = ["yes"] if echoed else []
    return [
        ours(f"Attempting to create pool: {sample_pool}"),
        ours(
            f"Created pool {sample_pool} with 2 dedicated and 0 low priority standard_d1_v2 nodes"
        ).replace("with 2 dedicated", f"with {len(files)} dedicated"),
        ours(f"Checking for existing job {sample_job}..."),
        ours(f"Job {sample_job} not found, creating..."),
        "Submitting tasks and awaiting completion...",
        "All tasks completed.",
        "",
        *[
            line
            for node, tasks in files
            for line in (
                f"Contents of shared/job_prep_and_release.txt on {node}:",
                "-" * 43,
                f"{node} tasks:",
                *[f"  {task}" for task in tasks],
                "",
            )
        ],
        ours(f"Waiting for job {sample_job} to reach state Completed"),
        "<dots>",
        *[
            line
            for node, _ in files
            for line in (
                "",
                f"{node}: ",
                "  Prep task exit code:    0",
                "  Release task exit code: 0",
            )
        ],
        "",
        "Delete job? [yes] no",
        *answer,
        "Delete pool? [yes] no",
        *answer,
        "",
        "Sample complete, hit ENTER to exit...",
    ]


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
    nodes = [match[1] for line in lines if (match := NODE_LINE.fullmatch(line))]
    assert len(nodes) == 1, stdout
    # One node with one slot runs the two tasks one after the other: the file lists both, in
    # the order they ran, which is not known here; the reference's lines are checked in order.
    ran = [line.strip() for line in lines if line in ("  task001", "  task002")]
    expected = reference_transcript(pool, job, [(nodes[0], ran)])
    if expected is None:
        print("../shared/reference/sample-flow.md is absent: transcript checked by its lines")
        return
    assert len(lines) == len(expected), stdout
    for got, wanted in zip(lines, expected, strict=True):
        if wanted == "<dots>":
            assert re.fullmatch(r"\.*", got), got
        else:
            assert got == wanted, stdout


def test_ten_runs_started_together_run_together_each_with_their_own_transcript(
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
        holders: dict[int, int] = {}
        attached = 0
        for result, (pool, job) in zip(results, names, strict=True):
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
            _transcript_is_the_samples(result.stdout, pool, job)
            said = ATTACHED.findall(result.stderr)
            assert len(said) <= 1, result.stderr
            if said:
                attached += 1
                holders[int(said[0])] = holders.get(int(said[0]), 0) + 1
        print(f"{RUNS} runs in {elapsed:.1f} s; {attached} attached to {sorted(holders)}")
        # Started together, the runs that find the state held attach to its holder rather
        # than wait for their turn; the holder said it waited for them before it ended.
        assert attached >= RUNS // 2, f"only {attached} attached"
        # A holder still serving runs at the end of its own flow says it waits for them
        # (one that outlived them has nothing to say): at least the first, started with
        # nine others, does.
        lingered = {int(pid) for r in results for pid in LINGERING.findall(r.stderr)}
        assert lingered, "no holder said it waited for the runs attached to it"
        assert lingered <= set(holders), (lingered, holders)
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
