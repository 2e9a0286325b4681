"""The whole sample on the docker backend, against a real engine."""

from __future__ import annotations

import io
import re
from pathlib import Path

import docker

from jobprep_release.backends.base import Task
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.conftest import Ids, labelled, run_cli

NODE_ID = re.compile(r"^tvm-\d{10}_\d+-\d{8}t\d{6}z$")


def expected_transcript(ids: Ids, tasks_by_node: dict[str, list[str]], answers: str) -> list[str]:
    lines = [
        f"Attempting to create pool: {ids.pool}",
        f"Created pool {ids.pool} with 2 dedicated and 0 low priority standard_d1_v2 nodes",
        f"Checking for existing job {ids.job}...",
        f"Job {ids.job} not found, creating...",
        "Submitting tasks and awaiting completion...",
        "All tasks completed.",
        "",
    ]
    for node_id, task_ids in tasks_by_node.items():
        lines += [f"Contents of shared/job_prep_and_release.txt on {node_id}:", "-" * 43]
        if task_ids:
            lines += [f"{node_id} tasks:", *[f"  {task_id}" for task_id in task_ids], ""]
        else:  # a node that came up after the other had run every task
            lines += [
                "(no such file: this node ran no task of the job, so its preparation",
                "task never ran there)",
                "",
            ]
    lines += [f"Waiting for job {ids.job} to reach state Completed", "<dots>"]
    for node_id, task_ids in tasks_by_node.items():
        if task_ids:
            lines += [
                "",
                f"{node_id}: ",
                "  Prep task exit code:    0",
                "  Release task exit code: 0",
            ]
    lines += ["", "Delete job? [yes] no", answers, "Delete pool? [yes] no", answers, ""]
    lines += ["Sample complete, hit ENTER to exit..."]
    return lines


def compare(actual: list[str], expected: list[str]) -> None:
    assert len(actual) == len(expected), "\n".join(actual)
    for got, wanted in zip(actual, expected, strict=True):
        if wanted == "<dots>":
            assert re.fullmatch(r"\.*", got), got
        else:
            assert got == wanted


def by_node_in_run_order(tasks: list[Task]) -> dict[str, list[str]]:
    placed: dict[str, list[Task]] = {}
    for task in tasks:
        assert task.node_id is not None
        placed.setdefault(task.node_id, []).append(task)
    return {
        node: [t.id for t in sorted(group, key=lambda t: t.execution_info.start_time or 0)]
        for node, group in placed.items()
    }


async def test_transcript_matches_the_sample_and_the_service(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    out = io.StringIO()
    backend = DockerBackend(DockerSettings(state_dir=state_dir))
    options = SampleOptions(pool_id=ids.pool, job_id=ids.job)
    async with backend:
        outcome = await run_sample(backend, Console(Answer.NO, out=out), options)
        tasks = await backend.list_tasks(ids.job)
        nodes = [node.id for node in await backend.list_nodes(ids.pool)]
        assert outcome.succeeded
        assert all(t.execution_info.exit_code == 0 for t in tasks)
        assert sorted(t.id for t in tasks) == [f"task{n:03d}" for n in range(1, 9)]
        assert all(NODE_ID.fullmatch(node) for node in nodes)
        placed = by_node_in_run_order(tasks)
        in_service_order = {node: placed.get(node, []) for node in nodes}
        compare(out.getvalue().splitlines(), expected_transcript(ids, in_service_order, "no"))
        assert labelled(docker_client, ids.pool) == (2, 2)
        await backend.delete_job(ids.job)
        await backend.delete_pool(ids.pool)
        assert await backend.find_job(ids.job) is None
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_cli_yes_run_leaves_nothing(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--yes"], state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Attempting to create pool: {ids.pool}"
    assert lines[-6:] == [
        "Delete job? [yes] no",
        "yes",
        "Delete pool? [yes] no",
        "yes",
        "",
        "Sample complete, hit ENTER to exit...",
    ]
    assert "Traceback" not in result.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_second_run_reuses_the_pool(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    base = ["--pool-id", ids.pool, "--job-id", ids.job]
    first = run_cli(base, state_dir=state_dir, stdin="yes\nno\n\n")
    assert first.returncode == 0, first.stderr
    assert labelled(docker_client, ids.pool) == (2, 2)
    second = run_cli([*base, "--yes"], state_dir=state_dir)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert lines[:4] == [
        f"Attempting to create pool: {ids.pool}",
        "The pool already existed when we tried to create it",
        f"Checking for existing job {ids.job}...",
        f"Job {ids.job} not found, creating...",
    ]
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_pool_found_from_its_labels_when_the_state_is_lost(
    ids: Ids, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    base = ["--pool-id", ids.pool, "--job-id", ids.job]
    first = run_cli(base, state_dir=tmp_path, stdin="yes\nno\n")
    assert first.returncode == 0, first.stderr
    # The state lost: every file of it gone but its identity (the pool's containers carry it,
    # and another state's are never adopted) and its lock.
    lost = [path for path in tmp_path.iterdir() if path.suffix not in (".id", ".lock")]
    assert any(path.name.startswith("docker-") for path in lost), lost
    for path in lost:
        path.unlink()
    second = run_cli([*base, "--yes"], state_dir=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "The pool already existed when we tried to create it" in second.stdout
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_prompts_no_keeps_and_end_of_input_deletes(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    base = ["--pool-id", ids.pool, "--job-id", ids.job]
    kept = run_cli(base, state_dir=state_dir, stdin="N\nNo\n")
    assert kept.returncode == 0, kept.stderr
    assert labelled(docker_client, ids.pool) == (2, 2)
    # The job was kept, terminated: the next run carries on from its termination, and end of
    # input answers yes to both prompts.
    again = run_cli(base, state_dir=state_dir, stdin="")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_a_node_that_ran_no_task_says_so(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--tasks", "1", "--yes"], state_dir=state_dir
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Contents of shared/job_prep_and_release.txt on ") == 2
    assert "(no such file: this node ran no task of the job" in result.stdout
    assert result.stdout.count("  Prep task exit code:    0") == 1
    assert labelled(docker_client, ids.pool) == (0, 0)
