"""The node-mechanism floor: the product's way of starting tasks, with nothing of the product.

Each of `nodes` plain containers runs a bash loop as its main process, fed task keys over its
attached stdin (one line each) and answering on its attached stdout, exactly the channel the
node agent uses (`backends/docker/node/agent.py`). For each key the shell starts the task as a
process of its own in the background, with its own stdout and stderr files and an exit-code
file, and says ``exited <key>`` when it ended. The driver keeps `slots` tasks outstanding per
node (4 at a time per node), one blocking socket and thread per node: the least the product's
mechanism can cost, with no scheduler, state, journal or environment in it.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import NODE_IMAGE, POOL_LABEL, docker_client, scratch, unique_id

FRAME = struct.Struct(">BxxxL")
LOOP = r"""
mkdir -p /tmp/w
while read -r key; do
  [ "$key" = hello ] && { echo ready; continue; }
  (
    d=/tmp/w/$key
    mkdir "$d"
    COMMAND >"$d/stdout.txt" 2>"$d/stderr.txt"
    echo $? >"$d/exit"
    echo "exited $key"
  ) &
done
"""


def _lines(raw: socket.socket, buffer: bytearray, pending: bytearray) -> list[bytes]:
    """The next complete lines of the attach stream (multiplexed frames), waiting for one."""
    while b"\n" not in pending:
        chunk = raw.recv(65536)
        if not chunk:
            raise RuntimeError("mechanism floor: a node's shell went away")
        buffer += chunk
        while len(buffer) >= FRAME.size:
            _, size = FRAME.unpack_from(buffer)
            if len(buffer) < FRAME.size + size:
                break
            pending += buffer[FRAME.size : FRAME.size + size]
            del buffer[: FRAME.size + size]
    end = pending.rindex(b"\n")
    lines = bytes(pending[:end]).splitlines()
    del pending[: end + 1]
    return lines


def _drive(raw: socket.socket, keys: list[str], slots: int, go: threading.Barrier) -> None:
    buffer, pending = bytearray(), bytearray()
    raw.sendall(b"hello\n")
    while b"ready" not in b"".join(_lines(raw, buffer, pending)):
        pass
    go.wait()
    sent = done = 0
    first = min(slots, len(keys))
    raw.sendall("".join(f"{key}\n" for key in keys[:first]).encode())
    sent = first
    while done < len(keys):
        finished = sum(1 for line in _lines(raw, buffer, pending) if line.startswith(b"exited"))
        done += finished
        more = keys[sent : sent + finished]
        if more:
            raw.sendall("".join(f"{key}\n" for key in more).encode())
            sent += len(more)


def run(tasks: int, nodes: int = 4, slots: int = 4, command: str = "/bin/true") -> float:
    """Seconds from the first key sent to the last ``exited`` read, over `nodes` x `slots`."""
    pool_id = unique_id("mech")
    with scratch(pool_id):
        client = docker_client(pool_size=nodes + 2)
        try:

            def start(index: int) -> tuple[Any, socket.socket]:
                container = client.containers.run(
                    NODE_IMAGE,
                    ["/bin/bash", "-c", LOOP.replace("COMMAND", command)],
                    name=f"{pool_id}-{index}",
                    labels={POOL_LABEL: pool_id},
                    stdin_open=True,
                    detach=True,
                )
                params = {"stdin": 1, "stdout": 1, "stream": 1}
                sock = client.api.attach_socket(container.id, params=params)
                raw: socket.socket = getattr(sock, "_sock", sock)
                raw.settimeout(60.0)  # a lost line fails the run instead of hanging it
                return sock, raw

            with ThreadPoolExecutor(nodes) as pool:
                links = list(pool.map(start, range(nodes)))
            go = threading.Barrier(nodes + 1, timeout=120)
            shares = [[f"t{n:06d}" for n in range(i, tasks, nodes)] for i in range(nodes)]
            with ThreadPoolExecutor(nodes) as pool:
                futures = [
                    pool.submit(_drive, raw, keys, slots, go)
                    for (_, raw), keys in zip(links, shares, strict=True)
                ]
                go.wait()
                started = time.perf_counter()
                for future in futures:
                    future.result()
                elapsed = time.perf_counter() - started
            for sock, _ in links:
                sock.close()
        finally:
            client.close()
    return elapsed


if __name__ == "__main__":
    for _ in range(3):
        seconds = run(2000)
        print(f"mechanism floor: 2000 tasks in {seconds:.3f}s = {2000 / seconds:.0f} tasks/s")
