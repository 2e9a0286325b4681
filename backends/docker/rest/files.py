"""Routes for files on nodes and of tasks: get (with ``ocp-range``), properties (HEAD), list,
delete (``recursive`` for a directory).

Node file paths are relative to the node's root (``shared/x.txt``,
``workitems/<job>/job-1/<task>/stdout.txt``); task file paths to the task's directory
(``stdout.txt``, ``wd/out.txt``). ``\\`` is taken for ``/``; a path that is absolute or holds
``..`` is refused (400 ``InvalidNodeFilePath``).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import web

from jobprep_release.backends.docker.core.executor import FileInfo
from jobprep_release.backends.docker.rest import render
from jobprep_release.backends.docker.rest.context import base_url, context
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.odata import Query, page
from jobprep_release.backends.docker.rest.replies import document
from jobprep_release.backends.docker.rest.wire import format_time, http_date
from jobprep_release.backends.errors import NotFound

routes = web.RouteTableDef()

OCTET_STREAM = "application/octet-stream"
# Python's own table only (not /etc/mime.types), so a name has one type on every machine.
_TYPES = mimetypes.MimeTypes()
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def relative(path: str) -> str:
    """`path` as a ``/``-separated path that stays below where it is taken from."""
    parts = path.replace("\\", "/").strip("/").split("/")
    if path.startswith(("/", "\\")) or any(part in ("", ".", "..") for part in parts):
        raise RestError(
            400,
            "InvalidNodeFilePath",
            f"The file path {path!r} must be relative, without '..' or empty parts.",
        )
    return "/".join(parts)


def content_type(name: str) -> str:
    """A file's type from its name, as the service gives it (``text/plain`` for ``.txt``)."""
    return _TYPES.guess_type(name, strict=False)[0] or OCTET_STREAM


def _headers(info: FileInfo, url: str) -> dict[str, str]:
    """A file's headers as the service writes them (recorded answers of Get Node File): the
    directory flag as ``True``/``False``, the URL percent-encoded whole. Node file systems keep
    no creation time here, so ``ocp-creation-time`` is the last modification's."""
    return {
        "Content-Type": content_type(url),
        "Last-Modified": http_date(info.modified),
        "ocp-creation-time": http_date(info.modified),
        "ocp-batch-file-isdirectory": "True" if info.is_directory else "False",
        "ocp-batch-file-url": quote(url, safe=""),
        "ocp-batch-file-mode": info.mode,
    }


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """(offset, length) of the bytes of a `size`-byte file that an ``ocp-range`` header asks
    for: ``bytes=start-end`` (both included), ``bytes=start-`` (to the end), ``bytes=-n`` (the
    last n); all of them when there is no header. A range past the end is cut at the end.
    400 ``InvalidHeaderValue`` for any other form."""
    if not header:
        return 0, size
    match = _RANGE.fullmatch(header.strip())
    if not match or not (match[1] or match[2]):
        raise RestError(400, "InvalidHeaderValue", f"ocp-range {header!r} is not bytes=start-end")
    if not match[1]:  # the last n bytes
        wanted = min(int(match[2]), size)
        return size - wanted, wanted
    start = min(int(match[1]), size)
    end = min(int(match[2]) + 1, size) if match[2] else size
    return start, max(0, end - start)


