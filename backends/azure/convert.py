"""Translation between the backend-neutral models (`jobprep_release.backends.base`) and
azure-batch's models.

Requests go one way (specs to `azure.batch.models` create options), views the other (service
objects to `Pool`, `Job`, `Task`, ...). Values the service may add in later API versions (a new node
state, say) are mapped to a neutral fallback rather than crashing the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from azure.batch import models

from jobprep_release.backends.base import (
    JOB_PREPARATION_TASK_ID,
    JOB_RELEASE_TASK_ID,
    RELEASE_MAX_WALL_CLOCK,
    AllocationState,
    AutoUserScope,
    ComputeNode,
    ElevationLevel,
    ErrorCategory,
    ExecutionInfo,
    ExecutionResult,
    FailureInfo,
    Job,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    NodeFillType,
    NodeState,
    OnAllTasksComplete,
    Pool,
    PoolSpec,
    PoolState,
    PrepReleaseExecution,
    PrepReleaseStatus,
    PrepReleaseTaskState,
    ResourceFile,
    Task,
    TaskConstraints,
    TaskCounts,
    TaskSpec,
    TaskState,
    UserIdentity,
)
from jobprep_release.backends.errors import InvalidRequest

DEFAULT_IMAGE = "canonical:ubuntu-24_04-lts:server:latest"
DEFAULT_NODE_AGENT_SKU = "batch.node.ubuntu 24.04"

_E = TypeVar("_E", bound=Enum)

# Node states of the service that our model folds into a neighbour.
_NODE_STATE_ALIASES = {
    "waitingforstarttask": NodeState.STARTING,
    "starttaskfailed": NodeState.UNUSABLE,
    "preempted": NodeState.OFFLINE,
}


# --- specs to SDK ----------------------------------------------------------------------------


def image_reference(urn: str) -> models.BatchVmImageReference:
    """``publisher:offer:sku:version`` as an image reference; `InvalidRequest` otherwise."""
    parts = urn.split(":")
    if len(parts) != 4 or not all(part.strip() for part in parts):
        raise InvalidRequest(
            f"invalid image {urn!r}: give a marketplace image URN publisher:offer:sku:version, "
            f"e.g. {DEFAULT_IMAGE}",
            code="InvalidPropertyValue",
        )
    publisher, offer, sku, version = (part.strip() for part in parts)
    return models.BatchVmImageReference(publisher=publisher, offer=offer, sku=sku, version=version)


def pool_create_options(spec: PoolSpec) -> models.BatchPoolCreateOptions:
    return models.BatchPoolCreateOptions(
        id=spec.id,
        vm_size=spec.vm_size,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=image_reference(spec.image or DEFAULT_IMAGE),
            node_agent_sku_id=spec.node_agent_sku_id or DEFAULT_NODE_AGENT_SKU,
        ),
        target_dedicated_nodes=spec.target_dedicated_nodes,
        target_low_priority_nodes=spec.target_low_priority_nodes,
        task_slots_per_node=spec.task_slots_per_node,
        task_scheduling_policy=models.BatchTaskSchedulingPolicy(
            node_fill_type=spec.node_fill_type.value
        ),
    )


def environment_settings(environment: Mapping[str, str]) -> list[models.EnvironmentSetting] | None:
    if not environment:
        return None
    return [
        models.EnvironmentSetting(name=name, value=value) for name, value in environment.items()
    ]


def resource_files(files: Sequence[ResourceFile]) -> list[models.ResourceFile] | None:
    if not files:
        return None
    return [
        models.ResourceFile(
            http_url=file.http_url, file_path=file.file_path, file_mode=file.file_mode
        )
        for file in files
    ]


def user_identity(identity: UserIdentity) -> models.UserIdentity:
    return models.UserIdentity(
        auto_user=models.AutoUserSpecification(
            scope=identity.scope.value, elevation_level=identity.elevation_level.value
        )
    )


def task_constraints(constraints: TaskConstraints) -> models.BatchTaskConstraints | None:
    if constraints == TaskConstraints():
        return None
    return models.BatchTaskConstraints(
        max_wall_clock_time=constraints.max_wall_clock_time,
        retention_time=constraints.retention_time,
        max_task_retry_count=constraints.max_task_retry_count,
    )


def preparation_task(spec: JobPreparationTaskSpec) -> models.BatchJobPreparationTask:
    return models.BatchJobPreparationTask(
        id=spec.id,
        command_line=spec.command_line,
        resource_files=resource_files(spec.resource_files),
        environment_settings=environment_settings(spec.environment),
        constraints=task_constraints(spec.constraints),
        wait_for_success=spec.wait_for_success,
        user_identity=user_identity(spec.user_identity),
        rerun_on_node_reboot_after_success=spec.rerun_on_node_reboot_after_success,
    )


def release_task(spec: JobReleaseTaskSpec) -> models.BatchJobReleaseTask:
    return models.BatchJobReleaseTask(
        id=spec.id,
        command_line=spec.command_line,
        resource_files=resource_files(spec.resource_files),
        environment_settings=environment_settings(spec.environment),
        max_wall_clock_time=spec.max_wall_clock_time,
        retention_time=spec.retention_time,
        user_identity=user_identity(spec.user_identity),
    )


def job_create_options(spec: JobSpec) -> models.BatchJobCreateOptions:
    return models.BatchJobCreateOptions(
        id=spec.id,
        pool_info=models.BatchPoolInfo(pool_id=spec.pool_id),
        job_preparation_task=preparation_task(spec.preparation) if spec.preparation else None,
        job_release_task=release_task(spec.release) if spec.release else None,
        common_environment_settings=environment_settings(spec.common_environment),
        all_tasks_complete_mode=spec.on_all_tasks_complete.value,
        constraints=models.BatchJobConstraints(max_task_retry_count=spec.max_task_retry_count),
    )


def task_create_options(spec: TaskSpec) -> models.BatchTaskCreateOptions:
    return models.BatchTaskCreateOptions(
        id=spec.id,
        command_line=spec.command_line,
        resource_files=resource_files(spec.resource_files),
        environment_settings=environment_settings(spec.environment),
        constraints=task_constraints(spec.constraints),
        required_slots=spec.required_slots,
        user_identity=user_identity(spec.user_identity),
    )


# --- SDK to views ----------------------------------------------------------------------------


def _raw(value: Any) -> str | None:
    """An SDK enum or plain string as the service's lower-case wire value."""
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    return str(value).lower()


