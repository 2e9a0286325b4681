"""Job preparation and release tasks, termination and deletion on the fake executor
(batch-semantics.md, "Job preparation task", "Job release task", "States")."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from jobprep_release.backends.base import (
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    TaskConstraints,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from jobprep_release.backends.errors import NotFound
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core, tasks

PREP = JobPreparationTaskSpec("/bin/prep")
RELEASE = JobReleaseTaskSpec("/bin/release")


def by_task(**outcomes: FakeOutcome) -> Callable[[FakeStart], FakeOutcome]:
    def script(start: FakeStart) -> FakeOutcome:
        return outcomes.get(start.task_id, FakeOutcome())

    return script


async def test_prep_runs_once_per_node_before_its_first_task_and_not_on_idle_nodes() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(3))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(4))  # pack, one slot: nodes 1 and 2... in turn
        await core.settle()
        order = [(s.node_id, s.task_id) for s in core.fake.starts]
        for node_id in {node for node, _ in order}:
            on_node = [task for node, task in order if node == node_id]
            assert on_node[0] == "jobpreparation"
            assert on_node.count("jobpreparation") == 1
        statuses = await core.service.list_prep_release_status(JOB)
        assert {s.node_id for s in statuses} == {node for node, _ in order}


async def test_wait_for_success_keeps_tasks_preparing_until_prep_succeeds() -> None:
    async with running_core(by_task(jobpreparation=FakeOutcome(duration=10))) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        assert (await core.task("task001")).state is TaskState.PREPARING
        assert core.starts_of("task001") == []
        await core.advance(10)
        assert (await core.task("task001")).state is TaskState.COMPLETED


async def test_without_wait_for_success_tasks_start_while_prep_runs() -> None:
    prep = JobPreparationTaskSpec("/bin/prep", wait_for_success=False)
    async with running_core(by_task(jobpreparation=FakeOutcome(duration=10))) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(prep))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        assert (await core.task("task001")).state is TaskState.COMPLETED


async def test_a_failed_prep_is_retried_then_blocks_the_node_for_the_job() -> None:
    prep = JobPreparationTaskSpec("/bin/prep", constraints=TaskConstraints(max_task_retry_count=1))

    def script(start: FakeStart) -> FakeOutcome:
        failing = start.task_id == "jobpreparation" and start.node_id == nodes[0]
        return FakeOutcome(exit_code=1 if failing else 0)

    async with running_core(script) as core:
        await core.service.create_pool(pool_spec(2))
        await core.settle()
        nodes = await core.node_ids()
        await core.service.create_job(job_spec(prep))
        await core.service.add_tasks(JOB, tasks(3))
        await core.settle()
        preps = [s.node_id for s in core.starts_of("jobpreparation")]
        assert preps.count(nodes[0]) == 2  # one try and one retry
        for task in await core.service.list_tasks(JOB):
            assert task.state is TaskState.COMPLETED
            assert task.node_id == nodes[1]
        (blocked,) = [
            s for s in await core.service.list_prep_release_status(JOB) if s.node_id == nodes[0]
        ]
        assert blocked.preparation is not None
        assert blocked.preparation.execution_info.retry_count == 1
        assert blocked.preparation.execution_info.result is ExecutionResult.FAILURE


async def test_prep_runs_again_after_a_reboot_and_a_reimage() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        node_id = (await core.node_ids())[0]
        await core.service.reboot_node(POOL, node_id)
        await core.settle()
        await core.service.add_tasks(JOB, tasks(2)[1:])
        await core.settle()
        await core.service.reimage_node(POOL, node_id)
        await core.settle()
        await core.service.add_tasks(JOB, [*tasks(3)[2:]])
        await core.settle()
        assert len(core.starts_of("jobpreparation")) == 3


async def test_prep_does_not_run_again_after_a_reboot_when_not_asked_to() -> None:
    prep = JobPreparationTaskSpec("/bin/prep", rerun_on_node_reboot_after_success=False)
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(prep))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.reboot_node(POOL, (await core.node_ids())[0])
        await core.settle()
        await core.service.add_tasks(JOB, tasks(2)[1:])
        await core.settle()
        assert len(core.starts_of("jobpreparation")) == 1
        assert (await core.task("task002")).state is TaskState.COMPLETED


async def test_terminate_runs_release_where_tasks_ran_and_completes_after_it() -> None:
    outcome = by_task(jobrelease=FakeOutcome(duration=30), task001=FakeOutcome(duration=None))
    async with running_core(outcome) as core:
        await core.service.create_pool(pool_spec(3))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        ran = {s.node_id for s in core.starts_of("jobpreparation")}
        assert len(ran) == 2
        await core.service.terminate_job(JOB)
        await core.settle()
        job = await core.service.get_job(JOB)
        assert job.state is JobState.TERMINATING
        task001 = await core.task("task001")
        assert task001.state is TaskState.COMPLETED  # the running task was ended
        assert {s.node_id for s in core.starts_of("jobrelease")} == ran
        await core.advance(30)
        job = await core.service.get_job(JOB)
        assert job.state is JobState.COMPLETED
        assert job.previous_state is JobState.TERMINATING
        assert job.end_time is not None and job.state_transition_time == job.end_time
        assert len(core.starts_of("jobrelease")) == 2  # never twice


async def test_an_active_task_stays_active_after_terminate_and_never_runs() -> None:
    async with running_core(lambda start: FakeOutcome(duration=None)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        await core.service.terminate_job(JOB)
        await core.settle()
        assert (await core.task("task002")).state is TaskState.ACTIVE
        assert core.starts_of("task002") == []


async def test_delete_waits_for_release_then_removes_the_job_and_its_files() -> None:
    async with running_core(by_task(jobrelease=FakeOutcome(duration=60))) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        deleted = anyio.Event()

        async def delete() -> None:
            await core.service.delete_job(JOB)
            deleted.set()

        core.group.start_soon(delete)
        await core.settle()
        assert not deleted.is_set()
        # Deleting from the start (the service's "deleting": the delete is still in progress,
        # e.g. while the system terminates running tasks), while the release task runs.
        job = await core.service.get_job(JOB)
        assert (job.state, job.previous_state) == (JobState.DELETING, JobState.ACTIVE)
        assert len(core.starts_of("jobrelease")) == 1
        await core.advance(60)
        assert deleted.is_set()
        assert core.fake.removed_trees == [
            ((await core.node_ids())[0], "/mnt/batch/tasks/workitems/job")
        ]
        try:
            await core.service.get_job(JOB)
        except NotFound:
            pass
        else:
            raise AssertionError("the job is still there")


async def test_delete_after_terminate_does_not_run_release_again() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.terminate_job(JOB)
        await core.settle()
        await core.service.delete_job(JOB)
        assert len(core.starts_of("jobrelease")) == 1


async def test_release_does_not_run_on_a_node_whose_prep_never_completed() -> None:
    async with running_core(by_task(jobpreparation=FakeOutcome(duration=None))) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec(PREP, RELEASE))
        await core.service.add_tasks(JOB, tasks(1))
        await core.settle()
        await core.service.terminate_job(JOB)
        await core.settle()
        assert core.starts_of("jobrelease") == []
        assert (await core.service.get_job(JOB)).state is JobState.COMPLETED
