"""What the core makes of a process's end: a task completed, retried or requeued; a preparation
task that lets waiting tasks run, is retried, or blocks the node for its job; a release task
that lets its job complete (batch-semantics.md, "Tasks", "Job preparation task", "Job release
task"). Where the documents are silent, the choice made is marked "Inferred".
"""

from __future__ import annotations

from datetime import timedelta

import anyio
import structlog

from jobprep_release.backends.base import (
    RELEASE_MAX_WALL_CLOCK,
    DisableJobOption,
    ExecutionResult,
    FailureInfo,
    JobAction,
    JobState,
    NodeState,
    OnAllTasksComplete,
    OnTaskFailure,
    OutputFile,
    TaskState,
)
from jobprep_release.backends.docker.core import environment, outputs, rules, views
from jobprep_release.backends.docker.core.executor import (
    BAD_CONTAINER_SETTINGS,
    IMAGE_NOT_FOUND,
    NOT_FOUND,
    ProcessExit,
)
from jobprep_release.backends.docker.core.kernel import Core, InFlight, Kind
from jobprep_release.backends.docker.core.records import (
    Execution,
    JobRecord,
    TaskRecord,
    move,
    touch,
)

log = structlog.get_logger("jobprep_release.docker")

WALL_CLOCK_SLACK = 0.99
"""An exit after 99% of the wall clock counts as the wall clock's: timers are not exact."""


def execution(job: JobRecord, flight: InFlight) -> Execution:
    if flight.kind is Kind.TASK:
        return job.tasks[flight.task_id].run
    if flight.kind is Kind.INSTANCE:
        return job.tasks[flight.task_id].instances[flight.instance].run
    record = job.nodes[flight.node_id]
    run = record.prep if flight.kind is Kind.PREP else record.release
    assert run is not None
    return run


def on_exit(
    core: Core,
    key: str,
    flight: InFlight,
    code: int,
    start: float,
    end: float,
    why: str,
    *,
    failure: FailureInfo | None = None,
    upload_failure: FailureInfo | None = None,
) -> None:
    """The process under `key` ended with `code`, having run from `start` to `end`;
    `upload_failure`, when its output files could not all be uploaded."""
    if core.in_flight.pop(key, None) is None:
        return
    if flight.kind is Kind.START:
        from jobprep_release.backends.docker.core import starttask

        starttask.on_exit(core, flight, verdict(code, why, failure), start, end)
        return
    job = core.state.jobs.get(flight.job_id.lower())
    if job is None:
        return
    run = execution(job, flight)
    if run.start_time is None:
        mark_started(run, start)
    started = run.start_time if run.start_time is not None else start
    exit_code, failure = verdict(code, why, failure)
    if exit_code and _wall_clock_expired(job, flight, start, end):
        # The service ends a task at its maxWallClockTime; TaskFailureInformationCodes has
        # one code for a task the service ended: TaskEnded. (MaxWallClockTimeExpiry is a
        # job's terminate reason, not a task's failure code.)
        failure = views.failure(
            "TaskEnded", "the task was ended: it ran past its max wall clock time"
        )
    if failure is None and upload_failure is not None:
        failure = upload_failure
    views.complete(run, exit_code, failure, end)
    if flight.kind is Kind.TASK:
        task = job.tasks[flight.task_id]
        if task.state is TaskState.RUNNING:
            task.history.state_time = started
        _on_task_exit(core, job, task, end)
        if task.instances:
            from jobprep_release.backends.docker.core import multiinstance

            multiinstance.after_primary(core, task, end)
    elif flight.kind is Kind.INSTANCE:
        from jobprep_release.backends.docker.core import multiinstance

        multiinstance.on_exit(core, job, flight, end)
    elif flight.kind is Kind.PREP:
        _on_prep_exit(core, job, flight.node_id)
    else:
        maybe_complete(core, job)
    core.poke()


def output_files(core: Core, flight: InFlight) -> list[OutputFile]:
    """The output files of the task behind `flight` (none for other kinds)."""
    if flight.kind is not Kind.TASK:
        return []
    job = core.state.jobs.get(flight.job_id.lower())
    task = job.tasks.get(flight.task_id) if job is not None else None
    return list(task.spec.output_files) if task is not None else []


async def upload_then_exit(core: Core, key: str, flight: InFlight, exit: ProcessExit) -> None:
    """Upload the task's output files due after `exit`, then complete it (`on_exit`); a
    failed upload becomes its failure (`outputs`)."""
    try:
        task_dir = environment.task_dir(flight.job_id, output_task_id(core, flight))
        failed = await outputs.upload(
            core.executor, flight.node_id, task_dir, output_files(core, flight), exit.code
        )
    finally:
        core.uploading.discard(key)
    why = views.failure(failed.code, str(failed)) if failed is not None else None
    on_exit(core, key, flight, exit.code, exit.start, exit.end, exit.why, upload_failure=why)


