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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog

from jobprep_release.backends.administration import MAX_NODES_PER_REMOVAL
from jobprep_release.backends.base import (
    AllocationState,
    DisableSchedulingOption,
    NodeDeallocationOption,
    NodeState,
    PoolSpec,
    PoolUpdate,
    ResizeError,
    SchedulingState,
    StartTaskSpec,
    TaskState,
    check_id,
)
from jobprep_release.backends.docker.core import jobs, outcomes, processes, rules, starttask
from jobprep_release.backends.docker.core.kernel import Core, Kind
from jobprep_release.backends.docker.core.records import (
    NodeRecord,
    PoolRecord,
    move,
    new_history,
    touch,
)
from jobprep_release.backends.errors import AlreadyExists, Conflict, InvalidRequest

log = structlog.get_logger("jobprep_release.docker")

MAX_SLOTS_PER_NODE = 256


async def create_pool(core: Core, spec: PoolSpec) -> None:
    check_id("pool", spec.id)
    await adopt(core, spec.id)
    existing = core.state.pools.get(spec.id.lower())
    if existing is not None:
        rules.refuse_if_deleting(existing)
        raise AlreadyExists(f"pool {spec.id} already exists", code="PoolExists")
    rules.check_node_count(spec.target_dedicated_nodes + spec.target_low_priority_nodes)
    if not 1 <= spec.task_slots_per_node <= MAX_SLOTS_PER_NODE:
        raise InvalidRequest(
            f"task slots per node must be 1 to {MAX_SLOTS_PER_NODE}",
            code="InvalidPropertyValue",
        )
    rules.check_user_accounts(spec)
    rules.check_local_settings(spec)
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
        resize_started=now,
    )
    core.state.pools[spec.id.lower()] = pool
    add_nodes(core, pool, spec.target_dedicated_nodes)
    add_nodes(core, pool, spec.target_low_priority_nodes, dedicated=False)
    await core.persist()
    log.info("pool created", pool=spec.id, nodes=spec.target_dedicated_nodes, image=image)


def add_nodes(core: Core, pool: PoolRecord, count: int, *, dedicated: bool = True) -> None:
    now = core.now()
    started = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dt%H%M%Sz")
    first = max((node.index for node in pool.nodes), default=0) + 1
    for index in range(first, first + count):
        node = NodeRecord(
            id=f"tvm-{pool.serial}_{index}-{started}",
            index=index,
            history=new_history(now),
            dedicated=dedicated,
        )
        pool.nodes.append(node)
        core.executor.create_node(replace(core.setup(pool, node), new=True))
    refresh_allocation(core, pool)


def refresh_allocation(core: Core, pool: PoolRecord) -> None:
    """Record the pool's allocation state: ``resizing`` while a node is being created or is
    leaving, ``steady`` otherwise; ``stopping`` is left to Stop Resize to settle."""
    if pool.allocation_state is AllocationState.STOPPING:
        return
    busy = any(node.state in _CHANGING for node in pool.nodes)
    set_allocation(core, pool, AllocationState.RESIZING if busy else AllocationState.STEADY)


_CHANGING = (NodeState.CREATING, NodeState.LEAVING_POOL)


def set_allocation(core: Core, pool: PoolRecord, state: AllocationState) -> None:
    if state is not pool.allocation_state:
        now = core.now()
        pool.allocation_state = state
        pool.allocation_state_time = now
        touch(pool, now)


# The service's sentence for PoolBeingResized (.NET BatchErrorCodeStrings' description).
POOL_BEING_RESIZED = (
    "A pool operation was attempted which is not permitted when the pool is in the process "
    "of being resized."
)


def refuse_unless_steady(pool: PoolRecord) -> None:
    """409 ``PoolBeingResized``: the service resizes (or removes nodes from) a pool only when
    its allocation state is steady (REST Resize Pool, Remove Nodes)."""
    rules.refuse_if_deleting(pool)
    if pool.allocation_state is not AllocationState.STEADY:
        raise Conflict(POOL_BEING_RESIZED, code="PoolBeingResized")


def _begin_resize(core: Core, pool: PoolRecord, resize_timeout: timedelta | None) -> None:
    now = core.now()
    pool.spec = replace(pool.spec, resize_timeout=resize_timeout or pool.spec.resize_timeout)
    pool.resize_started = now
    pool.resize_errors = []
    touch(pool, now)


def members(pool: PoolRecord, *, dedicated: bool) -> list[NodeRecord]:
    """The pool's dedicated (or low-priority) nodes that are not leaving it."""
    return [
        node
        for node in pool.nodes
        if node.dedicated is dedicated and node.state is not NodeState.LEAVING_POOL
    ]


