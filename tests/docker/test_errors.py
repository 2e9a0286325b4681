"""Bad input and an unreachable engine: one line, a documented status, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from jobprep_release.backends.docker.core.store import StateStore
from tests.conftest import Ids, gone, keep_a_one_node_pool, labelled, run_cli


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
    assert f"cannot reach the Docker engine (connect to unix://{tmp_path}/no.sock)" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_engine_named_by_the_flag(state_dir: Path, tmp_path: Path) -> None:
    # The line names the address tried: the flag's, over DOCKER_HOST.
    flag = f"unix://{tmp_path}/flag.sock"
    result = run_cli(
        ["--yes", "--docker-host", flag],
        state_dir=state_dir,
        env={"DOCKER_HOST": f"unix://{tmp_path}/env.sock"},
    )
    assert result.returncode == 3
    assert f"cannot reach the Docker engine (connect to {flag})" in result.stderr
    assert "env.sock" not in result.stderr
    assert "give --docker-host (or DOCKER_HOST) a running engine" in result.stderr


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


@pytest.mark.parametrize("how", ["flag", "environment", "settings file", "none"])
def test_debug_shows_the_traceback(how: str, state_dir: Path, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("debug = true\n" if how == "settings file" else "")
    env = {"DOCKER_HOST": f"unix://{tmp_path}/x", "JOBPREP_RELEASE_CONFIG": str(settings)}
    if how == "environment":
        env["JOBPREP_RELEASE_DEBUG"] = "1"
    args = ["--debug", "--yes"] if how == "flag" else ["--yes"]
    result = run_cli(args, state_dir=state_dir, env=env)
    if how == "none":
        assert result.returncode == 3
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1
    else:
        assert result.returncode == 1, result.stderr
        assert "Traceback (most recent call last):" in result.stderr
        assert "cannot reach the Docker engine" in result.stderr


def test_a_command_not_found_in_the_node_fails_its_tasks_with_status_10(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "2",
         "--task-command", "no-such-program --flag", "--yes", "--json"],
        state_dir=state_dir,
    )  # fmt: skip
    assert result.returncode == 10, result.stderr
    assert "error: the sample ran, but these failed: task001, task002\n" in result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["error"] == {
        "status": 10,
        "message": "the sample ran, but these failed: task001, task002",
    }
    tasks = document["tasks"]
    assert [(t["id"], t["state"], t["exitCode"], t["result"], t["failureCode"]) for t in tasks] == [
        (task_id, "completed", None, "failure", "CommandProgramNotFound")
        for task_id in ("task001", "task002")
    ]
    assert gone(docker_client, ids.pool)


def test_an_empty_task_command_is_refused(state_dir: Path) -> None:
    result = run_cli(["--task-command", " "], state_dir=state_dir)
    assert result.returncode == 2
    assert result.stderr.startswith("error: argument --task-command: --task-command must not")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("text", ["{cut short", json.dumps({"version": 10**6})])
def test_a_state_that_cannot_be_read_exits_9_naming_the_file_and_creates_nothing(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient, text: str
) -> None:
    # Not JSON (a disk filled up, a hand edit), or written by a newer app: never an empty
    # account, which would forget every pool and job it held.
    engine_id = str(docker_client.info()["ID"])
    path = StateStore(state_dir, engine_id).path
    path.write_text(text)
    result = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
    assert result.returncode == 9, result.stderr
    assert result.stdout == ""
    assert str(path) in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert path.read_text() == text
    assert labelled(docker_client, ids.pool) == (0, 0)


@pytest.mark.parametrize(
    "command",
    [["--yes"], ["status"], ["serve", "--port", "0"]],
    ids=["run", "status", "serve"],
)
def test_a_state_directory_that_cannot_be_made_exits_9_naming_it(
    command: list[str], tmp_path: Path
) -> None:
    # A path below a regular file: no directory can be made there, whoever the user is.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state = blocker / "state"
    result = run_cli([*command, "--state-dir", str(state)], state_dir=tmp_path / "unused")
    assert result.returncode == 9, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"error: the docker backend's state directory {state} cannot be used: Not a directory "
        "(give a directory this user can write, with --state-dir or JOBPREP_RELEASE_STATE_DIR)\n"
    )


def test_cleanup_with_a_state_directory_that_cannot_be_made_exits_9_and_removes_nothing(
    ids: Ids, state_dir: Path, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    keep_a_one_node_pool(docker_client, ids, state_dir)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    refused = run_cli(
        ["cleanup", "--pool-id", ids.pool, "--yes", "--state-dir", str(blocker / "state")],
        state_dir=state_dir,
    )
    assert refused.returncode == 9, refused.stderr
    assert refused.stderr.startswith("error: the docker backend's state directory "), refused
    assert "Traceback" not in refused.stderr
    assert labelled(docker_client, ids.pool) == (1, 1)
    cleaned = run_cli(["cleanup", "--pool-id", ids.pool, "--yes"], state_dir=state_dir)
    assert cleaned.returncode == 0, cleaned.stderr
    assert gone(docker_client, ids.pool)
