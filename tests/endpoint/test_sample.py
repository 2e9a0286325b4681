"""The whole sample on the azure backend (azure-batch over real HTTP) through the local endpoint,
whose nodes are real containers: in process, and as a user runs it (two commands)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import docker
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.conftest import REPO, Ids, gone, labelled
from tests.docker.test_sample import (
    NODE_ID,
    by_node_in_run_order,
    compare,
    expected_transcript,
)
from tests.endpoint.harness import ACCOUNT, KEY, azure_on_endpoint, serve_process

URL_LINE = re.compile(r"^Azure Batch endpoint \(local, Docker\) at (http://127\.0\.0\.1:\d+)$")


async def test_sample_through_the_endpoint_matches_the_service(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    out = io.StringIO()
    options = SampleOptions(pool_id=ids.pool, job_id=ids.job)
    async with azure_on_endpoint(state_dir) as backend:
        outcome = await run_sample(backend, Console(Answer.NO, out=out), options)
        tasks = await backend.list_tasks(ids.job)
        nodes = [node.id for node in await backend.list_nodes(ids.pool)]
        assert outcome.succeeded
        assert sorted(t.id for t in tasks) == [f"task{n:03d}" for n in range(1, 9)]
        assert all(t.execution_info.exit_code == 0 for t in tasks)
        assert all(NODE_ID.fullmatch(node) for node in nodes)
        placed = by_node_in_run_order(tasks)
        compare(out.getvalue().splitlines(), transcript_for(ids, nodes, placed, "no"))
        assert labelled(docker_client, ids.pool) == (2, 2)
        await backend.delete_job(ids.job)
        await backend.delete_pool(ids.pool)
        assert await backend.find_job(ids.job) is None
    assert labelled(docker_client, ids.pool) == (0, 0)


def transcript_for(
    ids: Ids, nodes: list[str], placed: dict[str, list[str]], answers: str
) -> list[str]:
    """The sample's transcript for nodes in the service's order, `placed` the tasks each ran:
    a node that came up after every task had run (a loaded engine) says so in its block."""
    lines = expected_transcript(
        ids, {node: placed[node] for node in nodes if node in placed}, answers
    )
    blocks: list[str] = []
    for node in nodes:
        blocks += [f"Contents of shared/job_prep_and_release.txt on {node}:", "-" * 43]
        if node in placed:
            blocks += [f"{node} tasks:", *(f"  {task}" for task in placed[node]), ""]
        else:
            blocks += [
                "(no such file: this node ran no task of the job, so its preparation",
                "task never ran there)",
                "",
            ]
    first = lines.index("All tasks completed.") + 2
    waiting = lines.index(f"Waiting for job {ids.job} to reach state Completed")
    return lines[:first] + blocks + lines[waiting:]


def recorded_by_node(client: BatchClient, ids: Ids) -> tuple[list[str], dict[str, list[str]]]:
    """The service's own record: its nodes in its order, and the tasks each ran, in run order."""
    nodes = [node.id for node in client.list_nodes(ids.pool)]
    placed: dict[str, list[tuple[datetime, str]]] = {}
    for task in client.list_tasks(ids.job):
        assert task.node_info is not None and task.node_info.node_id is not None
        assert task.execution_info is not None and task.execution_info.start_time is not None
        ran = (task.execution_info.start_time, task.id)
        placed.setdefault(task.node_info.node_id, []).append(ran)
    return nodes, {node: [task for _, task in sorted(ran)] for node, ran in placed.items()}


def test_cli_runs_the_sample_through_a_served_endpoint(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    server = serve_process(state_dir, REPO)
    try:
        assert server.stdout is not None and server.stderr is not None
        first = server.stdout.readline().strip()
        match = URL_LINE.fullmatch(first)
        assert match, first + (server.stderr.read() if server.poll() is not None else "")
        url = match[1]
        banner = [server.stdout.readline() for _ in range(6)]
        assert KEY not in "".join(banner), "a key given by the environment is not printed"

        sample = subprocess.run(
            [sys.executable, "-m", "jobprep_release", "--backend", "azure", "--endpoint", url,
             "--account", ACCOUNT, "--key", KEY, "--pool-id", ids.pool, "--job-id", ids.job,
             "--keep"],
            cwd=REPO, env=environ, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert sample.returncode == 0, sample.stderr
        assert KEY not in sample.stdout + sample.stderr
        # The expectation comes from the service's record, read with azure-batch's own client.
        with BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY)) as client:
            nodes, placed = recorded_by_node(client, ids)
            assert len(nodes) == 2 and all(NODE_ID.fullmatch(node) for node in nodes)
            assert sorted(t for ran in placed.values() for t in ran) == [
                f"task{n:03d}" for n in range(1, 9)
            ]
            compare(sample.stdout.splitlines(), transcript_for(ids, nodes, placed, "no"))
            client.begin_delete_job(ids.job, polling_interval=1).result()
            client.begin_delete_pool(ids.pool, polling_interval=1).result()
        assert gone(docker_client, ids.pool)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
