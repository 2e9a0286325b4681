"""Updating jobs and tasks, disabling and enabling jobs, job constraints, priority and
parallelism on the fake executor. Expected values from the REST API reference (api-version
2025-06-01): Update Job, Replace Job, Update Task, Disable Job (DisableBatchJobOption), Enable
Job, BatchJobConstraints, BatchJob priority, maxParallelTasks and allowTaskPreemption."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from jobprep_release.backends.base import (
    AutoPoolSpec,
    DisableJobOption,
    ExecutionResult,
    JobConstraints,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    JobUpdate,
    OnAllTasksComplete,
    PoolSpec,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from jobprep_release.backends.errors import Conflict, InvalidRequest
from tests.core.harness import JOB, POOL, Core, job_spec, pool_spec, running_core, tasks


def runs_for(seconds: float) -> FakeOutcome:
    return FakeOutcome(duration=seconds)


def long_running(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(duration=100.0)


async def test_update_job_replaces_only_what_it_gives() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(
            job_spec(max_task_retry_count=2, metadata={"a": "1"}, priority=10)
        )
        before = await core.service.get_job(JOB)
        await core.service.update_job(JOB, JobUpdate(priority=900))
        spec = core.service.job_spec(JOB)
        assert (spec.priority, spec.max_task_retry_count, spec.metadata) == (900, 2, {"a": "1"})
        after = await core.service.get_job(JOB)
        assert after.etag != before.etag


async def test_replace_job_puts_the_defaults_where_it_gives_nothing() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(
            job_spec(max_task_retry_count=2, metadata={"a": "1"}, priority=10, max_parallel_tasks=3)
        )
        await core.service.replace_job(JOB, JobUpdate(priority=500, pool_id=POOL))
        spec = core.service.job_spec(JOB)
        assert spec.priority == 500
        # REST Replace Job: constraints and metadata not given are removed.
        assert (spec.max_task_retry_count, spec.max_wall_clock_time, spec.metadata) == (0, None, {})
        assert spec.max_parallel_tasks == -1


async def test_terminatejob_cannot_be_turned_back_into_noaction() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.service.update_job(
            JOB, JobUpdate(on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB)
        )
        with pytest.raises(InvalidRequest) as refused:
            await core.service.update_job(
                JOB, JobUpdate(on_all_tasks_complete=OnAllTasksComplete.NO_ACTION)
            )
        assert refused.value.code == "InvalidPropertyValue"


async def test_noaction_then_terminatejob_ends_the_job_once_its_tasks_completed() -> None:
    """The documented way to end a job automatically without a job manager: create it with
    noaction, add the tasks, then update it to terminatejob."""
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        assert (await core.service.get_job(JOB)).state is JobState.ACTIVE
        await core.service.update_job(
            JOB, JobUpdate(on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB)
        )
        await core.settle()
        job = await core.service.get_job(JOB)
        assert (job.state, job.terminate_reason) == (JobState.COMPLETED, "AllTasksComplete")


async def test_the_pool_of_a_job_changes_only_while_it_is_disabled() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_pool(replace(pool_spec(1), id="other"))
        await core.service.create_job(job_spec())
        with pytest.raises(Conflict):
            await core.service.update_job(JOB, JobUpdate(pool_id="other"))
        await core.service.disable_job(JOB, DisableJobOption.WAIT)
        await core.service.update_job(JOB, JobUpdate(pool_id="other"))
        assert core.service.job_spec(JOB).pool_id == "other"
        await core.service.enable_job(JOB)
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        task = await core.task("task001")
        assert task.node_id in await core.node_ids("other")


async def ended_job(core: Core) -> None:
    """A completed job (Terminate Job) on a one-node pool."""
    await core.service.create_pool(pool_spec(1))
    await core.service.create_job(job_spec())
    await core.service.terminate_job(JOB)
    await core.settle()


async def test_a_completed_job_takes_no_update() -> None:
    async with running_core() as core:
        await ended_job(core)
        with pytest.raises(Conflict) as refused:
            await core.service.update_job(JOB, JobUpdate(priority=1))
        assert refused.value.code == "JobCompleted"


async def test_disable_requeue_puts_running_tasks_back_and_enable_runs_them_again() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        assert (await core.task("task001")).state is TaskState.RUNNING
        await core.service.disable_job(JOB, DisableJobOption.REQUEUE)
        await core.settle()
        job = await core.service.get_job(JOB)
        assert (job.state, job.previous_state) == (JobState.DISABLED, JobState.DISABLING)
        task = await core.task("task001")
        assert task.state is TaskState.ACTIVE
        # REST TaskExecutionInfo requeueCount counts a job disabled with requeue.
        assert task.execution_info.requeue_count == 1
        await core.advance(200)
        assert len(core.starts_of("task001")) == 1  # nothing starts while the job is disabled
        await core.service.enable_job(JOB)
        await core.settle()
        job = await core.service.get_job(JOB)
        assert (job.state, job.previous_state) == (JobState.ACTIVE, JobState.ENABLING)
        assert (await core.task("task001")).state is TaskState.RUNNING
        assert len(core.starts_of("task001")) == 2


async def test_disable_terminate_completes_running_tasks_with_a_failure() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        await core.service.disable_job(JOB, DisableJobOption.TERMINATE)
        await core.settle()
        assert (await core.service.get_job(JOB)).state is JobState.DISABLED
        ended = await core.task("task001")
        assert ended.state is TaskState.COMPLETED
        assert ended.execution_info.result is ExecutionResult.FAILURE
        assert ended.execution_info.failure_info is not None
        assert ended.execution_info.failure_info.code == "TaskEnded"
        assert (await core.task("task002")).state is TaskState.ACTIVE
        await core.service.enable_job(JOB)
        await core.settle()
        assert len(core.starts_of("task001")) == 1  # not run again
        assert (await core.task("task002")).state is TaskState.RUNNING


async def test_disable_wait_lets_running_tasks_end_then_the_job_is_disabled() -> None:
    async with running_core(lambda start: runs_for(10)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        await core.service.disable_job(JOB, DisableJobOption.WAIT)
        await core.settle()
        assert (await core.service.get_job(JOB)).state is JobState.DISABLING
        assert (await core.task("task001")).state is TaskState.RUNNING
        await core.advance(10)
        assert (await core.service.get_job(JOB)).state is JobState.DISABLED
        done = await core.task("task001")
        assert (done.state, done.execution_info.result) == (
            TaskState.COMPLETED,
            ExecutionResult.SUCCESS,
        )
        assert (await core.task("task002")).state is TaskState.ACTIVE
        assert core.starts_of("task002") == []


async def test_disable_and_enable_refused_in_the_wrong_state() -> None:
    async with running_core() as core:
        await ended_job(core)
        with pytest.raises(Conflict) as refused:
            await core.service.disable_job(JOB, DisableJobOption.REQUEUE)
        assert refused.value.code == "JobCompleted"
        with pytest.raises(Conflict) as refused:
            await core.service.enable_job(JOB)
        assert refused.value.code == "JobCompleted"


async def test_a_disabled_job_takes_new_tasks_and_runs_them_once_enabled() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.disable_job(JOB, DisableJobOption.REQUEUE)
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        assert core.starts_of("task001") == []
        await core.service.enable_job(JOB)
        await core.settle()
        assert (await core.task("task001")).state is TaskState.COMPLETED


async def test_update_task_changes_its_retries() -> None:
    async with running_core(lambda start: FakeOutcome(exit_code=1)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.disable_job(JOB, DisableJobOption.WAIT)
        await core.service.enable_job(JOB)
        await core.service.update_job(JOB, JobUpdate(priority=0))
        await core.service.add_tasks(JOB, [TaskSpec("t", "/bin/false")])
        await core.service.update_task(JOB, "t", TaskConstraints(max_task_retry_count=2))
        await core.settle()
        assert len(core.starts_of("t")) == 3
        assert (await core.task("t")).execution_info.retry_count == 2


async def test_a_job_past_its_max_wall_clock_time_is_terminated() -> None:
    release = JobReleaseTaskSpec("/bin/release")
    prep = JobPreparationTaskSpec("/bin/prep")

    def tasks_run_long(start: FakeStart) -> FakeOutcome:
        return runs_for(0 if start.task_id.startswith("job") else 100)

    async with running_core(tasks_run_long) as core:
        await core.service.create_pool(pool_spec(1))
        limit = timedelta(seconds=5)
        await core.service.create_job(job_spec(prep, release, max_wall_clock_time=limit))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        for _ in range(4):
            await core.advance(1)
        assert (await core.service.get_job(JOB)).state is JobState.ACTIVE
        # The sweeper looks once a minute in these tests (SETTINGS.sweep_interval).
        await core.advance(60)
        job = await core.service.get_job(JOB)
        assert (job.state, job.terminate_reason) == (JobState.COMPLETED, "MaxWallClockTimeExpiry")
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert task.execution_info.failure_info is not None
        assert task.execution_info.failure_info.code == "TaskEnded"
        assert any(start.task_id == "jobrelease" for start in core.fake.starts)


async def test_the_jobs_max_task_retry_count_is_the_default_of_its_tasks() -> None:
    async with running_core(lambda start: FakeOutcome(exit_code=2)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(max_task_retry_count=1))
        await core.service.add_tasks(
            JOB, [TaskSpec("own", "/bin/x", constraints=TaskConstraints(max_task_retry_count=0))]
        )
        await core.service.add_tasks(JOB, [TaskSpec("inherits", "/bin/x")])
        await core.settle()
        assert len(core.starts_of("own")) == 1
        assert len(core.starts_of("inherits")) == 2


async def test_higher_priority_jobs_get_free_nodes_first() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(priority=-5))
        await core.service.create_job(JobSpec(id="urgent", pool_id=POOL, priority=100))
        await core.service.add_tasks(JOB, tasks(1))
        await core.service.add_tasks("urgent", tasks(1))
        await core.settle()
        assert (await core.task("task001", "urgent")).state is TaskState.RUNNING
        assert (await core.task("task001")).state is TaskState.ACTIVE


async def test_max_parallel_tasks_caps_a_jobs_running_tasks() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(2, task_slots_per_node=4))
        await core.service.create_job(job_spec(max_parallel_tasks=3))
        await core.service.add_tasks(JOB, tasks(6))
        await core.settle()
        counts = await core.service.get_task_counts(JOB)
        assert (counts.running, counts.active) == (3, 3)
        await core.service.update_job(JOB, JobUpdate(max_parallel_tasks=5))
        await core.settle()
        assert (await core.service.get_task_counts(JOB)).running == 5


async def test_a_higher_priority_job_preempts_tasks_of_a_job_that_allows_it() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(allow_task_preemption=True))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.create_job(JobSpec(id="urgent", pool_id=POOL, priority=10))
        await core.service.add_tasks("urgent", tasks(1))
        await core.settle()
        assert (await core.task("task001", "urgent")).state is TaskState.RUNNING
        preempted = await core.task("task001")
        assert preempted.state is TaskState.ACTIVE
        assert preempted.execution_info.requeue_count == 1


async def test_without_allow_task_preemption_running_tasks_keep_their_node() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.create_job(JobSpec(id="urgent", pool_id=POOL, priority=10))
        await core.service.add_tasks("urgent", tasks(1))
        await core.settle()
        assert (await core.task("task001")).state is TaskState.RUNNING
        assert (await core.task("task001", "urgent")).state is TaskState.ACTIVE


async def test_job_constraints_update_takes_a_new_wall_clock() -> None:
    async with running_core(long_running) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        constraints = JobConstraints(max_wall_clock_time=timedelta(seconds=30))
        await core.service.update_job(JOB, JobUpdate(constraints=constraints))
        await core.advance(60)
        job = await core.service.get_job(JOB)
        assert (job.state, job.terminate_reason) == (JobState.COMPLETED, "MaxWallClockTimeExpiry")


async def test_an_auto_pool_job_updates_only_its_keep_alive() -> None:
    auto = AutoPoolSpec(pool=PoolSpec(id="", target_dedicated_nodes=1, image="fake"))
    async with running_core() as core:
        await core.service.create_job(JobSpec(id=JOB, pool_id="", auto_pool=auto))
        await core.service.update_job(JOB, JobUpdate(auto_pool=replace(auto, keep_alive=True)))
        kept = core.service.job_spec(JOB).auto_pool
        assert kept is not None and kept.keep_alive is True
        with pytest.raises(InvalidRequest) as refused:
            await core.service.update_job(JOB, JobUpdate(auto_pool=replace(auto, id_prefix="x")))
        assert refused.value.code == "InvalidPropertyValue"
