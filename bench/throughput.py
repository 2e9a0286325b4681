"""Benchmark 2: throughput of many short tasks, against `docker exec` with the same parallelism.

- `backend`: `DockerBackend` in process: a pool of 4 nodes with 4 slots each, a job with a
  preparation task, every task added in one `add_tasks` call, `get_task_counts` polled until all
  are completed. The clock starts once every node is idle (node start-up is not throughput) and
  stops when the counts say all completed; the preparation tasks fall inside it.
- `docker exec` via `xargs -P 16`: one ``docker exec <node> /bin/true`` per task, round-robin
  over 4 plain running containers.
- docker-py: ``exec_run("/bin/true")`` per task from 16 threads over the same 4 containers.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bench.common import (
    NODE_IMAGE,
    POOL_LABEL,
    Result,
    docker_client,
    median,
    scratch,
    spread,
    unique_id,
    verdict,
)

TARGET_RATIO = 5.0
NODES = 4
SLOTS = 4
PARALLELISM = NODES * SLOTS
COMMAND = "/bin/true"


@dataclass(slots=True)
class BackendRun:
    elapsed: float
    """From add_tasks to all completed."""
    add_tasks: float
    polls: int
    node_startup: float


async def backend_tasks(
    pool_id: str,
    job_id: str,
    state_dir: Path,
    *,
    tasks: int,
    nodes: int = NODES,
    slots: int = SLOTS,
    command: str = COMMAND,
) -> BackendRun:
    """The scenario through the backend interface; deletes its job and pool at the end."""
    from jobprep_release.backends.base import (
        JobPreparationTaskSpec,
        JobSpec,
        NodeState,
        PoolSpec,
        TaskSpec,
    )
    from jobprep_release.backends.docker import DockerBackend, DockerSettings

    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        started = time.perf_counter()
        await backend.create_pool(
            PoolSpec(id=pool_id, target_dedicated_nodes=nodes, task_slots_per_node=slots)
        )
        await backend.create_job(
            JobSpec(
                id=job_id,
                pool_id=pool_id,
                preparation=JobPreparationTaskSpec(command_line=COMMAND),
            )
        )
        while True:
            listed = await backend.list_nodes(pool_id)
            if len(listed) == nodes and all(n.state is NodeState.IDLE for n in listed):
                break
            await anyio.sleep(0.01)
        specs = [TaskSpec(id=f"t{n:05d}", command_line=command) for n in range(tasks)]
        t0 = time.perf_counter()
        await backend.add_tasks(job_id, specs)
        t1 = time.perf_counter()
        polls = 0
        while True:
            counts = await backend.get_task_counts(job_id)
            polls += 1
            if counts.completed == tasks:
                break
            await anyio.sleep(backend.poll_interval)
        t2 = time.perf_counter()
        if counts.failed:
            raise RuntimeError(f"{counts.failed} of {tasks} tasks failed")
        await backend.delete_job(job_id)
        await backend.delete_pool(pool_id)
    return BackendRun(elapsed=t2 - t0, add_tasks=t1 - t0, polls=polls, node_startup=t0 - started)


def run_backend(tasks: int) -> BackendRun:
    pool_id, job_id = unique_id("tput"), unique_id("tputjob")
    with scratch(pool_id) as state:
        return anyio.run(lambda: backend_tasks(pool_id, job_id, state, tasks=tasks))


def _plain_nodes(client: Any, pool_id: str) -> list[Any]:
    def start(index: int) -> Any:
        return client.containers.run(
            NODE_IMAGE,
            ["sleep", "infinity"],
            name=f"{pool_id}-{index}",
            labels={POOL_LABEL: pool_id},
            detach=True,
        )

    with ThreadPoolExecutor(NODES) as pool:
        return list(pool.map(start, range(NODES)))


def run_xargs(tasks: int) -> float:
    pool_id = unique_id("xargs")
    with scratch(pool_id):
        client = docker_client()
        try:
            names = [c.name for c in _plain_nodes(client, pool_id)]
        finally:
            client.close()
        feed = "".join(names[n % NODES] + "\n" for n in range(tasks))
        start = time.perf_counter()
        subprocess.run(
            ["xargs", "-P", str(PARALLELISM), "-I{}", "docker", "exec", "{}", COMMAND],
            input=feed.encode(),
            check=True,
        )
        return time.perf_counter() - start


def run_docker_py(tasks: int) -> float:
    pool_id = unique_id("dockerpy")
    with scratch(pool_id):
        client = docker_client(pool_size=PARALLELISM)
        try:
            containers = _plain_nodes(client, pool_id)

            def one(number: int) -> int:
                code, _ = containers[number % NODES].exec_run(COMMAND)
                return int(code)

            start = time.perf_counter()
            with ThreadPoolExecutor(PARALLELISM) as pool:
                codes = list(pool.map(one, range(tasks)))
            elapsed = time.perf_counter() - start
        finally:
            client.close()
    if any(codes):
        raise RuntimeError("docker-py baseline: a task failed")
    return elapsed


def bench(rounds: int, tasks: int) -> Result:
    backend: list[BackendRun] = []
    xargs: list[float] = []
    dockerpy: list[float] = []
    ratio_xargs: list[float] = []
    ratio_py: list[float] = []
    for number in range(rounds):
        run = run_backend(tasks)
        backend.append(run)
        xargs.append(run_xargs(tasks))
        dockerpy.append(run_docker_py(tasks))
        ratio_xargs.append(xargs[-1] / run.elapsed)
        ratio_py.append(dockerpy[-1] / run.elapsed)
        print(
            f"  throughput round {number + 1}: backend {tasks / run.elapsed:.0f}/s "
            f"(add_tasks {run.add_tasks:.3f}s), xargs docker exec {tasks / xargs[-1]:.0f}/s, "
            f"docker-py {tasks / dockerpy[-1]:.0f}/s",
            flush=True,
        )

    def rate(seconds: list[float]) -> str:
        return spread([tasks / s for s in seconds], "tasks/s", 1)

    elapsed = [r.elapsed for r in backend]
    met = median(ratio_xargs) >= TARGET_RATIO
    body = "\n".join(
        [
            f"{tasks} tasks `{COMMAND}`, {NODES} nodes x {SLOTS} slots "
            f"(parallelism {PARALLELISM}).",
            "",
            "| what | throughput, median (min, max) | wall time |",
            "| --- | --- | --- |",
            f"| backend (`DockerBackend`, add_tasks -> all completed) | {rate(elapsed)} | "
            f"{spread(elapsed)} |",
            f"| (a) `xargs -P {PARALLELISM} docker exec` | {rate(xargs)} | {spread(xargs)} |",
            f"| (b) docker-py `exec_run`, {PARALLELISM} threads | {rate(dockerpy)} | "
            f"{spread(dockerpy)} |",
            "",
            f"- backend / `docker exec`: **{median(ratio_xargs):.1f}x** (median of per-round "
            f"ratios); target at least {TARGET_RATIO:g}x: {verdict(met)}",
            f"- backend / docker-py exec: **{median(ratio_py):.1f}x**",
            f"- of the backend's time, `add_tasks` itself: "
            f"{spread([r.add_tasks for r in backend])}; node start-up before the clock: "
            f"{spread([r.node_startup for r in backend])}",
        ]
    )
    return Result(
        f"2. Throughput at scale ({tasks} tasks, {NODES} nodes x {SLOTS} slots)",
        body,
        {"throughput >= 5x docker exec": met},
    )
