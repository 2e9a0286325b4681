"""Task slots, fill types and required slots."""

from __future__ import annotations

from jobprep_release.backends.base import NodeFillType, TaskSpec, TaskState
from tests.contract.harness import BackendOpener, pool

HOLD = "/bin/bash -c 'sleep 2'"


async def placed(
    open_backend: BackendOpener, fill: NodeFillType, tasks: list[TaskSpec]
) -> dict[str, str | None]:
    async with pool(open_backend, nodes=2, slots=2, fill=fill) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(job, tasks)
        for task in tasks:
            await batch.task_in(job, task.id, TaskState.RUNNING, TaskState.COMPLETED)
        settled = await batch.tasks_settled(job)
        assert all(t.execution_info.exit_code == 0 for t in settled.values())
        return {task_id: task.node_id for task_id, task in settled.items()}


async def test_pack_fills_a_node_before_the_next(open_backend: BackendOpener) -> None:
    nodes = await placed(
        open_backend, NodeFillType.PACK, [TaskSpec("a", HOLD), TaskSpec("b", HOLD)]
    )
    assert nodes["a"] == nodes["b"]


async def test_spread_places_tasks_evenly(open_backend: BackendOpener) -> None:
    nodes = await placed(
        open_backend, NodeFillType.SPREAD, [TaskSpec("a", HOLD), TaskSpec("b", HOLD)]
    )
    assert nodes["a"] != nodes["b"]


async def test_required_slots_take_a_node_s_room(open_backend: BackendOpener) -> None:
    nodes = await placed(
        open_backend,
        NodeFillType.PACK,
        [TaskSpec("wide", HOLD, required_slots=2), TaskSpec("narrow", HOLD)],
    )
    assert nodes["wide"] != nodes["narrow"]
