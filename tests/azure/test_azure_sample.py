"""The sample on the azure backend against the Batch stand-in, for what only the stand-in can
make happen on demand: a node that runs no task. (The whole sample through the real SDK on real
containers runs in tests/endpoint/test_sample.py.)"""

from __future__ import annotations

import io
import re
from pathlib import Path

from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.azure.batch_standin import BatchStandIn
from tests.azure.support import make_backend

REPO = Path(__file__).resolve().parents[2]
POOL = "JobPrepReleaseSamplePool"
JOB = "JobPrepReleaseSampleJob"


def expected_transcript(standin: BatchStandIn, nodes: int) -> str:
    node_ids = standin.node_ids[:nodes]
    lines = [
        f"Attempting to create pool: {POOL}",
        f"Created pool {POOL} with {nodes} dedicated and 0 low priority standard_d1_v2 nodes",
        f"Checking for existing job {JOB}...",
        f"Job {JOB} not found, creating...",
        "Submitting tasks and awaiting completion...",
        "All tasks completed.",
        "",
    ]
    ran_on = {
        node_id: [task for job, node, task in standin.task_log if (job, node) == (JOB, node_id)]
        for node_id in node_ids
    }
    for node_id, ran in ran_on.items():
        lines += [f"Contents of shared/job_prep_and_release.txt on {node_id}:", "-" * 43]
        if ran:
            lines += [f"{node_id} tasks:", *(f"  {task}" for task in ran), ""]
        else:
            lines += [
                "(no such file: this node ran no task of the job, so its preparation",
                "task never ran there)",
                "",
            ]
    lines += [f"Waiting for job {JOB} to reach state Completed", "<dots>"]
    for node_id in (node for node, ran in ran_on.items() if ran):
        lines += [
            "",
            f"{node_id}: ",
            "  Prep task exit code:    0",
            "  Release task exit code: 0",
        ]
    lines += [
        "",
        "Delete job? [yes] no",
        "yes",
        "Delete pool? [yes] no",
        "yes",
        "",
        "Sample complete, hit ENTER to exit...",
    ]
    return "\n".join(lines) + "\n"


def with_dots_folded(transcript: str) -> str:
    """The line of poll dots after "Waiting for job ...", whose length depends on timing."""
    return re.sub(r"(reach state Completed\n)\.*\n", r"\1<dots>\n", transcript, count=1)


def assert_every_task_ran_once(standin: BatchStandIn, count: int) -> None:
    ran = sorted(task for job, _, task in standin.task_log if job == JOB)
    assert ran == [f"task{n:03d}" for n in range(1, count + 1)]


async def test_sample_flow_with_a_node_that_runs_no_task(standin: BatchStandIn) -> None:
    out = io.StringIO()
    options = SampleOptions(node_count=3, task_count=2)

    async with make_backend(standin.endpoint, poll_interval=0.0) as backend:
        outcome = await run_sample(backend, Console(Answer.YES, out=out), options)

    assert outcome.succeeded
    assert_every_task_ran_once(standin, 2)
    assert with_dots_folded(out.getvalue()) == expected_transcript(standin, nodes=3)
    idle = [node for node in standin.node_ids if node not in {n for _, n, _ in standin.task_log}]
    assert len(idle) == 1
    assert f"Contents of shared/job_prep_and_release.txt on {idle[0]}:" in out.getvalue()
    assert "(no such file: this node ran no task of the job" in out.getvalue()
