"""A small Batch service on a Docker engine: pools of node containers, jobs, tasks, a scheduler.

It answers in the backend-neutral models, so the same service can sit behind the in-process
`DockerBackend` or behind an HTTP endpoint. All its state is in `ServiceState` (persisted by
`_persist`); what runs on nodes is started through each node's agent (`backends.docker.agent`)
and finishes by an ``exited`` event, which may arrive in a later run of the app.

Scheduling, as the service does it (batch-semantics.md): tasks are placed in the order they were
added, on nodes with free slots, by the pool's fill type; a job's preparation task runs on a node
before the job's first task there; release tasks run on job termination or deletion on the nodes
that ran tasks and whose preparation completed.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import anyio
import structlog

from backends.base import (
    RELEASE_MAX_WALL_CLOCK,
    AllocationState,
    ComputeNode,
    ErrorCategory,
    ExecutionInfo,
    ExecutionResult,
    FailureInfo,
    Job,
    JobSpec,
    JobState,
    NodeFillType,
    NodeState,
    OnAllTasksComplete,
    Pool,
    PoolSpec,
    PoolState,
    PrepReleaseExecution,
    PrepReleaseStatus,
    PrepReleaseTaskState,
    Task,
    TaskCounts,
    TaskSpec,
    TaskState,
    UserIdentity,
    check_id,
)
from backends.docker import launch
from backends.docker.agent import (
    AGENT_DIR,
    AGENT_SCRIPT,
    AgentEvent,
    AgentLink,
    run_command,
    simple_command,
)
from backends.docker.codec import decode, encode
from backends.docker.engine import NODE_LABEL, POOL_LABEL, ROLE_LABEL, Engine
from backends.docker.state import (
    Execution,
    JobNodeRecord,
    JobRecord,
    NodeRecord,
    PoolRecord,
    ServiceState,
    StateStore,
    TaskRecord,
)
from backends.errors import (
    AlreadyExists,
    BackendError,
    Conflict,
    InvalidRequest,
    NotFound,
    NotSupported,
)

log = structlog.get_logger("jobprep_release.docker")

MAX_NODES = 64
MAX_SLOTS_PER_NODE = 256
SAVE_INTERVAL = 0.2


@dataclass(frozen=True, slots=True)
class DockerSettings:
    """How the Docker backend reaches the engine and builds nodes."""

    image: str = "debian:bookworm-slim"
    state_dir: Path | None = None
    docker_host: str | None = None
    account_name: str = "localbatch"
    node_start_timeout: float = 60.0


class _Kind(Enum):
    TASK = "task"
    PREP = "prep"
    RELEASE = "release"
    CHORE = "chore"


@dataclass(slots=True)
class _InFlight:
    kind: _Kind
    node_id: str
    job_id: str = ""
    task_id: str = ""


class _NodeRuntime:
    """What the service holds for a live node: its agent link and readiness."""

    def __init__(self) -> None:
        self.link: AgentLink | None = None
        self.ready = anyio.Event()
        self.scope = anyio.CancelScope()
        self.lock = anyio.Lock()
        """Held while the node's container is being made or removed."""


def _now() -> float:
    return time.time()


def _stamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _key_of(job_id: str) -> str:
    return job_id.lower()


