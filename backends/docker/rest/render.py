"""Models to REST JSON: pools, nodes, jobs, tasks and their execution as the service writes them.

Names, shapes and defaults follow the official examples of api-version 2025-06-01 (camelCase,
states in lower case, ISO 8601 times and durations). Creation and transition times, previous
states and ETags are what the service recorded where each change happened (the views' fields);
what cannot differ here has the service's defaults (``schedulingState`` ``enabled``,
``priority`` 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jobprep_release.backends.base import (
    DEFAULT_RETENTION,
    ComputeNode,
    ExecutionInfo,
    FailureInfo,
    Job,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    Pool,
    PoolSpec,
    PrepReleaseExecution,
    PrepReleaseStatus,
    ResourceFile,
    Task,
    TaskConstraints,
    TaskCounts,
    TaskSpec,
    UserIdentity,
)
from jobprep_release.backends.docker.rest.wire import format_duration, format_time

Json = dict[str, Any]
DEFAULT_NODE_AGENT_SKU = "batch.node.debian 12"
NODE_AGENT_VERSION = "1.0.0-docker"


def _compact(document: Mapping[str, Any]) -> Json:
    """Without the properties that have no value (the service leaves them out)."""
    return {key: value for key, value in document.items() if value is not None}


def _stamped(document: Json, view: Pool | Job | Task) -> Json:
    """`document` with the ETag, times and state history the service recorded for `view`,
    in the service's order."""
    head: Json = {"id": document.pop("id"), "url": document.pop("url")}
    head["eTag"] = view.etag
    head["lastModified"] = format_time(view.last_modified)
    head["creationTime"] = format_time(view.creation_time)
    head["state"] = document.pop("state")
    head["stateTransitionTime"] = format_time(view.state_transition_time)
    if view.previous_state is not None:
        head["previousState"] = view.previous_state.value
        head["previousStateTransitionTime"] = format_time(view.previous_state_transition_time)
    return {**head, **document}


def file_url(base: str, *parts: str) -> str:
    return base + "/" + "/".join(quote(part, safe="/") for part in parts)


# --- pools and nodes -------------------------------------------------------------------------


def image_reference(spec: PoolSpec, asked: Mapping[str, Any] | None) -> Json:
    """The pool's image reference as asked for, else the Docker image it runs."""
    return dict(asked) if asked else {"virtualMachineImageId": spec.image or ""}


def pool(base: str, view: Pool, spec: PoolSpec, reference: Json, *, deleting: bool) -> Json:
    state = "deleting" if deleting else view.state.value
    document: Json = {
        "id": view.id,
        "url": f"{base}/pools/{view.id}",
        "state": state,
        "allocationState": view.allocation_state.value,
        "vmSize": view.vm_size,
        "resizeTimeout": "PT15M",
        "currentDedicatedNodes": view.current_dedicated_nodes,
        "targetDedicatedNodes": view.target_dedicated_nodes,
        "currentLowPriorityNodes": 0,
        "targetLowPriorityNodes": 0,
        "enableAutoScale": False,
        "enableInterNodeCommunication": False,
        "taskSlotsPerNode": view.task_slots_per_node,
        "taskSchedulingPolicy": {"nodeFillType": view.node_fill_type.value},
        "virtualMachineConfiguration": {
            "imageReference": reference,
            "nodeAgentSKUId": spec.node_agent_sku_id or DEFAULT_NODE_AGENT_SKU,
        },
    }
    stamped = _stamped(document, view)
    stamped["allocationStateTransitionTime"] = format_time(view.allocation_state_transition_time)
    return _ordered(stamped, "allocationState", "allocationStateTransitionTime")


def _ordered(document: Json, after: str, key: str) -> Json:
    """`document` with `key` moved right after `after` (the service's order)."""
    value = document.pop(key)
    result: Json = {}
    for name, item in document.items():
        result[name] = item
        if name == after:
            result[key] = value
    return result


@dataclass(frozen=True, slots=True)
class NodeTotals:
    """What ran on a node, counted over every job."""

    run: int = 0
    succeeded: int = 0
    running: int = 0


