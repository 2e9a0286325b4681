"""Shared fixtures: a real Docker engine, unique ids per test, and a check that nothing is left."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from jobprep_release.azurite import Azurite, running

REPO = Path(__file__).resolve().parent.parent
POOL_LABEL = "jobprep_release.pool"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The engine the README's test command started. Its absence fails the run, never skips."""
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@dataclass(frozen=True)
class Ids:
    pool: str
    job: str


@pytest.fixture
def ids(docker_client: docker.DockerClient) -> Iterator[Ids]:
    """Unique pool and job ids. Afterwards the test fails if anything labelled with its pool
    is still there once deletions the app asked for (without waiting) have had time to finish;
    what is left is removed either way, so one failure does not leak into the next test."""
    suffix = uuid.uuid4().hex[:8]
    chosen = Ids(pool=f"TestPool-{suffix}", job=f"TestJob-{suffix}")
    yield chosen
    left = None if gone(docker_client, chosen.pool) else labelled(docker_client, chosen.pool)
    remove_labelled(docker_client, chosen.pool)
    assert left is None, f"left behind by the test: {left[0]} containers, {left[1]} volumes"


def remove_labelled(client: docker.DockerClient, pool_id: str, attempts: int = 20) -> None:
    """Remove the pool's containers and volumes; again while any reappear (an app killed
    mid-request may have had a container created after the first listing)."""
    selector = {"label": f"{POOL_LABEL}={pool_id}"}
    for _ in range(attempts):
        containers = client.containers.list(all=True, filters=selector, sparse=True)
        volumes = client.volumes.list(filters=selector)
        if not containers and not volumes:
            return
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for volume in volumes:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                volume.remove(force=True)
        time.sleep(0.5)
    raise AssertionError(f"could not remove what is labelled {pool_id}")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def labelled(client: docker.DockerClient, pool_id: str) -> tuple[int, int]:
    """How many containers and volumes carry the pool's label (one list call each: no
    per-container inspect, which would race with a container being removed meanwhile)."""
    selector = {"label": f"{POOL_LABEL}={pool_id}"}
    return (
        len(client.containers.list(all=True, filters=selector, sparse=True)),
        len(client.volumes.list(filters=selector)),
    )


def keep_a_one_node_pool(client: docker.DockerClient, ids: Ids, state_dir: Path) -> None:
    """Run the sample with one node and one task and `--keep`: its pool's container and
    volume stay."""
    kept = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "1", "--keep"],
        state_dir=state_dir,
    )
    assert kept.returncode == 0, kept.stderr
    assert labelled(client, ids.pool) == (1, 1)


def gone(client: docker.DockerClient, pool_id: str, limit: float = 60) -> bool:
    """Whether the pool's containers and volumes go within `limit` seconds (a deletion the
    app asked for without waiting, as the sample does, finishes after it exits)."""
    deadline = time.monotonic() + limit
    while labelled(client, pool_id) != (0, 0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def run_cli(
    args: list[str],
    *,
    state_dir: Path,
    stdin: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m jobprep_release ARGS` in a subprocess, as a user runs it."""
    environment = {**os.environ, "JOBPREP_RELEASE_STATE_DIR": str(state_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "jobprep_release", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite's blob service (the pinned release, installed once with npm) on a free
    127.0.0.1 port, started for the first test that needs it and stopped after the session.
    Skips, saying why, only where Node.js or npm cannot be had."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: Azurite needs Node.js and npm")
    with running() as started:
        yield started
