"""Requests made with a task's authentication token (``Authorization: Bearer <token>``, the
token from ``AZ_BATCH_AUTHENTICATION_TOKEN``; `jobprep_release.backends.docker.core.tokens`).

As the REST reference has it (``AuthenticationTokenSettings``, access ``job``): the token grants
the operations on the job that contains the task (``/jobs/{jobId}`` and everything under it:
read or update the job, add, list and read its tasks and their files, terminate it, ...) and
nothing else. Any other request made with it is refused with 403
``InsufficientAccountPermissions`` (one of Batch's documented codes; the service's answer to
such a request is not documented); a token the service did not give is 401
``InvalidAuthenticationInfo``. A task token is accepted over plain HTTP too: tasks on the nodes
reach the endpoint without TLS (the endpoint serves the engine's bridge, see the README).
"""

from __future__ import annotations

from aiohttp import web

from jobprep_release.backends.docker.core.tokens import is_task_token
from jobprep_release.backends.docker.rest.context import Context
from jobprep_release.backends.docker.rest.errors import RestError


def authorized(ctx: Context, request: web.Request) -> bool:
    """True when the request carries a task token that grants it; False when it carries none
    (Shared Key and Entra ID are checked then); `RestError` when its token does not grant it."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not is_task_token(token):
        return False
    job_id = ctx.service.task_token_job(token)
    if job_id is None:
        raise RestError(
            401,
            "InvalidAuthenticationInfo",
            "Server failed to authenticate the request. Please refer to the information in "
            "the www-authenticate header.",
            [("AuthenticationErrorDetail", "The token is not one the service gave a task.")],
        )
    parts = request.path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "jobs" and parts[1].lower() == job_id.lower():
        return True
    raise RestError(
        403,
        "InsufficientAccountPermissions",
        "The account being accessed does not have sufficient permissions to execute this "
        "operation.",
        [("Reason", f"a task's authentication token grants the operations on job {job_id} only")],
    )
