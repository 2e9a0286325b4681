"""A save writes what changed, not the state: one row per object, and a change to one task of
10,000 writes that task's row; the state database grows linearly with the tasks it holds (on
the fake executor: the in-memory store's rows, and the file store over a temporary
directory)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import anyio
import anyio.lowlevel

from jobprep_release.backends.base import TaskConstraints, TaskState
from jobprep_release.backends.docker.core import BatchService, FakeClock, FakeExecutor, StateStore
from jobprep_release.backends.docker.core.store import Tracker
from tests.core.harness import (
    JOB,
    SETTINGS,
    Core,
    all_blocked,
    job_spec,
    pool_spec,
    running_core,
    tasks,
)

MANY = 10_000


async def _many_waiting_tasks(core: Core) -> None:
    """A job of `MANY` tasks on a pool of no node: they wait (active), as a large job's queue
    does; added 100 a call (Add Task Collection's limit), each call's save writing its 100
    tasks (and the job's row at most)."""
    await core.service.create_pool(pool_spec(0))
    await core.service.create_job(job_spec())
    specs = tasks(MANY)
    for first in range(0, MANY, 100):
        await core.service.add_tasks(JOB, specs[first : first + 100])
        assert core.store.written <= 100 + 2, core.store.written


async def test_a_save_after_one_task_of_10000_changed_writes_its_row_only() -> None:
    async with running_core() as core:
        service = core.service
        await _many_waiting_tasks(core)
        await core.settle()
        rows = core.store.rows
        assert sum(kind == "task" for kind, _, _ in rows) == MANY
        before = dict(rows)

        await service.update_task(JOB, "task042", TaskConstraints(max_task_retry_count=3))
        await core.settle()

        changed = {key for key, text in rows.items() if before.get(key) != text}
        assert changed == {("task", JOB, "task042")}, changed
        assert core.store.written == 1, core.store.written

        # Deleting a job deletes its rows and its tasks'.
        await service.delete_job(JOB)
        await core.settle()
        assert not [key for key in rows if key[0] in ("job", "task")]


async def test_a_save_of_10000_changed_tasks_lets_the_loop_run_between_slices() -> None:
    # The first save of 10,000 tasks encodes them all: in slices, another task runs between.
    async with running_core() as core:
        await _many_waiting_tasks(core)
        state = core.service._core.state  # the core's state, saved afresh by a new tracker
        ran = 0

        async def ticker() -> None:
            nonlocal ran
            while True:
                ran += 1
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            await anyio.lowlevel.checkpoint()
            before = ran
            changes = await Tracker().changes(state)
            during = ran - before
            group.cancel_scope.cancel()
        assert sum(kind == "task" for kind, _, _ in changes.rows) == MANY
        assert during >= 2, during


async def _database_size(directory: Path, count: int) -> tuple[int, int]:
    """Bytes of the state database after `count` tasks completed on 4 nodes x 4 slots: its
    file's, and its content's (the file a copy without free space would take: the pages freed
    by rewritten rows depend on how the saves fell, which depends on timing)."""
    kept = StateStore(directory, "engine")
    clock = FakeClock()
    fake = FakeExecutor(clock)
    async with anyio.create_task_group() as group:
        service = BatchService(fake, kept, SETTINGS, clock)
        await group.start(service.run)
        await service.create_pool(pool_spec(4, task_slots_per_node=4))
        await service.create_job(job_spec())
        specs = tasks(count)
        for first in range(0, count, 100):
            await service.add_tasks(JOB, specs[first : first + 100])
        with anyio.fail_after(300):  # the file store writes in a worker thread: real time
            while (await service.get_task_counts(JOB)).completed < count:
                await all_blocked()
                clock.advance(1)
                await anyio.sleep(0.001)
        assert all(t.state is TaskState.COMPLETED for t in await service.list_tasks(JOB))
        await service.close()
        group.cancel_scope.cancel()
    assert not await kept.journal()
    kept.release()  # the database closed: its WAL is folded into it
    # A new service on the same database sees every task, completed.
    again = StateStore(directory, "engine").load_now()
    assert [t.state for t in again.jobs[JOB].tasks.values()] == [TaskState.COMPLETED] * count
    compact = directory / "compact.sqlite"
    with closing(sqlite3.connect(kept.path)) as database:
        database.execute("VACUUM INTO ?", (str(compact),))
    return kept.path.stat().st_size, compact.stat().st_size


async def test_the_state_database_grows_linearly_with_the_tasks(tmp_path: Path) -> None:
    measured = {n: await _database_size(tmp_path / str(n), n) for n in (1_000, 2_000, 4_000)}
    sizes = {n: content for n, (_, content) in measured.items()}
    first = (sizes[2_000] - sizes[1_000]) / 1_000
    second = (sizes[4_000] - sizes[2_000]) / 2_000
    print(f"state database (file, content): {measured}; {first:.0f} then {second:.0f} bytes a task")
    assert first > 0 and abs(second - first) <= 0.05 * first, (first, second, measured)
    # The free space left by rewritten rows stays a fraction of the content.
    assert all(file <= 1.5 * content for file, content in measured.values()), measured