class BatchService:
    """The service. Call `run` in a task group before anything else; `close` when done."""

    def __init__(self, engine: Engine, store: StateStore, settings: DockerSettings) -> None:
        self._engine = engine
        self._store = store
        self._settings = settings
        self._state = ServiceState()
        self._nodes: dict[str, _NodeRuntime] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._chores: dict[str, anyio.Event] = {}
        self._wake = anyio.Event()
        self._dirty = anyio.Event()
        self._persist_lock = anyio.Lock()
        self._job_completed = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._account_url = "http://localhost/" + settings.account_name

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Load state, reconnect to every node, then schedule until cancelled."""
        self._state = await anyio.to_thread.run_sync(self._store.load)
        async with anyio.create_task_group() as group:
            self._task_group = group
            await self._adopt_unknown_pools()
            for pool in list(self._state.pools.values()):
                for node in pool.nodes:
                    # Nothing runs on a node until its agent has answered this run.
                    node.state = NodeState.STARTING
                    self._nodes[node.id] = _NodeRuntime()
                    group.start_soon(self._keep_node, pool, node)
            self._index_in_flight()
            group.start_soon(self._saver)
            task_status.started()
            await self._scheduler()

    async def close(self) -> None:
        for runtime in self._nodes.values():
            if runtime.link is not None:
                runtime.link.close()
        await self._persist()

    async def _persist(self) -> None:
        async with self._persist_lock:
            document = self._store.serialize(self._state)
            await anyio.to_thread.run_sync(self._store.write, document)

    def _changed(self) -> None:
        self._dirty.set()

    async def _saver(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            await self._persist()
            await anyio.sleep(SAVE_INTERVAL)

    def _poke(self) -> None:
        self._wake.set()
        self._changed()

    def _spawn(self, func: Any, *args: Any) -> None:
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
        if spec.id.lower() in self._state.pools:
            raise AlreadyExists(f"pool {spec.id} already exists", code="PoolExists")
        if not 0 <= spec.target_dedicated_nodes <= MAX_NODES:
            raise InvalidRequest(
                f"a local pool has 0 to {MAX_NODES} nodes, not {spec.target_dedicated_nodes}",
                code="InvalidPropertyValue",
            )
        if spec.target_low_priority_nodes:
            raise NotSupported("low-priority nodes are not emulated by the docker backend")
        if not 1 <= spec.task_slots_per_node <= MAX_SLOTS_PER_NODE:
            raise InvalidRequest(
                f"task slots per node must be 1 to {MAX_SLOTS_PER_NODE}",
                code="InvalidPropertyValue",
            )
        image = spec.image or self._settings.image
        await self._engine.ensure_image(image)
        spec = _with_image(spec, image)
        pool = PoolRecord(spec=spec, serial=random.randrange(10**9, 10**10), created=_now())
        self._state.pools[spec.id.lower()] = pool
        self._add_nodes(pool, spec.target_dedicated_nodes)
        await self._persist()
        log.info("pool created", pool=spec.id, nodes=spec.target_dedicated_nodes, image=image)

    def _add_nodes(self, pool: PoolRecord, count: int) -> None:
        started = datetime.fromtimestamp(_now(), UTC).strftime("%Y%m%dt%H%M%Sz")
        first = max((node.index for node in pool.nodes), default=0) + 1
        for index in range(first, first + count):
            node_id = f"tvm-{pool.serial}_{index}-{started}"
            name = f"jobprep_release-{pool.spec.id.lower()}-{index}-{pool.serial}"
            node = NodeRecord(id=node_id, index=index, container=name, volume=name)
            pool.nodes.append(node)
            self._nodes[node_id] = _NodeRuntime()
            self._spawn(self._keep_node, pool, node)

    async def get_pool(self, pool_id: str) -> Pool:
        pool = self._pool(pool_id)
        live = sum(1 for node in pool.nodes if node.state is not NodeState.LEAVING_POOL)
        steady = all(node.state is not NodeState.CREATING for node in pool.nodes)
        return Pool(
            id=pool.spec.id,
            vm_size=pool.spec.vm_size,
            state=pool.state,
            allocation_state=AllocationState.STEADY if steady else AllocationState.RESIZING,
            target_dedicated_nodes=pool.spec.target_dedicated_nodes,
            current_dedicated_nodes=live,
            task_slots_per_node=pool.spec.task_slots_per_node,
            node_fill_type=pool.spec.node_fill_type,
        )

    async def resize_pool(self, pool_id: str, target_dedicated_nodes: int) -> None:
        pool = self._pool(pool_id)
        if not 0 <= target_dedicated_nodes <= MAX_NODES:
            raise InvalidRequest(f"a local pool has 0 to {MAX_NODES} nodes")
        current = len(pool.nodes)
        pool.spec = _with_target(pool.spec, target_dedicated_nodes)
        if target_dedicated_nodes > current:
            self._add_nodes(pool, target_dedicated_nodes - current)
        for node in pool.nodes[target_dedicated_nodes:]:
            # Inferred: like the service's default deallocation option, running tasks are
            # requeued and the node is removed at once.
            await self._remove_node(pool, node)
        await self._persist()

    async def delete_pool(self, pool_id: str) -> None:
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
        runtime = self._nodes.pop(node.id, None) or _NodeRuntime()
        runtime.scope.cancel()
        if runtime.link is not None:
            runtime.link.close()
        async with runtime.lock:
            container = await self._engine.get_container(node.container)
            if container is not None:
                await self._engine.remove_container(container)
            await self._engine.remove_volume(node.volume)
        pool.nodes.remove(node)
        self._poke()

    async def _remove_labelled(self, pool_id: str) -> None:
        labels = {POOL_LABEL: pool_id}
        for container in await self._engine.list_containers(labels):
            await self._engine.remove_container(container)
        for volume in await self._engine.list_volumes(labels):
            await self._engine.remove_volume(volume.name)

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        pool = self._pool(pool_id)
        busy = self._used_slots()
        return [
            ComputeNode(
                id=node.id, state=_node_state(node, busy), running_tasks_count=busy.get(node.id, 0)
            )
            for node in pool.nodes
        ]

    async def _adopt_unknown_pools(self) -> None:
        """Pools whose containers exist but that the state does not know (the state was
        lost, or another machine's app made them) are taken back from their labels."""
        containers = await self._engine.list_containers({ROLE_LABEL: "node"})
        found: dict[str, list[Any]] = {}
        for container in containers:
            pool_id = container.labels.get(POOL_LABEL, "")
            if pool_id.lower() not in self._state.pools:
                found.setdefault(pool_id, []).append(container)
        for pool_id, members in found.items():
            try:
                pool = _pool_from_labels(members)
            except (KeyError, ValueError):
                log.warning("ignoring node containers with unreadable labels", pool=pool_id)
                continue
            self._state.pools[pool_id.lower()] = pool
            log.info("adopted pool from its containers", pool=pool_id, nodes=len(pool.nodes))

    # --- nodes -------------------------------------------------------------------------------

    async def _keep_node(self, pool: PoolRecord, node: NodeRecord) -> None:
        """Bring a node up (creating its container when missing), then relay its agent's
        events until the link closes; a lost node is marked unusable."""
        runtime = self._nodes[node.id]
        with runtime.scope:
            await self._relay_node(pool, node, runtime)

    async def _relay_node(self, pool: PoolRecord, node: NodeRecord, runtime: _NodeRuntime) -> None:
        try:
            async with runtime.lock:
                link = await self._start_node(pool, node)
        except BackendError as exc:
            log.warning("node failed to start", node=node.id, error=exc.one_line())
            node.state = NodeState.UNUSABLE
            self._poke()
            return
        runtime.link = link
        await link.send(simple_command("hello"))
        unsettled = [key for key, flight in self._in_flight.items() if flight.node_id == node.id]
        for key in unsettled:
            await link.send(simple_command("query", key))
        while True:
            events = await link.receive()
            if not events:
                break
            for event in events:
                self._on_agent_event(node, event)
        if node.state is not NodeState.LEAVING_POOL and self._nodes.get(node.id) is runtime:
            log.warning("lost the link to a node", node=node.id)
            node.state = NodeState.UNUSABLE
            self._lose_node_work(node.id)
            self._poke()

    async def _start_node(self, pool: PoolRecord, node: NodeRecord) -> AgentLink:
        container = await self._engine.get_container(node.container)
        if container is None:
            node.state = NodeState.CREATING
            labels = {
                POOL_LABEL: pool.spec.id,
                NODE_LABEL: node.id,
                ROLE_LABEL: "node",
                "jobprep_release.pool-spec": _pool_labels_document(pool),
            }
            await self._engine.create_volume(node.volume, labels)
            assert pool.spec.image is not None
            container = await self._engine.create_node_container(
                name=node.container,
                image=pool.spec.image,
                command=["/bin/bash", "-c", AGENT_SCRIPT],
                hostname=node.id.lower()[:63],
                labels=labels,
                volume=node.volume,
                mount_point="/mnt/batch",
                host_options={
                    "restart_policy": {"Name": "unless-stopped"},
                    "security_opt": ["no-new-privileges"],
                    **_vm_limits(pool.spec.vm_size),
                },
            )
        node.state = NodeState.STARTING
        link = await AgentLink.attach(self._engine.api, container.id)
        await self._engine.call(container.reload, what=f"inspect {node.container}")
        if container.status != "running":
            await self._engine.call(container.start, what=f"start {node.container}")
        return link

    def _on_agent_event(self, node: NodeRecord, event: AgentEvent) -> None:
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

    def _on_node_hello(self, node: NodeRecord, boot: int) -> None:
        rebooted = node.boot not in (0, boot)
        node.boot = boot
        if rebooted:
            log.info("node restarted", node=node.id, boot=boot)
            self._lose_node_work(node.id)
        if node.state in (NodeState.CREATING, NodeState.STARTING, NodeState.UNUSABLE):
            node.state = NodeState.IDLE
        self._nodes[node.id].ready.set()
        self._poke()

    def _lose_node_work(self, node_id: str) -> None:
        for key, flight in list(self._in_flight.items()):
            if flight.node_id == node_id:
                self._on_lost(key, flight)

    # --- jobs --------------------------------------------------------------------------------

    def _job(self, job_id: str) -> JobRecord:
        job = self._state.jobs.get(_key_of(job_id))
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="JobNotFound")
        return job

    async def create_job(self, spec: JobSpec) -> None:
        check_id("job", spec.id)
        if _key_of(spec.id) in self._state.jobs:
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
        self._state.jobs[_key_of(spec.id)] = JobRecord(spec=spec, created=_now())
        await self._persist()

    async def find_job(self, job_id: str) -> Job | None:
        job = self._state.jobs.get(_key_of(job_id))
        return None if job is None else _job_view(job)

    async def get_job(self, job_id: str) -> Job:
        return _job_view(self._job(job_id))

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        job = self._job(job_id)
        if job.state is not JobState.ACTIVE:
            raise Conflict(f"job {job_id} is {job.state}, not active", code="JobNotActive")
        prep_id = job.spec.preparation.id.lower() if job.spec.preparation else None
        release_id = job.spec.release.id.lower() if job.spec.release else None
        seen: set[str] = set()
        for spec in tasks:
            check_id("task", spec.id)
            lowered = spec.id.lower()
            if lowered == prep_id:
                raise InvalidRequest(
                    f"task id {spec.id} is the job preparation task's",
                    code="TaskIdSameAsJobPreparationTask",
                )
            if lowered == release_id:
                raise InvalidRequest(
                    f"task id {spec.id} is the job release task's",
                    code="TaskIdSameAsJobReleaseTask",
                )
            if lowered in seen:
                raise InvalidRequest(f"task id {spec.id} appears twice", code="DuplicateTaskId")
            if lowered in job.tasks:
                raise AlreadyExists(f"task {spec.id} already exists", code="TaskExists")
            if spec.required_slots < 1:
                raise InvalidRequest("required slots must be at least 1")
            seen.add(lowered)
        for spec in tasks:
            job.tasks[spec.id.lower()] = TaskRecord(spec=spec, seq=job.next_seq)
            job.next_seq += 1
        await self._persist()
        self._poke()

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        counts = dict.fromkeys(TaskState, 0)
        succeeded = failed = 0
        for task in self._job(job_id).tasks.values():
            counts[task.state] += 1
            if task.state is TaskState.COMPLETED:
                if task.run.result is ExecutionResult.SUCCESS:
                    succeeded += 1
                else:
                    failed += 1
        return TaskCounts(
            active=counts[TaskState.ACTIVE],
            running=counts[TaskState.RUNNING] + counts[TaskState.PREPARING],
            completed=counts[TaskState.COMPLETED],
            succeeded=succeeded,
            failed=failed,
        )

    async def list_tasks(self, job_id: str) -> list[Task]:
        return [
            Task(
                id=task.spec.id,
                state=task.state,
                node_id=task.node_id,
                execution_info=_info(task.run),
            )
            for task in self._job(job_id).tasks.values()
        ]

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        job = self._job(job_id)
        if job.state in (JobState.COMPLETED, JobState.TERMINATING):
            raise Conflict(f"job {job_id} is already {job.state}", code="JobCompleted")
        await self._terminate(job, reason or "UserTerminate")
        await self._persist()

    async def _terminate(self, job: JobRecord, reason: str) -> None:
        job.state = JobState.TERMINATING
        job.terminate_reason = reason
        for task in job.tasks.values():
            if task.state in (TaskState.RUNNING, TaskState.PREPARING):
                await self._end_task(job, task)
        for node_id, record in job.nodes.items():
            if record.prep is not None and not record.prep.completed and record.prep.key:
                await self._kill(record.prep.key)
                self._in_flight.pop(record.prep.key, None)
                _complete(record.prep, None, _failure("TaskEnded", "ended by Terminate Job"))
            if job.spec.release is not None and self._release_due(record):
                record.release = Execution()
                await self._launch_release(job, node_id, record)
        self._maybe_complete(job)
        self._poke()

    async def _end_task(self, job: JobRecord, task: TaskRecord) -> None:
        """End a running task as Terminate Job does: killed, and completed with a failure."""
        key = task.run.key
        if key is not None:
            self._in_flight.pop(key, None)
            await self._kill(key)
        task.state = TaskState.COMPLETED
        # Inferred from the REST spec's TaskExecutionInfo: a task ended by the service has no
        # exit code of its own and a failure saying why.
        _complete(task.run, None, _failure("TaskEnded", "the task was ended by Terminate Job"))

    @staticmethod
    def _release_due(record: JobNodeRecord) -> bool:
        return (
            record.ran_tasks
            and record.release is None
            and record.prep is not None
            and record.prep.completed
        )

    def _maybe_complete(self, job: JobRecord) -> None:
        if job.state is not JobState.TERMINATING:
            return
        pending = [
            record
            for record in job.nodes.values()
            if record.release is not None and not record.release.completed
        ]
        if not pending:
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
        pool_id = job.spec.pool_id
        order = self._node_order(pool_id)
        entries = [
            (node_id, record)
            for node_id, record in job.nodes.items()
            if record.prep is not None or record.release is not None
        ]
        entries.sort(key=lambda item: order.get(item[0], len(order)))
        return [
            PrepReleaseStatus(
                pool_id=pool_id,
                node_id=node_id,
                preparation=_prep_release_view(record.prep),
                release=_prep_release_view(record.release),
            )
            for node_id, record in entries
        ]

    def _node_order(self, pool_id: str) -> dict[str, int]:
        pool = self._state.pools.get(pool_id.lower())
        return {} if pool is None else {node.id: node.index for node in pool.nodes}

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
            if record.has_files and node_id in self._nodes:
                await self._run_chore(
                    node_id, launch.remove_tree_script(launch.job_dir(job.spec.id))
                )
        self._state.jobs.pop(_key_of(job_id), None)
        await self._persist()

    # --- files -------------------------------------------------------------------------------

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        pool = self._pool(pool_id)
        node = next((n for n in pool.nodes if n.id == node_id), None)
        if node is None:
            raise NotFound(f"node {node_id} is not in pool {pool_id}", code="NodeNotFound")
        relative = _confined(path)
        return await self._engine.read_file(node.container, f"{launch.NODE_ROOT}/{relative}")

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
            if job.state is not JobState.ACTIVE:
                continue
            pool = self._state.pools.get(job.spec.pool_id.lower())
            if pool is None or pool.state is not PoolState.ACTIVE:
                continue
            waiting = [t for t in job.tasks.values() if t.state is TaskState.ACTIVE]
            for task in sorted(waiting, key=lambda t: t.seq):
                node = self._pick_node(pool, job, task, used)
                if node is None:
                    continue
                used[node.id] = used.get(node.id, 0) + task.spec.required_slots
                await self._assign(job, task, node)

    def _pick_node(
        self, pool: PoolRecord, job: JobRecord, task: TaskRecord, used: dict[str, int]
    ) -> NodeRecord | None:
        slots = pool.spec.task_slots_per_node
        candidates = [
            node
            for node in pool.nodes
            if node.state in (NodeState.IDLE, NodeState.RUNNING)
            and slots - used.get(node.id, 0) >= task.spec.required_slots
            and not (node.id in job.nodes and job.nodes[node.id].prep_blocked)
        ]
        if not candidates:
            return None
        if pool.spec.node_fill_type is NodeFillType.PACK:
            return max(candidates, key=lambda node: (used.get(node.id, 0), -node.index))
        return min(candidates, key=lambda node: (used.get(node.id, 0), node.index))

    async def _assign(self, job: JobRecord, task: TaskRecord, node: NodeRecord) -> None:
        record = job.nodes.setdefault(node.id, JobNodeRecord())
        task.node_id = node.id
        prep = job.spec.preparation
        if prep is not None and self._prep_needed(
            record, node, prep.rerun_on_node_reboot_after_success
        ):
            if record.prep is None or record.prep.completed:
                record.prep = Execution(
                    requeue_count=record.prep.requeue_count if record.prep else 0
                )
                await self._launch_prep(job, node, record)
            if prep.wait_for_success:
                task.state = TaskState.PREPARING
                return
        await self._launch_task(job, task, node)

    @staticmethod
    def _prep_needed(record: JobNodeRecord, node: NodeRecord, rerun_after_reboot: bool) -> bool:
        prep = record.prep
        if prep is None or not prep.completed:
            return True
        rebooted = record.prep_boot != node.boot
        return rebooted and (rerun_after_reboot or prep.result is not ExecutionResult.SUCCESS)

    # --- launching ---------------------------------------------------------------------------

    def _node_context(self, pool_id: str, node_id: str) -> launch.NodeContext:
        return launch.NodeContext(
            account_name=self._settings.account_name,
            account_url=self._account_url,
            pool_id=pool_id,
            node_id=node_id,
        )

    async def _start_process(
        self,
        flight: _InFlight,
        job: JobRecord,
        task_id: str,
        command_line: str,
        identity: UserIdentity,
        environment: dict[str, str],
        wall_clock: timedelta | None,
        execution: Execution,
    ) -> None:
        """Start a task, preparation or release process on its node through the agent."""
        key = uuid.uuid4().hex[:16]
        execution.key = key
        execution.start_time = execution.end_time = execution.exit_code = None
        execution.failure = execution.result = None
        execution.completed = False
        record = job.nodes.setdefault(flight.node_id, JobNodeRecord())
        record.has_files = True
        runtime = self._nodes.get(flight.node_id)
        try:
            argv = launch.split_command_line(command_line)
        except ValueError as exc:
            self._complete_now(key, flight, execution, _failure("InvalidCommandLine", str(exc)))
            return
        prep = job.spec.preparation
        env = launch.task_environment(
            self._node_context(job.spec.pool_id, flight.node_id),
            job.spec.id,
            task_id,
            identity,
            job_environment=job.spec.common_environment,
            task_environment=environment,
            job_prep_task_id=prep.id if prep is not None else None,
        )
        script = launch.launch_script(
            directory=launch.task_dir(job.spec.id, task_id),
            argv=argv,
            env=env,
            identity=identity,
            wall_clock=wall_clock,
            agent_mark=f"{AGENT_DIR}/{key}.why",
        )
        self._in_flight[key] = flight
        if runtime is None or runtime.link is None:
            self._on_lost(key, flight)
            return
        await runtime.link.send(run_command(key, script))
        self._changed()

    def _complete_now(
        self, key: str, flight: _InFlight, execution: Execution, failure: FailureInfo
    ) -> None:
        now = _now()
        self._in_flight[key] = flight
        self._on_exit(key, flight, -1, now, now, "-", failure=failure)

    async def _launch_task(self, job: JobRecord, task: TaskRecord, node: NodeRecord) -> None:
        task.state = TaskState.RUNNING
        job.nodes.setdefault(node.id, JobNodeRecord()).ran_tasks = True
        spec = task.spec
        await self._start_process(
            _InFlight(_Kind.TASK, node.id, job.spec.id, spec.id.lower()),
            job,
            spec.id,
            spec.command_line,
            spec.user_identity,
            dict(spec.environment),
            spec.constraints.max_wall_clock_time,
            task.run,
        )

    async def _launch_prep(self, job: JobRecord, node: NodeRecord, record: JobNodeRecord) -> None:
        prep = job.spec.preparation
        assert prep is not None
        record.prep_boot = node.boot
        assert record.prep is not None
        await self._start_process(
            _InFlight(_Kind.PREP, node.id, job.spec.id),
            job,
            prep.id,
            prep.command_line,
            prep.user_identity,
            dict(prep.environment),
            prep.constraints.max_wall_clock_time,
            record.prep,
        )

    async def _launch_release(self, job: JobRecord, node_id: str, record: JobNodeRecord) -> None:
        release = job.spec.release
        assert release is not None and record.release is not None
        await self._start_process(
            _InFlight(_Kind.RELEASE, node_id, job.spec.id),
            job,
            release.id,
            release.command_line,
            release.user_identity,
            dict(release.environment),
            min(release.max_wall_clock_time, RELEASE_MAX_WALL_CLOCK),
            record.release,
        )

    async def _run_chore(self, node_id: str, script: str) -> None:
        """Run a service-side script as root on a node and wait for it to end."""
        runtime = self._nodes.get(node_id)
        if runtime is None or runtime.link is None:
            return
        key = uuid.uuid4().hex[:16]
        done = anyio.Event()
        self._chores[key] = done
        self._in_flight[key] = _InFlight(_Kind.CHORE, node_id)
        await runtime.link.send(run_command(key, script))
        with anyio.move_on_after(30):
            await done.wait()
        self._chores.pop(key, None)
        self._in_flight.pop(key, None)

    async def _kill(self, key: str) -> None:
        flight = self._in_flight.get(key)
        runtime = self._nodes.get(flight.node_id) if flight else None
        if runtime is not None and runtime.link is not None:
            await runtime.link.send(simple_command("kill", key))

    # --- outcomes ----------------------------------------------------------------------------

    def _execution(self, flight: _InFlight) -> Execution:
        job = self._state.jobs[_key_of(flight.job_id)]
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
                    self._in_flight[task.run.key] = _InFlight(
                        _Kind.TASK, task.node_id, job.spec.id, task_id
                    )
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
        failure: FailureInfo | None = None,
    ) -> None:
        if self._in_flight.pop(key, None) is None:
            return
        if flight.kind is _Kind.CHORE:
            event = self._chores.get(key)
            if event is not None:
                event.set()
            return
        job = self._state.jobs.get(_key_of(flight.job_id))
        if job is None:
            return
        execution = self._execution(flight)
        execution.start_time = execution.start_time or start
        if failure is None and why == launch.NOT_FOUND_MARK:
            failure = _failure("CommandProgramNotFound", "the command line's program was not found")
            code_or_none: int | None = None
        else:
            code_or_none = None if failure is not None else code
        if failure is None and code != 0:
            failure = _failure("FailureExitCode", f"the task process exited with code {code}")
        _complete(execution, code_or_none, failure, end)
        if flight.kind is _Kind.TASK:
            self._on_task_exit(job, job.tasks[flight.task_id])
        elif flight.kind is _Kind.PREP:
            self._on_prep_exit(job, flight.node_id)
        else:
            self._maybe_complete(job)
        self._poke()

    def _retries_left(self, limit: int | None, job: JobRecord, used: int) -> bool:
        allowed = job.spec.max_task_retry_count if limit is None else limit
        return allowed == -1 or used < allowed

    def _on_task_exit(self, job: JobRecord, task: TaskRecord) -> None:
        run = task.run
        if (
            run.result is ExecutionResult.FAILURE
            and run.exit_code is not None
            and self._retries_left(task.spec.constraints.max_task_retry_count, job, run.retry_count)
        ):
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
        prep = record.prep
        spec = job.spec.preparation
        assert prep is not None and spec is not None
        waiting = [
            t for t in job.tasks.values() if t.state is TaskState.PREPARING and t.node_id == node_id
        ]
        if prep.result is ExecutionResult.SUCCESS:
            for task in sorted(waiting, key=lambda t: t.seq):
                self._spawn(self._launch_waiting, job, task, node_id)
            return
        if prep.exit_code is not None and self._retries_left(
            spec.constraints.max_task_retry_count, job, prep.retry_count
        ):
            prep.retry_count += 1
            prep.completed = False
            node = self._find_node(node_id)
            if node is not None:
                self._spawn(self._launch_prep, job, node, record)
            return
        if spec.wait_for_success:
            record.prep_blocked = True
            for task in waiting:
                task.state = TaskState.ACTIVE
                task.node_id = None

    async def _launch_waiting(self, job: JobRecord, task: TaskRecord, node_id: str) -> None:
        node = self._find_node(node_id)
        if node is not None and task.state is TaskState.PREPARING and job.state is JobState.ACTIVE:
            await self._launch_task(job, task, node)

    def _find_node(self, node_id: str) -> NodeRecord | None:
        for pool in self._state.pools.values():
            for node in pool.nodes:
                if node.id == node_id:
                    return node
        return None

    def _on_lost(self, key: str, flight: _InFlight) -> None:
        """A process vanished with its node (restart, removal): requeue as the service does."""
        self._in_flight.pop(key, None)
        if flight.kind is _Kind.CHORE:
            event = self._chores.get(key)
            if event is not None:
                event.set()
            return
        job = self._state.jobs.get(_key_of(flight.job_id))
        if job is None:
            return
        if flight.kind is _Kind.TASK:
            task = job.tasks[flight.task_id]
            task.state = TaskState.ACTIVE
            task.node_id = None
            task.run.requeue_count += 1
            task.run.key = None
            for other in job.tasks.values():
                if other.state is TaskState.PREPARING and other.node_id == flight.node_id:
                    other.state, other.node_id = TaskState.ACTIVE, None
        elif flight.kind is _Kind.PREP:
            record = job.nodes[flight.node_id]
            record.prep = None
            for task in job.tasks.values():
                if task.state is TaskState.PREPARING and task.node_id == flight.node_id:
                    task.state, task.node_id = TaskState.ACTIVE, None
        else:
            release = job.nodes[flight.node_id].release
            assert release is not None
            _complete(release, None, _failure("NodeUnavailable", "the node was lost"), _now())
            self._maybe_complete(job)
        self._poke()


