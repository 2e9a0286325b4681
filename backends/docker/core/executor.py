"""The seam between the Batch core and whatever runs processes on nodes.

The core decides Batch's semantics (what runs where and when, its variables, directories and
user, retries, requeues, outcomes); a `NodeExecutor` only keeps nodes and runs what it is told,
and reports back through an `ExecutorListener`: a process started or exited, a node said hello
(with its boot number) or was lost. Two executors ship: `DockerExecutor` (a container per node,
`jobprep_release.backends.docker.node`) and `FakeExecutor` (in memory, on a controllable clock,
`jobprep_release.backends.docker.core.fake`), as httpx ships `MockTransport` beside its transports.

Paths on a node are absolute (``/mnt/batch/tasks/...``) when the core runs something, and
relative to the node's root (``shared/x.txt``) when files are read; a relative path has been
checked by the core (`rules.confined`) and never holds ``..``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import anyio.abc

from jobprep_release.backends.base import NodeState, PoolSpec, TaskContainerExecutionInfo
from jobprep_release.backends.models.value import Value

NOT_FOUND = "notfound"
"""`ProcessExit.why` when the program of the command line does not exist on the node."""
IMAGE_NOT_FOUND = "noimage"
"""`ProcessExit.why` when a container process's image is not on the node and cannot be pulled."""
BAD_CONTAINER_SETTINGS = "badcontainer"
"""`ProcessExit.why` when a container process's run options cannot be applied."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NodeSetup(Value):
    """Everything an executor needs to create, find again or remove one node."""

    pool: PoolSpec
    serial: int
    """The pool's random serial (node ids and executor-side names carry it)."""
    created: float
    """When the pool was created, epoch seconds."""
    node_id: str
    index: int
    """The node's 1-based position in its pool."""
    new: bool = False
    """The core allocated the node just now (`pools.add_nodes`): the executor has nothing of
    it yet, short of what a crash left, so it may create the node without looking first."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FoundPool(Value):
    """A pool an executor knows from its nodes, when the core's state has lost it."""

    spec: PoolSpec
    serial: int
    created: float
    nodes: Sequence[tuple[str, int]]
    """(node id, index) of each node."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ContainerRun(Value):
    """Run a process in a container from `image` beside its node instead of on the node: the
    node's ``/mnt/batch`` tree mounted at the same path, `run_options` (``docker create``
    options, split into words) applied, in `working_dir`, or the image's own when None."""

    image: str
    run_options: tuple[str, ...] = ()
    working_dir: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ProcessSpec(Value):
    """One process to run on a node, fully decided by the core.

    The executor makes `task_dir` and `working_dir` (owned by the task's user unless
    `elevated`), runs `argv` there without a shell with exactly `environment`, as root when
    `elevated`, as `user` (one of the pool's user accounts, `NodeSetup.pool.user_accounts`,
    which then owns the task's directories and files) when given, else as the node's non-admin
    task user, with stdout and stderr in `stdout_path` and `stderr_path`, and kills its whole
    process tree once `wall_clock` has passed. With `container`, the process runs in a
    container of its own (`ContainerRun`), which is removed once it has ended.
    """

    argv: tuple[str, ...]
    environment: Mapping[str, str]
    task_dir: str
    working_dir: str
    stdout_path: str
    stderr_path: str
    elevated: bool = False
    wall_clock: timedelta | None = None
    user: str | None = None
    container: ContainerRun | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ProcessExit(Value):
    """How a process ended: exit `code`, `start` and `end` (epoch seconds) and `why` (``-``,
    or `NOT_FOUND` when the program did not exist)."""

    code: int
    start: float
    end: float
    why: str = "-"
    container: TaskContainerExecutionInfo | None = None
    """The container it ran in, for a container process (REST TaskContainerExecutionInfo)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NodeFile(Value):
    """A file to place on a node: absolute `path`, contents (`data`, or the local file `source`
    on the service's machine, read as it is copied: a large download never held in memory),
    Unix permission bits, and whether root (`elevated`) or the task user owns it."""

    path: str
    data: bytes = b""
    mode: int = 0o770
    elevated: bool = False
    source: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FileInfo(Value):
    """One file or directory: its path (relative to what was asked), type, size, times."""

    name: str
    is_directory: bool
    size: int
    modified: datetime
    mode: str = field(default="100644")
    """The Unix mode in octal, type included (``100644``, ``40755``), as Linux nodes report."""


class ExecutorListener(Protocol):
    """What an executor tells the core. Called on the event loop; never blocks, never raises."""

    def on_node_state(self, node_id: str, state: NodeState) -> None:
        """The node is `creating`, `starting` or `unusable` (it failed to start)."""

    def on_node_hello(self, node_id: str, boot: int) -> None:
        """The node is up; `boot` grows by one with each start (a reboot), from 1."""

    def on_node_lost(self, node_id: str) -> None:
        """The node went away (it died, or its link dropped): whatever ran there is gone."""

    def on_process_started(
        self,
        node_id: str,
        key: str,
        start: float,
        container: TaskContainerExecutionInfo | None = None,
    ) -> None:
        """The process under `key` started at `start` (epoch seconds); `container`, for a
        container process, the container it runs in."""

    def on_process_exited(self, node_id: str, key: str, exit: ProcessExit) -> None:
        """The process under `key` ended (now, or while nobody listened: see `query`)."""

    def on_process_lost(self, node_id: str, key: str) -> None:
        """The node ran `key` on an earlier boot, which ended without its exit: it will never
        report it."""

    def on_process_absent(self, node_id: str, key: str) -> None:
        """Asked about `key`, the node says it never had it: the launch never reached it."""


class NodeExecutor(Protocol):
    """Keeps compute nodes and runs processes on them. Every method may raise `BackendError`."""

    async def run(
        self, listener: ExecutorListener, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Serve until cancelled, reporting to `listener`; `task_status.started()` once nodes
        may be added. Nodes and processes outlive a cancelled `run`: a later `run` (a new core
        after a crash) finds them again through `create_node` and `query_processes`."""
        ...

    async def close(self) -> None:
        """Release connections (nodes keep running)."""
        ...

    async def check_image(self, image: str) -> None:
        """Make sure nodes can be made from `image`; `NotFound` (``ImageNotFound``) if not."""
        ...

    def create_node(self, node: NodeSetup) -> None:
        """Keep `node` up from now on: create it when it does not exist, attach to it when it
        does; report `creating`/`starting`, then hello. Returns at once."""
        ...

    def node_address(self, node_id: str) -> str | None:
        """The node's IP address on its network (dotted quad), None while not known."""
        ...

    async def remove_node(self, node: NodeSetup) -> None:
        """Stop keeping the node and delete it and its disk; what runs there is gone."""
        ...

    async def reboot_node(self, node_id: str) -> None:
        """Restart the node: processes end without a trace, files stay; hello follows."""
        ...

    async def reimage_node(self, node_id: str) -> None:
        """Give the node a fresh disk: processes and files gone; hello with boot 1 follows."""
        ...

    async def start_process(self, node_id: str, key: str, spec: ProcessSpec) -> bool:
        """Start `spec` under `key` (unique, chosen by the core); False when the node cannot be
        reached now (nothing started). Started and exited are reported later. A key the node
        had already is not started again: it is answered as `query_processes` answers."""
        ...

    async def kill_process(self, node_id: str, key: str) -> None:
        """Kill the process under `key` and its whole process tree (no-op when not running)."""
        ...

    async def query_processes(self, node_id: str, keys: Sequence[str]) -> None:
        """Ask the node about `keys`: each is answered by an exited event (with its recorded
        exit, even from before a restart of the core), nothing (still running), a lost one (run on
        an earlier boot, never ended) or an absent one (the node never had it)."""
        ...

    async def put_files(self, node_id: str, files: Sequence[NodeFile]) -> None:
        """Place `files` on the node (parents made as needed), before a process needs them."""
        ...

    async def remove_tree(self, node_id: str, path: str) -> None:
        """Delete the directory `path` (absolute) and everything below it; bounded wait."""
        ...

    async def read_file(self, node_id: str, path: str) -> bytes:
        """A regular file's bytes, `path` relative to the node's root. `NotFound`
        (``FileNotFound``) when absent; `InvalidRequest` when a link leads out of the root."""
        ...

    def stream_file(
        self, node_id: str, path: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """`read_file`'s bytes from offset `start`, `length` of them (to the end when None;
        fewer when the file is shorter), as chunks read while they are consumed: never the whole
        file in memory. The checks are `read_file`'s, raised at the first iteration."""
        ...

    async def stat_file(self, node_id: str, path: str) -> FileInfo:
        """Properties of a file or directory, `path` relative to the node's root (a link at
        the end is not followed, and is not a file). `NotFound` (``FileNotFound``) when absent."""
        ...

    async def list_files(self, node_id: str, directory: str, *, recursive: bool) -> list[FileInfo]:
        """Files and directories below `directory` (relative to the root; "" for the root),
        names relative to it, sorted; only the first level unless `recursive`."""
        ...

    async def find_pool(self, pool_id: str) -> FoundPool | None:
        """A pool whose nodes exist (found by the executor's own records), or None."""
        ...

    async def has_pool(self, pool_id: str) -> bool:
        """Whether anything of the pool (a node, a disk) still exists."""
        ...

    async def remove_pool(self, pool_id: str) -> None:
        """Delete whatever of the pool remains (nodes not in the core's state included)."""
        ...
