"""Delete Pool and Delete Job on the fake executor: ``deleting`` recorded where the deletion
starts (time, previous state, saved), the refusals while it lasts, and a service stopped in the
middle resuming it (batch-semantics.md, "States"; the REST reference's PoolBeingDeleted and
JobBeingDeleted)."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import pytest

from jobprep_release.backends.base import (
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    PoolState,
)
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome, MemoryStore
from jobprep_release.backends.docker.core.deletions import FIRST_RETRY, LONGEST_RETRY
from jobprep_release.backends.docker.core.executor import NodeSetup
from jobprep_release.backends.errors import Conflict, NotFound, ServiceError
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core, tasks

PREP = JobPreparationTaskSpec("/bin/prep")
RELEASE = JobReleaseTaskSpec("/bin/release")


class HeldRemoval(FakeExecutor):
    """The fake executor, with node removal held until `release` is set (a slow engine)."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.release = anyio.Event()
        self.removal_asked = 0

    async def remove_node(self, node: NodeSetup) -> None:
        self.removal_asked += 1
        await self.release.wait()
        await super().remove_node(node)


def at(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


async def test_a_pool_reads_deleting_from_the_delete_call_with_its_history() -> None:
    fake = HeldRemoval()
    async with running_core(fake=fake) as core:
        await core.service.create_pool(pool_spec(2))
        await core.settle()
        before = await core.service.get_pool(POOL)
        core.clock.advance(30)
        await core.service.begin_delete_pool(POOL)
        pool = await core.service.get_pool(POOL)
        assert pool.state is PoolState.DELETING
        assert pool.previous_state is PoolState.ACTIVE
        assert pool.state_transition_time == at(core.clock)
        assert pool.previous_state_transition_time == before.state_transition_time
        assert pool.etag != before.etag
        await core.settle()
        assert fake.removal_asked == 2  # under way on both nodes at once, held by the engine
        # Reads do not change it: two looks, one history.
        assert await core.service.get_pool(POOL) == await core.service.get_pool(POOL)
        with pytest.raises(Conflict) as again:
            await core.service.begin_delete_pool(POOL)
        assert again.value.code == "PoolBeingDeleted"
        with pytest.raises(Conflict) as resize:
            await core.service.resize_pool(POOL, 3)
        assert resize.value.code == "PoolBeingDeleted"
        with pytest.raises(Conflict) as create:
            await core.service.create_pool(pool_spec(1))
        assert create.value.code == "PoolBeingDeleted"
        fake.release.set()
        await core.settle()
        with pytest.raises(NotFound):
            await core.service.get_pool(POOL)
        assert fake.nodes == {}


async def test_a_service_stopped_mid_pool_deletion_finishes_it_when_it_starts_again() -> None:
    fake, store, crash = HeldRemoval(), MemoryStore(), anyio.CancelScope()
    async with running_core(fake=fake, store=store, scope=crash) as core:
        await core.service.create_pool(pool_spec(2))
        await core.settle()
        await core.service.begin_delete_pool(POOL)
        await core.settle()
        assert len(fake.nodes) == 2 and fake.removal_asked == 2
        crash.cancel()
        await anyio.lowlevel.checkpoint()
    fake.release.set()
    async with running_core(fake=fake, store=store) as again:
        # Nobody asks again: the saved "deleting" is enough.
        await again.settle()
        with pytest.raises(NotFound):
            await again.service.get_pool(POOL)
        assert fake.nodes == {}


async def test_a_job_reads_deleting_while_its_release_tasks_run_and_refuses_changes() -> None:
    slow_release = FakeOutcome(duration=60)
    async with running_core(
        lambda s: slow_release if s.task_id == "jobrelease" else FakeOutcome()
    ) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        core.clock.advance(5)
        await core.service.begin_delete_job(JOB)
        job = await core.service.get_job(JOB)
        assert (job.state, job.previous_state) == (JobState.DELETING, JobState.ACTIVE)
        assert job.state_transition_time == at(core.clock)
        assert job.terminate_reason is None
        await core.settle()
        assert len(core.starts_of("jobrelease")) == 1
        assert (await core.service.get_job(JOB)).state is JobState.DELETING
        for refused in (
            core.service.begin_delete_job(JOB),
            core.service.terminate_job(JOB),
            core.service.add_tasks(JOB, tasks(2)[1:]),
            core.service.terminate_task(JOB, "task001"),
            core.service.create_job(job_spec()),
        ):
            with pytest.raises(Conflict) as refusal:
                await refused
            assert refusal.value.code == "JobBeingDeleted"
        await core.advance(60)
        with pytest.raises(NotFound):
            await core.service.get_job(JOB)


async def test_a_service_stopped_mid_job_deletion_finishes_it_when_it_starts_again() -> None:
    slow_release = FakeOutcome(duration=60)
    fake = FakeExecutor(
        FakeClock(), lambda s: slow_release if s.task_id == "jobrelease" else FakeOutcome()
    )
    store, crash = MemoryStore(), anyio.CancelScope()
    async with running_core(fake=fake, store=store, scope=crash) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.begin_delete_job(JOB)
        await core.settle()
        assert len(core.starts_of("jobrelease")) == 1
        crash.cancel()
        await anyio.lowlevel.checkpoint()
    async with running_core(fake=fake, store=store) as again:
        job = await again.service.get_job(JOB)
        assert (job.state, job.previous_state) == (JobState.DELETING, JobState.ACTIVE)
        await again.advance(60)
        with pytest.raises(NotFound):
            await again.service.get_job(JOB)
        node_id = (await again.node_ids())[0]
        assert fake.removed_trees == [(node_id, "/mnt/batch/tasks/workitems/job")]
        # The release task ran once: the resumed deletion took over the one already running.
        assert len(again.starts_of("jobrelease")) == 1


class UnansweredChores(HeldRemoval):
    """A slow engine on which a node being removed answers no chore (the Docker executor then
    waits its chore timeout): `remove_tree` there never returns."""

    def __init__(self) -> None:
        super().__init__()
        self.leaving: set[str] = set()
        self.trees_asked: list[str] = []

    async def remove_node(self, node: NodeSetup) -> None:
        self.leaving.add(node.node_id)
        await super().remove_node(node)

    async def remove_tree(self, node_id: str, path: str) -> None:
        self.trees_asked.append(node_id)
        if node_id in self.leaving:
            await anyio.sleep_forever()
        await super().remove_tree(node_id, path)


async def test_delete_job_then_delete_pool_forgets_the_job_without_touching_leaving_nodes() -> None:
    fake = UnansweredChores()
    fake.outcome = lambda start: FakeOutcome(duration=None if start.task_id[:4] == "task" else 1)
    async with running_core(fake=fake) as core:
        await core.service.create_pool(pool_spec(2))
        await core.settle()
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(2))
        await core.advance(1)
        assert len({start.node_id for start in fake.starts if start.task_id[:4] == "task"}) == 2
        await core.service.begin_delete_job(JOB)
        await core.service.begin_delete_pool(POOL)
        for _ in range(5):  # the release tasks take 1 s
            await core.advance(1)
        assert await core.service.find_job(JOB) is None
        assert fake.trees_asked == []
        assert (await core.service.get_pool(POOL)).state is PoolState.DELETING
        fake.release.set()
        await core.settle()
        with pytest.raises(NotFound):
            await core.service.get_pool(POOL)


