"""A fresh allocation's nodes take their first tasks together (`rules.joining`), on the fake
executor: a short job is spread over the nodes a pool was created with, not drained by the
first node up; a node that does not boot delays the others at most `ALLOCATION_WAIT`; nodes
already in the pool keep taking tasks while a resize's nodes boot."""

from __future__ import annotations

from collections import Counter

from jobprep_release.backends.docker.core import FakeOutcome
from jobprep_release.backends.docker.core.rules import ALLOCATION_WAIT
from tests.core.harness import JOB, Core, job_spec, pool_spec, running_core, tasks


def placed(core: Core) -> Counter[str]:
    return Counter(start.node_id for start in core.fake.starts)


async def test_the_first_node_up_waits_for_its_sibling() -> None:
    async with running_core(lambda start: FakeOutcome(duration=0.001)) as core:
        core.fake.hold_hello = True
        await core.service.create_pool(pool_spec(2))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(8))
        first, second = await core.node_ids()
        core.fake.release_hello(first)
        for _ in range(5):
            await core.advance(0.1)
        assert placed(core) == Counter()
        core.fake.release_hello(second)
        for _ in range(20):
            await core.advance(0.1)
        assert placed(core) == Counter({first: 4, second: 4})


async def test_a_node_that_does_not_boot_delays_the_others_at_most_the_allocation_wait() -> None:
    async with running_core(lambda start: FakeOutcome(duration=0.001)) as core:
        core.fake.hold_hello = True
        await core.service.create_pool(pool_spec(2))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(4))
        first, _ = await core.node_ids()
        core.fake.release_hello(first)
        await core.advance(ALLOCATION_WAIT - 1.0)
        assert placed(core) == Counter()
        for _ in range(10):
            await core.advance(0.5)
        assert placed(core) == Counter({first: 4})


async def test_nodes_in_the_pool_keep_taking_tasks_while_a_resize_boots() -> None:
    async with running_core(lambda start: FakeOutcome(duration=0.001)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        (first,) = await core.node_ids()
        await core.advance(5.0)
        core.fake.hold_hello = True
        await core.service.resize_pool(pool_spec(1).id, target_dedicated_nodes=3)
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(3))
        for _ in range(5):
            await core.advance(0.1)
        assert placed(core) == Counter({first: 3})
