"""What a run is asked to do, and what its exit status means: light to import, so that
`--help` needs none of the app's machinery."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from jobprep_release.backends.base import NodeFillType
from jobprep_release.backends.models.value import Value

EXIT_TASKS_FAILED = 10
EXIT_INTERRUPTED = 130
EXIT_STATUSES = {
    0: "the sample ran and every task, preparation and release task exited 0",
    1: "an unexpected error",
    2: "bad flags, settings or ids",
    3: "the Docker engine or the Batch service cannot be reached (or the process serving the "
    "docker backend's state, which the run attached to, ended)",
    4: "credentials missing or rejected",
    5: "a pool, job, task or file is missing, exists already, or is in the wrong state",
    6: "the backend cannot express what was asked",
    7: "the service failed (after bounded retries)",
    8: "a wait ran past its timeout",
    9: "the docker backend's stored state cannot be read (the message names the file)",
    EXIT_TASKS_FAILED: "the sample ran, but a task, preparation or release task failed (or a "
    "task was ended, or never ran, because its job was terminated first)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


class Answer(Enum):
    """How the delete prompts are answered: asked, or fixed by `--yes` / `--keep`."""

    ASK = "ask"
    YES = "yes"
    NO = "no"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SampleOptions(Value):
    """The sample's knobs; the defaults are the C# sample's constants."""

    pool_id: str = "JobPrepReleaseSamplePool"
    job_id: str = "JobPrepReleaseSampleJob"
    node_count: int = 2
    task_count: int = 8
    vm_size: str = "standard_d1_v2"
    image: str | None = None
    node_agent_sku_id: str | None = None
    task_slots_per_node: int = 1
    node_fill_type: NodeFillType = NodeFillType.PACK
    wait_for_success: bool = True
    task_retries: int = 0
    task_wall_clock: timedelta | None = None
    task_command: str | None = None
    """Each task's command line; None: the sample's, which appends the task's id to the node's
    shared file."""
    task_timeout: timedelta = timedelta(minutes=30)
    job_timeout: timedelta = timedelta(minutes=2)
    report: bool = False
    """Collect every task's details for a report (`--json`), at a request's cost on Azure."""
    stage_container: str | None = None
    """(a) Blob container whose blobs the job preparation task stages on each node."""
    logs_container: str | None = None
    """(b) Blob container each node's release task uploads the node's job log to."""
    storage_connection_string: str | None = field(default=None, repr=False)
    """The storage account of both containers (its key signs their SAS URLs)."""
    azurite: bool = False
    """Start Azurite (the storage emulator) for the run and use it as the storage account."""

    @property
    def uses_storage(self) -> bool:
        return bool(self.stage_container or self.logs_container)
