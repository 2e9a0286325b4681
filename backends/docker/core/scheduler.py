"""The scheduler: which task runs on which node, and when a job's preparation task runs first.

As the service does it (batch-semantics.md, "Slots and placement", "Job preparation task"):
jobs by priority, then, among jobs of equal priority on a pool, a task from each in turn (the
pool's jobDefaultOrder `none`, the default) or in the order they were created (`creationtime`),
each up to its maxParallelTasks, tasks in
the order they were added once their dependencies are met, on usable nodes with
enough free slots for the task's `requiredSlots`, by the pool's fill type (pack: the fullest
node first; spread: the emptiest); a job's preparation task runs on a node before the job's
first task there, and again after a reboot when asked to; with waitForSuccess the task waits
(`preparing`) for it. A terminating job's release task that was lost with its node (a reboot)
runs again once the node is back. A node whose preparation failed for good takes no more of
that job. A job of higher priority that finds no room requeues running tasks of jobs that
allow preemption (`preempt`).
The sweeper removes task directories whose retention time has passed, and terminates jobs past
their maxWallClockTime.
"""

from __future__ import annotations

import math

import anyio

from jobprep_release.backends.base import (
    DEFAULT_RETENTION,
    JobState,
    PoolState,
    TaskState,
)
from jobprep_release.backends.docker.core import (
    environment,
    jobs,
    multiinstance,
    outcomes,
    pools,
    processes,
    rules,
)
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.pace import Pace
from jobprep_release.backends.docker.core.records import (
    Execution,
    JobNodeRecord,
    JobRecord,
    NodeRecord,
    PoolRecord,
    TaskRecord,
    move,
)


async def run(core: Core) -> None:
    """Schedule whenever something changed, until cancelled."""
    while True:
        await core.wake.wait()
        core.wake = anyio.Event()
        await schedule_pass(core)


async def schedule_pass(core: Core) -> None:
    used = core.used_slots()
    pending: list[processes.Pending] = []
    waiting: list[tuple[JobRecord, TaskRecord]] = []
    # Higher priority first (REST BatchJob priority); jobs of equal priority on a pool whose
    # taskSchedulingPolicy.jobDefaultOrder is `creationtime` in the order they were created,
    # otherwise (`none`, the default: "tasks should be scheduled uniformly from all
    # equal-priority jobs for the pool") a task from each in turn.
    cursors: list[_Cursor] = []
    for job in sorted(core.state.jobs.values(), key=lambda j: (-j.spec.priority, j.created)):
        pool = core.state.pools.get(job.spec.pool_id.lower())
        if job.state is JobState.TERMINATING and pool is not None:
            pending += pending_releases(core, job, pool)
        if job.state is not JobState.ACTIVE or pool is None:
            continue
        if pool.state is not PoolState.ACTIVE:
            continue
        cursors.append(_Cursor(core, job, pool, used, pending, waiting))
    core.passes += 1
    for group in _turns(cursors):
        # The job whose tasks were placed longest ago goes first: over passes, each takes turns.
        taking = sorted(group, key=lambda cursor: core.turns.get(cursor.job.spec.id.lower(), -1))
        while taking:
            taking = [cursor for cursor in taking if cursor.place_one()]
    core.refresh_busy()
    await processes.start_all(core, pending)
    pools.settle_leaving(core)
    if waiting and await preempt(core, waiting, used):
        core.poke()


def _turns(cursors: list[_Cursor]) -> list[list[_Cursor]]:
    """The cursors (in priority, then creation order) as groups that take turns: the jobs of
    one priority on one pool whose jobDefaultOrder is not `creationtime` form one group, each
    other job a group of its own."""
    groups: list[list[_Cursor]] = []
    shared: dict[tuple[int, str], list[_Cursor]] = {}
    for cursor in cursors:
        if cursor.pool.spec.job_default_order == "creationtime":
            groups.append([cursor])
            continue
        key = (cursor.job.spec.priority, cursor.pool.spec.id.lower())
        group = shared.get(key)
        if group is None:
            group = shared[key] = []
            groups.append(group)
        group.append(cursor)
    return groups


async def _wake_at(core: Core, until: float) -> None:
    """A pass at `until`, when nodes stop waiting for a sibling that did not boot."""
    await core.clock.sleep(until - core.now())
    if core.joining_until == until:
        core.joining_until = math.inf
    core.wake.set()


class _Cursor:
    """A job's tasks in the order they were added, from the first that may be active
    (`index.TaskIndex.queue`), placed one at a time until no node has room left or the job
    runs as many tasks as its maxParallelTasks allows."""

    def __init__(
        self,
        core: Core,
        job: JobRecord,
        pool: PoolRecord,
        used: dict[str, int],
        pending: list[processes.Pending],
        waiting: list[tuple[JobRecord, TaskRecord]],
    ) -> None:
        self.core, self.job, self.pool = core, job, pool
        self.used, self.pending, self.waiting = used, pending, waiting
        self.room = rules.parallel_room(job)
        self.joining, until = rules.joining(pool, core.now())
        if until < core.joining_until:
            core.joining_until = until
            core.spawn(_wake_at, core, until)
        self.queue = iter(core.index.queue(core.state, job))

    def place_one(self) -> bool:
        """Place the job's next task that can run; False once the job can place no more."""
        core, job, pool, used = self.core, self.job, self.pool, self.used
        if self.room <= 0:
            return False
        for task in self.queue:
            if task.state is not TaskState.ACTIVE or not rules.dependencies_met(job, task):
                continue
            if not rules.has_room(pool, used, self.joining):
                if not self.joining:  # nodes about to join make room: preempt nothing yet
                    self.waiting.append((job, task))  # the first of the job's tasks left waiting
                return False
            if task.spec.multi_instance is not None:
                placed = multiinstance.place(core, job, pool, task, used)
                if not placed:
                    continue
                self.pending += placed
            else:
                node = rules.pick_node(pool, job, task, used, self.joining)
                if node is None:
                    continue
                used[node.id] = used.get(node.id, 0) + task.spec.required_slots
                self.pending += assign(core, job, task, node)
            self.room -= 1
            core.turns[job.spec.id.lower()] = core.passes
            return True
        return False


