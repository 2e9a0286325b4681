"""A core that crashes between any two steps loses nothing and runs nothing twice.

Each case runs a scenario once to count the steps it saves (state writes and journal appends),
then again for every step n: the service is dropped (as a killed process: nothing more is
saved) right after its n-th step, a new service starts on the same store, fake nodes and
clock, and the scenario is finished. Every task must complete exactly once, the pool's start
task and every preparation and release task must have run once per node, and the job must
complete.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    MultiInstanceSettings,
    StartTaskSpec,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import (
    FakeClock,
    FakeExecutor,
    FakeOutcome,
    FakeStart,
    MemoryStore,
)
from tests.core.harness import JOB, job_spec, pool_spec, running_core, tasks

TASKS = 4


def script(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(
        duration=5, appends={"/mnt/batch/tasks/shared/log": f"{start.task_id}\n".encode()}
    )


class CrashingStore(MemoryStore):
    """A memory store that cancels `scope` right after its `limit`-th step (a state write or a
    journal append); after that, nothing more reaches it."""

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit
        self.steps = 0
        self.scope: anyio.CancelScope | None = None

    async def _step(self) -> None:
        if self.limit is not None and self.steps >= self.limit:
            await anyio.sleep_forever()  # dead

    async def _stepped(self) -> None:
        self.steps += 1
        if self.steps == self.limit and self.scope is not None:
            self.scope.cancel()
            # Dead right after the step: the caller does not carry on (a journal append is
            # not followed by the start it records).
            await anyio.sleep_forever()

    async def write(self, document: Any) -> None:
        await self._step()
        await super().write(document)
        await self._stepped()

    async def append(self, entry: Any) -> None:
        await self._step()
        await super().append(entry)
        await self._stepped()


async def _scenario(store: CrashingStore, fake: FakeExecutor) -> bool:
    """Drive the sample's steps; False when the core "crashed" on the way."""
    finished = False
    store.scope = anyio.CancelScope()
    with store.scope:
        async with running_core(fake=fake, store=store) as core:
            service = core.service
            if not [p for p in await service.list_pools() if p.id == "pool"]:
                await service.create_pool(pool_spec(2, start_task=StartTaskSpec("/bin/setup")))
            await core.settle()
            if await service.find_job(JOB) is None:
                await service.create_job(
                    job_spec(
                        JobPreparationTaskSpec("/bin/prep"), JobReleaseTaskSpec("/bin/release")
                    )
                )
            if not await service.list_tasks(JOB):
                await service.add_tasks(JOB, tasks(TASKS))
            for _ in range(10):
                await core.advance(5)
            if (await service.get_job(JOB)).state is JobState.ACTIVE:
                await service.terminate_job(JOB)
            for _ in range(3):
                await core.advance(5)
            finished = True
    return finished


async def _check(fake: FakeExecutor, store: CrashingStore) -> None:
    store.limit = None
    async with running_core(fake=fake, store=store) as core:
        await core.settle()
        for _ in range(3):
            await core.advance(5)
        counts = Counter(start.task_id for start in fake.starts)
        for task in await core.service.list_tasks(JOB):
            assert task.state is TaskState.COMPLETED, task
            assert task.execution_info.result is ExecutionResult.SUCCESS, task
            assert counts[task.id] == 1, counts
            # No node was lost or restarted: the service counts no requeue, whatever instant
            # its scheduler died at (a launch recorded but never sent is sent, not requeued).
            assert task.execution_info.requeue_count == 0, task
        job = await core.service.get_job(JOB)
        assert job.state is JobState.COMPLETED
        # The start task ran once on each node (it has no AZ_BATCH_TASK_ID).
        assert counts[""] == len(fake.nodes) == 2, counts
        statuses = await core.service.list_prep_release_status(JOB)
        assert counts["jobpreparation"] == len(statuses) == counts["jobrelease"]
        for status in statuses:
            assert status.release is not None and status.preparation is not None
        logged: Counter[str] = Counter()
        for node in fake.nodes.values():
            logged.update(node.files.get("/mnt/batch/tasks/shared/log", b"").decode().split())
        assert all(logged[f"task{n:03}"] == 1 for n in range(1, TASKS + 1)), logged


async def _steps_of_a_whole_run() -> int:
    """A dry run: how many steps (state writes and journal appends) the scenario saves."""
    store = CrashingStore(None)
    assert await _scenario(store, FakeExecutor(FakeClock(), script))
    return store.steps


STEPS = anyio.run(_steps_of_a_whole_run)


async def test_the_dry_run_counts_state_writes_and_journal_appends() -> None:
    store = CrashingStore(None)
    assert await _scenario(store, FakeExecutor(FakeClock(), script))
    assert store.appends > 0 and store.writes > 0
    assert store.writes + store.appends == STEPS


@pytest.mark.parametrize("crash_after", range(1, STEPS + 1))
async def test_a_crash_after_any_saved_step_loses_nothing_and_runs_nothing_twice(
    crash_after: int,
) -> None:
    fake = FakeExecutor(FakeClock(), script)
    store = CrashingStore(crash_after)
    # Every point is a step of the dry run, so the core must crash there.
    assert not await _scenario(store, fake), f"no crash after step {crash_after}"
    # The app runs the sample again: it carries on where the crash left it.
    store.limit = None
    assert await _scenario(store, fake)
    await _check(fake, store)


class DiesAfterJournallingTasks(MemoryStore):
    """Dies right after the first journal entry that records task launches (cancelling
    `scope`): nothing more reaches it, and the caller does not carry on."""

    def __init__(self) -> None:
        super().__init__()
        self.scope: anyio.CancelScope | None = None
        self.dead = False

    async def write(self, document: Any) -> None:
        if self.dead:
            await anyio.sleep_forever()
        await super().write(document)

    async def append(self, entry: Any) -> None:
        if self.dead:
            await anyio.sleep_forever()
        await super().append(entry)
        if entry["tasks"] and self.scope is not None:
            self.dead = True
            self.scope.cancel()
            await anyio.sleep_forever()


async def test_a_crash_between_journalling_instances_and_telling_their_nodes_runs_each_once() -> (
    None
):
    # A multi-instance task's coordination commands are journalled together, then sent: the
    # core dies right after the journal append, and the next core sends each instance's
    # launch again (same key), running each coordination command once, counting no requeue.
    fake = FakeExecutor(FakeClock(), lambda start: FakeOutcome(duration=5))
    settings = MultiInstanceSettings(number_of_instances=2, coordination_command_line="coord")
    mpi = TaskSpec(id="mpi", command_line="main", multi_instance=settings)
    store = DiesAfterJournallingTasks()
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_pool(pool_spec(2, enable_inter_node_communication=True))
        await core.service.create_job(job_spec())
        await core.settle()
        store.scope = core.scope
        await core.service.add_tasks(JOB, [mpi])
        await core.settle()
    assert store.entries and not fake.starts, "the core did not die between journal and nodes"
    store.scope, store.dead = None, False
    async with running_core(fake=fake, store=store) as core:
        for _ in range(6):
            await core.advance(5)
        task = await core.task("mpi")
        assert task.state is TaskState.COMPLETED, task
        assert task.execution_info.requeue_count == 0, task
    coordination = [start for start in fake.starts if start.argv[0] == "coord"]
    assert len(coordination) == 2 and len({s.node_id for s in coordination}) == 2
    assert [start.argv[0] for start in fake.starts].count("main") == 1
