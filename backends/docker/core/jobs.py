"""Jobs and their tasks: create, add tasks, terminate a task or a job, delete, and what they
report (counts, the preparation and release status per node).

Terminate Job (batch-semantics.md, "States"): the job goes `terminating`, running tasks are
ended, active ones stay active and never run, release tasks run on every node that ran a task
of the job and whose preparation completed, and the job is `completed` once they have all
ended. Delete Job (`deletions`) does the same work with the job ``deleting``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from jobprep_release.backends.base import (
    RELEASE_MAX_WALL_CLOCK,
    AutoPoolSpec,
    DisableJobOption,
    ExecutionResult,
    JobConstraints,
    JobSpec,
    JobState,
    JobUpdate,
    OnAllTasksComplete,
    PrepReleaseStatus,
    TaskConstraints,
    TaskCounts,
    TaskSpec,
    TaskState,
    check_id,
)
from jobprep_release.backends.docker.core import (
    environment,
    outcomes,
    processes,
    resources,
    rules,
    views,
)
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.records import (
    Execution,
    JobRecord,
    TaskRecord,
    move,
    new_history,
    touch,
)
from jobprep_release.backends.errors import AlreadyExists, Conflict, InvalidRequest

T = TypeVar("T")

# The service's error codes for a job operation refused in the job's state (BatchErrorCode:
# "the specified job is already in a completed state", ...).
_NOT_ACTIVE_CODES = {
    JobState.COMPLETED: "JobCompleted",
    JobState.TERMINATING: "JobBeingTerminated",
    JobState.DELETING: "JobBeingDeleted",
}


async def create_job(core: Core, spec: JobSpec, *, scheduled: bool = False) -> None:
    """Add Job; `scheduled`: a job schedule's, whose id (``{scheduleId}:job-{n}``) is the
    service's own form, not one a client may give."""
    if not scheduled:
        check_id("job", spec.id)
    existing = core.state.jobs.get(spec.id.lower())
    if existing is not None:
        rules.refuse_if_deleting(existing)
        raise AlreadyExists(f"job {spec.id} already exists", code="JobExists")
    if spec.release is not None and spec.preparation is None:
        raise InvalidRequest(
            "a job release task needs a job preparation task",
            code="JobReleaseTaskRequiresJobPreparationTask",
        )
    if spec.release is not None and spec.release.max_wall_clock_time > RELEASE_MAX_WALL_CLOCK:
        raise InvalidRequest(
            "a job release task's max wall clock time is at most 15 minutes",
            code="InvalidPropertyValue",
        )
    pool = core.state.pools.get(spec.pool_id.lower())
    specials = ((spec.preparation, "jobPreparationTask"), (spec.release, "jobReleaseTask"))
    for special, where in specials:
        if special is not None:
            rules.check_user(pool.spec if pool else None, special.user_identity, where)
            check_id("task", special.id)
            for file in special.resource_files:
                resources.check_resource_file(file)
    now = core.now()
    job = JobRecord(spec=spec, created=now, history=new_history(now))
    core.state.jobs[spec.id.lower()] = job
    await core.persist()
    if outcomes.all_tasks_complete(job):
        # REST OnAllTasksComplete: a job without tasks has all its tasks complete, so a job
        # made with terminatejob ends at once, and refuses the tasks added later.
        await terminate(core, job, "AllTasksComplete")


NOT_ENDED = (JobState.ACTIVE, JobState.DISABLING, JobState.DISABLED, JobState.ENABLING)
"""The states of a job that takes tasks and can be terminated (by Terminate Job, its
constraints or its tasks). A disabled job takes tasks; they run once it is enabled (REST
Disable Job: "No new Tasks are started under the Job until it moves back to active state")."""


async def add_tasks(core: Core, job_id: str, tasks: Sequence[TaskSpec]) -> None:
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state not in NOT_ENDED:
        raise Conflict(
            f"job {job_id} is {job.state}; tasks can only be added to a job that has not ended",
            code=_NOT_ACTIVE_CODES.get(job.state, "JobNotActive"),
        )
    rules.check_new_tasks(job, tasks)
    pool = core.state.pools.get(job.spec.pool_id.lower())
    for spec in tasks:
        rules.check_user(pool.spec if pool else None, spec.user_identity, "task")
    now = core.now()
    for spec in tasks:
        key = spec.id.lower()
        # The id itself when it is lower case already: one string a task, not two.
        job.tasks[spec.id if key == spec.id else key] = TaskRecord(
            spec=spec, seq=job.next_seq, history=new_history(now)
        )
        job.next_seq += 1
    await core.persist()
    core.poke()


