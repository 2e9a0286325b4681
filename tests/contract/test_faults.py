"""The faults users reported (issue 15), each with the service's documented value: a release
task interrupted by a reboot, a job that ends with no tasks, programs that cannot be started,
failure codes (TaskFailureInformationCodes), execution info times, variables per task kind."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    JobPreparationTaskSpec,
    JobState,
    OnAllTasksComplete,
    PrepReleaseTaskState,
    ResourceFile,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.errors import Conflict
from tests.contract.harness import BackendOpener, Batch, pool
from tests.http_files import serving


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


async def task_file(batch: Batch, job: str, task_id: str, name: str) -> str:
    path = f"workitems/{job}/job-1/{task_id}/{name}"
    return (await batch.backend.read_node_file(batch.pool_id, batch.node_ids[0], path)).decode()


async def shared_file_has(batch: Batch, name: str, text: str, limit: float = 60) -> None:
    with anyio.fail_after(limit):
        while text not in (await batch.shared_file(batch.node_ids[0], name) or ""):
            await anyio.sleep(0.2)


async def test_a_release_interrupted_by_a_reboot_runs_again_before_the_job_completes(
    open_backend: BackendOpener,
) -> None:
    log = '"$AZ_BATCH_NODE_SHARED_DIR/release.log"'
    release = bash(f"echo start >> {log}; sleep 8; echo done >> {log}")
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        job = await batch.create_job("/bin/true", release)
        await batch.backend.add_tasks(job, [TaskSpec("t", "/bin/true")])
        await batch.tasks_settled(job)
        await batch.backend.terminate_job(job)
        await shared_file_has(batch, "release.log", "start\n")
        await batch.backend.reboot_node(batch.pool_id, node)
        assert (await batch.backend.get_job(job)).state is JobState.TERMINATING
        completed = await batch.job_in(job, JobState.COMPLETED, limit=180)
        assert await batch.shared_file(node, "release.log") == "start\nstart\ndone\n"
        status = (await batch.prep_release(job))[node].release
        assert status is not None and status.state is PrepReleaseTaskState.COMPLETED
        info = status.execution_info
        assert (info.exit_code, info.result, info.failure_info) == (
            0,
            ExecutionResult.SUCCESS,
            None,
        )
        assert info.end_time is not None and completed.end_time is not None
        assert info.end_time <= completed.end_time


async def test_terminatejob_ends_a_job_without_tasks_and_refuses_a_later_task(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job(on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB)
        completed = await batch.job_in(job, JobState.COMPLETED, limit=60)
        assert completed.terminate_reason == "AllTasksComplete"
        with pytest.raises(Conflict) as refused:
            await batch.backend.add_tasks(job, [TaskSpec("late", "/bin/true")])
        assert refused.value.code == "JobCompleted"


async def test_a_first_word_that_cannot_be_started_is_command_program_not_found(
    open_backend: BackendOpener,
) -> None:
    retries = TaskConstraints(max_task_retry_count=3)
    lines = {
        "builtin": "cd /tmp && ls",
        "missing": "nosuchprogram --flag",
        "directory": "/usr/bin",
        "notexecutable": "/etc/hostname",
        "relative": "./nothing-here",
    }
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(
            job, [TaskSpec(name, line, constraints=retries) for name, line in lines.items()]
        )
        tasks = await batch.tasks_settled(job)
        for name in lines:
            info = tasks[name].execution_info
            assert tasks[name].state is TaskState.COMPLETED, name
            assert info.failure_info is not None, name
            assert (info.failure_info.code, info.failure_info.category.value) == (
                "CommandProgramNotFound",
                "usererror",
            ), name
            assert (info.exit_code, info.retry_count, info.result) == (
                None,
                0,
                ExecutionResult.FAILURE,
            ), name
            stderr = await task_file(batch, job, name, "stderr.txt")
            for tool in ("setpriv", "setsid", "env:", "timeout"):
                assert tool not in stderr, (name, stderr)


async def test_a_task_ended_at_its_wall_clock_reports_task_ended(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        limited = TaskConstraints(max_wall_clock_time=timedelta(seconds=1))
        await batch.backend.add_tasks(job, [TaskSpec("long", "sleep 60", constraints=limited)])
        info = (await batch.tasks_settled(job, limit=60))["long"].execution_info
        assert info.failure_info is not None
        assert info.failure_info.code == "TaskEnded"
        assert info.result is ExecutionResult.FAILURE


async def test_retried_task_and_preparation_task_report_their_last_retry_time(
    open_backend: BackendOpener,
) -> None:
    retries = TaskConstraints(max_task_retry_count=2)
    flaky_prep = bash(
        'f="$AZ_BATCH_NODE_SHARED_DIR/prep-tries"; n=$(cat "$f" 2>/dev/null || echo 0); '
        'echo $((n+1)) > "$f"; [ "$n" -ge 1 ]'
    )
    async with pool(open_backend) as batch:
        job = await batch.create_job(JobPreparationTaskSpec(flaky_prep, constraints=retries))
        await batch.backend.add_tasks(
            job,
            [TaskSpec("fails", bash("exit 3"), constraints=retries), TaskSpec("ok", "/bin/true")],
        )
        tasks = await batch.tasks_settled(job)
        fails = tasks["fails"].execution_info
        assert fails.retry_count == 2
        assert fails.last_retry_time is not None and fails.last_retry_time == fails.start_time
        ok = tasks["ok"].execution_info
        assert (ok.retry_count, ok.last_retry_time, ok.last_requeue_time) == (0, None, None)
        prep = (await batch.prep_release(job))[batch.node_ids[0]].preparation
        assert prep is not None
        assert prep.execution_info.retry_count == 1
        assert prep.execution_info.last_retry_time == prep.execution_info.start_time
        assert prep.task_root_directory == f"workitems/{job}/job-1/jobpreparation"


async def test_a_requeued_task_reports_its_last_requeue_time(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        (node,) = batch.node_ids
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("long", bash("sleep 5"))])
        await batch.task_in(job, "long", TaskState.RUNNING)
        await batch.backend.reboot_node(batch.pool_id, node)
        info = (await batch.tasks_settled(job, limit=180))["long"].execution_info
        assert info.requeue_count >= 1
        assert info.last_requeue_time is not None and info.start_time is not None
        assert info.last_requeue_time <= info.start_time
        assert (info.retry_count, info.last_retry_time, info.exit_code) == (0, None, 0)


async def test_variables_per_task_kind(open_backend: BackendOpener) -> None:
    record = bash(
        'echo "$AZ_BATCH_TASK_ID prep=${AZ_BATCH_JOB_PREP_DIR-unset} '
        'wd=${AZ_BATCH_JOB_PREP_WORKING_DIR-unset}" >> "$AZ_BATCH_NODE_SHARED_DIR/vars"'
    )
    async with pool(open_backend) as batch:
        job = await batch.create_job(record, record)
        await batch.backend.add_tasks(job, [TaskSpec("t", record)])
        await batch.tasks_settled(job)
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED)
        prep_dir = f"/mnt/batch/tasks/workitems/{job}/job-1/jobpreparation"
        seen = f"prep={prep_dir} wd={prep_dir}/wd"
        assert await batch.shared_file(batch.node_ids[0], "vars") == (
            f"jobpreparation prep=unset wd=unset\nt {seen}\njobrelease {seen}\n"
        )


async def test_resource_file_failures_report_the_cause(
    open_backend: BackendOpener, backend_name: str
) -> None:
    if backend_name == "azure":
        pytest.skip("the cloud cannot reach a server on this machine's loopback")
    expected = {
        "absent": ("/absent", "BlobNotFound"),
        "denied": ("/denied", "BlobAccessDenied"),
        "failing": ("/failing", "BlobDownloadMiscError"),
    }
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        with serving({"/denied": (403, b"ok"), "/failing": (503, b"ok")}) as base:
            await batch.backend.add_tasks(
                job,
                [
                    TaskSpec(name, "/bin/true", resource_files=[ResourceFile(base + path, "f")])
                    for name, (path, _) in expected.items()
                ],
            )
            tasks = await batch.tasks_settled(job)
        for name, (_, code) in expected.items():
            info = tasks[name].execution_info
            assert info.failure_info is not None, name
            assert (info.failure_info.code, info.exit_code) == (code, None), name
