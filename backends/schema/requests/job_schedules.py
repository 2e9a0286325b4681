"""Add Job Schedule: the service's limits on a schedule's properties (its mapping to and from
`JobScheduleSpec` is `jobprep_release.backends.schema.schedules`, over the job mappings)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from azure.batch import models

from jobprep_release.backends.schema.requests.common import (
    DISPLAY_NAME,
    Limit,
    at_least,
    id_limit,
    unique_names,
    within,
)

LIMITS: Mapping[type, Mapping[str, Limit]] = {
    models.BatchJobScheduleCreateOptions: {
        "id": id_limit,
        "displayName": DISPLAY_NAME,
        "metadata": unique_names,
    },
    models.BatchJobScheduleConfiguration: {
        "startWindow": at_least(timedelta(minutes=1)),
        "recurrenceInterval": at_least(timedelta(minutes=1)),
    },
    models.BatchJobSpecification: {
        "displayName": DISPLAY_NAME,
        "priority": within(-1000, 1000),
        "maxParallelTasks": within(-1),
        "metadata": unique_names,
        "commonEnvironmentSettings": unique_names,
    },
}
"""The service's limits on job schedules' properties and the jobs they make (`limits.LIMITS`
has the sources)."""
