"""What the core's parts share: the state, the executor, the store, the clock, the processes in
flight, and the signals between the parts (wake the scheduler, save the state).

The parts (`pools`, `jobs`, `scheduler`, `processes`, `outcomes`) are functions over one `Core`;
`service.BatchService` is their facade.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from jobprep_release.backends.base import ExecutionResult, NodeState, TaskState
from jobprep_release.backends.docker.core import rules
from jobprep_release.backends.docker.core.clock import Clock
from jobprep_release.backends.docker.core.executor import NodeExecutor, NodeSetup
from jobprep_release.backends.docker.core.heap import Heap
from jobprep_release.backends.docker.core.index import TaskIndex
from jobprep_release.backends.docker.core.records import (
    JobRecord,
    NodeRecord,
    PoolRecord,
    ServiceState,
    TaskRecord,
    move,
)
from jobprep_release.backends.docker.core.store import Store, Tracker
from jobprep_release.backends.errors import NotFound
from jobprep_release.backends.models.value import Value

if TYPE_CHECKING:
    from jobprep_release.backends.docker.core.storage import LinkedStorage

READY = (NodeState.IDLE, NodeState.RUNNING, NodeState.OFFLINE)
SAVE_INTERVAL = 0.2
SWEEP_INTERVAL = 1.0


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CoreSettings(Value):
    """The account the core serves, the image pools get when they name none, and how often
    it saves its state (at least `save_interval` seconds apart, and never more than a tenth of
    the time; 0: after every change) and sweeps old task files."""

    account_name: str = "localbatch"
    default_image: str | None = None
    save_interval: float = SAVE_INTERVAL
    sweep_interval: float = SWEEP_INTERVAL
    storage: LinkedStorage | None = None
    """The storage account linked to the account (``autoStorageContainerName``)."""


class Kind(Enum):
    TASK = "task"
    PREP = "prep"
    RELEASE = "release"
    START = "start"
    """A pool's start task: `InFlight.job_id` and `task_id` are empty."""
    INSTANCE = "instance"
    """A multi-instance task's coordination command on one of its nodes (`instance`)."""


@dataclass(slots=True)
class Deletion:
    """One deletion under way: `done` is set when it ended, `error` what stopped it (the object
    then stays ``deleting``; the next `deletions.delete_pool`/`delete_job`, or the next start,
    resumes it)."""

    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None

    async def wait(self) -> None:
        """Return when the deletion has ended; raise what stopped it. Cancelling the wait
        leaves the deletion going on in the core's task group."""
        await self.done.wait()
        if self.error is not None:
            raise self.error


@dataclass(slots=True)
class InFlight:
    """A process the core started and has not yet seen end."""

    kind: Kind
    node_id: str
    job_id: str = ""
    task_id: str = ""
    instance: int = 0


