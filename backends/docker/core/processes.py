"""Starting and stopping what runs on nodes: tasks, preparation and release tasks (a pool's
start task: `starttask`, through `launch`).

A start has two halves. `prepare` (no waiting) gives the run a fresh key and records it as in
flight; `dispatch` then places resource files and asks the executor to start it. Between the
two (`start_all`), the records the starts changed go to the store's journal, so a core that
crashes after a process started always finds its key on load (`replay`) and asks the node about
it, never running it a second time; appending a few records costs far less than saving the
whole state before every start.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from jobprep_release.backends.base import (
    RELEASE_MAX_WALL_CLOCK,
    ElevationLevel,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    ResourceFile,
    TaskContainerExecutionInfo,
    TaskContainerSettings,
    TaskSpec,
    TaskState,
    UserIdentity,
)
from jobprep_release.backends.docker.core import environment, outcomes, resources, tokens, views
from jobprep_release.backends.docker.core.codec import decode, encode
from jobprep_release.backends.docker.core.executor import ContainerRun, ProcessSpec
from jobprep_release.backends.docker.core.kernel import Core, InFlight, Kind
from jobprep_release.backends.docker.core.records import (
    Execution,
    JobNodeRecord,
    JobRecord,
    TaskRecord,
    move,
    touch,
)
from jobprep_release.backends.errors import BackendError
from jobprep_release.backends.models.value import Value

log = structlog.get_logger("jobprep_release.docker")


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Launch(Value):
    """What to start: the fields a task, a preparation and a release task share."""

    task_id: str
    command_line: str
    identity: UserIdentity
    environment: dict[str, str]
    wall_clock: timedelta | None
    resource_files: Sequence[ResourceFile]
    container: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Pending(Value):
    """A start prepared and recorded, not yet dispatched."""

    key: str
    flight: InFlight
    job: JobRecord
    what: Launch


def prepare(core: Core, flight: InFlight, job: JobRecord, what: Launch, run: Execution) -> Pending:
    """Record a new run of `what` under a fresh key (no waiting)."""
    key = fresh_key(core, flight, run)
    job.nodes.setdefault(flight.node_id, JobNodeRecord()).has_files = True
    return Pending(key, flight, job, what)


def fresh_key(core: Core, flight: InFlight, run: Execution) -> str:
    """Give `run` a new key, in flight from now, its last outcome cleared."""
    key = uuid.uuid4().hex[:16]
    run.key = key
    run.start_time = run.end_time = run.exit_code = None
    run.failure = run.result = None
    run.completed = False
    core.in_flight[key] = flight
    return key


async def start_all(core: Core, pending: Sequence[Pending]) -> None:
    """Journal the records holding the prepared keys, then dispatch each."""
    if not pending:
        return
    tasks: list[list[Any]] = []
    nodes: dict[tuple[str, str], Any] = {}
    for item in pending:
        job_key, node_id = item.job.spec.id.lower(), item.flight.node_id
        if item.flight.kind in (Kind.TASK, Kind.INSTANCE):
            task = item.job.tasks[item.flight.task_id]
            tasks.append([job_key, item.flight.task_id, encode(task)])
        nodes[job_key, node_id] = encode(item.job.nodes[node_id])
    entry = {
        "tasks": tasks,
        "nodes": [[job, node, record] for (job, node), record in nodes.items()],
    }
    await core.journal(entry)
    for item in pending:
        await dispatch(core, item)


async def dispatch(core: Core, item: Pending) -> None:
    """Place the run's resource files and start it on its node."""
    key, flight, job, what = item.key, item.flight, item.job, item.what
    if core.in_flight.get(key) is not flight:
        return  # ended (terminated, node lost) before it could start
    prep = job.spec.preparation
    env = environment.task_environment(
        node_context(core, job.spec.pool_id, flight.node_id),
        job.spec.id,
        what.task_id,
        what.identity,
        job_environment=job.spec.common_environment,
        task_environment=what.environment,
        # "All tasks except start task and job preparation task" (Azure Batch runtime
        # environment variables): the preparation task does not see its own directory.
        job_prep_task_id=prep.id if prep is not None and flight.kind is not Kind.PREP else None,
    )
    directory = environment.task_dir(job.spec.id, what.task_id)
    files_dir = None
    if flight.kind in (Kind.TASK, Kind.INSTANCE):
        task = job.tasks[flight.task_id]
        if tokens.ACCESS_JOB in task.spec.authentication_token_access:
            env["AZ_BATCH_AUTHENTICATION_TOKEN"] = tokens.mint(core, job.spec.id, what.task_id)
        if task.instances:
            from jobprep_release.backends.docker.core import multiinstance

            env.update(multiinstance.variables(core, job, task, flight.instance))
        if flight.kind is Kind.INSTANCE:
            files_dir = directory  # common resource files: the task directory, not wd
    await launch(core, key, flight, what, directory, env, files_dir=files_dir)


