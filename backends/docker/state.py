"""The Docker backend's durable state: pools, nodes, jobs, tasks and how each ran.

The state is one JSON document, rewritten atomically (write, fsync, rename) so a crash between
any two steps leaves either the old or the new document, never half of one. It lives in the
user's state directory, one file per Docker engine, and a lock file keeps two runs from
driving the same state at once. Task outcomes are also kept on each node's volume by the
agent, so what finished while no app was running is recovered, not lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jobprep_release.backends.base import (
    ExecutionResult,
    FailureInfo,
    JobSpec,
    JobState,
    NodeState,
    PoolSpec,
    PoolState,
    TaskSpec,
    TaskState,
)
from jobprep_release.backends.docker.codec import decode, encode
from jobprep_release.backends.errors import Conflict

STATE_VERSION = 1


@dataclass(slots=True)
class Execution:
    """One run of a process on a node: a task, a preparation or a release task."""

    key: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    result: ExecutionResult | None = None
    failure: FailureInfo | None = None
    retry_count: int = 0
    requeue_count: int = 0
    completed: bool = False


@dataclass(slots=True)
class NodeRecord:
    id: str
    index: int
    container: str
    volume: str
    state: NodeState = NodeState.CREATING
    boot: int = 0


@dataclass(slots=True)
class PoolRecord:
    spec: PoolSpec
    serial: int
    created: float
    state: PoolState = PoolState.ACTIVE
    nodes: list[NodeRecord] = field(default_factory=list)


@dataclass(slots=True)
class JobNodeRecord:
    """What one job did on one node: its preparation and release tasks."""

    prep: Execution | None = None
    prep_boot: int = 0
    prep_blocked: bool = False
    release: Execution | None = None
    ran_tasks: bool = False
    has_files: bool = False


@dataclass(slots=True)
class TaskRecord:
    spec: TaskSpec
    seq: int
    state: TaskState = TaskState.ACTIVE
    node_id: str | None = None
    run: Execution = field(default_factory=Execution)
    files_removed: bool = False


@dataclass(slots=True)
class JobRecord:
    spec: JobSpec
    created: float
    state: JobState = JobState.ACTIVE
    terminate_reason: str | None = None
    next_seq: int = 0
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    nodes: dict[str, JobNodeRecord] = field(default_factory=dict)


@dataclass(slots=True)
class ServiceState:
    version: int = STATE_VERSION
    pools: dict[str, PoolRecord] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)


def default_state_dir() -> Path:
    """``$JOBPREP_RELEASE_STATE_DIR``, else ``$XDG_STATE_HOME/jobprep_release``."""
    explicit = os.environ.get("JOBPREP_RELEASE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "jobprep_release"


class StateStore:
    """One engine's state file, held under an exclusive lock while a backend is open."""

    def __init__(self, directory: Path, engine_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", engine_id)[:80]
        self.path = directory / f"docker-{safe}.json"
        self._lock_path = directory / f"docker-{safe}.lock"
        self._lock: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise Conflict(
                f"another jobprep_release run is using the docker backend's state ({self.path})",
                code="StateLocked",
                hint="wait for it to finish, or stop it",
            ) from exc
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def load(self) -> ServiceState:
        try:
            raw: Any = json.loads(self.path.read_text())
        except FileNotFoundError:
            return ServiceState()
        except (OSError, ValueError) as exc:
            broken = self.path.with_suffix(".broken")
            self.path.replace(broken)
            raise Conflict(
                f"the docker backend's state file could not be read; moved it to {broken}",
                code="StateUnreadable",
            ) from exc
        if raw.get("version") != STATE_VERSION:
            return ServiceState()
        return decode(ServiceState, raw)

    @staticmethod
    def serialize(state: ServiceState) -> Any:
        """A snapshot of the state as plain JSON values, sharing nothing that changes later:
        it may be written by another thread while the state moves on."""
        return encode(state)

    def write(self, document: Any) -> None:
        """Replace the state file with `document` (from `serialize`), atomically."""
        data = json.dumps(document, separators=(",", ":")).encode()
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)