def output_task_id(core: Core, flight: InFlight) -> str:
    job = core.state.jobs.get(flight.job_id.lower())
    task = job.tasks.get(flight.task_id) if job is not None else None
    return task.spec.id if task is not None else flight.task_id


def verdict(
    code: int, why: str, failure: FailureInfo | None
) -> tuple[int | None, FailureInfo | None]:
    """A process's exit code and failure as the service reports them: none and
    ``CommandProgramNotFound`` for a program that could not start, the code and
    ``FailureExitCode`` for a nonzero exit; `failure` (decided before it started) as given."""
    if why == IMAGE_NOT_FOUND:
        # TaskFailureInformationCodes: "The container image was invalid."
        return None, views.failure("ContainerInvalidImage", "the container image was not found")
    if why == BAD_CONTAINER_SETTINGS:
        return None, views.failure(
            "ContainerInvalidSettings",
            "at least one value of the specified task container settings is invalid",
        )
    if failure is not None or why == NOT_FOUND:
        return None, failure or views.failure(
            "CommandProgramNotFound", "the command line's program was not found"
        )
    if code != 0:
        return code, views.failure("FailureExitCode", f"the process exited with code {code}")
    return code, None


def mark_started(run: Execution, start: float) -> None:
    """The run's process started at `start`; a retry's start is its `lastRetryTime`."""
    run.start_time = start
    if run.retrying:
        run.retrying = False
        run.last_retry_time = start


def _wall_clock_expired(job: JobRecord, flight: InFlight, start: float, end: float) -> bool:
    limit: timedelta | None = None
    if flight.kind is Kind.TASK:
        limit = job.tasks[flight.task_id].spec.constraints.max_wall_clock_time
    elif flight.kind is Kind.PREP and job.spec.preparation is not None:
        limit = job.spec.preparation.constraints.max_wall_clock_time
    elif flight.kind is Kind.RELEASE and job.spec.release is not None:
        limit = min(job.spec.release.max_wall_clock_time, RELEASE_MAX_WALL_CLOCK)
    return limit is not None and end - start >= limit.total_seconds() * WALL_CLOCK_SLACK


def task_exited(core: Core, job: JobRecord, task: TaskRecord, end: float) -> None:
    """`task`'s run is recorded as ended: retry it or complete it (a multi-instance task
    whose coordination command failed comes here too)."""
    _on_task_exit(core, job, task, end)


def _on_task_exit(core: Core, job: JobRecord, task: TaskRecord, end: float) -> None:
    run = task.run
    # An upload failure after exit code 0 is not retried: only non-zero exits are.
    failed_by_exit = run.result is ExecutionResult.FAILURE and run.exit_code not in (None, 0)
    limit = task.spec.constraints.max_task_retry_count
    if failed_by_exit and rules.retries_left(limit, job, run.retry_count):
        run.retry_count += 1
        run.retrying = True
        run.completed = False
        move(task, TaskState.ACTIVE, end)
        task.node_id = None
    else:
        core.count_completion(task)
        move(task, TaskState.COMPLETED, end)
        _job_action(core, job, task)
    core.refresh_busy()
    after_task_change(core, job)


def _job_action(core: Core, job: JobRecord, task: TaskRecord) -> None:
    """With onTaskFailure performexitoptionsjobaction, the job action of the exit condition
    the task completed with (`rules.exit_options`): disable the job as Disable Job with
    requeue does, or terminate it with the reason ``TaskFailed`` (REST BatchJobActionKind)."""
    if job.spec.on_task_failure is not OnTaskFailure.PERFORM_EXIT_OPTIONS_JOB_ACTION:
        return
    from jobprep_release.backends.docker.core import jobs

    action = rules.exit_options(task).job_action
    if action is JobAction.TERMINATE:
        core.spawn(jobs.terminate, core, job, "TaskFailed")
    elif action is JobAction.DISABLE:
        core.spawn(jobs.disable, core, job, DisableJobOption.REQUEUE)


def after_task_change(core: Core, job: JobRecord) -> None:
    """onAllTasksComplete: terminatejob ends the job once every task has completed; a job
    without tasks has all its tasks complete (REST OnAllTasksComplete), so it ends too. A job
    disabled with ``wait`` is ``disabled`` once its last running task has ended."""
    if job.state is JobState.DISABLING and not running_tasks(job):
        move(job, JobState.DISABLED, core.now())
        core.changed()
    if all_tasks_complete(job):
        from jobprep_release.backends.docker.core import jobs

        core.spawn(jobs.terminate, core, job, "AllTasksComplete")


def running_tasks(job: JobRecord) -> list[TaskRecord]:
    """The job's tasks holding a node now (running, or preparing there)."""
    busy = (TaskState.RUNNING, TaskState.PREPARING)
    return [task for task in job.tasks.values() if task.state in busy]