def _enum(cls: type[_E], value: Any, fallback: _E) -> _E:
    raw = _raw(value)
    try:
        return cls(raw)
    except ValueError:
        return fallback


def _optional_enum(cls: type[_E], value: Any) -> _E | None:
    raw = _raw(value)
    try:
        return cls(raw) if raw is not None else None
    except ValueError:
        return None


def pool_view(pool: models.BatchPool) -> Pool:
    policy = pool.task_scheduling_policy
    return Pool(
        id=pool.id,
        vm_size=pool.vm_size or "",
        state=_enum(PoolState, pool.state, PoolState.ACTIVE),
        allocation_state=_enum(AllocationState, pool.allocation_state, AllocationState.STEADY),
        target_dedicated_nodes=pool.target_dedicated_nodes or 0,
        current_dedicated_nodes=pool.current_dedicated_nodes or 0,
        task_slots_per_node=pool.task_slots_per_node or 1,
        node_fill_type=_enum(
            NodeFillType, policy.node_fill_type if policy else None, NodeFillType.SPREAD
        ),
    )


def node_view(node: models.BatchNode) -> ComputeNode:
    raw_state = _raw(node.state)
    state = _NODE_STATE_ALIASES.get(raw_state or "") or _enum(
        NodeState, raw_state, NodeState.UNKNOWN
    )
    return ComputeNode(
        id=node.id or "", state=state, running_tasks_count=node.running_tasks_count or 0
    )


def job_view(job: models.BatchJob) -> Job:
    execution = job.execution_info
    return Job(
        id=job.id,
        pool_id=job.pool_info.pool_id if job.pool_info and job.pool_info.pool_id else "",
        state=_enum(JobState, job.state, JobState.ACTIVE),
        terminate_reason=execution.termination_reason if execution else None,
    )


def failure_view(info: models.BatchTaskFailureInfo | None) -> FailureInfo | None:
    if info is None:
        return None
    return FailureInfo(
        category=_enum(ErrorCategory, info.category, ErrorCategory.SERVER_ERROR),
        code=info.code or "",
        message=info.message or "",
    )


def execution_view(
    info: models.BatchTaskExecutionInfo
    | models.BatchJobPreparationTaskExecutionInfo
    | models.BatchJobReleaseTaskExecutionInfo
    | None,
) -> ExecutionInfo:
    if info is None:
        return ExecutionInfo()
    return ExecutionInfo(
        start_time=info.start_time,
        end_time=info.end_time,
        exit_code=info.exit_code,
        result=_optional_enum(ExecutionResult, info.result),
        failure_info=failure_view(info.failure_info),
        retry_count=getattr(info, "retry_count", None) or 0,
        requeue_count=getattr(info, "requeue_count", None) or 0,
    )


