"""Indexes over the tasks that keep a scheduling pass from scanning every task of every job.

A pass used to walk all of a job's tasks (completed ones too) and count the slots in use over
every task of every job, so a job of N tasks cost O(N) per task start and end: O(N^2) over the
job. Two indexes make it proportional to what can change:

- `TaskIndex.queue`: a job's tasks in the order they were added, from a cursor before which
  none is ``active`` (the scheduler's candidates start there);
- `TaskIndex.busy`: the tasks holding slots (``preparing`` or ``running`` on a node).

Both are rebuilt from the records whenever they may be stale: the state object was replaced
(loaded), a job gained or lost tasks, or any record moved into ``active``
(`records.activations`: a retry, a requeue, a reactivation), which may put a task behind a
cursor back in the queue. Tasks enter the busy index where the core moves them there
(`placed`); they leave it when a look finds them no longer busy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from jobprep_release.backends.base import ExecutionResult, TaskState
from jobprep_release.backends.docker.core import records
from jobprep_release.backends.docker.core.records import (
    JobRecord,
    ServiceState,
    TaskRecord,
    TaskTally,
)

BUSY = (TaskState.PREPARING, TaskState.RUNNING)


@dataclass(slots=True)
class _Queue:
    job: JobRecord
    size: int
    next_seq: int
    tasks: list[TaskRecord]
    cursor: int = 0


@dataclass(slots=True)
class TaskIndex:
    """The core's task indexes (not saved: rebuilt from the records when needed)."""

    _queues: dict[int, _Queue] = field(default_factory=dict)
    _busy: dict[int, TaskRecord] = field(default_factory=dict)
    _seen: tuple[int, int, int] = (0, -1, -1)
    """(id of the state, activations, total tasks) the indexes were built for."""

    def _check(self, state: ServiceState) -> None:
        total = sum(len(job.tasks) + job.next_seq for job in state.jobs.values())
        seen = (id(state), records.activations.count, total)
        if seen != self._seen:
            self._seen = seen
            self._queues.clear()
            self._busy = {
                id(task): task
                for job in state.jobs.values()
                for task in job.tasks.values()
                if task.node_id and task.state in BUSY
            }

    def queue(self, state: ServiceState, job: JobRecord) -> Iterator[TaskRecord]:
        """`job`'s tasks in add order from the first that may be ``active`` (read as the
        caller goes, without copying them: the caller must not keep it across changes)."""
        self._check(state)
        entry = self._queues.get(id(job))
        if (
            entry is None
            or entry.job is not job
            or entry.size != len(job.tasks)
            or entry.next_seq != job.next_seq
        ):
            entry = _Queue(job, len(job.tasks), job.next_seq, list(job.tasks.values()))
            self._queues[id(job)] = entry
        tasks = entry.tasks
        while entry.cursor < len(tasks) and tasks[entry.cursor].state is not TaskState.ACTIVE:
            entry.cursor += 1
        return map(tasks.__getitem__, range(entry.cursor, len(tasks)))

    def tally(self, job: JobRecord) -> TaskTally:
        """`job`'s tasks by state, rebuilt (and given to each task) when tasks were added or
        removed since, or the job's records were replaced."""
        first = next(iter(job.tasks.values()), None)
        tally = first.tally if first is not None else None
        if tally is None or tally.size != len(job.tasks) or tally.next_seq != job.next_seq:
            tally = TaskTally(dict.fromkeys(TaskState, 0), set(), len(job.tasks), job.next_seq)
            for task in job.tasks.values():
                task.tally = tally
                tally.counts[task.state] += 1
                if task.state is TaskState.COMPLETED and task.run.result is ExecutionResult.SUCCESS:
                    tally.succeeded.add(id(task))
        return tally

    def placed(self, task: TaskRecord) -> None:
        """`task` now holds slots on its node."""
        self._busy[id(task)] = task

    def busy(self, state: ServiceState) -> list[TaskRecord]:
        """Every task holding slots: ``preparing`` or ``running`` on a node."""
        self._check(state)
        gone = [
            key for key, task in self._busy.items() if not (task.node_id and task.state in BUSY)
        ]
        for key in gone:
            del self._busy[key]
        return list(self._busy.values())
