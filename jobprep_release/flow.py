"""The JobPrepRelease sample flow, written once against the backend interface.

Steps and lines follow ../shared/reference/sample-flow.md: pool, job with preparation and release
tasks, tasks that append their id to a file on the node that ran them, each node's file, job
termination (release tasks run), the prep/release exit codes per node, the delete prompts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import structlog

from jobprep_release.backends.base import (
    BatchBackend,
    ComputeNode,
    Job,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    NodeState,
    PoolSpec,
    PoolState,
    PrepReleaseStatus,
    ResourceFile,
    Task,
    TaskConstraints,
    TaskCounts,
    TaskSpec,
)
from jobprep_release.backends.errors import AlreadyExists, Conflict, NotFound, WaitTimeout
from jobprep_release.console import SHARED_FILE, Console
from jobprep_release.options import SampleOptions
from jobprep_release.progress import ProgressView

if TYPE_CHECKING:
    from jobprep_release.storage_use import Prepared

log = structlog.get_logger("jobprep_release.flow")

PREP_COMMAND = (
    '/bin/bash -c \'echo "$AZ_BATCH_NODE_ID tasks:" > '
    '"$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"\''
)
TASK_SCRIPT = 'echo "  $AZ_BATCH_TASK_ID" >> "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"'
TASK_COMMAND = f"/bin/bash -c '{TASK_SCRIPT}'"
RELEASE_COMMAND = "/bin/bash -c 'rm \"$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt\"'"

SETTLING_NODE_STATES = frozenset(
    {
        NodeState.CREATING,
        NodeState.STARTING,
        NodeState.WAITING_FOR_START_TASK,
        NodeState.REBOOTING,
        NodeState.REIMAGING,
    }
)
UNUSABLE_NODE_STATES = frozenset(
    {
        NodeState.UNUSABLE,
        NodeState.START_TASK_FAILED,
        NodeState.OFFLINE,
        NodeState.LEAVING_POOL,
        NodeState.PREEMPTED,
    }
)

ADD_PART = 1_000
"""Tasks made and added in one call: a multiple of the 100 a Batch Add Task Collection takes, so
the azure backend's requests are as many as for one call."""

NODE_CHECK_EVERY = 20
"""Poll intervals (`BatchBackend.poll_interval`) between checks that the pool still has a node
that can run tasks: a time, not a count of polls, since a wait may end early at a change
(`wait_for_change`) and polls then come many times an interval."""


@dataclass(slots=True)
class SampleOutcome:
    """What the run saw: the exit status is decided from it, `--json` reports it."""

    nodes: list[ComputeNode] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    """Listed when reported or when some failed (the counts tell which)."""
    node_files: dict[str, str | None] = field(default_factory=dict)
    prep_release: list[PrepReleaseStatus] = field(default_factory=list)
    job: Job | None = None
    job_deleted: bool = False
    pool_deleted: bool = False
    staged: list[str] = field(default_factory=list)
    """(a) The blobs the job preparation task staged on each node."""
    uploaded: list[tuple[str, int]] = field(default_factory=list)
    """(b) The job logs the release tasks uploaded: (blob name, size in bytes)."""

    @property
    def failed_tasks(self) -> list[str]:
        return [task.id for task in self.tasks if task.execution_info.exit_code != 0]

    @property
    def failed_prep_release(self) -> list[str]:
        return [s.node_id for s in self.prep_release if _exit_codes(s) != (0, 0)]

    @property
    def succeeded(self) -> bool:
        return not self.failed_tasks and not self.failed_prep_release


def task_ids(count: int) -> list[str]:
    """`task001` ... as the sample names them (three digits, more when needed)."""
    width = max(3, len(str(count)))
    return [f"task{number:0{width}d}" for number in range(1, count + 1)]


def pool_spec(options: SampleOptions) -> PoolSpec:
    return PoolSpec(
        id=options.pool_id,
        vm_size=options.vm_size,
        target_dedicated_nodes=options.node_count,
        task_slots_per_node=options.task_slots_per_node,
        node_fill_type=options.node_fill_type,
        image=options.image,
        node_agent_sku_id=options.node_agent_sku_id,
    )