async def resize_pool(
    core: Core,
    pool_id: str,
    target_dedicated_nodes: int,
    resize_timeout: timedelta | None = None,
    *,
    target_low_priority_nodes: int | None = None,
    deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
) -> None:
    """Resize Pool, and the one entry point for anything that sets a pool's targets
    (autoscale): `resize_timeout` (when given) becomes the pool's, as the service sets it;
    `target_low_priority_nodes` None keeps the pool's; nodes beyond a target leave by
    `deallocation` (the newest first). 409 ``PoolBeingResized`` unless the pool is steady."""
    pool = core.pool(pool_id)
    refuse_unless_steady(pool)
    low = pool.spec.target_low_priority_nodes
    low = low if target_low_priority_nodes is None else target_low_priority_nodes
    rules.check_node_count(target_dedicated_nodes + low)
    pool.spec = replace(
        pool.spec, target_dedicated_nodes=target_dedicated_nodes, target_low_priority_nodes=low
    )
    _begin_resize(core, pool, resize_timeout)
    leaving: list[NodeRecord] = []
    for dedicated, target in ((True, target_dedicated_nodes), (False, low)):
        current = members(pool, dedicated=dedicated)
        if target > len(current):
            add_nodes(core, pool, target - len(current), dedicated=dedicated)
        leaving += current[target:]
    await deallocate(core, pool, leaving, deallocation)
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
    "job_default_order": "taskSchedulingPolicy",
    "image_reference": "virtualMachineConfiguration",
    "node_agent_sku_id": "virtualMachineConfiguration",
    "user_accounts": "userAccounts",
    "upgrade_policy_mode": "upgradePolicy",
}


# What an unset property means (REST BatchJobDefaultOrder, UpgradeMode): sending it is no change.
_UNSET_MEANS = {"job_default_order": "none", "upgrade_policy_mode": "manual"}


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
            default = _UNSET_MEANS.get(name)
            if (getattr(spec, name) or default) != (getattr(pool.spec, name) or default):
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
    rules.check_user_accounts(spec)
    rules.check_local_settings(spec)
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
    spec = replace(pool.spec, start_task=start_task, metadata=metadata)
    rules.check_user_accounts(spec)
    await _set_spec(core, pool, spec)


async def _set_spec(core: Core, pool: PoolRecord, spec: PoolSpec) -> None:
    pool.spec = spec
    touch(pool, core.now())
    await core.persist()
    log.info("pool updated", pool=spec.id)


async def remove_nodes(
    core: Core,
    pool_id: str,
    node_ids: Sequence[str],
    resize_timeout: timedelta | None = None,
    deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
) -> None:
    """Remove Nodes: the nodes leave by `deallocation` and the pool's targets go down by as
    many (REST Remove Nodes). `NotFound` (``NodeNotFound``) for a node not in the pool, 409
    ``PoolBeingResized`` unless the pool is steady; nothing changes then."""
    if not 1 <= len(node_ids) <= MAX_NODES_PER_REMOVAL:
        raise InvalidRequest(
            f"Remove Nodes takes 1 to {MAX_NODES_PER_REMOVAL} node ids, not {len(node_ids)}",
            code="InvalidPropertyValue",
        )
    pool = core.pool(pool_id)
    refuse_unless_steady(pool)
    nodes = [core.find_node(pool_id, node_id) for node_id in dict.fromkeys(node_ids)]
    dedicated = sum(node.dedicated for node in nodes)
    pool.spec = replace(
        pool.spec,
        target_dedicated_nodes=max(len(members(pool, dedicated=True)) - dedicated, 0),
        target_low_priority_nodes=max(
            len(members(pool, dedicated=False)) - (len(nodes) - dedicated), 0
        ),
    )
    _begin_resize(core, pool, resize_timeout)
    await deallocate(core, pool, nodes, deallocation)
    refresh_allocation(core, pool)
    await core.persist()


async def deallocate(
    core: Core, pool: PoolRecord, nodes: Sequence[NodeRecord], option: NodeDeallocationOption
) -> None:
    """Take `nodes` out of the pool as `option` says (REST BatchNodeDeallocationOption):
    requeue or end their running tasks and remove them now, or keep them ``leavingpool``
    (nothing new is scheduled there) until their tasks complete (``taskcompletion``) and, with
    ``retaineddata``, until those tasks' files are past their retention time."""
    for node in nodes:
        if option is NodeDeallocationOption.TERMINATE:
            await end_tasks_on(core, node.id, "the task's node was removed from the pool")
        if option in (NodeDeallocationOption.REQUEUE, NodeDeallocationOption.TERMINATE):
            await remove_node(core, pool, node)
        else:
            node.deallocation = option
            move(node, NodeState.LEAVING_POOL, core.now())
    settle_leaving(core)


