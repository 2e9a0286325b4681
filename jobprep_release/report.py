"""`--json`: the run as one JSON document, in a documented, versioned schema.

The schema is `report.schema.json` beside this module (JSON Schema 2020-12); `SCHEMA_VERSION`
changes whenever a field changes meaning or goes away (adding fields does not).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jobprep_release.backends.base import ExecutionInfo, PrepReleaseExecution, Task
from jobprep_release.flow import SampleOutcome
from jobprep_release.options import SampleOptions

SCHEMA_VERSION = 1


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _execution(info: ExecutionInfo) -> dict[str, Any]:
    return {
        "exitCode": info.exit_code,
        "result": info.result.value if info.result else None,
        "failureCode": info.failure_info.code if info.failure_info else None,
        "retryCount": info.retry_count,
        "requeueCount": info.requeue_count,
        "startTime": _time(info.start_time),
        "endTime": _time(info.end_time),
    }


def _task(task: Task) -> dict[str, Any]:
    return {"id": task.id, "nodeId": task.node_id, "state": task.state.value} | _execution(
        task.execution_info
    )


def _prep_release(execution: PrepReleaseExecution | None) -> dict[str, Any] | None:
    if execution is None:
        return None
    return {"state": execution.state.value} | _execution(execution.execution_info)


def build(
    backend: str,
    options: SampleOptions,
    outcome: SampleOutcome,
    *,
    status: int = 0,
    message: str | None = None,
) -> dict[str, Any]:
    """The report document for a run that ended with exit `status` (0, or `message`, the
    line it wrote on stderr without its ``error: ``); `outcome` holds what the run reached (a
    run that stopped early: nothing, `SampleOutcome()`)."""
    job = outcome.job
    return {
        "schemaVersion": SCHEMA_VERSION,
        "backend": backend,
        "succeeded": outcome.succeeded and status == 0,
        "error": None if status == 0 else {"status": status, "message": message or ""},
        "pool": {
            "id": options.pool_id,
            "vmSize": options.vm_size,
            "deleted": outcome.pool_deleted,
            "nodes": [{"id": node.id, "state": node.state.value} for node in outcome.nodes],
        },
        "job": {
            "id": options.job_id,
            "state": job.state.value if job else None,
            "terminateReason": job.terminate_reason if job else None,
            "deleted": outcome.job_deleted,
        },
        "tasks": [_task(task) for task in outcome.tasks],
        "nodeFiles": [
            {"nodeId": node_id, "text": text} for node_id, text in outcome.node_files.items()
        ],
        "storage": _storage(options, outcome),
        "prepRelease": [
            {
                "nodeId": status.node_id,
                "preparation": _prep_release(status.preparation),
                "release": _prep_release(status.release),
            }
            for status in outcome.prep_release
        ],
    }


def _storage(options: SampleOptions, outcome: SampleOutcome) -> dict[str, Any] | None:
    """(a) the staged blobs and (b) the uploaded job logs; None when the run used neither."""
    if not options.uses_storage:
        return None
    staged = uploaded = None
    if options.stage_container:
        staged = {"container": options.stage_container, "blobs": outcome.staged}
    if options.logs_container:
        blobs = [{"name": name, "size": size} for name, size in outcome.uploaded]
        uploaded = {"container": options.logs_container, "blobs": blobs}
    return {"staged": staged, "uploaded": uploaded}


def failed(backend: str, options: SampleOptions, status: int, message: str) -> dict[str, Any]:
    """The report document for a run that stopped with exit `status` before it had an
    outcome (the engine unreachable, a pool in the wrong state, ...): the ids asked for, empty
    lists, and the error."""
    return build(backend, options, SampleOutcome(), status=status, message=message)


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)