def all_tasks_complete(job: JobRecord) -> bool:
    """Whether an active job with onAllTasksComplete terminatejob is due to end."""
    return (
        job.state is JobState.ACTIVE
        and job.spec.on_all_tasks_complete is OnAllTasksComplete.TERMINATE_JOB
        and all(t.state is TaskState.COMPLETED for t in job.tasks.values())
    )


def _on_prep_exit(core: Core, job: JobRecord, node_id: str) -> None:
    from jobprep_release.backends.docker.core import processes

    record = job.nodes[node_id]
    prep, spec = record.prep, job.spec.preparation
    assert prep is not None and spec is not None
    waiting = [
        t for t in job.tasks.values() if t.state is TaskState.PREPARING and t.node_id == node_id
    ]
    if prep.result is ExecutionResult.SUCCESS:
        if waiting and job.state is JobState.ACTIVE:
            pending = [
                processes.prepare_task(core, job, task, node_id)
                for task in sorted(waiting, key=lambda t: t.seq)
            ]
            core.spawn(processes.start_all, core, pending)
        return
    limit = spec.constraints.max_task_retry_count
    found = core.node_by_id(node_id)
    if (
        prep.exit_code is not None
        and found is not None
        and rules.retries_left(limit, job, prep.retry_count)
    ):
        prep.retry_count += 1
        prep.retrying = True
        prep.completed = False
        retry = processes.prepare_prep(core, job, node_id, found[1].boot)
        core.spawn(processes.start_all, core, [retry])
        return
    if spec.wait_for_success:
        log.warning(
            "job preparation task failed; the node takes no more of this job's tasks",
            job=job.spec.id,
            node=node_id,
            exit_code=prep.exit_code,
        )
        record.prep_blocked = True
        for task in waiting:
            move(task, TaskState.ACTIVE, core.now())
            task.node_id = None


def on_lost(core: Core, key: str, flight: InFlight) -> None:
    """A process vanished with its node (reboot, restart, loss, removal): requeue as the
    service does. A task goes back to the queue; a preparation task runs again before the
    job's next task there; a release task runs again when its node is back, and the job
    completes only after it (the scheduler starts it: `pending_releases`). A node that left
    the pool runs nothing more: its release task is forgotten, so the job can complete."""
    core.in_flight.pop(key, None)
    if flight.kind is Kind.START:
        from jobprep_release.backends.docker.core import starttask

        starttask.on_lost(core, flight)
        return
    job = core.state.jobs.get(flight.job_id.lower())
    if job is None:
        return
    now = core.now()
    if flight.kind is Kind.RELEASE:
        record = job.nodes[flight.node_id]
        release = record.release
        assert release is not None
        found = core.node_by_id(flight.node_id)
        if found is None or found[1].state is NodeState.LEAVING_POOL:
            record.release = None
        else:
            release.key = None
            release.start_time = None
        maybe_complete(core, job)
    elif flight.kind is Kind.INSTANCE:
        from jobprep_release.backends.docker.core import multiinstance

        multiinstance.on_lost(core, job, flight)
    else:
        if flight.kind is Kind.TASK:
            requeue(core, job.tasks[flight.task_id], now)
        else:
            job.nodes[flight.node_id].prep = None
        for other in job.tasks.values():
            if other.state is TaskState.PREPARING and other.node_id == flight.node_id:
                move(other, TaskState.ACTIVE, now)
                other.node_id = None
    core.poke()


def requeue(core: Core, task: TaskRecord, now: float) -> None:
    """Put a task whose process is gone back in the queue, counting the requeue (REST
    TaskExecutionInfo requeueCount: a node removed or rebooted, a job disabled with requeue);
    a multi-instance task's subtasks are dropped with it."""
    if task.instances:
        from jobprep_release.backends.docker.core import multiinstance

        multiinstance.dropped(core, task)
    move(task, TaskState.ACTIVE, now)
    task.node_id = None
    task.run.requeue_count += 1
    task.run.last_requeue_time = now
    task.run.key = None
    touch(task, now)
    core.refresh_busy()


def lose_node_work(core: Core, node_id: str) -> None:
    """Everything in flight on the node is gone."""
    for key, flight in list(core.in_flight.items()):
        if flight.node_id == node_id:
            on_lost(core, key, flight)
    from jobprep_release.backends.docker.core import multiinstance

    multiinstance.node_lost(core, node_id)


def maybe_complete(core: Core, job: JobRecord) -> None:
    """A terminating job completes once none of its release tasks runs any more (a deleting
    one carries on with its deletion then)."""
    if job.state not in (JobState.TERMINATING, JobState.DELETING):
        return
    if any(r.release is not None and not r.release.completed for r in job.nodes.values()):
        return
    if job.state is JobState.DELETING:
        core.job_completed.set()
        core.job_completed = anyio.Event()
        return
    now = core.now()
    move(job, JobState.COMPLETED, now)
    job.end_time = now
    log.info("job completed", job=job.spec.id, reason=job.terminate_reason)
    core.job_completed.set()
    core.job_completed = anyio.Event()
    core.changed()
