"""Is anything blocking the event loop? asyncio's debug mode over runs of the docker backend.

The loop runs with ``debug=True`` (what ``PYTHONASYNCIODEBUG=1`` sets) and a
``slow_callback_duration`` of 20 ms; asyncio then logs every callback or task step that took
longer by the wall clock (a stall), and this module collects those records. Two runs of the
CLI's flow (`run_sample` with ``--yes``, on the real engine), each in a new interpreter as a CLI
run is (``python -m bench.loopcheck``: a process that ran something before has its heap frozen
already, which hides the start-up's costs): the default sample (2 nodes, 8 tasks) and 10,000
tasks on 4 nodes x 4 slots, where per-step costs that grow with the task count show. (The
endpoint's stalls are measured by `bench.endpoint`.)

A step's wall-clock time is not all the loop's own doing: on a machine with more runnable
threads than cores (2 cores here, the run's own 10,000 task processes among them) the kernel
leaves the loop's thread waiting for a core, mid-step, for tens of milliseconds at a time. So
`StepClock` reads the loop thread's scheduler statistics (``/proc/thread-self/schedstat``: its
time on a CPU and its time waiting on a run queue, in nanoseconds) around every step, and each
stall asyncio logs is shown with both; the target is judged on the time the process held its
loop (the wall-clock time less the wait for a core: its CPU time, waits for the GIL, blocking
calls). Where the statistics cannot be read the wall-clock time is used.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from asyncio import base_events, events
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from bench.common import PYTHON, REPO, Result, clean_up, scratch, unique_id, verdict
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions

SLOW = 0.020
"""Seconds: a callback holding the loop longer than this is reported."""


SCHEDSTAT = "/proc/thread-self/schedstat"


@dataclass(slots=True, frozen=True)
class Stall:
    """A step asyncio logged as slow: where, its wall-clock seconds and, when known, the loop
    thread's seconds on a CPU and waiting for one (run queue) during it."""

    where: str
    wall: float
    cpu: float | None = None
    wait: float | None = None

    @property
    def held(self) -> float:
        """Seconds the process held its loop: the wall-clock time less the wait for a core."""
        return self.wall - (self.wait or 0.0)


class StepClock:
    """The loop thread's CPU time and run-queue wait over the step asyncio timed last. asyncio
    times a step between two calls of the loop's ``time()``, right before and after it; every
    such call on the installing thread also reads the thread's schedstat (about 4 µs), and each
    `asyncio.Handle` run keeps the reading taken just before it, so `last` covers what asyncio's
    figure covers. The reads hold the GIL (libc's ``pread`` through `ctypes.PyDLL`): `os.pread`
    lets it go, and another thread taking it then would stretch the step by a wait of the
    check's own."""

    def __init__(self) -> None:
        self._fd = -1
        self._thread = 0
        self._latest = (0, 0)
        self._before = (0, 0)
        self._original = (events.Handle._run, base_events.BaseEventLoop.time)
        self._buffer = ctypes.create_string_buffer(64)
        self._pread = ctypes.PyDLL(None, use_errno=True).pread
        self._pread.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
        self._pread.restype = ctypes.c_ssize_t

    @property
    def last(self) -> tuple[float, float] | None:
        """(seconds on a CPU, seconds waiting for one) of the step asyncio timed last."""
        if self._fd < 0:
            return None
        cpu, wait = self._latest[0] - self._before[0], self._latest[1] - self._before[1]
        return cpu / 1e9, wait / 1e9

    def __enter__(self) -> StepClock:
        try:
            self._fd = os.open(SCHEDSTAT, os.O_RDONLY)
            self._latest = self._before = self._read()
        except (OSError, ValueError, IndexError):
            self._fd = -1
            return self
        self._thread = threading.get_ident()
        run, now = self._original
        clock = self

        def timed_run(handle: events.Handle) -> None:
            if threading.get_ident() == clock._thread:
                clock._before = clock._latest
            run(handle)

        def read_time(loop: base_events.BaseEventLoop) -> float:
            if threading.get_ident() == clock._thread:
                clock._latest = clock._read()
            return now(loop)

        events.Handle._run = timed_run  # type: ignore[method-assign]
        base_events.BaseEventLoop.time = read_time  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        events.Handle._run, base_events.BaseEventLoop.time = self._original  # type: ignore[method-assign]
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _read(self) -> tuple[int, int]:
        """(nanoseconds on a CPU, nanoseconds waiting on a run queue) of the loop thread."""
        size = self._pread(self._fd, self._buffer, 64, 0)
        if size <= 0:
            raise OSError(ctypes.get_errno(), "schedstat cannot be read")
        fields = self._buffer.raw[:size].split()
        return int(fields[0]), int(fields[1])


