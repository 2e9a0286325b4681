"""The faults users reported against the service's documented behaviour (issue 15), on the fake
executor: a release task lost with its node, a job that ends with no tasks, failure codes the
service documents (TaskFailureInformationCodes), execution info times, variables per task kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    PrepReleaseStatus,
    ResourceFile,
    Task,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart, resources
from tests.core.harness import JOB, POOL, Core, job_spec, pool_spec, running_core, tasks
from tests.http_files import serving

PREP = JobPreparationTaskSpec("/bin/prep")
RELEASE = JobReleaseTaskSpec("/bin/release")

# TaskFailureInformationCodes (the service's documented task failure codes).
DOCUMENTED_CODES = {
    "ApplicationPackageError",
    "BlobAccessDenied",
    "BlobDownloadMiscError",
    "BlobDownloadTimedOut",
    "BlobNotFound",
    "CommandLaunchFailed",
    "CommandProgramNotFound",
    "DiskFull",
    "FailureExitCode",
    "ResourceDirectoryCreateFailed",
    "ResourceFileCreateFailed",
    "ResourceFileWriteFailed",
    "TaskEnded",
    "Unknown",
}


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def by_task(**outcomes: FakeOutcome) -> Callable[[FakeStart], FakeOutcome]:
    def script(start: FakeStart) -> FakeOutcome:
        return outcomes.get(start.task_id, FakeOutcome())

    return script


async def release_on(core: Core, node_id: str) -> PrepReleaseStatus:
    statuses = {s.node_id: s for s in await core.service.list_prep_release_status(JOB)}
    return statuses[node_id]


async def terminating_with_release_running(core: Core) -> str:
    """Pool of one node, a job with prep and release, one task run; terminated, its release
    running. Returns the node's id."""
    await core.service.create_pool(pool_spec(1))
    await core.service.create_job(job_spec(PREP, RELEASE))
    await core.service.add_tasks(JOB, tasks(1))
    await core.settle()
    await core.service.terminate_job(JOB)
    await core.advance(5)
    (node_id,) = await core.node_ids()
    assert len(core.starts_of("jobrelease")) == 1
    assert (await core.service.get_job(JOB)).state is JobState.TERMINATING
    return node_id


async def test_a_release_interrupted_by_a_reboot_runs_again_and_the_job_completes_after_it() -> (
    None
):
    async with running_core(by_task(jobrelease=FakeOutcome(duration=15))) as core:
        node_id = await terminating_with_release_running(core)
        await core.service.reboot_node(POOL, node_id)
        await core.settle()
        assert len(core.starts_of("jobrelease")) == 2  # again, once the node is back
        assert (await core.service.get_job(JOB)).state is JobState.TERMINATING
        await core.advance(14)
        assert (await core.service.get_job(JOB)).state is JobState.TERMINATING
        await core.advance(1)
        job = await core.service.get_job(JOB)
        assert job.state is JobState.COMPLETED
        release = (await release_on(core, node_id)).release
        assert release is not None
        info = release.execution_info
        assert (info.exit_code, info.result, info.failure_info) == (
            0,
            ExecutionResult.SUCCESS,
            None,
        )
        assert info.start_time == at(core.starts_of("jobrelease")[1].time)
        assert job.end_time == info.end_time


async def test_a_release_lost_with_its_node_runs_when_the_node_is_back() -> None:
    async with running_core(by_task(jobrelease=FakeOutcome(duration=15))) as core:
        node_id = await terminating_with_release_running(core)
        core.fake.lose_node(node_id)
        await core.advance(60)
        assert (await core.service.get_job(JOB)).state is JobState.TERMINATING
        release = (await release_on(core, node_id)).release
        assert release is not None and release.execution_info.failure_info is None
        core.fake.restore_node(node_id)
        await core.advance(15)
        assert (await core.service.get_job(JOB)).state is JobState.COMPLETED
        assert len(core.starts_of("jobrelease")) == 2