def node_context(core: Core, pool_id: str, node_id: str) -> environment.NodeContext:
    return environment.NodeContext(
        account_name=core.settings.account_name,
        account_url=core.account_url,
        pool_id=pool_id,
        node_id=node_id,
    )


async def launch(
    core: Core,
    key: str,
    flight: InFlight,
    what: Launch,
    directory: str,
    env: dict[str, str],
    *,
    files_dir: str | None = None,
) -> None:
    """Place `what`'s resource files in ``directory/wd`` and start it there with `env`; a
    command line that cannot be split or a file that cannot be downloaded ends the run with
    its failure, a node that cannot be reached loses it."""
    try:
        argv = environment.split_command_line(what.command_line)
    except ValueError as exc:
        _fail_before_start(core, key, flight, "CommandLineInvalid", str(exc))
        return
    working_dir = f"{directory}/wd"
    refusal = container_refusal(core, flight, what)
    if refusal is not None:
        _fail_before_start(core, key, flight, *refusal)
        return
    try:
        container = container_run(what.container, working_dir)
    except ValueError as exc:
        _fail_before_start(core, key, flight, "ContainerInvalidSettings", str(exc))
        return
    user = what.identity.user_name
    elevated = user is None and what.identity.elevation_level is ElevationLevel.ADMIN
    try:
        if what.resource_files:
            await resources.place(
                core.executor,
                flight.node_id,
                files_dir or working_dir,
                what.resource_files,
                core.settings.storage,
                elevated=elevated,
            )
        spec = ProcessSpec(
            argv=tuple(argv),
            environment=env,
            task_dir=directory,
            working_dir=working_dir,
            stdout_path=f"{directory}/stdout.txt",
            stderr_path=f"{directory}/stderr.txt",
            elevated=elevated,
            wall_clock=what.wall_clock,
            user=user,
            container=container,
        )
        started = await core.executor.start_process(flight.node_id, key, spec)
    except resources.DownloadFailed as exc:
        _fail_before_start(core, key, flight, exc.code, str(exc))
        return
    except BackendError as exc:
        log.warning("could not start a process", node=flight.node_id, error=exc.one_line())
        started = False
    if not started and core.in_flight.get(key) is flight:
        outcomes.on_lost(core, key, flight)
        return
    core.changed()


def container_refusal(core: Core, flight: InFlight, what: Launch) -> tuple[str, str] | None:
    """Why the service would not run `what` on the node's pool, as (failure code, message):
    container settings on a pool without ``containerConfiguration``, or a task (not a start,
    preparation or release task, for which they are optional) without them on a pool with one
    (the service's "Container-enabled compute node requires task container settings")."""
    found = core.node_by_id(flight.node_id)
    if found is None:
        return None
    configured = found[0].spec.container_configuration is not None
    if what.container is not None and not configured:
        return "ContainerPoolNotSupported", "the pool does not support containers"
    if what.container is None and configured and flight.kind in (Kind.TASK, Kind.INSTANCE):
        return (
            "ContainerTaskSettingsNotFound",
            "container-enabled compute node requires task container settings",
        )
    return None


def container_run(settings: TaskContainerSettings | None, working_dir: str) -> ContainerRun | None:
    """The executor's `ContainerRun` for `settings`; ValueError when its run options cannot
    be split into words."""
    if settings is None:
        return None
    options = shlex.split(settings.container_run_options or "")
    image_default = settings.working_directory.lower() == "containerimagedefault"
    return ContainerRun(
        image=settings.image_name,
        run_options=tuple(options),
        working_dir=None if image_default else working_dir,
    )