def task_counts(core: Core, job_id: str) -> TaskCounts:
    tally = core.index.tally(core.job(job_id))  # kept by `move`: no scan of the tasks
    counts, succeeded = tally.counts, len(tally.succeeded)
    completed = counts[TaskState.COMPLETED]
    return TaskCounts(
        active=counts[TaskState.ACTIVE],
        running=counts[TaskState.RUNNING] + counts[TaskState.PREPARING],
        completed=completed,
        succeeded=succeeded,
        failed=completed - succeeded,
    )


async def terminate_task(core: Core, job_id: str, task_id: str) -> None:
    """End a task: an active one completes without running, a running one is killed."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    task = core.task(job, task_id)
    if task.state is not TaskState.COMPLETED:
        await end_task(core, task, "the task was ended by Terminate Task")
        outcomes.after_task_change(core, job)
        core.poke()


async def terminate_job(core: Core, job_id: str, reason: str | None = None) -> None:
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state in (JobState.COMPLETED, JobState.TERMINATING):
        raise Conflict(f"job {job_id} is already {job.state}", code="JobCompleted")
    await terminate(core, job, reason or "UserTerminate")


async def terminate(core: Core, job: JobRecord, reason: str) -> None:
    """Terminate Job (see the module's docstring); saves the state before releases start."""
    if job.state not in NOT_ENDED:
        return
    move(job, JobState.TERMINATING, core.now())
    job.terminate_reason = reason
    await end_work(core, job)


async def end_work(core: Core, job: JobRecord) -> None:
    """End the job's running tasks and unfinished preparation tasks, and start the release
    tasks that are due (Terminate Job's work); saves the state before releases start. Doing it
    again finds nothing left but what an interruption left undone."""
    for task in job.tasks.values():
        if task.state in (TaskState.RUNNING, TaskState.PREPARING):
            await end_task(core, task, "the task was ended by Terminate Job")
    pending = []
    for node_id, record in job.nodes.items():
        prep = record.prep
        if prep is not None and not prep.completed:
            await processes.stop(core, prep.key)
            failure = views.failure("TaskEnded", "ended by Terminate Job")
            views.complete(prep, None, failure, core.now())
        if job.spec.release is not None and rules.release_due(record):
            record.release = Execution()
            pending.append(processes.prepare_release(core, job, node_id))
    outcomes.maybe_complete(core, job)
    await processes.start_all(core, pending)
    await core.persist()
    core.poke()


async def end_task(core: Core, task: TaskRecord, message: str) -> None:
    await processes.stop(core, task.run.key)
    now = core.now()
    if task.state is TaskState.RUNNING and task.run.start_time is not None:
        task.history.state_time = min(task.run.start_time, now)
    # Inferred from the REST spec's TaskExecutionInfo: a task ended by the service has no
    # exit code of its own, and a failure saying why.
    views.complete(task.run, None, views.failure("TaskEnded", message), now)
    core.count_completion(task)
    move(task, TaskState.COMPLETED, now)
    touch(task, now)
    if task.instances:  # a multi-instance task's subtasks end with it
        from jobprep_release.backends.docker.core import multiinstance

        multiinstance.after_primary(core, task, now)
    core.refresh_busy()


def releases_running(job: JobRecord) -> bool:
    return any(r.release is not None and not r.release.completed for r in job.nodes.values())


def prep_release_status(core: Core, job_id: str) -> list[PrepReleaseStatus]:
    job = core.job(job_id)
    if job.spec.preparation is None:
        raise Conflict(
            f"job {job_id} has no job preparation task",
            code="JobPreparationTaskNotSpecified",
        )
    pool = core.state.pools.get(job.spec.pool_id.lower())
    order = {node.id: node.index for node in pool.nodes} if pool else {}
    entries = [
        (node_id, record)
        for node_id, record in job.nodes.items()
        if record.prep is not None or record.release is not None
    ]
    entries.sort(key=lambda item: order.get(item[0], len(order) + 1))
    release_id = job.spec.release.id if job.spec.release else None
    return [
        PrepReleaseStatus(
            pool_id=job.spec.pool_id,
            node_id=node_id,
            preparation=views.prep_release_view(record.prep, _root(job, job.spec.preparation.id)),
            release=views.prep_release_view(record.release, _root(job, release_id)),
        )
        for node_id, record in entries
    ]


def _root(job: JobRecord, task_id: str | None) -> str | None:
    if task_id is None:
        return None
    return environment.relative_to_root(environment.task_dir(job.spec.id, task_id))


# --- updates, disabling and enabling -----------------------------------------------------------

_UNCHANGEABLE = {
    JobState.COMPLETED: "JobCompleted",
    JobState.TERMINATING: "JobBeingTerminated",
}


async def update_job(core: Core, job_id: str, update: JobUpdate, *, replace_all: bool) -> None:
    """Update Job (PATCH: what `update` leaves None stays) or Replace Job (PUT, `replace_all`:
    what it leaves None takes the service's default). REST Update/Replace Job: ``poolInfo``
    only while the job is disabled; ``onAllTasksComplete`` cannot go from terminatejob back to
    noaction (400 ``InvalidPropertyValue``). Inferred: a job that ended (terminating,
    completed) takes no update (409 ``JobCompleted``/``JobBeingTerminated``)."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state in _UNCHANGEABLE:
        raise Conflict(f"job {job_id} is {job.state}", code=_UNCHANGEABLE[job.state])
    spec = job.spec
    default = JobSpec(id=spec.id, pool_id=spec.pool_id)
    pool_id = update.pool_id if update.pool_id is not None else spec.pool_id
    if pool_id.lower() != spec.pool_id.lower() and job.state is not JobState.DISABLED:
        raise Conflict(
            f"job {job_id} is {job.state}: its pool can be changed only while it is disabled",
            code="OperationInvalidForCurrentState",
        )
    on_complete = _pick(
        update.on_all_tasks_complete,
        spec.on_all_tasks_complete,
        default.on_all_tasks_complete,
        replace_all,
    )
    if (
        spec.on_all_tasks_complete is OnAllTasksComplete.TERMINATE_JOB
        and on_complete is OnAllTasksComplete.NO_ACTION
    ):
        raise InvalidRequest(
            "onAllTasksComplete cannot be changed from terminatejob to noaction",
            code="InvalidPropertyValue",
        )
    auto_pool = spec.auto_pool
    if update.auto_pool is not None:
        auto_pool = _kept_auto_pool(job, update.auto_pool)
    current = JobConstraints(spec.max_wall_clock_time, spec.max_task_retry_count)
    constraints = _pick(update.constraints, current, JobConstraints(), replace_all)
    job.spec = replace(
        spec,
        pool_id=pool_id,
        priority=_pick(update.priority, spec.priority, default.priority, replace_all),
        max_parallel_tasks=_pick(
            update.max_parallel_tasks, spec.max_parallel_tasks, -1, replace_all
        ),
        allow_task_preemption=_pick(
            update.allow_task_preemption, spec.allow_task_preemption, False, replace_all
        ),
        max_wall_clock_time=constraints.max_wall_clock_time,
        max_task_retry_count=constraints.max_task_retry_count,
        on_all_tasks_complete=on_complete,
        metadata=dict(_pick(update.metadata, spec.metadata, {}, replace_all)),
        auto_pool=auto_pool,
    )
    touch(job, core.now())
    await core.persist()
    outcomes.after_task_change(core, job)
    core.poke()


def _kept_auto_pool(job: JobRecord, asked: AutoPoolSpec) -> AutoPoolSpec:
    """The job's auto pool with the `keepAlive` asked; 409 ``OperationInvalidForCurrentState``
    for a job without one, 400 ``InvalidPropertyValue`` for any other change (REST Update Job:
    "only the keepAlive property of the autoPoolSpecification can be updated")."""
    current = job.spec.auto_pool
    if current is None:
        raise Conflict(
            f"job {job.spec.id} runs on pool {job.spec.pool_id}, not an auto pool",
            code="OperationInvalidForCurrentState",
        )
    same = replace(asked, keep_alive=current.keep_alive, pool=replace(asked.pool, image=None))
    if same != replace(current, pool=replace(current.pool, image=None)):
        raise InvalidRequest(
            "only the keepAlive of a job's autoPoolSpecification can be updated",
            code="InvalidPropertyValue",
        )
    return replace(current, keep_alive=asked.keep_alive)


def _pick(value: T | None, current: T, default: T, replace_all: bool) -> T:
    """An updated property: the value given; else the current one (Update Job) or the
    service's default (Replace Job)."""
    if value is not None:
        return value
    return default if replace_all else current


async def disable_job(core: Core, job_id: str, option: DisableJobOption) -> None:
    """Disable Job (REST): the job goes ``disabling`` and no new task starts; its running tasks
    are requeued (to run once the job is enabled), terminated (completed with ``TaskEnded``),
    or left to complete (``wait``); the job is ``disabled`` once none runs. A job already
    disabling or disabled is left as it is; in any other state than active, 409.
    Inferred: a task waiting for the preparation task (``preparing``) has not started and goes
    back to the queue whatever the option."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state in (JobState.DISABLING, JobState.DISABLED):
        return
    if job.state is not JobState.ACTIVE:
        raise Conflict(
            f"job {job_id} is {job.state}; only an active job can be disabled",
            code=_NOT_ACTIVE_CODES.get(job.state, "JobNotActive"),
        )
    await disable(core, job, option)


async def disable(core: Core, job: JobRecord, option: DisableJobOption) -> None:
    """Disable Job's work on an active job (see `disable_job`); nothing in any other state."""
    if job.state is not JobState.ACTIVE:
        return
    now = core.now()
    move(job, JobState.DISABLING, now)
    for task in job.tasks.values():
        if task.state is TaskState.PREPARING:
            move(task, TaskState.ACTIVE, now)
            task.node_id = None
        elif task.state is TaskState.RUNNING and option is DisableJobOption.TERMINATE:
            await end_task(core, task, "the task was ended by Disable Job")
        elif task.state is TaskState.RUNNING and option is DisableJobOption.REQUEUE:
            await processes.stop(core, task.run.key)
            outcomes.requeue(core, task, now)
    core.refresh_busy()
    outcomes.after_task_change(core, job)
    await core.persist()
    core.poke()


async def enable_job(core: Core, job_id: str) -> None:
    """Enable Job (REST): a disabled job goes ``enabling``, then ``active``, and its tasks are
    scheduled again; 409 for a job that ended. Inferred: a job still disabling (``wait``) is
    enabled the same way, its running tasks going on; an active or enabling job is left as it
    is."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state in (JobState.ACTIVE, JobState.ENABLING):
        return
    if job.state not in (JobState.DISABLED, JobState.DISABLING):
        raise Conflict(
            f"job {job_id} is {job.state}; only a disabled job can be enabled",
            code=_NOT_ACTIVE_CODES.get(job.state, "OperationInvalidForCurrentState"),
        )
    move(job, JobState.ENABLING, core.now())
    await core.persist()
    move(job, JobState.ACTIVE, core.now())
    outcomes.after_task_change(core, job)
    await core.persist()
    core.poke()


async def update_task(core: Core, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
    """Update Task (REST: its constraints, replaced whole; what is not given is the default).
    Inferred: a running task keeps the wall clock it started with; its next run and its
    retries follow the new constraints."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    task = core.task(job, task_id)
    task.spec = replace(task.spec, constraints=constraints)
    touch(task, core.now())
    await core.persist()
    core.poke()


async def expire_jobs(core: Core) -> None:
    """Terminate the jobs past their ``maxWallClockTime`` (REST BatchJobConstraints: measured
    from the job's creation; the terminate reason is ``MaxWallClockTimeExpiry``, running tasks
    end, release tasks run)."""
    now = core.now()
    for job in list(core.state.jobs.values()):
        limit = job.spec.max_wall_clock_time
        expired = limit is not None and job.created + limit.total_seconds() <= now
        if expired and job.state in NOT_ENDED:
            await terminate(core, job, "MaxWallClockTimeExpiry")


# --- task operations -------------------------------------------------------------------------


async def reactivate_task(core: Core, job_id: str, task_id: str) -> None:
    """Reactivate Task (REST): a task that completed with a failure is ``active`` again, its
    retry count reset to 0 and its previous exit code and failure information gone, to run up
    to its retry count again. 409 for a task not completed or completed successfully
    (Inferred code: ``TaskNotCompleted``/``TaskCompletedSuccessfully`` are not documented, so
    ``OperationInvalidForCurrentState``), and for a job that ended (``JobCompleted``,
    ``JobBeingTerminated``, ``JobBeingDeleted``)."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state in _UNCHANGEABLE:
        raise Conflict(f"job {job_id} is {job.state}", code=_UNCHANGEABLE[job.state])
    task = core.task(job, task_id)
    if task.state is not TaskState.COMPLETED or task.run.result is ExecutionResult.SUCCESS:
        raise Conflict(
            f"task {task_id} is {task.state}; only a task that failed can be reactivated",
            code="OperationInvalidForCurrentState",
        )
    run = task.run
    run.retry_count = 0
    run.exit_code = run.failure = run.result = None
    run.start_time = run.end_time = None
    run.completed = False
    run.retrying = False
    now = core.now()
    move(task, TaskState.ACTIVE, now)
    task.node_id = None
    touch(task, now)
    await core.persist()
    core.poke()


async def delete_task(core: Core, job_id: str, task_id: str) -> None:
    """Delete Task (REST): the task is ended if it runs and forgotten; "all of the files in its
    directory on the Compute Node where it ran are also deleted (regardless of the retention
    time)"."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    task = core.task(job, task_id)
    await processes.stop(core, task.run.key)
    node_id, removed = task.node_id, task.files_removed
    del job.tasks[task.spec.id.lower()]
    core.refresh_busy()
    touch(job, core.now())
    await core.persist()
    if node_id is not None and not removed and core.node_by_id(node_id) is not None:
        await processes.remove_tree(core, node_id, environment.task_dir(job.spec.id, task.spec.id))
    outcomes.after_task_change(core, job)
    core.poke()