# --- helpers ---------------------------------------------------------------------------------


def _node_state(node: NodeRecord, busy: dict[str, int]) -> NodeState:
    """A ready node is `running` while any task holds one of its slots, else `idle`."""
    if node.state in (NodeState.IDLE, NodeState.RUNNING):
        return NodeState.RUNNING if busy.get(node.id) else NodeState.IDLE
    return node.state


def _failure(code: str, message: str) -> FailureInfo:
    return FailureInfo(category=ErrorCategory.USER_ERROR, code=code, message=message)


def _complete(
    execution: Execution,
    exit_code: int | None,
    failure: FailureInfo | None,
    end: float | None = None,
) -> None:
    execution.exit_code = exit_code
    execution.failure = failure
    execution.result = ExecutionResult.FAILURE if failure else ExecutionResult.SUCCESS
    execution.end_time = end or _now()
    execution.completed = True
    execution.key = None


def _info(execution: Execution) -> ExecutionInfo:
    return ExecutionInfo(
        start_time=_stamp(execution.start_time),
        end_time=_stamp(execution.end_time) if execution.completed else None,
        exit_code=execution.exit_code,
        result=execution.result if execution.completed else None,
        failure_info=execution.failure,
        retry_count=execution.retry_count,
        requeue_count=execution.requeue_count,
    )