async def preempt(
    core: Core, waiting: list[tuple[JobRecord, TaskRecord]], used: dict[str, int]
) -> bool:
    """Requeue running tasks of lower-priority jobs that allow it (REST BatchJob
    allowTaskPreemption: "other high priority jobs ... will be able requeue tasks from this
    job") to make room for waiting tasks of higher priority on the same pool; the next pass
    places them, higher priority first. Whether any task was requeued."""
    freed = False
    victims = sorted(
        (
            (job, task)
            for job in core.state.jobs.values()
            if job.spec.allow_task_preemption
            for task in job.tasks.values()
            if task.state is TaskState.RUNNING and task.node_id is not None
        ),
        key=lambda item: (item[0].spec.priority, -item[1].seq),
    )
    taken: set[int] = set()
    slots_of = {key: pool.spec.task_slots_per_node for key, pool in core.state.pools.items()}
    for job, task in waiting:
        pool_key = job.spec.pool_id.lower()
        for index, (victim_job, victim) in enumerate(victims):
            if index in taken or victim_job.spec.pool_id.lower() != pool_key:
                continue
            if victim_job.spec.priority >= job.spec.priority:
                continue
            assert victim.node_id is not None
            found = core.node_by_id(victim.node_id)
            if found is None or not rules.schedulable(found[1]):
                continue  # freeing a node that takes no tasks helps nobody
            free = slots_of.get(pool_key, 1) - used.get(victim.node_id, 0)
            if free + victim.spec.required_slots < task.spec.required_slots:
                continue
            taken.add(index)
            used[victim.node_id] = used.get(victim.node_id, 0) - victim.spec.required_slots
            await processes.stop(core, victim.run.key)
            outcomes.requeue(core, victim, core.now())
            freed = True
            break
    return freed


def pending_releases(core: Core, job: JobRecord, pool: PoolRecord) -> list[processes.Pending]:
    """Release tasks whose process was lost with their node (a reboot, say), on nodes that are
    back: the service runs them again, and the job completes only after them."""
    usable = {node.id for node in pool.nodes if node.state in rules.USABLE}
    return [
        processes.prepare_release(core, job, node_id)
        for node_id, record in job.nodes.items()
        if node_id in usable
        and record.release is not None
        and not record.release.completed
        and record.release.key is None
    ]


def assign(
    core: Core, job: JobRecord, task: TaskRecord, node: NodeRecord
) -> list[processes.Pending]:
    """Place `task` on `node`: its process, or first the job's preparation task there."""
    record = job.nodes.setdefault(node.id, JobNodeRecord())
    task.node_id = node.id
    prep = job.spec.preparation
    if prep is not None and rules.prep_needed(
        record, node, prep.rerun_on_node_reboot_after_success
    ):
        pending = []
        if record.prep is None or record.prep.completed:
            requeues = record.prep.requeue_count if record.prep else 0
            record.prep = Execution(requeue_count=requeues)
            pending.append(processes.prepare_prep(core, job, node.id, node.boot))
        if prep.wait_for_success:
            move(task, TaskState.PREPARING, core.now())
            core.index.placed(task)
            return pending
        return [*pending, processes.prepare_task(core, job, task, node.id)]
    return [processes.prepare_task(core, job, task, node.id)]


async def sweep(core: Core) -> None:
    """Remove task directories whose retention time has passed, and terminate jobs past their
    maxWallClockTime (`jobs.expire_jobs`), until cancelled."""
    while True:
        await core.clock.sleep(core.settings.sweep_interval)
        await jobs.expire_jobs(core)
        pools.check_resize_deadlines(core)
        now = core.now()
        pace = Pace()
        for job in list(core.state.jobs.values()):
            for task in list(job.tasks.values()):
                # A clock read per task, not a coroutine: in asyncio's debug mode (the bench's
                # stall check) a coroutine a task made a pass at 10,000 tasks 30 ms, not 1.4.
                if pace.due():
                    await pace.pause()
                if task.state is not TaskState.COMPLETED or task.files_removed:
                    continue
                retention = task.spec.constraints.retention_time or DEFAULT_RETENTION
                ended = task.run.end_time
                if task.node_id and ended and ended + retention.total_seconds() <= now:
                    task.files_removed = True
                    directory = environment.task_dir(job.spec.id, task.spec.id)
                    if core.node_by_id(task.node_id) is not None:
                        await processes.remove_tree(core, task.node_id, directory)
                    core.changed()
        pools.settle_leaving(core)  # nodes leaving once their tasks' files are gone
