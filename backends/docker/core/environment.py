"""What a task sees on a node, as Batch decides it: the node layout, its directories, its
variables, and its command line split into words.

The service runs command lines without a shell, as Batch does: the line is split into words
(POSIX rules) and each word is passed to the program as is (batch-semantics.md, "Tasks").
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from jobprep_release.backends.base import AutoUserScope, ElevationLevel, UserIdentity

NODE_ROOT = "/mnt/batch/tasks"
SHARED_DIR = f"{NODE_ROOT}/shared"
STARTUP_DIR = f"{NODE_ROOT}/startup"
STARTUP_WORKING_DIR = f"{STARTUP_DIR}/wd"
MOUNTS_DIR = f"{NODE_ROOT}/fsmounts"
TASK_USER = "_azbatch"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def job_dir(job_id: str) -> str:
    return f"{NODE_ROOT}/workitems/{job_id}"


def task_dir(job_id: str, task_id: str) -> str:
    return f"{job_dir(job_id)}/job-1/{task_id}"


def relative_to_root(path: str) -> str:
    return path.removeprefix(NODE_ROOT + "/")


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What every task on a node sees of the node."""

    account_name: str
    account_url: str
    pool_id: str
    node_id: str


def identity_name(identity: UserIdentity) -> str:
    """`AZ_BATCH_TASK_USER_IDENTITY`: PoolNonAdmin, PoolAdmin, TaskNonAdmin or TaskAdmin for
    the auto-user; a named user account's name (inferred: the table documents the auto-user's
    values only)."""
    if identity.user_name is not None:
        return identity.user_name
    scope = "Pool" if identity.scope is AutoUserScope.POOL else "Task"
    level = "Admin" if identity.elevation_level is ElevationLevel.ADMIN else "NonAdmin"
    return scope + level


def task_environment(
    node: NodeContext,
    job_id: str,
    task_id: str,
    identity: UserIdentity,
    *,
    job_environment: Mapping[str, str],
    task_environment: Mapping[str, str],
    job_prep_task_id: str | None,
) -> dict[str, str]:
    """The variables a task sees: the job's, the task's over them, then the service's own,
    as the documentation's table has them for a task, a job preparation and a job release task
    ("Azure Batch runtime environment variables"; values as real Linux nodes set them).
    `job_prep_task_id`: the job's preparation task, for every task but that one itself (None
    when the job has none); it gives ``AZ_BATCH_JOB_PREP_DIR`` and ``..._WORKING_DIR``."""
    directory = task_dir(job_id, task_id)
    env = {**job_environment, **task_environment}
    env.update(_service_variables(node, directory, identity))
    # "All tasks except start task" (the documentation's table).
    env["AZ_BATCH_JOB_ID"] = job_id
    env["AZ_BATCH_TASK_ID"] = task_id
    if job_prep_task_id is not None:
        prep_dir = task_dir(job_id, job_prep_task_id)
        env["AZ_BATCH_JOB_PREP_DIR"] = prep_dir
        env["AZ_BATCH_JOB_PREP_WORKING_DIR"] = f"{prep_dir}/wd"
    return env


def start_task_environment(
    node: NodeContext, identity: UserIdentity, task_environment: Mapping[str, str]
) -> dict[str, str]:
    """The variables a pool's start task sees: its own, then the service's for a start task
    (the documentation's table: the node's and the task's directories, user and account;
    no job or task id, which are "all tasks except start task", and no job preparation
    directories). Its task directory is ``startup``, its working directory ``startup/wd``."""
    return {**task_environment, **_service_variables(node, STARTUP_DIR, identity)}


def _service_variables(node: NodeContext, directory: str, identity: UserIdentity) -> dict[str, str]:
    """What the service sets for every kind of task, the start task too, run in `directory`."""
    working_dir = f"{directory}/wd"
    user = process_user(identity)
    return {
        "PATH": f"{SHARED_DIR}:{working_dir}:{SYSTEM_PATH}",
        "HOME": working_dir,
        "USER": user,
        "AZ_BATCH_ACCOUNT_NAME": node.account_name,
        "AZ_BATCH_ACCOUNT_URL": node.account_url,
        "AZ_BATCH_POOL_ID": node.pool_id,
        "AZ_BATCH_NODE_ID": node.node_id,
        "AZ_BATCH_NODE_IS_DEDICATED": "true",
        "AZ_BATCH_NODE_ROOT_DIR": NODE_ROOT,
        "AZ_BATCH_NODE_SHARED_DIR": SHARED_DIR,
        "AZ_BATCH_NODE_STARTUP_DIR": STARTUP_DIR,
        "AZ_BATCH_NODE_STARTUP_WORKING_DIR": STARTUP_WORKING_DIR,
        "AZ_BATCH_NODE_MOUNTS_DIR": MOUNTS_DIR,
        "AZ_BATCH_TASK_DIR": directory,
        "AZ_BATCH_TASK_WORKING_DIR": working_dir,
        # Documented for all tasks on Linux nodes; certificates are not emulated, so the
        # directory holds none (and is not made).
        "AZ_BATCH_CERTIFICATES_DIR": f"{directory}/certs",
        "AZ_BATCH_TASK_USER": user,
        "AZ_BATCH_TASK_USER_IDENTITY": identity_name(identity),
    }


def process_user(identity: UserIdentity) -> str:
    """The account a process runs as: a named user account as itself; the auto-user as
    `_azbatch`, or root when elevated (inferred: real Linux nodes name the auto-user account
    `_azbatch` for both levels but an elevated task runs with root's rights)."""
    if identity.user_name is not None:
        return identity.user_name
    return "root" if identity.elevation_level is ElevationLevel.ADMIN else TASK_USER


def split_command_line(command_line: str) -> list[str]:
    """The program and its arguments; ValueError for an empty or unbalanced line."""
    return list(_split(command_line))


@functools.lru_cache(maxsize=1024)
def _split(command_line: str) -> tuple[str, ...]:
    # Remembered: the tasks of a job often share one command line, split at every start.
    words = tuple(shlex.split(command_line))
    if not words:
        raise ValueError("the command line is empty")
    return words
