"""The service's rules, as pure functions of its records: what is valid, where a task goes,
when a preparation task must run again, when a release task is due, how retries count."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from jobprep_release.backends.base import (
    DependencyAction,
    ExecutionResult,
    ExitConditions,
    ExitOptions,
    JobAction,
    JobState,
    NodeFillType,
    NodeState,
    OnTaskFailure,
    PoolSpec,
    PoolState,
    SchedulingState,
    TaskSpec,
    TaskState,
    UserIdentity,
    check_id,
)
from jobprep_release.backends.docker.core import outputs, resources
from jobprep_release.backends.docker.core.environment import TASK_USER
from jobprep_release.backends.docker.core.records import (
    JobNodeRecord,
    JobRecord,
    NodeRecord,
    PoolRecord,
    TaskRecord,
)
from jobprep_release.backends.errors import AlreadyExists, Conflict, InvalidRequest, NotSupported

MAX_NODES = 64
USABLE = (NodeState.IDLE, NodeState.RUNNING)
ALLOCATION_WAIT = 10.0
"""Seconds at most a node waits for the other nodes of its allocation (`joining`)."""


def check_node_count(count: int) -> None:
    if not 0 <= count <= MAX_NODES:
        raise InvalidRequest(
            f"a local pool has 0 to {MAX_NODES} nodes, not {count}", code="InvalidPropertyValue"
        )


def check_new_tasks(job: JobRecord, tasks: Sequence[TaskSpec]) -> None:
    prep_id = job.spec.preparation.id.lower() if job.spec.preparation else None
    release_id = job.spec.release.id.lower() if job.spec.release else None
    seen: set[str] = set()
    for spec in tasks:
        check_id("task", spec.id)
        lowered = spec.id.lower()
        if lowered == prep_id:
            raise InvalidRequest(
                f"task id {spec.id} is the job preparation task's",
                code="TaskIdSameAsJobPreparationTask",
            )
        if lowered == release_id:
            raise InvalidRequest(
                f"task id {spec.id} is the job release task's", code="TaskIdSameAsJobReleaseTask"
            )
        if lowered in seen:
            raise InvalidRequest(f"task id {spec.id} appears twice", code="DuplicateTaskId")
        if lowered in job.tasks:
            raise AlreadyExists(f"task {spec.id} already exists", code="TaskExists")
        if spec.required_slots < 1:
            raise InvalidRequest("required slots must be at least 1", code="InvalidPropertyValue")
        for file in spec.resource_files:
            resources.check_resource_file(file)
        for output in spec.output_files:
            outputs.check_output_file(output)
        check_exit_conditions(job, spec)
        check_dependencies(job, spec)
        seen.add(lowered)


def check_exit_conditions(job: JobRecord, spec: TaskSpec) -> None:
    """REST ExitOptions jobAction: "If the Job's onTaskFailed property is noaction, then
    specifying this property returns an error" (400 ``InvalidPropertyValue``)."""
    conditions = spec.exit_conditions
    if conditions is None or job.spec.on_task_failure is not OnTaskFailure.NO_ACTION:
        return
    options = [
        conditions.pre_processing_error,
        conditions.file_upload_error,
        conditions.default,
        *(item.exit_options for item in conditions.exit_codes),
        *(item.exit_options for item in conditions.exit_code_ranges),
    ]
    if any(option is not None and option.job_action is not None for option in options):
        raise InvalidRequest(
            f"task {spec.id}: an exit condition's jobAction needs the job's onTaskFailure "
            "to be performexitoptionsjobaction",
            code="InvalidPropertyValue",
        )


