"""Helpers for tests that drive the docker backend in-process."""

from __future__ import annotations

import anyio

from jobprep_release.backends.base import BatchBackend, Task, TaskState


async def wait_for_tasks(backend: BatchBackend, job_id: str, limit: float = 60) -> list[Task]:
    """Every task of the job once none is active, preparing or running."""
    with anyio.fail_after(limit):
        while True:
            counts = await backend.get_task_counts(job_id)
            if counts.active == 0 and counts.running == 0:
                return await backend.list_tasks(job_id)
            await anyio.sleep(0.05)


def only(tasks: list[Task], task_id: str) -> Task:
    (task,) = [t for t in tasks if t.id == task_id]
    assert task.state is TaskState.COMPLETED
    return task
