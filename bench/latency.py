"""Benchmark 1: the whole sample's latency on the docker backend, against its floor.

These are timed, interleaved round by round so that drift in the machine's load hits
them alike:

- `cli`: ``python -m jobprep_release --yes --pool-id X --job-id Y`` in a subprocess (stdin
  closed), node image present: interpreter start-up, imports, the flow, deleting job and pool.
- `in-process`: `run_sample` with a `DockerBackend` in this process (entering the backend,
  which connects to the engine, included; imports excluded).
- `floor`: the same work done with raw docker-py calls and nothing else, both nodes at once as
  the product does it: two containers created and started in parallel, each waited for until
  its boot has made the shared directory (a line on its attached stdout, as the product waits
  for its agent's ``hello``), then on each node, in a
  thread per node, the preparation command and that node's tasks (one ``docker exec`` each),
  the two file reads (``get_archive``), the two release commands (``docker exec``, a thread per
  node), and the containers removed in parallel. The file reads come before the release
  commands because the release command deletes the file.
- `serial floor` (context): the same with the nodes' commands one node after the other.
- `floor as a process` (context): the parallel floor run as a process of its own
  (`bench.floor`), so it pays what the CLI pays besides the work: an interpreter's start-up,
  docker-py's import, its client's connection. The target compares the CLI with the floor
  timed inside this process, which pays none of them.

The CLI's CPU time (user + system of the child, `os.wait4`) is reported beside its wall time:
it is what the machine's load does not inflate.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import time

import anyio

from bench.common import (
    PYTHON,
    REPO,
    Result,
    app_env,
    docker_client,
    median,
    scratch,
    spread,
    unique_id,
    verdict,
)
from bench.floor import FloorTimes, do_floor

TARGET_RATIO = 1.0


def run_cli(pool_id: str, job_id: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child)."""
    with scratch(pool_id) as state, tempfile.TemporaryFile() as out:
        command = [PYTHON, "-m", "jobprep_release", "--yes", "--pool-id", pool_id]
        command += ["--job-id", job_id]
        start = time.perf_counter()
        child = subprocess.Popen(
            command,
            cwd=REPO,
            env=app_env(state),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            out.seek(0)
            tail = out.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"the sample failed ({child.returncode}): {tail}")
    return elapsed, usage.ru_utime + usage.ru_stime


def run_in_process(pool_id: str, job_id: str) -> float:
    from jobprep_release.backends.docker import DockerBackend, DockerSettings
    from jobprep_release.console import Console
    from jobprep_release.flow import run_sample
    from jobprep_release.options import Answer, SampleOptions

    with scratch(pool_id) as state:
        options = SampleOptions(pool_id=pool_id, job_id=job_id)

        async def main() -> bool:
            async with DockerBackend(DockerSettings(state_dir=state)) as backend:
                out = io.StringIO()
                outcome = await run_sample(backend, Console(Answer.YES, out=out), options)
            return outcome.succeeded

        start = time.perf_counter()
        succeeded = anyio.run(main)
        elapsed = time.perf_counter() - start
    if not succeeded:
        raise RuntimeError("the in-process sample reported failed tasks")
    return elapsed


def run_floor(pool_id: str, *, parallel_nodes: bool = False) -> FloorTimes:
    """The floor: with `parallel_nodes`, each node's sequence runs in its own thread (as the
    product runs nodes); without, one node after the other (the serial floor, for context)."""
    from jobprep_release.flow import PREP_COMMAND, RELEASE_COMMAND, TASK_COMMAND

    with scratch(pool_id):
        client = docker_client()
        try:
            return do_floor(
                client, pool_id, (PREP_COMMAND, TASK_COMMAND, RELEASE_COMMAND), parallel_nodes
            )
        finally:
            client.close()


def run_floor_process(pool_id: str) -> float:
    """The parallel floor as a process of its own (`bench.floor`): wall seconds, its
    interpreter's start-up, docker-py's import and client included, as a CLI run pays them."""
    from jobprep_release.flow import PREP_COMMAND, RELEASE_COMMAND, TASK_COMMAND

    with scratch(pool_id):
        command = [PYTHON, "-m", "bench.floor", pool_id, PREP_COMMAND, TASK_COMMAND]
        start = time.perf_counter()
        subprocess.run([*command, RELEASE_COMMAND], cwd=REPO, check=True)
        return time.perf_counter() - start