def job_spec(options: SampleOptions, storage: Prepared | None = None) -> JobSpec:
    """The sample's job; with `storage`, (a) the preparation task stages the staging
    container's blobs and (b) the release task uploads the node's job log before deleting it."""
    staging: list[ResourceFile] = []
    release = JobReleaseTaskSpec(command_line=RELEASE_COMMAND)
    if storage is not None:
        from jobprep_release import storage_use  # only a run using storage needs it

        if storage.stage_url:
            staging = [
                ResourceFile(
                    storage_container_url=storage.stage_url, file_path=storage_use.STAGED_DIR
                )
            ]
        if storage.logs_url:
            script = storage_use.upload_script(SHARED_FILE.removeprefix("shared/"))
            release = JobReleaseTaskSpec(
                command_line=f"/bin/bash -c '{script}'",
                environment={"LOGS_BASE": storage.logs_url},
            )
    return JobSpec(
        id=options.job_id,
        pool_id=options.pool_id,
        preparation=JobPreparationTaskSpec(
            command_line=PREP_COMMAND,
            wait_for_success=options.wait_for_success,
            resource_files=staging,
        ),
        release=release,
    )


def task_specs(options: SampleOptions, ids: Iterable[str] | None = None) -> list[TaskSpec]:
    """The sample's tasks (those of `ids`, else all of them)."""
    constraints = TaskConstraints(
        max_wall_clock_time=options.task_wall_clock,
        max_task_retry_count=options.task_retries,
    )
    command_line = options.task_command or TASK_COMMAND
    if options.stage_container and not options.task_command:
        # (a) Each task reads the common data the preparation task staged; none fails it.
        from jobprep_release import storage_use

        command_line = f"/bin/bash -c '{storage_use.staged_check()} && {TASK_SCRIPT}'"
    return [
        TaskSpec(id=task_id, command_line=command_line, constraints=constraints)
        for task_id in (task_ids(options.task_count) if ids is None else ids)
    ]


async def run_sample(
    backend: BatchBackend,
    console: Console,
    options: SampleOptions,
    storage: Prepared | None = None,
) -> SampleOutcome:
    """Run every step of the sample (with `storage`, the article's other two uses: staged
    data, uploaded job logs); raise the project's errors on failure."""
    outcome = SampleOutcome()
    await _ensure_pool(backend, console, options)
    existing = await _ensure_job(backend, console, options, storage)
    job_state = existing.state if existing else JobState.ACTIVE
    if storage is not None and storage.use.stage_container:
        outcome.staged = storage.staged
        console.staging(storage.use.stage_container, storage.staged)

    if job_state is JobState.ACTIVE:
        console.submitting_tasks()
        await _add_tasks(backend, options, reused=existing is not None)
        counts = await _wait_for_tasks(backend, console, options)
        console.tasks_completed()
        # Listing every task costs requests on a real account: only when they are reported
        # or some failed (the counts already say whether all succeeded).
        if options.report or counts.failed:
            outcome.tasks = await backend.list_tasks(options.job_id)
        outcome.nodes, outcome.node_files = await _print_node_files(backend, console, options)
        await backend.terminate_job(options.job_id)
    else:
        log.warning(
            "the job was already ended by an earlier run; carrying on from its termination",
            job=options.job_id,
            state=job_state.value,
        )
    console.waiting_for_job(options.job_id)
    outcome.job = await _wait_for_job_completed(backend, console, options)
    if job_state is not JobState.ACTIVE:
        outcome.tasks = await backend.list_tasks(options.job_id)
        outcome.nodes = await backend.list_nodes(options.pool_id)

    outcome.prep_release = await backend.list_prep_release_status(options.job_id)
    for status in outcome.prep_release:
        console.exit_codes(status.node_id, *_exit_codes(status))
    if storage is not None and storage.use.logs_container:
        from jobprep_release import storage_use

        outcome.uploaded = await storage_use.uploaded_logs(storage.use, options.job_id)
        console.uploaded_logs(storage.use.logs_container, outcome.uploaded)

    console.line()
    # As the sample does, the deletions are asked for, not waited on: the service carries
    # them through (and Batch lets a pool be deleted while its job's deletion is under way).
    if await console.confirm("Delete job?"):
        await backend.delete_job(options.job_id, wait=False)
        outcome.job_deleted = True
    if await console.confirm("Delete pool?"):
        await backend.delete_pool(options.pool_id, wait=False)
        outcome.pool_deleted = True
    console.line()
    await console.wait_for_enter()
    return outcome


