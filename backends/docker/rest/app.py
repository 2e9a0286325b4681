"""The aiohttp application: routes, and the checks every request passes first.

Each request is authenticated (Shared Key), must name an ``api-version`` this endpoint speaks,
and gets a ``request-id``; whatever a handler raises becomes the service's error answer
(`jobprep_release.backends.docker.rest.errors`). Nothing is logged of a request's headers, so
the signature and key never reach a log.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from jobprep_release.backends.docker.core.pace import Pace
from jobprep_release.backends.docker.rest import (
    files,
    jobs,
    metadata,
    pools,
    schedules,
    tasks,
    tokens,
    versions,
)
from jobprep_release.backends.docker.rest.conditions import check_conditions
from jobprep_release.backends.docker.rest.context import CONTEXT, Context, base_url
from jobprep_release.backends.docker.rest.errors import (
    RestError,
    error_document,
    from_backend,
    not_supported,
)
from jobprep_release.backends.docker.rest.odata import SLICE
from jobprep_release.backends.docker.rest.replies import DOCUMENT, JSON_TYPE
from jobprep_release.backends.docker.rest.unsupported import unrouted
from jobprep_release.backends.errors import JobPrepReleaseError

API_VERSION = versions.LATEST
MAX_BODY = 1024 * 1024

log = structlog.get_logger("jobprep_release.endpoint")


def _check_api_version(request: web.Request) -> None:
    version = request.query.get("api-version")
    if version is None:
        raise RestError(
            400,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified: api-version",
            [("QueryParameterName", "api-version")],
        )
    if version not in versions.API_VERSIONS:
        raise RestError(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
            [
                ("QueryParameterName", "api-version"),
                ("QueryParameterValue", version),
                ("Reason", "The specified api version is not supported."),
            ],
        )


async def _as_the_service(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """A JSON answer as the service writes it: ``odata.metadata`` first
    (`metadata.with_metadata`), in the shape of the request's api-version (`versions.answer`)."""
    if not isinstance(response, web.Response) or DOCUMENT not in response:
        return response
    version = request.query.get("api-version", API_VERSION)
    document = metadata.with_metadata(base_url(request), request.path, response.pop(DOCUMENT))
    shaped = versions.answer(version, document, task_counts=request.path.endswith("/taskcounts"))
    response.body = (await encoded(shaped)).encode()
    return response


async def encoded(document: Any) -> str:
    """`document` as ``json.dumps`` writes it (the same text), a list answer's items
    (``value``) encoded in slices of `SLICE` seconds with the event loop handed back between:
    one ``json.dumps`` of a 1,000-task page takes ~10 ms, on top of the slices that rendered it."""
    items = document.get("value") if isinstance(document, dict) else None
    if not isinstance(items, list) or len(items) < SLICED_FROM:
        return json.dumps(document)
    pace = Pace(SLICE)
    texts = []
    for item in items:
        texts.append(json.dumps(item))
        if pace.due():  # no coroutine per item (each costs a traceback in debug mode)
            await pace.pause()
    # json.dumps's own separators (", " and ": "), so the text is the one it would write.
    listed = "[" + ", ".join(texts) + "]"
    members = (
        f"{json.dumps(key)}: {listed if key == 'value' else json.dumps(value)}"
        for key, value in document.items()
    )
    return "{" + ", ".join(members) + "}"


SLICED_FROM = 100
"""Items of a list answer from which its encoding is sliced (`encoded`)."""

HONOURED_QUERY = frozenset(
    {"api-version", "timeout", "$filter", "$select", "maxresults", "$skiptoken", "recursive"}
)
"""The query parameters the endpoint reads (names without regard to case); any other is 501."""


_EXPANDABLE = re.compile(r"/(?:pools|jobs)(?:/[^/]+)?")
"""Get and List of pools and jobs: where the endpoint takes ``$expand`` (REST: an OData
``$expand`` clause naming ``stats`` or ``metadata``)."""


def _selects_stats(request: web.Request) -> bool:
    """Whether the answer can hold ``stats``: no ``$select``, or one naming it."""
    for name, value in request.query.items():
        if name.lower() == "$select":
            return "stats" in (item.strip().lower() for item in value.split(","))
    return True


