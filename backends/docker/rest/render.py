"""Views to REST JSON: pools, nodes, jobs, tasks and their execution as the service writes them,
through azure-batch's models (``as_dict()``).

An object's settings and state come from the shared mapping (`jobprep_release.backends.schema`):
its spec as the create options it was made from, the service's defaults filled in, its view as
the state and the history the service recorded where each change happened (creation and
transition times, previous states, ETags); what a node is made of comes from the endpoint itself
(addresses, task directories, the agent's version).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from azure.batch import models

from jobprep_release.backends.administration import LOCAL_NODE_AGENT_SKU, PoolNodeCounts
from jobprep_release.backends.base import (
    ComputeNode,
    ImageReference,
    Job,
    JobSpec,
    Pool,
    PoolSpec,
    PrepReleaseStatus,
    Task,
    TaskCounts,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core.multiinstance import Subtask
from jobprep_release.backends.docker.core.views import TaskViews
from jobprep_release.backends.schema import requests, results, shapes

Json = dict[str, Any]
DEFAULT_NODE_AGENT_SKU = LOCAL_NODE_AGENT_SKU
NODE_AGENT_VERSION = "1.0.0-docker"


def names(model: type) -> list[str]:
    """The top-level properties of an SDK model's JSON (what ``$select`` may name)."""
    return list(shapes.properties(model))


def file_url(base: str, *parts: str) -> str:
    return base + "/" + "/".join(quote(part, safe="/") for part in parts)


# --- list indexes: the properties a $filter usually names, without rendering -------------------
#
# Each index holds, for one item, the values its full rendering gives the paths in the matching
# `*_INDEXED` set (tests/endpoint/test_lists.py holds them to that); a filter naming any other
# path is evaluated on the rendered item instead (`odata.page`).


