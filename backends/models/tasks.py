"""Tasks: the task to add (`TaskSpec`, with its exit conditions, dependencies, output files
and multi-instance settings), and the task and the job's task counts as the service reports
them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from jobprep_release.backends.models.common import (
    DEFAULT_USER_IDENTITY,
    NO_ENVIRONMENT,
    ExecutionInfo,
    ResourceFile,
    TaskConstraints,
    TaskContainerSettings,
    UserIdentity,
)
from jobprep_release.backends.models.value import Value


class TaskState(StrEnum):
    ACTIVE = "active"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class JobAction(StrEnum):
    """What a task's exit condition does to its job (REST BatchJobActionKind): nothing, disable
    it (as Disable Job with requeue), or terminate it (terminate reason ``TaskFailed``)."""

    NONE = "none"
    DISABLE = "disable"
    TERMINATE = "terminate"


class DependencyAction(StrEnum):
    """What a task's exit condition does to the tasks depending on it (REST DependencyAction)."""

    SATISFY = "satisfy"
    BLOCK = "block"


# --- specs: what the app asks for ------------------------------------------------------------


class OutputFileUploadCondition(StrEnum):
    """When output files are uploaded (REST OutputFileUploadCondition)."""

    TASK_SUCCESS = "tasksuccess"
    TASK_FAILURE = "taskfailure"
    TASK_COMPLETION = "taskcompletion"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class OutputFile(Value):
    """Files uploaded to a blob container after the task's process exits (REST OutputFile):
    those matching `file_pattern` (relative to the working directory; ``*``, ``**``, ``?``,
    ``[...]``), to `container_url` (SAS with write permission) under `path` (the blob's name
    for a pattern without wildcards, else a virtual directory), with `upload_headers`
    (name -> value, sent with each upload)."""

    file_pattern: str
    container_url: str
    path: str | None = None
    upload_condition: OutputFileUploadCondition = OutputFileUploadCondition.TASK_COMPLETION
    upload_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExitOptions(Value):
    """How the service responds to one exit condition (REST ExitOptions); None: the default
    (job action none for exit code 0, terminate otherwise; dependencies satisfied by exit code
    0, blocked otherwise)."""

    job_action: JobAction | None = None
    dependency_action: DependencyAction | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExitCodeMapping(Value):
    code: int
    exit_options: ExitOptions


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExitCodeRangeMapping(Value):
    """Exit codes `start` to `end`, both included."""

    start: int
    end: int
    exit_options: ExitOptions


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ExitConditions(Value):
    """How the service responds when a task completes (REST ExitConditions): by its exit code
    (listed, then in a range), a failure to start (``preProcessingError``), a file upload error,
    else `default`."""

    exit_codes: Sequence[ExitCodeMapping] = ()
    exit_code_ranges: Sequence[ExitCodeRangeMapping] = ()
    pre_processing_error: ExitOptions | None = None
    file_upload_error: ExitOptions | None = None
    default: ExitOptions | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskIdRange(Value):
    """Tasks ``start`` to ``end`` (both included), by their ids as decimal numbers."""

    start: int
    end: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskDependencies(Value):
    """The tasks a task depends on (REST BatchTaskDependencies): it is not scheduled until each
    of them completed successfully (or its exit condition's dependencyAction satisfies it)."""

    task_ids: Sequence[str] = ()
    task_id_ranges: Sequence[TaskIdRange] = ()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MultiInstanceSettings(Value):
    """REST multiInstanceSettings: the task runs on `number_of_instances` nodes at once, a
    primary and subtasks; each runs `coordination_command_line` (when given) with
    `common_resource_files` in its task directory, then the primary runs the command line."""

    number_of_instances: int = 1
    coordination_command_line: str | None = None
    common_resource_files: Sequence[ResourceFile] = ()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskSpec(Value):
    id: str
    command_line: str
    constraints: TaskConstraints = field(default_factory=TaskConstraints)
    environment: Mapping[str, str] = field(default_factory=lambda: NO_ENVIRONMENT)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = DEFAULT_USER_IDENTITY
    required_slots: int = 1
    display_name: str | None = None
    exit_conditions: ExitConditions | None = None
    depends_on: TaskDependencies | None = None
    output_files: Sequence[OutputFile] = ()
    multi_instance: MultiInstanceSettings | None = None
    authentication_token_access: Sequence[str] = ()
    """REST authenticationTokenSettings.access (api-versions up to 2024-07-01.20.0; azure-batch
    15 has no such property): ``job`` gives the task a token for the operations on its job."""
    container_settings: TaskContainerSettings | None = None


# --- views: what the service reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Task(Value):
    """A task. A completed task's `previous_state` is `running` (or `active` when it never
    ran), its `previous_state_transition_time` between its start and end times."""

    id: str
    state: TaskState
    node_id: str | None = None
    execution_info: ExecutionInfo = field(default_factory=ExecutionInfo)
    creation_time: datetime | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    state_transition_time: datetime | None = None
    previous_state: TaskState | None = None
    previous_state_transition_time: datetime | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskCounts(Value):
    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0