@dataclass(slots=True)
class SlowCallbacks(logging.Handler):
    stalls: list[Stall] = field(default_factory=list)
    """Each step asyncio logged as slow, with the loop thread's CPU time and run-queue wait
    (`clock`) when one is set."""
    clock: StepClock | None = None

    def __post_init__(self) -> None:
        logging.Handler.__init__(self)

    def emit(self, record: logging.LogRecord) -> None:
        # Logged by the loop right after the step, before the next one: `clock.last` is its.
        if record.msg == "Executing %s took %.3f seconds" and isinstance(record.args, tuple):
            handle, seconds = record.args
            if isinstance(seconds, float):
                where = _where(str(handle))
                last = self.clock.last if self.clock is not None else None
                cpu, wait = last if last is not None else (None, None)
                self.stalls.append(Stall(where, seconds, cpu, wait))

    def __hash__(self) -> int:
        return id(self)


def _where(handle: str) -> str:
    """The task (anyio names tasks after their function) or callback a handle ran."""
    if task := re.search(r"name='([^']+)'", handle):
        return f"task {task[1]}"
    if callback := re.search(r"<Handle ([\w.<>]+)", handle):
        return f"callback {callback[1]}"
    return handle[:120]


async def _sample(pool_id: str, job_id: str, state: Path, tasks: int) -> None:
    asyncio.get_running_loop().slow_callback_duration = SLOW
    async with DockerBackend(DockerSettings(state_dir=state)) as backend:
        options = SampleOptions(pool_id=pool_id, job_id=job_id)
        if tasks:
            options = SampleOptions(
                pool_id=pool_id,
                job_id=job_id,
                node_count=4,
                task_count=tasks,
                task_slots_per_node=4,
            )
        await run_sample(backend, Console(Answer.YES, out=io.StringIO()), options)


def stall_table(stalls: list[Stall]) -> list[str]:
    """Each stall asyncio logged, longest first: wall-clock time, the loop thread's CPU time and
    its wait for a core (run queue) during the step, and the time the process held the loop."""
    if not stalls:
        return ["(none)"]
    rows = [
        "| callback | wall clock | CPU | waiting for a core | held by the process |",
        "| --- | --- | --- | --- | --- |",
    ]
    for stall in sorted(stalls, key=lambda item: -item.wall):
        split = "? | ? |"
        if stall.cpu is not None and stall.wait is not None:
            split = f"{stall.cpu * 1000:.1f} ms | {stall.wait * 1000:.1f} ms |"
        rows.append(
            f"| `{stall.where}` | {stall.wall * 1000:.0f} ms | {split} {stall.held * 1000:.0f} ms |"
        )
    return rows


def case(tasks: int, pool_id: str, job_id: str) -> dict[str, object]:
    """One run of the flow in this process (`tasks` 0: the default sample): its wall-clock
    seconds, the load average before and after, and its stalls."""
    logger = logging.getLogger("asyncio")
    handler = SlowCallbacks()
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    load = _load()
    # Set-up and clean-up (blocking docker-py calls of the bench) stay off the loop.
    with scratch(pool_id) as state, StepClock() as clock:
        handler.clock = clock
        started = time.perf_counter()
        anyio.run(_sample, pool_id, job_id, state, tasks, backend_options={"debug": True})
        wall = time.perf_counter() - started
    logger.removeHandler(handler)
    return {
        "wall": wall,
        "load": [load, _load()],
        "stalls": [[s.where, s.wall, s.cpu, s.wait] for s in handler.stalls],
    }


