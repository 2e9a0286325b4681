"""Auto pools: a pool the service creates for a job (REST Add Job, ``poolInfo.
autoPoolSpecification``), and deletes when the job completes or is deleted, unless
``keepAlive``.

As the service does: the pool is created with the job, its id the service's own (an upper-case
GUID, as recorded, after ``autoPoolIdPrefix`` and ``_`` when a prefix is given), and the job's
tasks run there; the job's ``executionInfo.poolId`` names it. ``poolLifetimeOption``
``jobschedule`` applies to job schedules only (`schedules`), not to a job added by itself:
refused with `NotSupported`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from jobprep_release.backends.base import (
    JobSpec,
    JobState,
    PoolLifetimeOption,
    PoolSpec,
    PoolState,
    check_id,
)
from jobprep_release.backends.docker.core import deletions
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.errors import AlreadyExists, BackendError, NotSupported

log = structlog.get_logger("jobprep_release.docker")


def pool_id(prefix: str | None) -> str:
    """A new auto pool's id: the prefix (up to 20 characters) and ``_``, then a GUID."""
    guid = str(uuid.uuid4()).upper()
    return f"{prefix}_{guid}" if prefix else guid


async def create(
    core: Core, spec: JobSpec, create_pool: Callable[[PoolSpec], Awaitable[None]]
) -> JobSpec:
    """Create the job's auto pool (by `create_pool`, the service's Add Pool); the job's spec
    naming it. Nothing is created when the job could not be (a bad id, an existing job)."""
    auto = spec.auto_pool
    assert auto is not None
    if auto.lifetime is PoolLifetimeOption.JOB_SCHEDULE:
        raise NotSupported(
            "poolInfo.autoPoolSpecification.poolLifetimeOption jobschedule on Add Job: it applies "
            "to job schedules only",
            code="NotSupported",
        )
    check_id("job", spec.id)
    if spec.id.lower() in core.state.jobs:
        raise AlreadyExists(f"job {spec.id} already exists", code="JobExists")
    new_id = pool_id(auto.id_prefix)
    await create_pool(replace(auto.pool, id=new_id))
    if not auto.keep_alive:
        core.pool(new_id).auto_pool_job = spec.id.lower()
    log.info("auto pool created", job=spec.id, pool=new_id, keep_alive=auto.keep_alive)
    return replace(spec, pool_id=new_id)


async def abandon(core: Core, pool_id: str) -> None:
    """Delete an auto pool whose job could not be created after all."""
    if pool_id.lower() in core.state.pools:
        await deletions.start_delete_pool(core, pool_id)


def watch_all(core: Core) -> None:
    """Watch every auto pool that goes with its job (after a restart too)."""
    for pool in core.state.pools.values():
        if pool.auto_pool_job is not None:
            core.spawn(watch, core, pool.spec.id)


async def watch(core: Core, pool_id: str) -> None:
    """Delete the auto pool once its job has completed or is gone (its deletion ended)."""
    while True:
        pool = core.state.pools.get(pool_id.lower())
        if pool is None or pool.state is not PoolState.ACTIVE or pool.auto_pool_job is None:
            return
        job = core.state.jobs.get(pool.auto_pool_job)
        if job is None or job.state is JobState.COMPLETED:
            break
        deletion = core.deletions.get(f"job:{pool.auto_pool_job}")
        if deletion is not None:
            await deletion.done.wait()
        else:
            await core.job_completed.wait()
    log.info("deleting the auto pool of a finished job", pool=pool_id)
    try:
        await deletions.start_delete_pool(core, pool_id)
    except BackendError as error:  # deleted by hand meanwhile, say
        log.info("auto pool not deleted", pool=pool_id, error=error.one_line())
