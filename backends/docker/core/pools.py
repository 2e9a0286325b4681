"""Pools and their compute nodes: create, update, resize, delete, adopt; reboot and reimage a
node; and what the executor reports of nodes (creating, starting, hello with a boot number, lost).

A node's state is recorded where it changes: `starting` until it says hello, then
`waitingforstarttask` while the pool's start task holds it (`starttask`), then `idle` or
`running` (the scheduler moves it between the two as slots fill and empty), or
`starttaskfailed`; `rebooting` and `reimaging` until its next hello, `unusable` when it failed
to start or its link dropped, and `leavingpool` while it is removed. The pool's allocation
state is `resizing` while any node is being created, `steady` otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog

from jobprep_release.backends.base import (
    AllocationState,
    NodeState,
    PoolSpec,
    PoolUpdate,
    StartTaskSpec,
    check_id,
)
from jobprep_release.backends.docker.core import outcomes, rules, starttask
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.records import (
    NodeRecord,
    PoolRecord,
    move,
    new_history,
    touch,
)
from jobprep_release.backends.errors import AlreadyExists, InvalidRequest, NotSupported

log = structlog.get_logger("jobprep_release.docker")

MAX_SLOTS_PER_NODE = 256


async def create_pool(core: Core, spec: PoolSpec) -> None:
    check_id("pool", spec.id)
    await adopt(core, spec.id)
    existing = core.state.pools.get(spec.id.lower())
    if existing is not None:
        rules.refuse_if_deleting(existing)
        raise AlreadyExists(f"pool {spec.id} already exists", code="PoolExists")
    rules.check_node_count(spec.target_dedicated_nodes)
    if spec.target_low_priority_nodes:
        raise NotSupported("low-priority nodes are not emulated by the docker backend")
    if not 1 <= spec.task_slots_per_node <= MAX_SLOTS_PER_NODE:
        raise InvalidRequest(
            f"task slots per node must be 1 to {MAX_SLOTS_PER_NODE}",
            code="InvalidPropertyValue",
        )
    image = spec.image or core.settings.default_image
    if image is not None:
        await core.executor.check_image(image)
    spec = replace(spec, image=image)
    now = core.now()
    pool = PoolRecord(
        spec=spec,
        serial=random.randrange(10**9, 10**10),
        created=now,
        history=new_history(now),
        allocation_state_time=now,
    )
    core.state.pools[spec.id.lower()] = pool
    add_nodes(core, pool, spec.target_dedicated_nodes)
    await core.persist()
    log.info("pool created", pool=spec.id, nodes=spec.target_dedicated_nodes, image=image)


def add_nodes(core: Core, pool: PoolRecord, count: int) -> None:
    now = core.now()
    started = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dt%H%M%Sz")
    first = max((node.index for node in pool.nodes), default=0) + 1
    for index in range(first, first + count):
        node = NodeRecord(
            id=f"tvm-{pool.serial}_{index}-{started}", index=index, history=new_history(now)
        )
        pool.nodes.append(node)
        core.executor.create_node(core.setup(pool, node))
    refresh_allocation(core, pool)


def refresh_allocation(core: Core, pool: PoolRecord) -> None:
    """Record the pool's allocation state: resizing while a node is being created."""
    creating = any(node.state is NodeState.CREATING for node in pool.nodes)
    state = AllocationState.RESIZING if creating else AllocationState.STEADY
    if state is not pool.allocation_state:
        now = core.now()
        pool.allocation_state = state
        pool.allocation_state_time = now
        touch(pool, now)


async def resize_pool(
    core: Core, pool_id: str, target_dedicated_nodes: int, resize_timeout: timedelta | None = None
) -> None:
    """Resize; `resize_timeout` (when given) becomes the pool's, as the service sets it."""
    pool = core.pool(pool_id)
    rules.refuse_if_deleting(pool)
    rules.check_node_count(target_dedicated_nodes)
    current = len(pool.nodes)
    pool.spec = replace(
        pool.spec,
        target_dedicated_nodes=target_dedicated_nodes,
        resize_timeout=resize_timeout or pool.spec.resize_timeout,
    )
    touch(pool, core.now())
    if target_dedicated_nodes > current:
        add_nodes(core, pool, target_dedicated_nodes - current)
    for node in pool.nodes[target_dedicated_nodes:]:
        # Inferred: as with the service's default deallocation option (requeue), running
        # tasks go back to the queue and the node leaves at once.
        await remove_node(core, pool, node)
    refresh_allocation(core, pool)
    await core.persist()


