"""Ctrl-C, SIGTERM and SIGKILL at each step of the flow, on a real engine."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import anyio
import docker
import jsonschema
import pytest

from jobprep_release.backends.base import JobState, PrepReleaseTaskState
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from tests.conftest import POOL_LABEL, REPO, Ids, labelled, remove_labelled, run_cli
from tests.docker.test_output import SCHEMA

STEPS = [
    "Attempting to create pool",
    "Checking for existing job",
    "Submitting tasks and awaiting completion...",
    "Contents of shared/job_prep_and_release.txt",
    "Waiting for job",
]


class App:
    """The app (or, with `argv`, another Python program; with `command`, any program, such as
    the app's image under `docker run`) in a child process, its stdout and stderr read line by
    line as they come."""

    def __init__(
        self,
        ids: Ids,
        state_dir: Path,
        *extra: str,
        argv: list[str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        args = argv or ["-m", "jobprep_release", "--pool-id", ids.pool, "--job-id", ids.job, *extra]
        self.process = subprocess.Popen(
            command or [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir)},
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self._stdout: queue.Queue[str | None] = queue.Queue()
        self._stderr: queue.Queue[str | None] = queue.Queue()
        self._stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        """stdout's lines read so far (all of them after `finish`)."""
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self._stdout),
                (self.process.stderr, self._stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def read_until(
        self, prefix: str, limit: float = 60, *, stderr: bool = False, anywhere: bool = False
    ) -> None:
        """Wait for a line of stdout (or stderr) starting with `prefix` (holding it anywhere,
        with `anywhere`)."""
        lines = self._stderr if stderr else self._stdout
        deadline = time.monotonic() + limit
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            (self._stderr_lines if stderr else self.stdout_lines).append(line)
            if line.startswith(prefix) or (anywhere and prefix in line):
                return
        raise AssertionError(f"never saw {prefix!r}")

    def finish(self) -> tuple[int, str]:
        """The exit status and all of stderr."""
        self.process.wait(timeout=120)
        for reader in self._readers:
            reader.join(timeout=30)
        while (line := self._stderr.get()) is not None:
            self._stderr_lines.append(line)
        with contextlib.suppress(queue.Empty):  # the readers have ended: all is queued
            while (line := self._stdout.get_nowait()) is not None:
                self.stdout_lines.append(line)
        return self.process.returncode, "".join(self._stderr_lines)


def _tidy_line(stderr: str) -> str:
    """The one line the app writes once it has tidied up after a first signal."""
    (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    return line


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_with_yes_deletes_everything(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, step: str, sent: signal.Signals
) -> None:
    with App(ids, state_dir, "--yes") as app:
        app.read_until(step)
        app.process.send_signal(sent)
        status, stderr = app.finish()
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert f"stopping ({sent.name})" in stderr
    tidied = _tidy_line(stderr)
    if STEPS.index(step) == 0:
        # The pool's creation may not have been recorded when the signal came.
        assert tidied.startswith("interrupted; deleted "), tidied
    elif STEPS.index(step) == 1:
        assert tidied.startswith("interrupted; deleted "), tidied
        assert tidied.endswith(f"pool {ids.pool}"), tidied
    else:
        assert tidied == f"interrupted; deleted job {ids.job} and pool {ids.pool}"
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_json_of_an_interrupted_run_is_one_document_with_what_the_tidy_up_did(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    with App(ids, state_dir, "--yes", "--json") as app:
        app.read_until(STEPS[2], stderr=True)  # with --json the transcript is on stderr
        app.process.send_signal(signal.SIGINT)
        status, stderr = app.finish()
    assert status == 130, stderr
    document = json.loads("".join(app.stdout_lines))
    jsonschema.validate(document, SCHEMA)
    tidied = _tidy_line(stderr)
    assert tidied == f"interrupted; deleted job {ids.job} and pool {ids.pool}"
    assert document["error"] == {"status": 130, "message": tidied}
    assert document["succeeded"] is False
    assert document["job"]["deleted"] and document["pool"]["deleted"]
    assert labelled(docker_client, ids.pool) == (0, 0)


def _expected_status_of_the_next_run(state_dir: Path, ids: Ids) -> int:
    """0 or 10, from the service's record of the interrupted run once its job has completed
    (its release tasks may still run when the app exits): terminating the job ends tasks that
    had not finished, and the next run reports them as failed."""

    async def record() -> int:
        async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
            with anyio.fail_after(60):
                while (job := await backend.find_job(ids.job)) is not None:
                    if job.state is JobState.COMPLETED:
                        break
                    await anyio.sleep(0.1)
            if job is None:  # the signal came before the job was created
                return 0
            tasks = await backend.list_tasks(ids.job)
            statuses = await backend.list_prep_release_status(ids.job)
        failed = [task.id for task in tasks if task.execution_info.exit_code != 0]
        # A node's preparation and release each count as failed unless they ran and exited 0.
        failed += [
            status.node_id
            for status in statuses
            for execution in (status.preparation, status.release)
            if execution is None or execution.execution_info.exit_code != 0
        ]
        return 10 if failed else 0

    return anyio.run(record)


@pytest.mark.parametrize(
    ("step", "sent"),
    [
        *[(step, signal.SIGINT) for step in [*STEPS, "Delete job? [yes] no"]],
        *[(step, signal.SIGTERM) for step in [STEPS[2], "Delete job? [yes] no"]],
    ],
)
def test_first_signal_without_yes_stops_cleanly_and_the_next_run_carries_on(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, step: str, sent: signal.Signals
) -> None:
    with App(ids, state_dir) as app:
        app.read_until(step)
        app.process.send_signal(sent)
        status, stderr = app.finish()
    assert status == 130, stderr
    assert "Traceback" not in stderr
    tidied = _tidy_line(stderr)
    # An active job is terminated and takes no more tasks, so the next run reports how it
    # ended; a job the flow terminated already (or none) is carried on. Before "Waiting for job"
    # the signal may be handled before or after the job exists or ends (a loaded machine).
    ended = "see how the job ended, with --yes to delete them"
    carry_on = "carry on, with --yes to delete them"
    assert tidied.endswith(ended if "was terminated" in tidied else carry_on), tidied
    if step in (STEPS[4], "Delete job? [yes] no"):
        assert tidied.endswith(carry_on), tidied
    assert f"pool {ids.pool}" in tidied
    expected = _expected_status_of_the_next_run(state_dir, ids)
    if step not in STEPS[:3]:
        assert expected == 0, "every task had run when the signal came"
    again = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
    assert again.returncode == expected, again.stderr
    assert "Traceback" not in again.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_a_second_signal_exits_at_once(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    # The nodes are paused while a task runs there: the first signal's tidy-up (terminate the
    # job, wait for its release tasks) then waits for them, however fast the machine, until the
    # second signal ends the run.
    try:
        with App(ids, state_dir, "--task-command", "/bin/sleep 600") as app:
            app.read_until("Submitting tasks")
            for node in nodes_running(docker_client, ids.pool, "/bin/sleep 600", limit=120):
                node.pause()
            app.process.send_signal(signal.SIGINT)
            app.read_until("stopping (SIGINT); press Ctrl-C again to exit at once", stderr=True)
            time.sleep(0.5)  # well into the tidy-up
            app.process.send_signal(signal.SIGINT)
            status, stderr = app.finish()
    finally:
        # Exiting at once leaves behind what the run had made so far; this test removes it.
        remove_labelled(docker_client, ids.pool)
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert "stopped at once (second signal)" in stderr.splitlines()
    assert not [line for line in stderr.splitlines() if line.startswith("interrupted")]


def nodes_running(
    client: docker.DockerClient, pool_id: str, command: str, limit: float
) -> list[docker.models.containers.Container]:
    """The pool's node containers, once `command` runs in each of them."""
    deadline = time.monotonic() + limit
    selector = {"label": f"{POOL_LABEL}={pool_id}"}
    while time.monotonic() < deadline:
        nodes: list[docker.models.containers.Container] = client.containers.list(filters=selector)
        running = [
            node
            for node in nodes
            if any(command in " ".join(row) for row in node.top()["Processes"] or [])
        ]
        if nodes and len(running) == len(nodes):
            return nodes
        time.sleep(0.1)
    raise AssertionError(f"{command!r} did not run on every node of {pool_id} in {limit} s")


def test_the_run_after_one_stopped_while_its_first_task_ran_names_none_as_failed(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    # One node, one slot: one task runs (its id in its process name, read from the engine),
    # the signal's tidy-up terminates the job, which ends that task; the others stay active
    # and never run (Batch schedules no task of a terminated job).
    command = "/bin/bash -c 'exec -a sleeping-$AZ_BATCH_TASK_ID /bin/sleep 600'"
    sample = ["--pool-id", ids.pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "3"]
    with App(ids, state_dir, *sample[4:], "--task-command", command) as app:
        app.read_until("Submitting tasks")
        (node,) = nodes_running(docker_client, ids.pool, "sleeping-task", limit=120)
        (ran,) = [
            word.removeprefix("sleeping-")
            for row in node.top()["Processes"]
            for word in " ".join(row).split()
            if word.startswith("sleeping-task")
        ]
        app.process.send_signal(signal.SIGINT)
        status, stderr = app.finish()
    assert status == 130, stderr
    assert "was terminated (its running tasks ended, the others will not run)" in stderr
    again = run_cli([*sample, "--yes", "--json"], state_dir=state_dir)
    assert again.returncode == 10, again.stderr
    never = ", ".join(sorted({"task001", "task002", "task003"} - {ran}))
    assert (
        f"error: the sample ran, but job {ids.job} was terminated while these ran, ending them: "
        f"{ran}; job {ids.job} was terminated before these ran, so they never will: {never}"
    ) in again.stderr.splitlines(), again.stderr
    states = {task["id"]: task["state"] for task in json.loads(again.stdout)["tasks"]}
    assert states == {task_id: "completed" if task_id == ran else "active" for task_id in states}
    assert labelled(docker_client, ids.pool) == (0, 0)


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_stops_a_job_deletion_waiting_for_its_release_task_within_1s(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, sent: signal.Signals
) -> None:
    # The release task sleeps 600 s, so Delete Job waits for it; the deletion was shielded
    # whole, and the first signal took effect only once the release task had ended.
    argv = ["-m", "tests.docker.deleting_child", ids.pool, ids.job]
    with App(ids, state_dir, argv=argv) as app:
        app.read_until("deleting", limit=180)
        time.sleep(1)  # well into the wait: the release task has started by now
        signalled = time.monotonic()
        app.process.send_signal(sent)
        app.read_until("stopped", limit=60, stderr=True)
        stopped = time.monotonic() - signalled
        app.process.wait(timeout=60)
        exited = time.monotonic() - signalled
        status, stderr = app.finish()
    print(f"{sent.name}: stopped {stopped:.3f} s, exited {exited:.3f} s after the signal")
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert stopped < 1.0, f"the wait stopped {stopped:.2f} s after the signal"
    assert exited < 2.0, f"the process exited {exited:.2f} s after the signal"

    async def recorded() -> None:
        # The deletion was recorded before the wait: a new service finds it under way, with
        # the release task still running; deleting the pool ends it.
        async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
            job = await backend.find_job(ids.job)
            assert job is not None and job.state is JobState.DELETING
            (status,) = await backend.list_prep_release_status(ids.job)
            assert status.release is not None
            assert status.release.state is PrepReleaseTaskState.RUNNING
            with anyio.fail_after(60):
                await backend.delete_pool(ids.pool)

    anyio.run(recorded)
    assert labelled(docker_client, ids.pool) == (0, 0)


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


@pytest.mark.parametrize("answer", ["--yes", "--keep"])
def test_stdout_closed_mid_run_stops_as_a_signal_does(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, answer: str
) -> None:
    """`... | head -1`: the reader goes away after the first line; the run tidies up as for
    Ctrl-C (status 130), not 'unexpected BrokenPipeError' with the pool's volume left behind."""
    environment = {**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir)}
    args = ["--pool-id", ids.pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "2", answer]
    process = subprocess.Popen(
        [sys.executable, "-m", "jobprep_release", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=environment, cwd=REPO, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == f"Attempting to create pool: {ids.pool}\n"
    process.stdout.close()
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    (tidied,) = [line for line in stderr.splitlines() if line.startswith("stdout was closed;")]
    # Whether the job exists yet depends on how many lines the pipe took before it closed.
    if answer == "--yes":
        assert tidied.endswith(f"pool {ids.pool}"), tidied
        assert "deleted" in tidied, tidied
        assert labelled(docker_client, ids.pool) == (0, 0)
    else:
        assert f"pool {ids.pool}" in tidied and "remain" in tidied, tidied
        again = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
        assert "Traceback" not in again.stderr
        assert labelled(docker_client, ids.pool) == (0, 0)
