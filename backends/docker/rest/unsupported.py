"""The answer to every request no route takes: the Batch operation it is, named, and 501.

Operations of the Batch API that the endpoint does not emulate are named after the REST
reference (``Stop Pool Resize``), so a client learns exactly what is missing; anything that
is no Batch operation at all is 400 ``InvalidUri``.
"""

from __future__ import annotations

import re

from aiohttp import web

from jobprep_release.backends.docker.rest.errors import RestError, not_supported

_ID = r"[^/]+"
_NODE = rf"/pools/{_ID}/nodes/{_ID}"
_TASK = rf"/jobs/{_ID}/tasks/{_ID}"

# (methods, path pattern, operation name), first match wins.
_OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/applications", "List Applications"),
    ("GET", rf"/applications/{_ID}", "Get Application"),
    ("GET", r"/poolusagemetrics", "List Pool Usage Metrics"),
    ("POST", rf"{_NODE}/users", "Create Node User"),
    ("PUT", rf"{_NODE}/users/{_ID}", "Replace Node User"),
    ("DELETE", rf"{_NODE}/users/{_ID}", "Delete Node User"),
    ("POST", rf"{_NODE}/start", "Start Node"),
    ("POST", rf"{_NODE}/deallocate", "Deallocate Node"),
    ("GET", rf"{_NODE}/remoteloginsettings", "Get Node Remote Login Settings"),
    ("POST", rf"{_NODE}/uploadbatchservicelogs", "Upload Node Logs"),
    ("GET", rf"{_NODE}/extensions", "List Node Extensions"),
    ("GET", rf"{_NODE}/extensions/{_ID}", "Get Node Extension"),
    ("DELETE", rf"{_NODE}/files/.+", "Delete Node File"),
    ("PATCH", rf"/jobs/{_ID}", "Update Job"),
    ("PUT", rf"/jobs/{_ID}", "Replace Job"),
    ("POST", rf"/jobs/{_ID}/disable", "Disable Job"),
    ("POST", rf"/jobs/{_ID}/enable", "Enable Job"),
    ("DELETE", _TASK, "Delete Task"),
    ("PUT", _TASK, "Replace Task"),
    ("POST", rf"{_TASK}/reactivate", "Reactivate Task"),
    ("DELETE", rf"{_TASK}/files/.+", "Delete Task File"),
    ("GET POST DELETE", r"/certificates(/.*)?", "Certificates"),
)
_NO_LOGIN = (
    "nodes are containers without a login service (no SSH or RDP), so there is no user to log "
    "in as nor an address and port to log in at; give the pool userAccounts and run commands "
    "as tasks under userIdentity.username"
)
_DETAILS = {
    "Create Node User": _NO_LOGIN,
    "Replace Node User": _NO_LOGIN,
    "Delete Node User": _NO_LOGIN,
    "Get Node Remote Login Settings": _NO_LOGIN,
}
"""Why an operation is refused, where the name alone does not say what to do instead."""

_COMPILED = tuple(
    (frozenset(methods.split()), re.compile(pattern), name)
    for methods, pattern, name in _OPERATIONS
)


def operation_name(method: str, path: str) -> str | None:
    for methods, pattern, name in _COMPILED:
        if method in methods and pattern.fullmatch(path):
            return name
    return None


async def unrouted(request: web.Request) -> web.Response:
    """Raise the error for a request no route of the endpoint takes."""
    name = operation_name(request.method, request.path)
    if name is not None:
        raise not_supported(f"{name} ({request.method} {request.path})", _DETAILS.get(name, ""))
    raise RestError(
        400,
        "InvalidUri",
        f"{request.method} {request.path} is not an operation of the Batch API "
        "(api-version 2025-06-01).",
        [("Method", request.method), ("Path", request.path)],
    )
