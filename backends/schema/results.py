"""Views <-> azure-batch's result models, in both directions: pools, nodes, jobs, tasks, their
execution, task counts and the preparation/release status per node.

SDK to views (`pool_view`, `node_view`, ...): what the azure backend reads. Views to SDK
(`pool_model`, `node_model`, ...): what the local endpoint renders (``shapes.as_json``), the
object's settings from its spec (`requests`) and its state from its view. Values a later API
version may add (a new node state, say) map to a neutral fallback rather than failing.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from azure.batch import models

from jobprep_release.backends.administration import NodeCounts, PoolNodeCounts, SupportedImage
from jobprep_release.backends.base import (
    AllocationState,
    AutoScaleRun,
    AutoScaleRunError,
    ComputeNode,
    ErrorCategory,
    ExecutionInfo,
    ExecutionResult,
    FailureInfo,
    ImageReference,
    InboundEndpoint,
    Job,
    JobSpec,
    JobState,
    NodeFillType,
    NodeState,
    Pool,
    PoolSpec,
    PoolState,
    PrepReleaseExecution,
    PrepReleaseStatus,
    PrepReleaseTaskState,
    ResizeError,
    SchedulingState,
    StartTaskInfo,
    StartTaskState,
    Task,
    TaskContainerExecutionInfo,
    TaskCounts,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.schema.requests import (
    choice,
    image_reference_model,
    image_reference_spec,
    job_create_options,
    optional_choice,
    pool_create_options,
    start_task,
    start_task_spec,
    task_create_options,
    wire_value,
)

ExecutionModel = (
    models.BatchTaskExecutionInfo
    | models.BatchJobPreparationTaskExecutionInfo
    | models.BatchJobReleaseTaskExecutionInfo
    | models.BatchStartTaskInfo
)


# --- what the service recorded of an object's history ----------------------------------------

HistoryModel = models.BatchPool | models.BatchJob | models.BatchTask


def _history_view(model: HistoryModel) -> dict[str, Any]:
    """The creation and transition times, ETag and previous state of a pool, job or task."""
    return {
        "creation_time": model.creation_time,
        "last_modified": model.last_modified,
        "etag": model.etag,
        "state_transition_time": model.state_transition_time,
    }


def _set_known(model: Any, **values: Any) -> None:
    """Set the SDK model's properties whose value is known; the others stay absent."""
    for name, value in values.items():
        if value is not None:
            setattr(model, name, value)


def _set_history(model: HistoryModel, view: Pool | Job | Task) -> None:
    _set_known(
        model,
        etag=view.etag,
        last_modified=view.last_modified,
        creation_time=view.creation_time,
        state_transition_time=view.state_transition_time,
    )


# --- pools and nodes -------------------------------------------------------------------------


def pool_view(pool: models.BatchPool) -> Pool:
    policy = pool.task_scheduling_policy
    return Pool(
        id=pool.id or "",
        vm_size=pool.vm_size or "",
        state=choice(PoolState, pool.state, PoolState.ACTIVE),
        allocation_state=choice(AllocationState, pool.allocation_state, AllocationState.STEADY),
        target_dedicated_nodes=pool.target_dedicated_nodes or 0,
        current_dedicated_nodes=pool.current_dedicated_nodes or 0,
        task_slots_per_node=pool.task_slots_per_node or 1,
        node_fill_type=choice(
            NodeFillType, policy.node_fill_type if policy else None, NodeFillType.SPREAD
        ),
        allocation_state_transition_time=pool.allocation_state_transition_time,
        auto_scale_run=auto_scale_run_view(pool.auto_scale_run),
        **_history_view(pool),
        resize_errors=tuple(
            ResizeError(code=error.code or "", message=error.message or "")
            for error in pool.resize_errors or ()
        ),
        target_low_priority_nodes=pool.target_low_priority_nodes or 0,
        current_low_priority_nodes=pool.current_low_priority_nodes or 0,
    )


def auto_scale_run_view(run: models.AutoScaleRun | None) -> AutoScaleRun | None:
    if run is None:
        return None
    error = run.error
    return AutoScaleRun(
        timestamp=run.timestamp,
        results=run.results,
        error=None
        if error is None
        else AutoScaleRunError(
            code=error.code or "",
            message=error.message or "",
            values=tuple((pair.name or "", pair.value or "") for pair in error.error_values or ()),
        ),
    )


def auto_scale_run_model(run: AutoScaleRun) -> models.AutoScaleRun:
    """A run as the service reports it (REST AutoScaleRun: ``error.values`` name/value)."""
    error = run.error
    return models.AutoScaleRun(
        timestamp=run.timestamp,
        results=run.results,
        error=None
        if error is None
        else models.AutoScaleRunError(
            code=error.code,
            message=error.message,
            error_values=[models.NameValuePair(name=k, value=v) for k, v in error.values] or None,
        ),
    )