async def test_a_release_on_a_node_that_left_the_pool_does_not_hold_the_job() -> None:
    async with running_core(by_task(jobrelease=FakeOutcome(duration=None))) as core:
        node_id = await terminating_with_release_running(core)
        await core.service.resize_pool(POOL, 0)
        await core.settle()
        assert (await core.service.get_job(JOB)).state is JobState.COMPLETED
        status = await release_on(core, node_id)
        assert status.release is None  # it never completed, and nothing reports a failure
        assert len(core.starts_of("jobrelease")) == 1


async def test_terminatejob_ends_a_job_without_tasks_and_its_release_never_runs() -> None:
    from jobprep_release.backends.base import OnAllTasksComplete

    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(
            job_spec(PREP, RELEASE, on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB)
        )
        await core.settle()
        job = await core.service.get_job(JOB)
        assert (job.state, job.terminate_reason) == (JobState.COMPLETED, "AllTasksComplete")
        assert job.previous_state is JobState.TERMINATING
        assert core.fake.starts == []


async def test_a_command_that_cannot_be_started_is_not_retried() -> None:
    limits = TaskConstraints(max_task_retry_count=3)
    prep = JobPreparationTaskSpec("cd /tmp", constraints=limits)
    outcome = by_task(jobpreparation=FakeOutcome(not_found=True), task001=FakeOutcome())
    async with running_core(outcome) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(prep))
        await core.service.add_tasks(JOB, tasks(1, constraints=limits))
        await core.settle()
        (status,) = await core.service.list_prep_release_status(JOB)
        assert status.preparation is not None
        info = status.preparation.execution_info
        assert info.failure_info is not None
        assert (info.failure_info.code, info.exit_code, info.retry_count) == (
            "CommandProgramNotFound",
            None,
            0,
        )
        assert len(core.starts_of("jobpreparation")) == 1


async def test_a_task_past_its_wall_clock_reports_task_ended() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        limits = TaskConstraints(max_wall_clock_time=timedelta(seconds=10))
        await core.service.add_tasks(JOB, tasks(1, constraints=limits))
        await core.advance(10)
        info = (await core.task("task001")).execution_info
        assert info.failure_info is not None
        assert info.failure_info.code == "TaskEnded"
        assert info.failure_info.category.value == "usererror"


async def test_execution_info_times_of_retries_and_requeues() -> None:
    fails = FakeOutcome(exit_code=1, duration=5)
    async with running_core(lambda start: fails) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(
            JOB, tasks(1, constraints=TaskConstraints(max_task_retry_count=2))
        )
        await core.settle()
        task = await core.task("task001")
        assert task.execution_info.last_retry_time is None
        assert task.execution_info.last_requeue_time is None
        for retry in (1, 2):
            await core.advance(5)
            task = await core.task("task001")
            info = task.execution_info
            assert info.retry_count == retry
            assert info.last_retry_time == at(core.starts_of("task001")[retry].time)
            assert info.last_retry_time == info.start_time
        await core.advance(5)
        assert (await core.task("task001")).state is TaskState.COMPLETED


async def test_a_requeue_records_its_time_and_keeps_the_last_retry_time() -> None:
    script = [FakeOutcome(exit_code=1, duration=5), FakeOutcome(duration=None)]

    def outcome(start: FakeStart) -> FakeOutcome:
        return script.pop(0) if script else FakeOutcome(duration=None)

    async with running_core(outcome) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(
            JOB, tasks(1, constraints=TaskConstraints(max_task_retry_count=1))
        )
        await core.advance(5)
        retried = (await core.task("task001")).execution_info
        assert retried.retry_count == 1 and retried.last_retry_time is not None
        await core.advance(3)
        (node_id,) = await core.node_ids()
        await core.service.reboot_node(POOL, node_id)
        rebooted_at = core.clock.now()
        await core.settle()
        info = (await core.task("task001")).execution_info
        assert info.requeue_count == 1
        assert info.last_requeue_time is not None
        assert info.last_requeue_time.timestamp() == rebooted_at
        assert info.last_retry_time == retried.last_retry_time  # a restart is not a retry


