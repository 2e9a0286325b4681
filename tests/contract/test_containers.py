"""Container pools and container tasks on every backend: a task with ``containerSettings``
runs in a container from its image, sharing the node's task directories, with its exit code
and output as any task's; the failures the service reports for container settings.

Expected values come from the REST reference (api-version 2025-06-01): ContainerConfiguration,
TaskContainerSettings (``workingDirectory`` ``taskWorkingDirectory`` by default: the task's
``wd``), the "Azure Batch runtime environment variables" table, and TaskFailureInformationCodes
(``ContainerInvalidImage``: "The container image was invalid", ``ContainerPoolNotSupported``,
``ContainerTaskSettingsNotFound``: "Container-enabled compute node requires task container
settings"). No registry is reachable here: images are the node image, present locally.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import timedelta

import anyio
import docker
import pytest

from jobprep_release.backends.administration import NodeAdministration
from jobprep_release.backends.base import (
    ContainerConfiguration,
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    NodeState,
    StartTaskSpec,
    TaskConstraints,
    TaskContainerSettings,
    TaskSpec,
    TaskState,
)
from tests.contract.harness import BackendOpener, Batch, pool

IMAGE = "debian:bookworm-slim"
DOCKER = ContainerConfiguration(type="dockerCompatible", container_image_names=(IMAGE,))
IN_IMAGE = TaskContainerSettings(image_name=IMAGE)
TASKS = "workitems/%s/job-1"


MARKED = "jobprep-release-test/containers:marked"
"""An image built here from the node image, with a file the node image lacks."""
MARKED_DOCKERFILE = f"""FROM {IMAGE}
RUN echo marked > /marker
LABEL jobprep_release.test=containers
"""


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


@pytest.fixture
def marked_image(backend_name: str) -> Iterator[str]:
    """`MARKED`, built on the local engine (no registry is needed), removed afterwards."""
    if backend_name == "azure":
        pytest.skip("the image is built on the local engine; a real pool cannot pull it")
    client = docker.from_env()
    try:
        client.images.build(fileobj=io.BytesIO(MARKED_DOCKERFILE.encode()), tag=MARKED, rm=True)
        yield MARKED
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(MARKED, force=True)
        client.close()


def task_containers(pool_id: str) -> list[object]:
    client = docker.from_env()
    try:
        labels = [f"jobprep_release.pool={pool_id}", "jobprep_release.role=task"]
        return list(client.containers.list(all=True, filters={"label": labels}))
    finally:
        client.close()


async def no_task_containers(pool_id: str) -> None:
    """Wait (10 s at most) until no task container of the pool is left: each is removed just
    after its exit is reported."""
    with anyio.fail_after(10):
        while task_containers(pool_id):
            await anyio.sleep(0.1)


async def test_a_container_task_runs_in_its_image_and_shares_the_node_directories(
    open_backend: BackendOpener,
) -> None:
    show = bash(
        'echo "$AZ_BATCH_TASK_WORKING_DIR|$PWD|$AZ_BATCH_NODE_ROOT_DIR|$MINE"; '
        'echo from-container > "$AZ_BATCH_NODE_SHARED_DIR/c.txt"; echo oops >&2; exit 3'
    )
    async with pool(open_backend, container_configuration=DOCKER) as batch:
        job = await batch.create_job()
        task = TaskSpec("c1", show, environment={"MINE": "mine"}, container_settings=IN_IMAGE)
        await batch.backend.add_tasks(job, [task])
        done = (await batch.tasks_settled(job))["c1"]
        run = done.execution_info
        assert run.exit_code == 3 and run.result is ExecutionResult.FAILURE
        assert run.failure_info is not None and run.failure_info.code == "FailureExitCode"
        node = done.node_id
        assert node is not None
        wd = f"/mnt/batch/tasks/workitems/{job}/job-1/c1/wd"
        read = batch.backend.read_node_file
        out = await read(batch.pool_id, node, f"{TASKS % job}/c1/stdout.txt")
        assert out.decode().splitlines() == [f"{wd}|{wd}|/mnt/batch/tasks|mine"]
        err = await read(batch.pool_id, node, f"{TASKS % job}/c1/stderr.txt")
        assert err.decode() == "oops\n"
        assert await batch.shared_file(node, "c.txt") == "from-container\n"


async def test_container_image_default_working_directory_and_wall_clock(
    open_backend: BackendOpener,
) -> None:
    image_default = TaskContainerSettings(IMAGE, working_directory="containerImageDefault")
    async with pool(open_backend, container_configuration=DOCKER) as batch:
        job = await batch.create_job()
        slow = TaskSpec(
            "slow",
            "sleep 60",
            constraints=TaskConstraints(max_wall_clock_time=timedelta(seconds=2)),
            container_settings=IN_IMAGE,
        )
        # debian's image has no WORKDIR: a container starts in /
        where = TaskSpec("where", "pwd", container_settings=image_default)
        await batch.backend.add_tasks(job, [slow, where])
        tasks = await batch.tasks_settled(job)
        assert tasks["where"].execution_info.exit_code == 0
        node = tasks["where"].node_id
        assert node is not None
        path = f"{TASKS % job}/where/stdout.txt"
        out = await batch.backend.read_node_file(batch.pool_id, node, path)
        assert out.decode() == "/\n"
        failure = tasks["slow"].execution_info.failure_info
        assert failure is not None and failure.code == "TaskEnded"


async def test_container_settings_failures_as_the_service_reports_them(
    open_backend: BackendOpener,
) -> None:
    missing = TaskContainerSettings("jobprep-release-test/no-such-image:absent")
    async with pool(open_backend, container_configuration=DOCKER) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(
            job,
            [
                TaskSpec("missing", "true", container_settings=missing),
                TaskSpec("plain", "true"),
            ],
        )
        tasks = await batch.tasks_settled(job)
        codes = {}
        for name, task in tasks.items():
            assert task.execution_info.result is ExecutionResult.FAILURE
            assert task.execution_info.exit_code is None
            failure = task.execution_info.failure_info
            assert failure is not None
            codes[name] = failure.code
        assert codes == {
            "missing": "ContainerInvalidImage",
            "plain": "ContainerTaskSettingsNotFound",
        }


async def test_container_settings_on_a_pool_without_container_configuration_fail(
    open_backend: BackendOpener,
) -> None:
    async with pool(open_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("c1", "true", container_settings=IN_IMAGE)])
        run = (await batch.tasks_settled(job))["c1"].execution_info
        assert run.result is ExecutionResult.FAILURE and run.exit_code is None
        assert run.failure_info is not None
        assert run.failure_info.code == "ContainerPoolNotSupported"


async def test_a_container_task_runs_in_an_image_the_node_lacks_and_its_container_goes(
    open_backend: BackendOpener, marked_image: str
) -> None:
    marked = ContainerConfiguration(container_image_names=(marked_image,))
    async with pool(open_backend, container_configuration=marked) as batch:
        job = await batch.create_job()
        settings = TaskContainerSettings(marked_image)
        await batch.backend.add_tasks(
            job, [TaskSpec("m1", "cat /marker", container_settings=settings)]
        )
        done = (await batch.tasks_settled(job))["m1"]
        assert done.execution_info.exit_code == 0 and done.node_id is not None
        path = f"{TASKS % job}/m1/stdout.txt"
        out = await batch.backend.read_node_file(batch.pool_id, done.node_id, path)
        assert out.decode() == "marked\n"
        # the node itself has no /marker: the task did not run there
        await no_task_containers(batch.pool_id)


async def test_start_preparation_and_release_tasks_run_in_containers_and_terminate_kills(
    open_backend: BackendOpener,
) -> None:
    def append(word: str) -> str:
        return bash(f'echo {word} >> "$AZ_BATCH_NODE_SHARED_DIR/kinds"')

    start = StartTaskSpec(append("start"), container_settings=IN_IMAGE)
    async with pool(open_backend, container_configuration=DOCKER, start_task=start) as batch:
        prep = JobPreparationTaskSpec(append("prep"), container_settings=IN_IMAGE)
        release = JobReleaseTaskSpec(append("release"), container_settings=IN_IMAGE)
        job = await batch.create_job(prep, release)
        long = TaskSpec("long", "sleep 300", container_settings=IN_IMAGE)
        await batch.backend.add_tasks(job, [long])
        running = await batch.task_in(job, "long", TaskState.RUNNING)
        assert running.node_id is not None
        await batch.backend.terminate_task(job, "long")
        ended = await batch.task_in(job, "long", TaskState.COMPLETED)
        failure = ended.execution_info.failure_info
        assert failure is not None and failure.code == "TaskEnded"
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED)
        kinds = await batch.shared_file(running.node_id, "kinds")
        assert kinds == "start\nprep\nrelease\n"


async def test_a_reboot_ends_a_container_task_and_it_runs_again(
    open_backend: BackendOpener, backend_name: str
) -> None:
    async with pool(open_backend, container_configuration=DOCKER) as batch:
        job = await batch.create_job()
        count = bash('echo run >> "$AZ_BATCH_NODE_SHARED_DIR/runs"; sleep 3')
        await batch.backend.add_tasks(job, [TaskSpec("t", count, container_settings=IN_IMAGE)])
        running = await batch.task_in(job, "t", TaskState.RUNNING)
        assert running.node_id is not None
        with anyio.fail_after(30):  # the first run has written its line (its container is up)
            while await batch.shared_file(running.node_id, "runs") != "run\n":
                await anyio.sleep(0.1)
        await batch.backend.reboot_node(batch.pool_id, running.node_id)
        done = (await batch.tasks_settled(job))["t"]
        assert done.execution_info.exit_code == 0
        assert done.execution_info.requeue_count == 1
        assert await batch.shared_file(running.node_id, "runs") == "run\nrun\n"
        if backend_name != "azure":
            await no_task_containers(batch.pool_id)


def pool_volumes(pool_id: str) -> list[object]:
    client = docker.from_env()
    try:
        return list(client.volumes.list(filters={"label": f"jobprep_release.pool={pool_id}"}))
    finally:
        client.close()


async def remove_nodes_and_wait(batch: Batch) -> None:
    """Remove the pool's nodes; wait (30 s at most) until none of its task containers and
    volumes is left."""
    backend = batch.backend
    assert isinstance(backend, NodeAdministration), type(backend)
    await backend.remove_nodes(batch.pool_id, batch.node_ids)
    with anyio.fail_after(30):
        while task_containers(batch.pool_id) or pool_volumes(batch.pool_id):
            await anyio.sleep(0.2)


async def test_removing_a_node_ends_its_running_container_task_and_leaves_nothing(
    open_backend: BackendOpener, backend_name: str
) -> None:
    # Found through the endpoint: deleting a container pool while a container task ran left
    # the pool `deleting` (the engine refused the node's volume, "volume is in use").
    if backend_name == "azure":
        pytest.skip("looks at the local engine's containers and volumes")
    async with pool(open_backend, container_configuration=DOCKER) as batch:
        job = await batch.create_job()
        long = TaskSpec("long", "sleep 300", container_settings=IN_IMAGE)
        await batch.backend.add_tasks(job, [long])
        await batch.task_in(job, "long", TaskState.RUNNING)
        with anyio.fail_after(30):
            while not task_containers(batch.pool_id):
                await anyio.sleep(0.1)
        await remove_nodes_and_wait(batch)
        # requeued (Remove Nodes' default, requeue), not failed
        assert (await batch.task_in(job, "long", TaskState.ACTIVE)).execution_info.requeue_count


async def test_container_info_names_the_container_and_its_state(
    open_backend: BackendOpener,
) -> None:
    """REST TaskContainerExecutionInfo: the container's id and its state as ``docker
    inspect`` gives it (``running``, then ``exited``), on a task, a start task and a job
    preparation task that run in containers; none on a release task that does not."""
    setup = StartTaskSpec("/bin/true", container_settings=IN_IMAGE)
    async with pool(open_backend, container_configuration=DOCKER, start_task=setup) as batch:
        job = await batch.create_job(
            JobPreparationTaskSpec("/bin/true", container_settings=IN_IMAGE),
            JobReleaseTaskSpec("/bin/true"),
        )
        await batch.backend.add_tasks(
            job, [TaskSpec("c1", "/bin/sleep 6", container_settings=IN_IMAGE)]
        )
        running = await batch.task_in(job, "c1", TaskState.RUNNING)
        with anyio.fail_after(10):
            while running.execution_info.container_info is None:
                await anyio.sleep(0.1)
                running = await batch.backend.get_task(job, "c1")
        info = running.execution_info.container_info
        # the one running (the start and preparation tasks' may not be removed yet)
        (container,) = [
            row
            for row in task_containers(batch.pool_id)
            if row.status == "running"  # type: ignore[attr-defined]
        ]
        assert info.container_id == container.id  # type: ignore[attr-defined]
        assert (info.state, info.error) == ("running", None)
        done = (await batch.tasks_settled(job))["c1"]
        assert done.execution_info.container_info is not None
        ended = done.execution_info.container_info
        assert (ended.container_id, ended.state, ended.error) == (info.container_id, "exited", None)
        (node,) = await batch.nodes_in(NodeState.IDLE, NodeState.RUNNING)
        assert node.start_task_info is not None
        started = node.start_task_info.execution_info.container_info
        assert started is not None and started.state == "exited"
        assert started.container_id and started.container_id != info.container_id
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED)
        (status,) = (await batch.prep_release(job)).values()
        assert status.preparation is not None and status.release is not None
        prepared = status.preparation.execution_info.container_info
        assert prepared is not None and prepared.state == "exited"
        assert status.release.execution_info.container_info is None


async def test_a_container_task_being_made_as_its_node_is_removed_leaves_nothing(
    open_backend: BackendOpener, backend_name: str
) -> None:
    """The node is removed while its container tasks' containers are still being made (the
    tasks were just placed there): none of them is left behind, nor the node's volume."""
    if backend_name == "azure":
        pytest.skip("looks at the local engine's containers and volumes")
    async with pool(open_backend, container_configuration=DOCKER, slots=4) as batch:
        job = await batch.create_job()
        tasks = [TaskSpec(f"t{i}", "sleep 300", container_settings=IN_IMAGE) for i in range(4)]
        await batch.backend.add_tasks(job, tasks)
        await batch.task_in(job, "t0", TaskState.RUNNING)
        await remove_nodes_and_wait(batch)
        await anyio.sleep(3)  # a container made late would show by now
        assert not task_containers(batch.pool_id) and not pool_volumes(batch.pool_id)
