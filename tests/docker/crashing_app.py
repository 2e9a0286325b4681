"""A child process for `test_exactly_once`: the app itself, killed (SIGKILL, by itself) at one
chosen instant, for instants a test outside the process cannot hit.

``python -m tests.docker.crashing_app POINT ARGS...`` runs ``python -m jobprep_release ARGS``
with the job release task replaced by `RELEASE_COMMAND` (it appends ``release`` to a file the
release task does not remove, so a second run of it shows) and dies at `POINT`:

- ``task-journaled``: right after the journal append recording a task's launch, before the
  node is told;
- ``release-journaled``: the same for a job release task's launch;
- ``release-running``: as soon as the node says the release task started.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from jobprep_release import flow
from jobprep_release.backends.base import TaskContainerExecutionInfo
from jobprep_release.backends.docker.core.kernel import Kind
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.core.store import StateStore
from jobprep_release.cli import main

RELEASES_FILE = "/mnt/batch/tasks/shared/releases.txt"
RELEASE_COMMAND = (
    "/bin/bash -c 'echo release >> \"$AZ_BATCH_NODE_SHARED_DIR/releases.txt\"; sleep 3'"
)
POINTS = ("task-journaled", "release-journaled", "release-running")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _launches_release(entry: Any) -> bool:
    return any(
        record.get("release") and record["release"].get("key") for _, _, record in entry["nodes"]
    )


def install(point: str) -> None:
    """Make the app die at `point`."""
    if point in ("task-journaled", "release-journaled"):
        append = StateStore.append

        async def append_then_die(self: StateStore, entry: Any) -> None:
            await append(self, entry)
            if entry["tasks"] if point == "task-journaled" else _launches_release(entry):
                _die()

        StateStore.append = append_then_die  # type: ignore[method-assign]
    elif point == "release-running":
        started = BatchService.on_process_started

        def started_then_die(
            self: BatchService,
            node_id: str,
            key: str,
            start: float,
            container: TaskContainerExecutionInfo | None = None,
        ) -> None:
            flight = self._core.in_flight.get(key)
            started(self, node_id, key, start, container)
            if flight is not None and flight.kind is Kind.RELEASE:
                _die()

        BatchService.on_process_started = started_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown point {point!r}: one of {', '.join(POINTS)}")


if __name__ == "__main__":
    install(sys.argv[1])
    flow.RELEASE_COMMAND = RELEASE_COMMAND
    sys.exit(main(sys.argv[2:]))
