"""Views to REST JSON: pools, nodes, jobs, tasks and their execution as the service writes them,
through azure-batch's models (``as_dict()``).

An object's settings and state come from the shared mapping (`jobprep_release.backends.schema`):
its spec as the create options it was made from, the service's defaults filled in, its view as
the state and the history the service recorded where each change happened (creation and
transition times, previous states, ETags); what a node is made of comes from the endpoint itself
(addresses, task directories, the agent's version).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from azure.batch import models

from jobprep_release.backends.base import (
    ComputeNode,
    ImageReference,
    Job,
    JobSpec,
    JobState,
    Pool,
    PoolSpec,
    PrepReleaseStatus,
    Task,
    TaskCounts,
    TaskSpec,
)
from jobprep_release.backends.schema import requests, results, shapes

Json = dict[str, Any]
DEFAULT_NODE_AGENT_SKU = "batch.node.debian 12"
NODE_AGENT_VERSION = "1.0.0-docker"


def file_url(base: str, *parts: str) -> str:
    return base + "/" + "/".join(quote(part, safe="/") for part in parts)


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


def pool(base: str, view: Pool, spec: PoolSpec, *, deleting: bool) -> Json:
    model = results.pool_model(view, shown_pool_spec(spec))
    model.state = "deleting" if deleting else view.state.value
    model.url = f"{base}/pools/{view.id}"
    return shapes.as_json(model)


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
    totals: NodeTotals,
) -> Json:
    shown = shown_pool_spec(spec)
    assert shown.image_reference is not None
    reference = requests.image_reference_model(shown.image_reference)
    reference.exact_version = reference.version or spec.image or ""
    model = results.node_model(view)
    model.url = f"{base}/pools/{pool_id}/nodes/{view.id}"
    model.scheduling_state = "enabled"
    model.affinity_id = f"TVM:{view.id}"
    model.vm_size = spec.vm_size
    model.total_tasks_run = totals.run
    model.total_tasks_succeeded = totals.succeeded
    model.running_tasks_count = totals.running
    model.running_task_slots_count = view.running_tasks_count
    model.is_dedicated = True
    model.virtual_machine_info = models.VirtualMachineInfo(image_reference=reference)
    model.node_agent_info = models.BatchNodeAgentInfo({"version": NODE_AGENT_VERSION})
    if view.allocation_time is not None:
        model.node_agent_info.last_update_time = view.allocation_time
    return shapes.as_json(model, defaults=False)


# --- jobs ------------------------------------------------------------------------------------


def _with_job_retries(spec: TaskSpec, job_retries: int) -> TaskSpec:
    """A task's settings with the job's retry count where the task sets none (Batch's rule)."""
    if spec.constraints.max_task_retry_count is not None:
        return spec
    return replace(spec, constraints=replace(spec.constraints, max_task_retry_count=job_retries))


def job(base: str, view: Job, spec: JobSpec, *, deleting: bool) -> Json:
    state = JobState.DELETING.value if deleting else view.state.value
    if spec.preparation is not None and spec.preparation.constraints.max_task_retry_count is None:
        limits = replace(
            spec.preparation.constraints, max_task_retry_count=spec.max_task_retry_count
        )
        spec = replace(spec, preparation=replace(spec.preparation, constraints=limits))
    model = results.job_model(view, spec)
    model.state = state
    model.url = f"{base}/jobs/{view.id}"
    return shapes.as_json(model)


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
    return shapes.as_json(model)


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
