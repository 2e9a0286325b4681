"""What the resource models share: Batch's id check, the identity a task runs as, resource
files, a task's constraints and container settings, and how a task (or a preparation, release or
start task) ran (`ExecutionInfo`), with the service's defaults for them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from jobprep_release.backends.errors import InvalidRequest
from jobprep_release.backends.models.value import Value

DEFAULT_RETENTION = timedelta(days=7)


_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_id(kind: str, value: str) -> str:
    """Return `value` when it is a valid Batch id for `kind`, else raise `InvalidRequest`.

    Batch ids: letters, digits, hyphens and underscores, 1 to 64 characters; unique without
    regard to case.
    """
    if not _ID_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"invalid {kind} id {value!r}: use 1 to 64 letters, digits, hyphens or underscores",
            code="InvalidPropertyValue",
        )
    return value


class ElevationLevel(StrEnum):
    NON_ADMIN = "nonadmin"
    ADMIN = "admin"


class AutoUserScope(StrEnum):
    TASK = "task"
    POOL = "pool"


class ExecutionResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class ErrorCategory(StrEnum):
    USER_ERROR = "usererror"
    SERVER_ERROR = "servererror"


# --- specs: what the app asks for ------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class UserIdentity(Value):
    """An auto-user: pool-scoped non-admin `_azbatch` by default, as on Linux nodes; or, with
    `user_name`, one of the pool's user accounts (REST UserIdentity.username; the auto-user's
    settings then do not apply)."""

    elevation_level: ElevationLevel = ElevationLevel.NON_ADMIN
    scope: AutoUserScope = AutoUserScope.POOL
    user_name: str | None = None


DEFAULT_USER_IDENTITY = UserIdentity()
"""The default identity, one object shared by every spec that does not name another (a large
job's tasks would otherwise each hold an equal copy)."""
NO_ENVIRONMENT: Mapping[str, str] = MappingProxyType({})
"""An empty, read-only environment shared by every task spec that sets none."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ResourceFile(Value):
    """Files downloaded into the task's working directory before the task starts, from one
    source: `http_url` (any URL, a blob's SAS URL included; `file_path` is then the file's
    name), `storage_container_url` (a container's URL with a SAS granting read and list:
    every blob whose name starts with `blob_prefix`) or `auto_storage_container_name` (a
    container of the account's linked storage); for a container, `file_path` is the directory
    the blobs go to, their names kept below it (REST ResourceFile)."""

    http_url: str = ""
    file_path: str = ""
    file_mode: str | None = None
    storage_container_url: str | None = None
    auto_storage_container_name: str | None = None
    blob_prefix: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskConstraints(Value):
    max_wall_clock_time: timedelta | None = None
    retention_time: timedelta | None = None
    max_task_retry_count: int | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskContainerSettings(Value):
    """A task's ``containerSettings``: the task runs in a container from `image_name`, with
    `container_run_options` (extra ``docker create`` options), in `working_directory`
    ``taskWorkingDirectory`` (the task's ``wd``, the service's default) or
    ``containerImageDefault`` (the image's own working directory)."""

    image_name: str
    container_run_options: str | None = None
    working_directory: str = "taskWorkingDirectory"


# --- views: what the service reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FailureInfo(Value):
    category: ErrorCategory
    code: str
    message: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskContainerExecutionInfo(Value):
    """The container a task ran in (REST TaskContainerExecutionInfo): its id, its state as
    ``docker inspect`` gives it (``running``, ``exited``) and the engine's error, if any."""

    container_id: str | None = None
    state: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExecutionInfo(Value):
    """How a task, or a preparation or release task on one node, ran."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    result: ExecutionResult | None = None
    failure_info: FailureInfo | None = None
    retry_count: int = 0
    requeue_count: int = 0
    last_retry_time: datetime | None = None
    """When the latest retry started (set once the task was retried: REST TaskExecutionInfo)."""
    last_requeue_time: datetime | None = None
    """When the service last requeued the task (a node reboot, say); tasks only."""
    container_info: TaskContainerExecutionInfo | None = None
    """Set only for a run in a container (``containerSettings``)."""
