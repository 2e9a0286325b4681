"""One service per engine: the process holding an engine's state serves it to other processes.

The process that holds the state lock (a CLI run, `status` or `serve`) is the engine's service.
It writes how to reach it beside the lock, in ``docker-<engine>.service`` (mode 0600: it holds
the account key): `ServiceFile`, JSON ``{"pid", "url", "account", "key"}``. A CLI run started
while the state is held reads that file and runs its flow through the holder's Batch REST
endpoint instead of waiting for its turn (the app composes this: see
`jobprep_release.attach`).

A CLI holder costs nothing until somebody connects (`LazyEndpoint`): it binds a loopback socket
when it takes the lock, and imports and starts the REST app (aiohttp, over the holder's own
`BatchService`) only when the first connection arrives on it. `serve` publishes its own URL.

A run attached to a holder takes a shared lock on ``docker-<engine>.attached`` for as long as it
uses the service (`AttachLease`); the holder, at the end of its own flow, waits until it can take
that lock exclusively (`Publication.wait_for_attached`), so it does not stop while an attached
run still needs it, and keeps it while it stops, so no run attaches to a service that is going
away (such a run finds the state free a moment later, and becomes the holder). The kernel drops
a process's locks when it dies, so a crashed run never keeps a holder waiting, and a service file
left by a crashed holder is ignored: it counts only while the lock's holder is its pid.

The service listens on the loopback only, so it is reachable from the holder's network namespace
only. Processes in other namespaces can share a state directory too (two app containers with one
volume or host directory mounted at the state directory; a container and a process on the host):
flock works across them, the loopback does not. So the service file also says where the holder
runs (`ServiceFile.host`, `network`, `processes`: the kernel's boot id with the inode of the
holder's network or pid namespace, as ``/proc/self/ns`` names them), and a process that cannot
reach the holder's loopback waits for the state instead of attaching, saying why in one line
(`unreachable`). A pid means something only within its pid namespace, so whether the holder is
still alive is asked of the kernel only from its own pid namespace; elsewhere the lock (dropped
by the kernel when its holder dies, whatever the namespace) answers alone. The endpoint is not
opened beyond the loopback for them: a CLI run's service would then be reachable from every
container on the network, with only its key to guard it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import structlog

if TYPE_CHECKING:
    from aiohttp import web

    from jobprep_release.backends.docker.core.service import BatchService
    from jobprep_release.backends.docker.core.store import StateStore

log = structlog.get_logger("jobprep_release.docker")

POLL = 0.2
"""Seconds between two looks at a lock another process holds."""
KEEPALIVE = 5.0
"""Seconds the lazily started endpoint keeps an idle client connection open."""


@dataclass(frozen=True, slots=True)
class ServiceFile:
    """How to reach the process serving an engine's state: its pid, the Batch endpoint's URL,
    the account name and its Shared Key (base64); and where it runs: its host name, its
    network and pid namespaces (`namespace`; "" in a file written before they were recorded,
    or where the kernel does not say)."""

    pid: int
    url: str
    account: str
    key: str
    host: str = ""
    network: str = ""
    processes: str = ""

    def reachable(self) -> bool:
        """Whether this process reaches the service's loopback URL: it runs in the holder's
        network namespace (or either namespace is unknown, as on a holder of an older app)."""
        here = namespace("net")
        return not self.network or not here or self.network == here

    def unreachable(self) -> str:
        """Why this process waits for the state rather than attach (one line)."""
        return (
            f"waiting for the docker backend's state: it is held by pid {self.pid} on host "
            f"{self.host or 'unknown'}, in another network namespace (another container, or "
            "the machine outside it), whose Batch service listens on its own loopback and "
            "cannot be reached from here; this run goes on when that one ends (Ctrl-C stops "
            "waiting)"
        )


@functools.cache
def namespace(kind: str) -> str:
    """This process's `kind` namespace (``net``, ``pid``) as ``<boot id> net:[<inode>]``: equal
    for two processes exactly when they share it on one running kernel; "" where the kernel
    does not say (not Linux). Blocking I/O, once per kind."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot} {Path(f'/proc/self/ns/{kind}').readlink()}"
    except OSError:
        return ""


def _sibling(store: StateStore, suffix: str) -> Path:
    return store.path.with_name(f"{store.path.stem}{suffix}")


def service_path(store: StateStore) -> Path:
    """``docker-<engine>.service`` beside the state."""
    return _sibling(store, ".service")


def attached_path(store: StateStore) -> Path:
    """``docker-<engine>.attached``: the lock attached runs share while they use the service."""
    return _sibling(store, ".attached")


def holder_pid(store: StateStore) -> int | None:
    """The pid the state lock's holder wrote down (``pid N``), None when unknown."""
    words = store.holder().split()
    if len(words) == 2 and words[0] == "pid" and words[1].isdigit():
        return int(words[1])
    return None


