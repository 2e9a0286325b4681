"""Compute nodes: their states and scheduling options, the node as the service reports it
(`ComputeNode`, with its start task's run and inbound endpoints), and Upload Batch Service Logs'
request and answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from jobprep_release.backends.models.common import ExecutionInfo
from jobprep_release.backends.models.pools import StartTaskSpec
from jobprep_release.backends.models.value import Value


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


# --- views: what the service reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class InboundEndpoint(Value):
    """How a node is reached from outside through an inbound NAT pool (REST InboundEndpoint)."""

    name: str
    protocol: str
    public_ip_address: str
    public_fqdn: str
    frontend_port: int
    backend_port: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NodeLogsRequest(Value):
    """Upload Batch Service Logs' options: the container (`container_url`, a SAS URL with
    write permission) and the time range (`end_time` None: until now)."""

    container_url: str
    start_time: datetime
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NodeLogsUpload(Value):
    """What Upload Batch Service Logs answers: the virtual directory the node's log files go
    to in the container (pool id, node id and a unique id), and how many there are."""

    virtual_directory_name: str
    number_of_files_uploaded: int


class StartTaskState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StartTaskInfo(Value):
    """How the pool's start task ran on a node (REST StartTaskInformation): the latest run
    since the node last booted."""

    state: StartTaskState
    execution_info: ExecutionInfo


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ComputeNode(Value):
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
