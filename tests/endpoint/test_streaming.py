"""A large node file read through the endpoint is streamed, never held whole in memory.

A task on a real node (a container on the engine) writes ``seq 1 9000000`` (about 68 MiB) to
the node's shared directory; the test downloads it through the endpoint with azure-batch's
``download_node_file`` (in this process, as the endpoint is) and checks the bytes against what
``seq`` writes by definition (each number in decimal, one a line), while the process's peak of
Python allocations (`tracemalloc`) and of resident memory (``VmHWM`` in ``/proc/self/status``)
stays far below the file's size. ``ocp-range`` ranges (``start-end``, ``start-``, the last n)
are byte-exact.
"""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
from pathlib import Path

import docker
import pytest
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.docker.core import FakeExecutor, FakeOutcome
from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.files import byte_range
from tests.conftest import Ids
from tests.core.harness import JOB, job_spec, pool_spec, tasks
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import call, linux_pool, wait_until

COUNT = 9_000_000
FILE = "shared/big.txt"
KEY = base64.b64encode(b"streaming-endpoint-test-key-0123").decode()
LIMIT = 16 * 1024 * 1024
"""Peak growth allowed while the file is read: a quarter of its size."""


def _expected() -> bytes:
    return "".join(f"{number}\n" for number in range(1, COUNT + 1)).encode()


def _peak_resident() -> int:
    """The process's peak resident set size in bytes (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


async def _make_file(client: BatchClient, ids: Ids) -> str:
    """A one-node pool whose node holds `FILE`; its node id."""
    await client.create_pool(linux_pool(ids.pool))
    await client.create_job(
        models.BatchJobCreateOptions(id=ids.job, pool_info=models.BatchPoolInfo(pool_id=ids.pool))
    )
    command = f"/bin/bash -c 'seq 1 {COUNT} > $AZ_BATCH_NODE_SHARED_DIR/big.txt'"
    await client.create_task(ids.job, models.BatchTaskCreateOptions(id="seq", command_line=command))

    async def completed() -> bool:
        return (await client.get_task(ids.job, "seq")).state == models.BatchTaskState.COMPLETED

    await wait_until(completed, limit=180, every=0.5)
    task = await client.get_task(ids.job, "seq")
    assert task.execution_info is not None and task.execution_info.exit_code == 0
    assert task.node_info is not None and task.node_info.node_id is not None
    return task.node_info.node_id


async def test_a_large_file_is_streamed_and_ranges_are_exact(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        node_id = await _make_file(client, ids)
        resident_before = _peak_resident()
        tracemalloc.start()
        try:
            digest, size = hashlib.sha256(), 0
            stream = await client.download_node_file(ids.pool, node_id, FILE)
            async for chunk in stream:
                digest.update(chunk)
                size += len(chunk)
            _, python_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        resident_growth = _peak_resident() - resident_before
        path = f"/pools/{ids.pool}/nodes/{node_id}/files/{FILE}"
        ranges = {
            header: (await call(client, "GET", path, headers={"ocp-range": header})).body
            for header in ("bytes=40000000-40000099", "bytes=62000000-", "bytes=-100")
        }
        await (await client.begin_delete_job(ids.job)).result()
        await (await client.begin_delete_pool(ids.pool)).result()
    expected = _expected()
    assert size == len(expected) > 64 * 1024 * 1024
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert python_peak < LIMIT, f"{python_peak} bytes allocated at the peak"
    assert resident_growth < LIMIT, f"peak resident memory grew by {resident_growth} bytes"
    assert ranges["bytes=40000000-40000099"] == expected[40_000_000:40_000_100]
    assert ranges["bytes=62000000-"] == expected[62_000_000:]
    assert ranges["bytes=-100"] == expected[-100:]


def test_range_forms() -> None:
    """``bytes=start-end`` includes both ends, ``start-`` runs to the end, ``-n`` is the last n
    (REST reference, Get Node File: ``ocp-range``); a range past the end is cut at the end."""
    assert byte_range(None, 10) == (0, 10)
    assert byte_range("bytes=2-4", 10) == (2, 3)
    assert byte_range("bytes=7-", 10) == (7, 3)
    assert byte_range("bytes=-4", 10) == (6, 4)
    assert byte_range("bytes=-40", 10) == (0, 10)
    assert byte_range("bytes=8-40", 10) == (8, 2)
    assert byte_range("bytes=12-", 10) == (10, 0)
    for malformed in ("bytes=-", "lines=1-2", "bytes=a-b"):
        with pytest.raises(RestError) as refused:
            byte_range(malformed, 10)
        assert (refused.value.status, refused.value.code) == (400, "InvalidHeaderValue")


async def test_ranges_across_chunks_over_the_fake_executor() -> None:
    """The same ranges over the fake executor (chunks of 64 KiB): a task's 300,000-byte stdout
    read whole and in ranges that start, end and cross chunk boundaries, byte-exact."""
    data = bytes(index % 251 for index in range(300_000))
    fake = FakeExecutor(outcome=lambda start: FakeOutcome(stdout=data))
    settings = EndpointSettings(account="streambatch", key=KEY, port=0, executor=fake)
    async with running_endpoint(settings) as running:
        assert running.service is not None
        await running.service.create_pool(pool_spec(1, image=None))
        await running.service.create_job(job_spec())
        await running.service.add_tasks(JOB, tasks(1))
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential, retry_total=0) as client:
            await wait_until(lambda: _completed(client, JOB, "task001"), limit=10, every=0.01)
            path = f"/jobs/{JOB}/tasks/task001/files/stdout.txt"
            whole = await call(client, "GET", path)
            assert (whole.body, whole.headers["Content-Length"]) == (data, "300000")
            for start, end in ((0, 65535), (65535, 65536), (65000, 200000), (299999, 299999)):
                header = {"ocp-range": f"bytes={start}-{end}"}
                answer = await call(client, "GET", path, headers=header)
                assert answer.body == data[start : end + 1], (start, end)
                assert answer.headers["Content-Length"] == str(end + 1 - start)
            tail = await call(client, "GET", path, headers={"ocp-range": "bytes=-70000"})
            assert tail.body == data[-70000:]


async def _completed(client: BatchClient, job_id: str, task_id: str) -> bool:
    task = await client.get_task(job_id, task_id)
    return task.state == models.BatchTaskState.COMPLETED
