"""Job schedules on the core: Add, Get, List, Update (PATCH), Replace (PUT), Disable, Enable,
Terminate and Delete Job Schedule, and the recurrences that create their jobs.

As the REST API reference has it (api-version 2025-06-01, ``BatchJobScheduleConfiguration``,
``JobScheduleState``):

- A job is due at ``doNotRunUntil`` (at once without it), then every ``recurrenceInterval``
  after the previous due time; each is named ``{scheduleId}:job-{n}``, n from 1.
- A schedule has at most one active job: a job due while the previous one has not completed
  waits for it, within the ``startWindow`` (infinite by default; for a recurring schedule the
  window never reaches the next recurrence, since a due job is not carried forward). A due job
  not created within its window is lost: the next recurrence is due instead.
- No job is created after ``doNotRunAfter``. Without a recurrence interval one job is created.
  With no job left to create, the schedule is ``completed`` once its last job has completed.
- ``disabled``: no job is created (a due job whose window passes meanwhile is lost); its
  active job runs on. ``terminating``: no job is created, its active job is terminated, then
  ``completed``. ``deleting``: its jobs are deleted, then it is gone.
- Update replaces what the request gives, Replace everything updatable (an absent schedule:
  the default one, one job at once); only jobs created afterwards see the change.

The endpoint's choices where the reference says nothing: the first job of a schedule due at
once is created by Add Job Schedule itself; a changed schedule is due from the time of the
change (or its ``doNotRunUntil``), a recurring one that already made a job from the last due
time plus the new interval; the active job of a terminated schedule ends with terminate reason
``UserTerminate``; the recurrences are checked every second of the core's clock (`TICK`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from jobprep_release.backends.base import (
    JobSpec,
    JobState,
    PoolLifetimeOption,
    PoolSpec,
    check_id,
)
from jobprep_release.backends.docker.core import autopools, deletions, jobs, views
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.records import (
    JobRecord,
    ScheduleRecord,
    move,
    new_history,
    touch,
)
from jobprep_release.backends.errors import AlreadyExists, BackendError, Conflict, NotFound
from jobprep_release.backends.schedules import (
    JobSchedule,
    JobScheduleSpec,
    JobScheduleState,
    Schedule,
)

PoolMaker = Callable[[PoolSpec], Awaitable[None]]
"""The service's Add Pool, for the auto pools of a schedule's jobs."""

TICK = 1.0
"""Seconds of the core's clock between two checks of the schedules' due jobs."""

log = structlog.get_logger("jobprep_release.schedules")

_REFUSALS = {
    JobScheduleState.COMPLETED: (
        "JobScheduleCompleted",
        "The specified job schedule is already in a completed state.",
    ),
    JobScheduleState.TERMINATING: (
        "JobScheduleBeingTerminated",
        "The specified job schedule is being terminated.",
    ),
    JobScheduleState.DELETING: (
        "JobScheduleBeingDeleted",
        "The specified job schedule has been marked for deletion and is being deleted.",
    ),
}
"""409 codes (`BatchErrorCode`) for a change asked of a schedule in these states."""


def _epoch(schedule: Schedule) -> float | None:
    until = schedule.do_not_run_until
    return None if until is None else until.timestamp()


def find(core: Core, schedule_id: str) -> ScheduleRecord:
    record = core.state.schedules.get(schedule_id.lower())
    if record is None:
        raise NotFound(f"job schedule {schedule_id} does not exist", code="JobScheduleNotFound")
    return record


def _refuse_unless(record: ScheduleRecord, *states: JobScheduleState) -> None:
    if record.state in states:
        return
    code, sentence = _REFUSALS.get(
        record.state, ("OperationInvalidForCurrentState", "not valid in this state")
    )
    raise Conflict(f"{sentence} ({record.spec.id}: {record.state})", code=code)


async def create(core: Core, spec: JobScheduleSpec, create_pool: PoolMaker) -> None:
    """Add Job Schedule; `AlreadyExists` (``JobScheduleExists``)."""
    check_id("job schedule", spec.id)
    if spec.id.lower() in core.state.schedules:
        raise AlreadyExists(f"job schedule {spec.id} already exists", code="JobScheduleExists")
    now = core.now()
    record = ScheduleRecord(spec=spec, history=new_history(now))
    record.next_run = max(now, _epoch(spec.schedule) or now)
    core.state.schedules[spec.id.lower()] = record
    await core.persist()
    await tick(core, record, create_pool)


def view(core: Core, record: ScheduleRecord) -> JobSchedule:
    history = record.history
    previous = history.previous_state
    due = record.next_run if record.state in _CREATING else None
    return JobSchedule(
        id=record.spec.id,
        state=record.state,
        creation_time=views.stamp(history.created),
        last_modified=views.stamp(history.modified),
        etag=history.etag,
        state_transition_time=views.stamp(history.state_time),
        previous_state=JobScheduleState(previous) if previous else None,
        previous_state_transition_time=views.stamp(history.previous_state_time),
        next_run_time=views.stamp(due),
        recent_job_id=_made(record),
        end_time=views.stamp(record.end_time),
    )


_CREATING = (JobScheduleState.ACTIVE, JobScheduleState.DISABLED)


def _made(record: ScheduleRecord) -> str | None:
    """The id of the last job made (REST recentJob; kept once that job is deleted)."""
    count = record.jobs_created
    return f"{record.spec.id}:job-{count}" if count else None


def schedule_jobs(core: Core, schedule_id: str) -> list[JobRecord]:
    """List Jobs from Job Schedule: its jobs that exist, oldest first."""
    record = find(core, schedule_id)
    found = (core.state.jobs.get(job_id.lower()) for job_id in record.jobs)
    return [job for job in found if job is not None]


async def update(
    core: Core,
    schedule_id: str,
    changes: JobScheduleSpec,
    create_pool: PoolMaker,
    *,
    replace_all: bool,
) -> None:
    """Update (PATCH: `changes` holds what the request gave, the rest as before; the caller
    merges) or Replace (PUT) Job Schedule; only jobs created afterwards see the change."""
    record = find(core, schedule_id)
    _refuse_unless(record, JobScheduleState.ACTIVE, JobScheduleState.DISABLED)
    old = record.spec
    record.spec = replace(changes, id=old.id, display_name=old.display_name)
    if changes.schedule != old.schedule or replace_all:
        record.next_run = _rescheduled(record, core.now())
    touch(record, core.now())
    await core.persist()
    await tick(core, record, create_pool)


def _rescheduled(record: ScheduleRecord, now: float) -> float | None:
    schedule = record.spec.schedule
    until = _epoch(schedule) or now
    interval = schedule.recurrence_interval
    if not record.jobs_created or record.last_due is None:
        return max(now, until)
    if interval is None:
        return None
    return max(record.last_due + interval.total_seconds(), until)


async def disable(core: Core, schedule_id: str) -> None:
    record = find(core, schedule_id)
    _refuse_unless(record, JobScheduleState.ACTIVE, JobScheduleState.DISABLED)
    move(record, JobScheduleState.DISABLED, core.now())
    await core.persist()


async def enable(core: Core, schedule_id: str, create_pool: PoolMaker) -> None:
    record = find(core, schedule_id)
    _refuse_unless(record, JobScheduleState.ACTIVE, JobScheduleState.DISABLED)
    move(record, JobScheduleState.ACTIVE, core.now())
    await core.persist()
    await tick(core, record, create_pool)


async def terminate(core: Core, schedule_id: str, create_pool: PoolMaker) -> None:
    """Terminate Job Schedule: ``terminating``, its active job terminated, then ``completed``
    once that job has completed."""
    record = find(core, schedule_id)
    _refuse_unless(record, JobScheduleState.ACTIVE, JobScheduleState.DISABLED)
    move(record, JobScheduleState.TERMINATING, core.now())
    await core.persist()
    active = _active_job(core, record)
    if active is not None:
        await jobs.terminate(core, active, "UserTerminate")
    await tick(core, record, create_pool)


async def begin_delete(core: Core, schedule_id: str, create_pool: PoolMaker) -> None:
    """Delete Job Schedule: ``deleting`` (saved) when this returns; its jobs are deleted, then
    it is forgotten, in the background."""
    record = find(core, schedule_id)
    if record.state is JobScheduleState.DELETING:
        _refuse_unless(record)
    move(record, JobScheduleState.DELETING, core.now())
    await core.persist()
    await tick(core, record, create_pool)


def _active_job(core: Core, record: ScheduleRecord) -> JobRecord | None:
    for job_id in record.jobs:
        job = core.state.jobs.get(job_id.lower())
        if job is not None and job.state not in (JobState.COMPLETED, JobState.DELETING):
            return job
    return None


async def run(core: Core, create_pool: PoolMaker) -> None:
    """Check every schedule each `TICK` of the core's clock, until cancelled."""
    while True:
        for record in list(core.state.schedules.values()):
            try:
                await tick(core, record, create_pool)
            except BackendError:
                log.exception("job schedule check failed", schedule=record.spec.id)
        await core.clock.sleep(TICK)