async def _ensure_pool(backend: BatchBackend, console: Console, options: SampleOptions) -> None:
    console.creating_pool(options.pool_id)
    try:
        await backend.create_pool(pool_spec(options))
    except AlreadyExists as exc:
        if exc.code not in (None, "PoolExists"):
            raise
        console.pool_existed()
        pool = await backend.get_pool(options.pool_id)
        if (
            pool.target_dedicated_nodes != options.node_count
            and pool.allocation_state.value != "resizing"
        ):
            log.info("resizing the existing pool", pool=pool.id, nodes=options.node_count)
            await backend.resize_pool(options.pool_id, options.node_count)
        return
    console.pool_created(options.pool_id, options.node_count, 0, options.vm_size)


async def _ensure_job(
    backend: BatchBackend, console: Console, options: SampleOptions, storage: Prepared | None
) -> Job | None:
    """The existing job, as the sample reuses it; else None once it has been created."""
    console.checking_job(options.job_id)
    job = await backend.find_job(options.job_id)
    if job is not None:
        return job
    console.creating_job(options.job_id)
    await backend.create_job(job_spec(options, storage))
    return None


async def _add_tasks(backend: BatchBackend, options: SampleOptions, *, reused: bool) -> None:
    """Add the sample's tasks; on a reused job (an earlier run stopped midway), only those it
    does not have yet, so the run carries on where the other left off."""
    wanted = list(task_ids(options.task_count))
    if reused:
        existing = {task.id.lower() for task in await backend.list_tasks(options.job_id)}
        missing = [task_id for task_id in wanted if task_id.lower() not in existing]
        if len(missing) < len(wanted):
            log.info(
                "reusing tasks from an earlier run",
                job=options.job_id,
                count=len(wanted) - len(missing),
            )
        wanted = missing
    # Specs made a part at a time: 10,000 at once would hold the event loop ~20 ms.
    for first in range(0, len(wanted), ADD_PART):
        part = task_specs(options, wanted[first : first + ADD_PART])
        await backend.add_tasks(options.job_id, part)


async def _wait_for_tasks(
    backend: BatchBackend, console: Console, options: SampleOptions
) -> TaskCounts:
    with console.progress("Waiting for tasks") as view:
        return await _poll_tasks(backend, console, options, view)


async def _poll_tasks(
    backend: BatchBackend, console: Console, options: SampleOptions, view: ProgressView
) -> TaskCounts:
    limit = options.task_timeout.total_seconds()
    deadline = time.monotonic() + limit
    node_check = time.monotonic() + NODE_CHECK_EVERY * backend.poll_interval
    while True:
        counts = await backend.get_task_counts(options.job_id)
        try:
            nodes = await backend.list_nodes(options.pool_id) if console.live else None
        except NotFound:
            await _check_nodes_usable(backend, options)  # says the pool was deleted
            raise
        view.update(counts=counts, nodes=nodes)
        if counts.active == 0 and counts.running == 0:
            return counts
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"tasks did not complete within {_minutes(limit)}: {counts.active} active, "
                f"{counts.running} running, {counts.completed} completed"
                + await _why_stuck(backend, options),
                hint="raise --task-timeout, or inspect the job's preparation task",
            )
        if time.monotonic() >= node_check:
            await _check_nodes_usable(backend, options)
            node_check = time.monotonic() + NODE_CHECK_EVERY * backend.poll_interval
        await backend.wait_for_change(
            min(backend.poll_interval, max(deadline - time.monotonic(), 0))
        )


