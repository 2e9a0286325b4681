"""Failure handling on the fake executor: onTaskFailure performexitoptionsjobaction and a task's
exit conditions. Expected values from the REST API reference (api-version 2025-06-01):
ExitConditions, ExitOptions ("The default is none for exit code 0 and terminate for all other
exit conditions"), BatchJobActionKind (disable as Disable Job with requeue; terminate with the
reason ``TaskFailed``), BatchTaskFailureMode."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import (
    ExitCodeMapping,
    ExitCodeRangeMapping,
    ExitConditions,
    ExitOptions,
    JobAction,
    JobState,
    OnTaskFailure,
    TaskSpec,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from jobprep_release.backends.errors import InvalidRequest
from tests.core.harness import JOB, job_spec, pool_spec, running_core

PERFORM = OnTaskFailure.PERFORM_EXIT_OPTIONS_JOB_ACTION


def exits_with_its_argument(start: FakeStart) -> FakeOutcome:
    """``/bin/exit N`` exits with N; ``/bin/missing`` cannot be started."""
    if start.argv[0] == "/bin/missing":
        return FakeOutcome(not_found=True)
    return FakeOutcome(exit_code=int(start.argv[1]))


def exiting(task_id: str, code: int, conditions: ExitConditions | None = None) -> TaskSpec:
    return TaskSpec(task_id, f"/bin/exit {code}", exit_conditions=conditions)


async def job_after(*specs: TaskSpec, on_task_failure: OnTaskFailure = PERFORM) -> JobState:
    """The job's state once the given tasks ran, one after another on one node."""
    async with running_core(exits_with_its_argument) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(on_task_failure=on_task_failure))
        await core.service.add_tasks(JOB, specs)
        await core.settle(6)
        job = await core.service.get_job(JOB)
        if job.state is JobState.COMPLETED:
            assert job.terminate_reason == "TaskFailed"
        return job.state


async def test_a_failed_task_terminates_the_job_by_default() -> None:
    assert await job_after(exiting("t", 3)) is JobState.COMPLETED


async def test_a_successful_task_does_nothing_by_default() -> None:
    assert await job_after(exiting("t", 0)) is JobState.ACTIVE


async def test_with_noaction_a_failed_task_leaves_the_job_active() -> None:
    state = await job_after(exiting("t", 3), on_task_failure=OnTaskFailure.NO_ACTION)
    assert state is JobState.ACTIVE


async def test_a_listed_exit_code_takes_its_own_action() -> None:
    none = ExitOptions(job_action=JobAction.NONE)
    listed = ExitConditions(exit_codes=(ExitCodeMapping(3, none),))
    assert await job_after(exiting("t", 3, listed)) is JobState.ACTIVE
    # Another code falls to the default: terminate.
    assert await job_after(exiting("t", 4, listed)) is JobState.COMPLETED


async def test_exit_code_zero_listed_explicitly_can_terminate_the_job() -> None:
    terminate = ExitOptions(job_action=JobAction.TERMINATE)
    listed = ExitConditions(exit_codes=(ExitCodeMapping(0, terminate),))
    assert await job_after(exiting("t", 0, listed)) is JobState.COMPLETED


async def test_a_range_and_the_default() -> None:
    disable = ExitOptions(job_action=JobAction.DISABLE)
    ranged = ExitConditions(
        exit_code_ranges=(ExitCodeRangeMapping(10, 20, disable),),
        default=ExitOptions(job_action=JobAction.NONE),
    )
    assert await job_after(exiting("t", 15, ranged)) is JobState.DISABLED
    assert await job_after(exiting("t", 20, ranged)) is JobState.DISABLED
    assert await job_after(exiting("t", 21, ranged)) is JobState.ACTIVE


async def test_a_program_that_cannot_start_is_a_pre_processing_error() -> None:
    keep = ExitConditions(pre_processing_error=ExitOptions(job_action=JobAction.NONE))
    assert await job_after(TaskSpec("t", "/bin/missing", exit_conditions=keep)) is JobState.ACTIVE
    fallback = ExitConditions(default=ExitOptions(job_action=JobAction.DISABLE))
    missing = TaskSpec("t", "/bin/missing", exit_conditions=fallback)
    assert await job_after(missing) is JobState.DISABLED


async def test_the_action_waits_for_the_last_retry() -> None:
    async with running_core(exits_with_its_argument) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(on_task_failure=PERFORM, max_task_retry_count=2))
        await core.service.add_tasks(JOB, [exiting("t", 1)])
        await core.settle(6)
        assert len(core.starts_of("t")) == 3
        assert (await core.service.get_job(JOB)).terminate_reason == "TaskFailed"


async def test_a_job_action_needs_performexitoptionsjobaction() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        terminate = ExitConditions(default=ExitOptions(job_action=JobAction.TERMINATE))
        with pytest.raises(InvalidRequest) as refused:
            await core.service.add_tasks(JOB, [exiting("t", 1, terminate)])
        assert refused.value.code == "InvalidPropertyValue"
