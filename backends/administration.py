"""Pool sizes and node administration: the backend interface and models for what Batch users do
to a pool's nodes beyond the sample (issue 14): resize with targets and a deallocation option,
Stop Pool Resize, Remove Nodes, Disable/Enable Node Scheduling, Get Node, List Pool Node Counts,
List Supported Images.

Kept apart from `BatchBackend` (what the sample needs): both backends implement both, and the
contract tests drive this one on each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from jobprep_release.backends.base import (
    ComputeNode,
    DisableSchedulingOption,
    ImageReference,
    InboundEndpoint,
    NodeDeallocationOption,
    NodeState,
    PoolSpec,
)
from jobprep_release.backends.models.value import Value

MAX_NODES_PER_REMOVAL = 100
"""Remove Nodes takes at most 100 node ids (REST NodeRemoveOptions.nodeList)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NodeCounts(Value):
    """A pool's nodes of one kind (dedicated or spot/low-priority) by state, named as
    azure-batch's `BatchNodeCounts` names them (REST: camelCase), and their `total`."""

    creating: int = 0
    idle: int = 0
    offline: int = 0
    preempted: int = 0
    rebooting: int = 0
    reimaging: int = 0
    running: int = 0
    starting: int = 0
    start_task_failed: int = 0
    leaving_pool: int = 0
    unknown: int = 0
    unusable: int = 0
    waiting_for_start_task: int = 0
    deallocated: int = 0
    deallocating: int = 0
    upgrading_os: int = 0
    total: int = 0


_COUNTED = {field.name for field in dataclasses.fields(NodeCounts)} - {"total"}
_FIELD_BY_STATE = {
    "leavingpool": "leaving_pool",
    "starttaskfailed": "start_task_failed",
    "waitingforstarttask": "waiting_for_start_task",
    "upgradingos": "upgrading_os",
}


def count_states(states: Iterable[NodeState | str]) -> NodeCounts:
    """Nodes by state (a state `NodeCounts` has no field for counts as ``unknown``)."""
    counts = dict.fromkeys(_COUNTED, 0)
    total = 0
    for state in states:
        value = str(state)
        name = _FIELD_BY_STATE.get(value, value)
        counts[name if name in _COUNTED else "unknown"] += 1
        total += 1
    return NodeCounts(**counts, total=total)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PoolNodeCounts(Value):
    """One entry of List Pool Node Counts."""

    pool_id: str
    dedicated: NodeCounts
    low_priority: NodeCounts


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SupportedImage(Value):
    """One entry of List Supported Images (REST BatchSupportedImage): an image and the node
    agent SKU that Add Pool takes with it."""

    node_agent_sku_id: str
    image_reference: ImageReference
    os_type: str = "linux"
    verification_type: str = "verified"
    capabilities: tuple[str, ...] = ()


LOCAL_NODE_AGENT_SKU = "batch.node.debian 12"
"""The node agent SKU of the docker backend's nodes (Debian 12 containers)."""

LOCAL_IMAGES = (
    SupportedImage(
        "batch.node.ubuntu 24.04",
        ImageReference("canonical", "ubuntu-24_04-lts", "server", "latest"),
    ),
    SupportedImage(
        "batch.node.ubuntu 22.04",
        ImageReference("canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "latest"),
    ),
    SupportedImage(LOCAL_NODE_AGENT_SKU, ImageReference("debian", "debian-12", "12", "latest")),
)
"""Marketplace images Linux pools commonly name (publisher, offer, sku as the service lists
them for these node agent SKUs), each run locally on the node image."""


def local_catalogue(node_image: str | None) -> list[SupportedImage]:
    """List Supported Images on the docker backend: `LOCAL_IMAGES`, then the node image itself
    (as an image id naming a Docker image, the way a pool chooses one) when one is set."""
    images = list(LOCAL_IMAGES)
    if node_image:
        reference = ImageReference(virtual_machine_image_id=node_image)
        images.append(
            SupportedImage(LOCAL_NODE_AGENT_SKU, reference, verification_type="unverified")
        )
    return images


LOCAL_PUBLIC_ADDRESS = "127.0.0.1"
"""Where a local node's inbound endpoints are published: the Docker host's loopback."""


def inbound_endpoints(spec: PoolSpec, index: int) -> tuple[InboundEndpoint, ...]:
    """The node at `index` (1-based) of a pool, reached through each of its inbound NAT pools:
    the service names the endpoint ``<pool name>.<n>`` and gives each node a port of the
    frontend range (the first node the range's start, as recorded); locally the port is
    published on the host's loopback, the n-th port of the range for the node of index n+1
    (wrapping round the range)."""
    endpoints = []
    for nat in spec.inbound_nat_pools:
        size = nat.frontend_port_range_end - nat.frontend_port_range_start + 1
        offset = (index - 1) % max(size, 1)
        endpoints.append(
            InboundEndpoint(
                name=f"{nat.name}.{index - 1}",
                protocol=nat.protocol,
                public_ip_address=LOCAL_PUBLIC_ADDRESS,
                public_fqdn="localhost",
                frontend_port=nat.frontend_port_range_start + offset,
                backend_port=nat.backend_port,
            )
        )
    return tuple(endpoints)


@runtime_checkable
class NodeAdministration(Protocol):
    """Pool sizes and nodes as Batch users manage them. Errors are the project's, with the
    service's codes (`Conflict` ``PoolBeingResized``, `NotFound` ``NodeNotFound``, ...)."""

    async def set_pool_targets(
        self,
        pool_id: str,
        target_dedicated_nodes: int,
        target_low_priority_nodes: int = 0,
        *,
        resize_timeout: timedelta | None = None,
        deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
    ) -> None:
        """Resize Pool with both targets, the resize's timeout and what happens to the tasks
        of nodes that leave; 409 ``PoolBeingResized`` unless the pool is steady."""
        ...

    async def stop_pool_resize(self, pool_id: str) -> None:
        """Stop Pool Resize: ``stopping``, then ``steady`` with the nodes the pool has."""
        ...

    async def remove_nodes(
        self,
        pool_id: str,
        node_ids: Sequence[str],
        *,
        resize_timeout: timedelta | None = None,
        deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
    ) -> None:
        """Remove Nodes (at most `MAX_NODES_PER_REMOVAL`): the targets go down by as many."""
        ...

    async def disable_node_scheduling(
        self,
        pool_id: str,
        node_id: str,
        option: DisableSchedulingOption = DisableSchedulingOption.REQUEUE,
    ) -> None:
        """Disable Node Scheduling: no new task goes to the node."""
        ...

    async def enable_node_scheduling(self, pool_id: str, node_id: str) -> None:
        """Enable Node Scheduling."""
        ...

    async def get_node(self, pool_id: str, node_id: str) -> ComputeNode:
        """One node, every property of `ComputeNode`; `NotFound` (``NodeNotFound``)."""
        ...

    async def list_pool_node_counts(self) -> list[PoolNodeCounts]:
        """List Pool Node Counts: every pool's nodes by state, dedicated and low-priority."""
        ...

    async def list_supported_images(self) -> list[SupportedImage]:
        """List Supported Images: images and the node agent SKUs Add Pool takes with them."""
        ...
