"""Records to models: how the service's durable records read through the backend interface.

Views only copy what the records hold (states, times, ETags recorded where each change
happened); reading never changes a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, overload

from jobprep_release.backends.administration import (
    PoolNodeCounts,
    count_states,
    inbound_endpoints,
)
from jobprep_release.backends.base import (
    AutoScaleRun,
    AutoScaleRunError,
    ComputeNode,
    ErrorCategory,
    ExecutionInfo,
    ExecutionResult,
    FailureInfo,
    Job,
    JobState,
    NodeState,
    Pool,
    PoolSpec,
    PoolState,
    PrepReleaseExecution,
    PrepReleaseTaskState,
    StartTaskInfo,
    StartTaskState,
    Task,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core.records import (
    AutoscaleRecord,
    Execution,
    History,
    JobRecord,
    NodeRecord,
    PoolRecord,
    TaskRecord,
)

S = TypeVar("S", bound=StrEnum)


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
        last_retry_time=stamp(execution.last_retry_time) if execution.retry_count else None,
        last_requeue_time=stamp(execution.last_requeue_time) if execution.requeue_count else None,
        container_info=execution.container,
    )


def _history(history: History, states: type[S]) -> dict[str, Any]:
    """The view fields of a record's history: creation and last change, ETag, and the last
    transition (`states`: the enum its previous state reads as)."""
    previous = history.previous_state
    return {
        "creation_time": stamp(history.created),
        "last_modified": stamp(history.modified),
        "etag": history.etag,
        "state_transition_time": stamp(history.state_time),
        "previous_state": states(previous) if previous else None,
        "previous_state_transition_time": stamp(history.previous_state_time),
    }


def task_view(task: TaskRecord) -> Task:
    return Task(
        id=task.spec.id,
        state=task.state,
        node_id=task.node_id,
        execution_info=execution_info(task.run),
        **_history(task.history, TaskState),
    )


class TaskViews(Sequence[Task]):
    """A job's tasks as views, each made when first read: a page of a large job's list makes
    the views of its page only. The records are those the job had when it was made; each view
    shows its record as it was when the view was made (read across awaits, a page may show
    tasks changed meanwhile, or deleted since)."""

    def __init__(self, records: Sequence[TaskRecord]) -> None:
        self._records = records
        self._views: list[Task | None] = [None] * len(records)

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> Task: ...

    @overload
    def __getitem__(self, index: slice) -> list[Task]: ...

    def __getitem__(self, index: int | slice) -> Task | list[Task]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._records)))]
        view = self._views[index]
        if view is None:
            view = self._views[index] = task_view(self._records[index])
        return view

    def head(self, index: int) -> tuple[str, TaskState, TaskSpec]:
        """The id, state and spec of the task at `index`, without making its view (what a
        ``$filter`` on ``id`` or ``state`` reads of every task)."""
        record = self._records[index]
        return record.spec.id, record.state, record.spec


def prep_release_view(
    execution: Execution | None, directory: str | None = None
) -> PrepReleaseExecution | None:
    """A preparation or release task on one node; `directory`: its task directory relative to
    the node's root (REST JobPreparationTaskExecutionInfo.taskRootDirectory)."""
    if execution is None:
        return None
    state = PrepReleaseTaskState.COMPLETED if execution.completed else PrepReleaseTaskState.RUNNING
    return PrepReleaseExecution(
        state=state, execution_info=execution_info(execution), task_root_directory=directory
    )


def job_view(job: JobRecord) -> Job:
    return Job(
        id=job.spec.id,
        pool_id=job.spec.pool_id,
        state=job.state,
        terminate_reason=job.terminate_reason,
        **_history(job.history, JobState),
        end_time=stamp(job.end_time) if job.state is JobState.COMPLETED else None,
    )


def _current(pool: PoolRecord, *, dedicated: bool) -> int:
    """Nodes of the kind in the pool, but those leaving it (preempted ones count: REST
    currentLowPriorityNodes)."""
    return sum(
        node.dedicated is dedicated and node.state is not NodeState.LEAVING_POOL
        for node in pool.nodes
    )


def pool_view(pool: PoolRecord) -> Pool:
    return Pool(
        id=pool.spec.id,
        vm_size=pool.spec.vm_size,
        state=pool.state,
        allocation_state=pool.allocation_state,
        target_dedicated_nodes=pool.spec.target_dedicated_nodes,
        current_dedicated_nodes=_current(pool, dedicated=True),
        task_slots_per_node=pool.spec.task_slots_per_node,
        node_fill_type=pool.spec.node_fill_type,
        **_history(pool.history, PoolState),
        allocation_state_transition_time=stamp(pool.allocation_state_time),
        resize_errors=tuple(pool.resize_errors) if pool.allocation_state.value == "steady" else (),
        target_low_priority_nodes=pool.spec.target_low_priority_nodes,
        current_low_priority_nodes=_current(pool, dedicated=False),
        auto_scale_run=auto_scale_run(pool.autoscale),
    )


def auto_scale_run(record: AutoscaleRecord | None) -> AutoScaleRun | None:
    """The pool's last autoscale evaluation (REST autoScaleRun); None before the first."""
    if record is None or record.run_time is None:
        return None
    error = None
    if record.error_code is not None:
        values = (("Message", record.error_detail),) if record.error_detail else ()
        error = AutoScaleRunError(record.error_code, record.error_message or "", values)
    return AutoScaleRun(
        timestamp=datetime.fromtimestamp(record.run_time, UTC), results=record.results, error=error
    )


def node_view(
    node: NodeRecord, address: str | None = None, pool: PoolSpec | None = None
) -> ComputeNode:
    """The node as recorded (its task counts too: recorded where tasks start and end);
    `address`: its IP address as the executor knows it."""
    return ComputeNode(
        id=node.id,
        state=node.state,
        running_tasks_count=node.running_tasks,
        running_task_slots_count=node.running_task_slots,
        total_tasks_run=node.total_tasks_run,
        total_tasks_succeeded=node.total_tasks_succeeded,
        state_transition_time=stamp(node.history.state_time),
        allocation_time=stamp(node.history.created),
        last_boot_time=stamp(node.last_boot_time),
        ip_address=address,
        start_task_info=start_task_info(node.start),
        start_task=node.start_task,
        scheduling_state=node.scheduling,
        is_dedicated=node.dedicated,
        inbound_endpoints=inbound_endpoints(pool, node.index) if pool else (),
    )


def node_counts(pool: PoolRecord) -> PoolNodeCounts:
    """The pool's entry of List Pool Node Counts."""
    return PoolNodeCounts(
        pool_id=pool.spec.id,
        dedicated=count_states(node.state for node in pool.nodes if node.dedicated),
        low_priority=count_states(node.state for node in pool.nodes if not node.dedicated),
    )


def start_task_info(run: Execution | None) -> StartTaskInfo | None:
    """The start task's latest run on a node, once it started (REST StartTaskInformation
    requires its start time)."""
    if run is None or (run.start_time is None and not run.completed):
        return None
    state = StartTaskState.COMPLETED if run.completed else StartTaskState.RUNNING
    return StartTaskInfo(state=state, execution_info=execution_info(run))
