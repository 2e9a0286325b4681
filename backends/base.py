"""The backend interface and the backend-neutral models it speaks.

The app's flow is written once against `BatchBackend`; each backend (Docker, Azure) implements it
and translates its own objects into the models below. The models mirror the Batch REST API's
names and defaults (api-version 2025-06-01) so that both backends mean the same thing by them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType, TracebackType
from typing import Protocol, runtime_checkable

from jobprep_release.backends.errors import InvalidRequest

JOB_PREPARATION_TASK_ID = "jobpreparation"
JOB_RELEASE_TASK_ID = "jobrelease"
RELEASE_MAX_WALL_CLOCK = timedelta(minutes=15)
DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL = timedelta(minutes=15)
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


class NodeFillType(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


class ElevationLevel(StrEnum):
    NON_ADMIN = "nonadmin"
    ADMIN = "admin"


class AutoUserScope(StrEnum):
    TASK = "task"
    POOL = "pool"


class PoolState(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"


class AllocationState(StrEnum):
    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"


class NodeState(StrEnum):
    CREATING = "creating"
    STARTING = "starting"
    WAITING_FOR_START_TASK = "waitingforstarttask"
    START_TASK_FAILED = "starttaskfailed"
    IDLE = "idle"
    RUNNING = "running"
    REBOOTING = "rebooting"
    REIMAGING = "reimaging"
    UNUSABLE = "unusable"
    LEAVING_POOL = "leavingpool"
    OFFLINE = "offline"
    PREEMPTED = "preempted"
    UNKNOWN = "unknown"


class SchedulingState(StrEnum):
    """Whether the scheduler places tasks on a node (REST SchedulingState)."""

    ENABLED = "enabled"
    DISABLED = "disabled"


class NodeDeallocationOption(StrEnum):
    """What happens to a leaving node's running tasks (REST BatchNodeDeallocationOption):
    requeued, ended, left to complete, or left to complete and their data kept until its
    retention time passes."""

    REQUEUE = "requeue"
    TERMINATE = "terminate"
    TASK_COMPLETION = "taskcompletion"
    RETAINED_DATA = "retaineddata"


class DisableSchedulingOption(StrEnum):
    """What Disable Node Scheduling does to the node's running tasks (REST
    BatchNodeDisableSchedulingOption)."""

    REQUEUE = "requeue"
    TERMINATE = "terminate"
    TASK_COMPLETION = "taskcompletion"


class JobState(StrEnum):
    ACTIVE = "active"
    DISABLING = "disabling"
    DISABLED = "disabled"
    ENABLING = "enabling"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class TaskState(StrEnum):
    ACTIVE = "active"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class PrepReleaseTaskState(StrEnum):
    """State of a job preparation or release task on one node."""

    RUNNING = "running"
    COMPLETED = "completed"


class ExecutionResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class ErrorCategory(StrEnum):
    USER_ERROR = "usererror"
    SERVER_ERROR = "servererror"


class OnAllTasksComplete(StrEnum):
    NO_ACTION = "noaction"
    TERMINATE_JOB = "terminatejob"


class OnTaskFailure(StrEnum):
    """A job's ``onTaskFailure``: nothing, or the job action of the failed task's exit
    conditions (REST BatchTaskFailureMode)."""

    NO_ACTION = "noaction"
    PERFORM_EXIT_OPTIONS_JOB_ACTION = "performexitoptionsjobaction"


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


class DisableJobOption(StrEnum):
    """Disable Job's ``disableTasks``: what becomes of the job's running tasks (REST
    DisableBatchJobOption): requeued to run again once the job is enabled, terminated (completed
    with a failure, never run again), or left to complete."""

    REQUEUE = "requeue"
    TERMINATE = "terminate"
    WAIT = "wait"


# --- specs: what the app asks for ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserIdentity:
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


@dataclass(frozen=True, slots=True)
class UserAccount:
    """A user account the service creates on every node of a pool (REST UserAccount, with its
    linuxUserConfiguration: `uid` and `gid` chosen by the node when None, `ssh_private_key`
    for SSH between the pool's nodes)."""

    name: str
    password: str
    elevation_level: ElevationLevel = ElevationLevel.NON_ADMIN
    uid: int | None = None
    gid: int | None = None
    ssh_private_key: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceFile:
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


class OutputFileUploadCondition(StrEnum):
    """When output files are uploaded (REST OutputFileUploadCondition)."""

    TASK_SUCCESS = "tasksuccess"
    TASK_FAILURE = "taskfailure"
    TASK_COMPLETION = "taskcompletion"


@dataclass(frozen=True, slots=True)
class OutputFile:
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


@dataclass(frozen=True, slots=True)
class ExitOptions:
    """How the service responds to one exit condition (REST ExitOptions); None: the default
    (job action none for exit code 0, terminate otherwise; dependencies satisfied by exit code
    0, blocked otherwise)."""

    job_action: JobAction | None = None
    dependency_action: DependencyAction | None = None


@dataclass(frozen=True, slots=True)
class ExitCodeMapping:
    code: int
    exit_options: ExitOptions


@dataclass(frozen=True, slots=True)
class ExitCodeRangeMapping:
    """Exit codes `start` to `end`, both included."""

    start: int
    end: int
    exit_options: ExitOptions


@dataclass(frozen=True, slots=True)
class ExitConditions:
    """How the service responds when a task completes (REST ExitConditions): by its exit code
    (listed, then in a range), a failure to start (``preProcessingError``), a file upload error,
    else `default`."""

    exit_codes: Sequence[ExitCodeMapping] = ()
    exit_code_ranges: Sequence[ExitCodeRangeMapping] = ()
    pre_processing_error: ExitOptions | None = None
    file_upload_error: ExitOptions | None = None
    default: ExitOptions | None = None


@dataclass(frozen=True, slots=True)
class TaskIdRange:
    """Tasks ``start`` to ``end`` (both included), by their ids as decimal numbers."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TaskDependencies:
    """The tasks a task depends on (REST BatchTaskDependencies): it is not scheduled until each
    of them completed successfully (or its exit condition's dependencyAction satisfies it)."""

    task_ids: Sequence[str] = ()
    task_id_ranges: Sequence[TaskIdRange] = ()


@dataclass(frozen=True, slots=True)
class TaskConstraints:
    max_wall_clock_time: timedelta | None = None
    retention_time: timedelta | None = None
    max_task_retry_count: int | None = None


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A pool's image as Batch names it: a marketplace image (`publisher`, `offer`, `sku`,
    `version`) or an image id (`virtual_machine_image_id`; a Docker image on the local endpoint).
    """

    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str | None = None
    virtual_machine_image_id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundNatPool:
    """An inbound NAT pool of the pool's endpoint configuration (REST BatchInboundNatPool):
    each node's `backend_port` is reached from outside on a port of the frontend range."""

    name: str
    protocol: str
    backend_port: int
    frontend_port_range_start: int
    frontend_port_range_end: int


@dataclass(frozen=True, slots=True)
class InboundEndpoint:
    """How a node is reached from outside through an inbound NAT pool (REST InboundEndpoint)."""

    name: str
    protocol: str
    public_ip_address: str
    public_fqdn: str
    frontend_port: int
    backend_port: int


@dataclass(frozen=True, slots=True)
class ContainerConfiguration:
    """A pool's ``virtualMachineConfiguration.containerConfiguration``: `type`
    ``dockerCompatible`` (or ``criCompatible``), and the images each node pulls as it starts
    (`container_image_names`). Registries are not emulated (no registry is reachable here)."""

    type: str = "dockerCompatible"
    container_image_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OsDisk:
    """A pool's ``virtualMachineConfiguration.osDisk`` as far as a local node honours it: the
    REST reference's defaults (BatchOsDisk: caching ``none`` for standard storage; the write
    accelerator off), kept and shown back. Other settings (ephemeral placement, size, managed
    disk) would need an Azure VM disk: refused."""

    caching: str | None = None
    write_accelerator_enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class TaskContainerSettings:
    """A task's ``containerSettings``: the task runs in a container from `image_name`, with
    `container_run_options` (extra ``docker create`` options), in `working_directory`
    ``taskWorkingDirectory`` (the task's ``wd``, the service's default) or
    ``containerImageDefault`` (the image's own working directory)."""

    image_name: str
    container_run_options: str | None = None
    working_directory: str = "taskWorkingDirectory"


@dataclass(frozen=True, slots=True)
class StartTaskSpec:
    """A pool's start task (REST StartTask): run on each node as it joins the pool, and again
    when it reboots or is reimaged. `max_task_retry_count` 0 (the default) runs it once, -1
    retries without limit; with `wait_for_success` (the service's default) the node takes no
    task until it succeeds, and is `starttaskfailed` when it fails for good."""

    command_line: str
    environment: Mapping[str, str] = field(default_factory=dict)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = field(default_factory=UserIdentity)
    max_task_retry_count: int = 0
    wait_for_success: bool = True
    container_settings: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A pool to create. `image` is backend-specific: a Docker image, or an Azure image URN;
    `image_reference`, when given, is the image as the Batch API names it (the azure backend
    sends it instead of `image`; the local endpoint shows it back).

    `display_name`, `metadata` (name -> value, in order), `resize_timeout` and
    `enable_inter_node_communication` are Batch's pool properties of those names: kept and
    reported back (containers of one pool can reach each other).
    """

    id: str
    vm_size: str = "standard_d1_v2"
    target_dedicated_nodes: int = 2
    target_low_priority_nodes: int = 0
    task_slots_per_node: int = 1
    node_fill_type: NodeFillType = NodeFillType.PACK
    image: str | None = None
    node_agent_sku_id: str | None = None
    image_reference: ImageReference | None = None
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    resize_timeout: timedelta = DEFAULT_RESIZE_TIMEOUT
    enable_inter_node_communication: bool = False
    inbound_nat_pools: tuple[InboundNatPool, ...] = ()
    """``networkConfiguration.endpointConfiguration.inboundNATPools``."""
    start_task: StartTaskSpec | None = None
    user_accounts: Sequence[UserAccount] = ()
    enable_auto_scale: bool = False
    """Autoscale (REST enableAutoScale): the targets come from `auto_scale_formula`, evaluated
    every `auto_scale_evaluation_interval` (15 minutes when None)."""
    auto_scale_formula: str | None = None
    auto_scale_evaluation_interval: timedelta | None = None
    container_configuration: ContainerConfiguration | None = None
    job_default_order: str | None = None
    """``taskSchedulingPolicy.jobDefaultOrder``: ``none`` or ``creationtime`` (jobs of equal
    priority get slots oldest first here, which either allows); None when not given."""
    upgrade_policy_mode: str | None = None
    """``upgradePolicy.mode``: ``manual`` (the only mode a local node has: its image changes
    only when Update Pool changes it on an empty pool); None when not given."""
    node_placement_policy: str | None = None
    """``virtualMachineConfiguration.nodePlacementConfiguration.policy``: ``regional`` (the
    service's default; every local node is in one place); None when not given."""
    os_disk: OsDisk | None = None
    target_node_communication_mode: str | None = None
    """``targetNodeCommunicationMode`` (api-versions 2022-10-01.16.0 to 2024-07-01.20.0):
    ``default``, ``classic`` or ``simplified``; None when not given."""
    resource_tags: Mapping[str, str] = field(default_factory=dict)
    """``resourceTags`` (api-versions before 2025-06-01): kept and shown back; a local pool
    has no Azure resources to propagate them to."""


@dataclass(frozen=True, slots=True)
class PoolUpdate:
    """Update Pool (REST PATCH ``/pools/{poolId}``): each property given replaces the pool's;
    None leaves it as it is. A start task given applies on nodes that join the pool or boot
    afresh from then on (REST BatchPoolUpdateOptions.startTask); `metadata` replaces all of
    it (an empty mapping removes it). The others (display name, VM size, slots, fill type,
    image, inter-node communication, user accounts, upgrade policy) "can be updated only when
    the pool is empty"; `target_node_communication_mode` (PATCH before api-version 2025-06-01)
    at any time."""

    display_name: str | None = None
    vm_size: str | None = None
    enable_inter_node_communication: bool | None = None
    start_task: StartTaskSpec | None = None
    metadata: Mapping[str, str] | None = None
    task_slots_per_node: int | None = None
    node_fill_type: NodeFillType | None = None
    job_default_order: str | None = None
    image_reference: ImageReference | None = None
    node_agent_sku_id: str | None = None
    user_accounts: Sequence[UserAccount] | None = None
    upgrade_policy_mode: str | None = None
    target_node_communication_mode: str | None = None
    image: str | None = None
    """The backend's image for `image_reference` (a Docker image on the local endpoint)."""

    def applied_to(self, spec: PoolSpec) -> PoolSpec:
        """`spec` with this update's properties in place of its own."""
        changes = {
            name: getattr(self, name)
            for name in self.__slots__
            if name != "image" and getattr(self, name) is not None
        }
        if self.image_reference is not None:
            changes["image"] = self.image
        return replace(spec, **changes)


@dataclass(frozen=True, slots=True)
class JobPreparationTaskSpec:
    command_line: str
    id: str = JOB_PREPARATION_TASK_ID
    wait_for_success: bool = True
    rerun_on_node_reboot_after_success: bool = True
    constraints: TaskConstraints = field(default_factory=TaskConstraints)
    environment: Mapping[str, str] = field(default_factory=dict)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = field(default_factory=UserIdentity)
    container_settings: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True)
class JobReleaseTaskSpec:
    command_line: str
    id: str = JOB_RELEASE_TASK_ID
    max_wall_clock_time: timedelta = RELEASE_MAX_WALL_CLOCK
    retention_time: timedelta | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = field(default_factory=UserIdentity)
    container_settings: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str
    pool_id: str
    preparation: JobPreparationTaskSpec | None = None
    release: JobReleaseTaskSpec | None = None
    common_environment: Mapping[str, str] = field(default_factory=dict)
    on_all_tasks_complete: OnAllTasksComplete = OnAllTasksComplete.NO_ACTION
    max_task_retry_count: int = 0
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    """-1000 (lowest) to 1000: the order in which the jobs of a pool get their tasks run."""
    max_parallel_tasks: int = -1
    """At most this many of the job's tasks run at once; -1: no limit."""
    allow_task_preemption: bool = False
    """Whether a job of higher priority may requeue this job's running tasks to run its own."""
    max_wall_clock_time: timedelta | None = None
    """The job's constraint: measured from its creation; past it the job is terminated with
    ``MaxWallClockTimeExpiry``. None: no limit."""
    on_task_failure: OnTaskFailure = OnTaskFailure.NO_ACTION
    uses_task_dependencies: bool = False

    auto_pool: AutoPoolSpec | None = None
    """A pool the service creates for the job (REST poolInfo.autoPoolSpecification); the job's
    `pool_id` is then the one the service gave it ("" when asked)."""


@dataclass(frozen=True, slots=True)
class JobConstraints:
    """A job's execution constraints as Update Job and Replace Job give them (REST
    BatchJobConstraints; omitted values are the service's defaults)."""

    max_wall_clock_time: timedelta | None = None
    max_task_retry_count: int = 0


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """Update Job (PATCH): each property given replaces the job's, None leaves it unchanged.
    Replace Job (PUT) takes the same shape, None there meaning the service's default (REST:
    "fully replaces all the updatable properties of the Job")."""

    priority: int | None = None
    max_parallel_tasks: int | None = None
    allow_task_preemption: bool | None = None
    constraints: JobConstraints | None = None
    pool_id: str | None = None
    """Only while the job is disabled (409 otherwise)."""
    on_all_tasks_complete: OnAllTasksComplete | None = None
    """terminatejob cannot go back to noaction (400 ``InvalidPropertyValue``)."""
    metadata: Mapping[str, str] | None = None
    auto_pool: AutoPoolSpec | None = None
    """The job's auto pool as it is, but for its ``keepAlive`` (REST Update Job: "only the
    keepAlive property of the autoPoolSpecification can be updated")."""


class PoolLifetimeOption(StrEnum):
    """How long an auto pool lives (REST BatchPoolLifetimeOption)."""

    JOB = "job"
    JOB_SCHEDULE = "jobschedule"


@dataclass(frozen=True, slots=True)
class AutoPoolSpec:
    """An auto pool (REST BatchAutoPoolSpecification): the pool's settings (`pool`, its id
    unused), a prefix for the id the service gives it, its lifetime, and whether it stays
    after its job (`keep_alive`)."""

    pool: PoolSpec
    id_prefix: str | None = None
    lifetime: PoolLifetimeOption = PoolLifetimeOption.JOB
    keep_alive: bool = False


@dataclass(frozen=True, slots=True)
class MultiInstanceSettings:
    """REST multiInstanceSettings: the task runs on `number_of_instances` nodes at once, a
    primary and subtasks; each runs `coordination_command_line` (when given) with
    `common_resource_files` in its task directory, then the primary runs the command line."""

    number_of_instances: int = 1
    coordination_command_line: str | None = None
    common_resource_files: Sequence[ResourceFile] = ()


@dataclass(frozen=True, slots=True)
class TaskSpec:
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


@dataclass(frozen=True, slots=True)
class NodeLogsRequest:
    """Upload Batch Service Logs' options: the container (`container_url`, a SAS URL with
    write permission) and the time range (`end_time` None: until now)."""

    container_url: str
    start_time: datetime
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class NodeLogsUpload:
    """What Upload Batch Service Logs answers: the virtual directory the node's log files go
    to in the container (pool id, node id and a unique id), and how many there are."""

    virtual_directory_name: str
    number_of_files_uploaded: int


@dataclass(frozen=True, slots=True)
class Pool:
    id: str
    vm_size: str
    state: PoolState
    allocation_state: AllocationState
    target_dedicated_nodes: int
    current_dedicated_nodes: int
    task_slots_per_node: int
    node_fill_type: NodeFillType
    creation_time: datetime | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    state_transition_time: datetime | None = None
    previous_state: PoolState | None = None
    previous_state_transition_time: datetime | None = None
    allocation_state_transition_time: datetime | None = None
    """The times, ETag and previous state are those the service recorded when the change
    happened; None where a backend does not report them."""
    resize_errors: tuple[ResizeError, ...] = ()
    """Errors of the last resize (REST resizeErrors), once the pool is steady again."""
    target_low_priority_nodes: int = 0
    current_low_priority_nodes: int = 0
    auto_scale_run: AutoScaleRun | None = None
    """The last autoscale evaluation (REST autoScaleRun); None before the first."""


@dataclass(frozen=True, slots=True)
class AutoScaleRun:
    """One evaluation of an autoscale formula (REST AutoScaleRun): when, the final value of
    each variable (``$TargetDedicatedNodes=3;...``), or why it failed (`error`)."""

    timestamp: datetime
    results: str | None = None
    error: AutoScaleRunError | None = None


@dataclass(frozen=True, slots=True)
class AutoScaleRunError:
    """Why an evaluation failed (REST AutoScaleRunError): code, message, detail values."""

    code: str
    message: str
    values: tuple[tuple[str, str], ...] = ()


class StartTaskState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class StartTaskInfo:
    """How the pool's start task ran on a node (REST StartTaskInformation): the latest run
    since the node last booted."""

    state: StartTaskState
    execution_info: ExecutionInfo


@dataclass(frozen=True, slots=True)
class ComputeNode:
    id: str
    state: NodeState
    running_tasks_count: int = 0
    """Tasks running on the node now (REST BatchNode runningTasksCount: normal tasks, not
    preparation or release tasks)."""
    state_transition_time: datetime | None = None
    allocation_time: datetime | None = None
    last_boot_time: datetime | None = None
    """None while the node has not booted (or where a backend does not report it)."""
    ip_address: str | None = None
    """The node's IP address (on docker, the container's); None while not known."""
    running_task_slots_count: int = 0
    """Task slots those tasks hold (REST runningTaskSlotsCount)."""
    total_tasks_run: int = 0
    """Tasks completed on the node since it joined the pool, over every job, deleted jobs too
    (REST totalTasksRun: normal tasks, not preparation or release tasks)."""
    total_tasks_succeeded: int = 0
    """Of those, the ones that succeeded (REST totalTasksSucceeded)."""
    start_task_info: StartTaskInfo | None = None
    """The start task's latest run there (None: the pool has none, or it has not started)."""
    start_task: StartTaskSpec | None = None
    """The start task that run is of (REST BatchNode.startTask): the pool's when it started,
    so a start task replaced on the pool shows here from the node's next boot."""
    scheduling_state: SchedulingState = SchedulingState.ENABLED
    is_dedicated: bool = True
    """False for a spot/low-priority node (REST isDedicated)."""
    inbound_endpoints: tuple[InboundEndpoint, ...] = ()
    """One per inbound NAT pool of the pool (REST endpointConfiguration.inboundEndpoints)."""


@dataclass(frozen=True, slots=True)
class ResizeError:
    """One error of a pool's last resize (REST ResizeError): ``AllocationTimedout``,
    ``ResizeStopped``, ..."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    pool_id: str
    state: JobState
    terminate_reason: str | None = None
    creation_time: datetime | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    state_transition_time: datetime | None = None
    previous_state: JobState | None = None
    previous_state_transition_time: datetime | None = None
    end_time: datetime | None = None
    """When the job completed (its ``executionInfo.endTime``); None until then."""


@dataclass(frozen=True, slots=True)
class FailureInfo:
    category: ErrorCategory
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class TaskContainerExecutionInfo:
    """The container a task ran in (REST TaskContainerExecutionInfo): its id, its state as
    ``docker inspect`` gives it (``running``, ``exited``) and the engine's error, if any."""

    container_id: str | None = None
    state: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
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


@dataclass(frozen=True, slots=True)
class Task:
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


@dataclass(frozen=True, slots=True)
class TaskCounts:
    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class PrepReleaseExecution:
    state: PrepReleaseTaskState
    execution_info: ExecutionInfo
    task_root_directory: str | None = None
    """The task's directory relative to the node's root (``workitems/<job>/job-1/<id>``)."""


@dataclass(frozen=True, slots=True)
class PrepReleaseStatus:
    """One entry of List Job Preparation and Release Task Status: one node."""

    pool_id: str
    node_id: str
    preparation: PrepReleaseExecution | None
    release: PrepReleaseExecution | None


# --- the interface ---------------------------------------------------------------------------


@runtime_checkable
class BatchBackend(Protocol):
    """What the sample needs of a Batch service. Every method may raise `BackendError`s.

    A backend is an async context manager: entering it connects (and, for the Docker backend,
    starts its scheduler); leaving it closes connections. Nothing is deleted on exit.
    """

    name: str
    poll_interval: float
    """Seconds between polls of a wait; a local backend answers cheaply and polls often."""

    async def __aenter__(self) -> BatchBackend: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def create_pool(self, spec: PoolSpec) -> None:
        """Create a pool and start allocating its nodes; return without waiting for them.

        Raises `AlreadyExists` with code ``PoolExists`` when a pool with that id exists.
        """
        ...

    async def get_pool(self, pool_id: str) -> Pool:
        """The pool's current properties; `NotFound` (``PoolNotFound``) when absent."""
        ...

    async def get_pool_spec(self, pool_id: str) -> PoolSpec:
        """The pool's settings (its start task, metadata, ...); `NotFound` when absent."""
        ...

    async def update_pool(self, pool_id: str, update: PoolUpdate) -> None:
        """Update Pool: the properties `update` gives replace the pool's (a start task applies
        on nodes that join or boot afresh afterwards)."""
        ...

    async def replace_pool_properties(
        self, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
    ) -> None:
        """Replace Pool Properties: the start task (None removes it) and all the metadata."""
        ...

    async def resize_pool(self, pool_id: str, target_dedicated_nodes: int) -> None:
        """Start resizing the pool to that many dedicated nodes."""
        ...

    async def enable_auto_scale(
        self, pool_id: str, formula: str | None, interval: timedelta | None = None
    ) -> None:
        """Enable Autoscale on the pool, or change its formula or evaluation interval (REST
        Enable Pool Auto Scale); the service evaluates it at once when newly enabled."""
        ...

    async def evaluate_auto_scale(self, pool_id: str, formula: str) -> AutoScaleRun:
        """The formula's evaluation on the pool now, not applied (REST Evaluate Pool Auto
        Scale); `Conflict` unless autoscale is enabled on the pool."""
        ...

    async def disable_auto_scale(self, pool_id: str) -> None:
        """Disable Autoscale: the pool keeps its current targets (REST Disable Pool Auto
        Scale)."""
        ...

    async def delete_pool(self, pool_id: str, *, wait: bool = True) -> None:
        """Delete the pool and its nodes; with `wait`, until it is gone (its deletion's final
        status checked), else once the service has accepted the deletion."""
        ...

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        """The pool's compute nodes, in the service's order."""
        ...

    async def find_job(self, job_id: str) -> Job | None:
        """The job with that id, found by a filtered list as the sample does, or None."""
        ...

    async def create_job(self, spec: JobSpec) -> None:
        """Create a job; `AlreadyExists` (``JobExists``) when the id is taken."""
        ...

    async def get_job(self, job_id: str) -> Job:
        """The job's current state; `NotFound` (``JobNotFound``) when absent."""
        ...

    async def get_job_spec(self, job_id: str) -> JobSpec:
        """The job's settings: its preparation and release tasks and job-wide options."""
        ...

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        """Add tasks to an active job, in as few requests as the service allows.

        Raises `InvalidRequest` for ids the service rejects (``TaskIdSameAsJobPreparationTask``,
        duplicates) and `AlreadyExists` (``TaskExists``) for ids already in the job.
        """
        ...

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        """Counts of the job's tasks by state: the cheap way to poll for completion."""
        ...

    async def list_tasks(self, job_id: str) -> list[Task]:
        """Every task of the job, in the order they were added."""
        ...

    async def get_task(self, job_id: str, task_id: str) -> Task:
        """One task; `NotFound` (``TaskNotFound``) when absent."""
        ...

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        """End a task: a running one is killed, an active one completes without running."""
        ...

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        """Start rebooting a node (running tasks are requeued; its files stay)."""
        ...

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        """Start reimaging a node (running tasks are requeued; its disk starts afresh)."""
        ...

    async def upload_node_logs(
        self, pool_id: str, node_id: str, request: NodeLogsRequest
    ) -> NodeLogsUpload:
        """Upload Batch Service Logs: the node's service log files with an entry in the
        request's time range to its container. `NotFound` for an unknown pool or node."""
        ...

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        """A file's bytes, `path` relative to the node's task root (``shared/x.txt``).

        Raises `NotFound` (``FileNotFound``) when there is no such file, and `InvalidRequest`
        for a path that leaves the node's root.
        """
        ...

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        """Request termination: the job goes `terminating`, its running tasks are ended and
        release tasks run; it reaches `completed` afterwards (poll `get_job`)."""
        ...

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        """Per node, how the job's preparation and release tasks ran.

        Raises `Conflict` (``JobPreparationTaskNotSpecified``) when the job has no prep task.
        """
        ...

    async def delete_job(self, job_id: str, *, wait: bool = True) -> None:
        """Delete the job (running release first when it is still active); with `wait`, until
        it is gone (its deletion's final status checked), else once the service accepted it."""
        ...

    async def update_job(self, job_id: str, update: JobUpdate) -> None:
        """Update Job: the properties `update` gives replace the job's, the rest stay.

        Raises `Conflict` when the job has ended, or `update` changes its pool while it is not
        disabled; `InvalidRequest` for onAllTasksComplete from terminatejob to noaction.
        """
        ...

    async def replace_job(self, job_id: str, update: JobUpdate) -> None:
        """Replace Job: every updatable property replaced, those `update` leaves None by the
        service's defaults; errors as `update_job`."""
        ...

    async def disable_job(self, job_id: str, option: DisableJobOption) -> None:
        """Disable Job: no new task starts; running tasks requeued, terminated or left to end
        by `option`; the job reads ``disabling``, then ``disabled``. `Conflict` when the job is
        neither active nor already disabling or disabled."""
        ...

    async def enable_job(self, job_id: str) -> None:
        """Enable Job: a disabled job becomes active and its tasks run again."""
        ...

    async def update_task(self, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
        """Update Task: the task's constraints (wall clock, retention, retries) replaced."""
        ...

    async def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Reactivate Task: a task that failed is active again (retry count 0) and runs up to
        its retry count again. `Conflict` for a task that did not fail, or a job that ended."""
        ...

    async def delete_task(self, job_id: str, task_id: str) -> None:
        """Delete Task: the task is ended if it runs, then gone, with its files on its node."""
        ...

    async def delete_node_file(
        self, pool_id: str, node_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Node File, `path` relative to the node's root: a file, an empty directory,
        or with `recursive` a directory and everything in it. `NotFound` (``FileNotFound``)."""
        ...

    async def delete_task_file(
        self, job_id: str, task_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Task File, `path` relative to the task's directory on its node (as
        `delete_node_file`)."""
        ...
