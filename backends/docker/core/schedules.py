"""Job schedules: add, disable, enable, terminate, delete, and the jobs they create.

As the REST API reference has it (BatchJobScheduleConfiguration, BatchJobScheduleExecutionInfo):
a schedule creates its first job at ``doNotRunUntil`` (at once without it), then one every
``recurrenceInterval`` (none: a single job, and the schedule completes once that job
completes); it has at most one active job, so a job due while the previous one runs waits for
it, and a job not created within ``startWindow`` of its time is skipped; no job is created after
``doNotRunAfter``, and the schedule completes once that time has passed and it has no active
job. Jobs are named ``<schedule id>:job-<n>``. Terminating a schedule terminates its active job
(terminate reason ``TerminateJobSchedule``); deleting it deletes its jobs.
"""

from __future__ import annotations

from dataclasses import replace

from jobprep_release.backends.base import (
    JobSchedule,
    JobScheduleSpec,
    JobScheduleState,
    JobState,
    check_id,
)
from jobprep_release.backends.docker.core import deletions, jobs, views
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.records import (
    JobRecord,
    ScheduleRecord,
    move,
    new_history,
    touch,
)
from jobprep_release.backends.errors import AlreadyExists, Conflict, InvalidRequest, NotFound

_ENDED = {
    JobScheduleState.COMPLETED: "JobScheduleCompleted",
    JobScheduleState.TERMINATING: "JobScheduleBeingTerminated",
    JobScheduleState.DELETING: "JobScheduleBeingDeleted",
}


def schedule(core: Core, schedule_id: str) -> ScheduleRecord:
    found = core.state.schedules.get(schedule_id.lower())
    if found is None:
        raise NotFound(f"job schedule {schedule_id} does not exist", code="JobScheduleNotFound")
    return found


def job_ids(core: Core, record: ScheduleRecord) -> list[str]:
    """The ids of the jobs the schedule created that still exist, oldest first."""
    prefix = f"{record.spec.id}:job-".lower()
    found = [job for key, job in core.state.jobs.items() if key.startswith(prefix)]
    return [job.spec.id for job in sorted(found, key=lambda job: job.created)]


def view(record: ScheduleRecord) -> JobSchedule:
    history = record.history
    running = record.state in (JobScheduleState.ACTIVE, JobScheduleState.DISABLED)
    return JobSchedule(
        id=record.spec.id,
        state=record.state,
        next_run_time=views.stamp(record.next_run) if running else None,
        recent_job_id=record.recent_job,
        end_time=views.stamp(record.end_time),
        creation_time=views.stamp(history.created),
        last_modified=views.stamp(history.modified),
        etag=history.etag,
        state_transition_time=views.stamp(history.state_time),
        previous_state=JobScheduleState(history.previous_state) if history.previous_state else None,
        previous_state_transition_time=views.stamp(history.previous_state_time),
    )


async def create_schedule(core: Core, spec: JobScheduleSpec) -> None:
    """Add Job Schedule; `AlreadyExists` (``JobScheduleExists``)."""
    check_id("job schedule", spec.id)
    if spec.id.lower() in core.state.schedules:
        raise AlreadyExists(f"job schedule {spec.id} already exists", code="JobScheduleExists")
    if not spec.job.pool_id:
        raise InvalidRequest(
            "jobSpecification.poolInfo.poolId is required", code="MissingRequiredProperty"
        )
    now = core.now()
    until = spec.schedule.do_not_run_until
    record = ScheduleRecord(spec=spec, created=now, history=new_history(now))
    record.next_run = max(now, until.timestamp()) if until is not None else now
    core.state.schedules[spec.id.lower()] = record
    await core.persist()
    await tick(core)


def _active_job(core: Core, record: ScheduleRecord) -> JobRecord | None:
    if record.recent_job is None:
        return None
    job = core.state.jobs.get(record.recent_job.lower())
    if job is None or job.state is JobState.COMPLETED:
        return None
    return job


def _complete(core: Core, record: ScheduleRecord, now: float) -> None:
    move(record, JobScheduleState.COMPLETED, now)
    record.end_time = now
    record.next_run = None
    core.changed()


