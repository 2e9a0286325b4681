"""Waits that end at a change: the core announces each change of its state (`next_change`), the
docker backend's `wait_for_change` returns on one (not before its gap, not after its bound),
and the sample's flow, waiting through it, ends its waits at the changes it waits for rather
than at the next poll, on the fake executor (no engine)."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc

from jobprep_release.backends.base import JobSpec
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.docker.backend import CHANGE_BURST, CHANGE_GAP
from jobprep_release.backends.docker.core import (
    BatchService,
    FakeClock,
    FakeExecutor,
    FakeOutcome,
    FakeStart,
    MemoryStore,
)
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.core.harness import (
    JOB,
    POOL,
    SETTINGS,
    all_blocked,
    job_spec,
    pool_spec,
    running_core,
    tasks,
)

TASK_SECONDS = 10.0
"""How long each fake process runs, in the fake clock's seconds (it moves only when told)."""
LONG = 30.0
"""A poll interval no wait of these tests may reach: the old flow slept it between polls."""


def lasting(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(duration=TASK_SECONDS)


async def test_a_task_ending_sets_the_change_event_taken_before_it() -> None:
    async with running_core(lasting) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        change = core.service.next_change()
        await core.settle()
        assert not change.is_set(), "nothing changed while the clock stood still"
        await core.advance(TASK_SECONDS)
        assert change.is_set()
        assert (await core.task("task001")).state.value == "completed"
        assert core.service.next_change() is not change, "each change replaces the event"


async def test_waiters_taking_the_event_between_two_changes_share_it() -> None:
    async with running_core(lasting) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        first = core.service.next_change()
        assert core.service.next_change() is first
        await core.service.create_job(job_spec())
        assert first.is_set()


class FakeNodesBackend(DockerBackend):
    """`DockerBackend` over the fake executor, a fake clock and a memory store: no engine."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(DockerSettings(state_dir=Path("/nonexistent")), lazy=False)
        self.clock = clock

    async def __aenter__(self) -> FakeNodesBackend:
        self._service = BatchService(
            FakeExecutor(self.clock, lasting), MemoryStore(), SETTINGS, self.clock
        )
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        await self._group.start(self._service.run)
        return self


@asynccontextmanager
async def fake_backend() -> AsyncIterator[FakeNodesBackend]:
    async with FakeNodesBackend(FakeClock()) as backend:
        yield backend


async def test_wait_for_change_returns_at_a_change_well_before_its_bound() -> None:
    async with fake_backend() as backend:
        await backend.create_pool(pool_spec(1))
        await backend.create_job(job_spec())
        await backend.add_tasks(JOB, tasks(1))
        # The nodes start and the task runs on the fake clock; it ends when the clock moves.
        for _ in range(3):
            await all_blocked()  # the task's start is recorded: nothing more happens
        assert (await backend.get_task_counts(JOB)).running == 1
        ended: list[float] = []

        async def wait() -> None:
            await backend.wait_for_change(LONG)
            ended.append(time.monotonic())

        with anyio.fail_after(LONG / 2):
            async with anyio.create_task_group() as group:
                group.start_soon(wait)
                await anyio.sleep(2 * CHANGE_GAP)
                assert not ended, "returned with no change"
                changed = time.monotonic()
                backend.clock.advance(TASK_SECONDS)
        assert (await backend.get_task_counts(JOB)).completed == 1
        # Generous: the loop only has to run the core's step that ended the task.
        assert ended[0] - changed < 2.0


async def test_wait_for_change_returns_at_its_bound_when_nothing_changes() -> None:
    async with fake_backend() as backend:
        await backend.create_pool(pool_spec(1))
        for _ in range(3):
            await all_blocked()  # the nodes are up: the fake clock stands still from here
        started = time.monotonic()
        await backend.wait_for_change(0.2)
        assert 0.2 <= time.monotonic() - started < LONG / 2


async def test_wait_for_change_returns_no_more_often_than_its_bound_while_changes_stream() -> None:
    """At scale the state changes every few milliseconds: a poller woken at each change would
    spin; past a burst of `CHANGE_BURST`, the waits return once per `CHANGE_GAP` at most:
    `2 x CHANGE_BURST` returns in a row span `CHANGE_BURST` gaps at least."""
    async with fake_backend() as backend:
        await backend.create_pool(pool_spec(1))

        async def changes() -> None:
            for number in range(10_000):
                await backend.create_job(JobSpec(id=f"job{number}", pool_id=POOL))  # a change
                await anyio.sleep(0.001)

        returns: list[float] = []
        with anyio.fail_after(LONG / 2):
            async with anyio.create_task_group() as group:
                group.start_soon(changes)
                for _ in range(4 * CHANGE_BURST):
                    await backend.wait_for_change(LONG)
                    returns.append(time.monotonic())
                group.cancel_scope.cancel()
        spans = [b - a for a, b in zip(returns, returns[2 * CHANGE_BURST :], strict=False)]
        # The loop's timers may fire up to a millisecond early.
        assert min(spans) >= CHANGE_BURST * CHANGE_GAP - 0.001, spans


async def test_the_sample_flow_ends_its_waits_at_changes_not_at_its_poll_interval() -> None:
    """Every wait of the flow (tasks, nodes, the job's release tasks) on a poll interval of
    30 s: the run ends within seconds only if each wait ends at the change it waits for."""
    options = SampleOptions(pool_id=POOL, job_id=JOB, node_count=2, task_count=8)
    out = io.StringIO()
    async with fake_backend() as backend:
        backend.poll_interval = LONG

        async def time_passes() -> None:
            while True:
                await anyio.sleep(0.02)
                backend.clock.advance(TASK_SECONDS)

        with anyio.fail_after(LONG / 3):
            async with anyio.create_task_group() as group:
                group.start_soon(time_passes)
                outcome = await run_sample(backend, Console(Answer.YES, out=out), options)
                group.cancel_scope.cancel()
    assert outcome.succeeded and outcome.job_deleted and outcome.pool_deleted
    assert "All tasks completed." in out.getvalue()
    assert outcome.job is not None and outcome.job.state.value == "completed"
