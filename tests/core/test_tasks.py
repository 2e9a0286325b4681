"""Tasks on the fake executor: retries, requeues, wall clock, terminate, retention, and the
recorded history of a task (batch-semantics.md, "Tasks")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    JobState,
    OnAllTasksComplete,
    TaskConstraints,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from jobprep_release.backends.errors import Conflict
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core, tasks


def failing(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(exit_code=3)


async def test_a_failing_task_is_retried_up_to_its_max_task_retry_count() -> None:
    async with running_core(failing) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        limits = TaskConstraints(max_task_retry_count=2)
        await core.service.add_tasks(JOB, tasks(1, constraints=limits))
        await core.settle()
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert len(core.starts_of("task001")) == 3
        info = task.execution_info
        assert (info.retry_count, info.exit_code, info.result) == (2, 3, ExecutionResult.FAILURE)
        assert info.failure_info is not None and info.failure_info.code == "FailureExitCode"


async def test_a_task_without_constraints_takes_the_jobs_retry_count() -> None:
    async with running_core(failing) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(max_task_retry_count=1))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        assert len(core.starts_of("task001")) == 2
        assert (await core.task("task001")).execution_info.retry_count == 1


async def test_unlimited_retries_run_until_the_task_succeeds() -> None:
    def fails_four_times(start: FakeStart) -> FakeOutcome:
        return FakeOutcome(exit_code=1 if len(core.starts_of(start.task_id)) <= 4 else 0)

    async with running_core(fails_four_times) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        limits = TaskConstraints(max_task_retry_count=-1)
        await core.service.add_tasks(JOB, tasks(1, constraints=limits))
        await core.settle(6)
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert task.execution_info.result is ExecutionResult.SUCCESS
        assert task.execution_info.retry_count == 4


async def test_a_missing_program_is_not_retried() -> None:
    async with running_core(lambda start: FakeOutcome(not_found=True)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(
            JOB, tasks(1, constraints=TaskConstraints(max_task_retry_count=3))
        )
        await core.settle()
        task = await core.task("task001")
        assert len(core.starts_of("task001")) == 1
        assert task.execution_info.exit_code is None
        assert task.execution_info.failure_info is not None
        assert task.execution_info.failure_info.code == "CommandProgramNotFound"


async def test_a_task_past_its_wall_clock_is_ended_and_says_so() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        limits = TaskConstraints(max_wall_clock_time=timedelta(seconds=30))
        await core.service.add_tasks(JOB, tasks(1, constraints=limits))
        await core.settle()
        assert (await core.task("task001")).state is TaskState.RUNNING
        await core.advance(29)
        assert (await core.task("task001")).state is TaskState.RUNNING
        await core.advance(1)
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        info = task.execution_info
        assert info.failure_info is not None
        assert info.failure_info.code == "TaskEnded"
        assert info.start_time is not None and info.end_time is not None
        assert info.end_time - info.start_time == timedelta(seconds=30)


async def test_a_completed_task_was_running_between_its_start_and_end() -> None:
    async with running_core(lambda start: FakeOutcome(duration=20)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.advance(5)
        running = await core.task("task001")
        await core.advance(20)
        task = await core.task("task001")
        again = await core.task("task001")
        assert task == again  # reading changes nothing
        info = task.execution_info
        assert task.state is TaskState.COMPLETED and task.previous_state is TaskState.RUNNING
        assert info.start_time is not None and info.end_time is not None
        assert task.previous_state_transition_time is not None
        assert info.start_time <= task.previous_state_transition_time <= info.end_time
        assert task.state_transition_time == info.end_time
        assert running.state_transition_time == info.start_time
        assert task.etag != running.etag
        assert running.last_modified is not None and task.last_modified is not None
        assert task.last_modified > running.last_modified


async def test_terminating_a_running_task_kills_it_and_an_active_one_never_runs() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        assert [t.state for t in await core.service.list_tasks(JOB)] == [
            TaskState.RUNNING,
            TaskState.ACTIVE,
        ]
        await core.service.terminate_task(JOB, "task002")
        await core.service.terminate_task(JOB, "task001")
        await core.settle()
        node = core.fake.nodes[(await core.node_ids())[0]]
        assert node.running == {}
        for task in await core.service.list_tasks(JOB):
            assert task.state is TaskState.COMPLETED
            assert task.execution_info.failure_info is not None
            assert task.execution_info.failure_info.code == "TaskEnded"
        assert core.starts_of("task002") == []


async def test_all_tasks_complete_ends_a_job_without_tasks_at_once_and_refuses_later_tasks() -> (
    None
):
    # REST OnAllTasksComplete: "if a Job contains no Tasks, then all Tasks are considered
    # complete"; Add Task to a completed job: 409 JobCompleted.
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(
            job_spec(on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB)
        )
        await core.settle()
        job = await core.service.get_job(JOB)
        assert (job.state, job.terminate_reason) == (JobState.COMPLETED, "AllTasksComplete")
        with pytest.raises(Conflict) as refused:
            await core.service.add_tasks(JOB, tasks(1))
        assert refused.value.code == "JobCompleted"
        assert core.fake.starts == []


async def test_no_action_leaves_a_job_without_tasks_active() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.advance(60)
        assert (await core.service.get_job(JOB)).state is JobState.ACTIVE


async def test_a_task_lost_with_its_node_is_requeued_and_runs_again() -> None:
    async with running_core(lambda start: FakeOutcome(duration=10)) as core:
        await core.service.create_pool(pool_spec(2))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        first = (await core.task("task001")).node_id
        assert first is not None
        core.fake.lose_node(first)
        await core.settle()
        task = await core.task("task001")
        assert task.execution_info.requeue_count == 1
        assert task.execution_info.retry_count == 0
        assert task.node_id not in (None, first)  # placed again, on the node still up
        await core.advance(10)
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert task.execution_info.result is ExecutionResult.SUCCESS
        assert len(core.starts_of("task001")) == 2


async def test_reboot_and_reimage_requeue_what_ran_there() -> None:
    async with running_core(lambda start: FakeOutcome(duration=10)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        node_id = (await core.node_ids())[0]
        await core.service.reboot_node(POOL, node_id)
        await core.settle()
        assert (await core.task("task001")).execution_info.requeue_count == 1
        await core.service.reimage_node(POOL, node_id)
        await core.settle()
        task = await core.task("task001")
        assert task.execution_info.requeue_count == 2
        assert task.state is TaskState.RUNNING
        await core.advance(10)
        assert (await core.task("task001")).state is TaskState.COMPLETED


async def test_task_files_go_once_their_retention_time_has_passed() -> None:
    async with running_core(lambda start: FakeOutcome(stdout=b"hi\n")) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        limits = TaskConstraints(retention_time=timedelta(minutes=5))
        await core.service.add_tasks(JOB, tasks(1, constraints=limits))
        await core.settle()
        pool_id, node_id, directory = core.service.task_location(JOB, "task001")
        data = await core.service.read_node_file(pool_id, node_id, f"{directory}/stdout.txt")
        assert data == b"hi\n"
        await core.advance(4 * 60)
        assert core.fake.removed_trees == []
        await core.advance(2 * 60)
        assert [path for _, path in core.fake.removed_trees] == [
            "/mnt/batch/tasks/workitems/job/job-1/task001"
        ]


async def test_task_counts_follow_every_kind_of_move() -> None:
    """Get Task Counts is kept as tasks move (`TaskTally`), not counted on each call: after
    retries, a success, a failure, a task still running, a terminated active task and a
    requeue after a lost node, it agrees with the tasks' own states and results, and the saved
    state carries no count."""

    def script(start: FakeStart) -> FakeOutcome:
        number = int(start.task_id[-3:])
        if number == 1:  # fails twice, then succeeds on its last retry
            return FakeOutcome(exit_code=0 if len(core.starts_of(start.task_id)) > 2 else 1)
        if number == 2:
            return FakeOutcome(exit_code=5)
        if number == 3:
            return FakeOutcome(duration=None)  # runs until ended
        return FakeOutcome(duration=50.0)

    async with running_core(script) as core:
        await core.service.create_pool(pool_spec(1, task_slots_per_node=2))
        await core.service.create_job(job_spec())
        limits = TaskConstraints(max_task_retry_count=2)
        await core.service.add_tasks(JOB, tasks(6, constraints=limits))
        first = await core.service.get_task_counts(JOB)  # counted from here on
        assert (first.active + first.running, first.completed) == (6, 0)
        await core.advance(1)
        await core.service.terminate_task(JOB, "task006")  # never ran
        (node_id,) = await core.node_ids()
        core.fake.lose_node(node_id)
        await core.advance(1)
        core.fake.restore_node(node_id)
        await core.advance(10)
        views = await core.service.list_tasks(JOB)
        counts = await core.service.get_task_counts(JOB)
        completed = [v for v in views if v.state is TaskState.COMPLETED]
        succeeded = [v for v in completed if v.execution_info.result is ExecutionResult.SUCCESS]
        assert counts.active == sum(v.state is TaskState.ACTIVE for v in views)
        assert counts.running == sum(
            v.state in (TaskState.RUNNING, TaskState.PREPARING) for v in views
        )
        assert (counts.completed, counts.succeeded) == (len(completed), len(succeeded))
        assert counts.failed == len(completed) - len(succeeded)
        assert counts.completed >= 2 and counts.failed >= 2 and counts.running >= 1
        assert core.store.document is not None and "tally" not in core.store.document
