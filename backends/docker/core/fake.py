"""`FakeExecutor`: nodes in memory, processes on a controllable clock, scripted outcomes.

Shipped beside the Docker executor as httpx ships `MockTransport` beside its transports: the
Batch core's rules run against it in milliseconds, deterministically, with no engine. What a
process does is scripted: `outcome(start)` returns a `FakeOutcome` (exit code, duration in
clock seconds, output, files written), given a `FakeStart` (node, argv, variables). Time moves
only with the clock (`FakeClock.advance`); a process ends when the clock passes its duration,
or its wall clock (exit 137, as the node's ``timeout -s KILL``). Each node has a file system
(the task directories, ``shared/``, what outcomes write) that node-file reads see, and a record
of every exit under its key, so a new core (after a "crash") learns what ended meanwhile.
Nodes can be lost (`lose_node`), and reboot or reimage as the core asks.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.abc

from jobprep_release.backends.base import NodeState, TaskContainerExecutionInfo
from jobprep_release.backends.docker.core.clock import Clock, FakeClock
from jobprep_release.backends.docker.core.environment import NODE_ROOT, SHARED_DIR, STARTUP_DIR
from jobprep_release.backends.docker.core.executor import (
    IMAGE_NOT_FOUND,
    NOT_FOUND,
    ExecutorListener,
    FileInfo,
    FoundPool,
    NodeFile,
    NodeSetup,
    ProcessExit,
    ProcessSpec,
)
from jobprep_release.backends.errors import NotFound

KILLED = 137
"""The exit code of a process killed by SIGKILL (a kill, or its wall clock)."""
STREAM_CHUNK = 64 * 1024
"""Bytes per chunk of `FakeExecutor.stream_file`."""


@dataclass(frozen=True, slots=True)
class FakeStart:
    """A process as the fake executor started it, for outcome scripts and assertions."""

    node_id: str
    key: str
    argv: tuple[str, ...]
    environment: Mapping[str, str]
    spec: ProcessSpec
    time: float

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    @property
    def task_id(self) -> str:
        """``AZ_BATCH_TASK_ID``: the task, or the preparation or release task's id; "" for a
        pool's start task, which has none (its `spec.task_dir` is the node's ``startup``)."""
        return self.environment.get("AZ_BATCH_TASK_ID", "")


@dataclass(frozen=True, slots=True)
class FakeOutcome:
    """What a fake process does: runs `duration` clock seconds (None: until killed), writes
    `stdout`/`stderr`, writes or appends to files (paths relative to its working directory,
    or absolute on the node), then exits with `exit_code`. `not_found`: the program does not
    exist (the core reports ``CommandProgramNotFound``)."""

    exit_code: int = 0
    duration: float | None = 0.0
    stdout: bytes = b""
    stderr: bytes = b""
    files: Mapping[str, bytes] = field(default_factory=dict)
    appends: Mapping[str, bytes] = field(default_factory=dict)
    not_found: bool = False


Script = Callable[[FakeStart], FakeOutcome]


def succeed(start: FakeStart) -> FakeOutcome:
    """The default script: every process exits 0 at once."""
    return FakeOutcome()


@dataclass(slots=True)
class _Process:
    start: FakeStart
    outcome: FakeOutcome
    end: float | None
    killed_by_clock: bool


@dataclass(slots=True)
class FakeNode:
    """One fake node: its setup, boot number, files (absolute path -> bytes, with modes and
    times), directories, running processes and recorded exits by key."""

    setup: NodeSetup
    boot: int = 0
    up: bool = False
    lost: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    running: dict[str, _Process] = field(default_factory=dict)
    exits: dict[str, ProcessExit] = field(default_factory=dict)
    told: set[str] = field(default_factory=set)
    """Every key the node was asked to start (kept on its disk, as the agent's records)."""
    entries: dict[str, set[str]] = field(default_factory=dict)
    """Each directory's files and directories, by path, so removing a tree costs what the
    tree holds, not what the node holds (a large job's task directories are many)."""

    def make_dirs(self, path: str) -> None:
        while path not in ("/", "") and path not in self.directories:
            self.directories.add(path)
            parent = posixpath.dirname(path)
            self.entries.setdefault(parent, set()).add(path)
            path = parent

    def write(self, path: str, data: bytes, at: float, *, append: bool = False) -> None:
        parent = posixpath.dirname(path)
        self.make_dirs(parent)
        self.entries.setdefault(parent, set()).add(path)
        self.files[path] = (self.files.get(path, b"") if append else b"") + data
        self.modes.setdefault(path, 0o644)
        self.times[path] = at

    def remove_tree(self, path: str) -> None:
        """Remove `path`, a file or a directory with everything below it (``rm -rf``)."""
        top = path.rstrip("/") or "/"
        self.entries.get(posixpath.dirname(top), set()).discard(top)
        pending = [top]
        while pending:
            current = pending.pop()
            self.files.pop(current, None)
            self.modes.pop(current, None)
            self.times.pop(current, None)
            self.directories.discard(current)
            pending.extend(self.entries.pop(current, ()))

    def wipe(self) -> None:
        self.files.clear()
        self.modes.clear()
        self.times.clear()
        self.directories.clear()
        self.entries.clear()
        self.exits.clear()
        self.told.clear()


def fake_container(spec: ProcessSpec, key: str, state: str) -> TaskContainerExecutionInfo | None:
    """The container a fake container process runs in (id ``fake-<key>``), None for others."""
    if spec.container is None:
        return None
    return TaskContainerExecutionInfo(f"fake-{key}", state)


def _exited(node_id: str, key: str, exit: ProcessExit) -> Callable[[ExecutorListener], None]:
    return lambda listener: listener.on_process_exited(node_id, key, exit)


def _lost(node_id: str, key: str) -> Callable[[ExecutorListener], None]:
    return lambda listener: listener.on_process_lost(node_id, key)


def _absent(node_id: str, key: str) -> Callable[[ExecutorListener], None]:
    return lambda listener: listener.on_process_absent(node_id, key)


class FakeExecutor:
    """A `NodeExecutor` in memory. `clock` must be the core's; `outcome` scripts processes.

    For tests: `starts` lists every process started, in order; `nodes` the fake nodes by id;
    `lose_node` takes a node away (its processes vanish without a trace) and `restore_node`
    brings it back with the next boot number; `hold_hello` keeps new nodes from saying hello,
    `hold_creation` keeps them ``creating``. With `records` False, `starts` and `removed_trees`
    stay empty: a benchmark of a large job measures the service, not one record per process
    kept for tests (neither the service nor the Docker executor keeps any).
    """

    def __init__(
        self, clock: Clock | None = None, outcome: Script = succeed, *, records: bool = True
    ) -> None:
        self.clock: Clock = clock or FakeClock()
        self.outcome = outcome
        self.records = records
        self.starts: list[FakeStart] = []
        self.nodes: dict[str, FakeNode] = {}
        self.removed_trees: list[tuple[str, str]] = []
        self.images: set[str] | None = None
        """Images `check_image` accepts, and container processes find (None: any)."""
        self.hold_hello = False
        self.hold_creation = False
        """New nodes stay ``creating`` until `release_creation` (a slow allocation)."""
        self._creating: list[FakeNode] = []
        self._listener: ExecutorListener | None = None
        self._events: list[Callable[[ExecutorListener], None]] = []
        self._wake = anyio.Event()

    # --- serving -----------------------------------------------------------------------------

    async def run(
        self, listener: ExecutorListener, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        self._listener = listener
        self._events.clear()  # events for a previous core are lost with it
        task_status.started()
        try:
            while True:
                self._step()
                self._deliver()
                await self._wait()
        finally:
            self._listener = None

    async def _wait(self) -> None:
        wake = self._wake
        if wake.is_set():
            self._wake = anyio.Event()
            await anyio.lowlevel.checkpoint()
            return
        now = self.clock.now()
        ends = [
            process.end
            for node in self.nodes.values()
            if node.up
            for process in node.running.values()
            if process.end is not None
        ]
        async with anyio.create_task_group() as group:
            if ends:
                group.start_soon(self._alarm, max(min(ends) - now, 0.0), wake)
            await wake.wait()
            group.cancel_scope.cancel()
        self._wake = anyio.Event()

    async def _alarm(self, delay: float, wake: anyio.Event) -> None:
        await self.clock.sleep(delay)
        wake.set()

    def _poke(self) -> None:
        self._wake.set()

    def _emit(self, event: Callable[[ExecutorListener], None]) -> None:
        self._events.append(event)
        self._poke()

    def _deliver(self) -> None:
        while self._events and self._listener is not None:
            event = self._events.pop(0)
            event(self._listener)

    def _step(self) -> None:
        """End every process whose time has come."""
        now = self.clock.now()
        for node in self.nodes.values():
            if not node.up:
                continue
            for key, process in list(node.running.items()):
                if process.end is not None and process.end <= now:
                    self._finish(node, key, process)

    def _finish(self, node: FakeNode, key: str, process: _Process) -> None:
        del node.running[key]
        start, outcome, spec = process.start, process.outcome, process.start.spec
        end = process.end if process.end is not None else self.clock.now()
        if process.killed_by_clock:
            code = KILLED
        else:
            code = outcome.exit_code
            node.write(spec.stdout_path, outcome.stdout, end, append=True)
            node.write(spec.stderr_path, outcome.stderr, end, append=True)
            for path, data in outcome.files.items():
                node.write(posixpath.join(spec.working_dir, path), data, end)
            for path, data in outcome.appends.items():
                node.write(posixpath.join(spec.working_dir, path), data, end, append=True)
        exit = ProcessExit(code, start.time, end, container=fake_container(spec, key, "exited"))
        self._record_exit(node, key, exit)

    def _record_exit(self, node: FakeNode, key: str, exit: ProcessExit) -> None:
        node.exits[key] = exit
        self._emit(_exited(node.setup.node_id, key, exit))

    def _hello(self, node: FakeNode) -> None:
        if self.hold_hello or node.lost:
            return
        node.up = True
        node_id, boot = node.setup.node_id, node.boot
        self._emit(lambda listener: listener.on_node_hello(node_id, boot))

    def _boot(self, node: FakeNode) -> None:
        """Start (or restart) a node: what ran there is gone without a trace."""
        node.running.clear()
        node.boot += 1
        for directory in (SHARED_DIR, STARTUP_DIR, f"{NODE_ROOT}/workitems"):
            node.make_dirs(directory)
        self._hello(node)

    async def close(self) -> None:
        return None

    # --- nodes -------------------------------------------------------------------------------

    async def check_image(self, image: str) -> None:
        if self.images is not None and image not in self.images:
            raise NotFound(f"node image {image!r} is not present", code="ImageNotFound")

    def create_node(self, node: NodeSetup) -> None:
        existing = self.nodes.get(node.node_id)
        if existing is not None:
            # A new core takes the node back: it answers hello with the boot it is in.
            if existing.up:
                self._hello(existing)
            return
        fake = FakeNode(setup=node)
        self.nodes[node.node_id] = fake
        node_id = node.node_id
        self._emit(lambda listener: listener.on_node_state(node_id, NodeState.CREATING))
        if self.hold_creation:
            self._creating.append(fake)
            return
        self._created(fake)

    def _created(self, node: FakeNode) -> None:
        node_id = node.setup.node_id
        self._emit(lambda listener: listener.on_node_state(node_id, NodeState.STARTING))
        self._boot(node)

    def release_creation(self) -> None:
        """Let the nodes held by `hold_creation` (and not removed since) come up now."""
        self.hold_creation = False
        for node in self._creating:
            if self.nodes.get(node.setup.node_id) is node:
                self._created(node)
        self._creating.clear()

    def node_address(self, node_id: str) -> str | None:
        """A fixed private address per node (its pool's serial and its index), as a real
        node's is fixed while it exists; None for an unknown node."""
        node = self.nodes.get(node_id)
        if node is None:
            return None
        return (
            f"10.{node.setup.serial % 250}.{node.setup.index // 250}.{node.setup.index % 250 + 4}"
        )

    def release_hello(self, node_id: str | None = None) -> None:
        """Let nodes held by `hold_hello` say hello now: every one (no more are held), or
        only `node_id` (the others stay held)."""
        if node_id is not None:
            node = self._node(node_id)
            held, self.hold_hello = self.hold_hello, False
            self._hello(node)
            self.hold_hello = held
            return
        self.hold_hello = False
        for node in self.nodes.values():
            if not node.up and not node.lost:
                self._hello(node)

    async def remove_node(self, node: NodeSetup) -> None:
        self.nodes.pop(node.node_id, None)

    def _node(self, node_id: str) -> FakeNode:
        node = self.nodes.get(node_id)
        if node is None:
            raise NotFound(f"node {node_id} does not exist", code="NodeNotFound")
        return node

    async def reboot_node(self, node_id: str) -> None:
        node = self._node(node_id)
        node.up = False
        self._boot(node)

    async def reimage_node(self, node_id: str) -> None:
        node = self._node(node_id)
        node.up = False
        node.wipe()
        node.boot = 0
        self._boot(node)

    def lose_node(self, node_id: str) -> None:
        """The node dies: its processes vanish, the core hears it is lost; it stays down
        until `restore_node`."""
        node = self._node(node_id)
        node.up, node.lost = False, True
        node.running.clear()
        self._emit(lambda listener: listener.on_node_lost(node_id))

    def restore_node(self, node_id: str) -> None:
        """A lost node comes back, with the next boot number."""
        node = self._node(node_id)
        node.lost = False
        self._boot(node)

    # --- processes -----------------------------------------------------------------------------

    async def start_process(self, node_id: str, key: str, spec: ProcessSpec) -> bool:
        node = self.nodes.get(node_id)
        if node is None or not node.up:
            return False
        if key in node.told:  # a launch sent again: the node starts nothing, it answers
            self._answer(node, key)
            return True
        node.told.add(key)
        now = self.clock.now()
        start = FakeStart(node_id, key, spec.argv, spec.environment, spec, now)
        if self.records:
            self.starts.append(start)
        node.make_dirs(spec.task_dir)
        node.make_dirs(spec.working_dir)
        node.write(spec.stdout_path, b"", now)
        node.write(spec.stderr_path, b"", now)
        container = spec.container
        if container is not None and self.images is not None and container.image not in self.images:
            # as the Docker executor: the image is neither on the node nor pullable
            self._emit(lambda listener: listener.on_process_started(node_id, key, now))
            self._record_exit(node, key, ProcessExit(125, now, now, IMAGE_NOT_FOUND))
            return True
        outcome = self.outcome(start)
        if outcome.not_found:
            node.write(spec.stderr_path, f"{spec.argv[0]}: command not found\n".encode(), now)
            self._emit(lambda listener: listener.on_process_started(node_id, key, now))
            self._record_exit(node, key, ProcessExit(127, now, now, NOT_FOUND))
            return True
        end = None if outcome.duration is None else now + outcome.duration
        limit = None if spec.wall_clock is None else spec.wall_clock.total_seconds()
        by_clock = limit is not None and (end is None or end - now > limit)
        if by_clock:
            assert limit is not None
            end = now + limit
        node.running[key] = _Process(start, outcome, end, by_clock)
        running = fake_container(spec, key, "running")
        self._emit(lambda listener: listener.on_process_started(node_id, key, now, running))
        return True

    async def kill_process(self, node_id: str, key: str) -> None:
        node = self.nodes.get(node_id)
        if node is None or key not in node.running:
            return
        process = node.running.pop(key)
        ended = fake_container(process.start.spec, key, "exited")
        exit = ProcessExit(KILLED, process.start.time, self.clock.now(), container=ended)
        self._record_exit(node, key, exit)

    async def query_processes(self, node_id: str, keys: Sequence[str]) -> None:
        node = self.nodes.get(node_id)
        if node is None or not node.up:
            return
        self._step()
        for key in keys:
            self._answer(node, key)

    def _answer(self, node: FakeNode, key: str) -> None:
        """How `key` is doing, as the agent answers a query."""
        node_id = node.setup.node_id
        if key in node.exits:
            self._emit(_exited(node_id, key, node.exits[key]))
        elif key not in node.told:
            self._emit(_absent(node_id, key))
        elif key not in node.running:
            self._emit(_lost(node_id, key))

    # --- files ---------------------------------------------------------------------------------

    async def put_files(self, node_id: str, files: Sequence[NodeFile]) -> None:
        node = self._node(node_id)
        now = self.clock.now()
        for file in files:
            data = file.data if file.source is None else await anyio.Path(file.source).read_bytes()
            node.write(file.path, data, now)
            node.modes[file.path] = file.mode

    async def remove_tree(self, node_id: str, path: str) -> None:
        node = self._node(node_id)
        if self.records:
            self.removed_trees.append((node_id, path))
        node.remove_tree(path)

    def file_text(self, node_id: str, path: str) -> str:
        """A file's text, `path` absolute or relative to the node's root (for tests)."""
        absolute = path if path.startswith("/") else f"{NODE_ROOT}/{path}"
        return self._node(node_id).files[absolute].decode()

    async def read_file(self, node_id: str, path: str) -> bytes:
        node = self._node(node_id)
        absolute = f"{NODE_ROOT}/{path}"
        if absolute not in node.files:
            raise NotFound(f"{path}: no such file", code="FileNotFound")
        return node.files[absolute]

    async def stream_file(
        self, node_id: str, path: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        data = await self.read_file(node_id, path)
        end = len(data) if length is None else min(len(data), start + length)
        for offset in range(start, end, STREAM_CHUNK):
            yield data[offset : min(end, offset + STREAM_CHUNK)]

    def _info(self, node: FakeNode, absolute: str, name: str) -> FileInfo:
        when = datetime.fromtimestamp(node.times.get(absolute, self.clock.now()), UTC)
        if absolute in node.directories:
            return FileInfo(name=name, is_directory=True, size=0, modified=when, mode="40755")
        mode = format(0o100000 | node.modes.get(absolute, 0o644), "o")
        size = len(node.files[absolute])
        return FileInfo(name=name, is_directory=False, size=size, modified=when, mode=mode)

    async def stat_file(self, node_id: str, path: str) -> FileInfo:
        node = self._node(node_id)
        absolute = f"{NODE_ROOT}/{path}"
        if absolute not in node.files and absolute not in node.directories:
            raise NotFound(f"the file {path} does not exist on the node", code="FileNotFound")
        return self._info(node, absolute, posixpath.basename(absolute))

    async def list_files(self, node_id: str, directory: str, *, recursive: bool) -> list[FileInfo]:
        node = self._node(node_id)
        base = f"{NODE_ROOT}/{directory}".rstrip("/")
        if base != NODE_ROOT and base not in node.directories:
            raise NotFound(f"the directory {directory} does not exist", code="FileNotFound")
        found = []
        for absolute in [*node.directories, *node.files]:
            if not absolute.startswith(base + "/"):
                continue
            name = absolute[len(base) + 1 :]
            if recursive or "/" not in name:
                found.append(self._info(node, absolute, name))
        return sorted(found, key=lambda info: info.name)

    # --- pools ---------------------------------------------------------------------------------

    async def find_pool(self, pool_id: str) -> FoundPool | None:
        members = [
            node.setup
            for node in self.nodes.values()
            if node.setup.pool.id.lower() == pool_id.lower()
        ]
        if not members:
            return None
        first = members[0]
        return FoundPool(
            spec=first.pool,
            serial=first.serial,
            created=first.created,
            nodes=[(setup.node_id, setup.index) for setup in members],
        )

    async def has_pool(self, pool_id: str) -> bool:
        return await self.find_pool(pool_id) is not None

    async def remove_pool(self, pool_id: str) -> None:
        for node_id, node in list(self.nodes.items()):
            if node.setup.pool.id.lower() == pool_id.lower():
                del self.nodes[node_id]