async def _chained(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _answer(
    request: web.Request, pool_id: str, node_id: str, path: str, url: str
) -> web.Response:
    """A node file (`path` relative to the node's root): its bytes, or for HEAD its headers.
    The bytes are streamed from the node as they are sent (never the whole file in memory), the
    first chunk read before answering so that a file that cannot be read is an error answer."""
    service = context(request).service
    info = await service.node_file_properties(pool_id, node_id, path)
    headers = _headers(info, url)
    if request.method == "HEAD":
        headers["Content-Length"] = str(info.size)
        return web.Response(status=200, headers=headers)
    if info.is_directory:
        raise NotFound(f"{path} is a directory, not a file", code="FileNotFound")
    start, length = byte_range(request.headers.get("ocp-range"), info.size)
    chunks = service.stream_node_file(pool_id, node_id, path, start, length)
    first = await anext(chunks, b"")
    headers["Content-Length"] = str(length)
    return web.Response(status=200, body=_chained(first, chunks), headers=headers)


def _listing(prefix: str, entries: list[FileInfo]) -> list[dict[str, Any]]:
    listed = []
    for entry in entries:
        item: dict[str, Any] = {
            "name": entry.name,
            "url": f"{prefix}/{quote(entry.name, safe='/')}",
            "isDirectory": entry.is_directory,
        }
        if not entry.is_directory:
            item["properties"] = {
                "creationTime": format_time(entry.modified),
                "lastModified": format_time(entry.modified),
                "contentLength": str(entry.size),
                "contentType": content_type(entry.name),
                "fileMode": entry.mode,
            }
        listed.append(item)
    return listed


def _recursive(request: web.Request) -> bool:
    value = request.query.get("recursive", "false").lower()
    if value not in ("true", "false"):
        raise RestError(400, "InvalidQueryParameterValue", "recursive must be true or false")
    return value == "true"


def document_page(request: web.Request, items: list[dict[str, Any]], base: str) -> web.Response:
    return document(page(Query(request.path, request.query), items, base))


# --- node files ------------------------------------------------------------------------------


@routes.route("HEAD", "/pools/{pool}/nodes/{node}/files/{path:.+}")
@routes.get("/pools/{pool}/nodes/{node}/files/{path:.+}", allow_head=False)
async def node_file(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    path = relative(request.match_info["path"])
    await ctx.service.get_pool(pool_id)  # PoolNotFound first; adopts a pool known by labels
    url = render.file_url(base_url(request), "pools", pool_id, "nodes", node_id, "files", path)
    return await _answer(request, pool_id, node_id, path, url)


@routes.delete("/pools/{pool}/nodes/{node}/files/{path:.+}")
async def delete_node_file(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    path = relative(request.match_info["path"])
    await ctx.service.get_pool(pool_id)  # PoolNotFound first; adopts a pool known by labels
    await ctx.service.delete_node_file(pool_id, node_id, path, recursive=_recursive(request))
    return web.Response(status=200)


@routes.get("/pools/{pool}/nodes/{node}/files")
async def list_node_files(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    await ctx.service.get_pool(pool_id)  # PoolNotFound first; adopts a pool known by labels
    await ctx.service.get_node(pool_id, node_id)
    entries = await ctx.service.list_node_files(pool_id, node_id, "", recursive=_recursive(request))
    base = base_url(request)
    prefix = render.file_url(base, "pools", pool_id, "nodes", node_id, "files")
    return document_page(request, _listing(prefix, entries), base)


# --- task files ------------------------------------------------------------------------------


@routes.route("HEAD", "/jobs/{job}/tasks/{task}/files/{path:.+}")
@routes.get("/jobs/{job}/tasks/{task}/files/{path:.+}", allow_head=False)
async def task_file(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    path = relative(request.match_info["path"])
    pool_id, node_id, directory = ctx.service.task_location(job_id, task_id)
    await ctx.service.get_pool(pool_id)  # PoolNotFound first; adopts a pool known by labels
    url = render.file_url(base_url(request), "jobs", job_id, "tasks", task_id, "files", path)
    return await _answer(request, pool_id, node_id, f"{directory}/{path}", url)


@routes.delete("/jobs/{job}/tasks/{task}/files/{path:.+}")
async def delete_task_file(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    path = relative(request.match_info["path"])
    await ctx.service.delete_task_file(job_id, task_id, path, recursive=_recursive(request))
    return web.Response(status=200)


@routes.get("/jobs/{job}/tasks/{task}/files")
async def list_task_files(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    pool_id, node_id, directory = ctx.service.task_location(job_id, task_id)
    await ctx.service.get_pool(pool_id)  # PoolNotFound first; adopts a pool known by labels
    entries = await ctx.service.list_node_files(
        pool_id, node_id, directory, recursive=_recursive(request)
    )
    base = base_url(request)
    prefix = render.file_url(base, "jobs", job_id, "tasks", task_id, "files")
    return document_page(request, _listing(prefix, entries), base)
