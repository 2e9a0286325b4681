"""Benchmark 2: throughput of many short tasks, against the node mechanism it is built on.

- `backend`: `DockerBackend` in process: a pool of 4 nodes with 4 slots each, a job with a
  preparation task, every task added in one `add_tasks` call, `get_task_counts` polled until all
  are completed. The clock starts once every node is idle (node start-up is not throughput) and
  stops when the counts say all completed; the preparation tasks fall inside it.
- node-mechanism floor (`bench.mechanism`): a shell in each of 4 plain containers fed over
  attached stdin, starting each task as a process with its own stdout/stderr files and exit
  code file, 4 at a time per node; the backend's rounds and the floor's alternate.
- context, once and with fewer tasks (each costs a `docker exec`): `xargs -P 16` running one
  ``docker exec <node> /bin/true`` per task round-robin over 4 plain containers, and
  docker-py's ``exec_run("/bin/true")`` from 16 threads over the same containers. They measure
  the decision to avoid `docker exec`, not how close the backend comes to its own mechanism.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bench import mechanism
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

TARGET_RATIO = 0.8
CONTEXT_TASKS = 500
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
    cpu: float
    """CPU seconds of this process (event loop and docker-py's threads) over `elapsed`."""


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
        cpu0 = time.process_time()
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
        cpu = time.process_time() - cpu0
        if counts.failed:
            raise RuntimeError(f"{counts.failed} of {tasks} tasks failed")
        await backend.delete_job(job_id)
        await backend.delete_pool(pool_id)
    return BackendRun(
        elapsed=t2 - t0, add_tasks=t1 - t0, polls=polls, node_startup=t0 - started, cpu=cpu
    )


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
    floor: list[float] = []
    ratios: list[float] = []
    for number in range(rounds):
        # Alternate which runs first, so drift in the machine's load hits both alike.
        if number % 2:
            floor.append(mechanism.run(tasks, NODES, SLOTS, COMMAND))
            backend.append(run_backend(tasks))
        else:
            backend.append(run_backend(tasks))
            floor.append(mechanism.run(tasks, NODES, SLOTS, COMMAND))
        run = backend[-1]
        ratios.append(floor[-1] / run.elapsed)
        print(
            f"  throughput round {number + 1}: backend {tasks / run.elapsed:.0f}/s "
            f"(app CPU {run.cpu / tasks * 1000:.2f} ms/task), node-mechanism floor "
            f"{tasks / floor[-1]:.0f}/s",
            flush=True,
        )
    xargs = run_xargs(CONTEXT_TASKS)
    dockerpy = run_docker_py(CONTEXT_TASKS)
    print(
        f"  throughput context ({CONTEXT_TASKS} tasks): xargs docker exec "
        f"{CONTEXT_TASKS / xargs:.0f}/s, docker-py {CONTEXT_TASKS / dockerpy:.0f}/s",
        flush=True,
    )

    def rate(seconds: list[float], count: int = tasks) -> str:
        return spread([count / s for s in seconds], "tasks/s", 1)

    elapsed = [r.elapsed for r in backend]
    ratio = median(ratios)
    met = ratio >= TARGET_RATIO
    backend_rate = median([tasks / s for s in elapsed])
    body = "\n".join(
        [
            f"{tasks} tasks `{COMMAND}`, {NODES} nodes x {SLOTS} slots "
            f"(parallelism {PARALLELISM}); the backend's rounds alternate with the floor's.",
            "",
            "| what | throughput, median (min, max) | wall time |",
            "| --- | --- | --- |",
            f"| backend (`DockerBackend`, add_tasks -> all completed) | {rate(elapsed)} | "
            f"{spread(elapsed)} |",
            f"| node-mechanism floor: a shell per node fed over attached stdin, each task a "
            f"process with its own stdout/stderr and exit code files, {SLOTS} at a time per "
            f"node | {rate(floor)} | {spread(floor)} |",
            f"| context, {CONTEXT_TASKS} tasks: `xargs -P {PARALLELISM} docker exec` | "
            f"{CONTEXT_TASKS / xargs:.1f} tasks/s | {xargs:.3f} s |",
            f"| context, {CONTEXT_TASKS} tasks: docker-py `exec_run`, {PARALLELISM} threads | "
            f"{CONTEXT_TASKS / dockerpy:.1f} tasks/s | {dockerpy:.3f} s |",
            "",
            f"- backend / node-mechanism floor: **{ratio:.2f}x** (median of per-round ratios); "
            f"target at least {TARGET_RATIO:g}x: {verdict(met)}",
            f"- backend / `docker exec` (context): {backend_rate / (CONTEXT_TASKS / xargs):.1f}x; "
            f"backend / docker-py `exec_run` (context): "
            f"{backend_rate / (CONTEXT_TASKS / dockerpy):.1f}x",
            f"- the app's CPU per task (event loop and docker-py's threads, `process_time`): "
            f"{spread([r.cpu / tasks * 1000 for r in backend], 'ms', 2)}; "
            f"`add_tasks` itself: {spread([r.add_tasks for r in backend])}; node start-up "
            f"before the clock: {spread([r.node_startup for r in backend])}",
        ]
    )
    name = (
        f"throughput, {tasks:,} tasks `{COMMAND}` on {NODES} nodes x {SLOTS} slots: the "
        "backend / the node-mechanism floor (a shell per node fed over attached stdin, each "
        f"task a process with its own output and exit code files, {SLOTS} at a time per "
        f"node), at least {TARGET_RATIO:g}x"
    )
    return Result(
        f"2. Throughput at scale ({tasks} tasks, {NODES} nodes x {SLOTS} slots)",
        body,
        {name: met},
        {
            name: f"{ratio:.2f}x ({backend_rate:.0f} vs {median([tasks / s for s in floor]):.0f}"
            f" tasks/s; `docker exec` as context: {CONTEXT_TASKS / xargs:.0f} tasks/s)"
        },
    )
