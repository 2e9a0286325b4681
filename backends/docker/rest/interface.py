"""What the endpoint needs of a Batch service: the interface its handlers are written against.

`jobprep_release.backends.docker.core.BatchService` implements it (over the Docker executor, or
over the fake one); any other implementation can be served the same way (`app.build_app`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from jobprep_release.backends.administration import NodeAdministration
from jobprep_release.backends.base import (
    AutoScaleRun,
    ComputeNode,
    DisableJobOption,
    Job,
    JobSpec,
    JobUpdate,
    NodeLogsRequest,
    NodeLogsUpload,
    Pool,
    PoolSpec,
    PoolUpdate,
    PrepReleaseStatus,
    StartTaskSpec,
    Task,
    TaskConstraints,
    TaskCounts,
    TaskSpec,
)
from jobprep_release.backends.docker.core.executor import FileInfo
from jobprep_release.backends.docker.core.multiinstance import Subtask
from jobprep_release.backends.docker.core.views import TaskViews
from jobprep_release.backends.schedules import JobSchedule, JobScheduleSpec


class EndpointService(NodeAdministration, Protocol):
    """A Batch service, as the REST handlers call it. Errors are the project's
    (`NotFound`, `Conflict`, ... with the service's codes); reads never change anything.
    Pool sizes and node administration: `NodeAdministration`."""

    async def preempt_node(self, pool_id: str, node_id: str) -> None:
        """Evict a spot/low-priority node (the endpoint's own operation; no Batch API)."""
        ...

    async def create_pool(self, spec: PoolSpec) -> None:
        """Add Pool; `AlreadyExists` (``PoolExists``)."""
        ...

    async def list_pools(self) -> list[Pool]:
        """Every pool."""
        ...

    async def get_pool(self, pool_id: str) -> Pool:
        """One pool; `NotFound` (``PoolNotFound``)."""
        ...

    async def resize_pool(
        self, pool_id: str, target_dedicated_nodes: int, resize_timeout: timedelta | None = None
    ) -> None:
        """Resize Pool (dedicated nodes); `resize_timeout`, when given, becomes the pool's."""
        ...

    async def update_pool(self, pool_id: str, update: PoolUpdate) -> None:
        """Update Pool: the properties `update` gives replace the pool's."""
        ...

    async def replace_pool_properties(
        self, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
    ) -> None:
        """Replace Pool Properties: the start task (None removes it) and all the metadata."""
        ...

    async def enable_auto_scale(
        self, pool_id: str, formula: str | None, interval: timedelta | None = None
    ) -> None:
        """Enable Autoscale, or change its formula or interval; 400
        ``AutoScalingFormulaSyntaxError``, 409 ``PoolBeingResized``."""
        ...

    async def disable_auto_scale(self, pool_id: str) -> None:
        """Disable Autoscale (the targets stay)."""
        ...

    async def evaluate_auto_scale(self, pool_id: str, formula: str) -> AutoScaleRun:
        """Evaluate Autoscale: the run, not applied; 409 unless autoscale is enabled."""
        ...

    async def begin_delete_pool(self, pool_id: str) -> None:
        """Delete Pool: returns once the pool reads ``deleting`` (recorded and saved), the
        service removing it in the background; `NotFound`, `Conflict` (``PoolBeingDeleted``)."""
        ...

    def pool_spec(self, pool_id: str) -> PoolSpec:
        """The pool as asked for (with its current target); `NotFound`."""
        ...

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        """The pool's nodes in the service's order."""
        ...

    async def get_node(self, pool_id: str, node_id: str) -> ComputeNode:
        """One node; `NotFound` (``NodeNotFound``)."""
        ...

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        """Reboot (running tasks requeued, files kept)."""
        ...

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        """Reimage (running tasks requeued, disk afresh)."""
        ...

    async def upload_node_logs(
        self, pool_id: str, node_id: str, request: NodeLogsRequest
    ) -> NodeLogsUpload:
        """Upload Batch Service Logs (`BatchBackend.upload_node_logs`)."""
        ...

    async def create_job_schedule(self, spec: JobScheduleSpec) -> None:
        """Add Job Schedule; `AlreadyExists` (``JobScheduleExists``)."""
        ...

    async def list_job_schedules(self) -> list[JobSchedule]:
        """Every job schedule."""
        ...

    async def get_job_schedule(self, schedule_id: str) -> JobSchedule:
        """One job schedule; `NotFound` (``JobScheduleNotFound``)."""
        ...

    def job_schedule_spec(self, schedule_id: str) -> JobScheduleSpec:
        """The schedule's settings as last added, updated or replaced."""
        ...

    async def update_job_schedule(
        self, schedule_id: str, spec: JobScheduleSpec, *, replace_all: bool
    ) -> None:
        """Update (PATCH, `spec` merged by the caller) or Replace (PUT) Job Schedule; 409
        ``JobScheduleCompleted`` and the like once it no longer creates jobs."""
        ...

    async def disable_job_schedule(self, schedule_id: str) -> None:
        """Disable Job Schedule: no job is created until it is enabled."""
        ...

    async def enable_job_schedule(self, schedule_id: str) -> None:
        """Enable Job Schedule."""
        ...

    async def terminate_job_schedule(self, schedule_id: str) -> None:
        """Terminate Job Schedule (its active job terminated too)."""
        ...

    async def begin_delete_job_schedule(self, schedule_id: str) -> None:
        """Delete Job Schedule: ``deleting`` when this returns, its jobs deleted after."""
        ...

    async def list_schedule_jobs(self, schedule_id: str) -> list[Job]:
        """List Jobs from Job Schedule."""
        ...

    async def list_subtasks(self, job_id: str, task_id: str) -> list[Subtask]:
        """List Subtasks: a multi-instance task's subtasks (none for another task)."""
        ...

    def set_account_url(self, url: str) -> None:
        """The endpoint's URL, which tasks see as ``AZ_BATCH_ACCOUNT_URL``."""
        ...

    def task_token_job(self, token: str) -> str | None:
        """The job a task's authentication token (``AZ_BATCH_AUTHENTICATION_TOKEN``) grants
        access to; None when it is not one the service gave."""
        ...

    async def create_job(self, spec: JobSpec) -> None:
        """Add Job; `AlreadyExists` (``JobExists``)."""
        ...

    async def list_jobs(self) -> list[Job]:
        """Every job."""
        ...

    async def get_job(self, job_id: str) -> Job:
        """One job; `NotFound` (``JobNotFound``)."""
        ...

    def job_spec(self, job_id: str) -> JobSpec:
        """The job as asked for; `NotFound`."""
        ...

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        """Terminate Job; `Conflict` (``JobCompleted``) when it already ended."""
        ...

    async def begin_delete_job(self, job_id: str) -> None:
        """Delete Job: returns once the job reads ``deleting`` (recorded and saved), the
        service ending its tasks, running its release tasks and removing it in the background;
        `NotFound`, `Conflict` (``JobBeingDeleted``)."""
        ...

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        """The job's tasks by state."""
        ...

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        """Per node, the job's preparation and release tasks."""
        ...

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        """Add tasks to an active job (all or none)."""
        ...

    async def list_tasks(self, job_id: str) -> list[Task]:
        """The job's tasks in the order they were added."""
        ...

    async def task_views(self, job_id: str) -> TaskViews:
        """`list_tasks`, each view made when first read: read it before the next await."""
        ...

    async def get_task(self, job_id: str, task_id: str) -> Task:
        """One task; `NotFound` (``TaskNotFound``)."""
        ...

    def task_spec(self, job_id: str, task_id: str) -> TaskSpec:
        """The task as asked for; `NotFound`."""
        ...

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        """Terminate Task."""
        ...

    def task_location(self, job_id: str, task_id: str) -> tuple[str, str, str]:
        """(pool id, node id, task directory relative to the node's root); `NotFound`
        (``FileNotFound``) when the task has no files."""
        ...

    async def node_file_properties(self, pool_id: str, node_id: str, path: str) -> FileInfo:
        """A node file's or directory's properties, `path` relative to the node's root."""
        ...

    def stream_node_file(
        self, pool_id: str, node_id: str, path: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """A node file's bytes from offset `start`, `length` of them (to the end when None),
        as chunks read while they are sent: never the whole file in memory."""
        ...

    async def list_node_files(
        self, pool_id: str, node_id: str, directory: str, *, recursive: bool
    ) -> list[FileInfo]:
        """What a directory (relative to the node's root; "" for the root) holds."""
        ...

    async def update_job(self, job_id: str, update: JobUpdate) -> None:
        """Update Job (PATCH); `Conflict`, `InvalidRequest`."""
        ...

    async def replace_job(self, job_id: str, update: JobUpdate) -> None:
        """Replace Job (PUT): what `update` leaves None takes the default."""
        ...

    async def disable_job(self, job_id: str, option: DisableJobOption) -> None:
        """Disable Job; `Conflict` unless active, disabling or disabled."""
        ...

    async def enable_job(self, job_id: str) -> None:
        """Enable Job; `Conflict` unless disabled."""
        ...

    async def update_task(self, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
        """Update Task: its constraints replaced."""
        ...

    async def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Reactivate Task; `Conflict` unless the task failed and the job has not ended."""
        ...

    async def delete_task(self, job_id: str, task_id: str) -> None:
        """Delete Task (and its files on its node)."""
        ...

    async def delete_node_file(
        self, pool_id: str, node_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Node File; `NotFound`, `Conflict` for a directory not empty without
        `recursive`."""
        ...

    async def delete_task_file(
        self, job_id: str, task_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Task File (relative to the task's directory)."""
        ...
