"""A child process for `test_interrupts`: a job whose release task sleeps, deleted under the
app's own interrupt handling, so a signal arrives while Delete Job waits for the release task.

``python -m tests.docker.deleting_child POOL JOB`` (the state directory from
``JOBPREP_RELEASE_STATE_DIR``) prints ``deleting`` on stdout once the deletion was asked for,
``stopped`` on stderr when the wait was cancelled, and exits 130 after the backend closed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from jobprep_release.backends.base import (
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    PoolSpec,
    TaskSpec,
)
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.interrupts import Interrupts
from jobprep_release.options import EXIT_INTERRUPTED
from tests.docker.helpers import wait_for_tasks

RELEASE_COMMAND = "/bin/sleep 600"


async def main(pool_id: str, job_id: str) -> int:
    state_dir = Path(os.environ["JOBPREP_RELEASE_STATE_DIR"])
    interrupts = Interrupts()
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await backend.create_pool(
            PoolSpec(id=pool_id, vm_size="standard_d1_v2", target_dedicated_nodes=1)
        )
        preparation = JobPreparationTaskSpec(command_line="/bin/true")
        release = JobReleaseTaskSpec(command_line=RELEASE_COMMAND)
        spec = JobSpec(id=job_id, pool_id=pool_id, preparation=preparation, release=release)
        await backend.create_job(spec)
        await backend.add_tasks(job_id, [TaskSpec(id="task001", command_line="/bin/true")])
        await wait_for_tasks(backend, job_id, limit=120)
        async with anyio.create_task_group() as group:
            group.start_soon(interrupts.watch)
            print("deleting", flush=True)
            with interrupts.scope:
                await backend.delete_job(job_id)
            group.cancel_scope.cancel()
        print("stopped" if interrupts.signalled else "deleted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED if interrupts.signalled else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1], sys.argv[2]))
