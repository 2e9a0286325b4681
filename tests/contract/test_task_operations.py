"""Task operations on every backend: Reactivate Task, Delete Task, Delete Task File, Delete Node
File. Expected values from the REST API reference (api-version 2025-06-01): Reactivate Task
(active again, retry count reset to 0, previous exit code and failure gone; refused for a task
that succeeded), Delete Task (the task's files on its node deleted with it), Delete Task File
and Delete Node File (``recursive`` for a directory that is not empty)."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import ExecutionResult, TaskConstraints, TaskSpec, TaskState
from jobprep_release.backends.errors import Conflict, NotFound
from tests.contract.harness import BackendOpener, pool


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


def task_root(job: str, task_id: str) -> str:
    return f"workitems/{job}/job-1/{task_id}"


async def test_reactivate_runs_a_failed_task_again(open_backend: BackendOpener) -> None:
    # The task fails until a file in the shared directory says otherwise.
    flag = '"$AZ_BATCH_NODE_SHARED_DIR/fixed"'
    command = bash(f"test -e {flag}")
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        limits = TaskConstraints(max_task_retry_count=1)
        await batch.backend.add_tasks(
            job, [TaskSpec("t", command, constraints=limits), TaskSpec("fix", "/bin/true")]
        )
        failed = (await batch.tasks_settled(job))["t"]
        assert (failed.execution_info.retry_count, failed.execution_info.exit_code) == (1, 1)
        with pytest.raises(Conflict):
            await batch.backend.reactivate_task(job, "fix")  # it succeeded
        await batch.backend.add_tasks(job, [TaskSpec("make", bash(f"touch {flag}"))])
        await batch.tasks_settled(job)
        await batch.backend.reactivate_task(job, "t")
        again = (await batch.tasks_settled(job))["t"]
        info = again.execution_info
        assert (again.state, info.result, info.exit_code) == (
            TaskState.COMPLETED,
            ExecutionResult.SUCCESS,
            0,
        )
        assert info.retry_count == 0


async def test_delete_task_takes_its_files_and_files_can_be_deleted(
    open_backend: BackendOpener,
) -> None:
    writes = bash("mkdir -p out && echo a > out/a.txt && echo b > out/b.txt")
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("kept", writes), TaskSpec("gone", writes)])
        await batch.tasks_settled(job)
        await batch.backend.delete_task_file(job, "kept", "wd/out/a.txt")
        kept = f"{task_root(job, 'kept')}/wd/out"
        with pytest.raises(NotFound):
            await batch.backend.read_node_file(batch.pool_id, node, f"{kept}/a.txt")
        assert await batch.backend.read_node_file(batch.pool_id, node, f"{kept}/b.txt") == b"b\n"
        with pytest.raises(Conflict):
            await batch.backend.delete_node_file(batch.pool_id, node, kept)
        await batch.backend.delete_node_file(batch.pool_id, node, kept, recursive=True)
        with pytest.raises(NotFound):
            await batch.backend.read_node_file(batch.pool_id, node, f"{kept}/b.txt")
        await batch.backend.delete_task(job, "gone")
        with pytest.raises(NotFound):
            await batch.backend.get_task(job, "gone")
        gone = f"{task_root(job, 'gone')}/wd/out/a.txt"
        with pytest.raises(NotFound):
            await batch.backend.read_node_file(batch.pool_id, node, gone)
        assert [task.id for task in await batch.backend.list_tasks(job)] == ["kept"]
