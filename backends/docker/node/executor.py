"""`DockerExecutor`: the core's `NodeExecutor` on a Docker engine, a container per node.

Each node is a container (kept by a `NodeKeeper`) whose main process is the agent
(`agent.AGENT_SCRIPT`); processes start through the agent from a launch script
(`launch.launch_script`), files are placed as a tar through the engine, read through the agent
(a small one) or the engine's archive API and listed with one ``find``. Agent lines become the
listener's events; service-side chores (removing directories) run through the agent too, and
their ends are kept here.
"""

from __future__ import annotations

import json
import resource
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import structlog

from jobprep_release.backends.base import NodeState, PoolSpec
from jobprep_release.backends.docker.core.codec import decode
from jobprep_release.backends.docker.core.environment import NODE_ROOT
from jobprep_release.backends.docker.core.executor import (
    ExecutorListener,
    FileInfo,
    FoundPool,
    NodeFile,
    NodeSetup,
    ProcessExit,
    ProcessSpec,
)
from jobprep_release.backends.docker.node.agent import (
    AGENT_DIR,
    AgentEvent,
    run_command,
    simple_command,
    start_command,
)
from jobprep_release.backends.docker.node.archive import archive
from jobprep_release.backends.docker.node.containers import ContainerTasks
from jobprep_release.backends.docker.node.engine import (
    NODE_LABEL,
    POOL_LABEL,
    ROLE_LABEL,
    ContainerSummary,
    Engine,
)
from jobprep_release.backends.docker.node.files import NodeFiles
from jobprep_release.backends.docker.node.keeper import SPEC_LABEL, NodeKeeper
from jobprep_release.backends.docker.node.launch import (
    launch_script,
    remove_tree_script,
    start_fields,
)
from jobprep_release.backends.errors import BackendError, NotFound

log = structlog.get_logger("jobprep_release.docker")

CHORE_TIMEOUT = 30.0
RESERVED_DESCRIPTORS = 256
"""File descriptors kept for everything but the nodes' agent links: the engine's connections
(at most `ENGINE_THREADS`), the state files, an endpoint's clients, the interpreter's own."""


