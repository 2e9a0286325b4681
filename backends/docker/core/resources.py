"""Resource files: downloaded by the service, then placed in the task's working directory.

The node image need not have curl: the service fetches each file itself and has the executor
place it on the node, with its `fileMode` (default 0770) and owned by the task's user, before
the task starts. An `httpUrl` is fetched with a plain GET (off the event loop), as any URL
may be given; a blob container (`storageContainerUrl`, `autoStorageContainerName`) is listed
and read through azure-storage-blob (`storage`). Downloads go to a scratch directory on the
service's machine and are copied to the node from there (`NodeFile.source`), so no file is
held whole in memory; the scratch directory goes once they are placed. A failed download
completes the task with a failure before it runs, as the service does.
"""

from __future__ import annotations

import functools
import posixpath
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence

import anyio.to_thread

from jobprep_release.backends.base import ResourceFile
from jobprep_release.backends.docker.core import storage
from jobprep_release.backends.docker.core.executor import NodeExecutor, NodeFile
from jobprep_release.backends.docker.core.storage import DownloadFailed, LinkedStorage
from jobprep_release.backends.errors import InvalidRequest

__all__ = ["DownloadFailed", "check_resource_file", "place"]

DEFAULT_FILE_MODE = 0o770
DOWNLOAD_TIMEOUT = storage.DOWNLOAD_TIMEOUT


def failure_code(exc: BaseException) -> str:
    """The failure code for a download that raised `exc`."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in (404, 410):
            return "BlobNotFound"
        if exc.code in (401, 403):
            return "BlobAccessDenied"
        return "BlobDownloadMiscError"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "BlobDownloadTimedOut"
    return "BlobDownloadMiscError"


def check_file_path(path: str, *, directory: bool = False) -> str:
    """`path` normalised, relative to the working directory; `InvalidRequest` if it escapes.
    A `directory` (a container's blobs go there) may be empty: the working directory."""
    if directory and not path:
        return ""
    normal = posixpath.normpath(path.replace("\\", "/"))
    if not path or path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidRequest(
            f"resource file path {path!r} must stay inside the task's working directory",
            code="InvalidPropertyValue",
        )
    return normal


def check_resource_file(file: ResourceFile) -> None:
    """`InvalidRequest` unless `file` names exactly one source (REST ResourceFile: httpUrl,
    storageContainerUrl or autoStorageContainerName), a `blobPrefix` only with a container,
    and a `filePath` inside the working directory (required with httpUrl)."""
    sources = [
        name
        for name, value in (
            ("httpUrl", file.http_url),
            ("storageContainerUrl", file.storage_container_url),
            ("autoStorageContainerName", file.auto_storage_container_name),
        )
        if value
    ]
    if len(sources) != 1:
        raise InvalidRequest(
            "a resource file needs exactly one of httpUrl, storageContainerUrl and "
            f"autoStorageContainerName (given: {', '.join(sources) or 'none'})",
            code="InvalidPropertyValue",
        )
    if file.http_url and file.blob_prefix:
        raise InvalidRequest(
            "blobPrefix applies to a container, not to an httpUrl", code="InvalidPropertyValue"
        )
    check_file_path(file.file_path, directory=not file.http_url)


def _download(url: str, target: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise DownloadFailed(f"{url}: only http and https URLs are supported")
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response,
            open(target, "wb") as out,  # noqa: PTH123 (a plain path string)
        ):
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadFailed(f"{url}: {exc}", failure_code(exc)) from exc


async def fetch(
    files: Sequence[ResourceFile], scratch: str, linked: LinkedStorage | None = None
) -> list[tuple[ResourceFile, str, str]]:
    """Download every file into the directory `scratch`: (the resource file, its path relative
    to the working directory, the local copy), a container giving one per blob;
    `DownloadFailed` names the first that fails."""
    fetched: list[tuple[ResourceFile, str, str]] = []
    for file in files:
        local = posixpath.join(scratch, str(len(fetched)))
        if file.http_url:
            await anyio.to_thread.run_sync(_download, file.http_url, local)
            fetched.append((file, check_file_path(file.file_path), local))
            continue
        base = check_file_path(file.file_path, directory=True)
        names = await storage.download_container(
            file.storage_container_url,
            file.auto_storage_container_name,
            file.blob_prefix,
            linked,
            lambda index: posixpath.join(scratch, f"{len(fetched)}-{index}"),
        )
        for name, copy in names:
            try:
                path = check_file_path(posixpath.join(base, name))
            except InvalidRequest as exc:
                raise DownloadFailed(f"blob {name!r}: {exc}") from exc
            fetched.append((file, path, copy))
    return fetched


def node_files(
    working_dir: str, fetched: list[tuple[ResourceFile, str, str]], *, elevated: bool
) -> list[NodeFile]:
    """Each file under `working_dir` with its `fileMode` (default 0770), owned by the task's
    user (root when `elevated`), copied from its local download."""
    return [
        NodeFile(
            path=posixpath.join(working_dir, path),
            source=local,
            mode=int(file.file_mode, 8) if file.file_mode else DEFAULT_FILE_MODE,
            elevated=elevated,
        )
        for file, path, local in fetched
    ]


async def place(
    executor: NodeExecutor,
    node_id: str,
    working_dir: str,
    files: Sequence[ResourceFile],
    linked: LinkedStorage | None,
    *,
    elevated: bool,
) -> None:
    """Download `files` and place them under `working_dir` on the node (any task kind);
    `DownloadFailed` with the service's code when one cannot be downloaded."""
    scratch = await anyio.to_thread.run_sync(
        functools.partial(tempfile.mkdtemp, prefix="jobprep-resources-")
    )
    try:
        fetched = await fetch(files, scratch, linked)
        await executor.put_files(node_id, node_files(working_dir, fetched, elevated=elevated))
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)
