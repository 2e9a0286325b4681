"""The node agent: a bash loop in each node container that starts task processes locally.

Azure Batch runs an agent on every node; so does this backend. A `docker exec` costs tens of
milliseconds, so instead the container's main process is `AGENT_SCRIPT`, fed commands on its
attached stdin and answering on stdout, one line each::

    app -> agent   run <key> <n>\\n<n bytes of bash>   run a script as root (a subshell; the script
                                                      execs the task in a session of its own),
                                                      unless <key> was run already: then answer
                                                      as to `query`, starting nothing
                   kill <key>                         SIGKILL the script's whole process group
                   query <key>                        ask how <key> is doing
                   hello                              ask for the boot number
    agent -> app   hello <boot>
                   started <key> <epoch>
                   exited <key> <code> <start epoch> <end epoch> <why, or ->
                   running <key>                      run on this boot, not yet ended
                   unknown <key>                      run on an earlier boot and never ended: lost
                   absent <key>                       never run here (the app never got to send it)

Every exit is also written to ``/mnt/batch/agent/<key>.exit`` on the node's volume before it is
announced, so an app that was not listening (it crashed, or was restarted) learns it with
`query`. A run is recorded (``<key>.run``, the boot it was read in) before the agent reads its
next command, so a `query` right after a `run` says ``running``, never ``absent``, and a second
`run` of the same key (an app that crashed not knowing whether its first was sent, and sends it
again) starts nothing: a launch happens at most once per key, whatever instant the app dies
at. Its pid
(``<key>.pid``, for `kill`) is known only once its subshell has started. The boot number grows
by one each time the container starts: a reboot.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from jobprep_release.backends.docker.node.engine import Engine
from jobprep_release.backends.errors import BackendUnavailable

AGENT_DIR = "/mnt/batch/agent"
FRAME_HEADER = struct.Struct(">BxxxL")

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
#POOL_USERS#
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
query() {
  local key=$1 b
  if [ -s "$A/$key.exit" ]; then echo "exited $key $(<"$A/$key.exit")"
  elif [ -e "$A/$key.run" ]; then
    read -r b <"$A/$key.run"
    if [ "$b" = "$boot" ]; then echo "running $key"; else echo "unknown $key"; fi
  else echo "absent $key"; fi
}
while IFS=' ' read -r verb key size; do
  case "$verb" in
    run)
      IFS= read -r -N "$size" script
      if [ -e "$A/$key.run" ]; then query "$key"; else run "$key" "$script"; fi ;;
    kill)
      if [ -s "$A/$key.pid" ]; then
        read -r b p <"$A/$key.pid"
        [ "$b" = "$boot" ] && { kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; }
      fi ;;
    query) query "$key" ;;
    hello) echo "hello $boot" ;;
  esac
done
"""


def agent_script(pool_users: str = "") -> str:
    """`AGENT_SCRIPT` with `pool_users` (bash creating the pool's user accounts, quiet on
    stdout) run after the task user exists and before the agent says hello, so its uid is
    never taken and no process starts before the accounts exist."""
    return AGENT_SCRIPT.replace("#POOL_USERS#\n", pool_users, 1)


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One line from an agent: `verb` and its words."""

    verb: str
    key: str
    words: tuple[str, ...]


class AgentLink:
    """The attached stdin/stdout of one node's agent, read and written without a thread.

    The attached socket is put in non-blocking mode and waited on with the event loop's own
    readiness (`anyio.wait_readable`), so a linked node costs no worker thread however long it
    stays quiet: a pool of any size leaves anyio's thread pool free. The link is full duplex, so
    one reader and any number of (serialised) writers may use it at once.

    The engine multiplexes an attach without a TTY into frames: an 8-byte header (stream type,
    three zero bytes, payload size as a big-endian 32-bit count), then the payload (Docker
    Engine API, "Attach to a container": "Stream format").
    """

    def __init__(self, sock: Any) -> None:
        self._io = sock
        raw = getattr(sock, "_sock", sock)
        self._socket: socket.socket = raw
        self._socket.setblocking(False)
        self._frames = bytearray()
        """Bytes read from the socket not yet unframed (at most one partial frame)."""
        self._pending = bytearray()
        """Agent output unframed but not yet ending in a newline."""
        self._write_lock = anyio.Lock()
        self.closed = False

    @classmethod
    async def attach(cls, engine: Engine, container_id: str) -> AgentLink:
        """Attach to the container's stdin and stdout (a docker-py call, in the engine's
        threads); the project's errors as `Engine.call` raises them (`BackendUnavailable` when
        the engine cannot be reached, `NotFound` when the container is gone)."""
        params = {"stdin": 1, "stdout": 1, "stream": 1}
        sock = await engine.call(
            engine.api.attach_socket,
            container_id,
            params=params,
            what="attach to a node's agent",
        )
        return cls(sock)

    async def send(self, payload: bytes) -> None:
        """Write `payload` whole; `BackendUnavailable` when the link is lost."""
        async with self._write_lock:
            view = memoryview(payload)
            try:
                while view:
                    try:
                        sent = self._socket.send(view)
                    except (BlockingIOError, ssl.SSLWantWriteError):
                        await anyio.wait_writable(self._socket)
                        continue
                    view = view[sent:]
            except (OSError, ValueError, anyio.ClosedResourceError) as exc:
                raise BackendUnavailable(f"lost the link to a node agent: {exc}") from exc

    async def receive(self) -> list[AgentEvent]:
        """The next complete lines, waiting for at least one; [] when the link has closed."""
        while b"\n" not in self._pending:
            if self.closed or not await self._read():
                self.closed = True
                return []
        end = self._pending.rindex(b"\n")
        complete = bytes(self._pending[:end])
        del self._pending[: end + 1]
        events = []
        for line in complete.decode(errors="replace").splitlines():
            words = line.split()
            if len(words) >= 2:
                events.append(AgentEvent(words[0], words[1], tuple(words[2:])))
            elif words:
                events.append(AgentEvent(words[0], "", ()))
        return events

    async def _read(self) -> bool:
        """Read what the socket has (waiting until it has something) and unframe it; False
        at the end of the stream or when the link was closed."""
        while True:
            try:
                chunk = self._socket.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                try:
                    await anyio.wait_readable(self._socket)
                except (OSError, ValueError, anyio.ClosedResourceError):
                    return False
                continue
            except (OSError, ValueError):
                return False
            if not chunk:
                return False
            self._unframe(chunk)
            return True

    def _unframe(self, chunk: bytes) -> None:
        frames = self._frames
        frames += chunk
        while len(frames) >= FRAME_HEADER.size:
            _stream, size = FRAME_HEADER.unpack_from(frames)
            end = FRAME_HEADER.size + size
            if len(frames) < end:
                break
            self._pending += frames[FRAME_HEADER.size : end]
            del frames[:end]

    def close(self) -> None:
        """Close the socket; a `receive` waiting on it returns [] and a `send` raises."""
        if self.closed and self._socket.fileno() < 0:
            return
        self.closed = True
        if self._socket.fileno() >= 0:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            # Wakes a task waiting for the socket, which would otherwise wait on a closed fd.
            with contextlib.suppress(RuntimeError):
                anyio.notify_closing(self._socket)
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