def _prep_release_view(execution: Execution | None) -> PrepReleaseExecution | None:
    if execution is None:
        return None
    state = PrepReleaseTaskState.COMPLETED if execution.completed else PrepReleaseTaskState.RUNNING
    return PrepReleaseExecution(state=state, execution_info=_info(execution))


def _job_view(job: JobRecord) -> Job:
    return Job(
        id=job.spec.id,
        pool_id=job.spec.pool_id,
        state=job.state,
        terminate_reason=job.terminate_reason,
    )


def _confined(path: str) -> str:
    """`path` relative to the node root, refusing anything that would leave it."""
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or any(part in ("..", "") for part in parts):
        raise InvalidRequest(
            f"node file path {path!r} must be relative to the node's root, without '..'",
            code="InvalidNodeFilePath",
        )
    return "/".join(parts)


def _with_image(spec: PoolSpec, image: str) -> PoolSpec:
    return replace(spec, image=image)


def _with_target(spec: PoolSpec, target: int) -> PoolSpec:
    return replace(spec, target_dedicated_nodes=target)


def _vm_limits(vm_size: str) -> dict[str, Any]:
    """Memory and process limits for a node container, following the VM size's memory."""
    memory_gib = {"standard_d1_v2": 3.5, "standard_d2_v2": 7, "standard_d2s_v3": 8, "small": 1.75}
    gib = memory_gib.get(vm_size.lower(), 4)
    return {"mem_limit": int(gib * 1024**3), "pids_limit": 4096}


def _pool_labels_document(pool: PoolRecord) -> str:
    return json.dumps({"spec": encode(pool.spec), "serial": pool.serial, "created": pool.created})


def _pool_from_labels(containers: list[Any]) -> PoolRecord:
    document = json.loads(containers[0].labels["jobprep_release.pool-spec"])
    pool = PoolRecord(
        spec=decode(PoolSpec, document["spec"]),
        serial=int(document["serial"]),
        created=float(document["created"]),
    )
    for container in sorted(containers, key=lambda c: c.name):
        node_id = container.labels[NODE_LABEL]
        index = int(node_id.split("_")[1].split("-")[0])
        pool.nodes.append(
            NodeRecord(id=node_id, index=index, container=container.name, volume=container.name)
        )
    pool.nodes.sort(key=lambda node: node.index)
    return pool
