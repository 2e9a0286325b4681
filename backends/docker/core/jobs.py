"""Jobs and their tasks: create, add tasks, terminate a task or a job, delete, and what they
report (counts, the preparation and release status per node).

Terminate Job (batch-semantics.md, "States"): the job goes `terminating`, running tasks are
ended, active ones stay active and never run, release tasks run on every node that ran a task
of the job and whose preparation completed, and the job is `completed` once they have all
ended. Delete Job (`deletions`) does the same work with the job ``deleting``.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobprep_release.backends.base import (
    RELEASE_MAX_WALL_CLOCK,
    JobSpec,
    JobState,
    PrepReleaseStatus,
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
                resources.check_file_path(file.file_path)
    now = core.now()
    job = JobRecord(spec=spec, created=now, history=new_history(now))
    core.state.jobs[spec.id.lower()] = job
    await core.persist()
    if outcomes.all_tasks_complete(job):
        # REST OnAllTasksComplete: a job without tasks has all its tasks complete, so a job
        # made with terminatejob ends at once, and refuses the tasks added later.
        await terminate(core, job, "AllTasksComplete")


async def add_tasks(core: Core, job_id: str, tasks: Sequence[TaskSpec]) -> None:
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    if job.state is not JobState.ACTIVE:
        raise Conflict(
            f"job {job_id} is {job.state}; tasks can only be added to an active job",
            code=_NOT_ACTIVE_CODES.get(job.state, "JobNotActive"),
        )
    rules.check_new_tasks(job, tasks)
    pool = core.state.pools.get(job.spec.pool_id.lower())
    for spec in tasks:
        rules.check_user(pool.spec if pool else None, spec.user_identity, "task")
    now = core.now()
    for spec in tasks:
        job.tasks[spec.id.lower()] = TaskRecord(
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
    if job.state is not JobState.ACTIVE:
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
