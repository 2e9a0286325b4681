"""Bad input and an unreachable engine: one line, a documented status, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.conftest import Ids, labelled, run_cli


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["--pool-id", "bad id!"], 2, "invalid pool id"),
        (["--job-id", "x" * 65], 2, "invalid job id"),
        (["--nodes", "0"], 2, "--nodes must be between"),
        (["--tasks", "100000"], 2, "--tasks must be between"),
        (["--backend", "nope"], 2, "invalid choice"),
        (["--task-timeout", "soon"], 2, "not a duration"),
    ],
)
def test_bad_flags(args: list[str], status: int, words: str, state_dir: Path) -> None:
    result = run_cli(args, state_dir=state_dir)
    assert result.returncode == status
    assert result.stdout == ""
    assert words in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")


def test_unreachable_engine(state_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        ["--yes"], state_dir=state_dir, env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    )
    assert result.returncode == 3
    assert "cannot reach the Docker engine" in result.stderr
    assert "Traceback" not in result.stderr


def test_absent_image_leaves_nothing(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--image", "jobprep-no-such-image:1", "--yes"],
        state_dir=state_dir,
    )
    assert result.returncode == 5
    assert "node image 'jobprep-no-such-image:1' is not present" in result.stderr
    assert "Traceback" not in result.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_debug_shows_the_traceback(state_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        ["--debug", "--yes"], state_dir=state_dir, env={"DOCKER_HOST": f"unix://{tmp_path}/x"}
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr
