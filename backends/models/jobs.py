"""Jobs: the job to create (`JobSpec`, with its auto pool and its preparation and release
tasks, their ids and defaults as the service gives them), Update Job and Replace Job
(`JobUpdate`), Disable Job's option, the job as the service reports it (`Job`), and List Job
Preparation and Release Task Status's entries, one per node (`PrepReleaseStatus`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from jobprep_release.backends.models.common import (
    ExecutionInfo,
    ResourceFile,
    TaskConstraints,
    TaskContainerSettings,
    UserIdentity,
)
from jobprep_release.backends.models.pools import PoolSpec
from jobprep_release.backends.models.value import Value

JOB_PREPARATION_TASK_ID = "jobpreparation"
JOB_RELEASE_TASK_ID = "jobrelease"
RELEASE_MAX_WALL_CLOCK = timedelta(minutes=15)


class JobState(StrEnum):
    ACTIVE = "active"
    DISABLING = "disabling"
    DISABLED = "disabled"
    ENABLING = "enabling"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class PrepReleaseTaskState(StrEnum):
    """State of a job preparation or release task on one node."""

    RUNNING = "running"
    COMPLETED = "completed"


class OnAllTasksComplete(StrEnum):
    NO_ACTION = "noaction"
    TERMINATE_JOB = "terminatejob"


class OnTaskFailure(StrEnum):
    """A job's ``onTaskFailure``: nothing, or the job action of the failed task's exit
    conditions (REST BatchTaskFailureMode)."""

    NO_ACTION = "noaction"
    PERFORM_EXIT_OPTIONS_JOB_ACTION = "performexitoptionsjobaction"


class DisableJobOption(StrEnum):
    """Disable Job's ``disableTasks``: what becomes of the job's running tasks (REST
    DisableBatchJobOption): requeued to run again once the job is enabled, terminated (completed
    with a failure, never run again), or left to complete."""

    REQUEUE = "requeue"
    TERMINATE = "terminate"
    WAIT = "wait"


# --- specs: what the app asks for ------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobPreparationTaskSpec(Value):
    command_line: str
    id: str = JOB_PREPARATION_TASK_ID
    wait_for_success: bool = True
    rerun_on_node_reboot_after_success: bool = True
    constraints: TaskConstraints = field(default_factory=TaskConstraints)
    environment: Mapping[str, str] = field(default_factory=dict)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = field(default_factory=UserIdentity)
    container_settings: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobReleaseTaskSpec(Value):
    command_line: str
    id: str = JOB_RELEASE_TASK_ID
    max_wall_clock_time: timedelta = RELEASE_MAX_WALL_CLOCK
    retention_time: timedelta | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = field(default_factory=UserIdentity)
    container_settings: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobSpec(Value):
    id: str
    pool_id: str
    preparation: JobPreparationTaskSpec | None = None
    release: JobReleaseTaskSpec | None = None
    common_environment: Mapping[str, str] = field(default_factory=dict)
    on_all_tasks_complete: OnAllTasksComplete = OnAllTasksComplete.NO_ACTION
    max_task_retry_count: int = 0
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    """-1000 (lowest) to 1000: the order in which the jobs of a pool get their tasks run."""
    max_parallel_tasks: int = -1
    """At most this many of the job's tasks run at once; -1: no limit."""
    allow_task_preemption: bool = False
    """Whether a job of higher priority may requeue this job's running tasks to run its own."""
    max_wall_clock_time: timedelta | None = None
    """The job's constraint: measured from its creation; past it the job is terminated with
    ``MaxWallClockTimeExpiry``. None: no limit."""
    on_task_failure: OnTaskFailure = OnTaskFailure.NO_ACTION
    uses_task_dependencies: bool = False

    auto_pool: AutoPoolSpec | None = None
    """A pool the service creates for the job (REST poolInfo.autoPoolSpecification); the job's
    `pool_id` is then the one the service gave it ("" when asked)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobConstraints(Value):
    """A job's execution constraints as Update Job and Replace Job give them (REST
    BatchJobConstraints; omitted values are the service's defaults)."""

    max_wall_clock_time: timedelta | None = None
    max_task_retry_count: int = 0


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobUpdate(Value):
    """Update Job (PATCH): each property given replaces the job's, None leaves it unchanged.
    Replace Job (PUT) takes the same shape, None there meaning the service's default (REST:
    "fully replaces all the updatable properties of the Job")."""

    priority: int | None = None
    max_parallel_tasks: int | None = None
    allow_task_preemption: bool | None = None
    constraints: JobConstraints | None = None
    pool_id: str | None = None
    """Only while the job is disabled (409 otherwise)."""
    on_all_tasks_complete: OnAllTasksComplete | None = None
    """terminatejob cannot go back to noaction (400 ``InvalidPropertyValue``)."""
    metadata: Mapping[str, str] | None = None
    auto_pool: AutoPoolSpec | None = None
    """The job's auto pool as it is, but for its ``keepAlive`` (REST Update Job: "only the
    keepAlive property of the autoPoolSpecification can be updated")."""


class PoolLifetimeOption(StrEnum):
    """How long an auto pool lives (REST BatchPoolLifetimeOption)."""

    JOB = "job"
    JOB_SCHEDULE = "jobschedule"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AutoPoolSpec(Value):
    """An auto pool (REST BatchAutoPoolSpecification): the pool's settings (`pool`, its id
    unused), a prefix for the id the service gives it, its lifetime, and whether it stays
    after its job (`keep_alive`)."""

    pool: PoolSpec
    id_prefix: str | None = None
    lifetime: PoolLifetimeOption = PoolLifetimeOption.JOB
    keep_alive: bool = False


# --- views: what the service reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Job(Value):
    id: str
    pool_id: str
    state: JobState
    terminate_reason: str | None = None
    creation_time: datetime | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    state_transition_time: datetime | None = None
    previous_state: JobState | None = None
    previous_state_transition_time: datetime | None = None
    end_time: datetime | None = None
    """When the job completed (its ``executionInfo.endTime``); None until then."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PrepReleaseExecution(Value):
    state: PrepReleaseTaskState
    execution_info: ExecutionInfo
    task_root_directory: str | None = None
    """The task's directory relative to the node's root (``workitems/<job>/job-1/<id>``)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PrepReleaseStatus(Value):
    """One entry of List Job Preparation and Release Task Status: one node."""

    pool_id: str
    node_id: str
    preparation: PrepReleaseExecution | None
    release: PrepReleaseExecution | None