def read_service(store: StateStore) -> ServiceFile | None:
    """The published service of the process holding the state now; None when the holder
    published none (yet), or the file is a dead holder's. Blocking I/O."""
    try:
        raw: Any = json.loads(service_path(store).read_text())
        found = ServiceFile(
            pid=int(raw["pid"]),
            url=str(raw["url"]),
            account=str(raw["account"]),
            key=raw["key"],
            host=str(raw.get("host", "")),
            network=str(raw.get("network", "")),
            processes=str(raw.get("processes", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if found.pid != holder_pid(store) or not store.held():
        return None
    here = namespace("pid")
    if (not found.processes or not here or found.processes == here) and not _alive(found.pid):
        return None
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state_identity(store: StateStore) -> str:
    """The state's identity, made once and kept in ``docker-<engine>.id`` beside it (16 hex
    digits): the value of the ``jobprep_release.state`` label on everything its processes
    make, so that processes with different state directories on one engine (two app
    containers sharing the host's socket) never adopt or remove each other's pools. Kept apart
    from the state itself, so a lost or unreadable state file keeps it. Blocking I/O."""
    found = known_identity(store)
    if found is not None:
        return found
    path = _sibling(store, ".id")
    made = secrets.token_hex(8)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(made + "\n")
    temporary.replace(path)
    return made


def known_identity(store: StateStore) -> str | None:
    """The state's identity (`state_identity`) when one was made, else None (no process with
    this state made anything yet). Blocking I/O."""
    try:
        found = _sibling(store, ".id").read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    if len(found) == 16 and all(c in "0123456789abcdef" for c in found):
        return found
    return None


def claim(store: StateStore) -> str:
    """Just after taking the state's lock: remove a service file left by a holder that died
    (else it would count for a new holder with its pid, as in two containers whose first
    processes both have pid 1), and return the state's identity (`state_identity`). Blocking
    I/O."""
    with contextlib.suppress(FileNotFoundError):
        service_path(store).unlink()
    return state_identity(store)


def new_key() -> str:
    """A random account key, base64 as Batch keys are (64 bytes)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def _flock(path: Path, mode: int) -> IO[str] | None:
    """`path` opened and locked (`fcntl.LOCK_SH` or `LOCK_EX`) without waiting; None if held."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class Publication:
    """The holder's side: the service file it wrote, and the wait for attached runs."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._path = service_path(store)
        self._attached = attached_path(store)
        self._exclusive: IO[str] | None = None
        self.published: ServiceFile | None = None

    def publish(self, url: str, account: str, key: str) -> ServiceFile:
        """Write the service file (mode 0600, replaced atomically). Blocking I/O."""
        service = ServiceFile(
            pid=os.getpid(),
            url=url,
            account=account,
            key=key,
            host=socket.gethostname(),
            network=namespace("net"),
            processes=namespace("pid"),
        )
        temporary = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(asdict(service), handle)
        temporary.replace(self._path)
        self.published = service
        return service

    async def wait_for_attached(self, say: Callable[[str], None], busy: Callable[[], int]) -> None:
        """Return once no attached run uses the service (no shared lease, and `busy()`, the
        open client connections, is 0), keeping new runs from attaching from then on. `say`
        gets one line if there is anything to wait for. Cancelling stops the wait."""
        if self.published is None:
            return
        said = False
        while True:
            if busy() == 0:
                self._exclusive = await anyio.to_thread.run_sync(
                    _flock, self._attached, fcntl.LOCK_EX
                )
                if self._exclusive is not None:
                    return
            if not said:
                say(
                    f"Other runs are using this run's docker service (pid {os.getpid()}): "
                    "waiting for them to end (Ctrl-C stops waiting)"
                )
                said = True
            await anyio.sleep(POLL)

    def withdraw(self) -> None:
        """Remove the service file (if still ours) and let attachers go on. Blocking I/O."""
        if self.published is not None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                if json.loads(self._path.read_text())["pid"] == os.getpid():
                    self._path.unlink()
            self.published = None

    def release(self) -> None:
        """After the state lock is released: attachers may try again."""
        if self._exclusive is not None:
            self._exclusive.close()
            self._exclusive = None


class AttachLease:
    """An attached run's side: a shared lock on the holder's ``.attached`` file, held while
    the run uses the holder's service."""

    def __init__(self, store: StateStore) -> None:
        self._path = attached_path(store)
        self._handle: IO[str] | None = None

    def take(self) -> bool:
        """Take the lease without waiting; False while the holder is stopping. Blocking I/O."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = _flock(self._path, fcntl.LOCK_SH)
        return self._handle is not None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class LazyEndpoint:
    """A loopback socket bound now, and the Batch REST endpoint over `service` started on it
    when the first client connects (aiohttp is not even imported until then)."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.key = new_key()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self._socket.setblocking(False)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._runner: web.AppRunner | None = None

    def connections(self) -> int:
        """Client connections open now (0 before the first)."""
        if self._runner is None or self._runner.server is None:
            return 0
        return len(self._runner.server.connections)

    async def serve(self, service: BatchService, group: anyio.abc.TaskGroup) -> None:
        """Wait for the first connection, then serve the REST app until cancelled."""
        await anyio.wait_readable(self._socket)
        # Imported only now: the endpoint's cost is paid only by a holder somebody uses.
        from aiohttp import web

        from jobprep_release.backends.docker.rest.app import build_app
        from jobprep_release.backends.docker.rest.auth import SharedKey
        from jobprep_release.backends.docker.rest.context import Context

        keys = SharedKey(self.account, self.key)
        ctx = Context(service=service, keys=keys, group=group)
        runner = web.AppRunner(
            build_app(ctx), access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE
        )
        await runner.setup()
        self._runner = runner
        try:
            await web.SockSite(runner, self._socket).start()
            log.info("serving the docker backend to another run", url=self.url)
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()

    def close(self) -> None:
        self._socket.close()
