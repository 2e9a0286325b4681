"""Output files on the fake executor against a real Azurite: uploaded from the node after the
process exits, before the task completes; a failed upload completes the task with
``FileUploadAccessDenied`` (TaskFailureInformationCodes), its exit code kept, and is not retried
("only non-zero exits are retried"). The files are read back from the fake node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest

from jobprep_release.azurite import Azurite
from jobprep_release.backends.base import (
    ExecutionResult,
    NodeLogsRequest,
    OutputFile,
    StartTaskSpec,
    Task,
    TaskConstraints,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from tests.core.harness import JOB, Core, job_spec, pool_spec, running_core
from tests.storage import Blobs, blobs_on

pytestmark = pytest.mark.storage


@pytest.fixture
async def blobs(azurite: Azurite) -> AsyncIterator[Blobs]:
    async with blobs_on(azurite) as made:
        yield made


def writes(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(exit_code=0, stdout=b"out\n", files={"out/a.txt": b"a\n", "b.txt": b"b\n"})


async def completed(core: Core, task_id: str) -> Task:
    """The task once completed: uploads take real time, whatever the fake clock says."""
    with anyio.fail_after(30):
        while (task := await core.task(task_id)).state is not TaskState.COMPLETED:
            await anyio.sleep(0.05)
    return task


async def test_output_files_are_uploaded_before_the_task_completes(blobs: Blobs) -> None:
    container = await blobs.container()
    outputs = [
        OutputFile("out/*.txt", blobs.url(container, "w"), "dir"),
        OutputFile("../stdout.txt", blobs.url(container, "w")),
    ]
    async with running_core(writes) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, [TaskSpec("t", "/bin/work", output_files=outputs)])
        task = await completed(core, "t")
        node = (await core.node_ids())[0]
        logged = await core.fake.read_file(node, f"workitems/{JOB}/job-1/t/fileuploadout.txt")
    assert task.execution_info.result is ExecutionResult.SUCCESS
    assert await blobs.read(container) == {"dir/a.txt": b"a\n", "stdout.txt": b"out\n"}
    assert b"dir/a.txt" in logged and b"stdout.txt" in logged


async def test_a_failed_upload_fails_the_task_without_a_retry(blobs: Blobs) -> None:
    container = await blobs.container()
    denied = [OutputFile("b.txt", blobs.url(container, "r"))]  # a SAS without write permission
    retries = TaskConstraints(max_task_retry_count=3)
    async with running_core(writes) as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        spec = TaskSpec("t", "/bin/work", constraints=retries, output_files=denied)
        await core.service.add_tasks(JOB, [spec])
        task = await completed(core, "t")
        assert len(core.starts_of("t")) == 1
    info = task.execution_info
    assert info.exit_code == 0
    assert info.result is ExecutionResult.FAILURE
    assert info.failure_info is not None
    assert (info.failure_info.category.value, info.failure_info.code) == (
        "usererror",
        "FileUploadAccessDenied",
    )
    assert info.retry_count == 0
    assert await blobs.read(container) == {}


async def test_a_node_that_ran_no_task_has_a_service_log(blobs: Blobs) -> None:
    """A real node's agent logs its own start, so Upload Batch Service Logs on a node that ran
    nothing yet uploads a file (azure-batch's own suite asserts ``numberOfFilesUploaded > 0``
    on a fresh node): the node's boot and its start task's start and end are lines of it."""
    container = await blobs.container()
    setup = StartTaskSpec("/bin/setup")
    async with running_core(writes) as core:
        await core.service.create_pool(pool_spec(1, start_task=setup))
        await core.advance(5)
        (node,) = await core.service.list_nodes("pool")
        assert node.last_boot_time is not None
        since = node.last_boot_time - timedelta(minutes=6)
        result = await core.service.upload_node_logs(
            "pool", node.id, NodeLogsRequest(blobs.url(container, "w"), since)
        )
        # A range that ends before the boot holds no line: nothing goes.
        before = await core.service.upload_node_logs(
            "pool", node.id, NodeLogsRequest(blobs.url(container, "w"), since, since)
        )
    assert result.number_of_files_uploaded == 1
    assert before.number_of_files_uploaded == 0
    (log,) = (await blobs.read(container)).values()
    lines = log.decode().splitlines()
    assert lines[0].endswith(f"node {node.id} booted")
    assert [line.split(" ", 1)[1] for line in lines[1:]] == [
        "started start task",
        "ended start task: exit code 0",
    ]
