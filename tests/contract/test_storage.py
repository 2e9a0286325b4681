"""Azure Storage on every task kind, against a real Azurite: resource files from blob
containers (``storageContainerUrl`` with ``blobPrefix``, ``autoStorageContainerName``, a
blob's SAS ``httpUrl``), their failures by cause, and output files under each upload
condition (REST ResourceFile, OutputFile; TaskFailureInformationCodes), and Upload Batch
Service Logs."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobprep_release.azurite import Azurite
from jobprep_release.backends.base import (
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobState,
    NodeLogsRequest,
    OutputFile,
    OutputFileUploadCondition,
    ResourceFile,
    StartTaskSpec,
    Task,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.core.storage import LinkedStorage
from jobprep_release.backends.errors import NotFound
from tests.contract.harness import BackendOpener, opener, pool
from tests.contract.test_tasks import bash, stdout
from tests.storage import Blobs, blobs_on

pytestmark = pytest.mark.storage


@pytest.fixture
def local_only(backend_name: str) -> None:
    if backend_name == "azure":
        pytest.skip("a real account cannot reach Azurite on this machine's loopback")


@pytest.fixture
async def blobs(azurite: Azurite) -> AsyncIterator[Blobs]:
    async with blobs_on(azurite) as made:
        yield made


@pytest.fixture
def linked_backend(backend_name: str, tmp_path: Path, azurite: Azurite) -> BackendOpener:
    """The backend, its account linked to Azurite's account."""
    linked = LinkedStorage(connection_string=azurite.connection_string)
    return opener(backend_name, tmp_path / "state", linked)


def failure_code(task: Task) -> str | None:
    info = task.execution_info.failure_info
    return info.code if info is not None else None