class FailingRemoval(FakeExecutor):
    """The fake executor, with the engine refusing the first `failures` pool removals (as the
    Docker engine refuses a volume still in use with 409)."""

    def __init__(self, failures: int) -> None:
        super().__init__(FakeClock())
        self.failures = failures
        self.removals_asked = 0

    async def remove_pool(self, pool_id: str) -> None:
        self.removals_asked += 1
        if self.removals_asked <= self.failures:
            raise ServiceError("remove volume: Docker engine answered 409: volume is in use")
        await super().remove_pool(pool_id)


async def test_a_failed_pool_deletion_is_retried_with_a_growing_delay() -> None:
    fake = FailingRemoval(failures=2)
    async with running_core(fake=fake) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        with pytest.raises(ServiceError):
            await core.service.delete_pool(POOL)  # the caller hears of the first failure
        assert (await core.service.get_pool(POOL)).state is PoolState.DELETING
        await core.advance(FIRST_RETRY - 1)
        assert fake.removals_asked == 1
        await core.advance(1)  # first retry, after FIRST_RETRY: fails again
        assert fake.removals_asked == 2
        assert (await core.service.get_pool(POOL)).state is PoolState.DELETING
        await core.advance(FIRST_RETRY)  # the next one waits twice as long
        assert fake.removals_asked == 2
        await core.advance(FIRST_RETRY)
        assert fake.removals_asked == 3
        with pytest.raises(NotFound):
            await core.service.get_pool(POOL)


async def test_pool_deletion_retries_wait_at_most_the_longest_delay() -> None:
    fake = FailingRemoval(failures=12)
    async with running_core(fake=fake) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        await core.service.begin_delete_pool(POOL)
        await core.settle()
        asked, waited = [fake.removals_asked], 0.0
        while fake.removals_asked <= 12:
            await core.advance(5)
            waited += 5
            if fake.removals_asked != asked[-1]:
                asked.append(fake.removals_asked)
                assert waited <= LONGEST_RETRY
                waited = 0.0
        with pytest.raises(NotFound):
            await core.service.get_pool(POOL)