async def end_tasks_on(core: Core, node_id: str, message: str) -> None:
    """End every task running (or preparing) on the node, as Terminate Task does."""
    for job in core.state.jobs.values():
        for task in job.tasks.values():
            if task.node_id == node_id and task.state in (TaskState.RUNNING, TaskState.PREPARING):
                await jobs.end_task(core, task, message)
                outcomes.after_task_change(core, job)
    core.poke()


def settle_leaving(core: Core) -> None:
    """Remove the nodes leaving by ``taskcompletion``/``retaineddata`` whose time has come:
    nothing of theirs runs any more (and, for ``retaineddata``, every task that ran there has
    had its files removed at the end of its retention time). Called on every scheduler pass
    and sweep."""
    busy = {flight.node_id for flight in core.in_flight.values()}
    for pool in core.state.pools.values():
        for node in pool.nodes:
            option = node.deallocation
            if option is None or node.state is not NodeState.LEAVING_POOL:
                continue
            if node.id in busy or node.running_tasks or node.id in core.leaving:
                continue
            if option is NodeDeallocationOption.RETAINED_DATA and _keeps_task_data(core, node):
                continue
            core.leaving.add(node.id)
            core.spawn(_leave, core, pool, node)


def _keeps_task_data(core: Core, node: NodeRecord) -> bool:
    return any(
        task.node_id == node.id and not task.files_removed
        for job in core.state.jobs.values()
        for task in job.tasks.values()
    )


async def _leave(core: Core, pool: PoolRecord, node: NodeRecord) -> None:
    try:
        if node in pool.nodes:
            await remove_node(core, pool, node)
            refresh_allocation(core, pool)
            await core.persist()
    finally:
        core.leaving.discard(node.id)


async def remove_node(core: Core, pool: PoolRecord, node: NodeRecord) -> None:
    move(node, NodeState.LEAVING_POOL, core.now())
    outcomes.lose_node_work(core, node.id)
    await core.executor.remove_node(core.setup(pool, node))
    if node in pool.nodes:
        pool.nodes.remove(node)
    core.poke()


ALLOCATION_TIMED_OUT = "AllocationTimedout"
"""The service's code for a resize that ran past its timeout, spelled as it sends it
(PoolResizeErrorCodes.AllocationTimedOut = "AllocationTimedout" in the Batch SDKs)."""

# Texts of the service's resize errors (PoolResizeErrorCodes; ResizeStopped as recorded).
_STOPPED = "Desired number of {} nodes could not be allocated due to a stop resize operation"
_TIMED_OUT = "Desired number of {} nodes could not be allocated as the resize timeout was reached"


def _shortfall(pool: PoolRecord, code: str, text: str) -> list[ResizeError]:
    """A resize error per kind of node (dedicated, low priority) the pool has fewer of than
    its target."""
    spec = pool.spec
    errors = []
    for dedicated, target, kind in (
        (True, spec.target_dedicated_nodes, "dedicated"),
        (False, spec.target_low_priority_nodes, "low priority"),
    ):
        ready = [n for n in members(pool, dedicated=dedicated) if n.state is not NodeState.CREATING]
        if len(ready) < target:
            errors.append(ResizeError(code=code, message=text.format(kind)))
    return errors


async def stop_resize(core: Core, pool_id: str) -> None:
    """Stop Pool Resize: the pool goes ``stopping`` now and ``steady`` once the nodes still
    being created are gone; it keeps the nodes it has (nodes leaving stay), its targets stay
    as asked, and `resizeErrors` says ``ResizeStopped`` for each kind of node it is short of
    (REST Stop Pool Resize; the recorded answer). A steady pool is left as it is."""
    pool = core.pool(pool_id)
    rules.refuse_if_deleting(pool)
    if pool.allocation_state is not AllocationState.RESIZING:
        return
    set_allocation(core, pool, AllocationState.STOPPING)
    now = core.now()
    for node in pool.nodes:
        if node.state is NodeState.LEAVING_POOL and node.deallocation is not None:
            node.deallocation = None
            move(node, rules.ready_state(node, core.used_slots()), now)
    await core.persist()
    core.spawn(_settle_resize, core, pool, "ResizeStopped", _STOPPED)


async def _settle_resize(core: Core, pool: PoolRecord, code: str, text: str) -> None:
    """End a resize short of its targets: remove the nodes still being created, record why
    (`code`), and go ``steady``."""
    errors = _shortfall(pool, code, text)
    for node in [node for node in pool.nodes if node.state is NodeState.CREATING]:
        await remove_node(core, pool, node)
    pool.resize_errors = errors
    set_allocation(core, pool, AllocationState.STEADY)
    await core.persist()