def node_capacity() -> int:
    """How many nodes one process keeps: one agent link (a socket) each, within the process's
    file descriptor limit (``ulimit -n``) less `RESERVED_DESCRIPTORS`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(soft - RESERVED_DESCRIPTORS, 0)


class DockerExecutor:
    """Nodes as containers on `engine` (which the caller opens and closes)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._files = NodeFiles(engine)
        self._keepers: dict[str, NodeKeeper] = {}
        self._chores: dict[str, anyio.Event] = {}
        self._listener: ExecutorListener | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._containers = ContainerTasks(engine, self._on_container)

    async def run(
        self, listener: ExecutorListener, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        self._listener = listener
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._group = None
            self._close_links()
            self._keepers.clear()

    async def close(self) -> None:
        self._close_links()

    def _close_links(self) -> None:
        # Closing a link wakes its keeper's reader, which then sees the link closed.
        for keeper in self._keepers.values():
            if keeper.link is not None:
                keeper.link.close()

    # --- what keepers report -------------------------------------------------------------------

    def on_agent_event(self, node_id: str, event: AgentEvent) -> None:
        listener = self._listener
        if listener is None:
            return
        if event.verb == "hello":
            listener.on_node_hello(node_id, int(event.key))
            return
        if event.key in self._chores:
            if event.verb in ("exited", "unknown", "absent"):
                self._chores[event.key].set()
            return
        if event.verb == "started":
            listener.on_process_started(node_id, event.key, float(event.words[0]))
        elif event.verb == "exited":
            code, start, end, why = event.words[:4]
            exit = ProcessExit(int(code), float(start), float(end), why)
            listener.on_process_exited(node_id, event.key, exit)
        elif event.verb == "unknown":
            # The process is gone without a trace: the node restarted while we were away.
            listener.on_process_lost(node_id, event.key)
        elif event.verb == "absent":
            # The node never got the launch: the app died after recording it, before sending.
            listener.on_process_absent(node_id, event.key)

    def _on_container(self, node_id: str, verb: str, key: str, exit: ProcessExit | None) -> None:
        listener = self._listener
        if listener is None or exit is None:
            return
        if verb == "started":
            listener.on_process_started(node_id, key, exit.start, exit.container)
        else:
            listener.on_process_exited(node_id, key, exit)

    def on_keeper_state(self, node_id: str, state: NodeState) -> None:
        if self._listener is not None:
            self._listener.on_node_state(node_id, state)

    def on_keeper_lost(self, node_id: str) -> None:
        if self._listener is not None:
            self._listener.on_node_lost(node_id)

    # --- nodes ---------------------------------------------------------------------------------

    async def check_image(self, image: str) -> None:
        await self.engine.ensure_image(image)

    def create_node(self, node: NodeSetup) -> None:
        """Keep the node. Past `node_capacity` nodes (file descriptors: each node's agent link
        is a socket) the node is not made: it is reported unusable, and the log says why."""
        assert self._group is not None, "DockerExecutor.run is not running"
        if node.node_id not in self._keepers and len(self._keepers) >= node_capacity():
            log.error(
                "too many nodes for this process's file descriptor limit: the node stays "
                "unusable (raise `ulimit -n`, or remove nodes)",
                node=node.node_id,
                nodes=len(self._keepers),
                limit=node_capacity(),
            )
            self._group.start_soon(self._refuse, node.node_id)
            return
        keeper = NodeKeeper(self.engine, node, self)
        self._keepers[node.node_id] = keeper
        self._group.start_soon(keeper.run)
        configuration = node.pool.container_configuration
        for image in configuration.container_image_names if configuration else ():
            self._group.start_soon(self._prefetch, node.node_id, image)

    async def _prefetch(self, node_id: str, image: str) -> None:
        """Pull one of the pool's ``containerImageNames`` as the node starts (the service
        prefetches them); one that cannot be had fails the tasks that use it, later."""
        try:
            await self.engine.ensure_image(image)
        except BackendError as exc:
            log.warning("cannot prefetch a container image", node=node_id, error=exc.one_line())

    async def _refuse(self, node_id: str) -> None:
        await anyio.lowlevel.checkpoint()  # the listener hears of it after create_node returned
        self.on_keeper_lost(node_id)

    async def remove_node(self, node: NodeSetup) -> None:
        keeper = self._keepers.pop(node.node_id, None) or NodeKeeper(self.engine, node, self)
        await self._containers.remove_on_node(node.node_id)
        await keeper.remove()

    def _keeper(self, node_id: str) -> NodeKeeper:
        keeper = self._keepers.get(node_id)
        if keeper is None:
            raise NotFound(f"node {node_id} is not kept here", code="NodeNotFound")
        return keeper

    async def reboot_node(self, node_id: str) -> None:
        keeper = self._keeper(node_id)
        await self._containers.remove_on_node(node_id)
        await keeper.reboot()

    async def reimage_node(self, node_id: str) -> None:
        keeper = self._keeper(node_id)
        await self._containers.remove_on_node(node_id)
        await keeper.reimage()

    def node_address(self, node_id: str) -> str | None:
        keeper = self._keepers.get(node_id)
        return keeper.address if keeper is not None else None

    # --- processes -----------------------------------------------------------------------------

    async def start_process(self, node_id: str, key: str, spec: ProcessSpec) -> bool:
        keeper = self._keepers.get(node_id)
        if keeper is None:
            return False
        if spec.container is not None:
            if self._group is None:
                return False
            pool_id = keeper.setup.pool.id
            self._containers.start(self._group, pool_id, node_id, keeper.name, key, spec)
            return True
        if keeper.starts:
            # Queued, and written once the pass that started it has yielded: a pass starting
            # several tasks on a node sends them in one write (one frame for the engine).
            if not keeper.queue(start_command(key, start_fields(spec))):
                return False
            if self._group is None:
                return await keeper.send()
            if not keeper.flushing:
                keeper.flushing = True
                self._group.start_soon(self._flush, keeper)
            return True
        script = launch_script(spec, agent_mark=f"{AGENT_DIR}/{key}.why")
        return await keeper.send(run_command(key, script))

    @staticmethod
    async def _flush(keeper: NodeKeeper) -> None:
        keeper.flushing = False
        await keeper.send()

    async def kill_process(self, node_id: str, key: str) -> None:
        keeper = self._keepers.get(node_id)
        if keeper is None:
            return
        if self._containers.runs(key):
            await self._containers.kill(keeper.name, key)
        else:
            await keeper.send(simple_command("kill", key))

    async def query_processes(self, node_id: str, keys: Sequence[str]) -> None:
        keeper = self._keepers.get(node_id)
        if keeper is None or not keys or self._group is None:
            return
        # A container task still there is watched again (its wall clock is not known any
        # more); the agent answers for the others.
        found = await self._containers.find(keeper.setup.pool.id, keys)
        for key, container_id in found.items():
            self._group.start_soon(
                self._containers.watch, node_id, container_id, key, None, time.time()
            )
        rest = [key for key in keys if key not in found]
        if rest:
            await keeper.send(b"".join(simple_command("query", key) for key in rest))

    # --- files ---------------------------------------------------------------------------------

    async def put_files(self, node_id: str, files: Sequence[NodeFile]) -> None:
        tar = await anyio.to_thread.run_sync(archive, files)
        try:
            await self.engine.put_archive(self._keeper(node_id).name, tar)
        finally:
            tar.close()

    async def remove_tree(self, node_id: str, path: str) -> None:
        """Run ``rm -rf`` through the agent as root and wait (bounded) for it to end."""
        keeper = self._keepers.get(node_id)
        if keeper is None:
            return
        key = uuid.uuid4().hex[:16]
        done = anyio.Event()
        self._chores[key] = done
        try:
            if await keeper.send(run_command(key, remove_tree_script(path))):
                with anyio.move_on_after(CHORE_TIMEOUT):
                    await done.wait()
        finally:
            self._chores.pop(key, None)

    async def read_file(self, node_id: str, path: str) -> bytes:
        """Through the node's agent when it can answer (a small file, no link on the way: one
        line each way), else through the engine's archive (`NodeFiles.read_confined`)."""
        keeper = self._keeper(node_id)
        data = await keeper.read_file(NODE_ROOT, path)
        if data is not None:
            return data
        return await self._files.read_confined(keeper.name, path)

    def stream_file(
        self, node_id: str, path: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        return self._files.stream_confined(self._keeper(node_id).name, path, start, length)

    async def stat_file(self, node_id: str, path: str) -> FileInfo:
        return await self._files.stat(self._keeper(node_id).name, path)

    async def list_files(self, node_id: str, directory: str, *, recursive: bool) -> list[FileInfo]:
        return await self._files.list(self._keeper(node_id).name, directory, recursive=recursive)

    # --- pools ---------------------------------------------------------------------------------

    async def find_pool(self, pool_id: str) -> FoundPool | None:
        members = await self.engine.list_containers({POOL_LABEL: pool_id, ROLE_LABEL: "node"})
        if not members:
            return None
        try:
            document = json.loads(members[0].labels[SPEC_LABEL])
            spec = decode(PoolSpec, document["spec"])
            nodes = []
            for container in members:
                node_id = container.labels[NODE_LABEL]
                nodes.append((node_id, int(node_id.split("_")[1].split("-")[0])))
            found = FoundPool(
                spec=spec,
                serial=int(document["serial"]),
                created=float(document["created"]),
                nodes=nodes,
            )
        except (KeyError, ValueError, TypeError, IndexError):
            log.warning("ignoring node containers with unreadable labels", pool=pool_id)
            return None
        return found

    async def has_pool(self, pool_id: str) -> bool:
        labels = {POOL_LABEL: pool_id}
        if await self.engine.list_containers(labels):
            return True
        return bool(await self.engine.list_volumes(labels))

    async def remove_pool(self, pool_id: str) -> None:
        labels = {POOL_LABEL: pool_id}
        containers: list[ContainerSummary] = []
        volumes: list[Any] = []

        async def list_containers() -> None:
            containers.extend(await self.engine.list_containers(labels))

        async def list_volumes() -> None:
            volumes.extend(await self.engine.list_volumes(labels))

        # Listed at once (what is left after the nodes went: nothing, most often); the
        # containers go before the volumes they may mount.
        async with anyio.create_task_group() as group:
            group.start_soon(list_containers)
            group.start_soon(list_volumes)
        for container in containers:
            await self.engine.remove_container(container.id)
        for volume in volumes:
            await self.engine.remove_volume(volume.name)
