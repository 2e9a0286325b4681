"""Delete Pool and Delete Job, as the service carries them out: the object is recorded
``deleting`` (with its transition time and previous state, saved) where the deletion starts, the
work goes on in the core's own task group, and the object is forgotten when it is done.

Delete Job on an active job ends its running tasks and runs its release tasks (batch-semantics.md,
"States"), on a terminating one waits for them, the job staying ``deleting`` throughout; then its
files are removed from every node it used. Delete Pool removes the pool's nodes, and is tried
again while the service runs when that fails (`FIRST_RETRY`). A service that stops in the
middle of either resumes it when it starts again (`resume`), from the recorded state: every
step is safe to do twice. While an object is ``deleting``, what would change it is
refused with 409 ``PoolBeingDeleted`` / ``JobBeingDeleted`` (`rules.refuse_if_deleting`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import structlog

from jobprep_release.backends.base import RELEASE_MAX_WALL_CLOCK, JobState, NodeState, PoolState
from jobprep_release.backends.docker.core import environment, jobs, pools, processes, rules
from jobprep_release.backends.docker.core.kernel import Core, Deletion
from jobprep_release.backends.docker.core.records import JobRecord, NodeRecord, PoolRecord, move

log = structlog.get_logger("jobprep_release.docker")


# --- starting ----------------------------------------------------------------------------------


async def begin_delete_pool(core: Core, pool_id: str) -> Deletion:
    """Record the pool ``deleting`` (saved) and start removing it; `PoolBeingDeleted` when it
    already is, `NotFound` when absent."""
    await pools.adopt(core, pool_id)
    pool = core.pool(pool_id)
    rules.refuse_if_deleting(pool)
    move(pool, PoolState.DELETING, core.now())
    await core.persist()
    return _start_pool(core, pool)


async def begin_delete_job(core: Core, job_id: str) -> Deletion:
    """Record the job ``deleting`` (saved) and start deleting it; `JobBeingDeleted` when it
    already is, `NotFound` when absent."""
    job = core.job(job_id)
    rules.refuse_if_deleting(job)
    move(job, JobState.DELETING, core.now())
    await core.persist()
    return _start_job(core, job)


async def start_delete_pool(core: Core, pool_id: str) -> Deletion:
    """Begin deleting the pool, or find its deletion under way (resumed if it had stopped)."""
    await pools.adopt(core, pool_id)
    pool = core.pool(pool_id)
    if pool.state is PoolState.DELETING:
        return _start_pool(core, pool)
    return await begin_delete_pool(core, pool_id)


async def start_delete_job(core: Core, job_id: str) -> Deletion:
    """Begin deleting the job, or find its deletion under way (resumed if it had stopped)."""
    job = core.job(job_id)
    if job.state is JobState.DELETING:
        return _start_job(core, job)
    return await begin_delete_job(core, job_id)


async def delete_pool(core: Core, pool_id: str) -> None:
    """Delete the pool (or carry on deleting it) and return when it is gone."""
    await (await start_delete_pool(core, pool_id)).wait()


async def delete_job(core: Core, job_id: str) -> None:
    """Delete the job (or carry on deleting it) and return when it is gone."""
    await (await start_delete_job(core, job_id)).wait()


def resume(core: Core) -> None:
    """Carry on with the deletions a stopped service had started (at start)."""
    for job in list(core.state.jobs.values()):
        if job.state is JobState.DELETING:
            _start_job(core, job)
    for pool in list(core.state.pools.values()):
        if pool.state is PoolState.DELETING:
            _start_pool(core, pool)


FIRST_RETRY = 5.0
LONGEST_RETRY = 300.0
"""A failed pool deletion is tried again after `FIRST_RETRY` seconds of the core's clock, then
after twice as long each time, at most `LONGEST_RETRY` apart, while the service runs (and on
its next start, as any deletion under way)."""


def _start_pool(core: Core, pool: PoolRecord, retry_in: float = FIRST_RETRY) -> Deletion:
    return _start(
        core,
        f"pool:{pool.spec.id.lower()}",
        lambda: _delete_pool(core, pool),
        lambda: core.spawn(_retry_pool, core, pool, retry_in),
    )


async def _retry_pool(core: Core, pool: PoolRecord, delay: float) -> None:
    """After `delay`, delete the pool again unless it is gone or its deletion was restarted
    (Delete Pool asked again) meanwhile."""
    await core.clock.sleep(delay)
    key = f"pool:{pool.spec.id.lower()}"
    current = core.state.pools.get(pool.spec.id.lower())
    if current is not pool or pool.state is not PoolState.DELETING or key in core.deletions:
        return
    log.info("retrying a pool deletion", pool=pool.spec.id, after_seconds=delay)
    _start_pool(core, pool, min(delay * 2, LONGEST_RETRY))


def _start_job(core: Core, job: JobRecord) -> Deletion:
    return _start(core, f"job:{job.spec.id.lower()}", lambda: _delete_job(core, job))


def _start(
    core: Core,
    key: str,
    work: Callable[[], Awaitable[None]],
    on_failure: Callable[[], None] | None = None,
) -> Deletion:
    """Run `work` in the core's task group as the deletion under `key` (or find it running);
    `on_failure` is called once it failed (its waiters told first)."""
    running = core.deletions.get(key)
    if running is not None:
        return running
    deletion = core.deletions[key] = Deletion()

    async def run() -> None:
        try:
            await work()
        except Exception as exc:
            deletion.error = exc
            then = "retried" if on_failure is not None else "resumed on the next start"
            log.warning(f"deletion failed; it is {then}", what=key, error=exc)
        else:
            log.info("deleted", what=key)
        finally:
            core.deletions.pop(key, None)
            deletion.done.set()
        if deletion.error is not None and on_failure is not None:
            on_failure()

    core.spawn(run)
    return deletion


def _keeps_files(core: Core, node_id: str) -> bool:
    """Whether the node will still hold files: not gone, not leaving the pool, and not in a
    pool being deleted (its disk goes with it; a chore sent there would wait for an answer that
    never comes)."""
    found = core.node_by_id(node_id)
    if found is None:
        return False
    pool, node = found
    return pool.state is not PoolState.DELETING and node.state is not NodeState.LEAVING_POOL


# --- the work ----------------------------------------------------------------------------------


async def _delete_pool(core: Core, pool: PoolRecord) -> None:
    # The nodes go at once (each removal is a few engine calls that wait on the engine); one
    # that fails does not stop the others, and the first failure is raised once all are done.
    failures: list[Exception] = []

    async def remove(node: NodeRecord) -> None:
        try:
            await pools.remove_node(core, pool, node)
        except Exception as exc:
            failures.append(exc)

    async with anyio.create_task_group() as group:
        for node in list(pool.nodes):
            group.start_soon(remove, node)
    if failures:
        raise failures[0]
    await core.executor.remove_pool(pool.spec.id)
    if core.state.pools.get(pool.spec.id.lower()) is pool:
        del core.state.pools[pool.spec.id.lower()]
    await core.persist()
    log.info("pool deleted", pool=pool.spec.id)


async def _delete_job(core: Core, job: JobRecord) -> None:
    # Ends what still runs and starts the release tasks that are due; done again on a resumed
    # deletion, it finds nothing left to do but what a stop interrupted.
    await jobs.end_work(core, job)
    with anyio.fail_after(RELEASE_MAX_WALL_CLOCK.total_seconds() + 60):
        while jobs.releases_running(job):
            await core.job_completed.wait()
    # The nodes' job directories go at once: each is a round trip to that node's agent.
    async with anyio.create_task_group() as group:
        for node_id, record in job.nodes.items():
            if record.has_files and _keeps_files(core, node_id):
                group.start_soon(
                    processes.remove_tree, core, node_id, environment.job_dir(job.spec.id)
                )
    if core.state.jobs.get(job.spec.id.lower()) is job:
        del core.state.jobs[job.spec.id.lower()]
        core.turns.pop(job.spec.id.lower(), None)
    await core.persist()
