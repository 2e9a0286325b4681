"""Older Python SDKs, unchanged, each in a virtual environment of its own from PyPI: a
hello-world (pool, job, task, wait, read stdout, delete), then the JobPrepRelease flow (every
kind of answer the sample reads, parsed by that release's models) against the endpoint (over
the fake executor), at each SDK's own api-version. azure-batch 8 to 14 are msrest-based and
sync."""

from __future__ import annotations

import json
from collections.abc import Callable

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


def wait(what, check):
    for _ in range(300):
        if check():
            return
        time.sleep(0.1)
    raise SystemExit("timed out waiting for " + what)


client.pool.add(m.PoolAddParameter(
    id="hellopool", vm_size="standard_d1_v2", target_dedicated_nodes=2,
    virtual_machine_configuration=m.VirtualMachineConfiguration(
        image_reference=m.ImageReference(
            publisher="canonical", offer="0001-com-ubuntu-server-focal", sku="20_04-lts",
            version="latest"),
        node_agent_sku_id="batch.node.ubuntu 20.04")))
client.job.add(m.JobAddParameter(id="hellojob", pool_info=m.PoolInformation(pool_id="hellopool")))
client.task.add("hellojob", m.TaskAddParameter(id="hello", command_line="/bin/echo hello"))
wait("the task", lambda: client.task.get("hellojob", "hello").state == m.TaskState.completed)
task = client.task.get("hellojob", "hello")
stdout = b"".join(client.file.get_from_task("hellojob", "hello", "stdout.txt"))
report = {
    "apiVersion": client.api_version, "exitCode": task.execution_info.exit_code,
    "node": task.node_info.node_id, "stdout": stdout.decode(),
}

# The JobPrepRelease flow, so that every kind of answer goes through this version's models.
shared = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"
client.job.add(m.JobAddParameter(
    id="prepjob", pool_info=m.PoolInformation(pool_id="hellopool"),
    job_preparation_task=m.JobPreparationTask(
        command_line="/bin/bash -c 'echo \"$AZ_BATCH_NODE_ID tasks:\" > \"" + shared + "\"'",
        wait_for_success=True),
    job_release_task=m.JobReleaseTask(command_line="/bin/bash -c 'rm \"" + shared + "\"'")))
added = client.task.add_collection("prepjob", [
    m.TaskAddParameter(
        id="task%03d" % n,
        command_line="/bin/bash -c 'echo \"task%03d\" >> \"%s\"'" % (n, shared))
    for n in range(1, 5)])
report["added"] = sorted((r.task_id, r.status.value) for r in added.value)
wait("the tasks", lambda: all(t.state == m.TaskState.completed
                              for t in client.task.list("prepjob")))
report["placed"] = sorted((t.id, t.node_info.node_id) for t in client.task.list("prepjob"))
nodes = list(client.compute_node.list("hellopool"))
report["nodes"] = sorted(node.id for node in nodes)
report["nodeStates"] = sorted({client.compute_node.get("hellopool", n.id).state.value
                               for n in nodes})
report["files"] = {}
for node in nodes:
    names = [f.name for f in client.file.list_from_compute_node(
        "hellopool", node.id, recursive=True) if not f.is_directory]
    if "shared/job_prep_and_release.txt" in names:
        data = b"".join(client.file.get_from_compute_node(
            "hellopool", node.id, "shared/job_prep_and_release.txt"))
        report["files"][node.id] = data.decode()
listed = {f.name: f for f in client.file.list_from_task("hellojob", "hello")}
report["stdoutType"] = listed["stdout.txt"].properties.content_type
headers = client.file.get_properties_from_task("hellojob", "hello", "stdout.txt", raw=True).headers
report["isDirectory"] = headers["ocp-batch-file-isdirectory"]
report["length"] = headers["Content-Length"]
client.job.terminate("prepjob")
wait("the job", lambda: client.job.get("prepjob").state == m.JobState.completed)
report["prepRelease"] = sorted(
    (s.node_id, s.job_preparation_task_execution_info.exit_code,
     s.job_release_task_execution_info.exit_code)
    for s in client.job.list_preparation_and_release_task_status("prepjob"))
counts = client.job.get_task_counts("prepjob")
counts = getattr(counts, "task_counts", counts)
report["completed"] = counts.completed
report["pools"] = [p.id for p in client.pool.list()]
report["jobs"] = sorted(j.id for j in client.job.list())
pool = client.pool.get("hellopool")
report["slots"] = getattr(pool, "task_slots_per_node", None) or pool.max_tasks_per_node

client.job.delete("prepjob")
client.job.delete("hellojob")
client.pool.delete("hellopool")
wait("the pool's deletion", lambda: not client.pool.exists("hellopool"))
report["poolGone"] = not client.pool.exists("hellopool")
print(json.dumps(report))
"""


def outcome(emulator: Emulator) -> Callable[[FakeStart], FakeOutcome]:
    """``/bin/echo`` prints its words; the sample's command lines act on the node's files."""

    def run(start: FakeStart) -> FakeOutcome:
        if start.argv[0] == "/bin/echo":
            return FakeOutcome(stdout=f"{' '.join(start.argv[1:])} from {start.node_id}\n".encode())
        return emulator.script(start)

    return run


@pytest.mark.parametrize("release", list(RELEASES))
async def test_hello_world_and_the_sample_flow_with_an_older_sdk(
    emulator: Emulator, release: str
) -> None:
    python = python_venv(f"azure-batch=={release}")
    emulator.fake.outcome = outcome(emulator)
    with anyio.fail_after(120):
        result = await anyio.run_process(
            [str(python), "-c", HELLO_WORLD, emulator.url, ACCOUNT, KEY], check=False
        )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = json.loads(result.stdout)
    assert report["apiVersion"] == RELEASES[release]
    assert {r.query.get("api-version") for r in emulator.requests} == {RELEASES[release]}

    # The hello-world: what ran, from the service's record.
    (start,) = [s for s in emulator.fake.starts if s.task_id == "hello"]
    assert list(start.argv) == ["/bin/echo", "hello"]
    assert report["node"] == start.node_id and report["exitCode"] == 0
    assert report["stdout"] == f"hello from {start.node_id}\n"
    assert report["stdoutType"] == "text/plain"
    # The headers as this release's deserializer reads them (a bool and an int).
    assert (report["isDirectory"], report["length"]) == (False, len(report["stdout"]))

    # The sample's flow: each node's file lists the tasks the service ran there, in order.
    ran: dict[str, list[str]] = {}
    for task in emulator.task_starts("prepjob"):
        ran.setdefault(task.node_id, []).append(task.task_id)
    assert report["placed"] == sorted([t, node] for node, ts in ran.items() for t in ts)
    assert report["added"] == [[f"task{n:03d}", "success"] for n in range(1, 5)]
    assert report["nodeStates"] == ["idle"] and len(report["nodes"]) == 2
    assert report["files"] == {
        node: f"{node} tasks:\n" + "".join(f"{t}\n" for t in tasks) for node, tasks in ran.items()
    }
    assert report["prepRelease"] == [[node, 0, 0] for node in sorted(ran)]
    assert report["completed"] == 4
    assert (report["pools"], report["jobs"]) == (["hellopool"], ["hellojob", "prepjob"])
    assert report["slots"] == 1
    assert report["poolGone"] is True
    assert await emulator.service.list_pools() == []
