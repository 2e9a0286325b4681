"""The service's durable records: pools, nodes, jobs, tasks, how each process ran, and when each
object changed.

Every state change goes through `move`, which records it where it happens: the new state's time,
the state before it and that state's time, and a new ETag and last-modified time (`touch`).
Reads (views, the endpoint) only copy these values, so every client sees one history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from jobprep_release.backends.base import (
    AllocationState,
    ExecutionResult,
    FailureInfo,
    JobSpec,
    JobState,
    NodeDeallocationOption,
    NodeState,
    PoolSpec,
    PoolState,
    ResizeError,
    SchedulingState,
    StartTaskSpec,
    TaskContainerExecutionInfo,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.schedules import JobScheduleSpec, JobScheduleState

STATE_VERSION = 1


class _Activations:
    """How many times any record moved into ``active`` in this process (`move` counts): the
    core's task indexes (`index.TaskIndex`) are rebuilt when it changes."""

    count = 0


activations = _Activations()


@dataclass(slots=True)
class History:
    """When an object was created and last changed, its ETag tick, and its last transition.

    Times are epoch seconds from the service's clock. `tick` grows on every change; the ETag
    is its hexadecimal form (`etag`).
    """

    created: float = 0.0
    modified: float = 0.0
    tick: int = 0
    state_time: float = 0.0
    previous_state: str | None = None
    previous_state_time: float | None = None

    @property
    def etag(self) -> str:
        """The service's ETag form: ``0x8D`` and 13 hex digits."""
        return f"0x8D{self.tick % 16**13:013X}"


def new_history(at: float) -> History:
    history = History(created=at, state_time=at)
    touch_history(history, at)
    return history


def touch_history(history: History, at: float) -> None:
    history.modified = at
    history.tick = max(history.tick + 1, int(at * 10_000_000))


@dataclass(slots=True)
class Execution:
    """One run of a process on a node: a task, a preparation or a release task."""

    key: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    result: ExecutionResult | None = None
    failure: FailureInfo | None = None
    retry_count: int = 0
    requeue_count: int = 0
    completed: bool = False
    last_retry_time: float | None = None
    """When the latest retry started (REST: not moved by a restart for another reason)."""
    last_requeue_time: float | None = None
    """When the service last requeued the run (its node rebooted, was lost or removed)."""
    retrying: bool = False
    """A retry was decided and has not started yet; its start sets `last_retry_time`."""
    container: TaskContainerExecutionInfo | None = None
    """The container of a container run (REST TaskContainerExecutionInfo)."""


@dataclass(slots=True)
class NodeRecord:
    id: str
    index: int
    state: NodeState = NodeState.CREATING
    boot: int = 0
    history: History = field(default_factory=History)
    last_boot_time: float | None = None
    total_tasks_run: int = 0
    """Tasks completed on the node, over every job, deleted ones too (REST BatchNode
    totalTasksRun: normal tasks, not preparation or release tasks). 0 in older state files."""
    total_tasks_succeeded: int = 0
    """Of those, the ones that succeeded (REST totalTasksSucceeded)."""
    running_tasks: int = 0
    """Tasks running (or preparing) on the node now (REST runningTasksCount)."""
    running_task_slots: int = 0
    """The task slots those tasks hold (REST runningTaskSlotsCount)."""
    start: Execution | None = None
    """The pool's start task's latest run here (None: none ran since the node's last boot
    or reimage; older state files)."""
    start_boot: int = 0
    """The boot the start task was last decided for (run, or none to run): a node booting
    again runs it again (`starttask.ADOPTED` for a node found again from the executor)."""
    start_task: StartTaskSpec | None = None
    """The start task that run is of: the pool's when it started (a replaced one applies
    from the node's next boot, as the service does)."""
    scheduling: SchedulingState = SchedulingState.ENABLED
    """Disable/Enable Node Scheduling (REST schedulingState)."""
    dedicated: bool = True
    """False for a spot/low-priority node (REST isDedicated)."""
    deallocation: NodeDeallocationOption | None = None
    """While the node is `leavingpool`: how it leaves (`pools.settle_leaving`)."""


@dataclass(slots=True)
class PoolRecord:
    spec: PoolSpec
    serial: int
    created: float
    state: PoolState = PoolState.ACTIVE
    nodes: list[NodeRecord] = field(default_factory=list)
    history: History = field(default_factory=History)
    allocation_state: AllocationState = AllocationState.STEADY
    allocation_state_time: float = 0.0
    resize_started: float | None = None
    """When the current (or last) resize began: its deadline is this plus `resizeTimeout`."""
    resize_errors: list[ResizeError] = field(default_factory=list)
    """Errors of the last resize (REST resizeErrors)."""
    autoscale: AutoscaleRecord | None = None
    """The autoscale schedule and last evaluation, while autoscale is enabled."""
    auto_pool_job: str | None = None
    """The job whose auto pool this is, when it goes with the job (not `keepAlive`)."""


@dataclass(slots=True)
class AutoscaleRecord:
    """A pool's autoscale evaluations: when the next is due, and the last one (REST
    autoScaleRun: its time, ``results``, or its error's code, message and ``Message`` detail)."""

    next_evaluation: float
    enabled_at: float | None = None
    """When Enable Autoscale last changed the pool (not Add Pool): the next may come 30 s on."""
    run_time: float | None = None
    results: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_detail: str | None = None


