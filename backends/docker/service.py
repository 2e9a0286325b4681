"""A small Batch service on a Docker engine: pools of node containers, jobs, tasks, a scheduler.

It answers in the backend-neutral models, so the same service can sit behind the in-process
`DockerBackend` or behind an HTTP endpoint. All its state is in `ServiceState` (persisted by
`_persist`); what runs on nodes is started through each node's agent (`agent`, kept by
`nodes`) and finishes by an ``exited`` event, which may arrive in a
later run of the app.

Scheduling, as the service does it (batch-semantics.md): tasks are placed in the order they were
added, on nodes with free slots, by the pool's fill type; a job's preparation task runs on a node
before the job's first task there; release tasks run on job termination or deletion on the nodes
that ran tasks and whose preparation completed. Where the documents are silent, the choice made
is marked "Inferred" below.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import structlog

from jobprep_release.backends.base import (
    DEFAULT_RETENTION,
    RELEASE_MAX_WALL_CLOCK,
    AllocationState,
    ComputeNode,
    ElevationLevel,
    ExecutionResult,
    FailureInfo,
    Job,
    JobSpec,
    JobState,
    NodeState,
    OnAllTasksComplete,
    Pool,
    PoolSpec,
    PoolState,
    PrepReleaseStatus,
    ResourceFile,
    Task,
    TaskCounts,
    TaskSpec,
    TaskState,
    UserIdentity,
    check_id,
)
from jobprep_release.backends.docker import launch, resources, rules, views
from jobprep_release.backends.docker.agent import (
    AGENT_DIR,
    AgentEvent,
    AgentLink,
    run_command,
    simple_command,
)
from jobprep_release.backends.docker.engine import POOL_LABEL, ROLE_LABEL, Engine
from jobprep_release.backends.docker.nodes import NodeKeeper
from jobprep_release.backends.docker.state import (
    Execution,
    JobNodeRecord,
    JobRecord,
    NodeRecord,
    PoolRecord,
    ServiceState,
    StateStore,
    TaskRecord,
)
from jobprep_release.backends.errors import (
    AlreadyExists,
    Conflict,
    InvalidRequest,
    NotFound,
    NotSupported,
)

log = structlog.get_logger("jobprep_release.docker")

MAX_SLOTS_PER_NODE = 256
SAVE_INTERVAL = 0.2
SWEEP_INTERVAL = 1.0
CHORE_TIMEOUT = 30.0
TASK_USER_ID = 1000


DEFAULT_NODE_IMAGE = "debian:bookworm-slim"


@dataclass(frozen=True, slots=True)
class DockerSettings:
    """How the Docker backend reaches the engine and builds nodes."""

    image: str = DEFAULT_NODE_IMAGE
    state_dir: Path | None = None
    docker_host: str | None = None
    account_name: str = "localbatch"


class _Kind(Enum):
    TASK = "task"
    PREP = "prep"
    RELEASE = "release"
    CHORE = "chore"


@dataclass(slots=True)
class _InFlight:
    """A process the service started and has not yet seen end."""

    kind: _Kind
    node_id: str
    job_id: str = ""
    task_id: str = ""


@dataclass(frozen=True, slots=True)
class _Launch:
    """What to start: the fields a task, a preparation and a release task share."""

    task_id: str
    command_line: str
    identity: UserIdentity
    environment: dict[str, str]
    wall_clock: timedelta | None
    resource_files: Sequence[ResourceFile]


def _now() -> float:
    return time.time()


class BatchService:
    """The service. Call `run` in a task group before anything else; `close` when done."""

    def __init__(self, engine: Engine, store: StateStore, settings: DockerSettings) -> None:
        self._engine = engine
        self._store = store
        self._settings = settings
        self._state = ServiceState()
        self._keepers: dict[str, NodeKeeper] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._chores: dict[str, anyio.Event] = {}
        self._wake = anyio.Event()
        self._dirty = anyio.Event()
        self._persist_lock = anyio.Lock()
        self._job_completed = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._account_url = f"http://localhost/{settings.account_name}"

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Load state, reconnect to every node, then schedule until cancelled."""
        self._state = await anyio.to_thread.run_sync(self._store.load)
        async with anyio.create_task_group() as group:
            self._task_group = group
            await self._drop_vanished_pools()
            self._index_in_flight()
            for pool in self._state.pools.values():
                for node in pool.nodes:
                    # Nothing runs on a node until its agent has answered this run.
                    node.state = NodeState.STARTING
                    self._keep(pool, node)
            group.start_soon(self._saver)
            group.start_soon(self._sweeper)
            task_status.started()
            await self._scheduler()

    async def close(self) -> None:
        for keeper in self._keepers.values():
            if keeper.link is not None:
                keeper.link.close()
        await self._persist()

    async def _persist(self) -> None:
        async with self._persist_lock:
            document = self._store.serialize(self._state)
            await anyio.to_thread.run_sync(self._store.write, document)

    def _changed(self) -> None:
        self._dirty.set()

    async def _saver(self) -> None:
        """Write the state soon after it changes, but never spend more than about a tenth of
        the loop's time on it: encoding a large state takes a while and holds the loop."""
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            started = time.monotonic()
            await self._persist()
            await anyio.sleep(max(SAVE_INTERVAL, 10 * (time.monotonic() - started)))

    def _poke(self) -> None:
        self._wake.set()
        self._changed()

    def _spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        assert self._task_group is not None, "BatchService.run is not running"
        self._task_group.start_soon(func, *args)

    # --- pools -------------------------------------------------------------------------------

    def _pool(self, pool_id: str) -> PoolRecord:
        pool = self._state.pools.get(pool_id.lower())
        if pool is None:
            raise NotFound(f"pool {pool_id} does not exist", code="PoolNotFound")
        return pool

    async def create_pool(self, spec: PoolSpec) -> None:
        check_id("pool", spec.id)
        await self._adopt(spec.id)
        if spec.id.lower() in self._state.pools:
            raise AlreadyExists(f"pool {spec.id} already exists", code="PoolExists")
        rules.check_node_count(spec.target_dedicated_nodes)
        if spec.target_low_priority_nodes:
            raise NotSupported("low-priority nodes are not emulated by the docker backend")
        if not 1 <= spec.task_slots_per_node <= MAX_SLOTS_PER_NODE:
            raise InvalidRequest(
                f"task slots per node must be 1 to {MAX_SLOTS_PER_NODE}",
                code="InvalidPropertyValue",
            )
        image = spec.image or self._settings.image
        await self._engine.ensure_image(image)
        spec = replace(spec, image=image)
        pool = PoolRecord(spec=spec, serial=random.randrange(10**9, 10**10), created=_now())
        self._state.pools[spec.id.lower()] = pool
        self._add_nodes(pool, spec.target_dedicated_nodes)
        await self._persist()
        log.info("pool created", pool=spec.id, nodes=spec.target_dedicated_nodes, image=image)

    def _add_nodes(self, pool: PoolRecord, count: int) -> None:
        started = datetime.fromtimestamp(_now(), UTC).strftime("%Y%m%dt%H%M%Sz")
        first = max((node.index for node in pool.nodes), default=0) + 1
        for index in range(first, first + count):
            name = f"jobprep_release-{pool.spec.id.lower()}-{index}-{pool.serial}"
            node = NodeRecord(
                id=f"tvm-{pool.serial}_{index}-{started}", index=index, container=name, volume=name
            )
            pool.nodes.append(node)
            self._keep(pool, node)

    def _keep(self, pool: PoolRecord, node: NodeRecord) -> None:
        keeper = NodeKeeper(self._engine, pool, node, self)
        self._keepers[node.id] = keeper
        self._spawn(keeper.run, self._on_link(node))

    def _on_link(self, node: NodeRecord) -> Callable[[AgentLink], Awaitable[None]]:
        async def settle(link: AgentLink) -> None:
            """Ask the agent about every process we saw start there and not end."""
            unsettled = [k for k, flight in self._in_flight.items() if flight.node_id == node.id]
            if unsettled:
                await link.send(b"".join(simple_command("query", key) for key in unsettled))

        return settle

    async def list_pools(self) -> list[Pool]:
        return [await self.get_pool(pool.spec.id) for pool in self._state.pools.values()]

    async def get_pool(self, pool_id: str) -> Pool:
        await self._adopt(pool_id)
        pool = self._pool(pool_id)
        live = [node for node in pool.nodes if node.state is not NodeState.LEAVING_POOL]
        starting = any(node.state is NodeState.CREATING for node in live)
        return Pool(
            id=pool.spec.id,
            vm_size=pool.spec.vm_size,
            state=pool.state,
            allocation_state=AllocationState.RESIZING if starting else AllocationState.STEADY,
            target_dedicated_nodes=pool.spec.target_dedicated_nodes,
            current_dedicated_nodes=len(live),
            task_slots_per_node=pool.spec.task_slots_per_node,
            node_fill_type=pool.spec.node_fill_type,
        )

    async def resize_pool(self, pool_id: str, target_dedicated_nodes: int) -> None:
        pool = self._pool(pool_id)
        rules.check_node_count(target_dedicated_nodes)
        current = len(pool.nodes)
        pool.spec = replace(pool.spec, target_dedicated_nodes=target_dedicated_nodes)
        if target_dedicated_nodes > current:
            self._add_nodes(pool, target_dedicated_nodes - current)
        for node in pool.nodes[target_dedicated_nodes:]:
            # Inferred: as with the service's default deallocation option (requeue), running
            # tasks go back to the queue and the node leaves at once.
            await self._remove_node(pool, node)
        await self._persist()

    async def delete_pool(self, pool_id: str) -> None:
        await self._adopt(pool_id)
        pool = self._pool(pool_id)
        pool.state = PoolState.DELETING
        for node in list(pool.nodes):
            await self._remove_node(pool, node)
        await self._remove_labelled(pool.spec.id)
        del self._state.pools[pool.spec.id.lower()]
        await self._persist()
        log.info("pool deleted", pool=pool.spec.id)

    async def _remove_node(self, pool: PoolRecord, node: NodeRecord) -> None:
        node.state = NodeState.LEAVING_POOL
        self._lose_node_work(node.id)
        keeper = self._keepers.pop(node.id, None) or NodeKeeper(self._engine, pool, node, self)
        await keeper.remove()
        pool.nodes.remove(node)
        self._poke()

    async def _remove_labelled(self, pool_id: str) -> None:
        labels = {POOL_LABEL: pool_id}
        for container in await self._engine.list_containers(labels):
            await self._engine.remove_container(container.id)
        for volume in await self._engine.list_volumes(labels):
            await self._engine.remove_volume(volume.name)

    async def _adopt(self, pool_id: str) -> None:
        """Take back a pool this state does not know from its containers' labels: the state
        was lost, or another run (an app in a container, say) made it. Only pools asked for
        by id are adopted, so a run never takes over pools it was not told about."""
        if pool_id.lower() in self._state.pools:
            return
        members = await self._engine.list_containers({POOL_LABEL: pool_id, ROLE_LABEL: "node"})
        if not members:
            return
        try:
            pool = rules.pool_from_labels(members)
        except (KeyError, ValueError, TypeError):
            log.warning("ignoring node containers with unreadable labels", pool=pool_id)
            return
        self._state.pools[pool_id.lower()] = pool
        for node in pool.nodes:
            node.state = NodeState.STARTING
            self._keep(pool, node)
        log.info("adopted pool from its containers", pool=pool_id, nodes=len(pool.nodes))

    async def _drop_vanished_pools(self) -> None:
        """Forget pools whose every container and volume is gone: deleted by another run."""
        for key, pool in list(self._state.pools.items()):
            labels = {POOL_LABEL: pool.spec.id}
            if await self._engine.list_containers(labels):
                continue
            if await self._engine.list_volumes(labels):
                continue
            log.info("forgetting a pool deleted elsewhere", pool=pool.spec.id)
            del self._state.pools[key]

    # --- nodes -------------------------------------------------------------------------------

    def _find_node(self, pool_id: str, node_id: str) -> NodeRecord:
        for node in self._pool(pool_id).nodes:
            if node.id == node_id:
                return node
        raise NotFound(f"node {node_id} is not in pool {pool_id}", code="NodeNotFound")

    def _node_by_id(self, node_id: str) -> NodeRecord | None:
        keeper = self._keepers.get(node_id)
        return keeper.node if keeper is not None else None

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        busy = self._used_slots()
        return [views.node_view(node, busy) for node in self._pool(pool_id).nodes]

    async def get_node(self, pool_id: str, node_id: str) -> ComputeNode:
        return views.node_view(self._find_node(pool_id, node_id), self._used_slots())

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        """Restart the node's container; running tasks are requeued, files stay."""
        node = self._find_node(pool_id, node_id)
        self._lose_node_work(node.id)
        await self._keepers[node.id].reboot()
        self._poke()

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        """Give the node a fresh disk; running tasks are requeued, every job's preparation
        task runs again there before its next task."""
        node = self._find_node(pool_id, node_id)
        self._lose_node_work(node.id)
        for job in self._state.jobs.values():
            job.nodes.pop(node.id, None)
        await self._keepers[node.id].reimage()
        self._poke()

    def on_agent_event(self, node: NodeRecord, event: AgentEvent) -> None:
        if event.verb == "hello":
            self._on_node_hello(node, int(event.key))
            return
        flight = self._in_flight.get(event.key)
        if flight is None:
            return
        if event.verb == "started" and flight.kind is not _Kind.CHORE:
            self._execution(flight).start_time = float(event.words[0])
            self._changed()
        elif event.verb == "exited":
            code, start, end, why = event.words[:4]
            self._on_exit(event.key, flight, int(code), float(start), float(end), why)
        elif event.verb == "unknown":
            # The process is gone without a trace: the node restarted while we were away.
            self._on_lost(event.key, flight)

    def on_node_lost(self, node: NodeRecord) -> None:
        self._lose_node_work(node.id)
        self._poke()

    def _on_node_hello(self, node: NodeRecord, boot: int) -> None:
        if node.boot not in (0, boot):
            log.info("node restarted", node=node.id, boot=boot)
            self._lose_node_work(node.id)
        node.boot = boot
        if node.state is not NodeState.LEAVING_POOL:
            node.state = NodeState.IDLE
        self._poke()

    def _lose_node_work(self, node_id: str) -> None:
        for key, flight in list(self._in_flight.items()):
            if flight.node_id == node_id:
                self._on_lost(key, flight)

    # --- jobs --------------------------------------------------------------------------------

    def _job(self, job_id: str) -> JobRecord:
        job = self._state.jobs.get(job_id.lower())
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="JobNotFound")
        return job

    async def create_job(self, spec: JobSpec) -> None:
        check_id("job", spec.id)
        if spec.id.lower() in self._state.jobs:
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
        for special in (spec.preparation, spec.release):
            if special is not None:
                check_id("task", special.id)
                for file in special.resource_files:
                    resources.check_file_path(file.file_path)
        self._state.jobs[spec.id.lower()] = JobRecord(spec=spec, created=_now())
        await self._persist()

    async def list_jobs(self) -> list[Job]:
        return [views.job_view(job) for job in self._state.jobs.values()]

    async def find_job(self, job_id: str) -> Job | None:
        job = self._state.jobs.get(job_id.lower())
        return None if job is None else views.job_view(job)

    async def get_job(self, job_id: str) -> Job:
        return views.job_view(self._job(job_id))

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        job = self._job(job_id)
        if job.state is not JobState.ACTIVE:
            raise Conflict(
                f"job {job_id} is {job.state}; tasks can only be added to an active job",
                code="JobNotActive",
            )
        rules.check_new_tasks(job, tasks)
        for spec in tasks:
            job.tasks[spec.id.lower()] = TaskRecord(spec=spec, seq=job.next_seq)
            job.next_seq += 1
        await self._persist()
        self._poke()

    def _task(self, job: JobRecord, task_id: str) -> TaskRecord:
        task = job.tasks.get(task_id.lower())
        if task is None:
            raise NotFound(f"task {task_id} does not exist", code="TaskNotFound")
        return task

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        counts = dict.fromkeys(TaskState, 0)
        succeeded = 0
        for task in self._job(job_id).tasks.values():
            counts[task.state] += 1
            if task.state is TaskState.COMPLETED and task.run.result is ExecutionResult.SUCCESS:
                succeeded += 1
        completed = counts[TaskState.COMPLETED]
        return TaskCounts(
            active=counts[TaskState.ACTIVE],
            running=counts[TaskState.RUNNING] + counts[TaskState.PREPARING],
            completed=completed,
            succeeded=succeeded,
            failed=completed - succeeded,
        )

    async def list_tasks(self, job_id: str) -> list[Task]:
        return [views.task_view(task) for task in self._job(job_id).tasks.values()]

    async def get_task(self, job_id: str, task_id: str) -> Task:
        return views.task_view(self._task(self._job(job_id), task_id))

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        """End a task: an active one completes without running, a running one is killed."""
        job = self._job(job_id)
        task = self._task(job, task_id)
        if task.state is not TaskState.COMPLETED:
            await self._end_task(task, "the task was ended by Terminate Task")
            self._after_task_change(job)
            self._poke()

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        job = self._job(job_id)
        if job.state in (JobState.COMPLETED, JobState.TERMINATING):
            raise Conflict(f"job {job_id} is already {job.state}", code="JobCompleted")
        await self._terminate(job, reason or "UserTerminate")
        await self._persist()

    async def _terminate(self, job: JobRecord, reason: str) -> None:
        """Terminate Job: running tasks are ended, active ones stay active and never run,
        release tasks run where they are due, and the job completes when they are done."""
        job.state = JobState.TERMINATING
        job.terminate_reason = reason
        for task in job.tasks.values():
            if task.state in (TaskState.RUNNING, TaskState.PREPARING):
                await self._end_task(task, "the task was ended by Terminate Job")
        for node_id, record in job.nodes.items():
            prep = record.prep
            if prep is not None and not prep.completed:
                await self._stop(prep.key)
                views.complete(
                    prep, None, views.failure("TaskEnded", "ended by Terminate Job"), _now()
                )
            if job.spec.release is not None and rules.release_due(record):
                record.release = Execution()
                await self._launch_release(job, node_id, record)
        self._maybe_complete(job)
        self._poke()

    async def _end_task(self, task: TaskRecord, message: str) -> None:
        await self._stop(task.run.key)
        task.state = TaskState.COMPLETED
        # Inferred from the REST spec's TaskExecutionInfo: a task ended by the service has no
        # exit code of its own, and a failure saying why.
        views.complete(task.run, None, views.failure("TaskEnded", message), _now())

    def _maybe_complete(self, job: JobRecord) -> None:
        if job.state is not JobState.TERMINATING:
            return
        if any(r.release is not None and not r.release.completed for r in job.nodes.values()):
            return
        job.state = JobState.COMPLETED
        log.info("job completed", job=job.spec.id, reason=job.terminate_reason)
        self._job_completed.set()
        self._job_completed = anyio.Event()
        self._changed()

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        job = self._job(job_id)
        if job.spec.preparation is None:
            raise Conflict(
                f"job {job_id} has no job preparation task",
                code="JobPreparationTaskNotSpecified",
            )
        pool = self._state.pools.get(job.spec.pool_id.lower())
        order = {node.id: node.index for node in pool.nodes} if pool else {}
        entries = [
            (node_id, record)
            for node_id, record in job.nodes.items()
            if record.prep is not None or record.release is not None
        ]
        entries.sort(key=lambda item: order.get(item[0], len(order) + 1))
        return [
            PrepReleaseStatus(
                pool_id=job.spec.pool_id,
                node_id=node_id,
                preparation=views.prep_release_view(record.prep),
                release=views.prep_release_view(record.release),
            )
            for node_id, record in entries
        ]

    async def delete_job(self, job_id: str) -> None:
        job = self._job(job_id)
        if job.state is JobState.ACTIVE:
            await self._terminate(job, "UserTerminate")
        with anyio.fail_after(RELEASE_MAX_WALL_CLOCK.total_seconds() + 60):
            while job.state is JobState.TERMINATING:
                await self._job_completed.wait()
        job.state = JobState.DELETING
        await self._persist()
        for node_id, record in job.nodes.items():
            if record.has_files:
                await self._run_chore(node_id, launch.remove_tree_script(launch.job_dir(job_id)))
        self._state.jobs.pop(job_id.lower(), None)
        await self._persist()

    # --- specs: what was asked, for an endpoint that shows it ---------------------------------

    def pool_spec(self, pool_id: str) -> PoolSpec:
        """The pool's spec (as created, with its current target); `NotFound` when absent."""
        return self._pool(pool_id).spec

    def job_spec(self, job_id: str) -> JobSpec:
        """The job's spec as created; `NotFound` (``JobNotFound``) when absent."""
        return self._job(job_id).spec

    def task_spec(self, job_id: str, task_id: str) -> TaskSpec:
        """The task's spec as added; `NotFound` (``JobNotFound``/``TaskNotFound``) when absent."""
        return self._task(self._job(job_id), task_id).spec

    # --- files -------------------------------------------------------------------------------

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        node = self._find_node(pool_id, node_id)
        relative = rules.confined(path)
        return await self._engine.read_confined_file(node.container, launch.NODE_ROOT, relative)

    def node_container(self, pool_id: str, node_id: str) -> str:
        """The name of the container that is this node (for file listings and properties)."""
        return self._find_node(pool_id, node_id).container

    def task_location(self, job_id: str, task_id: str) -> tuple[str, str, str]:
        """Where a task's files are: (pool id, node id, task dir relative to the node root).

        `NotFound` (``FileNotFound``) when the task never ran or its files were removed.
        """
        job = self._job(job_id)
        task = self._task(job, task_id)
        if task.node_id is None or task.files_removed:
            raise NotFound(f"task {task_id} has no files", code="FileNotFound")
        directory = launch.relative_to_root(launch.task_dir(job.spec.id, task.spec.id))
        return job.spec.pool_id, task.node_id, directory

    # --- the scheduler -----------------------------------------------------------------------

    async def _scheduler(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._schedule_pass()

    def _used_slots(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for job in self._state.jobs.values():
            for task in job.tasks.values():
                if task.node_id and task.state in (TaskState.PREPARING, TaskState.RUNNING):
                    used[task.node_id] = used.get(task.node_id, 0) + task.spec.required_slots
        return used

    async def _schedule_pass(self) -> None:
        used = self._used_slots()
        for job in sorted(self._state.jobs.values(), key=lambda j: j.created):
            pool = self._state.pools.get(job.spec.pool_id.lower())
            if job.state is not JobState.ACTIVE or pool is None:
                continue
            if pool.state is not PoolState.ACTIVE:
                continue
            # job.tasks is in the order tasks were added; stop once no node has room left.
            for task in list(job.tasks.values()):
                if not rules.has_room(pool, used):
                    break
                if task.state is not TaskState.ACTIVE:
                    continue
                node = rules.pick_node(pool, job, task, used)
                if node is not None:
                    used[node.id] = used.get(node.id, 0) + task.spec.required_slots
                    await self._assign(job, task, node)

    async def _assign(self, job: JobRecord, task: TaskRecord, node: NodeRecord) -> None:
        record = job.nodes.setdefault(node.id, JobNodeRecord())
        task.node_id = node.id
        prep = job.spec.preparation
        if prep is not None and rules.prep_needed(
            record, node, prep.rerun_on_node_reboot_after_success
        ):
            if record.prep is None or record.prep.completed:
                requeues = record.prep.requeue_count if record.prep else 0
                record.prep = Execution(requeue_count=requeues)
                await self._launch_prep(job, node, record)
            if prep.wait_for_success:
                task.state = TaskState.PREPARING
                return
        await self._launch_task(job, task, node)

    # --- launching ---------------------------------------------------------------------------

    async def _start_process(
        self, flight: _InFlight, job: JobRecord, what: _Launch, execution: Execution
    ) -> None:
        """Start a task, preparation or release process on its node through the agent."""
        key = uuid.uuid4().hex[:16]
        execution.key = key
        execution.start_time = execution.end_time = execution.exit_code = None
        execution.failure = execution.result = None
        execution.completed = False
        self._in_flight[key] = flight
        job.nodes.setdefault(flight.node_id, JobNodeRecord()).has_files = True
        try:
            argv = launch.split_command_line(what.command_line)
        except ValueError as exc:
            self._fail_before_start(key, flight, "CommandLineInvalid", str(exc))
            return
        directory = launch.task_dir(job.spec.id, what.task_id)
        if what.resource_files and not await self._place_resource_files(
            key, flight, directory, what
        ):
            return
        prep = job.spec.preparation
        env = launch.task_environment(
            launch.NodeContext(
                account_name=self._settings.account_name,
                account_url=self._account_url,
                pool_id=job.spec.pool_id,
                node_id=flight.node_id,
            ),
            job.spec.id,
            what.task_id,
            what.identity,
            job_environment=job.spec.common_environment,
            task_environment=what.environment,
            job_prep_task_id=prep.id if prep is not None else None,
        )
        script = launch.launch_script(
            directory=directory,
            argv=argv,
            env=env,
            identity=what.identity,
            wall_clock=what.wall_clock,
            agent_mark=f"{AGENT_DIR}/{key}.why",
        )
        keeper = self._keepers.get(flight.node_id)
        if keeper is None or not await keeper.send(run_command(key, script)):
            self._on_lost(key, flight)
            return
        self._changed()

    async def _place_resource_files(
        self, key: str, flight: _InFlight, directory: str, what: _Launch
    ) -> bool:
        node = self._node_by_id(flight.node_id)
        if node is None:
            self._on_lost(key, flight)
            return False
        try:
            fetched = await resources.fetch(what.resource_files)
            admin = what.identity.elevation_level is ElevationLevel.ADMIN
            owner = 0 if admin else TASK_USER_ID
            data = resources.archive(f"{directory}/wd", fetched, owner)
            await self._engine.put_archive(node.container, data)
        except resources.DownloadFailed as exc:
            # Inferred code: the service reports resource file failures as a user error.
            self._fail_before_start(key, flight, "ResourceFileDownloadFailed", str(exc))
            return False
        return True

    def _fail_before_start(self, key: str, flight: _InFlight, code: str, message: str) -> None:
        now = _now()
        self._on_exit(key, flight, -1, now, now, "-", failure=views.failure(code, message))

    async def _launch_task(self, job: JobRecord, task: TaskRecord, node: NodeRecord) -> None:
        task.state = TaskState.RUNNING
        task.files_removed = False
        job.nodes.setdefault(node.id, JobNodeRecord()).ran_tasks = True
        spec = task.spec
        what = _Launch(
            spec.id,
            spec.command_line,
            spec.user_identity,
            dict(spec.environment),
            spec.constraints.max_wall_clock_time,
            spec.resource_files,
        )
        flight = _InFlight(_Kind.TASK, node.id, job.spec.id, spec.id.lower())
        await self._start_process(flight, job, what, task.run)

    async def _launch_prep(self, job: JobRecord, node: NodeRecord, record: JobNodeRecord) -> None:
        prep = job.spec.preparation
        assert prep is not None and record.prep is not None
        record.prep_boot = node.boot
        what = _Launch(
            prep.id,
            prep.command_line,
            prep.user_identity,
            dict(prep.environment),
            prep.constraints.max_wall_clock_time,
            prep.resource_files,
        )
        await self._start_process(
            _InFlight(_Kind.PREP, node.id, job.spec.id), job, what, record.prep
        )

    async def _launch_release(self, job: JobRecord, node_id: str, record: JobNodeRecord) -> None:
        release = job.spec.release
        assert release is not None and record.release is not None
        what = _Launch(
            release.id,
            release.command_line,
            release.user_identity,
            dict(release.environment),
            min(release.max_wall_clock_time, RELEASE_MAX_WALL_CLOCK),
            release.resource_files,
        )
        flight = _InFlight(_Kind.RELEASE, node_id, job.spec.id)
        await self._start_process(flight, job, what, record.release)

    async def _run_chore(self, node_id: str, script: str) -> None:
        """Run a service-side script as root on a node and wait (bounded) for it to end."""
        keeper = self._keepers.get(node_id)
        if keeper is None:
            return
        key = uuid.uuid4().hex[:16]
        done = anyio.Event()
        self._chores[key] = done
        self._in_flight[key] = _InFlight(_Kind.CHORE, node_id)
        if await keeper.send(run_command(key, script)):
            with anyio.move_on_after(CHORE_TIMEOUT):
                await done.wait()
        self._chores.pop(key, None)
        self._in_flight.pop(key, None)

    async def _stop(self, key: str | None) -> None:
        """Forget a process and kill its whole process group on its node."""
        if key is None:
            return
        flight = self._in_flight.pop(key, None)
        keeper = self._keepers.get(flight.node_id) if flight else None
        if keeper is not None:
            await keeper.send(simple_command("kill", key))

    async def _sweeper(self) -> None:
        """Remove task directories whose retention time has passed."""
        while True:
            await anyio.sleep(SWEEP_INTERVAL)
            now = _now()
            for job in list(self._state.jobs.values()):
                for task in list(job.tasks.values()):
                    if task.state is not TaskState.COMPLETED or task.files_removed:
                        continue
                    retention = task.spec.constraints.retention_time or DEFAULT_RETENTION
                    ended = task.run.end_time
                    if task.node_id and ended and ended + retention.total_seconds() <= now:
                        task.files_removed = True
                        directory = launch.task_dir(job.spec.id, task.spec.id)
                        await self._run_chore(task.node_id, launch.remove_tree_script(directory))
                        self._changed()

    # --- outcomes ----------------------------------------------------------------------------

    def _execution(self, flight: _InFlight) -> Execution:
        job = self._state.jobs[flight.job_id.lower()]
        if flight.kind is _Kind.TASK:
            return job.tasks[flight.task_id].run
        record = job.nodes[flight.node_id]
        execution = record.prep if flight.kind is _Kind.PREP else record.release
        assert execution is not None
        return execution

    def _index_in_flight(self) -> None:
        """Rebuild the key index from the state: what was running when the app last stopped."""
        for job in self._state.jobs.values():
            for task_id, task in job.tasks.items():
                if task.state is TaskState.RUNNING and task.run.key and task.node_id:
                    flight = _InFlight(_Kind.TASK, task.node_id, job.spec.id, task_id)
                    self._in_flight[task.run.key] = flight
            for node_id, record in job.nodes.items():
                for kind, execution in ((_Kind.PREP, record.prep), (_Kind.RELEASE, record.release)):
                    if execution is not None and execution.key and not execution.completed:
                        self._in_flight[execution.key] = _InFlight(kind, node_id, job.spec.id)

    def _on_exit(
        self,
        key: str,
        flight: _InFlight,
        code: int,
        start: float,
        end: float,
        why: str,
        *,
        failure: FailureInfo | None = None,
    ) -> None:
        if self._in_flight.pop(key, None) is None:
            return
        if flight.kind is _Kind.CHORE:
            if (event := self._chores.get(key)) is not None:
                event.set()
            return
        job = self._state.jobs.get(flight.job_id.lower())
        if job is None:
            return
        execution = self._execution(flight)
        execution.start_time = execution.start_time or start
        exit_code: int | None = code
        if failure is not None or why == launch.NOT_FOUND_MARK:
            exit_code = None
            failure = failure or views.failure(
                "CommandProgramNotFound", "the command line's program was not found"
            )
        elif code != 0:
            failure = views.failure("FailureExitCode", f"the process exited with code {code}")
            if self._wall_clock_expired(job, flight, start, end):
                # Inferred code: named after the job's terminate reason for the same limit.
                failure = views.failure(
                    "MaxWallClockTimeExpiry", "the process ran past its max wall clock time"
                )
        views.complete(execution, exit_code, failure, end)
        if flight.kind is _Kind.TASK:
            self._on_task_exit(job, job.tasks[flight.task_id])
        elif flight.kind is _Kind.PREP:
            self._on_prep_exit(job, flight.node_id)
        else:
            self._maybe_complete(job)
        self._poke()

    @staticmethod
    def _wall_clock_expired(job: JobRecord, flight: _InFlight, start: float, end: float) -> bool:
        limit: timedelta | None = None
        if flight.kind is _Kind.TASK:
            limit = job.tasks[flight.task_id].spec.constraints.max_wall_clock_time
        elif flight.kind is _Kind.PREP and job.spec.preparation is not None:
            limit = job.spec.preparation.constraints.max_wall_clock_time
        elif flight.kind is _Kind.RELEASE and job.spec.release is not None:
            limit = min(job.spec.release.max_wall_clock_time, RELEASE_MAX_WALL_CLOCK)
        return limit is not None and end - start >= limit.total_seconds() * 0.99

    def _on_task_exit(self, job: JobRecord, task: TaskRecord) -> None:
        run = task.run
        failed_by_exit = run.result is ExecutionResult.FAILURE and run.exit_code is not None
        limit = task.spec.constraints.max_task_retry_count
        if failed_by_exit and rules.retries_left(limit, job, run.retry_count):
            run.retry_count += 1
            run.completed = False
            task.state = TaskState.ACTIVE
            task.node_id = None
        else:
            task.state = TaskState.COMPLETED
        self._after_task_change(job)

    def _after_task_change(self, job: JobRecord) -> None:
        if (
            job.state is JobState.ACTIVE
            and job.spec.on_all_tasks_complete is OnAllTasksComplete.TERMINATE_JOB
            and job.tasks
            and all(t.state is TaskState.COMPLETED for t in job.tasks.values())
        ):
            self._spawn(self._terminate, job, "AllTasksComplete")

    def _on_prep_exit(self, job: JobRecord, node_id: str) -> None:
        record = job.nodes[node_id]
        prep, spec = record.prep, job.spec.preparation
        assert prep is not None and spec is not None
        waiting = [
            t for t in job.tasks.values() if t.state is TaskState.PREPARING and t.node_id == node_id
        ]
        if prep.result is ExecutionResult.SUCCESS:
            for task in sorted(waiting, key=lambda t: t.seq):
                self._spawn(self._launch_waiting, job, task, node_id)
            return
        limit = spec.constraints.max_task_retry_count
        node = self._node_by_id(node_id)
        if (
            prep.exit_code is not None
            and node is not None
            and rules.retries_left(limit, job, prep.retry_count)
        ):
            prep.retry_count += 1
            prep.completed = False
            self._spawn(self._launch_prep, job, node, record)
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
                task.state, task.node_id = TaskState.ACTIVE, None

    async def _launch_waiting(self, job: JobRecord, task: TaskRecord, node_id: str) -> None:
        node = self._node_by_id(node_id)
        if node is not None and task.state is TaskState.PREPARING and job.state is JobState.ACTIVE:
            await self._launch_task(job, task, node)

    def _on_lost(self, key: str, flight: _InFlight) -> None:
        """A process vanished with its node (restart, removal): requeue as the service does."""
        self._in_flight.pop(key, None)
        if flight.kind is _Kind.CHORE:
            if (event := self._chores.get(key)) is not None:
                event.set()
            return
        job = self._state.jobs.get(flight.job_id.lower())
        if job is None:
            return
        if flight.kind is _Kind.RELEASE:
            release = job.nodes[flight.node_id].release
            assert release is not None
            views.complete(
                release, None, views.failure("NodeUnavailable", "the node was lost"), _now()
            )
            self._maybe_complete(job)
        else:
            if flight.kind is _Kind.TASK:
                task = job.tasks[flight.task_id]
                task.state, task.node_id = TaskState.ACTIVE, None
                task.run.requeue_count += 1
                task.run.key = None
            else:
                job.nodes[flight.node_id].prep = None
            for other in job.tasks.values():
                if other.state is TaskState.PREPARING and other.node_id == flight.node_id:
                    other.state, other.node_id = TaskState.ACTIVE, None
        self._poke()
