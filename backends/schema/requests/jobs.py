"""Add Job, Update Job and Replace Job: `JobSpec` / `JobUpdate` <-> the SDK's job options, in
both directions (the job preparation and release tasks, the pool or auto pool, the
constraints), and the service's limits on jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.batch import models

from jobprep_release.backends.base import (
    JOB_PREPARATION_TASK_ID,
    JOB_RELEASE_TASK_ID,
    RELEASE_MAX_WALL_CLOCK,
    AutoPoolSpec,
    JobConstraints,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobUpdate,
    OnAllTasksComplete,
    OnTaskFailure,
    PoolLifetimeOption,
)
from jobprep_release.backends.schema.requests.common import (
    CONSTRAINTS,
    DISPLAY_NAME,
    POSITIVE,
    TASK_LIMITS,
    Limit,
    choice,
    environment,
    environment_settings,
    id_limit,
    metadata,
    metadata_items,
    optional_choice,
    task_constraints,
    task_constraints_spec,
    task_settings,
    task_settings_spec,
    unique_names,
    within,
)
from jobprep_release.backends.schema.requests.pools import pool_create_options, pool_spec
from jobprep_release.backends.schema.shapes import PropertyError, limited


def preparation_task(spec: JobPreparationTaskSpec) -> models.BatchJobPreparationTask:
    return models.BatchJobPreparationTask(
        **task_settings(spec),
        constraints=task_constraints(spec.constraints),
        wait_for_success=spec.wait_for_success,
        rerun_on_node_reboot_after_success=spec.rerun_on_node_reboot_after_success,
    )


def preparation_task_spec(task: models.BatchJobPreparationTask) -> JobPreparationTaskSpec:
    return JobPreparationTaskSpec(
        **task_settings_spec(task),
        id=task.id or JOB_PREPARATION_TASK_ID,
        wait_for_success=task.wait_for_success is not False,
        rerun_on_node_reboot_after_success=task.rerun_on_node_reboot_after_success is not False,
        constraints=task_constraints_spec(task.constraints),
    )


def release_task(spec: JobReleaseTaskSpec) -> models.BatchJobReleaseTask:
    return models.BatchJobReleaseTask(
        **task_settings(spec),
        max_wall_clock_time=spec.max_wall_clock_time,
        retention_time=spec.retention_time,
    )


def release_task_spec(task: models.BatchJobReleaseTask) -> JobReleaseTaskSpec:
    """A release task's settings; its wall clock is 15 minutes unless shorter (Batch's rule)."""
    wall_clock = task.max_wall_clock_time
    if wall_clock is not None and (
        limited(wall_clock) is None or wall_clock > RELEASE_MAX_WALL_CLOCK
    ):
        raise PropertyError(
            "jobReleaseTask.maxWallClockTime", "a job release task runs 15 minutes at most"
        )
    return JobReleaseTaskSpec(
        **task_settings_spec(task),
        id=task.id or JOB_RELEASE_TASK_ID,
        max_wall_clock_time=wall_clock or RELEASE_MAX_WALL_CLOCK,
        retention_time=limited(task.retention_time),
    )


def pool_info(spec: JobSpec) -> models.BatchPoolInfo:
    """The job's pool: its id, or the auto pool's specification (with the id too when a
    request gave both, for the endpoint to refuse; the service reports the specification
    alone, the auto pool's id in the job's ``executionInfo.poolId``)."""
    auto = spec.auto_pool
    if auto is None:
        return models.BatchPoolInfo(pool_id=spec.pool_id)
    pool = pool_create_options(auto.pool).as_dict()
    pool.pop("id", None)
    return models.BatchPoolInfo(
        pool_id=spec.pool_id or None,
        auto_pool_specification=models.BatchAutoPoolSpecification(
            auto_pool_id_prefix=auto.id_prefix,
            pool_lifetime_option=auto.lifetime.value,
            keep_alive=auto.keep_alive or None,
            pool=models.BatchPoolSpecification(pool),
        ),
    )


def auto_pool_spec(auto: models.BatchAutoPoolSpecification | None) -> AutoPoolSpec | None:
    if auto is None:
        return None
    pool = auto.pool.as_dict() if auto.pool is not None else {}
    return AutoPoolSpec(
        pool=pool_spec(models.BatchPoolCreateOptions({**pool, "id": ""})),
        id_prefix=auto.auto_pool_id_prefix,
        lifetime=choice(PoolLifetimeOption, auto.pool_lifetime_option, PoolLifetimeOption.JOB),
        keep_alive=bool(auto.keep_alive),
    )


def job_create_options(spec: JobSpec) -> models.BatchJobCreateOptions:
    return models.BatchJobCreateOptions(
        id=spec.id,
        display_name=spec.display_name,
        pool_info=pool_info(spec),
        job_preparation_task=preparation_task(spec.preparation) if spec.preparation else None,
        job_release_task=release_task(spec.release) if spec.release else None,
        common_environment_settings=environment_settings(spec.common_environment),
        all_tasks_complete_mode=spec.on_all_tasks_complete.value,
        constraints=job_constraints(
            JobConstraints(spec.max_wall_clock_time, spec.max_task_retry_count)
        ),
        metadata=metadata_items(spec.metadata),
        # the service's defaults go unsaid: maxParallelTasks and allowTaskPreemption are "not
        # available by default" on an account, so a job that does not use them never sends them
        uses_task_dependencies=spec.uses_task_dependencies or None,
        task_failure_mode=None
        if spec.on_task_failure is OnTaskFailure.NO_ACTION
        else spec.on_task_failure.value,
        priority=spec.priority or None,
        max_parallel_tasks=None if spec.max_parallel_tasks == -1 else spec.max_parallel_tasks,
        allow_task_preemption=spec.allow_task_preemption or None,
    )


def job_constraints(constraints: JobConstraints) -> models.BatchJobConstraints:
    return models.BatchJobConstraints(
        max_wall_clock_time=constraints.max_wall_clock_time,
        max_task_retry_count=constraints.max_task_retry_count,
    )


def job_constraints_spec(constraints: models.BatchJobConstraints | None) -> JobConstraints:
    if constraints is None:
        return JobConstraints()
    return JobConstraints(
        max_wall_clock_time=limited(constraints.max_wall_clock_time),
        max_task_retry_count=constraints.max_task_retry_count or 0,
    )


def job_update_options(update: JobUpdate) -> models.BatchJobUpdateOptions:
    """Update Job's body (what `update` gives; the rest left out, so left unchanged)."""
    return models.BatchJobUpdateOptions(
        priority=update.priority,
        max_parallel_tasks=update.max_parallel_tasks,
        allow_task_preemption=update.allow_task_preemption,
        constraints=job_constraints(update.constraints) if update.constraints else None,
        pool_info=_updated_pool_info(update),
        all_tasks_complete_mode=update.on_all_tasks_complete.value
        if update.on_all_tasks_complete
        else None,
        metadata=None if update.metadata is None else metadata_items(update.metadata) or [],
    )


