"""A Batch core on the fake executor, a fake clock and an in-memory store, for fast tests.

`running_core` starts the service in a task group and yields a `Core` handle; `settle` lets the
event loop run until every task waits (no sleeping), `advance` moves the fake clock and settles.
`crash` drops the service as a killed process would (nothing more is saved), and `restart`
starts a new one on the same store, fake nodes and clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from jobprep_release.backends.base import (
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    PoolSpec,
    Task,
    TaskSpec,
)
from jobprep_release.backends.docker.core import (
    BatchService,
    CoreSettings,
    FakeClock,
    FakeExecutor,
    FakeOutcome,
    FakeStart,
    MemoryStore,
)

SETTINGS = CoreSettings(account_name="testbatch", save_interval=0.0, sweep_interval=60.0)
POOL = "pool"
JOB = "job"


async def all_blocked(limit: int = 100_000) -> None:
    """Return once every other task waits on something (as anyio's
    `wait_all_tasks_blocked`, without its 0.1 s sleeps between looks)."""
    this = asyncio.current_task()
    for _ in range(limit):
        waiting = [task for task in asyncio.all_tasks() if task is not this and not _blocked(task)]
        if not waiting:
            return
        await asyncio.sleep(0)
    raise AssertionError("the event loop never settled")


def _blocked(task: asyncio.Task[Any]) -> bool:
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is not None and not waiter.done()


@dataclass
class Core:
    """One running service and the fakes under it."""

    service: BatchService
    fake: FakeExecutor
    clock: FakeClock
    store: MemoryStore
    group: anyio.abc.TaskGroup
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    async def settle(self, rounds: int = 3) -> None:
        """Let everything runnable run (the loop only; no time passes, nothing sleeps)."""
        for _ in range(rounds):
            await all_blocked()

    async def advance(self, seconds: float) -> None:
        """Move the fake clock, letting what becomes due happen at each step."""
        await self.settle()
        self.clock.advance(seconds)
        await self.settle()

    async def task(self, task_id: str, job_id: str = JOB) -> Task:
        return await self.service.get_task(job_id, task_id)

    def starts_of(self, task_id: str) -> list[FakeStart]:
        return [start for start in self.fake.starts if start.task_id == task_id]

    async def node_ids(self, pool_id: str = POOL) -> list[str]:
        return [node.id for node in await self.service.list_nodes(pool_id)]


def started_service(fake: FakeExecutor, store: MemoryStore, clock: FakeClock) -> BatchService:
    return BatchService(fake, store, SETTINGS, clock)


@asynccontextmanager
async def running_core(
    outcome: Callable[[FakeStart], FakeOutcome] | None = None,
    *,
    fake: FakeExecutor | None = None,
    store: MemoryStore | None = None,
    scope: anyio.CancelScope | None = None,
) -> AsyncIterator[Core]:
    """A running service over a fake executor (a new one unless given) and its clock.
    Cancelling `scope` drops the service and leaves the block, as a crash would."""
    if fake is None:
        fake = FakeExecutor(FakeClock())
        if outcome is not None:
            fake.outcome = outcome
    clock = fake.clock
    assert isinstance(clock, FakeClock)
    store = store or MemoryStore()
    async with anyio.create_task_group() as group:
        service = BatchService(fake, store, SETTINGS, clock)
        core = Core(service, fake, clock, store, group, scope or anyio.CancelScope())
        with core.scope:
            await group.start(service.run)
            await core.settle()
            yield core
        group.cancel_scope.cancel()


def pool_spec(nodes: int = 2, **changes: object) -> PoolSpec:
    options: dict[str, Any] = {"image": "fake", **changes}
    return PoolSpec(id=POOL, target_dedicated_nodes=nodes, **options)


def job_spec(
    prep: JobPreparationTaskSpec | None = None,
    release: JobReleaseTaskSpec | None = None,
    **changes: object,
) -> JobSpec:
    return JobSpec(id=JOB, pool_id=POOL, preparation=prep, release=release, **changes)  # type: ignore[arg-type]


def tasks(count: int, **changes: object) -> list[TaskSpec]:
    return [
        TaskSpec(id=f"task{n:03}", command_line=f"/bin/work {n}", **changes)  # type: ignore[arg-type]
        for n in range(1, count + 1)
    ]


@dataclass
class FakeEndpoint:
    """The REST endpoint over the fake executor, and azure-batch's client signed in to it."""

    batch: Any
    executor: FakeExecutor
    clock: FakeClock
    url: str


@asynccontextmanager
async def fake_endpoint(
    key: str, pool: dict[str, Any], *, hold_creation: bool = False
) -> AsyncIterator[FakeEndpoint]:
    """The endpoint (account ``fakebatch``, `key`) over a fresh fake executor and clock, with
    the pool `pool` (Add Pool's body) added (its nodes kept ``creating`` with
    `hold_creation`)."""
    from azure.batch.aio import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint
    from tests.endpoint.support import call

    clock = FakeClock()
    executor = FakeExecutor(clock)
    executor.hold_creation = hold_creation
    settings = EndpointSettings(
        account="fakebatch", key=key, port=0, executor=executor, clock=clock
    )
    async with running_endpoint(settings) as running:
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential, retry_total=0) as batch:
            assert (await call(batch, "POST", "/pools", body=pool)).status == 201
            yield FakeEndpoint(batch, executor, clock, running.url)
