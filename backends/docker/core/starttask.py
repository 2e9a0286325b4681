"""A pool's start task (REST StartTask) on each of its nodes.

As the service has it (REST StartTask, BatchNodeState; batch-semantics.md, "States"): the start
task runs on a node as it joins the pool, and again whenever the node boots afresh (reboot,
reimage), in the node's ``startup`` directory (working directory ``startup/wd``, output in
``startup/stdout.txt`` and ``startup/stderr.txt``) with the start task's variables. A nonzero
exit is retried up to `maxTaskRetryCount` times (-1: without limit). With `waitForSuccess` (the
service's default) the node is `waitingforstarttask` while it runs and takes no task, then
`idle`, or `starttaskfailed` once it failed for good (the node then takes no task); without it
the node is `idle` at once and takes tasks whatever the start task does. A start task replaced
on the pool applies from a node's next boot, as the service does.

Its runs are recorded on the node (`NodeRecord.start`) and journalled before they start, like
every other process (`processes`), so a core that crashes never runs one twice.
"""

from __future__ import annotations

from typing import Any

from jobprep_release.backends.base import ExecutionResult, FailureInfo, NodeState, StartTaskSpec
from jobprep_release.backends.docker.core import environment, outcomes, processes, rules, views
from jobprep_release.backends.docker.core.codec import decode, encode
from jobprep_release.backends.docker.core.kernel import READY, Core, InFlight, Kind
from jobprep_release.backends.docker.core.records import (
    Execution,
    NodeRecord,
    PoolRecord,
    move,
)

HELD_STATES = (NodeState.WAITING_FOR_START_TASK, NodeState.START_TASK_FAILED)
"""The states a start task holds a node in (it takes no task)."""


ADOPTED = -1
"""`NodeRecord.start_boot` of a node found again from the executor (`pools.adopt`): whether its
start task ran on its current boot is not known, so that boot runs none; its next boot does."""


def adopted(node: NodeRecord) -> None:
    node.start_boot = ADOPTED


def on_hello(core: Core, pool: PoolRecord, node: NodeRecord) -> None:
    """The node is up (its boot number recorded): run the pool's start task when this boot
    has not run it yet, or carry on with one lost with the node's link."""
    run = node.start
    if node.start_boot == ADOPTED:
        node.start_boot = node.boot
    elif node.start_boot != node.boot:
        node.start_boot = node.boot
        node.start = node.start_task = None
        spec = pool.spec.start_task
        if spec is not None:
            node.start, node.start_task = Execution(), spec
            core.spawn(begin, core, node.id)
    elif run is not None and not run.completed and run.key is None:
        core.spawn(begin, core, node.id)


def held(node: NodeRecord) -> NodeState | None:
    """The state the start task holds the node in, or None when the node may take tasks."""
    run, spec = node.start, node.start_task
    if run is None or spec is None or not spec.wait_for_success:
        return None
    if not run.completed:
        return NodeState.WAITING_FOR_START_TASK
    if run.result is ExecutionResult.FAILURE:
        return NodeState.START_TASK_FAILED
    return None


def forget(node: NodeRecord) -> None:
    """The node's disk is new (reimage): its next boot runs the start task again."""
    node.start = node.start_task = None
    node.start_boot = 0


async def begin(core: Core, node_id: str) -> None:
    """Start (or retry) the node's start task: journalled, then launched."""
    found = core.node_by_id(node_id)
    if found is None:
        return
    pool, node = found
    run, spec = node.start, node.start_task
    if run is None or spec is None or run.completed or run.key is not None:
        return  # ended, or already started by another call
    flight = InFlight(Kind.START, node.id)
    key = processes.fresh_key(core, flight, run)
    await core.journal({"tasks": [], "nodes": [], "starts": [[node.id, _document(node)]]})
    what = processes.Launch(
        "", spec.command_line, spec.user_identity, dict(spec.environment), None, spec.resource_files
    )
    env = environment.start_task_environment(
        processes.node_context(core, pool.spec.id, node.id), spec.user_identity, spec.environment
    )
    await processes.launch(core, key, flight, what, environment.STARTUP_DIR, env)


def _document(node: NodeRecord) -> dict[str, Any]:
    return {
        "start": encode(node.start),
        "start_boot": node.start_boot,
        "start_task": encode(node.start_task),
    }


def restore(core: Core, node_id: str, document: dict[str, Any]) -> None:
    """Apply a journal entry's record of a start (`processes.replay`)."""
    found = core.node_by_id(node_id)
    if found is None:
        return
    node = found[1]
    node.start = decode(Execution, document["start"])
    node.start_boot = int(document["start_boot"])
    task = document["start_task"]
    node.start_task = None if task is None else decode(StartTaskSpec, task)


def started(core: Core, flight: InFlight, start: float) -> None:
    found = core.node_by_id(flight.node_id)
    if found is not None and found[1].start is not None:
        outcomes.mark_started(found[1].start, start)
        core.changed()


def on_exit(
    core: Core,
    flight: InFlight,
    verdict: tuple[int | None, FailureInfo | None],
    start: float,
    end: float,
) -> None:
    """The start task ended: retried after a nonzero exit while retries are left, else the
    node is released (or held as `starttaskfailed`)."""
    found = core.node_by_id(flight.node_id)
    if found is None:
        return
    node = found[1]
    run, spec = node.start, node.start_task
    if run is None or spec is None:
        return
    limit = spec.max_task_retry_count
    if run.start_time is None:
        outcomes.mark_started(run, start)
    exit_code, failure = verdict
    views.complete(run, exit_code, failure, end)
    if failure is not None and exit_code is not None and (limit == -1 or run.retry_count < limit):
        run.retry_count += 1
        run.retrying = True
        run.completed = False
        core.spawn(begin, core, node.id)
    settle(core, node)


def on_lost(core: Core, flight: InFlight) -> None:
    """The start task vanished with its node's link: its next hello starts it again (a new
    boot runs it afresh)."""
    found = core.node_by_id(flight.node_id)
    if found is not None and found[1].start is not None:
        found[1].start.key = None
        found[1].start.start_time = None
        core.poke()


def settle(core: Core, node: NodeRecord) -> None:
    """Move a node that is up to the state its start task and its tasks give it."""
    if node.state not in (*HELD_STATES, *READY):
        return
    move(node, held(node) or rules.ready_state(node, core.used_slots()), core.now())
    core.poke()
