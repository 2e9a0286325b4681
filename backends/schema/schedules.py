"""Job schedules <-> azure-batch's models, in both directions (the mapping of `requests` for
Add Job Schedule, Update and Replace Job Schedule, and the service's ``BatchJobSchedule``).

A schedule's ``jobSpecification`` has the properties of Add Job but ``id`` under the same REST
names, so it is read and written through the job's own mapping (`requests.job_spec`,
`requests.job_create_options`): whatever a job honours, a schedule's jobs honour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.batch import models

from jobprep_release.backends.base import JobSpec
from jobprep_release.backends.schedules import JobSchedule, JobScheduleSpec, Schedule
from jobprep_release.backends.schema import requests
from jobprep_release.backends.schema.shapes import parse_time


def job_specification(spec: JobSpec) -> models.BatchJobSpecification:
    document = requests.job_create_options(spec).as_dict()
    document.pop("id", None)
    return models.BatchJobSpecification(document)


def job_specification_spec(model: models.BatchJobSpecification) -> JobSpec:
    """The job each recurrence creates, its id empty."""
    return requests.job_spec(models.BatchJobCreateOptions({**model.as_dict(), "id": ""}))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_time(str(value))


def schedule_model(schedule: Schedule) -> models.BatchJobScheduleConfiguration:
    return models.BatchJobScheduleConfiguration(
        do_not_run_until=schedule.do_not_run_until,
        do_not_run_after=schedule.do_not_run_after,
        start_window=schedule.start_window,
        recurrence_interval=schedule.recurrence_interval,
    )


def schedule_spec(model: models.BatchJobScheduleConfiguration | None) -> Schedule:
    if model is None:
        return Schedule()
    return Schedule(
        do_not_run_until=_time(model.do_not_run_until),
        do_not_run_after=_time(model.do_not_run_after),
        start_window=model.start_window,
        recurrence_interval=model.recurrence_interval,
    )


def create_options(spec: JobScheduleSpec) -> models.BatchJobScheduleCreateOptions:
    return models.BatchJobScheduleCreateOptions(
        id=spec.id,
        display_name=spec.display_name,
        schedule=schedule_model(spec.schedule),
        job_specification=job_specification(spec.job_specification),
        metadata=requests.metadata_items(spec.metadata),
    )


def job_schedule_spec(
    model: models.BatchJobScheduleCreateOptions | models.BatchJobSchedule,
) -> JobScheduleSpec:
    """A schedule's settings (a request's, or as the service reports them)."""
    return JobScheduleSpec(
        id=model.id or "",
        display_name=model.display_name,
        schedule=schedule_spec(model.schedule),
        job_specification=job_specification_spec(
            model.job_specification or models.BatchJobSpecification({})
        ),
        metadata=requests.metadata(model.metadata),
    )


def job_schedule_model(view: JobSchedule, spec: JobScheduleSpec, base: str) -> Any:
    """The schedule as the service reports it (``BatchJobSchedule``), `base` the account URL."""
    model = models.BatchJobSchedule(create_options(spec).as_dict())
    model.url = f"{base}/jobschedules/{view.id}"
    model.state = view.state.value
    known = {
        "etag": view.etag,
        "last_modified": view.last_modified,
        "creation_time": view.creation_time,
        "state_transition_time": view.state_transition_time,
    }
    if view.previous_state is not None:
        model.previous_state = view.previous_state.value
        known["previous_state_transition_time"] = view.previous_state_transition_time
    for name, value in known.items():
        if value is not None:
            setattr(model, name, value)
    info = models.BatchJobScheduleExecutionInfo()
    if view.next_run_time is not None:
        info.next_run_time = view.next_run_time
    if view.recent_job_id is not None:
        info.recent_job = models.RecentBatchJob(
            id=view.recent_job_id, url=f"{base}/jobs/{view.recent_job_id}"
        )
    if view.end_time is not None:
        info.end_time = view.end_time
    model.execution_info = info
    return model
