"""Job schedules: the models of a schedule that creates jobs on a recurrence (issue 15, item 7).

Named as the REST API names them (api-version 2025-06-01: ``BatchJobSchedule``,
``BatchJobScheduleConfiguration``, ``BatchJobScheduleExecutionInfo``). Kept apart from
`BatchBackend` (what the sample needs): the local endpoint serves them over the Batch core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from jobprep_release.backends.base import JobSpec
from jobprep_release.backends.models.value import Value


class JobScheduleState(StrEnum):
    """REST ``JobScheduleState``."""

    ACTIVE = "active"
    COMPLETED = "completed"
    DISABLED = "disabled"
    TERMINATING = "terminating"
    DELETING = "deleting"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Schedule(Value):
    """When jobs are created (REST ``schedule``; all optional). Without `recurrence_interval`
    one job is created, within `start_window` after `do_not_run_until`; `start_window` and
    `recurrence_interval` are at least a minute (the service refuses less with 400)."""

    do_not_run_until: datetime | None = None
    do_not_run_after: datetime | None = None
    start_window: timedelta | None = None
    recurrence_interval: timedelta | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobScheduleSpec(Value):
    """A job schedule as added (or updated): `job_specification` is the job each recurrence
    creates, its `id` empty (the service names each job ``{scheduleId}:job-{n}``)."""

    id: str
    job_specification: JobSpec
    schedule: Schedule = field(default_factory=Schedule)
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JobSchedule(Value):
    """A job schedule as the service reports it: state, history and ``executionInfo``
    (`next_run_time`, the most recent job's id, `end_time` once completed)."""

    id: str
    state: JobScheduleState
    creation_time: datetime | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    state_transition_time: datetime | None = None
    previous_state: JobScheduleState | None = None
    previous_state_transition_time: datetime | None = None
    next_run_time: datetime | None = None
    recent_job_id: str | None = None
    end_time: datetime | None = None
