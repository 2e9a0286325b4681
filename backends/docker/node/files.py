"""Files on a node container: the Docker executor's file reads (get, properties, list).

Properties come from the engine's archive stat (``HEAD /containers/<id>/archive``), which works
on a stopped container too and reads no file content; contents from the engine's archive of one
file; listings from one ``find`` in the running container (names relative to the listed
directory, ``/``-separated as on Linux nodes). Only regular files and directories are shown;
symbolic links are not followed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from jobprep_release.backends.docker.core.environment import NODE_ROOT
from jobprep_release.backends.docker.core.executor import FileInfo
from jobprep_release.backends.docker.node.engine import Engine
from jobprep_release.backends.errors import Conflict, NotFound

_DIRECTORY_BIT = 1 << 31  # Go's os.ModeDir, as the engine reports modes
_TYPE_BITS = 0xFFF00000  # every os.Mode* type bit
_FIND_FORMAT = r"%y %s %T@ %m %P\0"


def _unix_mode(is_directory: bool, permissions: int) -> str:
    return format((0o040000 if is_directory else 0o100000) | (permissions & 0o7777), "o")


def _parse_go_time(text: str) -> datetime:
    """An RFC 3339 time with up to nine fractional digits (Go's form)."""
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        cut = next((i for i, ch in enumerate(rest) if ch in "+-"), len(rest))
        text = f"{head}.{rest[:cut][:6].ljust(6, '0')}{rest[cut:]}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _no_file(path: str) -> NotFound:
    return NotFound(f"the file {path} does not exist on the node", code="FileNotFound")


class NodeFiles:
    """File access to node containers through the engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def read_confined(self, container: str, relative: str) -> bytes:
        """A file at `relative` under the node's root, following links that stay inside it."""
        return await self._engine.read_confined_file(container, NODE_ROOT, relative)

    def stream_confined(
        self, container: str, relative: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """`read_confined`'s bytes from `start`, `length` of them (all when None), streamed."""
        return self._engine.stream_confined_file(container, NODE_ROOT, relative, start, length)

    async def stat(self, container: str, relative: str) -> FileInfo:
        """Properties of `relative` (under the node's root); `NotFound` when absent. It may not
        pass through a symbolic link that leads out of the root."""
        path = await self._engine.confined_path(container, NODE_ROOT, relative, follow_last=False)
        api = self._engine.api

        def head() -> Any:
            url = api._url("/containers/{0}/archive", container)
            return api.head(url, params={"path": path})

        response = await self._engine.call(head, what=f"stat {path}")
        if response.status_code == 404:
            raise _no_file(path)
        if response.status_code != 200:
            raise Conflict(
                f"the node's files cannot be read now (engine answered {response.status_code})",
                code="OperationInvalidForCurrentState",
            )
        encoded = response.headers.get("X-Docker-Container-Path-Stat", "")
        stat = json.loads(base64.b64decode(encoded))
        mode = int(stat.get("mode", 0))
        if mode & _TYPE_BITS and not mode & _DIRECTORY_BIT:
            raise _no_file(path)  # a link, device or socket: not a file the service shows
        is_directory = bool(mode & _DIRECTORY_BIT)
        return FileInfo(
            name=path.rsplit("/", 1)[-1],
            is_directory=is_directory,
            size=0 if is_directory else int(stat.get("size", 0)),
            modified=_parse_go_time(str(stat.get("mtime"))),
            mode=_unix_mode(is_directory, mode),
        )

    async def list(self, container: str, relative: str, *, recursive: bool) -> list[FileInfo]:
        """What `relative` (a directory under the node's root; "" for the root) holds
        (everything below it when `recursive`), sorted by name."""
        directory = f"{NODE_ROOT}/{relative}" if relative else NODE_ROOT
        found = await self._engine.get_container(container)
        if found is None:
            raise NotFound("the node's container is gone", code="NodeNotFound")
        if found.status != "running":
            raise Conflict(
                f"the node is not running (container {found.status}); list its files when it "
                "is idle or running",
                code="NodeNotReady",
            )
        depth = [] if recursive else ["-maxdepth", "1"]
        command = ["find", directory, "-mindepth", "1", *depth, "-printf", _FIND_FORMAT]
        result = await self._engine.call(
            found.exec_run, command, user="root", demux=True, what=f"list {directory}"
        )
        stdout, _stderr = result.output
        if result.exit_code != 0 and not stdout:
            raise _no_file(directory)
        entries = []
        for record in (stdout or b"").split(b"\0"):
            kind, _, rest = record.decode(errors="replace").partition(" ")
            if kind not in ("f", "d"):
                continue
            size, mtime, permissions, name = rest.split(" ", 3)
            entries.append(
                FileInfo(
                    name=name,
                    is_directory=kind == "d",
                    size=0 if kind == "d" else int(size),
                    modified=datetime.fromtimestamp(float(mtime), UTC),
                    mode=_unix_mode(kind == "d", int(permissions, 8)),
                )
            )
        return sorted(entries, key=lambda entry: entry.name)