def pool_model(view: Pool, spec: PoolSpec) -> models.BatchPool:
    """The pool as the service reports it: its settings from `spec`, its state from `view`."""
    pool = models.BatchPool(pool_create_options(spec).as_dict())
    pool.vm_size = view.vm_size
    pool.state = view.state.value
    pool.allocation_state = view.allocation_state.value
    pool.target_dedicated_nodes = view.target_dedicated_nodes
    pool.current_dedicated_nodes = view.current_dedicated_nodes
    pool.task_slots_per_node = view.task_slots_per_node
    pool.target_low_priority_nodes = view.target_low_priority_nodes
    pool.current_low_priority_nodes = view.current_low_priority_nodes
    if view.resize_errors:
        pool.resize_errors = [
            models.ResizeError(code=error.code, message=error.message)
            for error in view.resize_errors
        ]
    pool.task_scheduling_policy = models.BatchTaskSchedulingPolicy(
        node_fill_type=view.node_fill_type.value, job_default_order=spec.job_default_order
    )
    _set_known(pool, allocation_state_transition_time=view.allocation_state_transition_time)
    if view.auto_scale_run is not None:
        pool.auto_scale_run = auto_scale_run_model(view.auto_scale_run)
    _set_history(pool, view)
    return pool


def node_view(node: models.BatchNode) -> ComputeNode:
    state = choice(NodeState, node.state, NodeState.UNKNOWN)
    return ComputeNode(
        id=node.id or "",
        state=state,
        running_tasks_count=node.running_tasks_count or 0,
        state_transition_time=node.state_transition_time,
        allocation_time=node.allocation_time,
        last_boot_time=node.last_boot_time,
        ip_address=node.ip_address,
        running_task_slots_count=node.running_task_slots_count or 0,
        total_tasks_run=node.total_tasks_run or 0,
        total_tasks_succeeded=node.total_tasks_succeeded or 0,
        start_task_info=start_task_info_view(node.start_task_info),
        start_task=start_task_spec(node.start_task),
        scheduling_state=choice(SchedulingState, node.scheduling_state, SchedulingState.ENABLED),
        is_dedicated=node.is_dedicated is not False,
        inbound_endpoints=tuple(
            InboundEndpoint(
                name=endpoint.name,
                protocol=wire_value(endpoint.protocol) or "tcp",
                public_ip_address=endpoint.public_ip_address or "",
                public_fqdn=endpoint.public_fqdn or "",
                frontend_port=endpoint.frontend_port,
                backend_port=endpoint.backend_port,
            )
            for endpoint in (
                node.endpoint_configuration.inbound_endpoints if node.endpoint_configuration else ()
            )
        ),
    )


def start_task_info_view(info: models.BatchStartTaskInfo | None) -> StartTaskInfo | None:
    if info is None:
        return None
    return StartTaskInfo(
        state=choice(StartTaskState, info.state, StartTaskState.RUNNING),
        execution_info=execution_view(info),
    )


def start_task_info_model(info: StartTaskInfo) -> models.BatchStartTaskInfo:
    """REST StartTaskInformation: `retryCount` always, `lastRetryTime` once retried,
    `containerInfo` for a start task in a container; no requeue count."""
    run = info.execution_info
    model = models.BatchStartTaskInfo(
        state=info.state.value, retry_count=run.retry_count, **_execution_fields(run)
    )
    _set_known(model, last_retry_time=run.last_retry_time)
    return model


def node_model(view: ComputeNode) -> models.BatchNode:
    node = models.BatchNode(
        id=view.id,
        state=view.state.value,
        running_tasks_count=view.running_tasks_count,
        running_task_slots_count=view.running_task_slots_count,
        total_tasks_run=view.total_tasks_run,
        total_tasks_succeeded=view.total_tasks_succeeded,
        scheduling_state=view.scheduling_state.value,
        is_dedicated=view.is_dedicated,
    )
    if view.inbound_endpoints:
        node.endpoint_configuration = models.BatchNodeEndpointConfiguration(
            inbound_endpoints=[
                models.InboundEndpoint(**asdict(endpoint)) for endpoint in view.inbound_endpoints
            ]
        )
    _set_known(
        node,
        state_transition_time=view.state_transition_time,
        allocation_time=view.allocation_time,
        last_boot_time=view.last_boot_time,
        ip_address=view.ip_address,
    )
    if view.start_task_info is not None:
        node.start_task_info = start_task_info_model(view.start_task_info)
    if view.start_task is not None:
        node.start_task = start_task(view.start_task)
    return node


# --- jobs ------------------------------------------------------------------------------------