class Core:
    """The service's state and machinery. Create it, then `service.BatchService.run` it."""

    def __init__(
        self, executor: NodeExecutor, store: Store, clock: Clock, settings: CoreSettings
    ) -> None:
        self.executor = executor
        self.store = store
        self.clock = clock
        self.settings = settings
        self.state = ServiceState()
        self.saved = Tracker()
        """What the store holds of `state` (set by `load`)."""
        self.journal_seq = 0
        self.in_flight: dict[str, InFlight] = {}
        self.greeted: dict[str, int] = {}
        """The boot number of each node's latest hello to this core (not saved)."""
        self.wake = anyio.Event()
        self.dirty = anyio.Event()
        self.persist_lock = anyio.Lock()
        self.job_completed = anyio.Event()
        """Set (and replaced) whenever a job's release tasks have all ended."""
        self._change: anyio.Event | None = None
        """Set at the next change (`changed`) for whoever waits for one (`next_change`); made
        only when someone waits, so that a change nobody waits for costs no allocation."""
        self.uploading: set[str] = set()
        """Keys of exited processes whose output files are being uploaded."""
        self.deletions: dict[str, Deletion] = {}
        """Deletions under way, by ``pool:<id>`` / ``job:<id>`` (see `deletions`)."""
        self.group: anyio.abc.TaskGroup | None = None
        self.leaving: set[str] = set()
        """Nodes whose removal (`pools.settle_leaving`) is under way (not saved)."""
        self.account_url = f"http://localhost/{settings.account_name}"
        self.index = TaskIndex()
        """Tasks holding slots and each job's queue, so a scheduling pass scans neither every
        task nor every job's completed ones."""
        self.heap = Heap()
        """Freezes the long-lived records out of the collector's full passes (`heap`)."""
        self.turns: dict[str, int] = {}
        """The scheduling pass in which each job (by key) last had a task placed (not saved):
        jobs of equal priority take turns (`scheduler`, jobDefaultOrder `none`)."""
        self.passes = 0
        self.joining_until = math.inf
        """When the earliest wait of a fresh allocation's nodes for a sibling ends, a pass being
        due then (`rules.joining`; not saved)."""

    def now(self) -> float:
        return self.clock.now()

    # --- signals -------------------------------------------------------------------------------

    def changed(self) -> None:
        """The state changed: save it soon, and wake those waiting for a change."""
        self.dirty.set()
        self._announce()

    def next_change(self) -> anyio.Event:
        """An event set at the state's next change (a broadcast: every caller until then gets
        the same event, and each change replaces it). Take it before looking at the state and
        wait on it after, so that no change in between is missed."""
        if self._change is None:
            self._change = anyio.Event()
        return self._change

    def _announce(self) -> None:
        if self._change is not None:
            self._change.set()
            self._change = None

    def poke(self) -> None:
        """Something the scheduler cares about changed: run a pass, and save."""
        self.wake.set()
        self.changed()

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        assert self.group is not None, "BatchService.run is not running"
        self.group.start_soon(func, *args)

    async def load(self) -> None:
        """Read the state from the store."""
        self.state = await self.store.load()
        self.saved.prime(self.state)
        self.heap.start()

    async def persist(self) -> None:
        """Write the state's changes now (before acting on a change that must survive a
        crash): the objects changed since the last save (`store.Tracker`), encoded in slices
        of 2 ms, then written in one transaction. The caller changed the state: those waiting
        for a change are woken."""
        self._announce()
        await self._write()

    async def _write(self) -> None:
        async with self.persist_lock:
            self.state.journal_seq = self.journal_seq
            changes = await self.saved.changes(self.state)
            if changes:
                await self.store.write(changes)
                await self.saved.commit(changes)
                if self.heap.added(len(changes.rows)):
                    # A step of its own: not added to the caller's next one.
                    await anyio.lowlevel.checkpoint()
                    self.heap.settle()

    async def journal(self, entry: dict[str, Any]) -> None:
        """Keep `entry` (records about to be acted on) in the store's journal, numbered."""
        self.journal_seq += 1
        await self.store.append({"seq": self.journal_seq, **entry})

    async def saver(self) -> None:
        """Write the state soon after it changes, but never spend more than about a tenth of
        the time on it (a save looks at every object: a large state takes a while)."""
        while True:
            await self.dirty.wait()
            self.dirty = anyio.Event()
            started = time.monotonic()
            await self._write()  # the change was announced when it was marked
            spent = time.monotonic() - started
            interval = self.settings.save_interval
            # An interval of 0 (tests) saves after every change, whatever the time it took.
            await anyio.sleep(max(interval, 10 * spent) if interval > 0 else 0)

    # --- lookups -------------------------------------------------------------------------------

    def pool(self, pool_id: str) -> PoolRecord:
        pool = self.state.pools.get(pool_id.lower())
        if pool is None:
            raise NotFound(f"pool {pool_id} does not exist", code="PoolNotFound")
        return pool

    def job(self, job_id: str) -> JobRecord:
        job = self.state.jobs.get(job_id.lower())
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="JobNotFound")
        return job

    @staticmethod
    def task(job: JobRecord, task_id: str) -> TaskRecord:
        task = job.tasks.get(task_id.lower())
        if task is None:
            raise NotFound(f"task {task_id} does not exist", code="TaskNotFound")
        return task

    def find_node(self, pool_id: str, node_id: str) -> NodeRecord:
        for node in self.pool(pool_id).nodes:
            if node.id == node_id:
                return node
        raise NotFound(f"node {node_id} is not in pool {pool_id}", code="NodeNotFound")

    def node_by_id(self, node_id: str) -> tuple[PoolRecord, NodeRecord] | None:
        for pool in self.state.pools.values():
            for node in pool.nodes:
                if node.id == node_id:
                    return pool, node
        return None

    @staticmethod
    def setup(pool: PoolRecord, node: NodeRecord) -> NodeSetup:
        return NodeSetup(
            pool=pool.spec,
            serial=pool.serial,
            created=pool.created,
            node_id=node.id,
            index=node.index,
        )

    def refresh_busy(self) -> None:
        """Record on each node the tasks running there and the slots they hold, and each ready
        node as `running` while a task holds one of its slots, else `idle` (`offline` with
        its scheduling disabled: `rules.ready_state`). Called where tasks
        start and end, so that reading a node scans nothing."""
        counts, used = self._holdings()
        now = self.now()
        for pool in self.state.pools.values():
            for node in pool.nodes:
                node.running_tasks = counts.get(node.id, 0)
                node.running_task_slots = used.get(node.id, 0)
                if node.state in READY:
                    move(node, rules.ready_state(node, used), now)

    def count_completion(self, task: TaskRecord) -> None:
        """Count `task`, about to be recorded ``completed``, on the node that ran it
        (totalTasksRun, and totalTasksSucceeded when its run succeeded). Call before the move;
        a task already completed is not counted twice."""
        if task.state is TaskState.COMPLETED or task.node_id is None:
            return
        found = self.node_by_id(task.node_id)
        if found is None:
            return
        node = found[1]
        node.total_tasks_run += 1
        node.total_tasks_succeeded += task.run.result is ExecutionResult.SUCCESS

    def used_slots(self) -> dict[str, int]:
        """Task slots in use, by node id."""
        return self._holdings()[1]

    def _holdings(self) -> tuple[dict[str, int], dict[str, int]]:
        """The busy tasks on each node and the slots they hold, by node id: a task holds its
        required slots on its own node and, multi-instance, on each subtask's."""
        counts: dict[str, int] = {}
        used: dict[str, int] = {}
        for task in self.index.busy(self.state):
            slots = task.spec.required_slots
            node_id = task.node_id
            assert node_id is not None
            counts[node_id] = counts.get(node_id, 0) + 1
            used[node_id] = used.get(node_id, 0) + slots
            for instance in task.instances[1:]:
                node_id = instance.node_id
                counts[node_id] = counts.get(node_id, 0) + 1
                used[node_id] = used.get(node_id, 0) + slots
        return counts, used
