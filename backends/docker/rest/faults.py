"""Faults on demand and a log of requests: an aiohttp middleware the endpoint can be built with.

For testing Batch clients against the endpoint (the azure backend's tests use it over the fake
executor): the service's transient and refusing answers on demand, per operation, and a record
of what the client sent::

    faults = FaultInjector()
    settings = EndpointSettings(..., middlewares=(faults.middleware,))
    faults.inject("GET", "/pools/[^/]+", 429, code="TooManyRequests",
                  headers={"Retry-After": "1"})          # the next GET of a pool is throttled
    faults.inject("POST", "/jobs", 503, times=2)          # the next two Add Job unavailable
    faults.inject("GET", "/jobs", delay=2.0)              # the next List Jobs answered 2 s late
    faults.calls("POST", "/jobs")                         # what the client sent, in order

A fault matches a request by method and a regular expression over the whole (decoded) path; it
answers the next `times` matching requests (None: all), the first matching fault winning. An
error answer has the service's error body (`errors.error_document`) with the code given and a
``request-id``; `body` answers with that JSON document instead (a canned answer). The log holds
every request that reached the endpoint, faulted or not, authenticated or not, before any
check; the endpoint's own checks (Shared Key, api-version) run behind the faults.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import anyio
from aiohttp import web
from aiohttp.typedefs import Handler

from jobprep_release.backends.docker.rest.context import base_url
from jobprep_release.backends.docker.rest.errors import RestError, error_document
from jobprep_release.backends.docker.rest.replies import JSON_TYPE

INJECTED = "Injected failure."


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as it arrived: method, decoded path, query (first value of each
    parameter), and body (parsed JSON; the raw bytes when not JSON; None when empty)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass(slots=True)
class Fault:
    """An injected answer: `status` with `code` (or `body`), `headers`, after `delay` seconds;
    no `status`: the request goes on to the service after `delay` (a slow answer)."""

    method: str
    path: re.Pattern[str]
    status: int | None
    code: str
    times: int | None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: Any = None


class FaultInjector:
    """Injected faults and the request log; `middleware` goes first in the app's middlewares."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []

    def inject(
        self,
        method: str,
        path: str,
        status: int | None = None,
        *,
        code: str = "ServerBusy",
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        body: Any = None,
    ) -> Fault:
        """Answer the next `times` requests (None: every one) whose method is `method` and
        whose path matches the regular expression `path` whole: with `status` and the
        service's error body for `code` (or `body`, a JSON document), after `delay` seconds;
        without `status`, pass them on after `delay` seconds."""
        if status is None and delay <= 0:
            raise ValueError("a fault needs a status or a delay")
        fault = Fault(
            method.upper(), re.compile(path), status, code, times, dict(headers or {}), delay, body
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget every fault and the log."""
        self.faults.clear()
        self.requests.clear()

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The logged requests with `method` whose path matches `path` whole, in order."""
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    def _take(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path.fullmatch(path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()  # aiohttp keeps it: the handler reads it again
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        path = unquote(request.path)
        query = dict(parse_qsl(request.query_string, keep_blank_values=True)[::-1])
        self.requests.append(Recorded(request.method, path, query, body))
        fault = self._take(request.method, path)
        if fault is None:
            return await handler(request)
        if fault.delay > 0:
            await anyio.sleep(fault.delay)
        if fault.status is None:
            return await handler(request)
        headers = {"request-id": str(uuid.uuid4()), "Content-Type": JSON_TYPE, **fault.headers}
        if fault.body is not None:
            return web.Response(
                status=fault.status, body=json.dumps(fault.body).encode(), headers=headers
            )
        error = RestError(fault.status, fault.code, INJECTED)
        document = error_document(base_url(request), error, headers["request-id"])
        return web.Response(
            status=fault.status, body=json.dumps(document).encode(), headers=headers
        )