def _updated_pool_info(update: JobUpdate) -> models.BatchPoolInfo | None:
    if update.auto_pool is not None:
        return pool_info(JobSpec(id="", pool_id=update.pool_id or "", auto_pool=update.auto_pool))
    return models.BatchPoolInfo(pool_id=update.pool_id) if update.pool_id else None


def job_replacement(update: JobUpdate, pool_id: str) -> models.BatchJob:
    """Replace Job's body: `update` as a job (``poolInfo`` required: `pool_id` unless it
    changes the pool or gives the auto pool)."""
    options = job_update_options(update)
    if options.pool_info is None:
        options.pool_info = models.BatchPoolInfo(pool_id=pool_id)
    return models.BatchJob(options.as_dict())


def job_update(job: models.BatchJobUpdateOptions | models.BatchJob) -> JobUpdate:
    """Update Job's (or Replace Job's) body as a `JobUpdate`: what it leaves out is None."""
    return JobUpdate(
        priority=job.priority,
        max_parallel_tasks=job.max_parallel_tasks,
        allow_task_preemption=job.allow_task_preemption,
        constraints=None if job.constraints is None else job_constraints_spec(job.constraints),
        pool_id=job.pool_info.pool_id if job.pool_info else None,
        auto_pool=auto_pool_spec(job.pool_info.auto_pool_specification if job.pool_info else None),
        on_all_tasks_complete=optional_choice(OnAllTasksComplete, job.all_tasks_complete_mode),
        metadata=None if job.metadata is None else metadata(job.metadata),
    )


def job_spec(job: models.BatchJobCreateOptions | models.BatchJob) -> JobSpec:
    """A job's settings (a request's, or as the service reports them) as a `JobSpec`."""
    prep, release, constraints = job.job_preparation_task, job.job_release_task, job.constraints
    return JobSpec(
        id=job.id or "",
        pool_id=job.pool_info.pool_id if job.pool_info and job.pool_info.pool_id else "",
        auto_pool=auto_pool_spec(job.pool_info.auto_pool_specification if job.pool_info else None),
        preparation=preparation_task_spec(prep) if prep is not None else None,
        release=release_task_spec(release) if release is not None else None,
        common_environment=environment(job.common_environment_settings),
        on_all_tasks_complete=choice(
            OnAllTasksComplete, job.all_tasks_complete_mode, OnAllTasksComplete.NO_ACTION
        ),
        max_task_retry_count=job_constraints_spec(constraints).max_task_retry_count,
        max_wall_clock_time=job_constraints_spec(constraints).max_wall_clock_time,
        display_name=job.display_name,
        metadata=metadata(job.metadata),
        on_task_failure=choice(OnTaskFailure, job.task_failure_mode, OnTaskFailure.NO_ACTION),
        uses_task_dependencies=bool(job.uses_task_dependencies),
        priority=job.priority or 0,
        max_parallel_tasks=-1 if job.max_parallel_tasks is None else job.max_parallel_tasks,
        allow_task_preemption=bool(job.allow_task_preemption),
    )


# --- the service's limits -------------------------------------------------------------------------


def _parallel(value: Any) -> str | None:
    if value == -1 or value > 0:
        return None
    return f"{value} is neither -1 nor greater than 0"


LIMITS: Mapping[type, Mapping[str, Limit]] = {
    models.BatchJobCreateOptions: {
        "id": id_limit,
        "displayName": DISPLAY_NAME,
        "priority": within(-1000, 1000),
        "maxParallelTasks": _parallel,
        "metadata": unique_names,
        "commonEnvironmentSettings": unique_names,
    },
    models.BatchJobUpdateOptions: {
        "priority": within(-1000, 1000),
        "maxParallelTasks": _parallel,
        "metadata": unique_names,
    },
    models.BatchJob: {
        "priority": within(-1000, 1000),
        "maxParallelTasks": _parallel,
        "metadata": unique_names,
    },
    models.BatchJobConstraints: CONSTRAINTS,
    models.BatchJobPreparationTask: TASK_LIMITS,
    models.BatchJobReleaseTask: {**TASK_LIMITS, "maxWallClockTime": POSITIVE},
}
"""The service's limits on jobs' properties and their preparation and release tasks'
(`limits.LIMITS` has the sources)."""
