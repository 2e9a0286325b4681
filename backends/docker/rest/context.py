"""What every handler of the endpoint shares: the service (any `EndpointService`) and the keys.

Deletes answer 202 at once, as the service does: the service records the pool or job
``deleting`` before the answer and carries the deletion through in the background (resuming it
when it starts again after a stop); GET shows it ``deleting`` meanwhile, and what would change
it is refused with 409 ``PoolBeingDeleted`` / ``JobBeingDeleted``, by the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.abc
import structlog
from aiohttp import web

from jobprep_release.backends.docker.rest.auth import SharedKey
from jobprep_release.backends.docker.rest.interface import EndpointService

log = structlog.get_logger("jobprep_release.endpoint")


@dataclass
class Context:
    """The endpoint's state besides the service's own: `group` is the endpoint's task group."""

    service: EndpointService
    keys: SharedKey
    group: anyio.abc.TaskGroup


CONTEXT = web.AppKey("context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]


def base_url(request: web.Request) -> str:
    """The account URL as the client addressed it (``http://127.0.0.1:8089``)."""
    return f"{request.scheme}://{request.host}"