def _fail_before_start(core: Core, key: str, flight: InFlight, code: str, message: str) -> None:
    now = core.now()
    outcomes.on_exit(core, key, flight, -1, now, now, "-", failure=views.failure(code, message))


def prepare_task(core: Core, job: JobRecord, task: TaskRecord, node_id: str) -> Pending:
    move(task, TaskState.RUNNING, core.now())
    core.index.placed(task)
    task.files_removed = False
    job.nodes.setdefault(node_id, JobNodeRecord()).ran_tasks = True
    flight = InFlight(Kind.TASK, node_id, job.spec.id, task.spec.id.lower())
    return prepare(core, flight, job, launch_of(job, flight), task.run)


def prepare_prep(core: Core, job: JobRecord, node_id: str, boot: int) -> Pending:
    prep = job.spec.preparation
    record = job.nodes[node_id]
    assert prep is not None and record.prep is not None
    record.prep_boot = boot
    flight = InFlight(Kind.PREP, node_id, job.spec.id)
    return prepare(core, flight, job, launch_of(job, flight), record.prep)


def prepare_release(core: Core, job: JobRecord, node_id: str) -> Pending:
    release = job.spec.release
    record = job.nodes[node_id]
    assert release is not None and record.release is not None
    flight = InFlight(Kind.RELEASE, node_id, job.spec.id)
    return prepare(core, flight, job, launch_of(job, flight), record.release)


def launch_of(job: JobRecord, flight: InFlight) -> Launch:
    """What `flight` starts, from the job's specs (the same again for a launch sent anew)."""
    spec: TaskSpec | JobPreparationTaskSpec | JobReleaseTaskSpec | None
    if flight.kind is Kind.INSTANCE:
        from jobprep_release.backends.docker.core import multiinstance

        return multiinstance.coordination_launch(job.tasks[flight.task_id])
    if flight.kind is Kind.TASK:
        spec = job.tasks[flight.task_id].spec
        wall_clock = spec.constraints.max_wall_clock_time
    elif flight.kind is Kind.PREP:
        spec = job.spec.preparation
        assert spec is not None
        wall_clock = spec.constraints.max_wall_clock_time
    else:
        spec = job.spec.release
        assert spec is not None
        wall_clock = min(spec.max_wall_clock_time, RELEASE_MAX_WALL_CLOCK)
    return Launch(
        spec.id,
        spec.command_line,
        spec.user_identity,
        dict(spec.environment),
        wall_clock,
        spec.resource_files,
        spec.container_settings,
    )


def _flight_and_job(core: Core, key: str) -> tuple[InFlight, JobRecord] | None:
    flight = core.in_flight.get(key)
    if flight is None:
        return None
    job = core.state.jobs.get(flight.job_id.lower())
    return None if job is None else (flight, job)


async def resend(core: Core, key: str) -> None:
    """The node says it never had the launch under `key`: the core recorded it (journal or
    state) and crashed before telling the node. Send the same launch, under the same key, now;
    a launch the core saw start and the node has no trace of is lost instead (requeued). No
    requeue is counted for a launch that never reached its node: the task simply starts, as
    the service's own scheduling delays are invisible to its users. A start task the node
    never got starts afresh at the node's next hello (`starttask.on_lost`)."""
    flight = core.in_flight.get(key)
    if flight is not None and flight.kind is Kind.START:
        outcomes.on_lost(core, key, flight)
        return
    found = _flight_and_job(core, key)
    if found is None:
        return
    flight, job = found
    if outcomes.execution(job, flight).start_time is not None:
        outcomes.on_lost(core, key, flight)
        return
    log.info("sending a launch the node never got", node=flight.node_id, key=key)
    await dispatch(core, Pending(key, flight, job, launch_of(job, flight)))


