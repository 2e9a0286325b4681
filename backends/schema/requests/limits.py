"""The service's limits on request properties' values, every resource's in one table, and the
check the endpoint makes of a request with them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobprep_release.backends.schema.requests import job_schedules, jobs, pools, tasks
from jobprep_release.backends.schema.requests.common import Limit
from jobprep_release.backends.schema.shapes import Kind, PropertyError, join, properties

LIMITS: Mapping[type, Mapping[str, Limit]] = {
    **pools.LIMITS,
    **jobs.LIMITS,
    **tasks.LIMITS,
    **job_schedules.LIMITS,
}
"""Per model, the limits the service sets on its properties' values, each refused with 400
``InvalidPropertyValue`` naming the property. Source: the Batch REST API reference
(api-version 2025-06-01): Add Pool (``id`` up to 64 letters, digits, hyphens and underscores;
``displayName`` up to 1,024 characters; ``resizeTimeout`` at least 5 minutes;
``taskSlotsPerNode`` at most 256; ``autoScaleEvaluationInterval`` 5 minutes to 168 hours, as
Enable Pool Auto Scale has it too), Resize Pool, Remove Nodes (``nodeList`` of at most 100
ids), Add Job, Update Job and Replace Job (``priority`` -1000 to 1000; ``maxParallelTasks``
-1 or greater than 0), Add Task (``requiredSlots`` at least 1), the constraints
(``maxTaskRetryCount`` -1, unlimited, or more; ``maxWallClockTime`` a positive duration) and
metadata and environment settings (names unique in their list), Add Job Schedule
(``startWindow`` and ``recurrenceInterval`` at least 1 minute)."""


def check_limits(model: type, document: Mapping[str, Any], path: str = "") -> None:
    """`PropertyError` (path and reason) for the first value of `document` (JSON of `model`,
    conformed) outside the service's limits (`LIMITS`), recursively."""
    known = properties(model)
    limits = LIMITS.get(model, {})
    for name, value in document.items():
        where = join(path, name)
        limit = limits.get(name)
        reason = limit(value) if limit is not None and value is not None else None
        if reason is not None:
            raise PropertyError(where, reason)
        found = known.get(name)
        if found is None:
            continue
        shape = found.shape
        if shape.kind is Kind.MODEL and shape.model is not None and isinstance(value, Mapping):
            check_limits(shape.model, value, where)
        elif shape.kind is Kind.LIST and shape.item and shape.item.model is not None:
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    check_limits(shape.item.model, item, f"{where}[{index}]")
