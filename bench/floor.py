"""The raw-docker floor of the latency benchmark (`bench.latency`): the sample's work done with
docker-py calls and nothing else. Imports only the standard library and docker-py, so that run as
its own process (``python -m bench.floor POOL PREP TASK RELEASE``, printing its seconds) it pays
what a script doing the work would: the interpreter's start-up, docker-py's import and its
client's connection, besides the work.
"""

from __future__ import annotations

import io
import shlex
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker

POOL_LABEL = "jobprep_release.pool"
NODE_IMAGE = "debian:bookworm-slim"
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


def do_floor(
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


def main(argv: list[str]) -> None:
    """Run the parallel floor in this process: `argv` is the pool id, then the preparation,
    task and release command lines (the caller times the whole process)."""
    pool_id, prep, task, release = argv
    client = docker.from_env()
    try:
        do_floor(client, pool_id, (prep, task, release), parallel_nodes=True)
    finally:
        client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