# PoolSpec fields Update Pool changes "only when the pool is empty" (REST BatchPoolUpdateOptions),
# by the REST property that sets them.
_EMPTY_POOL_ONLY = {
    "display_name": "displayName",
    "vm_size": "vmSize",
    "enable_inter_node_communication": "enableInterNodeCommunication",
    "task_slots_per_node": "taskSlotsPerNode",
    "node_fill_type": "taskSchedulingPolicy",
    "image_reference": "virtualMachineConfiguration",
    "node_agent_sku_id": "virtualMachineConfiguration",
}


async def update_pool(core: Core, pool_id: str, update: PoolUpdate) -> None:
    """Update Pool: the properties `update` gives replace the pool's. A new start task runs on
    nodes that join the pool or boot afresh from now on (the service's rule); the properties
    the service changes only on an empty pool are refused with 400 ``PropertyCannotBeUpdated``
    (inferred: the status and code the service's management API gives for such a property)
    naming the property while the pool has nodes."""
    pool = core.pool(pool_id)
    rules.refuse_if_deleting(pool)
    spec = update.applied_to(pool.spec)
    if pool.nodes:
        for name, rest in _EMPTY_POOL_ONLY.items():
            if getattr(spec, name) != getattr(pool.spec, name):
                raise InvalidRequest(
                    f"{rest} can be updated only when the pool is empty "
                    f"(pool {pool_id} has {len(pool.nodes)} nodes)",
                    code="PropertyCannotBeUpdated",
                )
    if not 1 <= spec.task_slots_per_node <= MAX_SLOTS_PER_NODE:
        raise InvalidRequest(
            f"task slots per node must be 1 to {MAX_SLOTS_PER_NODE}",
            code="InvalidPropertyValue",
        )
    if spec.image_reference != pool.spec.image_reference:
        spec = replace(spec, image=spec.image or core.settings.default_image)
        if spec.image is not None:
            await core.executor.check_image(spec.image)
    await _set_spec(core, pool, spec)


async def replace_pool_properties(
    core: Core, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
) -> None:
    """Replace Pool Properties: the start task (None removes it) and the metadata, all of it;
    a start task applies on nodes that join the pool or boot afresh from now on."""
    pool = core.pool(pool_id)
    rules.refuse_if_deleting(pool)
    await _set_spec(core, pool, replace(pool.spec, start_task=start_task, metadata=metadata))


async def _set_spec(core: Core, pool: PoolRecord, spec: PoolSpec) -> None:
    pool.spec = spec
    touch(pool, core.now())
    await core.persist()
    log.info("pool updated", pool=spec.id)


async def remove_node(core: Core, pool: PoolRecord, node: NodeRecord) -> None:
    move(node, NodeState.LEAVING_POOL, core.now())
    outcomes.lose_node_work(core, node.id)
    await core.executor.remove_node(core.setup(pool, node))
    pool.nodes.remove(node)
    core.poke()


async def adopt(core: Core, pool_id: str) -> None:
    """Take back a pool this state does not know from what the executor finds of it: the
    state was lost, or another run (an app in a container, say) made it. Only pools asked for
    by id are adopted, so a run never takes over pools it was not told about."""
    if pool_id.lower() in core.state.pools:
        return
    found = await core.executor.find_pool(pool_id)
    if found is None:
        return
    now = core.now()
    pool = PoolRecord(
        spec=found.spec,
        serial=found.serial,
        created=found.created,
        history=new_history(found.created),
        allocation_state_time=now,
    )
    for node_id, index in sorted(found.nodes, key=lambda item: item[1]):
        node = NodeRecord(id=node_id, index=index, history=new_history(now))
        node.state = NodeState.STARTING
        pool.nodes.append(node)
    core.state.pools[pool_id.lower()] = pool
    for node in pool.nodes:
        core.executor.create_node(core.setup(pool, node))
    log.info("adopted pool from its nodes", pool=pool_id, nodes=len(pool.nodes))