def exit_options(task: TaskRecord) -> ExitOptions:
    """What the service does on the task's completion (REST ExitConditions, ExitOptions): the
    options of its exit code (listed, else in a range, else `default` for a nonzero code) or of
    a failure to start (`preProcessingError`, else `default`), with the documented defaults
    where they say nothing: job action none for exit code 0 and terminate otherwise;
    dependencies satisfied by exit code 0, blocked otherwise. Inferred: a task ended by the
    service or a user (``TaskEnded``) met no exit condition: no job action, dependents
    blocked; a program that cannot be started is a pre-processing error."""
    run = task.run
    if run.failure is not None and run.failure.code == "TaskEnded":
        return ExitOptions(JobAction.NONE, DependencyAction.BLOCK)
    conditions = task.spec.exit_conditions or ExitConditions()
    code = run.exit_code
    chosen: ExitOptions | None
    if code is None:
        chosen = conditions.pre_processing_error or conditions.default
    else:
        chosen = next((m.exit_options for m in conditions.exit_codes if m.code == code), None)
        if chosen is None:
            ranges = conditions.exit_code_ranges
            chosen = next((m.exit_options for m in ranges if m.start <= code <= m.end), None)
        if chosen is None and code != 0:
            chosen = conditions.default
    succeeded = code == 0 and run.failure is None
    chosen = chosen or ExitOptions()
    return ExitOptions(
        chosen.job_action or (JobAction.NONE if succeeded else JobAction.TERMINATE),
        chosen.dependency_action
        or (DependencyAction.SATISFY if succeeded else DependencyAction.BLOCK),
    )


def parallel_room(job: JobRecord) -> int:
    """How many more of the job's tasks may start now (REST BatchJob maxParallelTasks: -1 is
    no limit; tasks preparing on a node count as running)."""
    limit = job.spec.max_parallel_tasks
    if limit == -1:
        return len(job.tasks)
    busy = (TaskState.RUNNING, TaskState.PREPARING)
    return limit - sum(1 for task in job.tasks.values() if task.state in busy)


MAX_DEPENDENCY_ID_CHARACTERS = 64_000
"""REST BatchTaskDependencies: "The taskIds collection is limited to 64000 characters total
(i.e. the combined length of all Task IDs)" (else ``TaskDependencyListTooLong``)."""


def check_dependencies(job: JobRecord, spec: TaskSpec) -> None:
    """REST Add Task ``dependsOn``: only in a job with ``usesTaskDependencies``
    (``TaskDependenciesNotSpecifiedOnJob``), ids within 64,000 characters
    (``TaskDependencyListTooLong``); Inferred: a range's start is not after its end."""
    depends_on = spec.depends_on
    if depends_on is None:
        return
    if not job.spec.uses_task_dependencies:
        raise InvalidRequest(
            f"task {spec.id} depends on other tasks, but the job does not use task dependencies",
            code="TaskDependenciesNotSpecifiedOnJob",
        )
    if sum(len(task_id) for task_id in depends_on.task_ids) > MAX_DEPENDENCY_ID_CHARACTERS:
        raise InvalidRequest(
            f"task {spec.id}: the ids it depends on are more than "
            f"{MAX_DEPENDENCY_ID_CHARACTERS} characters; use id ranges",
            code="TaskDependencyListTooLong",
        )
    for item in depends_on.task_id_ranges:
        if item.start > item.end:
            raise InvalidRequest(
                f"task {spec.id}: the id range {item.start}-{item.end} ends before it starts",
                code="InvalidPropertyValue",
            )


def dependencies_met(job: JobRecord, task: TaskRecord) -> bool:
    """Whether the task's dependencies let it be scheduled (REST BatchTaskDependencies): every
    task it names, and every task of its id ranges, has completed and satisfies its dependents
    (`exit_options`: by success, or its exit condition's dependencyAction). Inferred: a task
    named or in a range that is not in the job (yet) is waited for."""
    depends_on = task.spec.depends_on
    if depends_on is None:
        return True
    for task_id in depends_on.task_ids:
        other = job.tasks.get(task_id.lower())
        if other is None or not _satisfies(other):
            return False
    for item in depends_on.task_id_ranges:
        found = [
            other
            for other in job.tasks.values()
            if other.spec.id.isdecimal() and item.start <= int(other.spec.id) <= item.end
        ]
        if len(found) < item.end - item.start + 1 or not all(map(_satisfies, found)):
            return False
    return True


def _satisfies(task: TaskRecord) -> bool:
    if task.state is not TaskState.COMPLETED:
        return False
    return exit_options(task).dependency_action is DependencyAction.SATISFY


def schedulable(node: NodeRecord) -> bool:
    """Whether the scheduler may place a task on the node: ready, scheduling enabled."""
    return node.state in USABLE and node.scheduling is SchedulingState.ENABLED


