"""Conditional requests, as the Batch service honours them.

Which operation takes which header is the REST specification's (``Azure/azure-rest-api-specs``,
``specification/batch/Azure.Batch/routes.tsp``: the operations taking ``BatchPoolHeaders``,
``BatchJobHeaders``, ``BatchTaskHeaders`` and, for files, ``BatchModifiedSinceHeaders``; the same
as azure-batch 15's ``etag``/``match_condition``/``if_modified_since`` keywords):

- Get, Exists (HEAD), Delete, Update of a pool; Resize, Stop Resize, Remove Nodes, Enable
  Autoscale: all four headers, against the pool's ETag and Last-Modified.
- Get, Delete, Update, Replace, Disable, Enable, Terminate of a job: all four, the job's.
- Get, Delete, Replace, Terminate, Reactivate of a task: all four, the task's.
- Get, Exists, Delete, Update, Replace, Disable, Enable, Terminate of a job schedule
  (``BatchJobScheduleHeaders``): all four, the schedule's.
- Get and Get Properties of a task's or node's file: ``If-Modified-Since`` and
  ``If-Unmodified-Since``, against the file's last modification.

The rules are the REST reference's "Specifying conditional headers" (HTTP/1.1's): a request
holds one conditional header, or ``If-Match`` with ``If-Unmodified-Since`` (``If-Match``
decides), or ``If-None-Match`` with ``If-Modified-Since`` (``If-None-Match`` decides); any other
pair is 400 ``MultipleConditionHeadersNotSupported``. ``If-Match`` takes an ETag list or ``*``.
An unmet condition is 412 ``ConditionNotMet`` (for a read, GET or HEAD, an unmet
``If-None-Match`` or ``If-Modified-Since`` is 304 Not Modified instead), with the sentence of
"Batch status and error codes". HTTP dates have whole seconds, so a time is compared at whole
seconds. The object's existence comes first:
a condition on a pool that does not exist is the operation's own 404. A conditional header on
an operation the specification gives none is refused with 501, never ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from jobprep_release.backends.docker.rest.context import context
from jobprep_release.backends.docker.rest.errors import RestError, not_supported
from jobprep_release.backends.docker.rest.files import relative
from jobprep_release.backends.docker.rest.wire import http_date, parse_http_date
from jobprep_release.backends.errors import JobPrepReleaseError

IF_MATCH = "If-Match"
IF_NONE_MATCH = "If-None-Match"
IF_MODIFIED_SINCE = "If-Modified-Since"
IF_UNMODIFIED_SINCE = "If-Unmodified-Since"
HEADERS = (IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE)
TIME_HEADERS = frozenset({IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE})
ALL_HEADERS = frozenset(HEADERS)

CONDITION_NOT_MET = "ConditionNotMet"
_NOT_MET = "The condition specified in the conditional header(s) was not met for a {} operation."
_PAIRS = (frozenset({IF_MATCH, IF_UNMODIFIED_SINCE}), frozenset({IF_NONE_MATCH, IF_MODIFIED_SINCE}))


@dataclass(frozen=True, slots=True)
class Version:
    """What the conditions are checked against: an ETag (None for a file) and a time."""

    etag: str | None
    modified: datetime | None


Resolver = Callable[[web.Request], Awaitable[Version]]


async def _pool(request: web.Request) -> Version:
    pool = await context(request).service.get_pool(request.match_info["pool"])
    return Version(pool.etag, pool.last_modified)


async def _job(request: web.Request) -> Version:
    job = await context(request).service.get_job(request.match_info["job"])
    return Version(job.etag, job.last_modified)


async def _task(request: web.Request) -> Version:
    match = request.match_info
    task = await context(request).service.get_task(match["job"], match["task"])
    return Version(task.etag, task.last_modified)


async def _schedule(request: web.Request) -> Version:
    found = await context(request).service.get_job_schedule(request.match_info["schedule"])
    return Version(found.etag, found.last_modified)


async def _node_file(request: web.Request) -> Version:
    match = request.match_info
    service = context(request).service
    info = await service.node_file_properties(match["pool"], match["node"], relative(match["path"]))
    return Version(None, info.modified)


async def _task_file(request: web.Request) -> Version:
    match = request.match_info
    service = context(request).service
    pool_id, node_id, directory = service.task_location(match["job"], match["task"])
    path = f"{directory}/{relative(match['path'])}"
    return Version(None, (await service.node_file_properties(pool_id, node_id, path)).modified)


def _each(
    methods: str, route: str, resolver: Resolver, headers: frozenset[str]
) -> dict[tuple[str, str], tuple[Resolver, frozenset[str]]]:
    return {(method, route): (resolver, headers) for method in methods.split()}


OPERATIONS: dict[tuple[str, str], tuple[Resolver, frozenset[str]]] = {
    **_each("GET HEAD DELETE PATCH", "/pools/{pool}", _pool, ALL_HEADERS),
    **_each("POST", "/pools/{pool}/resize", _pool, ALL_HEADERS),
    **_each("POST", "/pools/{pool}/stopresize", _pool, ALL_HEADERS),
    **_each("POST", "/pools/{pool}/removenodes", _pool, ALL_HEADERS),
    **_each("POST", "/pools/{pool}/enableautoscale", _pool, ALL_HEADERS),
    **_each("GET DELETE PATCH PUT", "/jobs/{job}", _job, ALL_HEADERS),
    **_each("POST", "/jobs/{job}/disable", _job, ALL_HEADERS),
    **_each("POST", "/jobs/{job}/enable", _job, ALL_HEADERS),
    **_each("POST", "/jobs/{job}/terminate", _job, ALL_HEADERS),
    **_each("GET DELETE PUT", "/jobs/{job}/tasks/{task}", _task, ALL_HEADERS),
    **_each("POST", "/jobs/{job}/tasks/{task}/terminate", _task, ALL_HEADERS),
    **_each("POST", "/jobs/{job}/tasks/{task}/reactivate", _task, ALL_HEADERS),
    **_each("GET HEAD DELETE PATCH PUT", "/jobschedules/{schedule}", _schedule, ALL_HEADERS),
    **_each("POST", "/jobschedules/{schedule}/disable", _schedule, ALL_HEADERS),
    **_each("POST", "/jobschedules/{schedule}/enable", _schedule, ALL_HEADERS),
    **_each("POST", "/jobschedules/{schedule}/terminate", _schedule, ALL_HEADERS),
    **_each("GET HEAD", "/pools/{pool}/nodes/{node}/files/{path}", _node_file, TIME_HEADERS),
    **_each("GET HEAD", "/jobs/{job}/tasks/{task}/files/{path}", _task_file, TIME_HEADERS),
}
"""(method, route) of each operation taking conditional headers: how to find what they are
checked against, and which headers it takes."""


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else ""


def not_met(method: str) -> RestError:
    kind = "read" if method in ("GET", "HEAD") else "write"
    return RestError(412, CONDITION_NOT_MET, _NOT_MET.format(kind))


def _check_combination(sent: list[str]) -> None:
    if len(sent) > 1 and frozenset(sent) not in _PAIRS:
        raise RestError(
            400,
            "MultipleConditionHeadersNotSupported",
            "Multiple condition headers are not supported.",
            [("HeaderName", name) for name in sent],
        )


def _tags(header: str) -> list[str]:
    """An ``If-Match``/``If-None-Match`` list's ETags, quotes and weak marks taken off."""
    tags = []
    for item in header.split(","):
        tag = item.strip().removeprefix("W/").strip()
        tags.append(tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag)
    return [tag for tag in tags if tag]


