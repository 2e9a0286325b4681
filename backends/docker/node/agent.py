"""The node agent: a bash loop in each node container that starts task processes locally.

Azure Batch runs an agent on every node; so does this backend. A `docker exec` costs tens of
milliseconds, so instead the container's main process is `AGENT_SCRIPT`, fed commands on its
attached stdin and answering on stdout, one line each::

    app -> agent   run <key> <n>\\n<n bytes of bash>   run a script as root (a subshell; the script
                                                      execs the task in a session of its own)
                   kill <key>                         SIGKILL the script's whole process group
                   query <key>                        ask how <key> is doing
                   hello                              ask for the boot number
    agent -> app   hello <boot>
                   started <key> <epoch>
                   exited <key> <code> <start epoch> <end epoch> <why, or ->
                   running <key> | unknown <key>

Every exit is also written to ``/mnt/batch/agent/<key>.exit`` on the node's volume before it is
announced, so an app that was not listening (it crashed, or was restarted) learns it with
`query`. A run is recorded (``<key>.run``, the boot it was read in) before the agent reads its
next command, so a `query` right after a `run` says ``running``, never ``unknown``; its pid
(``<key>.pid``, for `kill`) is known only once its subshell has started. The boot number grows
by one each time the container starts: a reboot.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import docker.errors
import requests.exceptions

from jobprep_release.backends.errors import BackendUnavailable

AGENT_DIR = "/mnt/batch/agent"

AGENT_SCRIPT = r"""
export LC_ALL=C
A=/mnt/batch/agent
T=/mnt/batch/tasks
trap 'exit 0' TERM INT
mkdir -p "$A" "$T/shared" "$T/startup" "$T/workitems" "$T/fsmounts"
if ! grep -q '^_azbatch:' /etc/passwd; then
  echo '_azbatch:x:1000:1000::/mnt/batch/tasks:/bin/bash' >>/etc/passwd
  echo '_azbatch:x:1000:' >>/etc/group
fi
chown _azbatch:_azbatch "$T/shared" "$T/startup"
chmod 0775 "$T" "$T/shared" "$T/startup" "$T/workitems"
boot=$(( $(cat "$A/boot" 2>/dev/null || echo 0) + 1 ))
echo "$boot" >"$A/boot"
echo "hello $boot"
run() {
  local key=$1 script=$2
  echo "$boot" >"$A/$key.run"
  (
    start=$EPOCHREALTIME
    ( eval "$script" ) </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$boot $pid" >"$A/$key.pid"
    echo "started $key $start"
    wait "$pid"
    code=$?
    end=$EPOCHREALTIME
    why=-
    [ -s "$A/$key.why" ] && read -r why <"$A/$key.why"
    echo "$code $start $end $why" >"$A/$key.exit"
    echo "exited $key $code $start $end $why"
  ) &
}
while IFS=' ' read -r verb key size; do
  case "$verb" in
    run) IFS= read -r -N "$size" script; run "$key" "$script" ;;
    kill)
      if [ -s "$A/$key.pid" ]; then
        read -r b p <"$A/$key.pid"
        [ "$b" = "$boot" ] && { kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; }
      fi ;;
    query)
      if [ -s "$A/$key.exit" ]; then echo "exited $key $(<"$A/$key.exit")"
      elif [ -s "$A/$key.run" ] && read -r b <"$A/$key.run" && [ "$b" = "$boot" ]; then
        echo "running $key"
      else echo "unknown $key"; fi ;;
    hello) echo "hello $boot" ;;
  esac
done
"""


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One line from an agent: `verb` and its words."""

    verb: str
    key: str
    words: tuple[str, ...]


class AgentLink:
    """The attached stdin/stdout of one node's agent.

    `events` blocks in a worker thread until lines arrive; `send` writes commands. The link is
    full duplex, so one reader and any number of (serialised) writers may use it at once.
    """

    def __init__(self, sock: Any) -> None:
        self._io = sock
        raw = getattr(sock, "_sock", sock)
        self._socket: socket.socket = raw
        self._buffer = b""
        self._pending = b""
        self._write_lock = anyio.Lock()
        self.closed = False

    @classmethod
    async def attach(cls, api: Any, container_id: str) -> AgentLink:
        params = {"stdin": 1, "stdout": 1, "stream": 1}
        try:
            sock = await anyio.to_thread.run_sync(
                lambda: api.attach_socket(container_id, params=params)
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise BackendUnavailable(f"cannot attach to a node's agent: {exc}") from exc
        return cls(sock)

    async def send(self, payload: bytes) -> None:
        async with self._write_lock:
            try:
                await anyio.to_thread.run_sync(self._socket.sendall, payload)
            except OSError as exc:
                raise BackendUnavailable(f"lost the link to a node agent: {exc}") from exc

    async def receive(self) -> list[AgentEvent]:
        """The next complete lines, waiting for at least one; [] when the link has closed."""
        return await anyio.to_thread.run_sync(self._read_lines, abandon_on_cancel=True)

    def _read_lines(self) -> list[AgentEvent]:
        while b"\n" not in self._pending:
            chunk = self._read_frame()
            if chunk is None:
                self.closed = True
                return []
            self._pending += chunk
        complete, _, self._pending = self._pending.rpartition(b"\n")
        events = []
        for line in complete.decode(errors="replace").splitlines():
            words = line.split()
            if len(words) >= 2:
                events.append(AgentEvent(words[0], words[1], tuple(words[2:])))
            elif words:
                events.append(AgentEvent(words[0], "", ()))
        return events

    def _read_frame(self) -> bytes | None:
        header = self._read_exactly(8)
        if header is None:
            return None
        _stream, size = struct.unpack(">BxxxL", header)
        return self._read_exactly(size)

    def _read_exactly(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            try:
                chunk = self._socket.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        if self.closed and self._socket.fileno() < 0:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        close_io: Callable[[], None] | None = getattr(self._io, "close", None)
        if close_io is not None:
            close_io()


def run_command(key: str, script: str) -> bytes:
    """The `run` command line for a script (the agent reads exactly its byte count)."""
    body = script.encode()
    return f"run {key} {len(body)}\n".encode() + body


def simple_command(verb: str, key: str = "") -> bytes:
    return f"{verb} {key}\n".encode()
