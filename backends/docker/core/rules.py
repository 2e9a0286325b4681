"""The service's rules, as pure functions of its records: what is valid, where a task goes,
when a preparation task must run again, when a release task is due, how retries count."""

from __future__ import annotations

from collections.abc import Sequence

from jobprep_release.backends.base import (
    ExecutionResult,
    JobState,
    NodeFillType,
    NodeState,
    PoolState,
    TaskSpec,
    TaskState,
    check_id,
)
from jobprep_release.backends.docker.core import resources
from jobprep_release.backends.docker.core.records import (
    JobNodeRecord,
    JobRecord,
    NodeRecord,
    PoolRecord,
    TaskRecord,
)
from jobprep_release.backends.errors import AlreadyExists, Conflict, InvalidRequest

MAX_NODES = 64
USABLE = (NodeState.IDLE, NodeState.RUNNING)


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
            resources.check_file_path(file.file_path)
        seen.add(lowered)


def parallel_room(job: JobRecord) -> int:
    """How many more of the job's tasks may start now (REST BatchJob maxParallelTasks: -1 is
    no limit; tasks preparing on a node count as running)."""
    limit = job.spec.max_parallel_tasks
    if limit == -1:
        return len(job.tasks)
    busy = (TaskState.RUNNING, TaskState.PREPARING)
    return limit - sum(1 for task in job.tasks.values() if task.state in busy)


def dependencies_met(job: JobRecord, task: TaskRecord) -> bool:
    """Whether the task may be scheduled as far as its dependencies go (always, for now)."""
    return True


def has_room(pool: PoolRecord, used: dict[str, int]) -> bool:
    """Whether any usable node of the pool has a free task slot."""
    slots = pool.spec.task_slots_per_node
    return any(node.state in USABLE and used.get(node.id, 0) < slots for node in pool.nodes)


def pick_node(
    pool: PoolRecord, job: JobRecord, task: TaskRecord, used: dict[str, int]
) -> NodeRecord | None:
    slots = pool.spec.task_slots_per_node
    candidates = [
        node
        for node in pool.nodes
        if node.state in USABLE
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