def _in_new_process(tasks: int) -> tuple[float, list[str], list[Stall]]:
    """`case` in a new interpreter; what it left is removed even when it fails."""
    pool_id, job_id = unique_id("dbg"), unique_id("dbgjob")
    with tempfile.NamedTemporaryFile(prefix="jobprep-loopcheck-", suffix=".json") as out:
        try:
            child = subprocess.run(
                [PYTHON, "-m", "bench.loopcheck", str(tasks), pool_id, job_id, out.name],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            clean_up([pool_id])
        if child.returncode != 0:
            raise RuntimeError(
                f"the loop check's run failed ({child.returncode}): {child.stderr[-2000:]}"
            )
        found = json.loads(Path(out.name).read_text())
    stalls = [Stall(where, wall, cpu, wait) for where, wall, cpu, wait in found["stalls"]]
    return float(found["wall"]), list(found["load"]), stalls


def bench(tasks: int) -> Result:
    sections: list[str] = []
    clean: dict[str, bool] = {}
    figures: dict[str, str] = {}
    for label, count in (
        ("default sample (2 nodes, 8 tasks)", 0),
        (f"{tasks:,} tasks on 4 nodes x 4 slots", tasks),
    ):
        wall, (before, after), stalls = _in_new_process(count)
        held = [stall for stall in stalls if stall.held > SLOW]
        clean[label] = not held
        longest = max((stall.held for stall in held), default=0.0)
        figures[label] = f"{len(held)} stall(s)" + (
            f", the longest held {longest * 1000:.0f} ms" if held else ""
        )
        sections += [
            f"{label} ({wall:.1f} s; load average {before} before, {after} after): "
            f"{len(stalls)} step(s) over {SLOW * 1000:g} ms of wall-clock time, "
            f"{len(held)} of them held by the process over {SLOW * 1000:g} ms",
            "",
            *stall_table(stalls),
            "",
        ]
        print(
            f"  loop check, {label} ({wall:.1f} s): {len(stalls)} slow callbacks by the wall "
            f"clock, {len(held)} held over {SLOW * 1000:g} ms",
            flush=True,
        )
    targets = {f"CLI flow: no loop stall over 20 ms, {label}": ok for label, ok in clean.items()}
    method = (
        "the time the process held the loop: each slow step's wall-clock time less the loop "
        "thread's wait for a core (run queue, `/proc/thread-self/schedstat`)"
        if _readable()
        else "wall-clock time (the loop thread's scheduler statistics could not be read)"
    )
    body = "\n".join(
        [
            f"The CLI's flow on the real engine, each run in a new interpreter, asyncio debug "
            f"mode, `slow_callback_duration` = {SLOW * 1000:g} ms. Judged on {method}.",
            "",
            *sections,
            *(f"- {name}: {verdict(met)}" for name, met in targets.items()),
        ]
    )
    return Result(
        "7. Stalls of the event loop in the CLI's flow (asyncio debug mode)",
        body,
        targets,
        {f"CLI flow: no loop stall over 20 ms, {label}": text for label, text in figures.items()},
    )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _readable() -> bool:
    """Whether the loop thread's scheduler statistics can be read here."""
    try:
        return len(Path(SCHEDSTAT).read_bytes().split()) >= 2
    except OSError:
        return False


if __name__ == "__main__":
    # python -m bench.loopcheck TASKS POOL_ID JOB_ID OUT: one `case`, its findings to OUT.
    count, pool, job, out_path = sys.argv[1:5]
    Path(out_path).write_text(json.dumps(case(int(count), pool, job)))
