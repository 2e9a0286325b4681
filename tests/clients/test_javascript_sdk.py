"""Microsoft's JavaScript SDK (`@azure/batch`, the newest 10.x the npm registry serves), left at
its default api-version, runs the whole JobPrepRelease flow against the endpoint (over the fake
executor): pool, job with preparation and release tasks, tasks, wait, node files, terminate,
preparation/release status, delete job and pool."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY
from tests.clients.installs import npm_package

PROGRAM = Path(__file__).with_name("node") / "jobprep_release.js"
pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm_package("@azure/batch@10", "azure-batch-10") / "node_modules"


async def test_the_sample_flow_with_the_javascript_sdk(
    emulator: Emulator, node_modules: Path
) -> None:
    default_version = json.loads((node_modules / "@azure" / "batch" / "package.json").read_text())
    assert default_version["version"].startswith("10.")
    environment = {
        **os.environ,
        "NODE_PATH": str(node_modules),
        "AZURE_BATCH_ENDPOINT": emulator.url,
        "AZURE_BATCH_ACCOUNT": ACCOUNT,
        "AZURE_BATCH_ACCESS_KEY": KEY,
        "POOL_ID": "JobPrepReleaseSamplePool",
        "JOB_ID": "JobPrepReleaseSampleJob",
    }
    with anyio.fail_after(120):
        result = await anyio.run_process(["node", str(PROGRAM)], env=environment, check=False)
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)

    # The SDK's own default, and what reached the endpoint.
    assert report["apiVersion"] == "2022-10-01.16.0"
    assert {r.query.get("api-version") for r in emulator.requests} == {"2022-10-01.16.0"}
    deletes = [(r.method, r.path) for r in emulator.requests if r.method == "DELETE"]
    assert deletes == [
        ("DELETE", "/jobs/JobPrepReleaseSampleJob"),
        ("DELETE", "/pools/JobPrepReleaseSamplePool"),
    ]
    assert report["poolDeleted"] is True
    assert await emulator.service.list_pools() == []

    # What ran, from the service's record: the files hold each node's tasks in run order.
    ran: dict[str, list[str]] = {}
    for start in emulator.task_starts("JobPrepReleaseSampleJob"):
        ran.setdefault(start.node_id, []).append(start.task_id)
    assert sorted(ran) == sorted(report["files"])
    for node_id, text in report["files"].items():
        assert text == f"{node_id} tasks:\n" + "".join(f"{t}\n" for t in ran[node_id])
    assert sorted(t["id"] for t in report["tasks"]) == [f"task{n:03d}" for n in range(1, 9)]
    assert all(t["exitCode"] == 0 for t in report["tasks"])
    assert report["added"] == [[f"task{n:03d}", "success"] for n in range(1, 9)]
    assert report["stdoutType"].startswith("text/plain")
    assert sorted(s["node"] for s in report["prepRelease"]) == sorted(ran)
    assert all(s["preparation"] == 0 and s["release"] == 0 for s in report["prepRelease"])