async def tick(core: Core, record: ScheduleRecord, create_pool: PoolMaker) -> None:
    """Bring `record` up to the core's clock: jobs due, lost recurrences, completion."""
    now = core.now()
    record.jobs = [job_id for job_id in record.jobs if job_id.lower() in core.state.jobs]
    if record.state is JobScheduleState.DELETING:
        await _delete_jobs(core, record)
        return
    if record.state is JobScheduleState.COMPLETED:
        return
    active = _active_job(core, record)
    if record.state is JobScheduleState.TERMINATING:
        if active is None:
            _complete(core, record, now)
        return
    _skip_lost(core, record, now)
    due = record.next_run
    if record.state is not JobScheduleState.ACTIVE or active is not None:
        return
    if due is not None and due <= now:
        await _create_job(core, record, due, now, create_pool)
    elif due is None:
        _complete(core, record, now)


def _window(schedule: Schedule) -> float:
    """How long after its due time a job may still be created (seconds; infinite: `math.inf`)."""
    window = schedule.start_window.total_seconds() if schedule.start_window else math.inf
    if schedule.recurrence_interval is not None:
        window = min(window, schedule.recurrence_interval.total_seconds())
    return window


def _skip_lost(core: Core, record: ScheduleRecord, now: float) -> None:
    """Drop the due jobs whose window has passed, and those after ``doNotRunAfter``."""
    schedule = record.spec.schedule
    interval = schedule.recurrence_interval
    after = schedule.do_not_run_after
    before = record.next_run
    while record.next_run is not None and now > record.next_run + _window(schedule):
        record.next_run = record.next_run + interval.total_seconds() if interval else None
    if record.next_run is not None and after is not None and record.next_run > after.timestamp():
        record.next_run = None
    if record.next_run != before:
        touch(record, now)
        core.changed()