async def test_a_retried_prep_records_when_its_retry_started() -> None:
    prep = JobPreparationTaskSpec("/bin/prep", constraints=TaskConstraints(max_task_retry_count=1))
    async with running_core(by_task(jobpreparation=FakeOutcome(exit_code=2, duration=4))) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(prep))
        await core.service.add_tasks(JOB, tasks(1))
        await core.advance(4)
        await core.advance(4)
        (status,) = await core.service.list_prep_release_status(JOB)
        assert status.preparation is not None
        info = status.preparation.execution_info
        assert info.retry_count == 1
        starts = core.starts_of("jobpreparation")
        assert len(starts) == 2
        assert info.last_retry_time == at(starts[1].time)
        assert status.preparation.task_root_directory == f"workitems/{JOB}/job-1/jobpreparation"


async def test_variables_per_task_kind() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.terminate_job(JOB)
        await core.settle()
        prep_dir = f"/mnt/batch/tasks/workitems/{JOB}/job-1/jobpreparation"
        seen = {
            kind: core.starts_of(kind)[0].environment
            for kind in ("jobpreparation", "task001", "jobrelease")
        }
        # "All tasks except start task and job preparation task".
        assert "AZ_BATCH_JOB_PREP_DIR" not in seen["jobpreparation"]
        assert "AZ_BATCH_JOB_PREP_WORKING_DIR" not in seen["jobpreparation"]
        for kind in ("task001", "jobrelease"):
            assert seen[kind]["AZ_BATCH_JOB_PREP_DIR"] == prep_dir
            assert seen[kind]["AZ_BATCH_JOB_PREP_WORKING_DIR"] == f"{prep_dir}/wd"
        for kind, env in seen.items():
            task_dir = f"/mnt/batch/tasks/workitems/{JOB}/job-1/{kind}"
            assert env["AZ_BATCH_TASK_ID"] == kind
            assert env["AZ_BATCH_JOB_ID"] == JOB
            assert env["AZ_BATCH_TASK_DIR"] == task_dir
            assert env["AZ_BATCH_TASK_WORKING_DIR"] == f"{task_dir}/wd"
            assert env["AZ_BATCH_CERTIFICATES_DIR"] == f"{task_dir}/certs"


async def test_a_job_without_prep_gives_no_prep_variables() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        env = core.starts_of("task001")[0].environment
        assert not any(name.startswith("AZ_BATCH_JOB_PREP") for name in env)


# --- resource files: the failure code by cause --------------------------------------------


async def settled(core: Core, task_id: str) -> Task:
    """The task once completed: downloads run in threads, in real time."""
    with anyio.fail_after(20):
        while (task := await core.task(task_id)).state is not TaskState.COMPLETED:
            await anyio.sleep(0.05)
    return task


async def test_resource_file_failures_by_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "DOWNLOAD_TIMEOUT", 0.5)
    cases = {
        "gone": ("/gone", "BlobNotFound"),
        "denied": ("/denied", "BlobAccessDenied"),
        "unauthorized": ("/unauthorized", "BlobAccessDenied"),
        "slow": ("/slow", "BlobDownloadTimedOut"),
        "broken": ("/broken", "BlobDownloadMiscError"),
    }
    answers = {
        "/denied": (403, b"ok"),
        "/unauthorized": (401, b"ok"),
        "/broken": (500, b"ok"),
        "/slow": None,
    }
    async with running_core() as core:
        with serving(answers) as base:
            await core.service.create_pool(pool_spec(1, task_slots_per_node=8))
            await core.service.create_job(job_spec())
            specs = [
                TaskSpec(name, "/bin/true", resource_files=[ResourceFile(base + path, "f")])
                for name, (path, _) in cases.items()
            ]
            specs.append(
                TaskSpec("ftp", "/bin/true", resource_files=[ResourceFile("ftp://x/f", "f")])
            )
            await core.service.add_tasks(JOB, specs)
            for name, (_, code) in {**cases, "ftp": ("", "BlobDownloadMiscError")}.items():
                info = (await settled(core, name)).execution_info
                assert info.failure_info is not None, name
                assert (info.failure_info.code, info.exit_code, info.retry_count) == (
                    code,
                    None,
                    0,
                ), name
                assert info.failure_info.code in DOCUMENTED_CODES
        assert core.fake.starts == []  # none of them ran