def _check_expand(request: web.Request, value: str) -> None:
    """``$expand``: ``metadata`` is honoured (the endpoint always writes an object's metadata);
    ``stats`` is 501 (no statistics are kept) unless a ``$select`` leaves ``stats`` out (the
    expansion then adds nothing to the answer: azure-batch's own tests ask ``$select=id,state``
    with ``$expand=stats``), as is ``$expand`` on any other operation; any other expansion
    is 400."""
    if request.method not in ("GET", "HEAD") or not _EXPANDABLE.fullmatch(request.path):
        raise not_supported("$expand", "statistics are not kept")
    for item in value.split(","):
        expansion = item.strip().lower()
        if expansion == "stats":
            if _selects_stats(request):
                error = not_supported("$expand=stats", "statistics are not kept")
                error.values += (("QueryParameterName", "$expand"),)
                raise error
        elif expansion != "metadata":
            raise RestError(
                400,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid.",
                [
                    ("QueryParameterName", "$expand"),
                    ("QueryParameterValue", value),
                    ("Reason", "expected stats or metadata"),
                ],
            )


def _check_query(request: web.Request) -> None:
    """``timeout`` (the service's processing limit, whole seconds: 400 otherwise; the endpoint
    answers well within it), ``$expand`` (`_check_expand`) and no parameter the endpoint does
    not honour (``force`` on Delete Job): refused 501 naming it, never ignored."""
    for name, value in request.query.items():
        folded = name.lower()
        if folded == "$expand":
            _check_expand(request, value)
            continue
        if folded not in HONOURED_QUERY:
            error = not_supported(f"the query parameter {name}")
            error.values += (("QueryParameterName", name),)
            raise error
        if folded == "timeout" and not re.fullmatch(r"\d+", value.strip()):
            raise RestError(
                400,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid.",
                [
                    ("QueryParameterName", name),
                    ("QueryParameterValue", value),
                    ("Reason", "expected a whole number of seconds"),
                ],
            )


def _error_response(request: web.Request, error: RestError, request_id: str) -> web.Response:
    body = error_document(base_url(request), error, request_id)
    headers = {"Content-Type": JSON_TYPE, **error.headers}
    if request.method == "HEAD":
        return web.Response(status=error.status, headers=headers)
    return web.Response(status=error.status, body=json.dumps(body).encode(), headers=headers)


@web.middleware
async def service_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = str(uuid.uuid4())
    ctx: Context = request.app[CONTEXT]
    response: web.StreamResponse
    try:
        if not tokens.authorized(ctx, request):
            ctx.keys.check(request.method, request.headers, request.raw_path)
        _check_api_version(request)
        _check_query(request)
        not_modified = await check_conditions(request)
        if not_modified is not None:
            response = not_modified
        else:
            response = await _as_the_service(request, await handler(request))
    except RestError as error:
        response = _error_response(request, error, request_id)
    except JobPrepReleaseError as error:
        response = _error_response(request, from_backend(error), request_id)
    except web.HTTPRequestEntityTooLarge:
        too_large = RestError(413, "RequestBodyTooLarge", "The request body is too large.")
        response = _error_response(request, too_large, request_id)
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        internal = RestError(500, "InternalError", "The server encountered an internal error.")
        response = _error_response(request, internal, request_id)
    response.headers["request-id"] = request_id
    response.headers["DataServiceVersion"] = "3.0"
    client_id = request.headers.get("client-request-id")
    if client_id and request.headers.get("return-client-request-id", "").lower() == "true":
        response.headers["client-request-id"] = client_id
    log.debug("request", method=request.method, path=request.path, status=response.status)
    return response


def build_app(ctx: Context, middlewares: Sequence[Middleware] = ()) -> web.Application:
    """The endpoint's application, serving `ctx`'s service. `middlewares` run first, in order,
    before the endpoint's own checks (a `faults.FaultInjector`'s, say)."""
    app = web.Application(middlewares=[*middlewares, service_middleware], client_max_size=MAX_BODY)
    app[CONTEXT] = ctx
    for module in (pools, jobs, tasks, files, schedules):
        app.add_routes(module.routes)
    app.router.add_route("*", "/{tail:.*}", unrouted)
    return app