def node(
    base: str,
    pool_id: str,
    view: ComputeNode,
    spec: PoolSpec,
    reference: Json,
    totals: NodeTotals,
) -> Json:
    return _compact(
        {
            "id": view.id,
            "url": f"{base}/pools/{pool_id}/nodes/{view.id}",
            "state": view.state.value,
            "schedulingState": "enabled",
            "stateTransitionTime": format_time(view.state_transition_time),
            "lastBootTime": format_time(view.last_boot_time),
            "allocationTime": format_time(view.allocation_time),
            "affinityId": f"TVM:{view.id}",
            "vmSize": spec.vm_size,
            "totalTasksRun": totals.run,
            "totalTasksSucceeded": totals.succeeded,
            "runningTasksCount": totals.running,
            "runningTaskSlotsCount": view.running_tasks_count,
            "isDedicated": True,
            "virtualMachineInfo": {
                "imageReference": {
                    **reference,
                    "exactVersion": reference.get("version") or spec.image or "",
                }
            },
            "nodeAgentInfo": {
                "version": NODE_AGENT_VERSION,
                "lastUpdateTime": format_time(view.allocation_time),
            },
        }
    )


# --- what tasks share ------------------------------------------------------------------------


def environment(settings: Mapping[str, str]) -> list[Json] | None:
    if not settings:
        return None
    return [{"name": name, "value": value} for name, value in settings.items()]


def resource_files(files: Sequence[ResourceFile]) -> list[Json] | None:
    if not files:
        return None
    return [
        _compact({"httpUrl": f.http_url, "filePath": f.file_path, "fileMode": f.file_mode})
        for f in files
    ]


def user_identity(identity: UserIdentity) -> Json:
    return {
        "autoUser": {
            "scope": identity.scope.value,
            "elevationLevel": identity.elevation_level.value,
        }
    }


def constraints(limits: TaskConstraints, job_retries: int) -> Json:
    retries = limits.max_task_retry_count
    return {
        "maxWallClockTime": format_duration(limits.max_wall_clock_time),
        "retentionTime": format_duration(limits.retention_time or DEFAULT_RETENTION),
        "maxTaskRetryCount": job_retries if retries is None else retries,
    }


def failure(info: FailureInfo | None) -> Json | None:
    if info is None:
        return None
    return {"category": info.category.value, "code": info.code, "message": info.message}


def execution(info: ExecutionInfo) -> Json:
    return _compact(
        {
            "startTime": format_time(info.start_time),
            "endTime": format_time(info.end_time),
            "exitCode": info.exit_code,
            "failureInfo": failure(info.failure_info),
            "retryCount": info.retry_count,
            "requeueCount": info.requeue_count,
            "result": info.result.value if info.result else None,
        }
    )


# --- jobs ------------------------------------------------------------------------------------


def preparation_task(spec: JobPreparationTaskSpec, job_retries: int) -> Json:
    return _compact(
        {
            "id": spec.id,
            "commandLine": spec.command_line,
            "resourceFiles": resource_files(spec.resource_files),
            "environmentSettings": environment(spec.environment),
            "constraints": constraints(spec.constraints, job_retries),
            "waitForSuccess": spec.wait_for_success,
            "userIdentity": user_identity(spec.user_identity),
            "rerunOnNodeRebootAfterSuccess": spec.rerun_on_node_reboot_after_success,
        }
    )


def release_task(spec: JobReleaseTaskSpec) -> Json:
    return _compact(
        {
            "id": spec.id,
            "commandLine": spec.command_line,
            "resourceFiles": resource_files(spec.resource_files),
            "environmentSettings": environment(spec.environment),
            "maxWallClockTime": format_duration(spec.max_wall_clock_time),
            "retentionTime": format_duration(spec.retention_time or DEFAULT_RETENTION),
            "userIdentity": user_identity(spec.user_identity),
        }
    )


