"""Multi-instance tasks on the core: a task with ``multiInstanceSettings`` runs on
``numberOfInstances`` nodes at once, as a primary and subtasks.

As the REST API reference (``MultiInstanceSettings``, ``BatchSubtask``) and the article "Use
multi-instance tasks to run Message Passing Interface (MPI) applications in Batch" have it:

- The task waits (``active``) until that many usable nodes, each with room for its
  ``requiredSlots``, are free; the job's preparation task runs on each first.
- Every instance (the primary and each subtask) gets the common resource files in its task
  directory (not the working directory) and runs the coordination command line; only when it
  has ended with exit code 0 on every node does the primary run the task's command line.
- Every instance sees ``AZ_BATCH_HOST_LIST`` (``ip,ip``), ``AZ_BATCH_NODE_LIST`` (``ip;ip``),
  ``AZ_BATCH_MASTER_NODE`` (the primary's ``ip:port``), ``AZ_BATCH_TASK_SHARED_DIR`` (the task
  directory, the same path on every node) and ``AZ_BATCH_IS_CURRENT_NODE_MASTER``.
- The task's outcome is the primary's; when the primary ends, the subtasks end (``completed``).
  A coordination command that fails fails the whole task, which is retried up to its
  ``maxTaskRetryCount``; a node lost requeues the whole task.
- List Subtasks reports the subtasks (ids from 1), with their node, state, times and the
  coordination command's exit code.

Inferred (not documented): the master port is 6000, as the article's example shows; a
subtask's ``startTime`` and ``exitCode`` are its coordination command's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobprep_release.backends.base import ExecutionResult, FailureInfo, TaskState
from jobprep_release.backends.docker.core import environment, outcomes, processes, rules, views
from jobprep_release.backends.docker.core.kernel import Core, InFlight, Kind
from jobprep_release.backends.docker.core.records import (
    Execution,
    InstanceRecord,
    JobNodeRecord,
    JobRecord,
    NodeRecord,
    PoolRecord,
    TaskRecord,
    move,
    new_history,
    touch,
)

MASTER_PORT = 6000


@dataclass(frozen=True, slots=True)
class Subtask:
    """One subtask as List Subtasks reports it (REST ``BatchSubtask``)."""

    id: int
    node_id: str
    state: TaskState
    start_time: datetime | None
    end_time: datetime | None
    exit_code: int | None
    result: ExecutionResult | None
    failure: FailureInfo | None
    state_transition_time: datetime | None
    previous_state: TaskState | None
    previous_state_transition_time: datetime | None


def place(
    core: Core, job: JobRecord, pool: PoolRecord, task: TaskRecord, used: dict[str, int]
) -> list[processes.Pending]:
    """Place the multi-instance `task` when enough nodes are free (its instances' processes),
    or start the preparation tasks those nodes need first; nothing when too few are free."""
    settings = task.spec.multi_instance
    assert settings is not None
    nodes = _free_nodes(pool, job, task, used, settings.number_of_instances)
    if nodes is None:
        return []
    prep = job.spec.preparation
    if prep is not None:
        waiting, preps = False, []
        for node in nodes:
            record = job.nodes.setdefault(node.id, JobNodeRecord())
            if not rules.prep_needed(record, node, prep.rerun_on_node_reboot_after_success):
                continue
            waiting = True
            if record.prep is None or record.prep.completed:
                requeues = record.prep.requeue_count if record.prep else 0
                record.prep = Execution(requeue_count=requeues)
                preps.append(processes.prepare_prep(core, job, node.id, node.boot))
        if waiting:
            return preps
    now = core.now()
    for node in nodes:
        used[node.id] = used.get(node.id, 0) + task.spec.required_slots
        job.nodes.setdefault(node.id, JobNodeRecord()).ran_tasks = True
    task.node_id = nodes[0].id
    task.instances = [InstanceRecord(node.id, history=new_history(now)) for node in nodes]
    coordination = settings.coordination_command_line
    if not coordination:
        return [processes.prepare_task(core, job, task, nodes[0].id)]
    move(task, TaskState.RUNNING, now)
    core.index.placed(task)
    what = coordination_launch(task)
    key = task.spec.id.lower()
    return [
        processes.prepare(
            core,
            InFlight(Kind.INSTANCE, instance.node_id, job.spec.id, key, index),
            job,
            what,
            instance.run,
        )
        for index, instance in enumerate(task.instances)
    ]


def coordination_launch(task: TaskRecord) -> processes.Launch:
    """What each instance of a multi-instance task starts: its coordination command line."""
    spec, settings = task.spec, task.spec.multi_instance
    assert settings is not None and settings.coordination_command_line
    return processes.Launch(
        spec.id,
        settings.coordination_command_line,
        spec.user_identity,
        dict(spec.environment),
        spec.constraints.max_wall_clock_time,
        settings.common_resource_files,
        spec.container_settings,
    )


def _free_nodes(
    pool: PoolRecord, job: JobRecord, task: TaskRecord, used: dict[str, int], count: int
) -> list[NodeRecord] | None:
    slots = pool.spec.task_slots_per_node
    free = [
        node
        for node in sorted(pool.nodes, key=lambda node: node.index)
        if rules.schedulable(node)
        and slots - used.get(node.id, 0) >= task.spec.required_slots
        and not (node.id in job.nodes and job.nodes[node.id].prep_blocked)
    ]
    return free[:count] if len(free) >= count else None


def variables(core: Core, job: JobRecord, task: TaskRecord, instance: int) -> dict[str, str]:
    """The multi-instance variables of `instance` (0: the primary)."""
    addresses = [
        core.executor.node_address(record.node_id) or record.node_id for record in task.instances
    ]
    return {
        "AZ_BATCH_HOST_LIST": ",".join(addresses),
        "AZ_BATCH_NODE_LIST": ";".join(addresses),
        "AZ_BATCH_MASTER_NODE": f"{addresses[0]}:{MASTER_PORT}",
        "AZ_BATCH_TASK_SHARED_DIR": environment.task_dir(job.spec.id, task.spec.id),
        "AZ_BATCH_IS_CURRENT_NODE_MASTER": "true" if instance == 0 else "false",
    }


def on_exit(core: Core, job: JobRecord, flight: InFlight, end: float) -> None:
    """An instance's coordination command ended (its run is recorded): the primary's command
    line starts once every one succeeded; one that failed fails the task."""
    task = job.tasks.get(flight.task_id)
    if task is None or flight.instance >= len(task.instances):
        return
    instance = task.instances[flight.instance]
    touch(instance, end)
    if instance.run.result is not ExecutionResult.SUCCESS:
        run = task.run
        run.start_time = instance.run.start_time
        views.complete(run, instance.run.exit_code, instance.run.failure, end)
        _stop_instances(core, task)
        outcomes.task_exited(core, job, task, end)
        after_primary(core, task, end)
        return
    if all(record.run.result is ExecutionResult.SUCCESS for record in task.instances):
        assert task.node_id is not None
        pending = processes.prepare_task(core, job, task, task.node_id)
        core.spawn(processes.start_all, core, [pending])


def after_primary(core: Core, task: TaskRecord, end: float) -> None:
    """The primary ended (completed, or to be retried): the subtasks end with it."""
    _stop_instances(core, task)
    if task.state is TaskState.COMPLETED:
        for instance in task.instances:
            move(instance, TaskState.COMPLETED, end)
    else:
        task.instances = ()
    core.refresh_busy()


def on_lost(core: Core, job: JobRecord, flight: InFlight) -> None:
    """An instance's node was lost: the whole task is requeued."""
    task = job.tasks.get(flight.task_id)
    if task is not None:
        _requeue(core, task)


def node_lost(core: Core, node_id: str) -> None:
    """A node was lost: a running multi-instance task with a subtask there (whose coordination
    command has ended, so nothing of it was in flight) is requeued whole."""
    for job in core.state.jobs.values():
        for task in job.tasks.values():
            if task.state is TaskState.RUNNING and any(
                instance.node_id == node_id for instance in task.instances[1:]
            ):
                _requeue(core, task)


def _requeue(core: Core, task: TaskRecord) -> None:
    if task.run.key is not None:
        key, task.run.key = task.run.key, None
        if core.in_flight.pop(key, None) is not None:
            core.spawn(processes.stop, core, key)
    now = core.now()
    move(task, TaskState.ACTIVE, now)
    task.node_id = None
    task.run.requeue_count += 1
    task.run.last_requeue_time = now
    touch(task, now)
    dropped(core, task)


def dropped(core: Core, task: TaskRecord) -> None:
    """The task went back to the queue: its instances are stopped and forgotten."""
    _stop_instances(core, task)
    task.instances = ()
    core.refresh_busy()


def _stop_instances(core: Core, task: TaskRecord) -> None:
    for instance in task.instances:
        key = instance.run.key
        if key is None or instance.run.completed:
            continue
        if core.in_flight.pop(key, None) is not None:
            core.spawn(processes.stop, core, key)


def subtasks(task: TaskRecord) -> list[Subtask]:
    """List Subtasks: the instances but the primary, ids from 1."""
    result = []
    for index, instance in enumerate(task.instances[1:], start=1):
        run, history = instance.run, instance.history
        previous = history.previous_state
        result.append(
            Subtask(
                id=index,
                node_id=instance.node_id,
                state=instance.state,
                start_time=views.stamp(run.start_time),
                end_time=views.stamp(run.end_time) if run.completed else None,
                exit_code=run.exit_code,
                result=run.result,
                failure=run.failure,
                state_transition_time=views.stamp(history.state_time),
                previous_state=TaskState(previous) if previous else None,
                previous_state_transition_time=views.stamp(history.previous_state_time),
            )
        )
    return result
