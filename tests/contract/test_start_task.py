"""A pool's start task on every backend: the node waits for it, its directory, variables and
output, retries and the `starttaskfailed` state, and its rerun on reboot.

Expected values come from the REST reference (api-version 2025-06-01): StartTask
(``waitForSuccess`` true by default; ``maxTaskRetryCount``), StartTaskInformation, BatchNodeState,
the node file paths (``startup/stdout.txt``) and the "Azure Batch runtime environment variables"
table (the start task's directory is ``startup``, and it has no job or task id).
"""

from __future__ import annotations

from jobprep_release.backends.base import (
    ExecutionResult,
    NodeState,
    ResourceFile,
    StartTaskSpec,
    StartTaskState,
    TaskSpec,
    TaskState,
)
from tests.contract.harness import BackendOpener, pool
from tests.http_files import serving


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


SHOW = bash(
    'echo "$AZ_BATCH_TASK_DIR|$AZ_BATCH_TASK_WORKING_DIR|$PWD|$(id -un)|'
    '${AZ_BATCH_JOB_ID-none}|${AZ_BATCH_TASK_ID-none}|$AZ_BATCH_NODE_STARTUP_WORKING_DIR|$MINE"; '
    'sleep 4; echo boot >> "$AZ_BATCH_NODE_SHARED_DIR/boots"'
)


async def test_a_node_waits_for_its_start_task_which_runs_in_startup(
    open_backend: BackendOpener,
) -> None:
    start_task = StartTaskSpec(SHOW, environment={"MINE": "mine"})
    async with pool(open_backend, start_task=start_task, ready=False) as batch:
        waiting = await batch.nodes_in(NodeState.WAITING_FOR_START_TASK, NodeState.IDLE)
        assert waiting[0].state is NodeState.WAITING_FOR_START_TASK
        (node,) = await batch.nodes_in(NodeState.IDLE)
        info = node.start_task_info
        assert info is not None and info.state is StartTaskState.COMPLETED
        run = info.execution_info
        assert run.exit_code == 0 and run.result is ExecutionResult.SUCCESS
        assert run.retry_count == 0 and run.failure_info is None
        assert run.start_time is not None and run.end_time is not None
        assert run.end_time > run.start_time
        out = await batch.backend.read_node_file(batch.pool_id, node.id, "startup/stdout.txt")
        startup = "/mnt/batch/tasks/startup"
        assert out.decode().splitlines() == [
            f"{startup}|{startup}/wd|{startup}/wd|_azbatch|none|none|{startup}/wd|mine"
        ]
        # Tasks run only after the start task succeeded.
        job = await batch.create_job()
        check = bash('test "$(cat "$AZ_BATCH_NODE_SHARED_DIR/boots")" = boot')
        await batch.backend.add_tasks(job, [TaskSpec("t1", check)])
        task = (await batch.tasks_settled(job))["t1"]
        assert task.execution_info.exit_code == 0


async def test_a_failing_start_task_is_retried_then_the_node_takes_no_task(
    open_backend: BackendOpener,
) -> None:
    start_task = StartTaskSpec(bash("exit 3"), max_task_retry_count=1)
    async with pool(open_backend, start_task=start_task, ready=False) as batch:
        (node,) = await batch.nodes_in(NodeState.START_TASK_FAILED)
        info = node.start_task_info
        assert info is not None and info.state is StartTaskState.COMPLETED
        run = info.execution_info
        assert run.exit_code == 3 and run.result is ExecutionResult.FAILURE
        assert run.failure_info is not None and run.failure_info.code == "FailureExitCode"
        assert run.retry_count == 1 and run.last_retry_time is not None
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("t1", "/bin/true")])
        task = await batch.backend.get_task(job, "t1")
        assert task.state is TaskState.ACTIVE and task.node_id is None


async def test_the_start_task_runs_again_when_the_node_reboots(open_backend: BackendOpener) -> None:
    count = bash('echo boot >> "$AZ_BATCH_NODE_SHARED_DIR/boots"')
    async with pool(open_backend, start_task=StartTaskSpec(count)) as batch:
        (node_id,) = batch.node_ids
        assert await batch.shared_file(node_id, "boots") == "boot\n"
        await batch.reboot(node_id)
        assert await batch.shared_file(node_id, "boots") == "boot\nboot\n"


async def test_without_wait_for_success_a_task_runs_beside_the_start_task(
    open_backend: BackendOpener,
) -> None:
    slow = StartTaskSpec(bash('sleep 5; touch "$AZ_BATCH_NODE_SHARED_DIR/set"; exit 1'))
    slow = StartTaskSpec(slow.command_line, wait_for_success=False)
    async with pool(open_backend, start_task=slow) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(
            job, [TaskSpec("t1", bash('test ! -e "$AZ_BATCH_NODE_SHARED_DIR/set"'))]
        )
        task = (await batch.tasks_settled(job))["t1"]
        assert task.execution_info.exit_code == 0
        (node,) = await batch.nodes_in(NodeState.IDLE)
        assert node.start_task_info is not None


async def test_a_start_tasks_resource_files_land_in_startup_wd(
    open_backend: BackendOpener,
) -> None:
    with serving({"/setup.sh": (200, b"echo set up from a file\n")}) as base:
        files = [ResourceFile(f"{base}/setup.sh", "setup.sh", file_mode="0750")]
        show = bash("stat -c %a:%U setup.sh; bash setup.sh")
        start_task = StartTaskSpec(show, resource_files=files)
        async with pool(open_backend, start_task=start_task) as batch:
            (node_id,) = batch.node_ids
            out = await batch.backend.read_node_file(batch.pool_id, node_id, "startup/stdout.txt")
            assert out.decode().splitlines() == ["750:_azbatch", "set up from a file"]
        missing = StartTaskSpec("/bin/true", resource_files=[ResourceFile(f"{base}/x", "x")])
        async with pool(open_backend, start_task=missing, ready=False) as batch:
            (node,) = await batch.nodes_in(NodeState.START_TASK_FAILED)
            assert node.start_task_info is not None
            run = node.start_task_info.execution_info
            assert run.exit_code is None and run.result is ExecutionResult.FAILURE
            assert run.failure_info is not None and run.failure_info.code == "BlobNotFound"
