"""Every line the user sees on stdout, and the prompts: the sample's transcript, kept exact.

Logs go to stderr through structlog (see `jobprep_release.logs`); only this module writes the
sample's own lines, so the transcript stays byte-for-byte what the original sample prints
(with Linux paths).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TextIO

import anyio

from jobprep_release.backends.base import (
    DEFAULT_RETENTION,
    Job,
    JobSpec,
    PrepReleaseExecution,
    PrepReleaseStatus,
    UserIdentity,
)
from jobprep_release.options import Answer
from jobprep_release.progress import LiveProgress, NoProgress, ProgressView

SHARED_FILE = "shared/job_prep_and_release.txt"
RULE = "-" * 43
INPUT_POLL = 0.05


def means_yes(reply: str | None) -> bool:
    """The sample's rule: anything but `n` or `no` (any case) is yes; end of input too."""
    if reply is None:
        return True
    return reply.strip().lower() not in ("n", "no")


class Console:
    """The sample's console: writes its lines, asks its questions."""

    def __init__(
        self,
        answer: Answer = Answer.ASK,
        out: TextIO | None = None,
        read_line: Callable[[], str] | None = None,
        *,
        live: bool = False,
    ) -> None:
        """`out`: where the transcript goes (stdout, looked up at each write so a live display
        can route it); `live`: draw a progress display during waits (on a terminal)."""
        self._answer = answer
        self._fixed_out = out
        self._live = live
        self._read_line = read_line or sys.stdin.readline
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._at_end = False
        self._held_ticks = 0

    @property
    def _out(self) -> TextIO:
        return self._fixed_out or sys.stdout

    def line(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    @property
    def live(self) -> bool:
        return self._live

    def progress(self, title: str) -> ProgressView:
        """A display for one wait: live on a terminal, nothing otherwise."""
        if not self._live:
            return NoProgress()
        return LiveProgress(title, sys.stdout)

    async def _read(self) -> str | None:
        """One line of input without its newline; None at end of input.

        Lines are read by a daemon thread: a prompt interrupted by Ctrl-C leaves no worker
        thread blocked on stdin that would keep the process from exiting.
        """
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_lines, daemon=True)
            self._reader.start()
        while not self._at_end:
            try:
                raw = self._lines.get_nowait()
            except queue.Empty:
                await anyio.sleep(INPUT_POLL)
                continue
            if raw:
                return raw.rstrip("\r\n")
            self._at_end = True
        return None

    def _read_lines(self) -> None:
        while raw := self._read_line():
            self._lines.put(raw)
        self._lines.put("")

    async def confirm(self, question: str, *, at_end_of_input: bool = True) -> bool:
        """Ask `question` as the sample does (`... [yes] no`); fixed answers are echoed.

        `at_end_of_input`: the answer when there is no input at all (the sample's prompts
        take it as yes; a destructive command outside the sample should not).
        """
        self.line(f"{question} [yes] no")
        if self._answer is not Answer.ASK:
            self.line(self._answer.value)
            return self._answer is Answer.YES
        reply = await self._read()
        if reply is None:
            return at_end_of_input
        return means_yes(reply)

    async def wait_for_enter(self) -> None:
        self.line("Sample complete, hit ENTER to exit...")
        if self._answer is Answer.ASK:
            await self._read()

    # --- the sample's lines, in order ----------------------------------------------------------

    def creating_pool(self, pool_id: str) -> None:
        self.line(f"Attempting to create pool: {pool_id}")

    def pool_created(self, pool_id: str, dedicated: int, low_priority: int, vm_size: str) -> None:
        self.line(
            f"Created pool {pool_id} with {dedicated} dedicated and {low_priority} low priority "
            f"{vm_size} nodes"
        )

    def pool_existed(self) -> None:
        self.line("The pool already existed when we tried to create it")

    def checking_job(self, job_id: str) -> None:
        self.line(f"Checking for existing job {job_id}...")

    def creating_job(self, job_id: str) -> None:
        self.line(f"Job {job_id} not found, creating...")

    def submitting_tasks(self) -> None:
        self.line("Submitting tasks and awaiting completion...")

    def tasks_completed(self) -> None:
        self.line("All tasks completed.")
        self.line()

    def staging(self, container: str, blobs: Sequence[str]) -> None:
        count = f"{len(blobs)} blob{'' if len(blobs) == 1 else 's'}"
        self.line(
            f"The job preparation task stages {count} from container {container} on each node"
        )

    def uploaded_logs(self, container: str, blobs: Sequence[tuple[str, int]]) -> None:
        self.line()
        self.line(f"Job logs uploaded to container {container} by the release tasks:")
        for name, size in blobs:
            self.line(f"  {name} ({size} bytes)")
        if not blobs:
            self.line("  (none)")

    def node_file(self, node_id: str, text: str | None) -> None:
        self.line(f"Contents of {SHARED_FILE} on {node_id}:")
        self.line(RULE)
        if text is None:
            self.line("(no such file: this node ran no task of the job, so its preparation")
            self.line("task never ran there)")
        else:
            self.line(text.rstrip("\n"))
        self.line()

    def waiting_for_job(self, job_id: str) -> None:
        self.line(f"Waiting for job {job_id} to reach state Completed")

    def tick(self) -> None:
        """One `.` per poll, as the sample prints; behind a live display they are held back
        and written when it ends, so the transcript's dotted line stays whole."""
        if self._live:
            self._held_ticks += 1
        else:
            self.write(".")

    def end_ticks(self) -> None:
        self.line("." * self._held_ticks)
        self._held_ticks = 0

    def exit_codes(self, node_id: str, prep: int | None, release: int | None) -> None:
        self.line()
        self.line(f"{node_id}: ")
        self.line(f"  Prep task exit code:    {_code(prep)}")
        self.line(f"  Release task exit code: {_code(release)}")

    # --- `status` and `cleanup` ----------------------------------------------------------------

    def job_status(self, job: Job, spec: JobSpec, statuses: Sequence[PrepReleaseStatus]) -> None:
        """The job's preparation and release tasks as the portal's job page shows them."""
        reason = f" ({job.terminate_reason})" if job.terminate_reason else ""
        self.line(f"Job {job.id} on pool {job.pool_id}: {job.state.value}{reason}")
        prep, release = spec.preparation, spec.release
        if prep is None:
            self.line()
            self.line("The job has no job preparation task (and so no job release task).")
            return
        self._settings(
            f"Job preparation task ({prep.id})",
            [
                ("Command line", prep.command_line),
                ("Wait for success", _yes_no(prep.wait_for_success)),
                ("Rerun on node reboot", _yes_no(prep.rerun_on_node_reboot_after_success)),
                ("Max task retry count", str(prep.constraints.max_task_retry_count or 0)),
                ("Max wall clock time", _span(prep.constraints.max_wall_clock_time)),
                ("Retention time", _span(prep.constraints.retention_time or DEFAULT_RETENTION)),
                ("User", _identity(prep.user_identity)),
            ],
        )
        if release is not None:
            self._settings(
                f"Job release task ({release.id})",
                [
                    ("Command line", release.command_line),
                    ("Max wall clock time", _span(release.max_wall_clock_time)),
                    ("Retention time", _span(release.retention_time or DEFAULT_RETENTION)),
                    ("User", _identity(release.user_identity)),
                ],
            )
        self.line()
        self.line("Preparation and release tasks by node")
        if not statuses:
            self.line("  (none has run yet: no task of the job has been scheduled)")
            return
        width = max(len(status.node_id) for status in statuses)
        self.line(f"  {'Node':<{width}}  {'Preparation':<28}  Release")
        for status in statuses:
            self.line(
                f"  {status.node_id:<{width}}  {_run(status.preparation):<28}  "
                f"{_run(status.release)}"
            )

    def _settings(self, title: str, rows: list[tuple[str, str]]) -> None:
        self.line()
        self.line(title)
        for name, value in rows:
            self.line(f"  {name:<22}{value}")

    def leftovers(
        self,
        pools: list[str],
        containers: list[str],
        volumes: list[str],
        pool_id: str | None,
        *,
        others: bool = False,
    ) -> None:
        """What `cleanup` found; `pool_id` is the pool it was limited to (None: every pool);
        `others`: objects of other state directories carry the label too (not in scope)."""
        if not containers and not volumes:
            label = "jobprep_release.pool" + (f"={pool_id}" if pool_id else "")
            made = " made with this state directory" if others else ""
            self.line(f"Nothing to remove: no container or volume{made} carries {label}.")
            return
        self.line(f"Pools: {', '.join(pools)}")
        self.line(f"Containers ({len(containers)}): {', '.join(containers) or '-'}")
        self.line(f"Volumes ({len(volumes)}): {', '.join(volumes) or '-'}")

    def elsewhere(self, pools: list[str], containers: int, volumes: int) -> None:
        """What `cleanup` leaves as another state directory's (or made before the state
        label): how many containers and volumes, of which pools."""
        if containers or volumes:
            self.line(
                f"Not touched, of another state directory: {_objects(containers, volumes)} "
                f"(pools: {', '.join(pools)}); cleanup --all removes them too."
            )

    def removed(self, containers: int, volumes: int) -> None:
        """What `cleanup` removed."""
        self.line(f"Removed {_objects(containers, volumes)}.")


def _objects(containers: int, volumes: int) -> str:
    """``1 container and 2 volumes``."""
    return (
        f"{containers} container{'s' * (containers != 1)} and "
        f"{volumes} volume{'s' * (volumes != 1)}"
    )


def _code(code: int | None) -> str:
    return "(none)" if code is None else str(code)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _span(value: timedelta | None) -> str:
    if value is None:
        return "unlimited"
    seconds = int(value.total_seconds())
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _identity(identity: UserIdentity) -> str:
    return f"{identity.scope.value} auto-user, {identity.elevation_level.value}"


def _run(execution: PrepReleaseExecution | None) -> str:
    if execution is None:
        return "-"
    info = execution.execution_info
    text = execution.state.value
    if info.exit_code is not None:
        text += f", exit {info.exit_code}"
    elif info.failure_info is not None:
        text += f", {info.failure_info.code}"
    if info.retry_count:
        text += f", {info.retry_count} retries"
    return text