async def _create_job(
    core: Core, record: ScheduleRecord, due: float, now: float, create_pool: PoolMaker
) -> None:
    spec = record.spec
    number = record.jobs_created + 1
    job_id = f"{spec.id}:job-{number}"
    interval = spec.schedule.recurrence_interval
    following: float | None = None
    if interval is not None:
        following = due + interval.total_seconds()
        while following <= now:
            following += interval.total_seconds()
    record.jobs_created = number
    record.last_due = due
    record.jobs.append(job_id)
    record.next_run = following
    touch(record, now)
    template = replace(spec.job_specification, id=job_id)
    job: JobSpec | None = None
    try:
        job = await _with_pool(core, record, template, create_pool)
        await jobs.create_job(core, job, scheduled=True)
    except BackendError:
        record.jobs.remove(job_id)
        log.exception("job schedule could not create its job", job=job_id)
        if job is not None and _own_pool(job):
            await autopools.abandon(core, job.pool_id)
        await core.persist()
        return
    if _own_pool(job) and core.pool(job.pool_id).auto_pool_job is not None:
        core.spawn(autopools.watch, core, job.pool_id)


def _own_pool(job: JobSpec) -> bool:
    """Whether `job` has an auto pool of its own (``poolLifetimeOption`` ``job``)."""
    return job.auto_pool is not None and job.auto_pool.lifetime is PoolLifetimeOption.JOB


async def _with_pool(
    core: Core, record: ScheduleRecord, job: JobSpec, create_pool: PoolMaker
) -> JobSpec:
    """`job` naming its pool: an auto pool made for it (``poolLifetimeOption`` ``job``), or
    the schedule's, made with its first job (``jobschedule``), as the REST reference's
    ``BatchPoolLifetimeOption`` has it."""
    auto = job.auto_pool
    if auto is None:
        return job
    if auto.lifetime is PoolLifetimeOption.JOB_SCHEDULE:
        existing = record.auto_pool_id
        if existing is not None and existing.lower() in core.state.pools:
            return replace(job, pool_id=existing)
    pool_id = autopools.pool_id(auto.id_prefix)
    await create_pool(replace(auto.pool, id=pool_id))
    if auto.lifetime is PoolLifetimeOption.JOB_SCHEDULE:
        record.auto_pool_id = pool_id
    elif not auto.keep_alive:
        core.pool(pool_id).auto_pool_job = job.id.lower()
    log.info("auto pool created", job=job.id, pool=pool_id, lifetime=str(auto.lifetime))
    return replace(job, pool_id=pool_id)


def _release_pool(core: Core, record: ScheduleRecord) -> None:
    """The schedule ended: its ``jobschedule`` auto pool goes, unless ``keepAlive``."""
    pool_id, record.auto_pool_id = record.auto_pool_id, None
    auto = record.spec.job_specification.auto_pool
    if pool_id is None or (auto is not None and auto.keep_alive):
        return
    if pool_id.lower() in core.state.pools:
        core.spawn(deletions.start_delete_pool, core, pool_id)


def _complete(core: Core, record: ScheduleRecord, now: float) -> None:
    move(record, JobScheduleState.COMPLETED, now)
    record.end_time = now
    record.next_run = None
    _release_pool(core, record)
    core.changed()


async def _delete_jobs(core: Core, record: ScheduleRecord) -> None:
    if not record.jobs:
        _release_pool(core, record)
        del core.state.schedules[record.spec.id.lower()]
        core.changed()
        return
    for job_id in list(record.jobs):
        await deletions.start_delete_job(core, job_id)