def bench(rounds: int) -> Result:
    cli: list[float] = []
    cli_cpu: list[float] = []
    inproc: list[float] = []
    floors: list[FloorTimes] = []
    serial: list[float] = []
    process: list[float] = []
    ratios_cli: list[float] = []
    ratios_inproc: list[float] = []
    for number in range(rounds):
        # Rotate the order each round so no kind always runs first (a warmer cache).
        order = ["floor", "cli", "inproc", "serial", "process"]
        order = order[number % 5 :] + order[: number % 5]
        this: dict[str, float] = {}
        for kind in order:
            pool_id, job_id = unique_id("lat"), unique_id("latjob")
            if kind == "floor":
                floor = run_floor(pool_id, parallel_nodes=True)
                floors.append(floor)
                this[kind] = floor.total
            elif kind == "serial":
                this[kind] = run_floor(pool_id).total
                serial.append(this[kind])
            elif kind == "process":
                this[kind] = run_floor_process(pool_id)
                process.append(this[kind])
            elif kind == "cli":
                this[kind], cpu = run_cli(pool_id, job_id)
                cli.append(this[kind])
                cli_cpu.append(cpu)
            else:
                this[kind] = run_in_process(pool_id, job_id)
                inproc.append(this[kind])
        ratios_cli.append(this["cli"] / this["floor"])
        ratios_inproc.append(this["inproc"] / this["floor"])
        print(
            f"  latency round {number + 1}: parallel floor {this['floor']:.3f}s "
            f"cli {this['cli']:.3f}s (CPU {cli_cpu[-1]:.3f}s) in-process {this['inproc']:.3f}s; "
            f"serial floor {this['serial']:.3f}s; floor as a process {this['process']:.3f}s",
            flush=True,
        )
    floor_totals = [f.total for f in floors]
    ratio_cli = median(ratios_cli)
    ratio_inproc = median(ratios_inproc)
    body = "\n".join(
        [
            "| what | wall time, median (min, max) |",
            "| --- | --- |",
            f"| parallel raw-docker floor: docker-py, both nodes at once | "
            f"{spread(floor_totals)} |",
            "| ... containers created and started (parallel) | "
            f"{spread([f.start for f in floors])} |",
            "| ... 12 `docker exec` (2 prep, 8 tasks, 2 release; a thread per node) | "
            f"{spread([f.execs for f in floors])} |",
            f"| ... 2 file reads | {spread([f.reads for f in floors])} |",
            f"| ... containers removed (parallel) | {spread([f.remove for f in floors])} |",
            f"| serial raw-docker floor (context): one node's execs after the other's | "
            f"{spread(serial)} |",
            "| parallel floor as a process of its own (context: `python -m bench.floor`, its "
            f"interpreter, docker-py's import and client included) | {spread(process)} |",
            f"| app, CLI (`python -m jobprep_release --yes`) | {spread(cli)} |",
            f"| ... its CPU time (user + system) | {spread(cli_cpu)} |",
            f"| app, in process (`run_sample` + `DockerBackend`) | {spread(inproc)} |",
            "",
            f"- CLI / parallel raw-docker floor: **{ratio_cli:.2f}x** (median of per-round "
            f"ratios; ratio of medians {median(cli) / median(floor_totals):.2f}x); "
            f"target at most {TARGET_RATIO}x: {verdict(ratio_cli <= TARGET_RATIO)}",
            f"- in-process / parallel raw-docker floor: **{ratio_inproc:.2f}x** (ratio of "
            f"medians {median(inproc) / median(floor_totals):.2f}x)",
            f"- against the serial raw-docker floor (context): CLI "
            f"{median(cli) / median(serial):.2f}x, in-process "
            f"{median(inproc) / median(serial):.2f}x (ratios of medians)",
            f"- against the parallel floor run as a process of its own (context; each pays an "
            f"interpreter's start-up and its imports): CLI {median(cli) / median(process):.2f}x "
            "(ratio of medians)",
            f"- interpreter start-up and imports (CLI minus in-process, medians): "
            f"{median(cli) - median(inproc):.3f} s",
        ]
    )
    name = (
        "the sample with `--yes` (2 nodes, 8 tasks): CLI wall time / the parallel raw-docker "
        f"floor (docker-py doing the sample's work, both nodes at once), at most {TARGET_RATIO}x"
    )
    return Result(
        "1. Sample latency (docker backend, 2 nodes, 8 tasks)",
        body,
        {name: ratio_cli <= TARGET_RATIO},
        {
            name: f"{ratio_cli:.2f}x ({median(cli):.2f} s vs {median(floor_totals):.2f} s; "
            f"in process {ratio_inproc:.2f}x; the serial floor {median(serial):.2f} s)"
        },
    )
