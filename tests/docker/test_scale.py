"""Many nodes on a real engine: linked nodes hold no worker thread, and a pool of 64 nodes (the
CLI's limit) runs the sample."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import docker
import pytest

from jobprep_release.backends.base import NodeState
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.flow import pool_spec
from jobprep_release.options import SampleOptions
from tests.conftest import REPO, Ids, labelled, run_cli
from tests.docker.capacity_child import NODES, ROOM

IDLE_NODES = 10
THREADS = 4
"""anyio's default thread pool for the first test: fewer threads than nodes, so a link that
held one while waiting for its agent would stall the pool's creation."""


async def test_idle_nodes_hold_no_worker_thread(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    default = anyio.to_thread.current_default_thread_limiter()
    default.total_tokens = THREADS  # this test's event loop only
    options = SampleOptions(pool_id=ids.pool, job_id=ids.job, node_count=IDLE_NODES)
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await backend.create_pool(pool_spec(options))
        with anyio.fail_after(180):
            while True:
                nodes = await backend.list_nodes(ids.pool)
                if len(nodes) == IDLE_NODES and all(n.state is NodeState.IDLE for n in nodes):
                    break
                await anyio.sleep(0.2)
        try:
            # Idle means each node's agent said hello over its link, and every link now waits.
            # The state's save of those changes borrows a thread for a moment: the window
            # begins once it has given it back (a link holding one never would: this times out).
            def in_use() -> tuple[int, int]:
                return (default.borrowed_tokens, backend.engine.limiter.borrowed_tokens)

            with anyio.fail_after(10):
                while in_use() != (0, 0):
                    await anyio.sleep(0.01)
            borrowed = []
            for _ in range(20):
                borrowed.append(in_use())
                await anyio.sleep(0.05)
            assert max(borrowed) == (0, 0), borrowed
        finally:
            await backend.delete_pool(ids.pool)
    assert labelled(docker_client, ids.pool) == (0, 0)


@pytest.mark.slow
def test_64_nodes_run_the_sample(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    nodes, tasks = 64, 128
    sizes = ["--nodes", str(nodes), "--tasks", str(tasks)]
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--yes", *sizes],
        state_dir=state_dir,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    out = result.stdout
    lines = out.splitlines()
    assert lines[:6] == [
        f"Attempting to create pool: {ids.pool}",
        f"Created pool {ids.pool} with {nodes} dedicated and 0 low priority standard_d1_v2 nodes",
        f"Checking for existing job {ids.job}...",
        f"Job {ids.job} not found, creating...",
        "Submitting tasks and awaiting completion...",
        "All tasks completed.",
    ]
    # Each node's block lists the tasks that ran there; together, every task exactly once.
    blocks = re.findall(
        r"^Contents of shared/job_prep_and_release\.txt on (\S+):\n-{43}\n(.*?)\n\n",
        out,
        flags=re.M | re.S,
    )
    assert len(blocks) == nodes, out
    listed: list[str] = []
    ran_somewhere = 0
    for node_id, body in blocks:
        if body.startswith("(no such file"):
            continue
        head, *task_lines = body.splitlines()
        assert head == f"{node_id} tasks:", body
        listed += [line.strip() for line in task_lines]
        ran_somewhere += 1
    assert sorted(listed) == [f"task{n:03d}" for n in range(1, tasks + 1)]
    assert out.count("  Prep task exit code:    0") == ran_somewhere
    assert out.count("  Release task exit code: 0") == ran_somewhere
    assert lines[-6:] == [
        "Delete job? [yes] no",
        "yes",
        "Delete pool? [yes] no",
        "yes",
        "",
        "Sample complete, hit ENTER to exit...",
    ]
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_nodes_past_the_descriptor_limit_are_unusable_and_the_log_says_why(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    # Each node's agent link is a socket: past the process's limit less a reserve, a node is
    # not made (it would fail later, somewhere else, for want of a descriptor).
    child = subprocess.run(
        [sys.executable, "-m", "tests.docker.capacity_child", ids.pool],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir)},
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    # structlog writes its lines to stdout in the child; the states are the one line without
    # a timestamp.
    lines = child.stdout.splitlines()
    (states,) = [line for line in lines if line.split()[0] in ("idle", "unusable")]
    assert states.split() == ["idle"] * ROOM + ["unusable"] * (NODES - ROOM)
    assert any("file descriptor limit" in line for line in lines)
    assert labelled(docker_client, ids.pool) == (0, 0)
