"""The backend interface and the backend-neutral models it speaks.

The app's flow is written once against `BatchBackend`; each backend (Docker, Azure) implements it
and translates its own objects into the models. The models mirror the Batch REST API's names and
defaults (api-version 2025-06-01) so that both backends mean the same thing by them. They live in
`backends.models`, one module per resource (`pools`, `nodes`, `jobs`, `tasks`, with
what they share in `common`); every one of them is importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Protocol, runtime_checkable

from jobprep_release.backends.models.common import (
    DEFAULT_RETENTION,
    DEFAULT_USER_IDENTITY,
    NO_ENVIRONMENT,
    AutoUserScope,
    ElevationLevel,
    ErrorCategory,
    ExecutionInfo,
    ExecutionResult,
    FailureInfo,
    ResourceFile,
    TaskConstraints,
    TaskContainerExecutionInfo,
    TaskContainerSettings,
    UserIdentity,
    check_id,
)
from jobprep_release.backends.models.jobs import (
    JOB_PREPARATION_TASK_ID,
    JOB_RELEASE_TASK_ID,
    RELEASE_MAX_WALL_CLOCK,
    AutoPoolSpec,
    DisableJobOption,
    Job,
    JobConstraints,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    JobUpdate,
    OnAllTasksComplete,
    OnTaskFailure,
    PoolLifetimeOption,
    PrepReleaseExecution,
    PrepReleaseStatus,
    PrepReleaseTaskState,
)
from jobprep_release.backends.models.nodes import (
    ComputeNode,
    DisableSchedulingOption,
    InboundEndpoint,
    NodeDeallocationOption,
    NodeLogsRequest,
    NodeLogsUpload,
    NodeState,
    SchedulingState,
    StartTaskInfo,
    StartTaskState,
)
from jobprep_release.backends.models.pools import (
    DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL,
    DEFAULT_RESIZE_TIMEOUT,
    AllocationState,
    AutoScaleRun,
    AutoScaleRunError,
    ContainerConfiguration,
    ImageReference,
    InboundNatPool,
    NodeFillType,
    OsDisk,
    Pool,
    PoolSpec,
    PoolState,
    PoolUpdate,
    ResizeError,
    StartTaskSpec,
    UserAccount,
)
from jobprep_release.backends.models.tasks import (
    DependencyAction,
    ExitCodeMapping,
    ExitCodeRangeMapping,
    ExitConditions,
    ExitOptions,
    JobAction,
    MultiInstanceSettings,
    OutputFile,
    OutputFileUploadCondition,
    Task,
    TaskCounts,
    TaskDependencies,
    TaskIdRange,
    TaskSpec,
    TaskState,
)

__all__ = [
    "DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL",
    "DEFAULT_RESIZE_TIMEOUT",
    "DEFAULT_RETENTION",
    "DEFAULT_USER_IDENTITY",
    "JOB_PREPARATION_TASK_ID",
    "JOB_RELEASE_TASK_ID",
    "NO_ENVIRONMENT",
    "RELEASE_MAX_WALL_CLOCK",
    "AllocationState",
    "AutoPoolSpec",
    "AutoScaleRun",
    "AutoScaleRunError",
    "AutoUserScope",
    "BatchBackend",
    "ComputeNode",
    "ContainerConfiguration",
    "DependencyAction",
    "DisableJobOption",
    "DisableSchedulingOption",
    "ElevationLevel",
    "ErrorCategory",
    "ExecutionInfo",
    "ExecutionResult",
    "ExitCodeMapping",
    "ExitCodeRangeMapping",
    "ExitConditions",
    "ExitOptions",
    "FailureInfo",
    "ImageReference",
    "InboundEndpoint",
    "InboundNatPool",
    "Job",
    "JobAction",
    "JobConstraints",
    "JobPreparationTaskSpec",
    "JobReleaseTaskSpec",
    "JobSpec",
    "JobState",
    "JobUpdate",
    "MultiInstanceSettings",
    "NodeDeallocationOption",
    "NodeFillType",
    "NodeLogsRequest",
    "NodeLogsUpload",
    "NodeState",
    "OnAllTasksComplete",
    "OnTaskFailure",
    "OsDisk",
    "OutputFile",
    "OutputFileUploadCondition",
    "Pool",
    "PoolLifetimeOption",
    "PoolSpec",
    "PoolState",
    "PoolUpdate",
    "PrepReleaseExecution",
    "PrepReleaseStatus",
    "PrepReleaseTaskState",
    "ResizeError",
    "ResourceFile",
    "SchedulingState",
    "StartTaskInfo",
    "StartTaskSpec",
    "StartTaskState",
    "Task",
    "TaskConstraints",
    "TaskContainerExecutionInfo",
    "TaskContainerSettings",
    "TaskCounts",
    "TaskDependencies",
    "TaskIdRange",
    "TaskSpec",
    "TaskState",
    "UserAccount",
    "UserIdentity",
    "check_id",
]

# --- the interface ---------------------------------------------------------------------------


@runtime_checkable
class BatchBackend(Protocol):
    """What the sample needs of a Batch service. Every method may raise `BackendError`s.

    A backend is an async context manager: entering it connects (and, for the Docker backend,
    starts its scheduler); leaving it closes connections. Nothing is deleted on exit.
    """

    name: str
    poll_interval: float
    """Seconds between polls of a wait; a local backend answers cheaply and polls often."""

    async def __aenter__(self) -> BatchBackend: ...

    async def wait_for_change(self, at_most: float) -> None:
        """Return when this backend's state may have changed, after `at_most` seconds at most
        (`at_most` >= 0, seconds; a wait's polls use `poll_interval`). It says nothing of what
        changed, and may return when nothing did: the caller looks again. A backend that
        holds the state (the docker backend in process) returns soon after a change; one told
        of none (azure, and the docker backend attached to another process's service: the
        Batch service pushes nothing) sleeps `at_most`. Only cancellation raises."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def create_pool(self, spec: PoolSpec) -> None:
        """Create a pool and start allocating its nodes; return without waiting for them.

        Raises `AlreadyExists` with code ``PoolExists`` when a pool with that id exists.
        """
        ...

    async def get_pool(self, pool_id: str) -> Pool:
        """The pool's current properties; `NotFound` (``PoolNotFound``) when absent."""
        ...

    async def get_pool_spec(self, pool_id: str) -> PoolSpec:
        """The pool's settings (its start task, metadata, ...); `NotFound` when absent."""
        ...

    async def update_pool(self, pool_id: str, update: PoolUpdate) -> None:
        """Update Pool: the properties `update` gives replace the pool's (a start task applies
        on nodes that join or boot afresh afterwards)."""
        ...

    async def replace_pool_properties(
        self, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
    ) -> None:
        """Replace Pool Properties: the start task (None removes it) and all the metadata."""
        ...

    async def resize_pool(self, pool_id: str, target_dedicated_nodes: int) -> None:
        """Start resizing the pool to that many dedicated nodes."""
        ...

    async def enable_auto_scale(
        self, pool_id: str, formula: str | None, interval: timedelta | None = None
    ) -> None:
        """Enable Autoscale on the pool, or change its formula or evaluation interval (REST
        Enable Pool Auto Scale); the service evaluates it at once when newly enabled."""
        ...

    async def evaluate_auto_scale(self, pool_id: str, formula: str) -> AutoScaleRun:
        """The formula's evaluation on the pool now, not applied (REST Evaluate Pool Auto
        Scale); `Conflict` unless autoscale is enabled on the pool."""
        ...

    async def disable_auto_scale(self, pool_id: str) -> None:
        """Disable Autoscale: the pool keeps its current targets (REST Disable Pool Auto
        Scale)."""
        ...

    async def delete_pool(self, pool_id: str, *, wait: bool = True) -> None:
        """Delete the pool and its nodes; with `wait`, until it is gone (its deletion's final
        status checked), else once the service has accepted the deletion."""
        ...

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        """The pool's compute nodes, in the service's order."""
        ...

    async def find_job(self, job_id: str) -> Job | None:
        """The job with that id, found by a filtered list as the sample does, or None."""
        ...

    async def create_job(self, spec: JobSpec) -> None:
        """Create a job; `AlreadyExists` (``JobExists``) when the id is taken."""
        ...

    async def get_job(self, job_id: str) -> Job:
        """The job's current state; `NotFound` (``JobNotFound``) when absent."""
        ...

    async def get_job_spec(self, job_id: str) -> JobSpec:
        """The job's settings: its preparation and release tasks and job-wide options."""
        ...

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        """Add tasks to an active job, in as few requests as the service allows.

        Raises `InvalidRequest` for ids the service rejects (``TaskIdSameAsJobPreparationTask``,
        duplicates) and `AlreadyExists` (``TaskExists``) for ids already in the job.
        """
        ...

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        """Counts of the job's tasks by state: the cheap way to poll for completion."""
        ...

    async def list_tasks(self, job_id: str) -> list[Task]:
        """Every task of the job, in the order they were added."""
        ...

    async def get_task(self, job_id: str, task_id: str) -> Task:
        """One task; `NotFound` (``TaskNotFound``) when absent."""
        ...

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        """End a task: a running one is killed, an active one completes without running."""
        ...

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        """Start rebooting a node (running tasks are requeued; its files stay)."""
        ...

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        """Start reimaging a node (running tasks are requeued; its disk starts afresh)."""
        ...

    async def upload_node_logs(
        self, pool_id: str, node_id: str, request: NodeLogsRequest
    ) -> NodeLogsUpload:
        """Upload Batch Service Logs: the node's service log files with an entry in the
        request's time range to its container. `NotFound` for an unknown pool or node."""
        ...

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        """A file's bytes, `path` relative to the node's task root (``shared/x.txt``).

        Raises `NotFound` (``FileNotFound``) when there is no such file, and `InvalidRequest`
        for a path that leaves the node's root.
        """
        ...

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        """Request termination: the job goes `terminating`, its running tasks are ended and
        release tasks run; it reaches `completed` afterwards (poll `get_job`)."""
        ...

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        """Per node, how the job's preparation and release tasks ran.

        Raises `Conflict` (``JobPreparationTaskNotSpecified``) when the job has no prep task.
        """
        ...

    async def delete_job(self, job_id: str, *, wait: bool = True) -> None:
        """Delete the job (running release first when it is still active); with `wait`, until
        it is gone (its deletion's final status checked), else once the service accepted it."""
        ...

    async def update_job(self, job_id: str, update: JobUpdate) -> None:
        """Update Job: the properties `update` gives replace the job's, the rest stay.

        Raises `Conflict` when the job has ended, or `update` changes its pool while it is not
        disabled; `InvalidRequest` for onAllTasksComplete from terminatejob to noaction.
        """
        ...

    async def replace_job(self, job_id: str, update: JobUpdate) -> None:
        """Replace Job: every updatable property replaced, those `update` leaves None by the
        service's defaults; errors as `update_job`."""
        ...

    async def disable_job(self, job_id: str, option: DisableJobOption) -> None:
        """Disable Job: no new task starts; running tasks requeued, terminated or left to end
        by `option`; the job reads ``disabling``, then ``disabled``. `Conflict` when the job is
        neither active nor already disabling or disabled."""
        ...

    async def enable_job(self, job_id: str) -> None:
        """Enable Job: a disabled job becomes active and its tasks run again."""
        ...

    async def update_task(self, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
        """Update Task: the task's constraints (wall clock, retention, retries) replaced."""
        ...

    async def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Reactivate Task: a task that failed is active again (retry count 0) and runs up to
        its retry count again. `Conflict` for a task that did not fail, or a job that ended."""
        ...

    async def delete_task(self, job_id: str, task_id: str) -> None:
        """Delete Task: the task is ended if it runs, then gone, with its files on its node."""
        ...

    async def delete_node_file(
        self, pool_id: str, node_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Node File, `path` relative to the node's root: a file, an empty directory,
        or with `recursive` a directory and everything in it. `NotFound` (``FileNotFound``)."""
        ...

    async def delete_task_file(
        self, job_id: str, task_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Task File, `path` relative to the task's directory on its node (as
        `delete_node_file`)."""
        ...
