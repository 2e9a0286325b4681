"""Node keepers: one per compute node, keeping its container up and its agent linked.

A keeper creates the node's volume and container when missing, attaches to the agent, relays
its events to the executor, and when the link drops (the container died, was killed, or the
engine restarted) reports the loss and brings the node back, as Batch's node agent recovers.
Reboot restarts the container, keeping the node's volume; reimage replaces both.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Sequence
from dataclasses import replace
from enum import Enum
from typing import Any, Protocol

import anyio
import structlog

from jobprep_release.backends.administration import inbound_endpoints
from jobprep_release.backends.base import ElevationLevel, NodeState, UserAccount
from jobprep_release.backends.docker.core.codec import encode
from jobprep_release.backends.docker.core.executor import NodeSetup
from jobprep_release.backends.docker.node.agent import (
    AgentEvent,
    AgentLink,
    agent_script,
    file_answer,
    read_command,
    simple_command,
)
from jobprep_release.backends.docker.node.engine import (
    NODE_LABEL,
    POOL_LABEL,
    ROLE_LABEL,
    Engine,
)
from jobprep_release.backends.errors import BackendError, BackendUnavailable

log = structlog.get_logger("jobprep_release.docker")

SPEC_LABEL = "jobprep_release.pool-spec"
MOUNT_POINT = "/mnt/batch"
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
AGENT_READ_TIMEOUT = 5.0
"""Seconds a file read waits for the agent's answer before reading through the engine."""

# Memory per VM size (GiB), so a node container gets the memory its VM size would have.
VM_MEMORY_GIB = {
    "small": 1.75,
    "standard_a1_v2": 2,
    "standard_d1_v2": 3.5,
    "standard_d2_v2": 7,
    "standard_d2s_v3": 8,
    "standard_d2_v3": 8,
    "standard_d4s_v3": 16,
}
DEFAULT_MEMORY_GIB = 4

# What the agent (root) needs to make task directories for `_azbatch`, drop to that user and
# kill process groups; every other capability is dropped, for elevated tasks too.
AGENT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL")
# The agent's stdout is its link to the app (every task's start and exit, a small file's bytes
# hex-encoded), which the engine also logs: without a bound, a node's log grows by each line for
# as long as it lives (50 reads of a 64 KiB file: 6.4 MB). Two files of 1 MiB keep its last lines.
NODE_LOG_CONFIG = {"type": "json-file", "config": {"max-size": "1m", "max-file": "2"}}
PIDS_PER_GIB = 1024


class KeeperListener(Protocol):
    """What a keeper tells its executor."""

    def on_agent_event(self, node_id: str, event: AgentEvent) -> None:
        """A line from the node's agent."""

    def on_keeper_state(self, node_id: str, state: NodeState) -> None:
        """The node is being created or started."""

    def on_keeper_lost(self, node_id: str) -> None:
        """The agent's link dropped, or the node failed to start: whatever ran there is gone."""


class Mode(Enum):
    """What the keeper is doing with its node besides keeping it."""

    KEEP = "keep"
    REBOOT = "reboot"
    REIMAGE = "reimage"
    LEAVE = "leave"


def container_name(setup: NodeSetup) -> str:
    """The node's container and volume name: pool, index and the pool's serial."""
    return f"jobprep_release-{setup.pool.id.lower()}-{setup.index}-{setup.serial}"


def container_address(attrs: dict[str, Any]) -> str | None:
    """A running container's IP address, from its inspect document (the default bridge's, else
    the first network's); None when it has none."""
    settings = attrs.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for network in (settings.get("Networks") or {}).values():
        if network and network.get("IPAddress"):
            return str(network["IPAddress"])
    return None


def container_limits(vm_size: str) -> dict[str, Any]:
    """Memory and process limits that follow the VM size's memory."""
    gib = VM_MEMORY_GIB.get(vm_size.lower(), DEFAULT_MEMORY_GIB)
    return {"mem_limit": int(gib * 1024**3), "pids_limit": int(gib * PIDS_PER_GIB)}


def published_ports(setup: NodeSetup) -> dict[str, Any]:
    """Docker's ``port_bindings`` for the node's inbound endpoints: each NAT pool's backend
    port published on the host's loopback at the node's frontend port
    (`administration.inbound_endpoints`); nothing without NAT pools."""
    endpoints = inbound_endpoints(setup.pool, setup.index)
    if not endpoints:
        return {}
    bindings = {
        f"{endpoint.backend_port}/{endpoint.protocol}": (
            endpoint.public_ip_address,
            endpoint.frontend_port,
        )
        for endpoint in endpoints
    }
    return {"port_bindings": bindings}