def ready_state(node: NodeRecord, used: dict[str, int]) -> NodeState:
    """A ready node's state: ``running`` while a task holds one of its slots, else ``idle``,
    or ``offline`` when its scheduling is disabled (REST BatchNodeState)."""
    if used.get(node.id):
        return NodeState.RUNNING
    return NodeState.OFFLINE if node.scheduling is SchedulingState.DISABLED else NodeState.IDLE


def joining(pool: PoolRecord, now: float) -> tuple[frozenset[str], float]:
    """The ids of the pool's nodes that take no task yet because nodes added with them (by
    the same pool creation or resize) are still booting, and until when at most (`inf`: no
    node waits). A fresh allocation's nodes take their first tasks together, or
    `ALLOCATION_WAIT` seconds after they were added, whichever comes first. On the service,
    the nodes of one allocation become idle within seconds of each other while a task takes
    seconds to be scheduled, so a job's tasks spread over them (the JobPrepRelease sample
    prints each node's share); a local task takes milliseconds, and without this the first
    container up would drain a short job before its siblings boot."""
    booting: set[float] = set()
    for node in pool.nodes:
        if node.state in _BOOTING and now < node.history.created + ALLOCATION_WAIT:
            booting.add(node.history.created)
    if not booting:
        return frozenset(), math.inf
    nodes = frozenset(node.id for node in pool.nodes if node.history.created in booting)
    return nodes, min(booting) + ALLOCATION_WAIT


_BOOTING = (NodeState.CREATING, NodeState.STARTING)


def has_room(pool: PoolRecord, used: dict[str, int], joining: frozenset[str]) -> bool:
    """Whether any schedulable node of the pool, not `joining`, has a free task slot."""
    slots = pool.spec.task_slots_per_node
    return any(
        schedulable(node) and used.get(node.id, 0) < slots and node.id not in joining
        for node in pool.nodes
    )


def pick_node(
    pool: PoolRecord,
    job: JobRecord,
    task: TaskRecord,
    used: dict[str, int],
    joining: frozenset[str],
) -> NodeRecord | None:
    slots = pool.spec.task_slots_per_node
    candidates = [
        node
        for node in pool.nodes
        if schedulable(node)
        and node.id not in joining
        and slots - used.get(node.id, 0) >= task.spec.required_slots
        and not (node.id in job.nodes and job.nodes[node.id].prep_blocked)
    ]
    if not candidates:
        return None
    if pool.spec.node_fill_type is NodeFillType.PACK:
        return max(candidates, key=lambda node: (used.get(node.id, 0), -node.index))
    return min(candidates, key=lambda node: (used.get(node.id, 0), node.index))


def prep_needed(record: JobNodeRecord, node: NodeRecord, rerun_after_reboot: bool) -> bool:
    prep = record.prep
    if prep is None or not prep.completed:
        return True
    rebooted = record.prep_boot != node.boot
    return rebooted and (rerun_after_reboot or prep.result is not ExecutionResult.SUCCESS)


def release_due(record: JobNodeRecord) -> bool:
    return (
        record.ran_tasks
        and record.release is None
        and record.prep is not None
        and record.prep.completed
    )


def retries_left(limit: int | None, job: JobRecord, used: int) -> bool:
    allowed = job.spec.max_task_retry_count if limit is None else limit
    return allowed == -1 or used < allowed


def confined(path: str) -> str:
    """`path` relative to the node root, refusing anything that would leave it."""
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or any(part in ("..", "") for part in parts):
        raise InvalidRequest(
            f"node file path {path!r} must be relative to the node's root, without '..'",
            code="InvalidNodeFilePath",
        )
    return "/".join(parts)


# The service's texts for these codes (Batch error code reference).
POOL_BEING_DELETED = "The specified pool has been marked for deletion and is being reclaimed."
JOB_BEING_DELETED = "The specified job has been marked for deletion and is being garbage collected."


def refuse_if_deleting(record: PoolRecord | JobRecord) -> None:
    """409 ``PoolBeingDeleted`` / ``JobBeingDeleted`` for an object being deleted."""
    if isinstance(record, PoolRecord):
        if record.state is PoolState.DELETING:
            raise Conflict(POOL_BEING_DELETED, code="PoolBeingDeleted")
    elif record.state is JobState.DELETING:
        raise Conflict(JOB_BEING_DELETED, code="JobBeingDeleted")


