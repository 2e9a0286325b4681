"""Failure handling on every backend: onTaskFailure performexitoptionsjobaction and task exit
conditions. Expected values from the REST API reference (api-version 2025-06-01): ExitOptions
(jobAction defaults: none for exit code 0, terminate otherwise; "If the Job's onTaskFailed
property is noaction, then specifying this property returns an error"), BatchJobActionKind
(disable: as Disable Job with requeue; terminate: terminationReason ``TaskFailed``)."""

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
from jobprep_release.backends.errors import InvalidRequest
from tests.contract.harness import BackendOpener, pool

PERFORM = OnTaskFailure.PERFORM_EXIT_OPTIONS_JOB_ACTION


def exits(task_id: str, code: int, conditions: ExitConditions | None = None) -> TaskSpec:
    return TaskSpec(task_id, f"/bin/bash -c 'exit {code}'", exit_conditions=conditions)


async def test_exit_conditions_choose_the_job_action(open_backend: BackendOpener) -> None:
    conditions = ExitConditions(
        exit_codes=(ExitCodeMapping(3, ExitOptions(job_action=JobAction.NONE)),),
        exit_code_ranges=(ExitCodeRangeMapping(4, 5, ExitOptions(job_action=JobAction.DISABLE)),),
    )
    async with pool(open_backend) as batch:
        kept = await batch.create_job(on_task_failure=PERFORM)
        await batch.backend.add_tasks(kept, [exits("three", 3, conditions)])
        await batch.tasks_settled(kept)
        assert (await batch.backend.get_job(kept)).state is JobState.ACTIVE
        disabled = await batch.create_job(on_task_failure=PERFORM)
        await batch.backend.add_tasks(disabled, [exits("five", 5, conditions)])
        await batch.job_in(disabled, JobState.DISABLED)
        ended = await batch.create_job(on_task_failure=PERFORM)
        await batch.backend.add_tasks(ended, [exits("nine", 9, conditions)])
        completed = await batch.job_in(ended, JobState.COMPLETED)
        assert completed.terminate_reason == "TaskFailed"
        spec = await batch.backend.get_job_spec(ended)
        assert spec.on_task_failure is PERFORM
        shown = await batch.backend.get_job_spec(kept)
        assert shown.on_task_failure is PERFORM


async def test_a_job_action_on_a_noaction_job_is_refused(open_backend: BackendOpener) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        terminate = ExitConditions(default=ExitOptions(job_action=JobAction.TERMINATE))
        with pytest.raises(InvalidRequest) as refused:
            await batch.backend.add_tasks(job, [exits("t", 1, terminate)])
        assert refused.value.code == "InvalidPropertyValue"
