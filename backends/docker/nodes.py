"""Node keepers: one per compute node, keeping its container up and its agent linked.

A keeper creates the node's volume and container when missing, attaches to the agent, relays
its events to the service, and when the link drops (the container died, was killed, or the
engine restarted) reports the loss and brings the node back, as Batch's node agent recovers.
Reboot restarts the container, keeping the node's volume; reimage replaces both.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import anyio
import structlog

from jobprep_release.backends.base import NodeState
from jobprep_release.backends.docker.agent import (
    AGENT_SCRIPT,
    AgentEvent,
    AgentLink,
    simple_command,
)
from jobprep_release.backends.docker.codec import encode
from jobprep_release.backends.docker.engine import NODE_LABEL, POOL_LABEL, ROLE_LABEL, Engine
from jobprep_release.backends.docker.state import NodeRecord, PoolRecord
from jobprep_release.backends.errors import BackendError

log = structlog.get_logger("jobprep_release.docker")

SPEC_LABEL = "jobprep_release.pool-spec"
MOUNT_POINT = "/mnt/batch"
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)

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
PIDS_PER_GIB = 1024


class NodeListener(Protocol):
    """What a keeper tells the service."""

    def on_agent_event(self, node: NodeRecord, event: AgentEvent) -> None:
        """A line from the node's agent."""

    def on_node_lost(self, node: NodeRecord) -> None:
        """The agent's link dropped: whatever ran there is gone."""


def container_limits(vm_size: str) -> dict[str, Any]:
    """Memory and process limits that follow the VM size's memory."""
    gib = VM_MEMORY_GIB.get(vm_size.lower(), DEFAULT_MEMORY_GIB)
    return {"mem_limit": int(gib * 1024**3), "pids_limit": int(gib * PIDS_PER_GIB)}


def pool_labels_document(pool: PoolRecord) -> str:
    return json.dumps({"spec": encode(pool.spec), "serial": pool.serial, "created": pool.created})


class NodeKeeper:
    """Keeps one node alive and linked until cancelled or removed."""

    def __init__(
        self, engine: Engine, pool: PoolRecord, node: NodeRecord, listener: NodeListener
    ) -> None:
        self._engine = engine
        self._pool = pool
        self.node = node
        self._listener = listener
        self.link: AgentLink | None = None
        self._scope = anyio.CancelScope()
        self._lock = anyio.Lock()

    async def run(self, on_link: Any) -> None:
        """Keep the node linked; `on_link(link)` runs after each (re)attach."""
        with self._scope:
            attempt = 0
            while self.node.state is not NodeState.LEAVING_POOL:
                try:
                    async with self._lock:
                        link = await self._start()
                except BackendError as exc:
                    log.warning("node failed to start", node=self.node.id, error=exc.one_line())
                    self.node.state = NodeState.UNUSABLE
                    self._listener.on_node_lost(self.node)
                else:
                    attempt = 0
                    self.link = link
                    await on_link(link)
                    await self._relay(link)
                    self.link = None
                    if self.node.state in (NodeState.LEAVING_POOL, NodeState.REIMAGING):
                        continue
                    if self.node.state is not NodeState.REBOOTING:
                        log.warning("lost the link to a node", node=self.node.id)
                        self.node.state = NodeState.UNUSABLE
                    self._listener.on_node_lost(self.node)
                await anyio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1

    async def _relay(self, link: AgentLink) -> None:
        while events := await link.receive():
            for event in events:
                self._listener.on_agent_event(self.node, event)

    async def _start(self) -> AgentLink:
        container = await self._engine.get_container(self.node.container)
        if container is None:
            container = await self._create()
        if self.node.state not in (NodeState.REBOOTING, NodeState.REIMAGING):
            self.node.state = NodeState.STARTING
        link = await AgentLink.attach(self._engine.api, container.id)
        await self._engine.call(container.reload, what=f"inspect {self.node.container}")
        if container.status != "running":
            await self._engine.call(container.start, what=f"start {self.node.container}")
        await link.send(simple_command("hello"))
        return link

    async def _create(self) -> Any:
        node, spec = self.node, self._pool.spec
        node.state = NodeState.CREATING
        labels = {
            POOL_LABEL: spec.id,
            NODE_LABEL: node.id,
            ROLE_LABEL: "node",
            SPEC_LABEL: pool_labels_document(self._pool),
        }
        await self._engine.create_volume(node.volume, labels)
        assert spec.image is not None
        return await self._engine.create_node_container(
            name=node.container,
            image=spec.image,
            command=["/bin/bash", "-c", AGENT_SCRIPT],
            hostname=node.id.lower()[:63],
            labels=labels,
            volume=node.volume,
            mount_point=MOUNT_POINT,
            host_options={
                "restart_policy": {"Name": "unless-stopped"},
                "security_opt": ["no-new-privileges"],
                "cap_drop": ["ALL"],
                "cap_add": list(AGENT_CAPABILITIES),
                **container_limits(spec.vm_size),
            },
        )

    async def send(self, payload: bytes) -> bool:
        """Send to the agent; False when the node has no link right now."""
        link = self.link
        if link is None or link.closed:
            return False
        try:
            await link.send(payload)
        except BackendError:
            return False
        return True

    async def _remove_container_and_volume(self) -> None:
        container = await self._engine.get_container(self.node.container)
        if container is not None:
            await self._engine.remove_container(container.id)
        await self._engine.remove_volume(self.node.volume)

    async def remove(self) -> None:
        """Stop keeping the node and delete its container and volume."""
        self.node.state = NodeState.LEAVING_POOL
        self._scope.cancel()
        if self.link is not None:
            self.link.close()
        async with self._lock:
            await self._remove_container_and_volume()

    async def reboot(self) -> None:
        """Restart the container; its volume, and so the node's files, stay."""
        self.node.state = NodeState.REBOOTING
        container = await self._engine.get_container(self.node.container)
        if container is not None:
            await self._engine.call(container.restart, timeout=0, what="reboot node")

    async def reimage(self) -> None:
        """Replace the container and its volume: the node starts from a fresh disk."""
        self.node.state = NodeState.REIMAGING
        self.node.boot = 0
        async with self._lock:
            if self.link is not None:
                self.link.close()
            await self._remove_container_and_volume()
