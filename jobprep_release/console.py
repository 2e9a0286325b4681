"""Every line the user sees on stdout, and the prompts: the sample's transcript, kept exact.

Logs go to stderr through structlog (see `jobprep_release.logs`); only this module writes the
sample's own lines, so the transcript stays byte-for-byte what the original sample prints
(with Linux paths).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from enum import Enum
from typing import TextIO

import anyio

from jobprep_release.progress import LiveProgress, NoProgress, ProgressView

SHARED_FILE = "shared/job_prep_and_release.txt"
RULE = "-" * 43
INPUT_POLL = 0.05


class Answer(Enum):
    """How the delete prompts are answered: asked, or fixed by `--yes` / `--keep`."""

    ASK = "ask"
    YES = "yes"
    NO = "no"


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

    async def confirm(self, question: str) -> bool:
        """Ask `question` as the sample does (`... [yes] no`); fixed answers are echoed."""
        self.line(f"{question} [yes] no")
        if self._answer is not Answer.ASK:
            self.line(self._answer.value)
            return self._answer is Answer.YES
        return means_yes(await self._read())

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


def _code(code: int | None) -> str:
    return "(none)" if code is None else str(code)
