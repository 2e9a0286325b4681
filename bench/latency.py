"""Benchmark 1: the whole sample's latency on the docker backend, against its floor.

Three things are timed, interleaved round by round so that drift in the machine's load hits
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

The CLI's CPU time (user + system of the child, `os.wait4`) is reported beside its wall time:
it is what the machine's load does not inflate.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anyio

from bench.common import (
    NODE_IMAGE,
    POOL_LABEL,
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

TARGET_RATIO = 1.0
SHARED_DIR = "/mnt/batch/tasks/shared"
SHARED_FILE = f"{SHARED_DIR}/job_prep_and_release.txt"
TASKS = 8
NODES = 2
BOOT_MARKER = b"booted"
BOOT = f"mkdir -p {SHARED_DIR} && echo {BOOT_MARKER.decode()} && exec sleep infinity"
"""A node's boot in the floor: the shared directory made, then a marker line on stdout (the
product's agent makes its directories, then says ``hello``)."""


@dataclass(slots=True)
class FloorTimes:
    total: float
    start: float
    execs: float
    reads: float
    remove: float


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


def _start_and_wait_for_boot(client: Any, container: Any) -> None:
    """Attach to the container's stdout, start it and wait for `BOOT`'s marker line: what the
    product's node keeper does (attach, start, wait for the agent's ``hello``, printed once the
    node's directories exist), so no command runs before the boot made the shared directory."""
    sock = client.api.attach_socket(container.id, params={"stdout": 1, "stream": 1})
    raw = getattr(sock, "_sock", sock)
    try:
        container.start()
        seen = b""
        while BOOT_MARKER not in seen:
            chunk = raw.recv(4096)
            if not chunk:
                raise RuntimeError(f"floor: the node's boot ended before its marker: {seen!r}")
            seen += chunk
    finally:
        raw.close()
        close = getattr(sock, "close", None)
        if close is not None:
            close()


def _exec(container: Any, command_line: str, env: dict[str, str]) -> None:
    code, output = container.exec_run(shlex.split(command_line), environment=env)
    if code != 0:
        raise RuntimeError(f"floor: {command_line!r} exited {code}: {output!r}")


def _read(client: Any, container: Any, path: str) -> bytes:
    stream, _ = client.api.get_archive(container.id, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        assert member is not None
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


def run_floor(pool_id: str, *, parallel_nodes: bool = False) -> FloorTimes:
    """The floor: with `parallel_nodes`, each node's sequence runs in its own thread (as the
    product runs nodes); without, one node after the other (the serial floor, for context)."""
    from jobprep_release.flow import PREP_COMMAND, RELEASE_COMMAND, TASK_COMMAND

    with scratch(pool_id):
        client = docker_client()
        try:
            return _floor(
                client, pool_id, (PREP_COMMAND, TASK_COMMAND, RELEASE_COMMAND), parallel_nodes
            )
        finally:
            client.close()


def _floor(
    client: Any, pool_id: str, commands: tuple[str, str, str], parallel_nodes: bool
) -> FloorTimes:
    prep, task, release = commands
    workers = NODES if parallel_nodes else 1

    def start(index: int) -> Any:
        container = client.containers.create(
            NODE_IMAGE,
            ["/bin/bash", "-c", BOOT],
            name=f"{pool_id}-{index}",
            labels={POOL_LABEL: pool_id},
        )
        _start_and_wait_for_boot(client, container)
        return container

    t0 = time.perf_counter()
    with ThreadPoolExecutor(NODES) as pool:
        containers = list(pool.map(start, range(1, NODES + 1)))

    def run_node(index: int) -> None:
        container = containers[index]
        env = {"AZ_BATCH_NODE_ID": f"node{index}", "AZ_BATCH_NODE_SHARED_DIR": SHARED_DIR}
        _exec(container, prep, env)
        for number in range(index + 1, TASKS + 1, NODES):
            _exec(container, task, {**env, "AZ_BATCH_TASK_ID": f"task{number:03d}"})

    def read(container: Any) -> None:
        if not _read(client, container, SHARED_FILE):
            raise RuntimeError("floor: empty shared file")

    def release_node(container: Any) -> None:
        _exec(container, release, {"AZ_BATCH_NODE_SHARED_DIR": SHARED_DIR})

    t1 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run_node, range(NODES)))
    t2 = time.perf_counter()
    for container in containers:
        read(container)
    t3 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(release_node, containers))
    t4 = time.perf_counter()
    with ThreadPoolExecutor(NODES) as pool:
        list(pool.map(lambda c: c.remove(force=True), containers))
    t5 = time.perf_counter()
    return FloorTimes(
        total=t5 - t0, start=t1 - t0, execs=(t2 - t1) + (t4 - t3), reads=t3 - t2, remove=t5 - t4
    )


def bench(rounds: int) -> Result:
    cli: list[float] = []
    cli_cpu: list[float] = []
    inproc: list[float] = []
    floors: list[FloorTimes] = []
    serial: list[float] = []
    ratios_cli: list[float] = []
    ratios_inproc: list[float] = []
    for number in range(rounds):
        # Rotate the order each round so no kind always runs first (a warmer cache).
        order = ["floor", "cli", "inproc", "serial"]
        order = order[number % 4 :] + order[: number % 4]
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
            f"serial floor {this['serial']:.3f}s",
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