def check_resize_deadlines(core: Core) -> None:
    """A resize whose nodes do not all exist by its `resizeTimeout` ends with the service's
    ``AllocationTimedout`` error; the nodes it has stay. Called by the sweep."""
    now = core.now()
    for pool in core.state.pools.values():
        if pool.allocation_state is not AllocationState.RESIZING or pool.resize_started is None:
            continue
        if now < pool.resize_started + pool.spec.resize_timeout.total_seconds():
            continue
        if not any(node.state is NodeState.CREATING for node in pool.nodes):
            continue
        pool.resize_started = None  # settled once
        core.spawn(_settle_resize, core, pool, ALLOCATION_TIMED_OUT, _TIMED_OUT)


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
        starttask.adopted(node)
        pool.nodes.append(node)
    core.state.pools[pool_id.lower()] = pool
    for node in pool.nodes:
        core.executor.create_node(core.setup(pool, node))
    log.info("adopted pool from its nodes", pool=pool_id, nodes=len(pool.nodes))


async def drop_vanished_pools(core: Core) -> None:
    """Forget pools of which nothing is left: deleted by another run."""
    for key, pool in list(core.state.pools.items()):
        if pool.nodes and all(node.state is NodeState.PREEMPTED for node in pool.nodes):
            continue  # its nodes' containers are gone by design (`preempt_node`)
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
    on_its_way = (
        NodeState.LEAVING_POOL,
        NodeState.REBOOTING,
        NodeState.REIMAGING,
        NodeState.PREEMPTED,
    )
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
    if node.state not in (NodeState.LEAVING_POOL, NodeState.PREEMPTED):
        starttask.on_hello(core, pool, node)
        move(node, starttask.held(node) or rules.ready_state(node, core.used_slots()), now)
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
    staying = (
        NodeState.REBOOTING,
        NodeState.REIMAGING,
        NodeState.LEAVING_POOL,
        NodeState.PREEMPTED,
    )
    if node.state not in staying:
        move(node, NodeState.UNUSABLE, core.now())
    outcomes.lose_node_work(core, node_id)
    refresh_allocation(core, pool)
    core.poke()


# --- node scheduling and preemption ------------------------------------------------------------


async def disable_scheduling(
    core: Core,
    pool_id: str,
    node_id: str,
    option: DisableSchedulingOption = DisableSchedulingOption.REQUEUE,
) -> None:
    """Disable Node Scheduling: no new task goes to the node; its running tasks are requeued,
    ended (``terminate``) or left to complete (``taskcompletion``); an idle node reads
    ``offline`` (REST Disable Node Scheduling, BatchNodeState)."""
    node = core.find_node(pool_id, node_id)
    rules.refuse_if_deleting(core.pool(pool_id))
    now = core.now()
    if node.scheduling is not SchedulingState.DISABLED:
        node.scheduling = SchedulingState.DISABLED
        touch(node, now)
    if option is DisableSchedulingOption.TERMINATE:
        await end_tasks_on(core, node.id, "the task's node had its scheduling disabled")
    elif option is DisableSchedulingOption.REQUEUE:
        for key, flight in list(core.in_flight.items()):
            if flight.node_id == node.id and flight.kind is Kind.TASK:
                await processes.stop(core, key)
                outcomes.on_lost(core, key, flight)
    core.refresh_busy()
    await core.persist()
    core.poke()


async def enable_scheduling(core: Core, pool_id: str, node_id: str) -> None:
    """Enable Node Scheduling: the scheduler places tasks on the node again."""
    node = core.find_node(pool_id, node_id)
    rules.refuse_if_deleting(core.pool(pool_id))
    if node.scheduling is not SchedulingState.ENABLED:
        node.scheduling = SchedulingState.ENABLED
        touch(node, core.now())
    core.refresh_busy()
    await core.persist()
    core.poke()


async def preempt_node(core: Core, pool_id: str, node_id: str) -> None:
    """Evict a spot/low-priority node as the service does when Azure reclaims its VM: the
    node reads ``preempted`` and stays in the pool (counted in currentLowPriorityNodes), its
    running tasks are requeued (each a requeue, run again elsewhere), its container is
    removed. A local operation (no Batch API preempts a node); 409
    ``OperationInvalidForCurrentState`` for a dedicated node."""
    node = core.find_node(pool_id, node_id)
    pool = core.pool(pool_id)
    rules.refuse_if_deleting(pool)
    if node.dedicated:
        raise Conflict(
            f"node {node_id} is dedicated: only spot/low-priority nodes are preempted",
            code="OperationInvalidForCurrentState",
        )
    if node.state is NodeState.PREEMPTED:
        return
    move(node, NodeState.PREEMPTED, core.now())
    outcomes.lose_node_work(core, node.id)
    for job in list(core.state.jobs.values()):
        if job.nodes.pop(node.id, None) is not None:
            outcomes.maybe_complete(core, job)
    await core.persist()
    await core.executor.remove_node(core.setup(pool, node))
    core.poke()
