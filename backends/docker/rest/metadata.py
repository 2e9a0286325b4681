"""``odata.metadata``: the first property of every JSON body the service sends, naming the
entity set of what the body holds (``<account URL>/$metadata#pools/@Element`` for one pool,
``...#pools`` for a list). Entity sets as the service's recorded answers name them; Get Task
Counts' and Add Task Collection's are not among the recordings and follow the same pattern.
"""

from __future__ import annotations

import re
from typing import Any

_ID = r"[^/]+"
_ENTITY_SETS = (
    (r"/pools", "pools"),
    (r"/nodecounts", "poolnodecounts"),
    (r"/supportedimages", "supportedimages"),
    (rf"/pools/{_ID}", "pools/@Element"),
    (rf"/pools/{_ID}/evaluateautoscale", "Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"),
    (rf"/pools/{_ID}/nodes", "nodes"),
    (rf"/pools/{_ID}/nodes/{_ID}", "nodes/@Element"),
    (rf"/pools/{_ID}/nodes/{_ID}/files", "files"),
    (r"/jobs", "jobs"),
    (rf"/jobs/{_ID}", "jobs/@Element"),
    (rf"/jobs/{_ID}/tasks", "tasks"),
    (rf"/jobs/{_ID}/tasks/{_ID}", "tasks/@Element"),
    (rf"/jobs/{_ID}/tasks/{_ID}/files", "files"),
    (rf"/jobs/{_ID}/jobpreparationandreleasetaskstatus", "jobpreparationandreleasetaskstatuslist"),
    (rf"/jobs/{_ID}/taskcounts", "taskcounts/@Element"),
    (rf"/jobs/{_ID}/addtaskcollection", "taskaddresult"),
    (
        rf"/pools/{_ID}/nodes/{_ID}/uploadbatchservicelogs",
        "Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult",
    ),
)
_PATTERNS = tuple((re.compile(pattern), name) for pattern, name in _ENTITY_SETS)


def entity_set(path: str) -> str | None:
    """The entity set of the answer to a request for `path` (None: not a JSON resource)."""
    for pattern, name in _PATTERNS:
        if pattern.fullmatch(path):
            return name
    return None


def with_metadata(base_url: str, path: str, document: Any) -> Any:
    """`document` with ``odata.metadata`` first, where `path` names an entity set."""
    name = entity_set(path)
    if name is None or not isinstance(document, dict) or "odata.metadata" in document:
        return document
    return {"odata.metadata": f"{base_url}/$metadata#{name}", **document}