def _following(record: ScheduleRecord, now: float) -> float | None:
    """The schedule's next run after the current one (None: it does not recur); runs whose
    time has passed are skipped."""
    interval = record.spec.schedule.recurrence_interval
    if interval is None or record.next_run is None:
        return None
    step = interval.total_seconds()
    following = record.next_run + step
    while following + step <= now:
        following += step
    return following


async def tick(core: Core) -> None:
    """Create the jobs that are due, complete the schedules that are done, and carry on with
    deletions (the sweeper calls it; so do the operations that change a schedule)."""
    now = core.now()
    for record in list(core.state.schedules.values()):
        if record.state is JobScheduleState.DELETING:
            await _carry_on_deleting(core, record)
        elif record.state is JobScheduleState.TERMINATING:
            if _active_job(core, record) is None:
                _complete(core, record, now)
        elif record.state is JobScheduleState.ACTIVE:
            await _advance(core, record, now)


async def _advance(core: Core, record: ScheduleRecord, now: float) -> None:
    settings = record.spec.schedule
    active = _active_job(core, record)
    after = settings.do_not_run_after
    past = after is not None and now >= after.timestamp()
    if active is None and (past or record.next_run is None):
        _complete(core, record, now)
        return
    due = record.next_run
    if due is None or now < due or past:
        return
    window = settings.start_window
    if window is not None and now > due + window.total_seconds():
        record.next_run = _following(record, now)  # the opportunity is lost
        touch(record, now)
        core.changed()
        return
    if active is not None:
        return  # at most one active job: this one waits for it
    record.created_jobs += 1
    job_id = f"{record.spec.id}:job-{record.created_jobs}"
    record.recent_job = job_id
    record.next_run = _following(record, now)
    touch(record, now)
    await jobs.add_job(core, replace(record.spec.job, id=job_id))


def _unended(core: Core, schedule_id: str) -> ScheduleRecord:
    """The schedule; `Conflict` once it completed or is being terminated or deleted."""
    record = schedule(core, schedule_id)
    if record.state in _ENDED:
        raise Conflict(f"job schedule {schedule_id} is {record.state}", code=_ENDED[record.state])
    return record


async def disable_schedule(core: Core, schedule_id: str) -> None:
    """Disable Job Schedule: no job is created until it is enabled; its active job runs on."""
    record = _unended(core, schedule_id)
    move(record, JobScheduleState.DISABLED, core.now())
    await core.persist()


async def enable_schedule(core: Core, schedule_id: str) -> None:
    """Enable Job Schedule: a disabled schedule creates jobs again."""
    record = _unended(core, schedule_id)
    move(record, JobScheduleState.ACTIVE, core.now())
    await core.persist()
    await tick(core)


async def terminate_schedule(core: Core, schedule_id: str) -> None:
    """Terminate Job Schedule: ``terminating``, its active job terminated
    (``TerminateJobSchedule``), then ``completed``."""
    record = _unended(core, schedule_id)
    move(record, JobScheduleState.TERMINATING, core.now())
    await core.persist()
    active = _active_job(core, record)
    if active is not None:
        await jobs.terminate(core, active, "TerminateJobSchedule")
    await tick(core)


async def delete_schedule(core: Core, schedule_id: str) -> None:
    """Delete Job Schedule: ``deleting`` now; its jobs are deleted, then it is gone."""
    record = schedule(core, schedule_id)
    if record.state is JobScheduleState.DELETING:
        raise Conflict(
            f"job schedule {schedule_id} is being deleted", code="JobScheduleBeingDeleted"
        )
    move(record, JobScheduleState.DELETING, core.now())
    await core.persist()
    await _carry_on_deleting(core, record)


async def _carry_on_deleting(core: Core, record: ScheduleRecord) -> None:
    remaining = job_ids(core, record)
    for job_id in remaining:
        if core.job(job_id).state is not JobState.DELETING:
            await deletions.start_delete_job(core, job_id)
    if not remaining:
        del core.state.schedules[record.spec.id.lower()]
        await core.persist()