def job(base: str, view: Job, spec: JobSpec, *, deleting: bool) -> Json:
    state = JobState.DELETING.value if deleting else view.state.value
    document: Json = _compact(
        {
            "id": view.id,
            "url": f"{base}/jobs/{view.id}",
            "state": state,
            "priority": 0,
            "maxParallelTasks": -1,
            "allowTaskPreemption": False,
            "usesTaskDependencies": False,
            "constraints": {
                "maxWallClockTime": format_duration(None),
                "maxTaskRetryCount": spec.max_task_retry_count,
            },
            "poolInfo": {"poolId": view.pool_id},
            "jobPreparationTask": (
                preparation_task(spec.preparation, spec.max_task_retry_count)
                if spec.preparation
                else None
            ),
            "jobReleaseTask": release_task(spec.release) if spec.release else None,
            "commonEnvironmentSettings": environment(spec.common_environment),
            "onAllTasksComplete": spec.on_all_tasks_complete.value,
            "onTaskFailure": "noaction",
        }
    )
    document["executionInfo"] = _compact(
        {
            "startTime": format_time(view.creation_time),
            "endTime": format_time(view.end_time),
            "poolId": view.pool_id,
            "terminateReason": view.terminate_reason,
        }
    )
    return _stamped(document, view)


# --- tasks -----------------------------------------------------------------------------------


def task_directory(job_id: str, task_id: str) -> str:
    return f"workitems/{job_id}/job-1/{task_id}"


def task(
    base: str,
    job_id: str,
    pool_id: str,
    view: Task,
    spec: TaskSpec,
    job_retries: int,
) -> Json:
    document: Json = _compact(
        {
            "id": view.id,
            "url": f"{base}/jobs/{job_id}/tasks/{view.id}",
            "state": view.state.value,
            "commandLine": spec.command_line,
            "resourceFiles": resource_files(spec.resource_files),
            "environmentSettings": environment(spec.environment),
            "userIdentity": user_identity(spec.user_identity),
            "constraints": constraints(spec.constraints, job_retries),
            "requiredSlots": spec.required_slots,
            "executionInfo": execution(view.execution_info),
        }
    )
    if view.node_id:
        directory = task_directory(job_id, view.id)
        document["nodeInfo"] = {
            "affinityId": f"TVM:{view.node_id}",
            "nodeUrl": f"{base}/pools/{pool_id}/nodes/{view.node_id}",
            "poolId": pool_id,
            "nodeId": view.node_id,
            "taskRootDirectory": directory,
            "taskRootDirectoryUrl": file_url(
                base, "pools", pool_id, "nodes", view.node_id, "files", directory
            ),
        }
    return _stamped(document, view)


def task_counts(counts: TaskCounts, slot_counts: TaskCounts) -> Json:
    def as_json(c: TaskCounts) -> Json:
        return {
            "active": c.active,
            "running": c.running,
            "completed": c.completed,
            "succeeded": c.succeeded,
            "failed": c.failed,
        }

    return {"taskCounts": as_json(counts), "taskSlotCounts": as_json(slot_counts)}


def _special_execution(
    base: str, status: PrepReleaseStatus, job_id: str, task_id: str, run: PrepReleaseExecution
) -> Json:
    directory = task_directory(job_id, task_id)
    info = run.execution_info
    return _compact(
        {
            "state": run.state.value,
            "startTime": format_time(info.start_time),
            "endTime": format_time(info.end_time),
            "taskRootDirectory": directory,
            "taskRootDirectoryUrl": file_url(
                base, "pools", status.pool_id, "nodes", status.node_id, "files", directory
            ),
            "exitCode": info.exit_code,
            "failureInfo": failure(info.failure_info),
            "result": info.result.value if info.result else None,
        }
    )


def prep_release_status(base: str, status: PrepReleaseStatus, spec: JobSpec) -> Json:
    document: Json = {
        "poolId": status.pool_id,
        "nodeId": status.node_id,
        "nodeUrl": f"{base}/pools/{status.pool_id}/nodes/{status.node_id}",
    }
    if status.preparation is not None and spec.preparation is not None:
        prep = _special_execution(base, status, spec.id, spec.preparation.id, status.preparation)
        prep["retryCount"] = status.preparation.execution_info.retry_count
        document["jobPreparationTaskExecutionInfo"] = prep
    if status.release is not None and spec.release is not None:
        document["jobReleaseTaskExecutionInfo"] = _special_execution(
            base, status, spec.id, spec.release.id, status.release
        )
    return document