def job_view(job: models.BatchJob) -> Job:
    execution = job.execution_info
    return Job(
        id=job.id or "",
        pool_id=(job.pool_info.pool_id if job.pool_info else None)
        or (execution.pool_id if execution else None)  # an auto pool's
        or "",
        state=choice(JobState, job.state, JobState.ACTIVE),
        terminate_reason=execution.termination_reason if execution else None,
        previous_state=optional_choice(JobState, job.previous_state),
        previous_state_transition_time=job.previous_state_transition_time,
        end_time=execution.end_time if execution else None,
        **_history_view(job),
    )


def job_model(view: Job, spec: JobSpec) -> models.BatchJob:
    """The job as the service reports it: settings from `spec`, state and history from `view`
    (it started when it was created: jobs here run on an existing pool at once)."""
    job = models.BatchJob(job_create_options(spec).as_dict())
    job.state = view.state.value
    automatic = job.pool_info.auto_pool_specification if job.pool_info else None
    job.pool_info = models.BatchPoolInfo(
        pool_id=None if automatic else view.pool_id, auto_pool_specification=automatic
    )
    job.execution_info = models.BatchJobExecutionInfo({"poolId": view.pool_id})
    _set_known(
        job.execution_info,
        start_time=view.creation_time,
        end_time=view.end_time,
        termination_reason=view.terminate_reason,
    )
    _set_history(job, view)
    if view.previous_state is not None:
        job.previous_state = view.previous_state.value
        _set_known(job, previous_state_transition_time=view.previous_state_transition_time)
    return job


# --- tasks and their execution ---------------------------------------------------------------


def failure_view(info: models.BatchTaskFailureInfo | None) -> FailureInfo | None:
    if info is None:
        return None
    return FailureInfo(
        category=choice(ErrorCategory, info.category, ErrorCategory.SERVER_ERROR),
        code=info.code or "",
        message=info.message or "",
    )


def failure_model(info: FailureInfo | None) -> models.BatchTaskFailureInfo | None:
    if info is None:
        return None
    return models.BatchTaskFailureInfo(
        category=info.category.value, code=info.code, message=info.message
    )


def execution_view(info: ExecutionModel | None) -> ExecutionInfo:
    if info is None:
        return ExecutionInfo()
    result = wire_value(info.result)
    return ExecutionInfo(
        start_time=info.start_time,
        end_time=info.end_time,
        exit_code=info.exit_code,
        result=ExecutionResult(result) if result in set(ExecutionResult) else None,
        failure_info=failure_view(info.failure_info),
        retry_count=getattr(info, "retry_count", None) or 0,
        requeue_count=getattr(info, "requeue_count", None) or 0,
        last_retry_time=getattr(info, "last_retry_time", None),
        last_requeue_time=getattr(info, "last_requeue_time", None),
        container_info=_container_view(info.container_info),
    )


def _container_view(
    info: models.BatchTaskContainerExecutionInfo | None,
) -> TaskContainerExecutionInfo | None:
    if info is None:
        return None
    return TaskContainerExecutionInfo(info.container_id, info.state, info.error)


def _execution_fields(info: ExecutionInfo) -> dict[str, Any]:
    """What every kind of execution info has; ``containerInfo`` only for a container run."""
    container = info.container_info
    return {
        "start_time": info.start_time,
        "end_time": info.end_time,
        "exit_code": info.exit_code,
        "failure_info": failure_model(info.failure_info),
        "result": info.result.value if info.result else None,
        "container_info": None
        if container is None
        else models.BatchTaskContainerExecutionInfo(
            container_id=container.container_id, state=container.state, error=container.error
        ),
    }


def execution_model(info: ExecutionInfo) -> models.BatchTaskExecutionInfo:
    """A task's execution info (REST TaskExecutionInfo): `lastRetryTime` once it was retried,
    `lastRequeueTime` once it was requeued, absent before."""
    model = models.BatchTaskExecutionInfo(
        retry_count=info.retry_count, requeue_count=info.requeue_count, **_execution_fields(info)
    )
    _set_known(
        model, last_retry_time=info.last_retry_time, last_requeue_time=info.last_requeue_time
    )
    return model


def task_view(task: models.BatchTask) -> Task:
    return Task(
        id=task.id or "",
        state=choice(TaskState, task.state, TaskState.ACTIVE),
        node_id=task.node_info.node_id if task.node_info else None,
        execution_info=execution_view(task.execution_info),
        previous_state=optional_choice(TaskState, task.previous_state),
        previous_state_transition_time=task.previous_state_transition_time,
        **_history_view(task),
    )


