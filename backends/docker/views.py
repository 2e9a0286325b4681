"""Records to models: how the service's durable records read through the backend interface."""

from __future__ import annotations

from datetime import UTC, datetime

from jobprep_release.backends.base import (
    ComputeNode,
    ErrorCategory,
    ExecutionInfo,
    ExecutionResult,
    FailureInfo,
    Job,
    NodeState,
    PrepReleaseExecution,
    PrepReleaseTaskState,
    Task,
)
from jobprep_release.backends.docker.state import Execution, JobRecord, NodeRecord, TaskRecord


def stamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def failure(code: str, message: str) -> FailureInfo:
    return FailureInfo(category=ErrorCategory.USER_ERROR, code=code, message=message)


def complete(
    execution: Execution, exit_code: int | None, why: FailureInfo | None, end: float
) -> None:
    """Mark an execution finished: success when it has no failure."""
    execution.exit_code = exit_code
    execution.failure = why
    execution.result = ExecutionResult.FAILURE if why else ExecutionResult.SUCCESS
    execution.end_time = end
    execution.completed = True
    execution.key = None


def execution_info(execution: Execution) -> ExecutionInfo:
    return ExecutionInfo(
        start_time=stamp(execution.start_time),
        end_time=stamp(execution.end_time) if execution.completed else None,
        exit_code=execution.exit_code,
        result=execution.result if execution.completed else None,
        failure_info=execution.failure,
        retry_count=execution.retry_count,
        requeue_count=execution.requeue_count,
    )


def task_view(task: TaskRecord) -> Task:
    return Task(
        id=task.spec.id,
        state=task.state,
        node_id=task.node_id,
        execution_info=execution_info(task.run),
    )


def prep_release_view(execution: Execution | None) -> PrepReleaseExecution | None:
    if execution is None:
        return None
    state = PrepReleaseTaskState.COMPLETED if execution.completed else PrepReleaseTaskState.RUNNING
    return PrepReleaseExecution(state=state, execution_info=execution_info(execution))


def job_view(job: JobRecord) -> Job:
    return Job(
        id=job.spec.id,
        pool_id=job.spec.pool_id,
        state=job.state,
        terminate_reason=job.terminate_reason,
    )


def node_view(node: NodeRecord, busy: dict[str, int]) -> ComputeNode:
    """A ready node is `running` while any task holds one of its slots, else `idle`."""
    state = node.state
    if state in (NodeState.IDLE, NodeState.RUNNING):
        state = NodeState.RUNNING if busy.get(node.id) else NodeState.IDLE
    return ComputeNode(id=node.id, state=state, running_tasks_count=busy.get(node.id, 0))