def task_view(task: models.BatchTask) -> Task:
    return Task(
        id=task.id or "",
        state=_enum(TaskState, task.state, TaskState.ACTIVE),
        node_id=task.node_info.node_id if task.node_info else None,
        execution_info=execution_view(task.execution_info),
    )


def task_counts_view(result: models.BatchTaskCountsResult) -> TaskCounts:
    counts = result.task_counts
    return TaskCounts(
        active=counts.active,
        running=counts.running,
        completed=counts.completed,
        succeeded=counts.succeeded,
        failed=counts.failed,
    )


def _prep_release_execution(
    info: models.BatchJobPreparationTaskExecutionInfo
    | models.BatchJobReleaseTaskExecutionInfo
    | None,
) -> PrepReleaseExecution | None:
    if info is None:
        return None
    return PrepReleaseExecution(
        state=_enum(PrepReleaseTaskState, info.state, PrepReleaseTaskState.RUNNING),
        execution_info=execution_view(info),
    )


def prep_release_view(status: models.BatchJobPreparationAndReleaseTaskStatus) -> PrepReleaseStatus:
    return PrepReleaseStatus(
        pool_id=status.pool_id or "",
        node_id=status.node_id or "",
        preparation=_prep_release_execution(status.job_preparation_task_execution_info),
        release=_prep_release_execution(status.job_release_task_execution_info),
    )


# --- SDK settings back to specs ----------------------------------------------------------------


def _environment(settings: Sequence[models.EnvironmentSetting] | None) -> dict[str, str]:
    return {setting.name: setting.value or "" for setting in settings or ()}


def _identity(identity: models.UserIdentity | None) -> UserIdentity:
    auto = identity.auto_user if identity else None
    if auto is None:
        return UserIdentity()
    return UserIdentity(
        elevation_level=_enum(ElevationLevel, auto.elevation_level, ElevationLevel.NON_ADMIN),
        scope=_enum(AutoUserScope, auto.scope, AutoUserScope.POOL),
    )


def _files(files: Sequence[models.ResourceFile] | None) -> tuple[ResourceFile, ...]:
    return tuple(
        ResourceFile(http_url=f.http_url or "", file_path=f.file_path or "", file_mode=f.file_mode)
        for f in files or ()
    )


def job_spec_view(job: models.BatchJob) -> JobSpec:
    """The job's settings as the service reports them, back in the project's spec form."""
    prep, release = job.job_preparation_task, job.job_release_task
    preparation = None
    if prep is not None:
        limits = prep.constraints
        preparation = JobPreparationTaskSpec(
            command_line=prep.command_line,
            id=prep.id or JOB_PREPARATION_TASK_ID,
            wait_for_success=prep.wait_for_success is not False,
            rerun_on_node_reboot_after_success=prep.rerun_on_node_reboot_after_success is not False,
            constraints=TaskConstraints(
                max_wall_clock_time=limits.max_wall_clock_time if limits else None,
                retention_time=limits.retention_time if limits else None,
                max_task_retry_count=limits.max_task_retry_count if limits else None,
            ),
            environment=_environment(prep.environment_settings),
            resource_files=_files(prep.resource_files),
            user_identity=_identity(prep.user_identity),
        )
    releasing = None
    if release is not None:
        releasing = JobReleaseTaskSpec(
            command_line=release.command_line,
            id=release.id or JOB_RELEASE_TASK_ID,
            max_wall_clock_time=release.max_wall_clock_time or RELEASE_MAX_WALL_CLOCK,
            retention_time=release.retention_time,
            environment=_environment(release.environment_settings),
            resource_files=_files(release.resource_files),
            user_identity=_identity(release.user_identity),
        )
    constraints = job.constraints
    return JobSpec(
        id=job.id or "",
        pool_id=job.pool_info.pool_id if job.pool_info and job.pool_info.pool_id else "",
        preparation=preparation,
        release=releasing,
        common_environment=_environment(job.common_environment_settings),
        on_all_tasks_complete=_enum(
            OnAllTasksComplete, job.all_tasks_complete_mode, OnAllTasksComplete.NO_ACTION
        ),
        max_task_retry_count=(constraints.max_task_retry_count or 0) if constraints else 0,
    )