async def test_resource_files_from_containers_on_every_task_kind(
    local_only: None, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    common = await blobs.container(
        {"data/a.txt": b"alpha\n", "data/sub/b.txt": b"beta\n", "other.txt": b"no\n"}
    )
    linked = await blobs.container({"tool.sh": b"#!/bin/sh\necho tool\n"})
    listing = blobs.url(common, "rl")
    blob_url = blobs.url(common, "r").replace("?", "/other.txt?", 1)
    prep = JobPreparationTaskSpec(
        bash('cat common/data/a.txt common/data/sub/b.txt > "$AZ_BATCH_NODE_SHARED_DIR/prep"'),
        resource_files=[
            ResourceFile(storage_container_url=listing, blob_prefix="data/", file_path="common")
        ],
    )
    release = JobReleaseTaskSpec(
        bash('stat -c %a tool.sh > "$AZ_BATCH_NODE_SHARED_DIR/release"'),
        resource_files=[ResourceFile(auto_storage_container_name=linked, file_mode="0755")],
    )
    async with pool(linked_backend) as batch:
        job = await batch.create_job(prep, release)
        show = bash("find . -type f | sort; cat single.txt; stat -c %a single.txt")
        await batch.backend.add_tasks(
            job,
            [
                TaskSpec(
                    "reads",
                    show,
                    resource_files=[
                        ResourceFile(http_url=blob_url, file_path="single.txt", file_mode="0600"),
                        ResourceFile(storage_container_url=listing, blob_prefix="data/sub"),
                    ],
                )
            ],
        )
        tasks = await batch.tasks_settled(job)
        node = tasks["reads"].node_id
        assert node is not None
        assert tasks["reads"].execution_info.exit_code == 0
        output = await stdout(batch.backend, batch.pool_id, job, "reads", node)
        assert output == "./data/sub/b.txt\n./single.txt\nno\n600\n"
        assert await batch.shared_file(node, "prep") == "alpha\nbeta\n"
        await batch.backend.terminate_job(job)
        await batch.job_in(job, JobState.COMPLETED)
        assert await batch.shared_file(node, "release") == "755\n"


async def test_resource_file_failures_by_cause(
    local_only: None, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    container = await blobs.container({"x.txt": b"x\n"})
    absent = blobs.url("no-such-container", "rl")  # a valid SAS, for a container never made
    cases = {
        # A SAS without list permission cannot enumerate the container.
        "denied": ResourceFile(storage_container_url=blobs.url(container, "r")),
        "nocontainer": ResourceFile(storage_container_url=absent),
        "noblob": ResourceFile(
            http_url=blobs.url(container, "r").replace("?", "/absent.txt?", 1), file_path="f"
        ),
        "noauto": ResourceFile(auto_storage_container_name="no-such-container"),
    }
    expected = {
        "denied": "BlobAccessDenied",
        "nocontainer": "BlobNotFound",
        "noblob": "BlobNotFound",
        "noauto": "BlobNotFound",
    }
    async with pool(linked_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(
            job, [TaskSpec(name, "/bin/true", resource_files=[f]) for name, f in cases.items()]
        )
        tasks = await batch.tasks_settled(job)
    for name, code in expected.items():
        task = tasks[name]
        assert task.state is TaskState.COMPLETED, name
        assert task.execution_info.exit_code is None, name
        assert task.execution_info.result is ExecutionResult.FAILURE, name
        assert failure_code(task) == code, name
        info = task.execution_info.failure_info
        assert info is not None and info.category.value == "usererror", name


def outputs(url: str, task: str) -> list[OutputFile]:
    """One output file per upload condition, each to its own virtual directory."""
    condition = OutputFileUploadCondition
    return [
        OutputFile("out/*.txt", url, f"{task}/success", condition.TASK_SUCCESS),
        OutputFile("**/*.log", url, f"{task}/failure", condition.TASK_FAILURE),
        OutputFile("../stdout.txt", url, f"{task}/all/stdout.txt", condition.TASK_COMPLETION),
    ]


async def test_output_files_under_each_upload_condition(
    local_only: None, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    container = await blobs.container()
    url = blobs.url(container, "w")
    write = "mkdir -p out deep/er; echo r > out/r.txt; echo .h > out/.h.txt; echo l > deep/er/l.log"
    headed = OutputFile(
        "out/r.txt",
        url,
        "headed/r.txt",
        upload_headers={"x-ms-blob-content-type": "text/x-test"},
    )
    ok_outputs, bad_outputs = outputs(url, "ok"), outputs(url, "bad")
    async with pool(linked_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(
            job,
            [
                TaskSpec("ok", bash(f"{write}; echo ok"), output_files=[*ok_outputs, headed]),
                TaskSpec("bad", bash(f"{write}; echo bad; exit 3"), output_files=bad_outputs),
            ],
        )
        tasks = await batch.tasks_settled(job)
    assert tasks["ok"].execution_info.result is ExecutionResult.SUCCESS
    assert tasks["bad"].execution_info.exit_code == 3
    assert failure_code(tasks["bad"]) == "FailureExitCode"
    # ".h.txt" starts with a dot: "*" does not match it.
    assert await blobs.read(container) == {
        "ok/success/r.txt": b"r\n",
        "ok/all/stdout.txt": b"ok\n",
        "bad/failure/deep/er/l.log": b"l\n",
        "bad/all/stdout.txt": b"bad\n",
        "headed/r.txt": b"r\n",
    }
    settings = await blobs.content_settings(container, "headed/r.txt")
    assert settings.content_type == "text/x-test"


async def test_output_file_upload_failure_fails_the_task(
    local_only: None, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    container = await blobs.container()
    read_only = blobs.url(container, "r")
    async with pool(linked_backend) as batch:
        job = await batch.create_job()
        await batch.backend.add_tasks(
            job,
            [TaskSpec("up", bash("echo x > x.txt"), output_files=[OutputFile("x.txt", read_only)])],
        )
        tasks = await batch.tasks_settled(job)
    task = tasks["up"]
    assert task.state is TaskState.COMPLETED
    assert task.execution_info.exit_code == 0
    assert task.execution_info.result is ExecutionResult.FAILURE
    assert failure_code(task) == "FileUploadAccessDenied"
    assert task.execution_info.retry_count == 0
    assert await blobs.read(container) == {}


async def test_upload_batch_service_logs(
    local_only: None, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    container = await blobs.container()
    url = blobs.url(container, "w")
    async with pool(linked_backend) as batch:
        node = batch.node_ids[0]
        before = datetime.now(UTC) - timedelta(minutes=1)
        job = await batch.create_job()
        await batch.backend.add_tasks(job, [TaskSpec("logged", "/bin/true")])
        await batch.tasks_settled(job)
        result = await batch.backend.upload_node_logs(
            batch.pool_id, node, NodeLogsRequest(url, before)
        )
        # "built based poolId, nodeId and a unique identifier" (UploadBatchServiceLogsResult),
        # after a first part (batch-22ECC15FFD102503 in the service's recorded answer)
        first, pool_part, node_part, unique = result.virtual_directory_name.split("/")
        assert first.startswith("batch-")
        assert (pool_part, node_part) == (batch.pool_id, node)
        assert unique
        uploaded = await blobs.read(container)
        assert result.number_of_files_uploaded == len(uploaded) >= 1
        assert all(name.startswith(result.virtual_directory_name + "/") for name in uploaded)
        assert any(b"logged" in data for data in uploaded.values())
        # A range that ends before anything ran on the node holds no log line: nothing goes.
        early = before - timedelta(days=1)
        empty = await batch.backend.upload_node_logs(
            batch.pool_id, node, NodeLogsRequest(url, early, early)
        )
        assert empty.number_of_files_uploaded == 0
        assert empty.virtual_directory_name != result.virtual_directory_name
        with pytest.raises(NotFound):
            await batch.backend.upload_node_logs(
                batch.pool_id, "tvm-0_0-nosuchnode", NodeLogsRequest(url, before)
            )


async def test_a_large_blob_is_never_held_whole_in_memory(
    local_only: None, backend_name: str, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    """48 MiB staged from a container reaches the node intact, while the service's Python
    allocations peak far below its size (downloads go through a scratch file)."""
    if backend_name != "docker":
        pytest.skip("the service runs in this process on docker: its allocations are traced")
    data = os.urandom(1 << 20) * 48
    container = await blobs.container({"big.bin": data})
    files = [ResourceFile(storage_container_url=blobs.url(container, "rl"))]
    async with pool(linked_backend) as batch:
        job = await batch.create_job()
        tracemalloc.start()
        try:
            await batch.backend.add_tasks(
                job, [TaskSpec("big", "/usr/bin/sha256sum big.bin", resource_files=files)]
            )
            tasks = await batch.tasks_settled(job)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        node = tasks["big"].node_id or ""
        output = await stdout(batch.backend, batch.pool_id, job, "big", node)
    assert output.split()[0] == hashlib.sha256(data).hexdigest()
    assert peak < 16 << 20, f"peak {peak >> 20} MiB for a 48 MiB blob"


async def test_a_start_task_gets_a_containers_blobs(
    local_only: None, linked_backend: BackendOpener, blobs: Blobs
) -> None:
    """The start task's resource files come from a container too, into ``startup/wd``."""
    container = await blobs.container({"tools/setup.sh": b"echo set up from a blob\n"})
    files = [ResourceFile(storage_container_url=blobs.url(container, "rl"), file_mode="0750")]
    start_task = StartTaskSpec(
        bash("stat -c %a tools/setup.sh; bash tools/setup.sh"), resource_files=files
    )
    async with pool(linked_backend, start_task=start_task) as batch:
        (node_id,) = batch.node_ids
        out = await batch.backend.read_node_file(batch.pool_id, node_id, "startup/stdout.txt")
    assert out.decode().splitlines() == ["750", "set up from a blob"]