_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,19}")


def check_user_accounts(spec: PoolSpec) -> None:
    """The pool's user accounts have names a Linux node can hold (REST UserAccount.name: up to
    20 characters; here letters, digits, ``_``, ``.``, ``-``, else 501 naming the name), each
    once (400), and a start task's named user is one of them."""
    seen: set[str] = set()
    for account in spec.user_accounts:
        if not _ACCOUNT_NAME.fullmatch(account.name):
            raise NotSupported(
                f"user account name {account.name!r}: node accounts here take up to 20 "
                "letters, digits, '_', '.' or '-' (not starting with '.' or '-')"
            )
        if account.name.lower() in seen or account.name in (TASK_USER, "root"):
            raise InvalidRequest(
                f"user account {account.name} is given more than once or is reserved",
                code="InvalidPropertyValue",
            )
        seen.add(account.name.lower())
    if spec.start_task is not None:
        check_user(spec, spec.start_task.user_identity, "startTask")


NODE_COMMUNICATION_MODES = ("default", "classic", "simplified")
"""REST NodeCommunicationMode (api-versions 2022-10-01.16.0 to 2024-07-01.20.0)."""


def azure_only_settings(spec: PoolSpec) -> list[tuple[str, str]]:
    """The pool's settings that would need Azure's infrastructure, each as (REST property
    path, why): ``upgradePolicy`` other than ``manual`` (automatic and rolling upgrades apply
    new OS images to VM scale sets), ``zonal`` node placement (local nodes have no
    availability zones), an ``osDisk`` caching other than ``none`` or the write accelerator
    on (Azure disk features). Their defaults mean nothing on a local node and are kept."""
    disk = spec.os_disk
    found = []
    if spec.upgrade_policy_mode not in (None, "manual"):
        found.append(
            (
                "upgradePolicy.mode",
                f"{spec.upgrade_policy_mode}: automatic and rolling upgrades apply new OS images "
                "to Azure VM scale sets; a local node's image changes only by Update Pool on an "
                "empty pool (mode manual)",
            )
        )
    if spec.node_placement_policy not in (None, "regional"):
        found.append(
            (
                "virtualMachineConfiguration.nodePlacementConfiguration.policy",
                f"{spec.node_placement_policy}: local nodes have no availability zones (policy "
                "regional)",
            )
        )
    if disk is not None and disk.caching not in (None, "none"):
        found.append(
            (
                "virtualMachineConfiguration.osDisk.caching",
                f"{disk.caching}: a local node's disk has no host caching (caching none)",
            )
        )
    if disk is not None and disk.write_accelerator_enabled:
        found.append(
            (
                "virtualMachineConfiguration.osDisk.writeAcceleratorEnabled",
                "true: a local node's disk has no write accelerator",
            )
        )
    return found


def check_local_settings(spec: PoolSpec) -> None:
    """`NotSupported` naming the first of `azure_only_settings`; 400 ``InvalidPropertyValue``
    for a ``targetNodeCommunicationMode`` outside the service's three values."""
    for path, why in azure_only_settings(spec):
        raise NotSupported(f"{path} {why}")
    mode = spec.target_node_communication_mode
    if mode is not None and mode not in NODE_COMMUNICATION_MODES:
        raise InvalidRequest(
            f"targetNodeCommunicationMode {mode!r} is not one of "
            + ", ".join(NODE_COMMUNICATION_MODES),
            code="InvalidPropertyValue",
        )


def check_user(pool: PoolSpec | None, identity: UserIdentity, where: str) -> None:
    """A named user must be one of the pool's user accounts (400 ``InvalidPropertyValue``
    naming ``<where>.userIdentity.username``; inferred: the REST reference says the account
    must exist on the pool, not how the service refuses one that does not)."""
    name = identity.user_name
    if name is None or pool is None:
        return
    if name not in {account.name for account in pool.user_accounts}:
        raise InvalidRequest(
            f"{where}.userIdentity.username: pool {pool.id} has no user account {name}",
            code="InvalidPropertyValue",
        )
