"""Reading request bodies and writing success answers with the service's headers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from jobprep_release.backends.docker.rest import render, versions
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.odata import Query, select
from jobprep_release.backends.docker.rest.wire import http_date

JSON_TYPE = "application/json; odata=minimalmetadata"  # as recorded from the service


async def body(request: web.Request, *, optional: bool = False) -> Mapping[str, Any]:
    """The request's JSON object (in the 2025-06-01 shape, whatever the api-version); an empty
    one when `optional` and nothing was sent. 400 ``InvalidRequestBody`` otherwise."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise RestError(400, "InvalidRequestBody", "The request body is missing.")
    try:
        document = json.loads(raw)
    except ValueError:
        raise RestError(400, "InvalidRequestBody", "The request body is not valid JSON.") from None
    version = request.query.get("api-version", versions.LATEST)
    document = versions.request(version, document)
    if not isinstance(document, Mapping):
        raise RestError(400, "InvalidRequestBody", "The request body must be a JSON object")
    return document


DOCUMENT = web.ResponseKey("document", object)
"""The key under which a JSON answer keeps its document until the endpoint's middleware writes
it, once, in the service's form (``odata.metadata``, the request's api-version)."""


def document(
    content: Any, *, status: int = 200, etag: str | None = None, modified: str | None = None
) -> web.Response:
    """A JSON answer holding `content`; its body is written by the middleware. ``ETag`` is
    `etag`, ``Last-Modified`` the content's ``lastModified``, else `modified` (an object read
    with a ``$select`` that leaves it out: the service still sends the header, as recorded)."""
    headers = {"Content-Type": JSON_TYPE}
    if etag is not None:
        headers["ETag"] = etag
    if isinstance(content, dict) and "lastModified" in content:
        modified = content["lastModified"]
    if modified is not None:
        headers["Last-Modified"] = http_date_of(modified)
    response = web.Response(status=status, headers=headers)
    response[DOCUMENT] = content
    return response


def resource(request: web.Request, found: dict[str, Any], model: type) -> web.Response:
    """A Get of one object (pool, job, task, job schedule): `found`, its JSON as an SDK
    `model` has it, cut to the request's ``$select``, with its ``ETag`` and ``Last-Modified``."""
    chosen = Query(request.path, request.query).select
    return document(
        select([found], chosen, render.names(model))[0],
        etag=found["eTag"],
        modified=found.get("lastModified"),
    )


def http_date_of(iso: str) -> str:
    return http_date(datetime.fromisoformat(iso.replace("Z", "+00:00")))


def _changed(headers: dict[str, str], etag: str | None, modified: datetime | None) -> None:
    if etag is not None:
        headers["ETag"] = etag
    if modified is not None:
        headers["Last-Modified"] = http_date(modified)


def created(url: str, etag: str | None, modified: datetime | None) -> web.Response:
    """201 for a create, with the new object's address, ETag and time."""
    headers = {"DataServiceId": url, "Location": url}
    _changed(headers, etag, modified)
    return web.Response(status=201, headers=headers)


def accepted(
    url: str | None = None, etag: str | None = None, modified: datetime | None = None
) -> web.Response:
    """202 for an operation the service goes on with after answering; `url` the operation's
    address, `etag`/`modified` those of the object it changed, where the service sends them."""
    headers = {"DataServiceId": url} if url else {}
    _changed(headers, etag, modified)
    return web.Response(status=202, headers=headers)


def updated(status: int, url: str, etag: str | None, modified: datetime | None) -> web.Response:
    """`status` (200 for Update Pool, 204 for Replace Pool Properties, as recorded from the
    service) without a body, with the operation's address and the object's ETag and time."""
    headers = {"DataServiceId": url}
    _changed(headers, etag, modified)
    return web.Response(status=status, headers=headers)


def no_content() -> web.Response:
    return web.Response(status=204)


def ok(url: str) -> web.Response:
    """200 with no body, for an operation done when answered (Disable Node Scheduling), with
    its address as the service sends it (``DataServiceId``)."""
    return web.Response(status=200, headers={"DataServiceId": url})
