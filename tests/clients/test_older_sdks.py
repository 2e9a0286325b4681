"""Older Python SDKs, unchanged, each in a virtual environment of its own from PyPI: a
hello-world (pool, job, task, wait, read stdout, delete) against the endpoint (over the fake
executor), at each SDK's own api-version. azure-batch 8 to 14 are msrest-based and sync."""

from __future__ import annotations

import json

import anyio
import pytest

from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY
from tests.clients.installs import python_venv

pytestmark = pytest.mark.clients

# The SDK releases and the api-version each sends (its `api_version` default).
RELEASES = {
    "8.0.0": "2019-08-01.10.0",
    "11.0.0": "2021-06-01.14.0",
    "13.0.0": "2022-10-01.16.0",
    "14.2.0": "2024-02-01.19.0",
}

HELLO_WORLD = r"""
import json, sys, time
import azure.batch.models as m
from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials

url, account, key = sys.argv[1:4]
client = BatchServiceClient(SharedKeyCredentials(account, key), batch_url=url)
client.pool.add(m.PoolAddParameter(
    id="hellopool", vm_size="standard_d1_v2", target_dedicated_nodes=1,
    virtual_machine_configuration=m.VirtualMachineConfiguration(
        image_reference=m.ImageReference(
            publisher="canonical", offer="0001-com-ubuntu-server-focal", sku="20_04-lts",
            version="latest"),
        node_agent_sku_id="batch.node.ubuntu 20.04")))
client.job.add(m.JobAddParameter(id="hellojob", pool_info=m.PoolInformation(pool_id="hellopool")))
client.task.add("hellojob", m.TaskAddParameter(id="hello", command_line="/bin/echo hello"))
for _ in range(300):
    task = client.task.get("hellojob", "hello")
    if task.state == m.TaskState.completed:
        break
    time.sleep(0.1)
stdout = b"".join(client.file.get_from_task("hellojob", "hello", "stdout.txt"))
nodes = [node.id for node in client.compute_node.list("hellopool")]
pool = client.pool.get("hellopool")
counts = client.job.get_task_counts("hellojob")
counts = getattr(counts, "task_counts", counts)
client.job.delete("hellojob")
client.pool.delete("hellopool")
for _ in range(300):
    if not client.pool.exists("hellopool"):
        break
    time.sleep(0.1)
print(json.dumps({
    "apiVersion": client.api_version, "state": task.state.value if hasattr(task.state, "value")
    else task.state, "exitCode": task.execution_info.exit_code, "node": task.node_info.node_id,
    "stdout": stdout.decode(), "nodes": nodes, "vmSize": pool.vm_size,
    "completed": counts.completed, "poolGone": not client.pool.exists("hellopool"),
}))
"""


def hello(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(stdout=f"hello from {start.node_id}\n".encode())


@pytest.mark.parametrize("release", list(RELEASES))
async def test_hello_world_with_an_older_sdk(emulator: Emulator, release: str) -> None:
    python = python_venv(f"azure-batch=={release}")
    emulator.fake.outcome = hello
    with anyio.fail_after(120):
        result = await anyio.run_process(
            [str(python), "-c", HELLO_WORLD, emulator.url, ACCOUNT, KEY], check=False
        )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = json.loads(result.stdout)
    assert report["apiVersion"] == RELEASES[release]
    assert {r.query.get("api-version") for r in emulator.requests} == {RELEASES[release]}
    (start,) = [s for s in emulator.fake.starts if s.task_id == "hello"]
    assert list(start.argv) == ["/bin/echo", "hello"]
    assert report["node"] == start.node_id and report["nodes"] == [start.node_id]
    assert report["stdout"] == f"hello from {start.node_id}\n"
    assert (report["state"], report["exitCode"], report["completed"]) == ("completed", 0, 1)
    assert report["vmSize"] == "standard_d1_v2"
    assert report["poolGone"] is True
    assert await emulator.service.list_pools() == []