def pool_labels_document(setup: NodeSetup) -> str:
    """The pool as the node's labels keep it (to find the pool again from its nodes), without
    its user accounts' passwords and SSH keys: labels are readable by anyone with the engine."""
    accounts = tuple(
        replace(account, password="", ssh_private_key=None) for account in setup.pool.user_accounts
    )
    spec = replace(setup.pool, user_accounts=accounts)
    return json.dumps({"spec": encode(spec), "serial": setup.serial, "created": setup.created})


def users_script(accounts: Sequence[UserAccount]) -> str:
    """Bash that creates the pool's user accounts on the node (as root, on every boot, after
    the task user and before the agent says hello: `agent_script`; an account that exists is
    left as it is): a group of the account's
    name (its `gid` when given), the user (its `uid` when given) with a home directory, and an
    admin account in the ``sudo`` group. Quiet on stdout, which is the agent's channel.

    Passwords and SSH keys are not installed: nodes run no login service (README)."""
    q = shlex.quote
    lines = []
    for account in accounts:
        name = q(account.name)
        gid = f"-g {account.gid} " if account.gid is not None else ""
        uid = f"-u {account.uid} " if account.uid is not None else ""
        admin = "-G sudo " if account.elevation_level is ElevationLevel.ADMIN else ""
        lines.append(
            f"id -u {name} >/dev/null 2>&1 || {{ getent group {name} >/dev/null || "
            f"groupadd {gid}{name}; useradd -m -s /bin/bash {uid}-g {name} {admin}{name}; }} "
            ">/dev/null"
        )
    return "".join(line + "\n" for line in lines)


