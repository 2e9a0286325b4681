"""The Batch core: pools, nodes, jobs, tasks, the scheduler, outcomes and persistence, with no
Docker in it, driven by calls and by a node executor's events.

`BatchService` (`service`) is the facade over the parts (`pools`, `jobs`, `scheduler`,
`processes`, `outcomes`, sharing a `kernel.Core`); `records` and `store` are its state and where
it is kept, `rules` and `environment` Batch's rules and node layout, `views` what reads return.
`executor` defines the seam (`NodeExecutor`, `ExecutorListener`); `fake` ships an in-memory
executor with a controllable `clock` for fast, deterministic tests.
"""

from __future__ import annotations

from jobprep_release.backends.docker.core.clock import Clock, FakeClock, SystemClock
from jobprep_release.backends.docker.core.executor import (
    ExecutorListener,
    FileInfo,
    NodeExecutor,
    ProcessExit,
    ProcessSpec,
)
from jobprep_release.backends.docker.core.fake import FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.docker.core.kernel import CoreSettings
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.core.store import MemoryStore, StateStore, Store

__all__ = [
    "BatchService",
    "Clock",
    "CoreSettings",
    "ExecutorListener",
    "FakeClock",
    "FakeExecutor",
    "FakeOutcome",
    "FakeStart",
    "FileInfo",
    "MemoryStore",
    "NodeExecutor",
    "ProcessExit",
    "ProcessSpec",
    "StateStore",
    "Store",
    "SystemClock",
]
