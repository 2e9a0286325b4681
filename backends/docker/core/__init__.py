"""The Batch core: pools, nodes, jobs, tasks, the scheduler, outcomes and persistence, with no
Docker in it, driven by calls and by a node executor's events.

`BatchService` (`service`) is the facade over the parts (`pools`, `jobs`, `scheduler`,
`processes`, `outcomes`, sharing a `kernel.Core`); `records` and `store` are its state and where
it is kept, `rules` and `environment` Batch's rules and node layout, `views` what reads return.
`executor` defines the seam (`NodeExecutor`, `ExecutorListener`); `fake` ships an in-memory
executor with a controllable `clock` for fast, deterministic tests.

The names below load lazily (module `__getattr__`, PEP 562), so that importing one part (as the
docker backend does) does not import the others, the fake executor among them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobprep_release.backends.exports import lazy_exports

if TYPE_CHECKING:
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

_CORE = "jobprep_release.backends.docker.core"
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BatchService": f"{_CORE}.service",
        "Clock": f"{_CORE}.clock",
        "CoreSettings": f"{_CORE}.kernel",
        "ExecutorListener": f"{_CORE}.executor",
        "FakeClock": f"{_CORE}.clock",
        "FakeExecutor": f"{_CORE}.fake",
        "FakeOutcome": f"{_CORE}.fake",
        "FakeStart": f"{_CORE}.fake",
        "FileInfo": f"{_CORE}.executor",
        "MemoryStore": f"{_CORE}.store",
        "NodeExecutor": f"{_CORE}.executor",
        "ProcessExit": f"{_CORE}.executor",
        "ProcessSpec": f"{_CORE}.executor",
        "StateStore": f"{_CORE}.store",
        "Store": f"{_CORE}.store",
        "SystemClock": f"{_CORE}.clock",
    },
)
