"""Benchmark 3: peak RSS of the app process as the task count grows.

The CLI runs in a subprocess, ``python -m jobprep_release --tasks N --nodes 4 --slots 4 --yes``
(the sample's own task command lines), and its peak RSS is read from the child's rusage
(`os.wait4`, ``ru_maxrss``), so nothing of this process is counted. The 8-task default sample is
measured too, as the baseline the task-proportional part grows from.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench.common import PYTHON, REPO, Result, app_env, scratch, unique_id, verdict

TARGET_MIB = 150.0
SIZES = (8, 2500, 5000, 10000)


@dataclass(slots=True)
class MemoryRun:
    tasks: int
    peak_mib: float
    wall: float


def run_cli(tasks: int) -> MemoryRun:
    pool_id, job_id = unique_id("mem"), unique_id("memjob")
    command = [PYTHON, "-m", "jobprep_release", "--yes", "--pool-id", pool_id, "--job-id", job_id]
    command += ["--tasks", str(tasks), "--nodes", "4", "--slots", "4"]
    with scratch(pool_id) as state, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=REPO, env=app_env(state), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            child.wait()
            raise
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if child.returncode != 0:
            out.seek(0)
            tail = out.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"--tasks {tasks} exited {child.returncode}: {tail}")
    return MemoryRun(tasks=tasks, peak_mib=usage.ru_maxrss / 1024, wall=wall)


def bench(sizes: tuple[int, ...] = SIZES) -> Result:
    runs: list[MemoryRun] = []
    for tasks in sizes:
        run = run_cli(tasks)
        runs.append(run)
        print(f"  memory: {tasks} tasks peak {run.peak_mib:.1f} MiB in {run.wall:.1f}s", flush=True)
    rows = [
        "| tasks | peak RSS | KiB per task above the 8-task run | wall time (tasks/s) |",
        "| --- | --- | --- | --- |",
    ]
    base = runs[0]
    for run in runs:
        per_task = (
            f"{(run.peak_mib - base.peak_mib) * 1024 / (run.tasks - base.tasks):.1f}"
            if run.tasks > base.tasks
            else "-"
        )
        rows.append(
            f"| {run.tasks} | {run.peak_mib:.1f} MiB | {per_task} | "
            f"{run.wall:.1f} s ({run.tasks / run.wall:.0f}/s) |"
        )
    largest = runs[-1]
    met_size = largest.peak_mib < TARGET_MIB
    # Linear: the marginal cost per task of the last step (centred at 7,500 tasks) stays within
    # 1.5x of the step before (centred at 3,750). A quadratic term would double it; dict and
    # list growth by powers of two, and a start-up peak hiding the smallest size, move it some.
    increments = [
        (b.peak_mib - a.peak_mib) / (b.tasks - a.tasks) for a, b in itertools.pairwise(runs[1:])
    ]
    linear = all(later <= earlier * 1.5 for earlier, later in itertools.pairwise(increments))
    slope = ", ".join(f"{i * 1024:.1f}" for i in increments)
    body = "\n".join(
        [
            *rows,
            "",
            f"- peak at {largest.tasks} tasks: **{largest.peak_mib:.1f} MiB**; target under "
            f"{TARGET_MIB:g} MiB: {verdict(met_size)}",
            f"- marginal cost per task between successive sizes: {slope} KiB (a quadratic term "
            f"would double it from one step to the next); growth at most linear (next step "
            f"within 1.5x): {verdict(linear)}",
        ]
    )
    return Result(
        "3. Memory (peak RSS of the CLI, 4 nodes x 4 slots)",
        body,
        {"peak RSS < 150 MiB at 10,000 tasks": met_size, "RSS growth at most linear": linear},
    )