def _time(value: datetime | None) -> str | None:
    """A time as azure-batch's models write it (ISO 8601, UTC as ``Z``)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _history_index(view: Pool | Job | Task) -> dict[str, Any]:
    previous = view.previous_state
    return {
        "id": view.id,
        "state": view.state.value,
        "previousState": previous.value if previous is not None else None,
        "eTag": view.etag,
        "creationTime": _time(view.creation_time),
        "lastModified": _time(view.last_modified),
        "stateTransitionTime": _time(view.state_transition_time),
        "previousStateTransitionTime": _time(view.previous_state_transition_time),
    }


def version_of(view: Pool | Job | Task) -> tuple[str | None, str | None]:
    """The object's ``eTag`` and ``lastModified`` as its full rendering gives them, without
    rendering it (Add Task Collection answers them for each task it added)."""
    return view.etag, _time(view.last_modified)


_HISTORY_INDEXED = frozenset(
    {
        "id",
        "state",
        "previousState",
        "eTag",
        "creationTime",
        "lastModified",
        "stateTransitionTime",
        "previousStateTransitionTime",
    }
)
# A pool has no previous state in the REST API.
POOL_INDEXED = (_HISTORY_INDEXED - {"previousState", "previousStateTransitionTime"}) | {
    "displayName",
    "vmSize",
    "allocationState",
    "allocationStateTransitionTime",
    "targetDedicatedNodes",
    "currentDedicatedNodes",
    "targetLowPriorityNodes",
    "currentLowPriorityNodes",
    "taskSlotsPerNode",
}
JOB_INDEXED = _HISTORY_INDEXED | {
    "displayName",
    "poolInfo/poolId",
    "executionInfo/poolId",
    "executionInfo/startTime",
    "executionInfo/endTime",
    "executionInfo/terminateReason",
}
TASK_INDEXED = _HISTORY_INDEXED | {
    "displayName",
    "commandLine",
    "requiredSlots",
    "executionInfo/startTime",
    "executionInfo/endTime",
    "executionInfo/exitCode",
    "executionInfo/result",
    "executionInfo/retryCount",
    "executionInfo/requeueCount",
    "executionInfo/failureInfo/category",
    "executionInfo/failureInfo/code",
    "nodeInfo/nodeId",
}


# --- pools and nodes -------------------------------------------------------------------------


def shown_pool_spec(spec: PoolSpec) -> PoolSpec:
    """The pool's settings as the endpoint shows them: a pool made without an image reference
    (by the app on the docker backend) names its Docker image, on the Debian node agent."""
    return replace(
        spec,
        image_reference=spec.image_reference
        or ImageReference(virtual_machine_image_id=spec.image or ""),
        node_agent_sku_id=spec.node_agent_sku_id or DEFAULT_NODE_AGENT_SKU,
    )


def pool(base: str, view: Pool, spec: PoolSpec) -> Json:
    model = results.pool_model(view, shown_pool_spec(spec))
    model.url = f"{base}/pools/{view.id}"
    return _with_older_properties(_with_no_certificates(shapes.as_json(model)), view, spec)


def _with_older_properties(document: Json, view: Pool, spec: PoolSpec) -> Json:
    """The pool properties of api-versions before 2025-06-01 (`versions.REMOVED` leaves them
    out of later answers): ``targetNodeCommunicationMode`` and ``resourceTags`` as given, and
    ``currentNodeCommunicationMode`` once the pool has a node: the target, or ``classic`` for
    ``default`` and no target (the service's recorded answer for a pool given none)."""
    target = spec.target_node_communication_mode
    if target is not None:
        document["targetNodeCommunicationMode"] = target
    if view.current_dedicated_nodes + view.current_low_priority_nodes > 0:
        current = target if target in ("classic", "simplified") else "classic"
        document["currentNodeCommunicationMode"] = current
    if spec.resource_tags:
        document["resourceTags"] = dict(spec.resource_tags)
    return document


def pool_index(view: Pool, spec: PoolSpec) -> Json:
    """The pool's filterable properties (`POOL_INDEXED`), as `pool` renders them."""
    history = _history_index(view)
    del history["previousState"], history["previousStateTransitionTime"]
    return {
        **history,
        "displayName": spec.display_name,
        "vmSize": view.vm_size,
        "allocationState": view.allocation_state.value,
        "allocationStateTransitionTime": _time(view.allocation_state_transition_time),
        "targetDedicatedNodes": view.target_dedicated_nodes,
        "currentDedicatedNodes": view.current_dedicated_nodes,
        "targetLowPriorityNodes": view.target_low_priority_nodes,
        "currentLowPriorityNodes": view.current_low_priority_nodes,
        "taskSlotsPerNode": view.task_slots_per_node,
    }


def node(base: str, pool_id: str, view: ComputeNode, spec: PoolSpec) -> Json:
    shown = shown_pool_spec(spec)
    assert shown.image_reference is not None
    reference = requests.image_reference_model(shown.image_reference)
    reference.exact_version = reference.version or spec.image or ""
    model = results.node_model(view)
    model.url = f"{base}/pools/{pool_id}/nodes/{view.id}"
    model.affinity_id = f"TVM:{view.id}"
    model.vm_size = spec.vm_size
    model.virtual_machine_info = models.VirtualMachineInfo(image_reference=reference)
    model.node_agent_info = models.BatchNodeAgentInfo({"version": NODE_AGENT_VERSION})
    if model.start_task is None and spec.start_task is not None:
        # Not started there yet: the pool's, which the node runs when it is up.
        model.start_task = requests.start_task(spec.start_task)
    if view.allocation_time is not None:
        model.node_agent_info.last_update_time = view.allocation_time
    return _with_no_certificates(shapes.as_json(model, defaults=False))


def _with_no_certificates(document: Json) -> Json:
    """The service writes ``certificateReferences: []`` on pools and nodes without certificates
    (its recorded answers, 2024-07-01.20.0); azure-batch 15 no longer models the property, and
    `versions.answer` leaves it out of the versions that no longer have it."""
    document.setdefault("certificateReferences", [])
    return document


# --- jobs ------------------------------------------------------------------------------------


def _with_job_retries(spec: TaskSpec, job_retries: int) -> TaskSpec:
    """A task's settings with the job's retry count where the task sets none (Batch's rule)."""
    if spec.constraints.max_task_retry_count is not None:
        return spec
    return replace(spec, constraints=replace(spec.constraints, max_task_retry_count=job_retries))


def job(base: str, view: Job, spec: JobSpec) -> Json:
    if spec.preparation is not None and spec.preparation.constraints.max_task_retry_count is None:
        limits = replace(
            spec.preparation.constraints, max_task_retry_count=spec.max_task_retry_count
        )
        spec = replace(spec, preparation=replace(spec.preparation, constraints=limits))
    model = results.job_model(view, spec)
    model.url = f"{base}/jobs/{view.id}"
    return shapes.as_json(model)


def job_index(view: Job, spec: JobSpec) -> Json:
    """The job's filterable properties (`JOB_INDEXED`), as `job` renders them."""
    return {
        **_history_index(view),
        "displayName": spec.display_name,
        "poolInfo": {"poolId": view.pool_id},
        "executionInfo": {
            "poolId": view.pool_id,
            "startTime": _time(view.creation_time),
            "endTime": _time(view.end_time),
            "terminateReason": view.terminate_reason,
        },
    }


# --- tasks -----------------------------------------------------------------------------------


def task_directory(job_id: str, task_id: str) -> str:
    return f"workitems/{job_id}/job-1/{task_id}"


_COMPLETED_TASKS: dict[tuple[str, str, str, int, Task], tuple[TaskSpec, Json]] = {}
"""Rendered completed tasks, by everything their rendering depends on (the view compared whole,
the spec by identity: specs are frozen): a page of a large job's list renders each once, not
on every request."""
COMPLETED_TASKS_KEPT = 20_000


def task(
    base: str,
    job_id: str,
    pool_id: str,
    view: Task,
    spec: TaskSpec,
    job_retries: int,
) -> Json:
    """The task's JSON (a new dict each call: callers may drop keys from it)."""
    if view.state is not TaskState.COMPLETED:
        return _task(base, job_id, pool_id, view, spec, job_retries)
    key = (base, job_id, pool_id, job_retries, view)
    known = _COMPLETED_TASKS.get(key)
    if known is None or known[0] is not spec:
        known = (spec, _task(base, job_id, pool_id, view, spec, job_retries))
        _COMPLETED_TASKS[key] = known
        if len(_COMPLETED_TASKS) > COMPLETED_TASKS_KEPT:
            del _COMPLETED_TASKS[next(iter(_COMPLETED_TASKS))]
    return dict(known[1])


def _task(
    base: str,
    job_id: str,
    pool_id: str,
    view: Task,
    spec: TaskSpec,
    job_retries: int,
) -> Json:
    model = results.task_model(view, _with_job_retries(spec, job_retries))
    model.url = f"{base}/jobs/{job_id}/tasks/{view.id}"
    if view.node_id:
        directory = task_directory(job_id, view.id)
        model.node_info = models.BatchNodeInfo(
            affinity_id=f"TVM:{view.node_id}",
            node_url=f"{base}/pools/{pool_id}/nodes/{view.node_id}",
            pool_id=pool_id,
            node_id=view.node_id,
            task_root_directory=directory,
            task_root_directory_url=file_url(
                base, "pools", pool_id, "nodes", view.node_id, "files", directory
            ),
        )
    rendered = shapes.as_json(model)
    if spec.authentication_token_access:
        rendered["authenticationTokenSettings"] = {"access": list(spec.authentication_token_access)}
    return rendered


def subtask(base: str, pool_id: str, item: Subtask) -> Json:
    """A multi-instance task's subtask as List Subtasks answers it (REST ``BatchSubtask``)."""
    model = models.BatchSubtask(id=item.id, state=item.state.value)
    model.node_info = models.BatchNodeInfo(
        affinity_id=f"TVM:{item.node_id}",
        node_url=f"{base}/pools/{pool_id}/nodes/{item.node_id}",
        pool_id=pool_id,
        node_id=item.node_id,
    )
    known = {
        "start_time": item.start_time,
        "end_time": item.end_time,
        "exit_code": item.exit_code,
        "result": item.result.value if item.result is not None else None,
        "failure_info": results.failure_model(item.failure),
        "state_transition_time": item.state_transition_time,
        "previous_state": item.previous_state.value if item.previous_state else None,
        "previous_state_transition_time": item.previous_state_transition_time,
    }
    for name, value in known.items():
        if value is not None:
            setattr(model, name, value)
    return shapes.as_json(model)


def task_index(view: Task, spec: TaskSpec) -> Json:
    """The task's filterable properties (`TASK_INDEXED`), as `task` renders them."""
    run = view.execution_info
    failure = run.failure_info
    return {
        **_history_index(view),
        "displayName": spec.display_name,
        "commandLine": spec.command_line,
        "requiredSlots": spec.required_slots,
        "executionInfo": {
            "startTime": _time(run.start_time),
            "endTime": _time(run.end_time),
            "exitCode": run.exit_code,
            "result": run.result.value if run.result is not None else None,
            "retryCount": run.retry_count,
            "requeueCount": run.requeue_count,
            "failureInfo": None
            if failure is None
            else {"category": failure.category.value, "code": failure.code},
        },
        "nodeInfo": None if view.node_id is None else {"nodeId": view.node_id},
    }


class TaskIndexAt(Mapping[str, Any]):
    """`task_index` of the task at `position` of `views`, made only as far as a filter reads
    it: ``id`` and ``state`` from the task's record, any other property from its view and
    spec (made at the first such read). A filter on the id of a large job's tasks so reads
    no view but those of the tasks it passes."""

    __slots__ = ("_document", "_position", "_views")

    def __init__(self, views: TaskViews, position: int) -> None:
        self._views = views
        self._position = position
        self._document: Json | None = None

    def __getitem__(self, key: str) -> Any:
        if key in ("id", "state"):
            task_id, state, _ = self._views.head(self._position)
            return task_id if key == "id" else state.value
        return self._whole()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())

    def _whole(self) -> Json:
        if self._document is None:
            _, _, spec = self._views.head(self._position)
            self._document = task_index(self._views[self._position], spec)
        return self._document


