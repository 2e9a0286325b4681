"""What a task sees and how its outcome is reported, on a real engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from jobprep_release.backends.base import (
    ElevationLevel,
    ExecutionResult,
    JobPreparationTaskSpec,
    JobSpec,
    PoolSpec,
    TaskConstraints,
    TaskSpec,
    UserIdentity,
)
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.errors import InvalidRequest, NotFound
from tests.conftest import Ids
from tests.docker.helpers import only, wait_for_tasks

SHOW = "/bin/bash -c 'id -un; pwd; env'"


@asynccontextmanager
async def one_node_job(ids: Ids, state_dir: Path) -> AsyncIterator[DockerBackend]:
    """A one-node pool and a job with a preparation task; both deleted afterwards.

    (A context manager, not a fixture: the backend's task group must be left in the task that
    entered it, and pytest-asyncio runs a fixture's set-up and tear-down in different tasks.)
    """
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as opened:
        await opened.create_pool(PoolSpec(id=ids.pool, target_dedicated_nodes=1))
        await opened.create_job(
            JobSpec(
                id=ids.job,
                pool_id=ids.pool,
                preparation=JobPreparationTaskSpec(command_line="/bin/true"),
                common_environment={"FROM_JOB": "job", "OVERRIDDEN": "job"},
            )
        )
        yield opened
        await opened.delete_job(ids.job)
        await opened.delete_pool(ids.pool)


async def stdout_of(backend: DockerBackend, ids: Ids, node_id: str, task_id: str) -> str:
    path = f"workitems/{ids.job}/job-1/{task_id}/stdout.txt"
    return (await backend.read_node_file(ids.pool, node_id, path)).decode()


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


async def test_a_task_sees_the_node_layout_and_variables(ids: Ids, state_dir: Path) -> None:
    async with one_node_job(ids, state_dir) as backend:
        await backend.add_tasks(
            ids.job, [TaskSpec(id="show", command_line=SHOW, environment={"OVERRIDDEN": "task"})]
        )
        task = only(await wait_for_tasks(backend, ids.job), "show")
        assert task.execution_info.exit_code == 0
        assert task.node_id is not None
        user, cwd, *env_lines = (await stdout_of(backend, ids, task.node_id, "show")).splitlines()
        env = parse_env("\n".join(env_lines))
        task_dir = f"/mnt/batch/tasks/workitems/{ids.job}/job-1/show"
        prep_dir = f"/mnt/batch/tasks/workitems/{ids.job}/job-1/jobpreparation"
        assert user == "_azbatch"
        assert cwd == f"{task_dir}/wd"
        expected = {
            "AZ_BATCH_NODE_ROOT_DIR": "/mnt/batch/tasks",
            "AZ_BATCH_NODE_SHARED_DIR": "/mnt/batch/tasks/shared",
            "AZ_BATCH_NODE_STARTUP_DIR": "/mnt/batch/tasks/startup",
            "AZ_BATCH_NODE_MOUNTS_DIR": "/mnt/batch/tasks/fsmounts",
            "AZ_BATCH_TASK_DIR": task_dir,
            "AZ_BATCH_TASK_WORKING_DIR": f"{task_dir}/wd",
            "AZ_BATCH_JOB_PREP_DIR": prep_dir,
            "AZ_BATCH_JOB_PREP_WORKING_DIR": f"{prep_dir}/wd",
            "AZ_BATCH_TASK_USER": "_azbatch",
            "AZ_BATCH_TASK_USER_IDENTITY": "PoolNonAdmin",
            "AZ_BATCH_NODE_ID": task.node_id,
            "AZ_BATCH_POOL_ID": ids.pool,
            "AZ_BATCH_JOB_ID": ids.job,
            "AZ_BATCH_TASK_ID": "show",
            "AZ_BATCH_NODE_IS_DEDICATED": "true",
            "HOME": f"{task_dir}/wd",
            "FROM_JOB": "job",
            "OVERRIDDEN": "task",
        }
        assert {name: env.get(name) for name in expected} == expected
        assert env["AZ_BATCH_ACCOUNT_NAME"]
        assert env["AZ_BATCH_ACCOUNT_URL"]
        assert env["PATH"].split(":")[:2] == ["/mnt/batch/tasks/shared", f"{task_dir}/wd"]


async def test_an_elevated_task_runs_as_root(ids: Ids, state_dir: Path) -> None:
    async with one_node_job(ids, state_dir) as backend:
        admin = UserIdentity(elevation_level=ElevationLevel.ADMIN)
        await backend.add_tasks(
            ids.job, [TaskSpec(id="root", command_line=SHOW, user_identity=admin)]
        )
        task = only(await wait_for_tasks(backend, ids.job), "root")
        assert task.node_id is not None
        output = await stdout_of(backend, ids, task.node_id, "root")
        assert output.splitlines()[0] == "root"
        assert parse_env(output)["AZ_BATCH_TASK_USER_IDENTITY"] == "PoolAdmin"


async def test_command_lines_are_not_run_in_a_shell(ids: Ids, state_dir: Path) -> None:
    async with one_node_job(ids, state_dir) as backend:
        await backend.add_tasks(ids.job, [TaskSpec(id="echo", command_line="echo $HOME 'a  b'")])
        task = only(await wait_for_tasks(backend, ids.job), "echo")
        assert task.node_id is not None
        assert await stdout_of(backend, ids, task.node_id, "echo") == "$HOME a  b\n"


async def test_failures_are_reported_as_the_service_does(ids: Ids, state_dir: Path) -> None:
    async with one_node_job(ids, state_dir) as backend:
        retried = TaskConstraints(max_task_retry_count=2)
        await backend.add_tasks(
            ids.job,
            [
                TaskSpec(id="exit3", command_line="/bin/bash -c 'exit 3'", constraints=retried),
                TaskSpec(id="missing", command_line="no-such-program --flag"),
            ],
        )
        tasks = await wait_for_tasks(backend, ids.job)
        exit3 = only(tasks, "exit3").execution_info
        assert (exit3.exit_code, exit3.result, exit3.retry_count) == (3, ExecutionResult.FAILURE, 2)
        assert exit3.failure_info is not None
        assert exit3.failure_info.code == "FailureExitCode"
        assert exit3.start_time is not None and exit3.end_time is not None
        assert exit3.start_time <= exit3.end_time
        missing = only(tasks, "missing").execution_info
        assert missing.exit_code is None
        assert missing.failure_info is not None
        assert missing.failure_info.code == "CommandProgramNotFound"


async def test_reserved_and_duplicate_task_ids_are_rejected(ids: Ids, state_dir: Path) -> None:
    async with one_node_job(ids, state_dir) as backend:
        with pytest.raises(InvalidRequest) as reserved:
            await backend.add_tasks(ids.job, [TaskSpec(id="JobPreparation", command_line="true")])
        assert reserved.value.code == "TaskIdSameAsJobPreparationTask"
        with pytest.raises(InvalidRequest):
            await backend.add_tasks(
                ids.job,
                [TaskSpec(id="a", command_line="true"), TaskSpec(id="A", command_line="true")],
            )


async def test_node_files_stay_inside_the_node_root(ids: Ids, state_dir: Path) -> None:
    async with one_node_job(ids, state_dir) as backend:
        (node,) = await backend.list_nodes(ids.pool)
        for path in ("../etc/passwd", "/etc/passwd", "shared/../../x"):
            with pytest.raises(InvalidRequest):
                await backend.read_node_file(ids.pool, node.id, path)
        with pytest.raises(NotFound):
            await backend.read_node_file(ids.pool, node.id, "shared/nothing-here.txt")
