"""Benchmark 5: HTTP requests of the whole sample on the azure backend, against the C# sample's.

Both flows run against the project's endpoint over the fake executor, as the azure backend's
tests use it (`tests.azure.emulator`): every process takes one second of the fake clock, and the
clock moves a set number of seconds before each read (GET), so the number of polls each wait
takes is set by the same simulated service for both, not by the wall clock.

- `app`: `run_sample` with the `AzureBackend` (``--yes``), the app's flow exactly.
- `C# pattern`: the calls the C# sample's SDK (Microsoft.Azure.Batch) issues for the same flow,
  made with azure-batch's async client against a fresh endpoint, with the same request bodies:

  1. ``CreatePool`` (``pool.CommitAsync``): POST /pools
  2. ``GetJobIfExistAsync``: ListJobs with ``$filter=id eq '...'``
  3. ``job.CommitAsync``: POST /jobs
  4. ``AddTaskAsync(jobId, tasks)``: POST addtaskcollection (100 tasks a request)
  5. ``TaskStateMonitor.WhenAll(ListTasks(jobId), Completed)``: one ListTasks when the
     enumerable is first walked, then one ListTasks per poll (``$filter`` on the ids not yet
     completed, ``$select=id,state``) until all are completed
  6. ``ListComputeNodes(poolId)``, then per idle node ``GetNodeFileAsync`` (the .NET SDK reads
     the file's properties first: HEAD) and ``ReadAsStringAsync`` (GET)
  7. ``TerminateJobAsync``: POST terminate
  8. ``WaitForJobToReachStateAsync``: GetJob, then GetJob (``RefreshAsync``) per poll until
     completed
  9. ``ListJobPreparationAndReleaseTaskStatus``: GET
  10. ``DeleteJobAsync``, ``DeletePoolAsync``: one DELETE each, not waited on

  Assumptions: the C# pattern is read from sample-flow.md and the .NET SDK's documented calls;
  one request per poll (8 tasks fit one page and one filter); its polls are counted by the
  fake clock's steps, as the app's are. On real Batch the waits are by the clock: the C# monitor
  lists tasks every few seconds (its ``ODATAMonitorControl`` delay) and GetJob every 10 s; the
  app counts tasks every 10 s (``AzureBackend.poll_interval``) and GetJob every 10 s.

Two worlds are measured: 1 s per read (waits take several polls), and 20 s per read (each
wait's first poll finds it done, as with polls far apart). Nodes are ready as soon as created.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

import anyio

from bench.common import Result, verdict

OPERATIONS = (
    ("POST", r"/pools", "CreatePool"),
    ("GET", r"/pools/[^/]+", "GetPool"),
    ("DELETE", r"/pools/[^/]+", "DeletePool"),
    ("GET", r"/pools/[^/]+/nodes", "ListNodes"),
    ("HEAD", r"/pools/[^/]+/nodes/[^/]+/files/.+", "GetNodeFileProperties"),
    ("GET", r"/pools/[^/]+/nodes/[^/]+/files/.+", "GetNodeFile"),
    ("GET", r"/jobs", "ListJobs"),
    ("POST", r"/jobs", "CreateJob"),
    ("GET", r"/jobs/[^/]+", "GetJob"),
    ("DELETE", r"/jobs/[^/]+", "DeleteJob"),
    ("POST", r"/jobs/[^/]+/terminate", "TerminateJob"),
    ("POST", r"/jobs/[^/]+/addtaskcollection", "AddTaskCollection"),
    ("GET", r"/jobs/[^/]+/tasks", "ListTasks"),
    ("GET", r"/jobs/[^/]+/taskcounts", "GetTaskCounts"),
    ("GET", r"/jobs/[^/]+/jobpreparationandreleasetaskstatus", "ListPrepReleaseStatus"),
)
POOL = "JobPrepReleaseSamplePool"
JOB = "JobPrepReleaseSampleJob"
SHARED_FILE = "shared/job_prep_and_release.txt"


def operation(method: str, path: str) -> str:
    for wanted, pattern, name in OPERATIONS:
        if method == wanted and re.fullmatch(pattern, path):
            return name
    return f"{method} {path}"


def _count(emulator: Any) -> Counter[str]:
    return Counter(operation(r.method, r.path) for r in emulator.requests)


async def app_flow(steps_per_read: int) -> Counter[str]:
    from jobprep_release.console import Console
    from jobprep_release.flow import run_sample
    from jobprep_release.options import Answer, SampleOptions
    from tests.azure.emulator import running_emulator
    from tests.azure.support import make_backend

    async with running_emulator(seconds=1.0, seconds_per_read=steps_per_read) as emulator:
        async with make_backend(emulator.url, poll_interval=0.0) as backend:
            outcome = await run_sample(
                backend, Console(Answer.YES, out=io.StringIO()), SampleOptions()
            )
        if not outcome.succeeded:
            raise RuntimeError("the sample failed on the endpoint")
        return _count(emulator)


async def csharp_flow(steps_per_read: int) -> Counter[str]:
    from azure.batch import models
    from azure.batch.aio import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from jobprep_release.backends.schema import requests as convert
    from jobprep_release.flow import job_spec, pool_spec, task_specs
    from jobprep_release.options import SampleOptions
    from tests.azure.emulator import running_emulator
    from tests.azure.support import ACCOUNT, KEY

    options = SampleOptions()
    async with running_emulator(seconds=1.0, seconds_per_read=steps_per_read) as emulator:
        credential = AzureNamedKeyCredential(ACCOUNT, KEY)
        async with BatchClient(emulator.url, credential, retry_total=0) as client:
            await client.create_pool(convert.pool_create_options(pool_spec(options)))
            _ = [job async for job in client.list_jobs(filter=f"id eq '{JOB}'")]
            await client.create_job(convert.job_create_options(job_spec(options)))
            tasks = [convert.task_create_options(spec) for spec in task_specs(options)]
            for start in range(0, len(tasks), 100):
                group = models.BatchTaskGroup(task_values=tasks[start : start + 100])
                await client.create_task_collection(JOB, group)
            # TaskStateMonitor.WhenAll: walk the ListTasks enumerable, then refresh per poll.
            pending = {t.id async for t in client.list_tasks(JOB) if t.state != "completed"}
            while pending:
                clause = " or ".join(f"id eq '{task_id}'" for task_id in sorted(pending))
                listed = client.list_tasks(JOB, filter=clause, select=["id", "state"])
                pending = {t.id async for t in listed if t.id in pending and t.state != "completed"}
            async for node in client.list_nodes(POOL, select=["id", "state"]):
                if node.state == "idle":
                    await client.get_node_file_properties(POOL, node.id, SHARED_FILE)
                    stream = await client.download_node_file(POOL, node.id, SHARED_FILE)
                    _ = b"".join([chunk async for chunk in stream])
            terminate = models._models.BatchJobTerminateOptions(termination_reason="UserTerminate")
            await client.begin_terminate_job(JOB, terminate, polling_interval=0)
            while (await client.get_job(JOB)).state != "completed":
                pass
            _ = [s async for s in client.list_job_preparation_and_release_task_status(JOB)]
            await client.begin_delete_job(JOB, polling_interval=0)
            await client.begin_delete_pool(POOL, polling_interval=0)
        return _count(emulator)


def _table(app: Counter[str], csharp: Counter[str]) -> list[str]:
    names = sorted(
        set(app) | set(csharp),
        key=lambda n: (
            [o[2] for o in OPERATIONS].index(n)
            if n in [o[2] for o in OPERATIONS]
            else len(OPERATIONS)
        ),
    )
    rows = ["| operation | app | C# pattern |", "| --- | --- | --- |"]
    rows += [f"| {name} | {app[name]} | {csharp[name]} |" for name in names]
    rows.append(f"| **total** | **{sum(app.values())}** | **{sum(csharp.values())}** |")
    return rows


def bench() -> Result:
    lines: list[str] = []
    targets: dict[str, bool] = {}
    figures: dict[str, str] = {}
    for steps in (1, 20):
        app = anyio.run(app_flow, steps)
        csharp = anyio.run(csharp_flow, steps)
        fewer = sum(app.values()) < sum(csharp.values())
        heads = csharp.get("GetNodeFileProperties", 0)
        name = (
            f"azure backend, the sample's HTTP requests ({steps} s of fake clock per read): "
            "fewer than the C# sample's SDK pattern, assuming the .NET SDK reads a node "
            "file's properties (HEAD) before its content"
        )
        targets[name] = fewer
        figures[name] = (
            f"{sum(app.values())} vs {sum(csharp.values())}; without the {heads} HEAD "
            f"requests the assumption adds, {sum(app.values())} vs "
            f"{sum(csharp.values()) - heads}"
        )
        lines += [
            f"Endpoint on the fake executor: the clock moves {steps} s per read.",
            "",
            *_table(app, csharp),
            "",
            f"- app {sum(app.values())} vs C# pattern {sum(csharp.values())} requests; "
            f"target fewer: {verdict(fewer)}",
            f"- the assumption that decides it: the C# pattern counts {heads} HEAD requests "
            "(GetNodeFileProperties), one per node file, on the premise that the .NET SDK's "
            "`GetNodeFileAsync` reads the file's properties before `ReadAsStringAsync` reads "
            f"its content; without them the counts are {sum(app.values())} vs "
            f"{sum(csharp.values()) - heads}",
            "",
        ]
        print(
            f"  requests ({steps} s/read): app {sum(app.values())}, C# {sum(csharp.values())}",
            flush=True,
        )
    return Result(
        "5. Requests on the azure backend (the default sample: 2 nodes, 8 tasks)",
        "\n".join(lines).rstrip(),
        targets,
        figures,
    )