async def stop(core: Core, key: str | None) -> None:
    """Forget a process and kill its whole process tree on its node."""
    if key is None:
        return
    flight = core.in_flight.pop(key, None)
    if flight is None:
        return
    try:
        await core.executor.kill_process(flight.node_id, key)
    except BackendError as exc:
        log.warning("could not kill a process", node=flight.node_id, error=exc.one_line())


async def remove_tree(core: Core, node_id: str, path: str) -> None:
    """Delete a directory on a node (a task's or a job's files); a node that cannot be
    reached keeps them."""
    try:
        await core.executor.remove_tree(node_id, path)
    except BackendError as exc:
        log.warning("could not remove files", node=node_id, path=path, error=exc.one_line())


def replay(core: Core, entries: list[Any]) -> None:
    """Apply journal entries the loaded state does not include: the records of starts made
    after the state was last written."""
    for entry in entries:
        seq = int(entry["seq"])
        if seq <= core.state.journal_seq:
            continue
        for job_key, task_key, document in entry["tasks"]:
            job = core.state.jobs.get(job_key)
            if job is not None:
                job.tasks[task_key] = decode(TaskRecord, document)
        for job_key, node_id, document in entry["nodes"]:
            job = core.state.jobs.get(job_key)
            if job is not None:
                job.nodes[node_id] = decode(JobNodeRecord, document)
        for node_id, document in entry.get("starts", ()):
            from jobprep_release.backends.docker.core import starttask

            starttask.restore(core, node_id, document)
        core.journal_seq = core.state.journal_seq = seq
    core.journal_seq = max(core.journal_seq, core.state.journal_seq)


def index_in_flight(core: Core) -> None:
    """Rebuild the key index from the state: what was running when the core last stopped."""
    for job in core.state.jobs.values():
        for task_id, task in job.tasks.items():
            if task.state is TaskState.RUNNING and task.run.key and task.node_id:
                flight = InFlight(Kind.TASK, task.node_id, job.spec.id, task_id)
                core.in_flight[task.run.key] = flight
            for index, instance in enumerate(task.instances):
                coordination = instance.run
                if (
                    task.state is TaskState.RUNNING
                    and coordination.key
                    and not coordination.completed
                ):
                    flight = InFlight(Kind.INSTANCE, instance.node_id, job.spec.id, task_id, index)
                    core.in_flight[coordination.key] = flight
        for node_id, record in job.nodes.items():
            for kind, execution in ((Kind.PREP, record.prep), (Kind.RELEASE, record.release)):
                if execution is not None and execution.key and not execution.completed:
                    core.in_flight[execution.key] = InFlight(kind, node_id, job.spec.id)
    for pool in core.state.pools.values():
        for node in pool.nodes:
            run = node.start
            if run is not None and run.key and not run.completed:
                core.in_flight[run.key] = InFlight(Kind.START, node.id)


def _run_of(core: Core, key: str) -> Execution | None:
    """The run the process under `key` is: a start task's on its node, else its job's."""
    flight = core.in_flight.get(key)
    if flight is not None and flight.kind is Kind.START:
        found_node = core.node_by_id(flight.node_id)
        return found_node[1].start if found_node is not None else None
    found = _flight_and_job(core, key)
    return outcomes.execution(found[1], found[0]) if found is not None else None


def record_container(core: Core, key: str, container: TaskContainerExecutionInfo) -> None:
    """The container the process under `key` runs (or ran) in, as the executor saw it."""
    run = _run_of(core, key)
    if run is not None and run.container != container:
        run.container = container
        core.changed()


def started(
    core: Core, key: str, start: float, container: TaskContainerExecutionInfo | None = None
) -> None:
    """The executor says the process under `key` started at `start` (in `container`)."""
    if container is not None:
        record_container(core, key, container)
    flight = core.in_flight.get(key)
    if flight is not None and flight.kind is Kind.START:
        from jobprep_release.backends.docker.core import starttask

        starttask.started(core, flight, start)
        return
    found = _flight_and_job(core, key)
    if found is None:
        return
    flight, job = found
    outcomes.mark_started(outcomes.execution(job, flight), start)
    if flight.kind is Kind.TASK:
        task = job.tasks[flight.task_id]
        # The task is running from the moment its process started.
        task.history.state_time = start
        touch(task, start)
    core.changed()
