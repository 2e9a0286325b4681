"""Pool sizes on the fake executor, as the REST reference describes them: the allocation state
``resizing`` until the nodes exist, a resize refused while one is under way (409
``PoolBeingResized``), ``resizeTimeout`` ending a resize with ``AllocationTimedout`` (the
SDKs' PoolResizeErrorCodes), Stop Pool Resize (``stopping`` then ``steady``,
``ResizeStopped``), Remove Nodes with each
``nodeDeallocationOption``, node scheduling, node counts, spot nodes and their preemption."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobprep_release.backends.base import (
    AllocationState,
    DisableSchedulingOption,
    ExecutionResult,
    NodeDeallocationOption,
    NodeState,
    SchedulingState,
    TaskConstraints,
    TaskState,
)
from jobprep_release.backends.docker.core import (
    FakeClock,
    FakeExecutor,
    FakeOutcome,
    FakeStart,
    MemoryStore,
)
from jobprep_release.backends.errors import Conflict, InvalidRequest, NotFound
from tests.core.harness import JOB, POOL, Core, job_spec, pool_spec, running_core, tasks

MINUTE = 60.0


def long_tasks(start: FakeStart) -> FakeOutcome:
    """Every task runs ten minutes."""
    return FakeOutcome(duration=10 * MINUTE)


async def allocation(core: Core) -> AllocationState:
    return (await core.service.get_pool(POOL)).allocation_state


async def test_a_pool_is_resizing_until_its_nodes_exist_and_refuses_a_resize_meanwhile() -> None:
    async with running_core() as core:
        core.fake.hold_creation = True
        await core.service.create_pool(pool_spec(2))
        await core.settle()
        pool = await core.service.get_pool(POOL)
        assert pool.allocation_state is AllocationState.RESIZING
        assert pool.allocation_state_transition_time == pool.creation_time
        with pytest.raises(Conflict) as refused:
            await core.service.resize_pool(POOL, 3)
        assert refused.value.code == "PoolBeingResized"
        with pytest.raises(Conflict) as refused:
            await core.service.remove_nodes(POOL, await core.node_ids())
        assert refused.value.code == "PoolBeingResized"
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 2
        await core.advance(3)
        core.fake.release_creation()
        await core.settle()
        pool = await core.service.get_pool(POOL)
        assert pool.allocation_state is AllocationState.STEADY
        assert pool.creation_time is not None and pool.allocation_state_transition_time is not None
        assert (pool.allocation_state_transition_time - pool.creation_time).total_seconds() == 3
        assert pool.resize_errors == ()
        await core.service.resize_pool(POOL, 3)  # steady: accepted
        await core.settle()
        assert len(await core.node_ids()) == 3


async def test_a_resize_past_its_timeout_ends_with_allocation_timed_out() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        core.fake.hold_creation = True
        await core.service.resize_pool(POOL, 3, timedelta(minutes=5))
        await core.advance(4 * MINUTE)
        assert await allocation(core) is AllocationState.RESIZING
        await core.advance(2 * MINUTE)  # the sweep runs every minute of the clock here
        pool = await core.service.get_pool(POOL)
        assert pool.allocation_state is AllocationState.STEADY
        assert [error.code for error in pool.resize_errors] == ["AllocationTimedout"]
        assert "dedicated" in pool.resize_errors[0].message
        assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (3, 1)
        nodes = await core.service.list_nodes(POOL)
        assert [node.state for node in nodes] == [NodeState.IDLE]
        await core.service.resize_pool(POOL, 1)  # a new resize clears the errors
        assert (await core.service.get_pool(POOL)).resize_errors == ()


async def test_stop_resize_goes_stopping_then_steady_and_keeps_the_nodes_it_has() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        core.fake.hold_creation = True
        await core.service.resize_pool(POOL, 3)
        await core.service.stop_pool_resize(POOL)
        assert await allocation(core) is AllocationState.STOPPING
        await core.settle()
        pool = await core.service.get_pool(POOL)
        assert pool.allocation_state is AllocationState.STEADY
        assert [error.code for error in pool.resize_errors] == ["ResizeStopped"]
        assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (3, 1)
        core.fake.release_creation()
        await core.settle()
        assert len(await core.node_ids()) == 1
        await core.service.stop_pool_resize(POOL)  # steady: nothing to stop
        assert await allocation(core) is AllocationState.STEADY


async def _running_on_two_nodes(core: Core) -> tuple[str, str]:
    """A pool of two nodes each running one ten-minute task; (node of task001, the other)."""
    await core.service.create_pool(pool_spec(2))
    await core.settle()
    await core.service.create_job(job_spec())
    await core.service.add_tasks(JOB, tasks(2))
    await core.settle()
    first = await core.task("task001")
    assert first.state is TaskState.RUNNING and first.node_id is not None
    other = next(node for node in await core.node_ids() if node != first.node_id)
    return first.node_id, other


async def test_remove_nodes_requeue_runs_the_task_again_and_lowers_the_target() -> None:
    async with running_core(long_tasks) as core:
        node, other = await _running_on_two_nodes(core)
        await core.service.remove_nodes(POOL, [node])
        await core.settle()
        assert await core.node_ids() == [other]
        pool = await core.service.get_pool(POOL)
        assert (pool.target_dedicated_nodes, pool.allocation_state) == (1, AllocationState.STEADY)
        task = await core.task("task001")
        assert task.state is TaskState.ACTIVE and task.execution_info.requeue_count == 1
        await core.advance(10 * MINUTE)  # task002 ends, task001 runs on the other node
        task = await core.task("task001")
        assert task.state is TaskState.RUNNING and task.node_id == other


async def test_remove_nodes_terminate_ends_the_task() -> None:
    async with running_core(long_tasks) as core:
        node, _ = await _running_on_two_nodes(core)
        await core.service.remove_nodes(POOL, [node], deallocation=NodeDeallocationOption.TERMINATE)
        await core.settle()
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        info = task.execution_info
        assert info.result is ExecutionResult.FAILURE and info.failure_info is not None
        assert info.failure_info.code == "TaskEnded" and info.requeue_count == 0
        assert node not in await core.node_ids()


async def test_remove_nodes_taskcompletion_waits_for_the_task() -> None:
    async with running_core(long_tasks) as core:
        node, _ = await _running_on_two_nodes(core)
        await core.service.remove_nodes(
            POOL, [node], deallocation=NodeDeallocationOption.TASK_COMPLETION
        )
        await core.settle()
        leaving = await core.service.get_node(POOL, node)
        assert leaving.state is NodeState.LEAVING_POOL
        pool = await core.service.get_pool(POOL)
        assert pool.allocation_state is AllocationState.RESIZING
        assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (1, 1)
        await core.service.add_tasks(JOB, tasks(3)[2:])
        await core.advance(10 * MINUTE)
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert task.execution_info.result is ExecutionResult.SUCCESS
        assert node not in await core.node_ids()
        assert await allocation(core) is AllocationState.STEADY
        assert [start.node_id for start in core.starts_of("task003")] != [node]


async def test_remove_nodes_retaineddata_waits_for_the_tasks_retention_time() -> None:
    async with running_core(long_tasks) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        (node,) = await core.node_ids()
        await core.service.create_job(job_spec())
        kept = TaskConstraints(retention_time=timedelta(minutes=30))
        await core.service.add_tasks(JOB, tasks(1, constraints=kept))
        await core.settle()
        await core.service.remove_nodes(
            POOL, [node], deallocation=NodeDeallocationOption.RETAINED_DATA
        )
        await core.advance(10 * MINUTE)
        assert (await core.task("task001")).state is TaskState.COMPLETED
        assert await core.node_ids() == [node]  # its files are kept for 30 minutes
        for _ in range(29):
            await core.advance(MINUTE)
        assert await core.node_ids() == [node]
        for _ in range(2):
            await core.advance(MINUTE)
        assert await core.node_ids() == []
        assert await allocation(core) is AllocationState.STEADY


async def test_remove_nodes_of_an_unknown_node_changes_nothing() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(2))
        await core.settle()
        (first, _) = await core.node_ids()
        with pytest.raises(NotFound) as refused:
            await core.service.remove_nodes(POOL, [first, "tvm-nope"])
        assert refused.value.code == "NodeNotFound"
        assert len(await core.node_ids()) == 2
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 2


async def test_disabled_scheduling_requeues_the_task_and_the_idle_node_is_offline() -> None:
    async with running_core(long_tasks) as core:
        node, other = await _running_on_two_nodes(core)
        await core.service.disable_node_scheduling(POOL, node)
        await core.settle()
        disabled = await core.service.get_node(POOL, node)
        assert disabled.scheduling_state is SchedulingState.DISABLED
        assert disabled.state is NodeState.OFFLINE
        task = await core.task("task001")
        assert task.state is TaskState.ACTIVE and task.execution_info.requeue_count == 1
        await core.advance(10 * MINUTE)
        task = await core.task("task001")
        assert task.state is TaskState.RUNNING and task.node_id == other
        await core.service.enable_node_scheduling(POOL, node)
        await core.settle()
        enabled = await core.service.get_node(POOL, node)
        assert (enabled.scheduling_state, enabled.state) == (
            SchedulingState.ENABLED,
            NodeState.IDLE,
        )


async def test_disabled_scheduling_with_taskcompletion_lets_the_task_finish_first() -> None:
    async with running_core(long_tasks) as core:
        node, _ = await _running_on_two_nodes(core)
        option = DisableSchedulingOption.TASK_COMPLETION
        await core.service.disable_node_scheduling(POOL, node, option)
        await core.service.add_tasks(JOB, tasks(3)[2:])
        await core.settle()
        assert (await core.service.get_node(POOL, node)).state is NodeState.RUNNING
        await core.advance(10 * MINUTE)
        first = await core.task("task001")
        assert first.execution_info.result is ExecutionResult.SUCCESS
        assert (await core.service.get_node(POOL, node)).state is NodeState.OFFLINE
        assert all(start.node_id != node for start in core.starts_of("task003"))


async def test_disabled_scheduling_with_terminate_ends_the_task() -> None:
    async with running_core(long_tasks) as core:
        node, _ = await _running_on_two_nodes(core)
        option = DisableSchedulingOption.TERMINATE
        await core.service.disable_node_scheduling(POOL, node, option)
        await core.settle()
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert task.execution_info.failure_info is not None
        assert task.execution_info.failure_info.code == "TaskEnded"
        assert (await core.service.get_node(POOL, node)).state is NodeState.OFFLINE


async def test_node_counts_count_each_state_by_kind() -> None:
    async with running_core(long_tasks) as core:
        await core.service.create_pool(pool_spec(2, target_low_priority_nodes=1))
        await core.settle()
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        nodes = await core.service.list_nodes(POOL)
        assert sorted(node.is_dedicated for node in nodes) == [False, True, True]
        running = (await core.task("task001")).node_id
        assert running == nodes[0].id and nodes[0].is_dedicated  # pack: the first node
        await core.service.disable_node_scheduling(POOL, nodes[1].id)
        (counts,) = await core.service.list_pool_node_counts()
        assert counts.pool_id == POOL
        dedicated, low = counts.dedicated, counts.low_priority
        assert (dedicated.running, dedicated.offline, dedicated.idle, dedicated.total) == (
            1,
            1,
            0,
            2,
        )
        assert (low.idle, low.total, low.preempted) == (1, 1, 0)
        pool = await core.service.get_pool(POOL)
        assert (pool.target_low_priority_nodes, pool.current_low_priority_nodes) == (1, 1)
        assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (2, 2)


async def test_a_preempted_spot_node_stays_preempted_and_its_task_is_requeued() -> None:
    async with running_core(long_tasks) as core:
        await core.service.create_pool(pool_spec(0, target_low_priority_nodes=1))
        await core.settle()
        (node,) = await core.node_ids()
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        assert (await core.task("task001")).node_id == node
        await core.service.preempt_node(POOL, node)
        await core.settle()
        preempted = await core.service.get_node(POOL, node)
        assert (preempted.state, preempted.is_dedicated) == (NodeState.PREEMPTED, False)
        task = await core.task("task001")
        assert task.state is TaskState.ACTIVE and task.execution_info.requeue_count == 1
        (counts,) = await core.service.list_pool_node_counts()
        assert (counts.low_priority.preempted, counts.low_priority.total) == (1, 1)
        assert (await core.service.get_pool(POOL)).current_low_priority_nodes == 1
        await core.advance(MINUTE)
        assert (await core.service.get_node(POOL, node)).state is NodeState.PREEMPTED


async def test_a_dedicated_node_is_not_preempted() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        (node,) = await core.node_ids()
        with pytest.raises(Conflict):
            await core.service.preempt_node(POOL, node)
        assert (await core.service.get_node(POOL, node)).state is NodeState.IDLE


async def test_remove_nodes_takes_one_to_a_hundred_ids() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        for ids in ([], [f"tvm-{n}" for n in range(101)]):
            with pytest.raises(InvalidRequest) as refused:
                await core.service.remove_nodes(POOL, ids)
            assert refused.value.code == "InvalidPropertyValue"
        assert len(await core.node_ids()) == 1


async def test_a_pool_of_preempted_nodes_is_kept_across_a_restart() -> None:
    fake = FakeExecutor(FakeClock())
    store = MemoryStore()
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_pool(pool_spec(0, target_low_priority_nodes=1))
        await core.settle()
        (node,) = await core.node_ids()
        await core.service.preempt_node(POOL, node)
        await core.settle()
    async with running_core(fake=fake, store=store) as again:
        assert (await again.service.get_node(POOL, node)).state is NodeState.PREEMPTED