@dataclass(slots=True)
class JobNodeRecord:
    """What one job did on one node: its preparation and release tasks."""

    prep: Execution | None = None
    prep_boot: int = 0
    prep_blocked: bool = False
    release: Execution | None = None
    ran_tasks: bool = False
    has_files: bool = False


@dataclass(slots=True)
class TaskRecord:
    spec: TaskSpec
    seq: int
    state: TaskState = TaskState.ACTIVE
    node_id: str | None = None
    run: Execution = field(default_factory=Execution)
    files_removed: bool = False
    history: History = field(default_factory=History)
    instances: Sequence[InstanceRecord] = ()
    """A multi-instance task's instances while placed (`core.multiinstance`): the primary
    first (its coordination command's run), then the subtasks (ids 1, 2, ...). Replaced
    whole, never changed in place (an empty tuple, shared, for every other task)."""
    tally: TaskTally | None = field(
        default=None, repr=False, compare=False, metadata={"transient": True}
    )
    """The job's counts this task is counted in (`TaskTally`; not saved)."""


@dataclass(slots=True)
class InstanceRecord:
    """One instance of a multi-instance task on its node: its coordination command's run and
    its state as List Subtasks reports it (``running`` until the primary ends)."""

    node_id: str
    run: Execution = field(default_factory=Execution)
    state: TaskState = TaskState.RUNNING
    history: History = field(default_factory=History)


@dataclass(slots=True)
class TaskTally:
    """A job's tasks by state, kept up to date by `move` (not saved: `index.TaskIndex.tally`
    rebuilds it from the records), so Get Task Counts scans nothing."""

    counts: dict[TaskState, int]
    succeeded: set[int]
    """Ids (`id`) of the completed tasks whose run succeeded."""
    size: int
    next_seq: int

    def moved(self, task: TaskRecord, old: TaskState) -> None:
        self.counts[old] -= 1
        self.counts[task.state] += 1
        if old is TaskState.COMPLETED:
            self.succeeded.discard(id(task))
        if task.state is TaskState.COMPLETED and task.run.result is ExecutionResult.SUCCESS:
            self.succeeded.add(id(task))


@dataclass(slots=True)
class JobRecord:
    spec: JobSpec
    created: float
    state: JobState = JobState.ACTIVE
    terminate_reason: str | None = None
    next_seq: int = 0
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    nodes: dict[str, JobNodeRecord] = field(default_factory=dict)
    history: History = field(default_factory=History)
    end_time: float | None = None


@dataclass(slots=True)
class ScheduleRecord:
    """A job schedule (`core.schedules`): the recurrence it is due at, the jobs it made."""

    spec: JobScheduleSpec
    state: JobScheduleState = JobScheduleState.ACTIVE
    history: History = field(default_factory=History)
    next_run: float | None = None
    """When the next job is due (REST executionInfo.nextRunTime); None: no more are."""
    last_due: float | None = None
    """When the last job created was due."""
    jobs_created: int = 0
    """Jobs created so far; the next is ``{id}:job-{jobs_created + 1}``."""
    jobs: list[str] = field(default_factory=list)
    """The ids of the jobs it created that may still exist (deleted ones are dropped)."""
    end_time: float | None = None
    auto_pool_id: str | None = None
    """The pool made for the schedule (``poolLifetimeOption`` ``jobschedule``), while it lives."""


@dataclass(slots=True)
class ServiceState:
    version: int = STATE_VERSION
    journal_seq: int = 0
    """The last journal entry (`store.Store.append`) this state includes."""
    pools: dict[str, PoolRecord] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    schedules: dict[str, ScheduleRecord] = field(default_factory=dict)
    token_secret: str = ""
    """The key of the tasks' authentication tokens (`core.tokens`); made on first start."""


Record = PoolRecord | NodeRecord | JobRecord | TaskRecord | ScheduleRecord | InstanceRecord


def move(record: Record, state: StrEnum, at: float) -> None:
    """Put `record` in `state` at `at`, recording the transition (nothing when unchanged)."""
    if record.state == state:
        return
    history = record.history
    history.previous_state = str(record.state)
    history.previous_state_time = history.state_time
    old = record.state
    record.state = state  # type: ignore[assignment]
    tally = getattr(record, "tally", None)
    if tally is not None:
        tally.moved(record, old)
    if state == "active":
        activations.count += 1
    history.state_time = at
    touch_history(history, at)


def touch(record: Record, at: float) -> None:
    """Record that `record` changed at `at` (a new ETag and last-modified time)."""
    touch_history(record.history, at)


def fill_histories(state: ServiceState, at: float) -> None:
    """Give records from an older state file (without histories) one starting now, so that
    times are never the epoch. Their creation time is kept where it was recorded."""
    for pool in state.pools.values():
        _fill(pool.history, pool.created or at)
        if not pool.allocation_state_time:
            pool.allocation_state_time = pool.history.state_time
        for node in pool.nodes:
            _fill(node.history, pool.created or at)
    for job in state.jobs.values():
        _fill(job.history, job.created or at)
        for task in job.tasks.values():
            fresh = not task.history.tick
            _fill(task.history, job.created or at)
            run = task.run
            if fresh and task.state is TaskState.COMPLETED and run.start_time and run.end_time:
                task.history.previous_state = TaskState.RUNNING.value
                task.history.previous_state_time = run.start_time
                task.history.state_time = run.end_time


def _fill(history: History, created: float) -> None:
    if history.tick:
        return
    history.created = history.state_time = created
    touch_history(history, created)