def task_model(view: Task, spec: TaskSpec) -> models.BatchTask:
    """The task as the service reports it: settings from `spec`, state from `view`."""
    task = models.BatchTask(task_create_options(spec).as_dict())
    task.state = view.state.value
    task.execution_info = execution_model(view.execution_info)
    if view.node_id is not None:
        task.node_info = models.BatchNodeInfo(node_id=view.node_id)
    _set_history(task, view)
    if view.previous_state is not None:
        task.previous_state = view.previous_state.value
        _set_known(task, previous_state_transition_time=view.previous_state_transition_time)
    return task


_COUNTS = tuple(field.name for field in fields(TaskCounts))
"""The counts by state: the same names on the SDK's ``BatchTaskCounts``/``BatchTaskSlotCounts``."""


def task_counts_view(result: models.BatchTaskCountsResult) -> TaskCounts:
    return TaskCounts(**{name: getattr(result.task_counts, name) for name in _COUNTS})


def task_counts_model(counts: TaskCounts, slots: TaskCounts) -> models.BatchTaskCountsResult:
    """Counts of tasks and of the slots they take, by state."""
    return models.BatchTaskCountsResult(
        task_counts=models.BatchTaskCounts(**{name: getattr(counts, name) for name in _COUNTS}),
        task_slot_counts=models.BatchTaskSlotCounts(
            **{name: getattr(slots, name) for name in _COUNTS}
        ),
    )


# --- preparation and release tasks per node --------------------------------------------------


def _prep_release_execution(
    info: models.BatchJobPreparationTaskExecutionInfo
    | models.BatchJobReleaseTaskExecutionInfo
    | None,
) -> PrepReleaseExecution | None:
    if info is None:
        return None
    return PrepReleaseExecution(
        state=choice(PrepReleaseTaskState, info.state, PrepReleaseTaskState.RUNNING),
        execution_info=execution_view(info),
        task_root_directory=info.task_root_directory,
    )


def prep_release_view(status: models.BatchJobPreparationAndReleaseTaskStatus) -> PrepReleaseStatus:
    return PrepReleaseStatus(
        pool_id=status.pool_id or "",
        node_id=status.node_id or "",
        preparation=_prep_release_execution(status.job_preparation_task_execution_info),
        release=_prep_release_execution(status.job_release_task_execution_info),
    )


def prep_release_model(status: PrepReleaseStatus) -> models.BatchJobPreparationAndReleaseTaskStatus:
    model = models.BatchJobPreparationAndReleaseTaskStatus(
        pool_id=status.pool_id, node_id=status.node_id
    )
    if status.preparation is not None:
        run = status.preparation
        model.job_preparation_task_execution_info = models.BatchJobPreparationTaskExecutionInfo(
            state=run.state.value,
            retry_count=run.execution_info.retry_count,
            **_execution_fields(run.execution_info),
        )
        _set_known(
            model.job_preparation_task_execution_info,
            last_retry_time=run.execution_info.last_retry_time,
            task_root_directory=run.task_root_directory,
        )
    if status.release is not None:
        run = status.release
        # The release task is never retried: REST JobReleaseTaskExecutionInfo has no counts.
        model.job_release_task_execution_info = models.BatchJobReleaseTaskExecutionInfo(
            state=run.state.value, **_execution_fields(run.execution_info)
        )
        _set_known(
            model.job_release_task_execution_info, task_root_directory=run.task_root_directory
        )
    return model


def pool_node_counts_view(entry: models.BatchPoolNodeCounts) -> PoolNodeCounts:
    """One entry of List Pool Node Counts, as `PoolNodeCounts`."""

    def counts(model: models.BatchNodeCounts | None) -> NodeCounts:
        return NodeCounts(
            **{field.name: getattr(model, field.name, 0) or 0 for field in fields(NodeCounts)}
        )

    return PoolNodeCounts(
        pool_id=entry.pool_id or "",
        dedicated=counts(entry.dedicated),
        low_priority=counts(entry.low_priority),
    )


def supported_image_view(image: models.BatchSupportedImage) -> SupportedImage:
    """One entry of List Supported Images, as `SupportedImage`."""
    return SupportedImage(
        node_agent_sku_id=image.node_agent_sku_id or "",
        image_reference=image_reference_spec(image.image_reference) or ImageReference(),
        os_type=wire_value(image.os_type) or "linux",
        verification_type=wire_value(image.verification_type) or "unverified",
        capabilities=tuple(image.capabilities or ()),
    )


def supported_image_model(image: SupportedImage) -> models.BatchSupportedImage:
    """A `SupportedImage` as the service writes it."""
    return models.BatchSupportedImage(
        node_agent_sku_id=image.node_agent_sku_id,
        image_reference=image_reference_model(image.image_reference),
        os_type=image.os_type,
        verification_type=image.verification_type,
        capabilities=list(image.capabilities) or None,
    )
