"""The live progress display: on a terminal, during the sample's waits, what is happening.

Shown with rich's `Live` (transient, so when a wait ends it disappears and only the sample's
plain lines remain); off a terminal, and with `--json`, nothing is drawn and no control
character is written. rich is imported only when a display is actually shown.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, TextIO

from jobprep_release.backends.base import ComputeNode, JobState, TaskCounts


class ProgressView(Protocol):
    """What a wait reports; each call replaces what the display shows."""

    def update(
        self,
        *,
        counts: TaskCounts | None = None,
        nodes: Sequence[ComputeNode] | None = None,
        job_state: JobState | None = None,
    ) -> None: ...

    def __enter__(self) -> ProgressView: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class NoProgress:
    """Off a terminal: nothing is shown."""

    def update(
        self,
        *,
        counts: TaskCounts | None = None,
        nodes: Sequence[ComputeNode] | None = None,
        job_state: JobState | None = None,
    ) -> None:
        return

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return


class LiveProgress:
    """A transient live panel: the wait's title, elapsed time, tasks by state, nodes."""

    def __init__(self, title: str, stream: TextIO) -> None:
        from rich.console import Console as RichConsole
        from rich.live import Live

        self._title = title
        self._started = time.monotonic()
        self._counts: TaskCounts | None = None
        self._nodes: Sequence[ComputeNode] = ()
        self._job_state: JobState | None = None
        self._live = Live(
            console=RichConsole(file=stream),
            transient=True,
            refresh_per_second=4,
            get_renderable=self._render,
        )

    def update(
        self,
        *,
        counts: TaskCounts | None = None,
        nodes: Sequence[ComputeNode] | None = None,
        job_state: JobState | None = None,
    ) -> None:
        self._counts = counts or self._counts
        self._nodes = nodes if nodes is not None else self._nodes
        self._job_state = job_state or self._job_state

    def _render(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self._started
        table = Table.grid(padding=(0, 2))
        table.add_row(f"[bold]{self._title}[/bold]", f"[dim]{elapsed:5.1f} s[/dim]")
        if self._counts is not None:
            c = self._counts
            table.add_row(
                "tasks",
                f"{c.active} active  {c.running} running  {c.completed} completed "
                f"({c.succeeded} succeeded, {c.failed} failed)",
            )
        if self._job_state is not None:
            table.add_row("job", self._job_state.value)
        for node in self._nodes:
            table.add_row(f"  {node.id}", f"{node.state.value}, {node.running_tasks_count} running")
        return table

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.stop()
