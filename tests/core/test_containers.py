"""Container pools and container tasks in the core, on the fake executor: what each kind of
task's `containerSettings` asks the executor for, and the failures the service reports before
a container task can run.

Expected values come from the REST reference (api-version 2025-06-01): TaskContainerSettings
(``workingDirectory``: ``taskWorkingDirectory``, the default, or ``containerImageDefault``;
``containerRunOptions``: extra options of the container create command), ContainerConfiguration
("all regular Tasks ... must specify the containerSettings property, and all other Tasks may
specify it") and TaskFailureInformationCodes (``ContainerInvalidImage``,
``ContainerInvalidSettings``, ``ContainerPoolNotSupported``, ``ContainerTaskSettingsNotFound``).
"""

from __future__ import annotations

from jobprep_release.backends.base import (
    ContainerConfiguration,
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    StartTaskSpec,
    TaskContainerExecutionInfo,
    TaskContainerSettings,
    TaskSpec,
)
from jobprep_release.backends.docker.core.executor import ContainerRun
from jobprep_release.backends.docker.core.fake import FakeOutcome, FakeStart
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core

IMAGE = "example/tool:1"
DOCKER = ContainerConfiguration("dockerCompatible", (IMAGE,))
IN_IMAGE = TaskContainerSettings(IMAGE, container_run_options="-e A=1 --user '0:0'")
IMAGE_DEFAULT = TaskContainerSettings(IMAGE, working_directory="containerImageDefault")


async def test_each_kind_of_task_asks_for_its_container() -> None:
    async with running_core() as core:
        setup = StartTaskSpec("/bin/setup", container_settings=IMAGE_DEFAULT)
        await core.service.create_pool(
            pool_spec(1, container_configuration=DOCKER, start_task=setup)
        )
        await core.advance(1)
        prep = JobPreparationTaskSpec("/bin/prep", container_settings=IN_IMAGE)
        release = JobReleaseTaskSpec("/bin/release")  # optional for release tasks
        await core.service.create_job(job_spec(prep, release))
        await core.service.add_tasks(
            JOB, [TaskSpec("t1", "/bin/work", container_settings=IN_IMAGE)]
        )
        await core.advance(1)
        await core.advance(1)
        await core.service.terminate_job(JOB)
        await core.advance(1)
        await core.advance(1)
        by_command = {start.argv[0]: start.spec for start in core.fake.starts}
        assert by_command["/bin/setup"].container == ContainerRun(IMAGE, (), None)
        wd = f"/mnt/batch/tasks/workitems/{JOB}/job-1/t1/wd"
        assert by_command["/bin/work"].container == ContainerRun(
            IMAGE, ("-e", "A=1", "--user", "0:0"), wd
        )
        assert by_command["/bin/prep"].container is not None
        assert by_command["/bin/release"].container is None
        assert (await core.task("t1")).execution_info.exit_code == 0


async def test_failures_before_a_container_task_runs() -> None:
    async with running_core() as core:
        core.fake.images = {"fake", IMAGE}
        await core.service.create_pool(pool_spec(1, container_configuration=DOCKER))
        await core.advance(1)
        await core.service.create_job(job_spec())
        missing = TaskContainerSettings("example/absent:1")
        unsplittable = TaskContainerSettings(IMAGE, container_run_options="-e 'A=1")
        await core.service.add_tasks(
            JOB,
            [
                TaskSpec("missing", "/bin/work", container_settings=missing),
                TaskSpec("plain", "/bin/work"),
                TaskSpec("unsplittable", "/bin/work", container_settings=unsplittable),
            ],
        )
        for _ in range(4):
            await core.advance(1)
        codes = {}
        for task_id in ("missing", "plain", "unsplittable"):
            run = (await core.task(task_id)).execution_info
            assert run.result is ExecutionResult.FAILURE and run.exit_code is None
            assert run.failure_info is not None
            codes[task_id] = run.failure_info.code
        assert codes == {
            "missing": "ContainerInvalidImage",
            "plain": "ContainerTaskSettingsNotFound",
            "unsplittable": "ContainerInvalidSettings",
        }
        # only the task whose image was looked for reached the executor
        assert [start.task_id for start in core.fake.starts] == ["missing"]


async def test_container_settings_on_a_pool_without_containers_fail() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.advance(1)
        await core.service.create_job(job_spec())
        await core.service.add_tasks(
            JOB, [TaskSpec("t1", "/bin/work", container_settings=IN_IMAGE)]
        )
        await core.advance(1)
        run = (await core.task("t1")).execution_info
        assert run.failure_info is not None
        assert run.failure_info.code == "ContainerPoolNotSupported"
        assert core.fake.starts == []


async def test_container_info_of_each_kind_of_task() -> None:
    """REST TaskContainerExecutionInfo: set only for a run in a container (start task, job
    preparation and release tasks, tasks), with the container's id and its Docker state:
    ``running`` while it runs, ``exited`` once it ended; no error when none was reported."""

    def outcome(start: FakeStart) -> FakeOutcome:
        return FakeOutcome(duration=10.0 if start.argv[0] == "/bin/work" else 0.0)

    async with running_core(outcome) as core:
        setup = StartTaskSpec("/bin/setup", container_settings=IMAGE_DEFAULT)
        await core.service.create_pool(
            pool_spec(1, container_configuration=DOCKER, start_task=setup)
        )
        await core.advance(1)
        prep = JobPreparationTaskSpec("/bin/prep", container_settings=IN_IMAGE)
        release = JobReleaseTaskSpec("/bin/release", container_settings=IN_IMAGE)
        await core.service.create_job(job_spec(prep, release))
        await core.service.add_tasks(
            JOB, [TaskSpec("t1", "/bin/work", container_settings=IN_IMAGE)]
        )
        await core.advance(1)
        running = (await core.task("t1")).execution_info.container_info
        key = core.starts_of("t1")[0].key
        assert running == TaskContainerExecutionInfo(f"fake-{key}", "running")
        await core.advance(10)
        ended = (await core.task("t1")).execution_info
        assert ended.exit_code == 0
        assert ended.container_info == TaskContainerExecutionInfo(f"fake-{key}", "exited")
        await core.service.terminate_job(JOB)
        await core.advance(1)
        await core.advance(1)
        keys = {start.argv[0]: start.key for start in core.fake.starts}
        (node_id,) = await core.node_ids()
        node = await core.service.get_node(POOL, node_id)
        assert node.start_task_info is not None
        assert node.start_task_info.execution_info.container_info == TaskContainerExecutionInfo(
            f"fake-{keys['/bin/setup']}", "exited"
        )
        (status,) = await core.service.list_prep_release_status(JOB)
        assert status.preparation is not None and status.release is not None
        for run, command in ((status.preparation, "/bin/prep"), (status.release, "/bin/release")):
            assert run.execution_info.container_info == TaskContainerExecutionInfo(
                f"fake-{keys[command]}", "exited"
            )


async def test_a_plain_task_has_no_container_info() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.advance(1)
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, [TaskSpec("t1", "/bin/work")])
        await core.advance(1)
        await core.advance(1)
        done = (await core.task("t1")).execution_info
        assert done.exit_code == 0 and done.container_info is None