async def _check_nodes_usable(backend: BatchBackend, options: SampleOptions) -> None:
    # Another run's (or client's) Delete Pool makes every node leave: not a node failure.
    try:
        nodes = await backend.list_nodes(options.pool_id)
        unusable = bool(nodes) and all(node.state in UNUSABLE_NODE_STATES for node in nodes)
        deleted = unusable and (await backend.get_pool(options.pool_id)).state is PoolState.DELETING
    except NotFound:
        unusable = deleted = True
    if deleted:
        raise Conflict(
            f"pool {options.pool_id} was deleted (by another run or client) while job "
            f"{options.job_id} waited for its tasks; no task can run",
            code="PoolBeingDeleted",
            hint="run again once it is gone: the pool is made afresh and the job carries on",
        )
    if unusable:
        raise WaitTimeout(
            f"every node of pool {options.pool_id} is unusable; no task can run",
            hint="look at the log above for why the nodes failed, then delete the pool",
        )


async def _why_stuck(backend: BatchBackend, options: SampleOptions) -> str:
    """A clause naming nodes whose preparation task failed, the usual reason tasks stay active."""
    try:
        statuses = await backend.list_prep_release_status(options.job_id)
    except NotFound:
        return ""
    failed = [
        status.node_id
        for status in statuses
        if status.preparation is not None
        and status.preparation.execution_info.result is not None
        and status.preparation.execution_info.exit_code != 0
    ]
    if not failed:
        return ""
    return f"; the job preparation task failed on {', '.join(failed)}"


async def _settled_nodes(
    backend: BatchBackend, console: Console, options: SampleOptions
) -> list[ComputeNode]:
    """The pool's nodes once none is still starting (bounded by the task timeout): a node that
    came up after the tasks were done is shown too, rather than skipped by a race."""
    nodes = await backend.list_nodes(options.pool_id)
    if not any(node.state in SETTLING_NODE_STATES for node in nodes):
        return nodes
    with (
        anyio.move_on_after(options.task_timeout.total_seconds()),
        console.progress("Waiting for nodes to start") as view,
    ):
        while any(node.state in SETTLING_NODE_STATES for node in nodes):
            view.update(nodes=nodes)
            await backend.wait_for_change(backend.poll_interval)
            nodes = await backend.list_nodes(options.pool_id)
    return nodes


async def _print_node_files(
    backend: BatchBackend, console: Console, options: SampleOptions
) -> tuple[list[ComputeNode], dict[str, str | None]]:
    """The pool's nodes, and each idle node's shared file (None where there is none), printed
    as the sample does, node by node; the files are read all at once, not one after the other."""
    files: dict[str, str | None] = {}
    nodes = await _settled_nodes(backend, console, options)
    idle = []
    for node in nodes:
        if node.state is NodeState.IDLE:
            idle.append(node)
        else:
            log.warning("skipping a node that is not idle", node=node.id, state=node.state.value)

    async def read(node_id: str) -> None:
        try:
            data = await backend.read_node_file(options.pool_id, node_id, SHARED_FILE)
        except NotFound:
            files[node_id] = None
        else:
            files[node_id] = data.decode(errors="replace")

    async with anyio.create_task_group() as group:
        for node in idle:
            group.start_soon(read, node.id)
    for node in idle:
        console.node_file(node.id, files[node.id])
    return nodes, {node.id: files[node.id] for node in idle}


async def _wait_for_job_completed(
    backend: BatchBackend, console: Console, options: SampleOptions
) -> Job:
    limit = options.job_timeout.total_seconds()
    deadline = time.monotonic() + limit
    with console.progress("Waiting for the job's release tasks") as view:
        while (job := await backend.get_job(options.job_id)).state is not JobState.COMPLETED:
            view.update(job_state=job.state)
            if time.monotonic() >= deadline:
                console.end_ticks()
                raise WaitTimeout(
                    f"job {options.job_id} did not reach state Completed within {_minutes(limit)}",
                    hint="its release tasks may still be running; raise --job-timeout",
                )
            console.tick()
            await backend.wait_for_change(backend.poll_interval)
    console.end_ticks()
    return job


def _exit_codes(status: PrepReleaseStatus) -> tuple[int | None, int | None]:
    prep = status.preparation.execution_info.exit_code if status.preparation else None
    release = status.release.execution_info.exit_code if status.release else None
    return prep, release


def _minutes(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
