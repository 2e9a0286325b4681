"""Tasks: constraints, execution info, user identity, environment and resource files."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from jobprep_release.backends.base import (
    AutoUserScope,
    BatchBackend,
    ElevationLevel,
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    ResourceFile,
    TaskConstraints,
    TaskSpec,
    TaskState,
    UserIdentity,
)
from jobprep_release.backends.errors import InvalidRequest, NotFound
from tests.contract.harness import BackendOpener, pool
from tests.http_files import serving


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


async def stdout(backend: BatchBackend, pool_id: str, job: str, task_id: str, node: str) -> str:
    path = f"workitems/{job}/job-1/{task_id}/stdout.txt"
    return (await backend.read_node_file(pool_id, node, path)).decode()


async def test_wall_clock_ends_the_whole_process_tree(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        limited = TaskConstraints(max_wall_clock_time=timedelta(seconds=1))
        await batch.backend.add_tasks(
            job, [TaskSpec("tree", bash("sleep 300 & sleep 301 & wait"), constraints=limited)]
        )
        tree = (await batch.tasks_settled(job, limit=30))["tree"].execution_info
        assert tree.result is ExecutionResult.FAILURE
        assert tree.start_time and tree.end_time
        assert (tree.end_time - tree.start_time).total_seconds() < 10
        count = bash("cat /proc/[0-9]*/cmdline | tr \\\\0 \\\\n | grep -c ^30[01]$ || true")
        await batch.backend.add_tasks(job, [TaskSpec("left", count)])
        await batch.tasks_settled(job)
        left = await stdout(batch.backend, batch.pool_id, job, "left", batch.node_ids[0])
        assert left.strip() == "0"


async def test_non_zero_exits_are_retried_and_counted(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        third_time_lucky = bash(
            'f="$AZ_BATCH_NODE_SHARED_DIR/tries"; n=$(cat "$f" 2>/dev/null || echo 0); '
            'echo $((n+1)) > "$f"; [ "$n" -ge 2 ]'
        )
        await batch.backend.add_tasks(
            job,
            [
                TaskSpec(
                    "exit3", bash("exit 3"), constraints=TaskConstraints(max_task_retry_count=2)
                ),
                TaskSpec("never", bash("exit 5")),
                TaskSpec(
                    "unlimited",
                    third_time_lucky,
                    constraints=TaskConstraints(max_task_retry_count=-1),
                ),
            ],
        )
        tasks = await batch.tasks_settled(job)
        exit3 = tasks["exit3"].execution_info
        assert (exit3.exit_code, exit3.retry_count, exit3.requeue_count) == (3, 2, 0)
        assert exit3.failure_info is not None and exit3.failure_info.code == "FailureExitCode"
        assert exit3.failure_info.category.value == "usererror"
        never = tasks["never"].execution_info
        assert (never.exit_code, never.retry_count, never.result) == (5, 0, ExecutionResult.FAILURE)
        unlimited = tasks["unlimited"].execution_info
        assert (unlimited.exit_code, unlimited.retry_count) == (0, 2)
        assert unlimited.result is ExecutionResult.SUCCESS and unlimited.failure_info is None
        assert unlimited.start_time and unlimited.end_time
        assert unlimited.start_time <= unlimited.end_time


async def test_retention_time_removes_the_task_directory(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        short = TaskConstraints(retention_time=timedelta(seconds=1))
        await batch.backend.add_tasks(
            job,
            [
                TaskSpec("brief", bash("echo hi"), constraints=short),
                TaskSpec("kept", bash("echo hi")),
            ],
        )
        await batch.tasks_settled(job)
        node = batch.node_ids[0]
        assert await stdout(batch.backend, batch.pool_id, job, "brief", node) == "hi\n"
        with anyio.fail_after(30):
            while True:
                try:
                    await stdout(batch.backend, batch.pool_id, job, "brief", node)
                except NotFound:
                    break
                await anyio.sleep(0.5)
        assert await stdout(batch.backend, batch.pool_id, job, "kept", node) == "hi\n"


@pytest.mark.parametrize(
    ("identity", "user", "name"),
    [
        (UserIdentity(), "_azbatch", "PoolNonAdmin"),
        (UserIdentity(ElevationLevel.ADMIN), "root", "PoolAdmin"),
        (UserIdentity(ElevationLevel.ADMIN, AutoUserScope.TASK), "root", "TaskAdmin"),
        (UserIdentity(ElevationLevel.NON_ADMIN, AutoUserScope.TASK), "_azbatch", "TaskNonAdmin"),
    ],
)
async def test_user_identity(
    open_backend: BackendOpener, identity: UserIdentity, user: str, name: str
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        show = bash('id -un; echo "$AZ_BATCH_TASK_USER_IDENTITY"')
        await batch.backend.add_tasks(job, [TaskSpec("who", show, user_identity=identity)])
        await batch.tasks_settled(job)
        output = await stdout(batch.backend, batch.pool_id, job, "who", batch.node_ids[0])
        assert output.split() == [user, name]


async def test_environment_job_settings_and_task_overrides(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        record = bash('echo "$AZ_BATCH_TASK_ID $COMMON $OWN" >> "$AZ_BATCH_NODE_SHARED_DIR/env"')
        job = await batch.create_job(
            JobPreparationTaskSpec(record, environment={"OWN": "prep"}),
            JobReleaseTaskSpec(record, environment={"COMMON": "release-wins"}),
            common_environment={"COMMON": "job", "OWN": "job"},
        )
        await batch.backend.add_tasks(job, [TaskSpec("t", record, environment={"OWN": "task"})])
        await batch.tasks_settled(job)
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED)
        assert await batch.shared_file(batch.node_ids[0], "env") == (
            "jobpreparation job prep\nt job task\njobrelease release-wins job\n"
        )


async def test_resource_files(open_backend: BackendOpener, backend_name: str) -> None:
    if backend_name == "azure":
        pytest.skip("the cloud cannot reach a server on this machine's loopback")
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        with serving({"/data.txt": (200, b"payload\n")}) as base:
            good = ResourceFile(f"{base}/data.txt", "in/data.txt", file_mode="0640")
            missing = ResourceFile(f"{base}/absent.txt", "absent.txt")
            show = bash("stat -c %a:%U in/data.txt; cat in/data.txt")
            await batch.backend.add_tasks(
                job,
                [
                    TaskSpec("uses", show, resource_files=[good]),
                    TaskSpec("broken", "/bin/true", resource_files=[missing]),
                ],
            )
            tasks = await batch.tasks_settled(job)
        assert tasks["uses"].execution_info.exit_code == 0
        output = await stdout(batch.backend, batch.pool_id, job, "uses", batch.node_ids[0])
        assert output == "640:_azbatch\npayload\n"
        broken = tasks["broken"]
        assert broken.state is TaskState.COMPLETED
        assert broken.execution_info.exit_code is None
        assert broken.execution_info.result is ExecutionResult.FAILURE
        assert broken.execution_info.failure_info is not None
        escaping = ResourceFile(f"{base}/data.txt", "../outside.txt")
        with pytest.raises(InvalidRequest):
            await batch.backend.add_tasks(
                job, [TaskSpec("escape", "/bin/true", resource_files=[escaping])]
            )
