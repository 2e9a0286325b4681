"""The whole sample on the azure backend against the project's endpoint over the fake executor
(`tests.azure.emulator`), including what is hard to make happen on real nodes on demand: a node
that runs no task. (The sample through the endpoint on real containers runs in
tests/endpoint/test_sample.py.)"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.azure.emulator import Emulator, running_emulator
from tests.azure.support import make_backend

REPO = Path(__file__).resolve().parents[2]
POOL = "JobPrepReleaseSamplePool"
JOB = "JobPrepReleaseSampleJob"


def expected_transcript(emulator: Emulator, nodes: int) -> str:
    """The sample's transcript for what the fake executor says ran where (its start records,
    not the output under test): node ids in the order the nodes were created."""
    node_ids = emulator.fake.created
    assert len(node_ids) == nodes
    lines = [
        f"Attempting to create pool: {POOL}",
        f"Created pool {POOL} with {nodes} dedicated and 0 low priority standard_d1_v2 nodes",
        f"Checking for existing job {JOB}...",
        f"Job {JOB} not found, creating...",
        "Submitting tasks and awaiting completion...",
        "All tasks completed.",
        "",
    ]
    started = emulator.task_starts(JOB)
    ran_on = {
        node_id: [start.task_id for start in started if start.node_id == node_id]
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


def assert_every_task_ran_once(emulator: Emulator, count: int) -> None:
    ran = sorted(start.task_id for start in emulator.task_starts(JOB))
    assert ran == [f"task{n:03d}" for n in range(1, count + 1)]


@pytest.mark.parametrize(
    ("nodes", "tasks", "idle"),
    [(2, 8, 0), (3, 1, 2)],
    ids=["the sample's 2 nodes and 8 tasks", "3 nodes and 1 task"],
)
async def test_sample_flow(nodes: int, tasks: int, idle: int) -> None:
    out = io.StringIO()
    options = SampleOptions(node_count=nodes, task_count=tasks)

    # Each read moves the fake clock 1 s and each process takes 1 s: every node runs one task
    # at a time, so the sample's 8 tasks spread over both nodes, as on the service.
    async with running_emulator(seconds=1.0, seconds_per_read=1.0) as emulator:
        async with make_backend(emulator.url, poll_interval=0.0) as backend:
            outcome = await run_sample(backend, Console(Answer.YES, out=out), options)

        assert outcome.succeeded
        assert_every_task_ran_once(emulator, tasks)
        assert with_dots_folded(out.getvalue()) == expected_transcript(emulator, nodes=nodes)
        used = {start.node_id for start in emulator.task_starts(JOB)}
        unused = [node_id for node_id in emulator.fake.created if node_id not in used]
        assert len(unused) == idle
        for node_id in unused:
            assert f"Contents of shared/job_prep_and_release.txt on {node_id}:" in out.getvalue()
        assert out.getvalue().count("(no such file: this node ran no task of the job") == idle
        assert await emulator.service.list_pools() == []
        assert await emulator.service.list_jobs() == []