def _matches(header: str, etag: str | None) -> bool:
    tags = _tags(header)
    return "*" in tags or (etag is not None and etag in tags)


def _date(name: str, value: str) -> datetime:
    parsed = parse_http_date(value)
    if parsed is None:
        raise RestError(
            400,
            "InvalidHeaderValue",
            "The value for one of the HTTP headers is not in the correct format.",
            [("HeaderName", name), ("HeaderValue", value)],
        )
    return parsed


def _whole_seconds(when: datetime) -> float:
    return float(int(when.timestamp()))


def _modified_since(version: Version, since: datetime) -> bool:
    if version.modified is None:
        return True
    return _whole_seconds(version.modified) > _whole_seconds(since)


def _not_modified(version: Version) -> web.Response:
    headers = {}
    if version.etag is not None:
        headers["ETag"] = version.etag
    if version.modified is not None:
        headers["Last-Modified"] = http_date(version.modified)
    return web.Response(status=304, headers=headers)


async def check_conditions(request: web.Request) -> web.Response | None:
    """None when the request may go on; a 304 answer when the service answers one. Raises
    `RestError` (412 ``ConditionNotMet``, 400 for headers that cannot be combined or a malformed
    date, 501 for a header the operation does not take)."""
    sent = [name for name in HEADERS if name in request.headers]
    if not sent:
        return None
    _check_combination(sent)
    operation = OPERATIONS.get((request.method, _route(request)))
    for name in sent:
        if operation is None or name not in operation[1]:
            raise not_supported(f"the conditional header {name} on this operation")
    assert operation is not None
    headers = request.headers
    dates = {name: _date(name, headers[name]) for name in sent if name in TIME_HEADERS}
    try:
        version = await operation[0](request)
    except (JobPrepReleaseError, RestError):
        return None  # the operation itself answers (404 for a pool that does not exist, ...)
    if IF_MATCH in headers:
        if not _matches(headers[IF_MATCH], version.etag):
            raise not_met(request.method)
    elif IF_UNMODIFIED_SINCE in dates and _modified_since(version, dates[IF_UNMODIFIED_SINCE]):
        raise not_met(request.method)
    reading = request.method in ("GET", "HEAD")
    if IF_NONE_MATCH in headers:
        if _matches(headers[IF_NONE_MATCH], version.etag):
            if reading:
                return _not_modified(version)
            raise not_met(request.method)
    elif IF_MODIFIED_SINCE in dates and not _modified_since(version, dates[IF_MODIFIED_SINCE]):
        if reading:
            return _not_modified(version)
        raise not_met(request.method)
    return None
