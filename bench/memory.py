"""Benchmark 3: peak RSS of the app process as the task count grows.

On the real engine, the CLI runs in a subprocess, ``python -m jobprep_release --tasks N --nodes 4
--slots 4 --yes`` (the sample's own task command lines), and its peak RSS is the high-water mark
of its own memory (``VmHWM`` in ``/proc/self/status``, read by an exit handler `PEAK` installs
before it runs the module). Not the child's rusage (``ru_maxrss``): Linux counts there the
memory a child shares with its parent between fork and exec, so every child of this process,
which grows to ~75 MiB running the benchmarks in process, would weigh at least that. The 8-task
default sample is measured too, as the baseline the task-proportional part grows from.

At 10,000 to 100,000 tasks the same flow runs over the **fake executor** (`bench.fakerun`: the
CLI's `run_sample` over the Batch core with a real state file and journal, the node executor
replaced by `FakeExecutor`, whose processes end at once), in a subprocess measured the same way:
the app's own data grows with the tasks there as it does on the engine, while the fake's nodes'
files (each task's directory, stdout and stderr, in memory) add to it (so these figures are an
upper bound).
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench.common import PYTHON, REPO, Result, app_env, scratch, unique_id, verdict

TARGET_MIB = 150.0
TARGET_LARGE_MIB = 400.0
SIZES = (8, 5000, 10000)
LARGE = 100_000
FAKE_SIZES = (10_000, 40_000, LARGE)
"""The sizes a default run reaches, the target's included (100,000 tasks: about a minute)."""


@dataclass(slots=True)
class MemoryRun:
    tasks: int
    peak_mib: float
    wall: float


PEAK = """
import atexit, runpy, sys
def _peak(path=sys.argv[1]):
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")))
atexit.register(_peak)
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
"""Runs a module (``python -c PEAK <peak file> <module> <args>``) and, at exit, writes the
process's ``VmHWM`` line to the peak file."""


def run_cli(tasks: int, *, fake: bool = False) -> MemoryRun:
    pool_id, job_id = unique_id("mem"), unique_id("memjob")
    arguments = ["jobprep_release", "--yes", "--pool-id", pool_id, "--job-id", job_id]
    arguments += ["--tasks", str(tasks), "--nodes", "4", "--slots", "4"]
    if fake:
        arguments = ["bench.fakerun", str(tasks), "--nodes", "4", "--slots", "4"]
    with (
        scratch(pool_id) as state,
        tempfile.TemporaryFile() as out,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        command = [PYTHON, "-c", PEAK, peak.name, *arguments]
        start = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=REPO, env=app_env(state), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            returncode = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        wall = time.perf_counter() - start
        if returncode != 0:
            out.seek(0)
            tail = out.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"--tasks {tasks} exited {returncode}: {tail}")
        kib = int(peak.read().split()[1])  # "VmHWM:   59608 kB"
    return MemoryRun(tasks=tasks, peak_mib=kib / 1024, wall=wall)


def _linear(runs: list[MemoryRun]) -> tuple[bool, str]:
    """Whether the marginal cost per task of each step stays within 1.5x of the step before
    (a quadratic term would double it; dict and list growth by powers of two move it some),
    and those costs in KiB."""
    increments = [
        (b.peak_mib - a.peak_mib) / (b.tasks - a.tasks) for a, b in itertools.pairwise(runs)
    ]
    linear = all(later <= earlier * 1.5 for earlier, later in itertools.pairwise(increments))
    return linear, ", ".join(f"{i * 1024:.1f}" for i in increments)


def _rows(runs: list[MemoryRun], where: str) -> list[str]:
    base = runs[0]
    rows = []
    for run in runs:
        per_task = (
            f"{(run.peak_mib - base.peak_mib) * 1024 / (run.tasks - base.tasks):.1f}"
            if run.tasks > base.tasks
            else "-"
        )
        rows.append(
            f"| {where} | {run.tasks:,} | {run.peak_mib:.1f} MiB | {per_task} | "
            f"{run.wall:.1f} s ({run.tasks / run.wall:.0f}/s) |"
        )
    return rows


def bench(sizes: tuple[int, ...] = SIZES, fake_sizes: tuple[int, ...] = FAKE_SIZES) -> Result:
    runs: list[MemoryRun] = []
    for tasks in sizes:
        run = run_cli(tasks)
        runs.append(run)
        print(f"  memory: {tasks} tasks peak {run.peak_mib:.1f} MiB in {run.wall:.1f}s", flush=True)
    fakes: list[MemoryRun] = []
    for tasks in fake_sizes:
        run = run_cli(tasks, fake=True)
        fakes.append(run)
        print(
            f"  memory (fake executor): {tasks} tasks peak {run.peak_mib:.1f} MiB "
            f"in {run.wall:.1f}s",
            flush=True,
        )
    largest = runs[-1]
    met_size = largest.peak_mib < TARGET_MIB
    linear, slope = _linear(runs[1:])
    biggest = fakes[-1]
    met_large = biggest.tasks >= LARGE and biggest.peak_mib < TARGET_LARGE_MIB
    linear_large, slope_large = _linear(fakes)
    body = "\n".join(
        [
            "| executor | tasks | peak RSS | KiB per task above the smallest run | "
            "wall time (tasks/s) |",
            "| --- | --- | --- | --- | --- |",
            *_rows(runs, "real engine (CLI)"),
            *_rows(fakes, "fake executor (`bench.fakerun`)"),
            "",
            f"- peak at {largest.tasks:,} tasks (real engine): **{largest.peak_mib:.1f} MiB**; "
            f"target under {TARGET_MIB:g} MiB: {verdict(met_size)}",
            f"- marginal cost per task between successive sizes (real engine): {slope} KiB; "
            f"growth at most linear (next step within 1.5x): {verdict(linear)}",
            f"- peak at {biggest.tasks:,} tasks (fake executor): **{biggest.peak_mib:.1f} MiB**; "
            f"target under {TARGET_LARGE_MIB:g} MiB at {LARGE:,} tasks: {verdict(met_large)}"
            + ("" if biggest.tasks >= LARGE else f" (not measured at {LARGE:,} in this run)"),
            f"- marginal cost per task between successive sizes (fake executor): {slope_large} "
            f"KiB; growth at most linear: {verdict(linear_large)}",
        ]
    )
    small = f"peak RSS of the CLI at {largest.tasks:,} tasks (real engine), under 150 MiB"
    small_linear = "RSS growth with the task count at most linear (real engine)"
    large = f"peak RSS of the sample's flow at {LARGE:,} tasks (fake executor), under 400 MiB"
    large_linear = (
        f"RSS growth at most linear from {fakes[0].tasks:,} to {biggest.tasks:,} tasks "
        "(fake executor)"
    )
    return Result(
        "3. Memory (peak RSS, 4 nodes x 4 slots)",
        body,
        {small: met_size, small_linear: linear, large: met_large, large_linear: linear_large},
        {
            small: f"{largest.peak_mib:.1f} MiB",
            small_linear: f"{slope} KiB a task, step by step",
            large: f"{biggest.peak_mib:.1f} MiB"
            + ("" if biggest.tasks >= LARGE else f" at {biggest.tasks:,} (the largest run)"),
            large_linear: f"{slope_large} KiB a task, step by step",
        },
    )