async def drop_vanished_pools(core: Core) -> None:
    """Forget pools of which nothing is left: deleted by another run."""
    for key, pool in list(core.state.pools.items()):
        if not await core.executor.has_pool(pool.spec.id):
            log.info("forgetting a pool deleted elsewhere", pool=pool.spec.id)
            del core.state.pools[key]


# --- nodes -------------------------------------------------------------------------------------


async def reboot_node(core: Core, pool_id: str, node_id: str) -> None:
    """Restart the node; running tasks are requeued, files stay."""
    node = core.find_node(pool_id, node_id)
    move(node, NodeState.REBOOTING, core.now())
    outcomes.lose_node_work(core, node.id)
    await core.executor.reboot_node(node.id)
    core.poke()


async def reimage_node(core: Core, pool_id: str, node_id: str) -> None:
    """Give the node a fresh disk; running tasks are requeued, every job's preparation task
    runs again there before its next task."""
    node = core.find_node(pool_id, node_id)
    move(node, NodeState.REIMAGING, core.now())
    node.boot = 0
    starttask.forget(node)
    outcomes.lose_node_work(core, node.id)
    for job in list(core.state.jobs.values()):
        if job.nodes.pop(node.id, None) is not None:
            # A release task waiting for this node to come back has nothing to run on.
            outcomes.maybe_complete(core, job)
    await core.executor.reimage_node(node.id)
    core.poke()


def on_node_state(core: Core, node_id: str, state: NodeState) -> None:
    found = core.node_by_id(node_id)
    if found is None:
        return
    pool, node = found
    on_its_way = (NodeState.LEAVING_POOL, NodeState.REBOOTING, NodeState.REIMAGING)
    if node.state in on_its_way and state is not NodeState.CREATING:
        return  # its hello (or its removal) settles it
    move(node, state, core.now())
    refresh_allocation(core, pool)
    core.changed()


def on_node_hello(core: Core, node_id: str, boot: int) -> list[str]:
    """The node is up with boot number `boot`. Returns the keys to ask it about: what the
    core saw start there and not end, before this node came up; none when the node was up
    on this boot already."""
    found = core.node_by_id(node_id)
    if found is None:
        return []
    pool, node = found
    # A node says hello once per link and again when asked; a second hello of the same boot
    # to this core changes nothing, and asking it about processes started since the first
    # would race their start (the agent would not know them yet, and they would run twice).
    repeated = core.greeted.get(node.id) == boot
    core.greeted[node.id] = boot
    if node.boot not in (0, boot):
        log.info("node restarted", node=node.id, boot=boot)
        outcomes.lose_node_work(core, node.id)
    now = core.now()
    if node.boot != boot:
        node.last_boot_time = now
    node.boot = boot
    if node.state is not NodeState.LEAVING_POOL:
        starttask.on_hello(core, pool, node)
        used = core.used_slots().get(node.id, 0)
        move(node, starttask.held(node) or (NodeState.RUNNING if used else NodeState.IDLE), now)
    refresh_allocation(core, pool)
    core.poke()
    if repeated:
        return []
    return [key for key, flight in core.in_flight.items() if flight.node_id == node.id]


def on_node_lost(core: Core, node_id: str) -> None:
    core.greeted.pop(node_id, None)
    found = core.node_by_id(node_id)
    if found is None:
        return
    pool, node = found
    if node.state not in (NodeState.REBOOTING, NodeState.REIMAGING, NodeState.LEAVING_POOL):
        move(node, NodeState.UNUSABLE, core.now())
    outcomes.lose_node_work(core, node_id)
    refresh_allocation(core, pool)
    core.poke()