class NodeKeeper:
    """Keeps one node alive and linked until cancelled or removed."""

    def __init__(self, engine: Engine, setup: NodeSetup, listener: KeeperListener) -> None:
        self._engine = engine
        self.setup = setup
        self.name = container_name(setup)
        self._listener = listener
        self.link: AgentLink | None = None
        self.address: str | None = None
        """The container's IP address, read when it last started (None before)."""
        self.mode = Mode.KEEP
        self._absent = setup.new
        """Whether the node's container is known not to exist (none looked for first)."""
        self.starts = False
        self.reads = False
        """Whether the linked agent takes `read` (its hello says so)."""
        self._reads: dict[str, tuple[anyio.Event, list[AgentEvent]]] = {}
        """Reads waiting for the agent's ``file`` line, by key."""
        self.flushing = False
        """Whether a `send` of what is queued is on its way (`DockerExecutor.start_process`)."""
        self._outbox: list[bytes] = []
        """Whether the agent takes `start` (the Perl agent's hello says so), else only `run`."""
        self._scope = anyio.CancelScope()
        self._lock = anyio.Lock()

    @property
    def node_id(self) -> str:
        return self.setup.node_id

    async def run(self) -> None:
        """Keep the node linked until removed."""
        with self._scope:
            attempt = 0
            while self.mode is not Mode.LEAVE:
                try:
                    async with self._lock:
                        link = await self._start()
                except BackendError as exc:
                    log.warning("node failed to start", node=self.node_id, error=exc.one_line())
                    self._listener.on_keeper_lost(self.node_id)
                else:
                    attempt = 0
                    self.link = link
                    try:
                        await self._relay(link)
                    finally:
                        self.link = None
                        self.reads = False
                        for done, _ in self._reads.values():
                            done.set()  # unanswered: read through the engine
                    self._outbox.clear()
                    if self.mode in (Mode.LEAVE, Mode.REIMAGE):
                        continue
                    if self.mode is not Mode.REBOOT:
                        log.warning("lost the link to a node", node=self.node_id)
                    self._listener.on_keeper_lost(self.node_id)
                await anyio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1

    async def _relay(self, link: AgentLink) -> None:
        while events := await link.receive():
            for event in events:
                if event.verb == "hello":
                    self.mode = Mode.KEEP
                    self.starts = "start" in event.words
                    self.reads = "read" in event.words
                elif event.verb == "file":
                    waiting = self._reads.get(event.key)
                    if waiting is not None:
                        waiting[1].append(event)
                        waiting[0].set()
                    continue
                self._listener.on_agent_event(self.node_id, event)

    async def _start(self) -> AgentLink:
        # A node the core has just allocated, or this keeper has just removed, has no
        # container: it is created without looking first (a name taken all the same, by what a
        # crash left, is found then).
        container = await self._create() if self._absent else None
        created = container is not None
        if container is None:
            container = await self._engine.get_container(self.name)
        if container is None:
            container = await self._create()
            created = container is not None
        if container is None:
            raise BackendUnavailable(f"node container {self.name} came and went; trying again")
        self._absent = False
        if self.mode is Mode.KEEP:
            self._listener.on_keeper_state(self.node_id, NodeState.STARTING)
        link = await AgentLink.attach(self._engine, container.id)
        if not created:
            await self._engine.call(container.reload, what=f"inspect {self.name}")
        if created or container.status != "running":
            await self._engine.call(container.start, what=f"start {self.name}")
            await self._engine.call(container.reload, what=f"inspect {self.name}")
        self.address = container_address(container.attrs)
        await link.send(simple_command("hello"))
        return link

    async def _create(self) -> Any | None:
        """The node's container (and volume, when missing), as created; None when a
        container of its name exists."""
        setup, spec = self.setup, self.setup.pool
        self._listener.on_keeper_state(self.node_id, NodeState.CREATING)
        labels = {
            POOL_LABEL: spec.id,
            NODE_LABEL: setup.node_id,
            ROLE_LABEL: "node",
            SPEC_LABEL: pool_labels_document(setup),
        }
        assert spec.image is not None
        return await self._engine.create_node_container(
            name=self.name,
            image=spec.image,
            command=["/bin/bash", "-c", agent_script(users_script(spec.user_accounts))],
            hostname=setup.node_id.lower()[:63],
            labels=labels,
            volume=self.name,
            mount_point=MOUNT_POINT,
            host_options={
                "restart_policy": {"Name": "unless-stopped"},
                "security_opt": ["no-new-privileges"],
                "cap_drop": ["ALL"],
                "cap_add": list(AGENT_CAPABILITIES),
                "log_config": NODE_LOG_CONFIG,
                **container_limits(spec.vm_size),
                **published_ports(setup),
            },
            ports=[(nat.backend_port, nat.protocol) for nat in spec.inbound_nat_pools],
        )

    def queue(self, payload: bytes) -> bool:
        """Keep `payload` for the agent, written with the next `send` (in the order given):
        the starts of one scheduling pass go in one write. False when the node has no link
        right now; what is queued when the link drops is dropped with it (the node is lost,
        and the core treats whatever it sent there as lost)."""
        link = self.link
        if link is None or link.closed:
            return False
        self._outbox.append(payload)
        return True

    async def send(self, payload: bytes = b"") -> bool:
        """Send what is queued, then `payload`, to the agent; False when the node has no link
        right now."""
        link = self.link
        if link is None or link.closed:
            return False
        if self._outbox:
            payload = b"".join(self._outbox) + payload
            self._outbox.clear()
        if not payload:
            return True
        try:
            await link.send(payload)
        except BackendError:
            return False
        return True

    async def read_file(self, root: str, relative: str) -> bytes | None:
        """The file at `relative` under `root` read by the node's agent (one line each way, no
        engine request): its bytes; None when the agent cannot tell (no link, an agent without
        `read`, a link lost or no answer in `AGENT_READ_TIMEOUT`) or does not send it (a
        symbolic link on the way, not a regular file, over `agent.AGENT_READ_LIMIT`): then the
        engine's archive answers, with its own rules for links. `NotFound` (``FileNotFound``)
        when a part of the path does not exist."""
        link = self.link
        if link is None or link.closed or not self.reads:
            return None
        key = uuid.uuid4().hex[:16]
        done, answer = anyio.Event(), list[AgentEvent]()
        self._reads[key] = (done, answer)
        try:
            if not await self.send(read_command(key, root, relative)):
                return None
            with anyio.move_on_after(AGENT_READ_TIMEOUT):
                await done.wait()
        finally:
            del self._reads[key]
        return file_answer(answer[0], relative) if answer else None

    async def _remove_container_and_volume(self) -> None:
        """Remove the node's container and volume (the caller removed its task containers:
        `ContainerTasks.remove_on_node`), each by name, absent or not."""
        await self._engine.remove_container(self.name)
        # A task container mounts the node's volume: while one exists (one made meanwhile,
        # none can be after the node container is gone) the engine refuses to remove the
        # volume (409 "volume is in use"); those go, and the volume is removed again.
        if not await self._engine.try_remove_volume(self.name):
            await self._remove_task_containers()
            await self._engine.remove_volume(self.name)
        self._absent = True

    async def _remove_task_containers(self) -> None:
        labels = {POOL_LABEL: self.setup.pool.id, NODE_LABEL: self.node_id, ROLE_LABEL: "task"}
        for task in await self._engine.list_containers(labels):
            await self._engine.remove_container(task.id)

    async def remove(self) -> None:
        """Stop keeping the node and delete its container and volume."""
        self.mode = Mode.LEAVE
        self._scope.cancel()
        if self.link is not None:
            self.link.close()
        async with self._lock:
            await self._remove_container_and_volume()

    async def reboot(self) -> None:
        """Restart the container; its volume, and so the node's files, stay."""
        self.mode = Mode.REBOOT
        container = await self._engine.get_container(self.name)
        if container is not None:
            await self._engine.call(container.restart, timeout=0, what="reboot node")

    async def reimage(self) -> None:
        """Replace the container and its volume: the node starts from a fresh disk."""
        self.mode = Mode.REIMAGE
        async with self._lock:
            if self.link is not None:
                self.link.close()
            await self._remove_container_and_volume()