def task_counts(counts: TaskCounts, slot_counts: TaskCounts) -> Json:
    return shapes.as_json(results.task_counts_model(counts, slot_counts), defaults=False)


def prep_release_status(base: str, status: PrepReleaseStatus, spec: JobSpec) -> Json:
    shown = replace(
        status,
        preparation=status.preparation if spec.preparation else None,
        release=status.release if spec.release else None,
    )
    model = results.prep_release_model(shown)
    model.node_url = f"{base}/pools/{status.pool_id}/nodes/{status.node_id}"
    for info, special in (
        (model.job_preparation_task_execution_info, spec.preparation),
        (model.job_release_task_execution_info, spec.release),
    ):
        if info is not None and special is not None:
            directory = task_directory(spec.id, special.id)
            info.task_root_directory = directory
            info.task_root_directory_url = file_url(
                base, "pools", status.pool_id, "nodes", status.node_id, "files", directory
            )
    return shapes.as_json(model, defaults=False)


def node_counts(counts: PoolNodeCounts) -> Json:
    """One entry of List Pool Node Counts, as azure-batch's `BatchPoolNodeCounts` writes it."""
    model = models.BatchPoolNodeCounts(
        pool_id=counts.pool_id,
        dedicated=models.BatchNodeCounts(**asdict(counts.dedicated)),
        low_priority=models.BatchNodeCounts(**asdict(counts.low_priority)),
    )
    return shapes.as_json(model)
