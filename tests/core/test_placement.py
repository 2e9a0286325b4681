"""Slots and fill type on the fake executor (batch-semantics.md, "Slots and placement"), and
what nodes and pools record."""

from __future__ import annotations

from jobprep_release.backends.base import (
    AllocationState,
    NodeFillType,
    NodeState,
    TaskSpec,
)
from jobprep_release.backends.docker.core import FakeOutcome
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core, tasks


async def _placed(fill: NodeFillType, slots: int, count: int) -> dict[str, int]:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(2, task_slots_per_node=slots, node_fill_type=fill))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(count))
        await core.settle()
        placed: dict[str, int] = dict.fromkeys(await core.node_ids(), 0)
        for task in await core.service.list_tasks(JOB):
            if task.node_id:
                placed[task.node_id] += 1
        return placed


async def test_pack_fills_a_node_before_the_next() -> None:
    assert list((await _placed(NodeFillType.PACK, 4, 3)).values()) == [3, 0]


async def test_spread_evens_tasks_across_nodes() -> None:
    assert list((await _placed(NodeFillType.SPREAD, 4, 3)).values()) == [2, 1]


async def test_no_node_takes_more_tasks_than_it_has_slots() -> None:
    assert list((await _placed(NodeFillType.PACK, 2, 7)).values()) == [2, 2]


async def test_required_slots_are_honoured() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1, task_slots_per_node=3))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(
            JOB,
            [
                TaskSpec(id="big", command_line="/bin/big", required_slots=2),
                TaskSpec(id="bigger", command_line="/bin/bigger", required_slots=2),
                TaskSpec(id="small", command_line="/bin/small"),
            ],
        )
        await core.settle()
        states = {t.id: t.state.value for t in await core.service.list_tasks(JOB)}
        assert states == {"big": "running", "bigger": "active", "small": "running"}
        (node,) = await core.service.list_nodes(POOL)
        assert (node.running_tasks_count, node.running_task_slots_count) == (2, 3)


async def test_nodes_record_their_states_and_the_pool_its_allocation() -> None:
    async with running_core(lambda start: FakeOutcome(duration=5)) as core:
        core.fake.hold_hello = True
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        pool = await core.service.get_pool(POOL)
        (node,) = await core.service.list_nodes(POOL)
        assert node.state is NodeState.STARTING and node.last_boot_time is None
        assert pool.allocation_state is AllocationState.STEADY
        core.fake.release_hello()
        await core.settle()
        (node,) = await core.service.list_nodes(POOL)
        assert node.state is NodeState.IDLE and node.last_boot_time is not None
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        (busy,) = await core.service.list_nodes(POOL)
        assert busy.state is NodeState.RUNNING
        await core.advance(5)
        (idle,) = await core.service.list_nodes(POOL)
        assert idle.state is NodeState.IDLE
        assert idle.state_transition_time is not None and busy.state_transition_time is not None
        assert idle.state_transition_time > busy.state_transition_time
        assert await core.service.list_nodes(POOL) == [idle]  # reading changes nothing
