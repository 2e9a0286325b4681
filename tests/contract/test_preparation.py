"""Job preparation tasks: when they run, waiting for them, failing, reboots and reimages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    JobPreparationTaskSpec,
    JobState,
    NodeState,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.errors import WaitTimeout
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.contract.harness import BackendOpener, pool


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


COUNT_PREP = bash('echo run >> "$AZ_BATCH_NODE_SHARED_DIR/prep-runs"')


async def test_prep_runs_first_and_only_where_tasks_run(open_backend: BackendOpener) -> None:
    async with pool(open_backend, nodes=2) as batch:
        job = await batch.create_job(
            bash('sleep 0.5; echo ready > "$AZ_BATCH_NODE_SHARED_DIR/ready"')
        )
        await batch.backend.add_tasks(
            job, [TaskSpec("t1", bash('cat "$AZ_BATCH_NODE_SHARED_DIR/ready"'))]
        )
        task = (await batch.tasks_settled(job))["t1"]
        assert task.execution_info.exit_code == 0
        statuses = await batch.prep_release(job)
        assert list(statuses) == [task.node_id]
        (idle,) = [node for node in batch.node_ids if node != task.node_id]
        assert await batch.shared_file(idle, "ready") is None


async def test_without_wait_for_success_tasks_start_at_once(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        prep = JobPreparationTaskSpec(
            bash('sleep 3; touch "$AZ_BATCH_NODE_SHARED_DIR/prepared"; exit 1'),
            wait_for_success=False,
        )
        job = await batch.create_job(prep)
        await batch.backend.add_tasks(
            job, [TaskSpec("t1", bash('test ! -e "$AZ_BATCH_NODE_SHARED_DIR/prepared"'))]
        )
        task = (await batch.tasks_settled(job))["t1"]
        assert task.execution_info.exit_code == 0
        status = (await batch.prep_release(job))[batch.node_ids[0]]
        assert status.preparation is not None


async def test_failing_prep_is_retried_then_the_node_refuses_the_job(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, nodes=2, slots=1) as batch:
        bad, good = batch.node_ids
        prep = JobPreparationTaskSpec(
            bash(
                f'echo try >> "$AZ_BATCH_NODE_SHARED_DIR/tries"; [ "$AZ_BATCH_NODE_ID" != {bad} ]'
            ),
            constraints=TaskConstraints(max_task_retry_count=2),
        )
        job = await batch.create_job(prep)
        await batch.backend.add_tasks(job, [TaskSpec(f"t{n}", "/bin/true") for n in range(4)])
        tasks = await batch.tasks_settled(job)
        assert {task.node_id for task in tasks.values()} == {good}
        assert all(task.execution_info.exit_code == 0 for task in tasks.values())
        failed = (await batch.prep_release(job))[bad].preparation
        assert failed is not None
        info = failed.execution_info
        assert (info.exit_code, info.result, info.retry_count) == (1, ExecutionResult.FAILURE, 2)
        assert await batch.shared_file(bad, "tries") == "try\n" * 3


async def test_prep_failing_everywhere_leaves_tasks_active_and_the_flow_says_why(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend, nodes=1) as batch:
        job = await batch.create_job(bash("exit 7"))
        options = SampleOptions(
            pool_id=batch.pool_id,
            job_id=job,
            node_count=1,
            task_count=2,
            task_timeout=timedelta(seconds=3),
        )
        with pytest.raises(WaitTimeout) as stuck:
            await run_sample(batch.backend, Console(Answer.NO), options)
        assert "the job preparation task failed on" in stuck.value.message
        assert batch.node_ids[0] in stuck.value.message
        tasks = await batch.backend.list_tasks(job)
        assert [task.state for task in tasks] == [TaskState.ACTIVE, TaskState.ACTIVE]


@pytest.mark.parametrize("rerun", [True, False])
async def test_prep_after_a_reboot_follows_rerun_on_node_reboot(
    open_backend: BackendOpener, rerun: bool
) -> None:
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        prep = JobPreparationTaskSpec(COUNT_PREP, rerun_on_node_reboot_after_success=rerun)
        job = await batch.create_job(prep)
        await batch.backend.add_tasks(job, [TaskSpec("before", "/bin/true")])
        await batch.tasks_settled(job)
        await batch.backend.reboot_node(batch.pool_id, node)
        await batch.nodes_idle()
        await batch.backend.add_tasks(job, [TaskSpec("after", "/bin/true")])
        await batch.tasks_settled(job)
        assert await batch.shared_file(node, "prep-runs") == "run\n" * (2 if rerun else 1)


async def test_prep_runs_again_after_a_reimage(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        prep = JobPreparationTaskSpec(COUNT_PREP, rerun_on_node_reboot_after_success=False)
        job = await batch.create_job(prep)
        await batch.backend.add_tasks(job, [TaskSpec("before", "/bin/true")])
        await batch.tasks_settled(job)
        await batch.backend.reimage_node(batch.pool_id, node)
        assert (await batch.backend.list_nodes(batch.pool_id))[0].state is not NodeState.IDLE
        await batch.nodes_idle()
        assert await batch.shared_file(node, "prep-runs") is None
        await batch.backend.add_tasks(
            job, [TaskSpec("after", bash('test -s "$AZ_BATCH_NODE_SHARED_DIR/prep-runs"'))]
        )
        assert (await batch.tasks_settled(job))["after"].execution_info.exit_code == 0
        assert await batch.shared_file(node, "prep-runs") == "run\n"
        assert (await batch.backend.get_job(job)).state is JobState.ACTIVE
